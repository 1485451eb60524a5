//! The X-* rules that bind issuers, checked on what the development CA
//! (feature `issuer`) mints: its roots, intermediates and leaves must be
//! spec-valid X509-SVIDs, since every crate's tests and the local agent rely
//! on them. Each certificate is read back with x509-parser, independently of
//! the code that wrote it.
#![cfg(feature = "issuer")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{NOW, T0, T1, ca, id, t, td};
use spiffe_svid::issuer::{CaSpec, DevCa, KeyAlgorithm, SvidSpec};
use spiffe_svid::verify_x509_svid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
};

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

fn uri_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn extension_is_critical(
    cert: &X509Certificate<'_>,
    oid: &x509_parser::oid_registry::Oid<'_>,
) -> bool {
    cert.extensions()
        .iter()
        .find(|e| &e.oid == oid)
        .unwrap()
        .critical
}

/// A root, an intermediate under it and a leaf under the intermediate, for
/// each key algorithm the CA offers.
fn hierarchies() -> Vec<(DevCa, DevCa, spiffe_svid::issuer::IssuedSvid)> {
    [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ]
    .into_iter()
    .map(|key| {
        let spec = CaSpec::new().validity(t(T0 - 60), t(T1 + 60)).key(key);
        let root = DevCa::root(td("example.org"), &spec).unwrap();
        let intermediate = root.intermediate(&spec).unwrap();
        let leaf = intermediate
            .issue(&SvidSpec::new(id("spiffe://example.org/ns/a/sa/b"), t(T0), t(T1)).key(key))
            .unwrap();
        (root, intermediate, leaf)
    })
    .collect()
}

#[test]
fn x_01_x_04_leaves_have_exactly_one_uri_san_with_a_non_root_path() {
    for (root, _, leaf) in hierarchies() {
        let cert = parse(leaf.leaf());
        assert_eq!(uri_sans(&cert), ["spiffe://example.org/ns/a/sa/b"]);
        // And they verify against the root's bundle.
        verify_x509_svid(leaf.chain(), &root.bundle(), t(NOW)).unwrap();
    }
}

#[test]
fn x_04_the_ca_refuses_to_issue_a_leaf_for_a_trust_domain_id() {
    let ca = ca("example.org");
    let spec = SvidSpec::new(id("spiffe://example.org"), t(T0), t(T1));
    assert!(matches!(
        ca.issue(&spec),
        Err(spiffe_svid::issuer::IssueError::LeafIdWithoutPath { .. })
    ));
}

#[test]
fn x_06_an_empty_subject_comes_with_a_critical_san() {
    for (_, _, leaf) in hierarchies() {
        let cert = parse(leaf.leaf());
        if cert.subject().iter().next().is_none() {
            assert!(extension_is_critical(&cert, &OID_X509_EXT_SUBJECT_ALT_NAME));
        }
    }
}

#[test]
fn x_07_x_16_signing_certificates_are_cas_with_key_cert_sign() {
    for (root, intermediate, _) in hierarchies() {
        for der in [root.certificate(), intermediate.certificate()] {
            let cert = parse(der);
            let bc = cert.basic_constraints().unwrap().unwrap();
            assert!(bc.value.ca, "cA=true");
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(ku.key_cert_sign(), "keyCertSign");
        }
    }
}

#[test]
fn x_08_x_09_x_10_signing_certificates_are_svids_of_their_trust_domain_without_path() {
    for (root, intermediate, _) in hierarchies() {
        for der in [root.certificate(), intermediate.certificate()] {
            assert_eq!(uri_sans(&parse(der)), ["spiffe://example.org"]);
        }
    }
}

#[test]
fn x_12_a_signing_certificate_may_set_path_len_and_it_is_enforced() {
    let validity = CaSpec::new().validity(t(T0 - 60), t(T1 + 60));
    let root = DevCa::root(td("example.org"), &validity).unwrap();
    let limited = root.intermediate(&validity.clone().path_len(0)).unwrap();
    let cert = parse(limited.certificate());
    assert_eq!(
        cert.basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .path_len_constraint,
        Some(0)
    );
    let spec = SvidSpec::new(id("spiffe://example.org/w"), t(T0), t(T1));
    // The limited CA may sign leaves...
    let direct = limited.issue(&spec).unwrap();
    verify_x509_svid(direct.chain(), &root.bundle(), t(NOW)).unwrap();
    // ...but not through another CA below it.
    let below = limited.intermediate(&validity).unwrap();
    let too_deep = below.issue(&spec).unwrap();
    assert!(verify_x509_svid(too_deep.chain(), &root.bundle(), t(NOW)).is_err());
}

#[test]
fn x_13_x_15_x_17_leaves_are_not_cas_and_carry_critical_digital_signature_only() {
    for (_, _, leaf) in hierarchies() {
        let cert = parse(leaf.leaf());
        if let Some(bc) = cert.basic_constraints().unwrap() {
            assert!(!bc.value.ca);
        }
        assert!(extension_is_critical(&cert, &OID_X509_EXT_KEY_USAGE));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature());
        assert!(!ku.key_cert_sign() && !ku.crl_sign());
    }
}

#[test]
fn x_15_signing_certificates_have_a_critical_key_usage() {
    for (root, intermediate, _) in hierarchies() {
        for der in [root.certificate(), intermediate.certificate()] {
            let cert = parse(der);
            assert!(extension_is_critical(&cert, &OID_X509_EXT_KEY_USAGE));
            assert!(extension_is_critical(
                &cert,
                &OID_X509_EXT_BASIC_CONSTRAINTS
            ));
        }
    }
}

#[test]
fn x_18_leaf_eku_lists_server_and_client_auth() {
    for (_, _, leaf) in hierarchies() {
        let cert = parse(leaf.leaf());
        if let Some(eku) = cert.extended_key_usage().unwrap() {
            assert!(eku.value.server_auth && eku.value.client_auth);
        }
    }
}

#[test]
fn x_29_usage_bits_follow_appendix_a() {
    for (root, intermediate, leaf) in hierarchies() {
        let leaf_cert = parse(leaf.leaf());
        let ku = leaf_cert.key_usage().unwrap().unwrap().value;
        assert!(!ku.key_cert_sign() && !ku.crl_sign(), "leaf: no CA bits");
        for der in [root.certificate(), intermediate.certificate()] {
            let cert = parse(der);
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(
                !ku.digital_signature() && !ku.key_agreement() && !ku.key_encipherment(),
                "signing certificate: no leaf bits"
            );
            // No extension the CA writes is one a validator could not know.
            for ext in cert.extensions() {
                assert!(
                    !matches!(
                        ext.parsed_extension(),
                        ParsedExtension::UnsupportedExtension { .. }
                    ) || !ext.critical,
                    "unknown critical extension {}",
                    ext.oid
                );
            }
        }
    }
}

mod jwt_issuer {
    use std::time::{Duration, SystemTime};

    use rustls_pki_types::UnixTime;
    use spiffe_id::{SpiffeId, TrustDomain};
    use spiffe_svid::issuer::{IssueError, JwtIssuer};
    use spiffe_svid::{JwsAlgorithm, JwtSvid};

    fn issuer() -> JwtIssuer {
        JwtIssuer::new(TrustDomain::new("example.org").unwrap()).unwrap()
    }

    #[test]
    fn minted_tokens_validate_against_its_bundle_only() {
        let issuer = issuer();
        let id = SpiffeId::parse("spiffe://example.org/ns/a/sa/b").unwrap();
        let expires = SystemTime::now() + Duration::from_secs(600);
        let token = issuer.issue(&id, &["x", "y"], expires).unwrap();
        let svid =
            JwtSvid::parse_and_validate(&token, &issuer.bundle(), &["y"], UnixTime::now()).unwrap();
        assert_eq!(svid.spiffe_id(), &id);
        assert_eq!(svid.audience(), ["x", "y"]);
        assert_eq!(svid.algorithm(), JwsAlgorithm::ES256);
        assert_eq!(svid.key_id(), Some(issuer.kid()));
        // Another issuer of the same trust domain has another key.
        let other = self::issuer();
        assert_ne!(other.kid(), issuer.kid());
        assert!(
            JwtSvid::parse_and_validate(&token, &other.bundle(), &["y"], UnixTime::now()).is_err()
        );
    }

    #[test]
    fn writes_iss_only_when_configured() {
        let id = SpiffeId::parse("spiffe://example.org/web").unwrap();
        let expires = SystemTime::now() + Duration::from_secs(600);
        let plain = issuer();
        let token = plain.issue(&id, &["x"], expires).unwrap();
        let svid =
            JwtSvid::parse_and_validate(&token, &plain.bundle(), &["x"], UnixTime::now()).unwrap();
        assert!(svid.claims().get("iss").is_none());
        let with_iss = issuer().with_issuer("https://oidc.example.org");
        assert_eq!(with_iss.issuer(), Some("https://oidc.example.org"));
        let token = with_iss.issue(&id, &["x"], expires).unwrap();
        let svid = JwtSvid::parse_and_validate(&token, &with_iss.bundle(), &["x"], UnixTime::now())
            .unwrap();
        assert_eq!(svid.claims()["iss"], "https://oidc.example.org");
    }

    #[test]
    fn refuses_foreign_ids_and_empty_audiences() {
        let issuer = issuer();
        let expires = SystemTime::now() + Duration::from_secs(600);
        let foreign = SpiffeId::parse("spiffe://other.org/web").unwrap();
        assert!(matches!(
            issuer.issue(&foreign, &["x"], expires),
            Err(IssueError::InvalidName { .. })
        ));
        let id = SpiffeId::parse("spiffe://example.org/web").unwrap();
        assert!(issuer.issue(&id, &[], expires).is_err());
        assert!(issuer.issue(&id, &[""], expires).is_err());
    }
}
