//! Turning Workload API responses into checked values.
//!
//! Each function takes one response message as the generated code holds it
//! and returns the crate's model, or a [`DecodeError`] saying what was wrong.
//! They follow the Workload API specification and, where it leaves room, the
//! reference client (go-spiffe), and always fail closed:
//!
//! - a mandatory field left at its default value makes the whole message an
//!   error (W-11); an empty `svids` list is an error (W-14, W-21), and so is
//!   an empty bundle map (W-19, W-23);
//! - of two SVIDs with the same non-empty hint the first is kept and the
//!   later ones are dropped unread (W-16);
//! - an X.509-SVID must load with its key ([`X509Svid::from_der`] checks the
//!   leaf profile and that the key is the leaf's), its `spiffe_id` must be
//!   the leaf's ID, and its `bundle` becomes the bundle of that ID's trust
//!   domain;
//! - bundle-map keys may be `spiffe://<td>` (what the specification sends) or
//!   a bare `<td>` (what go-spiffe also accepts); anything else, including an
//!   ID with a path, is an error. Two entries for one trust domain must carry
//!   the same bytes;
//! - JWT bundles are plain JWK Sets and every key is taken whatever its
//!   `use` ([`JwtBundle::parse_jwks`]), because SPIRE leaves `use` out;
//! - `crl` fields are not used by this crate and are ignored.
//!
//! Nothing here panics, whatever the input.
//!
//! ```
//! use spiffe_workload_api::decode::{DecodeError, decode_x509_svid_response};
//! use spiffe_workload_api::proto::X509svidResponse;
//!
//! let empty = X509svidResponse::default();
//! assert_eq!(decode_x509_svid_response(&empty).unwrap_err(), DecodeError::NoSvids);
//! ```

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::UnixTime;
use serde_json::{Map, Number, Value};
use spiffe_bundle::{BundleError, JwtBundle, X509Bundle};
use spiffe_id::{SpiffeId, SpiffeIdError, TrustDomain};
use spiffe_svid::{JwtSvid, JwtSvidError, X509Svid, X509SvidError};

use crate::context::check_hints;
use crate::proto;
use crate::{ContextError, HintedX509Svid, JwtBundles, JwtSvidToken, X509Bundles, X509Context};

/// How deep `ValidateJWTSVIDResponse.claims` may nest. JWT-SVID claims are
/// flat in practice; the bound keeps a hostile message from exhausting the
/// stack.
const MAX_CLAIMS_DEPTH: usize = 32;

/// Why a Workload API response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The response has no SVIDs: `X509SVIDResponse.svids` or
    /// `JWTSVIDResponse.svids` is empty (W-14, W-21).
    #[error("the response holds no SVIDs")]
    NoSvids,
    /// The bundle map of `X509BundlesResponse` or `JWTBundlesResponse` is
    /// empty; it must hold at least the server's own trust domain (W-19,
    /// W-23).
    #[error("the response holds no bundles")]
    NoBundles,
    /// A mandatory field of the SVID at `index` is empty (W-11, W-14, W-21).
    #[error("SVID {index}: mandatory field `{field}` is empty")]
    EmptySvidField {
        /// The SVID's position in the response.
        index: usize,
        /// The field's name in the protocol.
        field: &'static str,
    },
    /// A mandatory top-level field is empty (W-11, W-26).
    #[error("mandatory field `{field}` is empty")]
    EmptyField {
        /// The field's name in the protocol.
        field: &'static str,
    },
    /// A `spiffe_id` field is not a SPIFFE ID.
    #[error("`{value}` is not a SPIFFE ID: {source}")]
    InvalidSpiffeId {
        /// The text received.
        value: String,
        /// What is wrong with it.
        source: SpiffeIdError,
    },
    /// An SVID is not for the SPIFFE ID it should be: the `spiffe_id` field
    /// differs from the ID in the certificate or token, or a token is for
    /// another ID than the one requested.
    #[error("expected SPIFFE ID {expected}, found {found}")]
    SpiffeIdMismatch {
        /// The ID declared by the message or asked for.
        expected: SpiffeId,
        /// The ID in the certificate or token.
        found: SpiffeId,
    },
    /// The X.509-SVID at `index` does not load: a bad certificate, a leaf
    /// that breaks the SVID profile, or a key that is not the leaf's.
    #[error("X.509-SVID {index}: {source}")]
    InvalidX509Svid {
        /// The SVID's position in the response.
        index: usize,
        /// Why it was refused.
        source: X509SvidError,
    },
    /// The JWT-SVID at `index` (or the token that was validated, index 0) is
    /// not a well-formed, current JWT-SVID for the audience.
    #[error("JWT-SVID {index}: {source}")]
    InvalidJwtSvid {
        /// The SVID's position in the response.
        index: usize,
        /// Why it was refused.
        source: JwtSvidError,
    },
    /// The JWT-SVID at `index` does not name an audience it was requested
    /// for (W-20).
    #[error("JWT-SVID {index} is not for audience `{audience}`")]
    AudienceMissing {
        /// The SVID's position in the response.
        index: usize,
        /// The requested audience its `aud` claim lacks.
        audience: String,
    },
    /// A bundle-map key is neither `spiffe://<td>` nor `<td>`.
    #[error("bundle key `{key}` does not name a trust domain: {source}")]
    InvalidBundleKey {
        /// The key received.
        key: String,
        /// What is wrong with it.
        source: SpiffeIdError,
    },
    /// A bundle-map key is a SPIFFE ID with a path, not a trust domain's ID.
    #[error("bundle key `{key}` has a path; expected `spiffe://<trust-domain>`")]
    BundleKeyHasPath {
        /// The key received.
        key: String,
    },
    /// Two different bundles were given for one trust domain (an SVID's
    /// `bundle` and a federated bundle, or a key given as both
    /// `spiffe://<td>` and `<td>`).
    #[error("conflicting bundles for trust domain {trust_domain}")]
    ConflictingBundles {
        /// The trust domain.
        trust_domain: TrustDomain,
    },
    /// An X.509 bundle is not concatenated DER certificates.
    #[error("X.509 bundle of {trust_domain}: {source}")]
    InvalidX509Bundle {
        /// The bundle's trust domain.
        trust_domain: TrustDomain,
        /// Why it was refused.
        source: BundleError,
    },
    /// A JWT bundle is not a JWK Set this crate can use.
    #[error("JWT bundle of {trust_domain}: {source}")]
    InvalidJwtBundle {
        /// The bundle's trust domain.
        trust_domain: TrustDomain,
        /// Why it was refused.
        source: BundleError,
    },
    /// `ValidateJWTSVIDResponse.claims` holds a value JSON cannot carry.
    #[error("invalid claims: {reason}")]
    InvalidClaims {
        /// What was wrong.
        reason: &'static str,
    },
    /// The SVIDs and bundles do not form a valid value (for example a hint
    /// over [`MAX_HINT_LEN`](crate::MAX_HINT_LEN) bytes).
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// Decodes one `FetchX509SVID` message into the workload's X.509 context.
///
/// The first SVID kept is the default one (W-31). Each SVID's `bundle`
/// becomes the bundle of its trust domain, and `federated_bundles` adds the
/// other trust domains; `crl` is ignored.
///
/// # Errors
///
/// - [`DecodeError::NoSvids`] for an empty `svids` list;
/// - [`DecodeError::EmptySvidField`] when `spiffe_id`, `x509_svid`,
///   `x509_svid_key` or `bundle` is empty;
/// - [`DecodeError::InvalidSpiffeId`] for a `spiffe_id` that does not parse;
/// - [`DecodeError::InvalidX509Svid`] when the chain or the key does not load
///   or the key is not the leaf's;
/// - [`DecodeError::SpiffeIdMismatch`] when `spiffe_id` is not the leaf's ID;
/// - [`DecodeError::InvalidBundleKey`] or [`DecodeError::BundleKeyHasPath`]
///   for a bad `federated_bundles` key;
/// - [`DecodeError::InvalidX509Bundle`] for a bundle that is not
///   concatenated DER certificates;
/// - [`DecodeError::ConflictingBundles`] when one trust domain gets two
///   different bundles;
/// - [`DecodeError::Context`] for a hint over [`MAX_HINT_LEN`](crate::MAX_HINT_LEN) bytes.
pub fn decode_x509_svid_response(
    response: &proto::X509svidResponse,
) -> Result<X509Context, DecodeError> {
    if response.svids.is_empty() {
        return Err(DecodeError::NoSvids);
    }
    let mut bundles = BundleCollector::new();
    let mut svids = Vec::with_capacity(response.svids.len());
    let mut hints: Vec<&str> = Vec::new();
    for (index, entry) in response.svids.iter().enumerate() {
        if !entry.hint.is_empty() {
            if hints.contains(&entry.hint.as_str()) {
                // W-16: the first SVID with a hint wins; later ones are
                // dropped before they are read, as go-spiffe does.
                continue;
            }
            hints.push(&entry.hint);
        }
        let empty = |field| DecodeError::EmptySvidField { index, field };
        if entry.spiffe_id.is_empty() {
            return Err(empty("spiffe_id"));
        }
        if entry.x509_svid.is_empty() {
            return Err(empty("x509_svid"));
        }
        if entry.x509_svid_key.is_empty() {
            return Err(empty("x509_svid_key"));
        }
        if entry.bundle.is_empty() {
            return Err(empty("bundle"));
        }
        let declared = parse_spiffe_id(&entry.spiffe_id)?;
        let svid = X509Svid::from_der(&entry.x509_svid, &entry.x509_svid_key)
            .map_err(|source| DecodeError::InvalidX509Svid { index, source })?;
        if svid.spiffe_id() != &declared {
            return Err(DecodeError::SpiffeIdMismatch {
                expected: declared,
                found: svid.spiffe_id().clone(),
            });
        }
        // Have the crypto provider load the key now: a key it refuses is a
        // bad message, not a failure at the first handshake.
        svid.signing_key()
            .map_err(|source| DecodeError::InvalidX509Svid { index, source })?;
        bundles.add_x509(declared.trust_domain(), &entry.bundle)?;
        svids.push(HintedX509Svid::new(svid, Some(&entry.hint)));
    }
    for (key, der) in &response.federated_bundles {
        bundles.add_x509(parse_bundle_key(key)?, der)?;
    }
    Ok(X509Context::new(svids, bundles.into_x509())?)
}

/// Decodes one `FetchX509Bundles` message into X.509 bundles by trust
/// domain. `crl` is ignored.
///
/// # Errors
///
/// [`DecodeError::NoBundles`] for an empty map;
/// [`DecodeError::InvalidBundleKey`] or [`DecodeError::BundleKeyHasPath`]
/// for a bad key; [`DecodeError::InvalidX509Bundle`] for a value that is not
/// concatenated DER certificates; [`DecodeError::ConflictingBundles`] when a
/// trust domain is given twice (as `spiffe://<td>` and `<td>`) with
/// different bytes.
pub fn decode_x509_bundles_response(
    response: &proto::X509BundlesResponse,
) -> Result<X509Bundles, DecodeError> {
    if response.bundles.is_empty() {
        return Err(DecodeError::NoBundles);
    }
    let mut bundles = BundleCollector::new();
    for (key, der) in &response.bundles {
        bundles.add_x509(parse_bundle_key(key)?, der)?;
    }
    Ok(bundles.into_x509())
}

/// Decodes one `FetchJWTBundles` message into JWT bundles by trust domain.
/// Each value is read as a plain JWK Set, taking every key whatever its
/// `use`.
///
/// # Errors
///
/// [`DecodeError::NoBundles`] for an empty map;
/// [`DecodeError::InvalidBundleKey`] or [`DecodeError::BundleKeyHasPath`]
/// for a bad key; [`DecodeError::InvalidJwtBundle`] for a value that is not
/// a usable JWK Set (see [`JwtBundle::parse_jwks`]);
/// [`DecodeError::ConflictingBundles`] when a trust domain is given twice
/// with different bytes.
pub fn decode_jwt_bundles_response(
    response: &proto::JwtBundlesResponse,
) -> Result<JwtBundles, DecodeError> {
    if response.bundles.is_empty() {
        return Err(DecodeError::NoBundles);
    }
    let mut bundles = BundleCollector::new();
    for (key, jwks) in &response.bundles {
        bundles.add_jwt(parse_bundle_key(key)?, jwks)?;
    }
    Ok(bundles.into_jwt())
}

/// Decodes a `FetchJWTSVID` answer to a request for `audience` (and, if
/// given, for `spiffe_id`), checked at time `at`.
///
/// Every token is parsed without its signature (the Workload API is
/// trusted; [`JwtSvid::parse_insecure`]): it must be a JWT-SVID for its
/// `spiffe_id`, name every requested audience, and be current at `at` (60 s
/// leeway). Of two SVIDs with the same non-empty hint the first is kept.
///
/// # Errors
///
/// [`DecodeError::NoSvids`] for an empty list;
/// [`DecodeError::EmptySvidField`] when `spiffe_id` or `svid` is empty;
/// [`DecodeError::InvalidSpiffeId`]; [`DecodeError::InvalidJwtSvid`] for a
/// token that does not parse, has expired or is for none of the audiences
/// (also when `audience` is empty); [`DecodeError::AudienceMissing`];
/// [`DecodeError::SpiffeIdMismatch`] when the token's subject is not its
/// `spiffe_id`, or not the requested ID; [`DecodeError::Context`] for a
/// hint over [`MAX_HINT_LEN`](crate::MAX_HINT_LEN) bytes.
pub fn decode_jwt_svid_response(
    response: &proto::JwtsvidResponse,
    audience: &[&str],
    spiffe_id: Option<&SpiffeId>,
    at: SystemTime,
) -> Result<Vec<JwtSvidToken>, DecodeError> {
    Ok(decode_jwt_svids(response, audience, spiffe_id, at)?
        .into_iter()
        .map(|(token, _)| token)
        .collect())
}

/// [`decode_jwt_svid_response`], also giving each token parsed.
pub(crate) fn decode_jwt_svids(
    response: &proto::JwtsvidResponse,
    audience: &[&str],
    spiffe_id: Option<&SpiffeId>,
    at: SystemTime,
) -> Result<Vec<(JwtSvidToken, JwtSvid)>, DecodeError> {
    if response.svids.is_empty() {
        return Err(DecodeError::NoSvids);
    }
    let at = unix_time(at);
    let mut out = Vec::with_capacity(response.svids.len());
    let mut hints: Vec<&str> = Vec::new();
    for (index, entry) in response.svids.iter().enumerate() {
        if !entry.hint.is_empty() {
            if hints.contains(&entry.hint.as_str()) {
                continue;
            }
            hints.push(&entry.hint);
        }
        if entry.spiffe_id.is_empty() {
            return Err(DecodeError::EmptySvidField {
                index,
                field: "spiffe_id",
            });
        }
        if entry.svid.is_empty() {
            return Err(DecodeError::EmptySvidField {
                index,
                field: "svid",
            });
        }
        let declared = parse_spiffe_id(&entry.spiffe_id)?;
        let parsed = JwtSvid::parse_insecure(&entry.svid, audience, at)
            .map_err(|source| DecodeError::InvalidJwtSvid { index, source })?;
        if parsed.spiffe_id() != &declared {
            return Err(DecodeError::SpiffeIdMismatch {
                expected: declared,
                found: parsed.spiffe_id().clone(),
            });
        }
        if let Some(wanted) = spiffe_id {
            if wanted != &declared {
                return Err(DecodeError::SpiffeIdMismatch {
                    expected: wanted.clone(),
                    found: declared,
                });
            }
        }
        // `parse_insecure` accepts a token for any one of the audiences;
        // a minted token must carry all of those it was asked for (W-20).
        if let Some(missing) = audience
            .iter()
            .find(|a| !parsed.audience().iter().any(|b| b == *a))
        {
            return Err(DecodeError::AudienceMissing {
                index,
                audience: (*missing).to_owned(),
            });
        }
        let token = JwtSvidToken::new(declared, entry.svid.as_str(), Some(&entry.hint));
        out.push((token, parsed));
    }
    check_hints(out.iter().map(|(t, _)| t.hint()))?;
    Ok(out)
}

/// Decodes a `ValidateJWTSVID` answer: the SPIFFE ID of the token's subject
/// and its claims as JSON. Numbers that are whole and exactly representable
/// become JSON integers, so `exp` reads back as an integer.
///
/// # Errors
///
/// [`DecodeError::EmptyField`] when `spiffe_id` is empty or `claims` is
/// absent (every field is mandatory, W-26);
/// [`DecodeError::InvalidSpiffeId`]; [`DecodeError::InvalidClaims`] for a
/// number that is not finite, a value with no kind, or nesting deeper than
/// 32 levels.
pub fn decode_validate_jwt_svid_response(
    response: &proto::ValidateJwtsvidResponse,
) -> Result<(SpiffeId, Map<String, Value>), DecodeError> {
    if response.spiffe_id.is_empty() {
        return Err(DecodeError::EmptyField { field: "spiffe_id" });
    }
    let id = parse_spiffe_id(&response.spiffe_id)?;
    let Some(claims) = &response.claims else {
        return Err(DecodeError::EmptyField { field: "claims" });
    };
    Ok((id, struct_to_map(claims, 0)?))
}

/// `at` as the `UnixTime` the svid crate takes; times before 1970 become
/// the epoch (every token is then "not yet valid", which fails closed).
pub(crate) fn unix_time(at: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn parse_spiffe_id(value: &str) -> Result<SpiffeId, DecodeError> {
    SpiffeId::parse(value).map_err(|source| DecodeError::InvalidSpiffeId {
        value: value.to_owned(),
        source,
    })
}

/// A bundle-map key: `spiffe://<td>` (the specification's form) or `<td>`.
fn parse_bundle_key(key: &str) -> Result<TrustDomain, DecodeError> {
    let invalid = |source| DecodeError::InvalidBundleKey {
        key: key.to_owned(),
        source,
    };
    if key.contains(":/") {
        let id = SpiffeId::parse(key).map_err(invalid)?;
        if !id.is_trust_domain_id() {
            return Err(DecodeError::BundleKeyHasPath {
                key: key.to_owned(),
            });
        }
        Ok(id.trust_domain())
    } else {
        TrustDomain::new(key).map_err(invalid)
    }
}

/// Bundles by trust domain, with the bytes each came from so that a second
/// copy can be told apart from a conflicting one.
struct BundleCollector<'a, B> {
    map: BTreeMap<TrustDomain, (&'a [u8], B)>,
}

impl<'a, B> BundleCollector<'a, B> {
    fn new() -> Self {
        BundleCollector {
            map: BTreeMap::new(),
        }
    }

    /// Adds the bundle parsed from `raw` unless the trust domain already has
    /// one: identical bytes are accepted once, different bytes conflict.
    fn add(
        &mut self,
        trust_domain: TrustDomain,
        raw: &'a [u8],
        parse: impl FnOnce(TrustDomain, &[u8]) -> Result<B, DecodeError>,
    ) -> Result<(), DecodeError> {
        if let Some((known, _)) = self.map.get(&trust_domain) {
            if *known == raw {
                return Ok(());
            }
            return Err(DecodeError::ConflictingBundles { trust_domain });
        }
        let bundle = parse(trust_domain.clone(), raw)?;
        self.map.insert(trust_domain, (raw, bundle));
        Ok(())
    }
}

impl<'a> BundleCollector<'a, X509Bundle> {
    fn add_x509(&mut self, trust_domain: TrustDomain, der: &'a [u8]) -> Result<(), DecodeError> {
        self.add(trust_domain, der, |td, der| {
            X509Bundle::parse_der(td.clone(), der).map_err(|source| {
                DecodeError::InvalidX509Bundle {
                    trust_domain: td,
                    source,
                }
            })
        })
    }

    fn into_x509(self) -> X509Bundles {
        self.map.into_values().map(|(_, b)| b).collect()
    }
}

impl<'a> BundleCollector<'a, JwtBundle> {
    fn add_jwt(&mut self, trust_domain: TrustDomain, jwks: &'a [u8]) -> Result<(), DecodeError> {
        self.add(trust_domain, jwks, |td, jwks| {
            JwtBundle::parse_jwks(td.clone(), jwks).map_err(|source| {
                DecodeError::InvalidJwtBundle {
                    trust_domain: td,
                    source,
                }
            })
        })
    }

    fn into_jwt(self) -> JwtBundles {
        self.map.into_values().map(|(_, b)| b).collect()
    }
}

fn struct_to_map(
    value: &prost_types::Struct,
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    if depth >= MAX_CLAIMS_DEPTH {
        return Err(DecodeError::InvalidClaims {
            reason: "nested too deeply",
        });
    }
    value
        .fields
        .iter()
        .map(|(name, v)| Ok((name.clone(), value_to_json(v, depth + 1)?)))
        .collect()
}

fn value_to_json(value: &prost_types::Value, depth: usize) -> Result<Value, DecodeError> {
    use prost_types::value::Kind;
    if depth >= MAX_CLAIMS_DEPTH {
        return Err(DecodeError::InvalidClaims {
            reason: "nested too deeply",
        });
    }
    Ok(match &value.kind {
        None => {
            return Err(DecodeError::InvalidClaims {
                reason: "a value has no kind",
            });
        }
        Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => Value::Number(number(*n)?),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_map(s, depth)?),
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .iter()
                .map(|v| value_to_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// A protobuf number (always a double) as JSON: an integer when it is whole
/// and within ±2^53, where every integer is exact.
fn number(n: f64) -> Result<Number, DecodeError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.is_finite() && n.fract() == 0.0 && n.abs() <= EXACT {
        // Exact by the bound just checked.
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Number::from(n as i64));
    }
    Number::from_f64(n).ok_or(DecodeError::InvalidClaims {
        reason: "a number is not finite",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_value(n: f64) -> prost_types::Value {
        prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(n)),
        }
    }

    #[test]
    fn bundle_keys_accept_both_forms_and_nothing_else() {
        let td = TrustDomain::new("example.org").unwrap();
        assert_eq!(parse_bundle_key("spiffe://example.org").unwrap(), td);
        assert_eq!(parse_bundle_key("example.org").unwrap(), td);
        assert!(matches!(
            parse_bundle_key("spiffe://example.org/workload"),
            Err(DecodeError::BundleKeyHasPath { .. })
        ));
        for bad in [
            "",
            "Example.org",
            "spiffe:example.org",
            "https://example.org",
            "spiffe://",
        ] {
            assert!(
                matches!(
                    parse_bundle_key(bad),
                    Err(DecodeError::InvalidBundleKey { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn claims_numbers_are_integers_when_exact() {
        assert_eq!(
            number(1_700_000_000.0).unwrap().as_i64(),
            Some(1_700_000_000)
        );
        assert_eq!(number(-3.0).unwrap().as_i64(), Some(-3));
        assert_eq!(number(1.5).unwrap().as_f64(), Some(1.5));
        assert!(number(f64::NAN).is_err());
        assert!(number(f64::INFINITY).is_err());
        assert!(number(1e300).unwrap().as_f64().is_some());
    }

    #[test]
    fn claims_depth_is_bounded() {
        let mut v = number_value(1.0);
        for _ in 0..100 {
            v = prost_types::Value {
                kind: Some(prost_types::value::Kind::ListValue(
                    prost_types::ListValue { values: vec![v] },
                )),
            };
        }
        let response = proto::ValidateJwtsvidResponse {
            spiffe_id: "spiffe://example.org/a".into(),
            claims: Some(prost_types::Struct {
                fields: [("deep".to_owned(), v)].into_iter().collect(),
            }),
        };
        assert_eq!(
            decode_validate_jwt_svid_response(&response).unwrap_err(),
            DecodeError::InvalidClaims {
                reason: "nested too deeply"
            }
        );
    }

    #[test]
    fn w_26_validate_response_fields_are_mandatory() {
        let mut response = proto::ValidateJwtsvidResponse::default();
        assert_eq!(
            decode_validate_jwt_svid_response(&response).unwrap_err(),
            DecodeError::EmptyField { field: "spiffe_id" }
        );
        response.spiffe_id = "spiffe://example.org/a".into();
        assert_eq!(
            decode_validate_jwt_svid_response(&response).unwrap_err(),
            DecodeError::EmptyField { field: "claims" }
        );
        response.claims = Some(prost_types::Struct {
            fields: [
                (
                    "sub".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue(
                            "spiffe://example.org/a".into(),
                        )),
                    },
                ),
                ("exp".to_owned(), number_value(1_700_000_000.0)),
                (
                    "none".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NullValue(0)),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        });
        let (id, claims) = decode_validate_jwt_svid_response(&response).unwrap();
        assert_eq!(id.as_str(), "spiffe://example.org/a");
        assert_eq!(claims["exp"].as_u64(), Some(1_700_000_000));
        assert_eq!(claims["none"], Value::Null);
        response.spiffe_id = "not an id".into();
        assert!(matches!(
            decode_validate_jwt_svid_response(&response),
            Err(DecodeError::InvalidSpiffeId { .. })
        ));
    }

    #[test]
    fn w_19_w_23_empty_bundle_maps_are_errors() {
        assert_eq!(
            decode_x509_bundles_response(&proto::X509BundlesResponse::default()).unwrap_err(),
            DecodeError::NoBundles
        );
        assert_eq!(
            decode_jwt_bundles_response(&proto::JwtBundlesResponse::default()).unwrap_err(),
            DecodeError::NoBundles
        );
    }

    #[test]
    fn w_21_empty_jwt_svid_list_is_an_error() {
        let err = decode_jwt_svid_response(
            &proto::JwtsvidResponse::default(),
            &["a"],
            None,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err, DecodeError::NoSvids);
    }
}
