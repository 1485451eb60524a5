//! Encoding of Workload API responses from the checked model types (the
//! server side of `decode`). Pure functions: no I/O, no clock.
//!
//! Map keys are trust-domain IDs (`spiffe://<td>`), as SPIRE and go-spiffe's
//! fake server send them (checklist §6.2). Bundle values are concatenated
//! DER (X.509) or a plain JWKS (JWT).

use std::collections::{BTreeMap, BTreeSet};

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::Value as Json;
use spiffe_bundle::X509Bundle;
use spiffe_id::TrustDomain;
use spiffe_svid::JwtSvid;

use crate::proto::{
    JwtBundlesResponse, Jwtsvid, JwtsvidResponse, ValidateJwtsvidResponse, X509BundlesResponse,
    X509svid, X509svidResponse,
};
use crate::{JwtBundles, JwtSvidToken, X509Bundles, X509Context};

/// The map key of a trust domain's bundle: its ID, `spiffe://<td>`.
fn bundle_key(trust_domain: &TrustDomain) -> String {
    trust_domain.id_str().to_owned()
}

/// The full-state `FetchX509SVID` message for `context` (W-05, W-14).
///
/// SVIDs keep the context's order (the first is the default identity,
/// W-31). Each carries the concatenated DER of its own trust domain's
/// bundle; `federated_bundles` holds every other bundle of the context, so
/// a client rebuilds exactly the same set of bundles.
pub(crate) fn x509_svid_response(context: &X509Context) -> X509svidResponse {
    let svid_domains: BTreeSet<TrustDomain> = context
        .svids()
        .iter()
        .map(|s| s.svid().spiffe_id().trust_domain())
        .collect();
    // Each trust domain's DER once, however many SVIDs share it.
    let own_bundles: BTreeMap<&TrustDomain, Vec<u8>> = svid_domains
        .iter()
        .map(|td| {
            let der = context
                .bundles()
                .get(td)
                .map(X509Bundle::to_der)
                .unwrap_or_default();
            (td, der)
        })
        .collect();
    let svids = context
        .svids()
        .iter()
        .map(|hinted| {
            let svid = hinted.svid();
            let td = svid.spiffe_id().trust_domain();
            X509svid {
                spiffe_id: svid.spiffe_id().as_str().to_owned(),
                x509_svid: svid
                    .chain()
                    .iter()
                    .flat_map(|c| c.iter().copied())
                    .collect(),
                x509_svid_key: svid.private_key().secret_der().to_vec(),
                bundle: own_bundles.get(&td).cloned().unwrap_or_default(),
                hint: hinted.hint().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    let federated_bundles = context
        .bundles()
        .iter()
        .filter(|b| !svid_domains.contains(b.trust_domain()))
        .map(|b| (bundle_key(b.trust_domain()), b.to_der()))
        .collect();
    X509svidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles,
    }
}

/// The `FetchX509Bundles` message: every bundle, DER (W-19: the caller
/// must include the own trust domain).
pub(crate) fn x509_bundles_response(bundles: &X509Bundles) -> X509BundlesResponse {
    X509BundlesResponse {
        crl: Vec::new(),
        bundles: bundles
            .iter()
            .map(|b| (bundle_key(b.trust_domain()), b.to_der()))
            .collect(),
    }
}

/// The `FetchJWTSVID` response. A token whose non-empty hint repeats an
/// earlier one is left out (W-15; the first wins, as SPIRE keeps the oldest
/// entry).
pub(crate) fn jwt_svid_response(tokens: &[JwtSvidToken]) -> JwtsvidResponse {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let svids = tokens
        .iter()
        .filter(|t| t.hint().is_none_or(|h| seen.insert(h)))
        .map(|t| Jwtsvid {
            spiffe_id: t.spiffe_id().as_str().to_owned(),
            svid: t.token().to_owned(),
            hint: t.hint().unwrap_or_default().to_owned(),
        })
        .collect();
    JwtsvidResponse { svids }
}

/// The `FetchJWTBundles` message: one plain JWKS per trust domain, in the
/// form SPIRE serves (`{"keys":[...]}`, no `use`, no `spiffe_*` members;
/// checklist §5.2), which go-spiffe and the `spiffe` crate read.
pub(crate) fn jwt_bundles_response(bundles: &JwtBundles) -> JwtBundlesResponse {
    JwtBundlesResponse {
        bundles: bundles
            .iter()
            .map(|b| (bundle_key(b.trust_domain()), b.to_jwks().into_bytes()))
            .collect(),
    }
}

/// The `ValidateJWTSVID` response: the subject and every claim (W-25), with
/// `aud` always a list (W9), as SPIRE returns it.
pub(crate) fn validate_jwt_svid_response(svid: &JwtSvid) -> ValidateJwtsvidResponse {
    let mut fields: BTreeMap<String, Value> = svid
        .claims()
        .iter()
        .map(|(name, value)| (name.clone(), json_to_protobuf(value)))
        .collect();
    let audience = svid
        .audience()
        .iter()
        .map(|a| Value {
            kind: Some(Kind::StringValue(a.clone())),
        })
        .collect();
    fields.insert(
        "aud".to_owned(),
        Value {
            kind: Some(Kind::ListValue(ListValue { values: audience })),
        },
    );
    ValidateJwtsvidResponse {
        spiffe_id: svid.spiffe_id().as_str().to_owned(),
        claims: Some(Struct { fields }),
    }
}

/// A JSON value as a `google.protobuf.Value`. Numbers become doubles, the
/// only number type `Value` has (as in Go's `structpb`).
fn json_to_protobuf(value: &Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        // Without serde_json's `arbitrary_precision` every number has an
        // f64 form.
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_protobuf).collect(),
        }),
        Json::Object(map) => Kind::StructValue(Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_protobuf(v)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use rustls_pki_types::UnixTime;
    use spiffe_id::SpiffeId;
    use spiffe_svid::issuer::{DevCa, SvidSpec};

    use super::*;
    use crate::HintedX509Svid;

    fn td(name: &str) -> TrustDomain {
        TrustDomain::new(name).unwrap()
    }

    fn issue(ca: &DevCa, id: &str) -> spiffe_svid::X509Svid {
        let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        let spec = SvidSpec::new(SpiffeId::parse(id).unwrap(), t(1_000), t(4_000_000_000));
        ca.issue(&spec).unwrap().to_x509_svid().unwrap()
    }

    #[test]
    fn w_14_each_svid_carries_its_own_bundle_and_others_are_federated() {
        let a = DevCa::new(td("a.test")).unwrap();
        let b = DevCa::new(td("b.test")).unwrap();
        let c = DevCa::new(td("c.test")).unwrap();
        let svids = vec![
            HintedX509Svid::new(issue(&a, "spiffe://a.test/web"), Some("internal")),
            HintedX509Svid::new(issue(&b, "spiffe://b.test/web"), None),
        ];
        let bundles: X509Bundles = [a.bundle(), b.bundle(), c.bundle()].into_iter().collect();
        let context = X509Context::new(svids, bundles).unwrap();

        let msg = x509_svid_response(&context);
        assert_eq!(msg.svids.len(), 2);
        let first = &msg.svids[0];
        assert_eq!(first.spiffe_id, "spiffe://a.test/web");
        assert_eq!(first.hint, "internal");
        assert_eq!(first.bundle, a.bundle().to_der());
        let chain: Vec<u8> = context.svids()[0]
            .svid()
            .chain()
            .iter()
            .flat_map(|c| c.to_vec())
            .collect();
        assert_eq!(first.x509_svid, chain);
        assert_eq!(
            first.x509_svid_key,
            context.svids()[0].svid().private_key().secret_der()
        );
        assert_eq!(msg.svids[1].bundle, b.bundle().to_der());
        assert_eq!(msg.svids[1].hint, "");
        // Only c.test is federated: a.test and b.test travel with the SVIDs.
        assert_eq!(msg.federated_bundles.len(), 1);
        assert_eq!(
            msg.federated_bundles["spiffe://c.test"],
            c.bundle().to_der()
        );
        assert!(msg.crl.is_empty());
    }

    #[test]
    fn w_19_bundles_are_keyed_by_trust_domain_id() {
        let a = DevCa::new(td("a.test")).unwrap();
        let b = DevCa::new(td("b.test")).unwrap();
        let bundles: X509Bundles = [a.bundle(), b.bundle()].into_iter().collect();
        let msg = x509_bundles_response(&bundles);
        assert_eq!(msg.bundles.len(), 2);
        assert_eq!(msg.bundles["spiffe://a.test"], a.bundle().to_der());
        assert_eq!(msg.bundles["spiffe://b.test"], b.bundle().to_der());
        assert_eq!(x509_bundles_response(&bundles), msg);
    }

    #[test]
    fn equal_content_encodes_to_equal_bytes_in_trust_domain_order() {
        use prost::Message;
        let cas: Vec<DevCa> = ["d.test", "a.test", "c.test", "b.test", "e.test"]
            .into_iter()
            .map(|name| DevCa::new(td(name)).unwrap())
            .collect();
        let bundles: X509Bundles = cas.iter().map(DevCa::bundle).collect();
        let bytes = x509_bundles_response(&bundles).encode_to_vec();
        // Another collection of the same bundles, built in another order.
        let again: X509Bundles = cas.iter().rev().map(DevCa::bundle).collect();
        assert_eq!(x509_bundles_response(&again).encode_to_vec(), bytes);
        let keys: Vec<String> = X509BundlesResponse::decode(bytes.as_slice())
            .unwrap()
            .bundles
            .into_keys()
            .collect();
        assert_eq!(
            keys,
            ["a", "b", "c", "d", "e"].map(|n| format!("spiffe://{n}.test"))
        );
    }

    #[test]
    fn w_15_duplicate_jwt_hints_keep_the_first_token() {
        let id = |s| SpiffeId::parse(s).unwrap();
        let tokens = [
            JwtSvidToken::new(id("spiffe://a.test/1"), "t1", Some("internal")),
            JwtSvidToken::new(id("spiffe://a.test/2"), "t2", Some("external")),
            JwtSvidToken::new(id("spiffe://a.test/3"), "t3", Some("internal")),
            JwtSvidToken::new(id("spiffe://a.test/4"), "t4", None),
            JwtSvidToken::new(id("spiffe://a.test/5"), "t5", None),
        ];
        let msg = jwt_svid_response(&tokens);
        let got: Vec<_> = msg.svids.iter().map(|s| s.svid.as_str()).collect();
        assert_eq!(got, ["t1", "t2", "t4", "t5"]);
        assert_eq!(msg.svids[0].spiffe_id, "spiffe://a.test/1");
        assert_eq!(msg.svids[2].hint, "");
    }

    #[test]
    fn w_23_jwt_bundles_are_plain_jwks_per_trust_domain() {
        let bundles: JwtBundles = [spiffe_bundle::JwtBundle::empty(td("a.test"))]
            .into_iter()
            .collect();
        let msg = jwt_bundles_response(&bundles);
        assert_eq!(msg.bundles.len(), 1);
        let jwks: serde_json::Value =
            serde_json::from_slice(&msg.bundles["spiffe://a.test"]).unwrap();
        assert_eq!(jwks, serde_json::json!({"keys": []}));
    }

    #[test]
    fn w_9_validated_claims_with_aud_as_a_list() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header = b64(serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}));
        let claims = b64(serde_json::json!({
            "sub": "spiffe://a.test/web", "aud": "svc", "exp": 4_000_000_000u64, "x": "y"
        }));
        let token = format!("{header}.{claims}.AAAA");
        let at = UnixTime::since_unix_epoch(Duration::from_secs(2_000_000_000));
        let svid = JwtSvid::parse_insecure(&token, &["svc"], at).unwrap();

        let msg = validate_jwt_svid_response(&svid);
        assert_eq!(msg.spiffe_id, "spiffe://a.test/web");
        let fields = msg.claims.unwrap().fields;
        let aud = Kind::ListValue(ListValue {
            values: vec![Value {
                kind: Some(Kind::StringValue("svc".into())),
            }],
        });
        assert_eq!(fields["aud"].kind, Some(aud));
        assert_eq!(
            fields["sub"].kind,
            Some(Kind::StringValue("spiffe://a.test/web".into()))
        );
        assert_eq!(fields["exp"].kind, Some(Kind::NumberValue(4e9)));
        assert_eq!(fields["x"].kind, Some(Kind::StringValue("y".into())));
    }

    #[test]
    fn json_values_map_to_protobuf_values() {
        let json = serde_json::json!({
            "n": null, "b": true, "i": 3, "f": 1.5, "s": "x",
            "l": [1, "y"], "o": {"k": false}
        });
        let Kind::StructValue(s) = json_to_protobuf(&json).kind.unwrap() else {
            panic!("not a struct");
        };
        let kind = |k: &str| s.fields[k].kind.clone().unwrap();
        assert_eq!(kind("n"), Kind::NullValue(0));
        assert_eq!(kind("b"), Kind::BoolValue(true));
        assert_eq!(kind("i"), Kind::NumberValue(3.0));
        assert_eq!(kind("f"), Kind::NumberValue(1.5));
        assert_eq!(kind("s"), Kind::StringValue("x".into()));
        let Kind::ListValue(l) = kind("l") else {
            panic!("not a list")
        };
        assert_eq!(l.values.len(), 2);
        let Kind::StructValue(o) = kind("o") else {
            panic!("not a struct")
        };
        assert_eq!(o.fields["k"].kind, Some(Kind::BoolValue(false)));
    }
}
