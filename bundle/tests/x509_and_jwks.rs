//! X.509 bundles (PEM, DER, trust anchors) and plain JWKS (Workload API).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rustls_pki_types::CertificateDer;
use serde_json::json;
use spiffe_bundle::{
    BundleError, EcCurve, JwtAuthority, JwtBundle, Mode, ParseOptions, PublicKey, X509Bundle,
};

#[test]
fn trust_anchors_equal_webpki_extraction() {
    for cert in [ca_ec256(), ca_rsa(), ca_ed25519(), ca_constrained()] {
        let bundle = X509Bundle::from_der_certificates(td(), [cert.clone()]).unwrap();
        let der = CertificateDer::from(cert);
        let theirs = webpki::anchor_from_trusted_cert(&der).unwrap();
        assert_eq!(&bundle.trust_anchors()[0], &theirs);
        assert_eq!(bundle.authorities()[0].trust_anchor(), &theirs);
    }
    let constrained = X509Bundle::from_der_certificates(td(), [ca_constrained()]).unwrap();
    assert!(constrained.trust_anchors()[0].name_constraints.is_some());
}

#[test]
fn pem_round_trip() {
    let certs = [ca_ec256(), ca_rsa(), ca_ed25519()];
    let bundle = X509Bundle::from_der_certificates(td(), certs.clone()).unwrap();
    let pem = bundle.to_pem();
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 3);
    assert!(pem.lines().all(|l| l.len() <= 64));
    let again = X509Bundle::parse_pem(td(), pem.as_bytes()).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(again.to_pem(), pem);
    // Other PEM sections and text around are skipped.
    let mixed =
        format!("comment\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{pem}");
    assert_eq!(
        X509Bundle::parse_pem(td(), mixed.as_bytes()).unwrap(),
        bundle
    );
    assert!(X509Bundle::parse_pem(td(), b"").unwrap().is_empty());
}

#[test]
fn der_round_trip_splits_by_tlv_headers() {
    let certs = [ca_ec256(), ca_rsa(), ca_ec384()];
    let bundle = X509Bundle::from_der_certificates(td(), certs.clone()).unwrap();
    let der = bundle.to_der();
    assert_eq!(der, certs.concat());
    let again = X509Bundle::parse_der(td(), &der).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(again.trust_anchors().len(), 3);
    assert!(X509Bundle::parse_der(td(), b"").unwrap().is_empty());
    assert!(again.contains(&certs[1]));
}

#[test]
fn repeated_certificates_kept_once() {
    let c = ca_ec256();
    let b = X509Bundle::from_der_certificates(td(), [c.clone(), c.clone()]).unwrap();
    assert_eq!(b.len(), 1);
}

#[test]
fn bad_der_is_reported_with_offset() {
    let good = ca_ec256();
    let mut truncated = good.clone();
    truncated.extend_from_slice(&good[..good.len() - 1]);
    assert_eq!(
        X509Bundle::parse_der(td(), &truncated),
        Err(BundleError::Der {
            offset: good.len(),
            reason: "contents are truncated"
        })
    );
    let mut not_seq = good.clone();
    not_seq.extend_from_slice(&[0x04, 0x01, 0x00]);
    assert!(matches!(
        X509Bundle::parse_der(td(), &not_seq),
        Err(BundleError::Der { .. })
    ));
    // A SEQUENCE that is not a certificate, as the second element.
    let mut junk = good.clone();
    junk.extend_from_slice(&[0x30, 0x03, 0x02, 0x01, 0x00]);
    assert!(matches!(
        X509Bundle::parse_der(td(), &junk),
        Err(BundleError::InvalidCertificate { index: 1, .. })
    ));
}

#[test]
fn pem_without_any_certificate_is_an_error_unless_blank() {
    let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    for input in [&key_only[..], b"not a pem file\n"] {
        assert!(matches!(
            X509Bundle::parse_pem(td(), input),
            Err(BundleError::Pem { .. })
        ));
    }
    for blank in [&b""[..], b"\n  \n"] {
        assert!(X509Bundle::parse_pem(td(), blank).unwrap().is_empty());
    }
}

#[test]
fn bad_pem_is_reported() {
    let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n";
    assert!(matches!(
        X509Bundle::parse_pem(td(), pem.as_bytes()),
        Err(BundleError::Pem { .. })
    ));
    let not_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        X509Bundle::parse_pem(td(), not_cert.as_bytes()),
        Err(BundleError::InvalidCertificate { index: 0, .. })
    ));
}

#[test]
fn certificate_limits() {
    let der = [ca_ec256(), ca_rsa()].concat();
    let opts = ParseOptions::default().with_max_keys(1);
    assert_eq!(
        X509Bundle::parse_der_with(td(), &der, &opts),
        Err(BundleError::TooManyKeys { count: 2, limit: 1 })
    );
    let pem = X509Bundle::parse_der(td(), &der).unwrap().to_pem();
    assert!(matches!(
        X509Bundle::parse_pem_with(td(), pem.as_bytes(), &opts),
        Err(BundleError::TooManyKeys { .. })
    ));
    let tiny = ParseOptions::default().with_max_bytes(10);
    assert!(matches!(
        X509Bundle::parse_der_with(td(), &der, &tiny),
        Err(BundleError::TooLarge { .. })
    ));
}

// ---- JWKS ------------------------------------------------------------------

/// The shape SPIRE's FetchJWTBundles sends: no `use`, no `spiffe_*`.
fn workload_api_jwks() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "keys": [jwks_key("k256", &jwt_key_p256()), jwks_key("krsa", &jwt_key_rsa())]
    }))
    .unwrap()
}

#[test]
fn jwks_without_use_is_read() {
    let b = JwtBundle::parse_jwks(td(), &workload_api_jwks()).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(
        b.get("k256").unwrap().public_key().ec_curve(),
        Some(EcCurve::P256)
    );
    assert_eq!(b.get("krsa").unwrap().public_key().rsa_bits(), Some(2048));
}

#[test]
fn jwks_does_not_filter_by_use() {
    let json = serde_json::to_vec(&json!({"keys": [
        with(jwks_key("a", &jwt_key_p256()), "use", json!("sig")),
        with(jwks_key("b", &jwt_key_p256()), "use", json!("jwt-svid")),
        jwks_key("c", &jwt_key_p384()),
    ]}))
    .unwrap();
    assert_eq!(JwtBundle::parse_jwks(td(), &json).unwrap().len(), 3);
}

#[test]
fn jwks_requires_kid_in_both_modes() {
    let json = serde_json::to_vec(&json!({"keys": [jwks_key("a", &jwt_key_p256()), without(jwks_key("b", &jwt_key_p256()), "kid")]})).unwrap();
    for mode in [Mode::Lenient, Mode::Strict] {
        let opts = ParseOptions::default().with_mode(mode);
        assert_eq!(
            JwtBundle::parse_jwks_with(td(), &json, &opts),
            Err(BundleError::MissingKid { index: 1 })
        );
    }
}

#[test]
fn jwks_unknown_kty_skipped_lenient_rejected_strict() {
    let json = serde_json::to_vec(&json!({"keys": [
        {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
        jwks_key("a", &jwt_key_p256()),
    ]}))
    .unwrap();
    assert_eq!(JwtBundle::parse_jwks(td(), &json).unwrap().len(), 1);
    assert!(matches!(
        JwtBundle::parse_jwks_with(td(), &json, &ParseOptions::strict()),
        Err(BundleError::UnknownKty { index: 0, .. })
    ));
}

#[test]
fn jwks_rejects_duplicate_kid_and_members() {
    let json = serde_json::to_vec(
        &json!({"keys": [jwks_key("a", &jwt_key_p256()), jwks_key("a", &jwt_key_rsa())]}),
    )
    .unwrap();
    assert_eq!(
        JwtBundle::parse_jwks(td(), &json),
        Err(BundleError::DuplicateKid {
            index: 1,
            kid: "a".into()
        })
    );
    assert!(matches!(
        JwtBundle::parse_jwks(td(), br#"{"keys":[],"keys":[]}"#),
        Err(BundleError::DuplicateMember { .. })
    ));
    assert_eq!(
        JwtBundle::parse_jwks(td(), br#"{}"#),
        Err(BundleError::MissingKeys)
    );
}

#[test]
fn jwks_round_trip_has_no_use() {
    let b = JwtBundle::parse_jwks(td(), &workload_api_jwks()).unwrap();
    let out = b.to_jwks();
    assert!(!out.contains("\"use\""));
    assert!(
        out.starts_with(r#"{"keys":[{"crv":"P-256","kid":"k256","kty":"EC","x":""#),
        "{out}"
    );
    let again = JwtBundle::parse_jwks(td(), out.as_bytes()).unwrap();
    assert_eq!(again, b);
    assert_eq!(again.to_jwks(), out);
}

#[test]
fn jwt_authority_spki_matches_certificate_spki() {
    // The hand-written SPKI encoder gives the same DER as the certificate.
    for cert in [ca_ec256(), ca_ec384(), ca_rsa()] {
        let bundle = X509Bundle::from_der_certificates(td(), [cert.clone()]).unwrap();
        let key = bundle.authorities()[0].public_key().clone();
        let a = JwtAuthority::new("k", key, None).unwrap();
        let anchor_spki = bundle.trust_anchors()[0].subject_public_key_info.as_ref();
        let ours = a.spki();
        // The anchor holds the SPKI contents without the outer SEQUENCE.
        assert!(ours.as_ref().ends_with(anchor_spki));
        let (_, x509_cert) = x509_parser::parse_x509_certificate(&cert).unwrap();
        assert_eq!(ours.as_ref(), x509_cert.tbs_certificate.subject_pki.raw);
        assert_eq!(
            a.subject_public_key(),
            x509_cert
                .tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .as_ref()
        );
    }
}

#[test]
fn jwt_authority_refuses_ed25519_and_empty_kid() {
    let ed = key_of(&ca_ed25519());
    assert!(matches!(
        JwtAuthority::new("k", ed, None),
        Err(BundleError::InvalidKey { .. })
    ));
    assert_eq!(
        JwtAuthority::new("", jwt_key_p256(), None),
        Err(BundleError::MissingKid { index: 0 })
    );
}

#[test]
fn p521_coordinates_are_66_bytes() {
    let key = PublicKey::ec(EcCurve::P521, &[1; 66], &[2; 66]).unwrap();
    assert!(PublicKey::ec(EcCurve::P521, &[1; 65], &[2; 66]).is_err());
    let a = JwtAuthority::new("p521", key, Some("ES512".into())).unwrap();
    assert_eq!(a.subject_public_key().len(), 133);
    let b = JwtBundle::new(td(), [a]).unwrap();
    let again = JwtBundle::parse_jwks(td(), b.to_jwks().as_bytes()).unwrap();
    assert_eq!(again, b);
    assert_eq!(again.get("p521").unwrap().alg(), Some("ES512"));
}

#[test]
fn generations_are_unique_and_shared_by_clones() {
    let a = X509Bundle::empty(td());
    let b = X509Bundle::empty(td());
    assert_ne!(a.generation(), b.generation());
    assert_eq!(a.clone().generation(), a.generation());
    assert_eq!(a, b, "equality ignores the generation");
    let j1 = JwtBundle::empty(td());
    let j2 = JwtBundle::empty(td());
    assert_ne!(j1.generation(), j2.generation());
}

/// The Workload API keys `federated_bundles` (X.509, concatenated DER) and
/// `JWTBundlesResponse.bundles` (JWKS) by the trust domain's ID,
/// `spiffe://td`, while SPIRE and go-spiffe clients also accept a bare name:
/// both key forms give the same trust domain and the same bundle.
#[test]
fn workload_api_bundle_keys_accept_spiffe_id_and_bare_name() {
    let der = [ca_ec256(), ca_rsa()].concat();
    let jwks = workload_api_jwks();
    let mut x509 = Vec::new();
    let mut jwt = Vec::new();
    for key in ["spiffe://example.org", "example.org"] {
        let trust_domain = spiffe_id::TrustDomain::parse(key).unwrap();
        assert_eq!(trust_domain, td());
        x509.push(X509Bundle::parse_der(trust_domain.clone(), &der).unwrap());
        jwt.push(JwtBundle::parse_jwks(trust_domain, &jwks).unwrap());
    }
    assert_eq!(x509[0], x509[1]);
    assert_eq!(x509[0].len(), 2);
    assert_eq!(jwt[0], jwt[1]);
    assert!(!jwt[0].is_empty());
    // An invalid ID as a key is refused; a valid ID with a path gives its
    // trust domain, as go-spiffe's TrustDomainFromString does.
    assert!(spiffe_id::TrustDomain::parse("spiffe://example.org/").is_err());
    assert_eq!(
        spiffe_id::TrustDomain::parse("spiffe://example.org/x").unwrap(),
        td()
    );
}
