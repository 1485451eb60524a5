//! `verify_x509_svid`: one test per X-* validator rule and per edge case of
//! checklist §3.3 that applies, with certificates minted at test time by the
//! development CA and checked at fixed times.
#![cfg(feature = "issuer")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::RefCell;

use common::{NOW, T0, T1, ca, id, leaf_spec, t, td};
use rustls_pki_types::CertificateDer;
use spiffe_bundle::{X509Bundle, X509BundleSource};
use spiffe_id::TrustDomain;
use spiffe_svid::issuer::{CaSpec, Defect, DevCa, KeyAlgorithm, SvidSpec};
use spiffe_svid::{VerifiedX509Svid, X509SvidError, verify_x509_svid};

fn verify(ca: &DevCa, spec: &SvidSpec) -> Result<VerifiedX509Svid, X509SvidError> {
    let svid = ca.issue(spec).unwrap();
    verify_x509_svid(svid.chain(), &ca.bundle(), t(NOW))
}

fn verify_defect(defect: Defect) -> Result<VerifiedX509Svid, X509SvidError> {
    verify(&ca("example.org"), &leaf_spec().defect(defect))
}

fn verify_uri(uri: &str) -> Result<VerifiedX509Svid, X509SvidError> {
    verify_defect(Defect::UriSan(uri.to_owned()))
}

/// A source with several bundles that records which trust domains it was
/// asked for.
struct RecordingSource {
    bundles: Vec<X509Bundle>,
    asked: RefCell<Vec<TrustDomain>>,
}

impl X509BundleSource for RecordingSource {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.asked.borrow_mut().push(trust_domain.clone());
        self.bundles
            .iter()
            .find(|b| b.trust_domain() == trust_domain)
            .cloned()
    }
}

#[test]
fn edge_01_accepts_leaf_signed_by_root() {
    let ca = ca("example.org");
    let svid = ca.issue(&leaf_spec()).unwrap();
    let bundle = ca.bundle();
    let verified = verify_x509_svid(svid.chain(), &bundle, t(NOW)).unwrap();
    assert_eq!(verified.spiffe_id(), &id("spiffe://example.org/workload"));
    assert_eq!(
        verified.chain(),
        &[svid.leaf().clone(), ca.root_certificate().clone()]
    );
    assert_eq!(verified.expires_at(), t(T1));
    assert_eq!(verified.bundle_generation(), bundle.generation());
}

#[test]
fn edge_02_accepts_leaf_via_intermediate() {
    let root = ca("example.org");
    // The intermediate expires before the leaf: it bounds the path.
    let int = root
        .intermediate(&CaSpec::new().validity(t(0), t(T1 - 10)))
        .unwrap();
    let svid = int.issue(&leaf_spec()).unwrap();
    assert_eq!(svid.chain().len(), 2);
    let verified = verify_x509_svid(svid.chain(), &root.bundle(), t(NOW)).unwrap();
    assert_eq!(
        verified.chain(),
        &[
            svid.leaf().clone(),
            int.certificate().clone(),
            root.root_certificate().clone()
        ]
    );
    assert_eq!(verified.expires_at(), t(T1 - 10));
}

#[test]
fn edge_02_accepts_two_intermediates_presented_in_any_order() {
    let root = ca("example.org");
    let int1 = root.intermediate(&CaSpec::new()).unwrap();
    let int2 = int1.intermediate(&CaSpec::new()).unwrap();
    let svid = int2.issue(&leaf_spec()).unwrap();
    let mut chain = svid.chain().to_vec();
    chain[1..].reverse();
    let verified = verify_x509_svid(&chain, &root.bundle(), t(NOW)).unwrap();
    assert_eq!(verified.chain().len(), 4);
    assert_eq!(&verified.chain()[1], int2.certificate());
}

#[test]
fn edge_03_rejects_empty_chain() {
    let err = verify_x509_svid(&[], &ca("example.org").bundle(), t(NOW)).unwrap_err();
    assert_eq!(err, X509SvidError::EmptyChain);
}

#[test]
fn x_01_edge_04_rejects_leaf_without_uri_san() {
    assert_eq!(
        verify_defect(Defect::NoUriSan).unwrap_err(),
        X509SvidError::NoUriSan
    );
}

#[test]
fn x_02_edge_05_rejects_two_identical_uri_sans() {
    let err = verify_defect(Defect::ExtraUriSan("spiffe://example.org/workload".into()));
    assert_eq!(
        err.unwrap_err(),
        X509SvidError::MultipleUriSans { count: 2 }
    );
}

#[test]
fn x_02_edge_06_rejects_spiffe_plus_https_uri_san() {
    let err = verify_defect(Defect::ExtraUriSan("https://example.org/".into()));
    assert_eq!(
        err.unwrap_err(),
        X509SvidError::MultipleUriSans { count: 2 }
    );
}

#[test]
fn x_03_edge_07_accepts_dns_sans_beside_the_uri_san() {
    let spec = leaf_spec().dns_names(["a.example.org", "b.example.org", "c.example.org"]);
    let verified = verify(&ca("example.org"), &spec).unwrap();
    assert_eq!(
        verified.spiffe_id().as_str(),
        "spiffe://example.org/workload"
    );
}

#[test]
fn x_22_edge_08_rejects_non_spiffe_scheme() {
    let err = verify_uri("sparfe://example.org/workload").unwrap_err();
    assert!(
        matches!(&err, X509SvidError::InvalidSpiffeId { uri, .. } if uri == "sparfe://example.org/workload"),
        "{err:?}"
    );
}

#[test]
fn x_05_edge_09_rejects_leaf_id_without_path() {
    assert_eq!(
        verify_uri("spiffe://example.org").unwrap_err(),
        X509SvidError::LeafIdWithoutPath {
            id: "spiffe://example.org".into()
        }
    );
}

#[test]
fn edge_10_rejects_malformed_spiffe_ids() {
    for uri in [
        "spiffe://example.org/workload/",
        "spiffe://example.org/work%20load",
        "spiffe://Example.org/workload",
        "spiffe://example.org//workload",
        "spiffe://example.org/./workload",
    ] {
        let err = verify_uri(uri).unwrap_err();
        assert!(
            matches!(err, X509SvidError::InvalidSpiffeId { .. }),
            "{uri}: {err:?}"
        );
    }
}

#[test]
fn edge_11_rejects_uppercase_scheme() {
    let err = verify_uri("SPIFFE://example.org/workload").unwrap_err();
    assert!(
        matches!(err, X509SvidError::InvalidSpiffeId { .. }),
        "{err:?}"
    );
}

#[test]
fn x_13_edge_12_rejects_leaf_with_ca_flag() {
    assert_eq!(
        verify_defect(Defect::LeafIsCa).unwrap_err(),
        X509SvidError::LeafIsCa
    );
}

#[test]
fn x_13_accepts_leaf_without_basic_constraints() {
    verify_defect(Defect::NoBasicConstraints).unwrap();
}

#[test]
fn x_14_edge_13_rejects_leaf_with_key_cert_sign() {
    assert_eq!(
        verify_defect(Defect::KeyCertSign).unwrap_err(),
        X509SvidError::LeafWithKeyCertSign
    );
}

#[test]
fn x_14_edge_14_rejects_leaf_with_crl_sign() {
    assert_eq!(
        verify_defect(Defect::CrlSign).unwrap_err(),
        X509SvidError::LeafWithCrlSign
    );
}

#[test]
fn x_17_edge_15_rejects_leaf_without_digital_signature() {
    assert_eq!(
        verify_defect(Defect::NoDigitalSignature).unwrap_err(),
        X509SvidError::LeafWithoutDigitalSignature
    );
}

#[test]
fn x_15_edge_16_rejects_leaf_without_key_usage() {
    assert_eq!(
        verify_defect(Defect::NoKeyUsage).unwrap_err(),
        X509SvidError::LeafWithoutKeyUsage
    );
}

#[test]
fn edge_17_accepts_non_critical_key_usage() {
    verify_defect(Defect::NonCriticalKeyUsage).unwrap();
}

#[test]
fn x_18_edge_18_rejects_leaf_eku_without_client_auth() {
    assert_eq!(
        verify_defect(Defect::ServerAuthOnly).unwrap_err(),
        X509SvidError::LeafExtendedKeyUsage {
            server_auth: true,
            client_auth: false
        }
    );
}

#[test]
fn x_18_edge_19_accepts_leaf_without_eku() {
    verify_defect(Defect::NoEku).unwrap();
}

#[test]
fn x_06_rejects_non_critical_san_with_empty_subject() {
    assert_eq!(
        verify_defect(Defect::NonCriticalSanWithEmptySubject).unwrap_err(),
        X509SvidError::NonCriticalSanWithEmptySubject
    );
}

#[test]
fn edge_20_never_uses_another_trust_domains_bundle() {
    // The leaf is from a.test, but its real root sits in b.test's bundle.
    let a_ca = ca("a.test");
    let svid = a_ca
        .issue(&SvidSpec::new(id("spiffe://a.test/w"), t(T0), t(T1)))
        .unwrap();
    let misfiled =
        X509Bundle::from_der_certificates(td("b.test"), [a_ca.root_certificate().clone()]).unwrap();
    let source = RecordingSource {
        bundles: vec![misfiled],
        asked: RefCell::new(Vec::new()),
    };
    let err = verify_x509_svid(svid.chain(), &source, t(NOW)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::NoBundle {
            trust_domain: td("a.test")
        }
    );
    assert_eq!(*source.asked.borrow(), vec![td("a.test")]);
}

#[test]
fn edge_21_rejects_bundle_holding_another_domains_roots() {
    let a_ca = ca("a.test");
    let b_ca = ca("b.test");
    let svid = a_ca
        .issue(&SvidSpec::new(id("spiffe://a.test/w"), t(T0), t(T1)))
        .unwrap();
    let wrong =
        X509Bundle::from_der_certificates(td("a.test"), [b_ca.root_certificate().clone()]).unwrap();
    let err = verify_x509_svid(svid.chain(), &wrong, t(NOW)).unwrap_err();
    assert_eq!(err, X509SvidError::UnknownIssuer);
}

#[test]
fn edge_22_rejects_empty_bundle() {
    let svid = ca("example.org").issue(&leaf_spec()).unwrap();
    let empty = X509Bundle::empty(td("example.org"));
    let err = verify_x509_svid(svid.chain(), &empty, t(NOW)).unwrap_err();
    assert_eq!(err, X509SvidError::UnknownIssuer);
}

#[test]
fn x_21_rejects_leaf_signed_by_another_ca_of_the_same_domain() {
    let trusted = ca("example.org");
    let other = ca("example.org");
    let svid = other.issue(&leaf_spec()).unwrap();
    let err = verify_x509_svid(svid.chain(), &trusted.bundle(), t(NOW)).unwrap_err();
    assert_eq!(err, X509SvidError::UnknownIssuer);
}

#[test]
fn edge_23_rejects_expired_leaf_one_second_after_not_after() {
    let ca = ca("example.org");
    let svid = ca.issue(&leaf_spec()).unwrap();
    verify_x509_svid(svid.chain(), &ca.bundle(), t(T1)).unwrap();
    let err = verify_x509_svid(svid.chain(), &ca.bundle(), t(T1 + 1)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::Expired {
            at: T1 + 1,
            not_after: T1
        }
    );
}

#[test]
fn edge_23_rejects_path_with_expired_intermediate() {
    let root = ca("example.org");
    let int = root
        .intermediate(&CaSpec::new().validity(t(0), t(T0 + 10)))
        .unwrap();
    let svid = int.issue(&leaf_spec()).unwrap();
    let err = verify_x509_svid(svid.chain(), &root.bundle(), t(NOW)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::Expired {
            at: NOW,
            not_after: T0 + 10
        }
    );
}

#[test]
fn edge_24_rejects_leaf_not_yet_valid() {
    let ca = ca("example.org");
    let svid = ca.issue(&leaf_spec()).unwrap();
    verify_x509_svid(svid.chain(), &ca.bundle(), t(T0)).unwrap();
    let err = verify_x509_svid(svid.chain(), &ca.bundle(), t(T0 - 1)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::NotYetValid {
            at: T0 - 1,
            not_before: T0
        }
    );
}

#[test]
fn edge_25_rejects_intermediate_without_ca_flag() {
    let root = ca("example.org");
    let int = root.intermediate(&CaSpec::new().not_ca()).unwrap();
    let err = verify(&int, &leaf_spec());
    // `verify` uses the intermediate's root bundle.
    assert_eq!(err.unwrap_err(), X509SvidError::IssuerNotCa);
}

#[test]
fn edge_26_rejects_intermediate_without_key_cert_sign() {
    let root = ca("example.org");
    let int = root
        .intermediate(&CaSpec::new().without_key_cert_sign())
        .unwrap();
    assert_eq!(
        verify(&int, &leaf_spec()).unwrap_err(),
        X509SvidError::IssuerWithoutKeyCertSign
    );
}

#[test]
fn edge_27_rejects_exceeded_path_len() {
    let root = ca("example.org");
    let int1 = root.intermediate(&CaSpec::new().path_len(0)).unwrap();
    let int2 = int1.intermediate(&CaSpec::new()).unwrap();
    assert_eq!(
        verify(&int2, &leaf_spec()).unwrap_err(),
        X509SvidError::PathLenConstraintViolated
    );
    // Within the limit it is fine.
    verify(&int1, &leaf_spec()).unwrap();
}

#[test]
fn x_20_edge_28_uri_name_constraints_on_an_intermediate_fail_closed() {
    // Even a constraint that permits the leaf's trust domain rejects it:
    // rustls-webpki 0.103 does not evaluate URI name constraints.
    let root = ca("example.org");
    for permitted in ["example.org", "other.test"] {
        let int = root
            .intermediate(&CaSpec::new().uri_name_constraint(permitted))
            .unwrap();
        assert_eq!(
            verify(&int, &leaf_spec()).unwrap_err(),
            X509SvidError::UriNameConstraintsUnsupported,
            "{permitted}"
        );
    }
}

#[test]
fn x_20_uri_name_constraints_on_the_root_fail_closed() {
    let root = DevCa::root(
        td("example.org"),
        &CaSpec::new().uri_name_constraint("example.org"),
    )
    .unwrap();
    assert_eq!(
        verify(&root, &leaf_spec()).unwrap_err(),
        X509SvidError::UriNameConstraintsUnsupported
    );
}

#[test]
fn x_19_rejects_intermediate_restricted_to_server_auth() {
    let root = ca("example.org");
    let int = root
        .intermediate(&CaSpec::new().server_auth_only())
        .unwrap();
    assert_eq!(
        verify(&int, &leaf_spec()).unwrap_err(),
        X509SvidError::ExtendedKeyUsageNotAllowed
    );
}

#[test]
fn edge_30_rejects_chain_not_leaf_first() {
    let root = ca("example.org");
    let int = root.intermediate(&CaSpec::new()).unwrap();
    let svid = int.issue(&leaf_spec()).unwrap();
    let swapped = vec![svid.chain()[1].clone(), svid.chain()[0].clone()];
    // chain[0] is taken as the leaf: the CA's ID has no path.
    let err = verify_x509_svid(&swapped, &root.bundle(), t(NOW)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::LeafIdWithoutPath {
            id: "spiffe://example.org".into()
        }
    );
}

#[test]
fn edge_31_accepts_extra_unrelated_certificates() {
    let root = ca("example.org");
    let stranger = ca("stranger.test");
    let svid = root.issue(&leaf_spec()).unwrap();
    let chain = vec![
        svid.leaf().clone(),
        stranger.root_certificate().clone(),
        stranger
            .intermediate(&CaSpec::new())
            .unwrap()
            .certificate()
            .clone(),
    ];
    let verified = verify_x509_svid(&chain, &root.bundle(), t(NOW)).unwrap();
    assert_eq!(verified.chain().len(), 2);
}

#[test]
fn edge_32_accepts_root_included_in_the_chain() {
    let root = ca("example.org");
    let int = root.intermediate(&CaSpec::new()).unwrap();
    let svid = int.issue(&leaf_spec()).unwrap();
    let mut chain = svid.chain().to_vec();
    chain.push(root.root_certificate().clone());
    verify_x509_svid(&chain, &root.bundle(), t(NOW)).unwrap();
}

#[test]
fn edge_33_rejects_corrupt_leaf_der() {
    let root = ca("example.org");
    let svid = root.issue(&leaf_spec()).unwrap();
    let mut der = svid.leaf().to_vec();
    der.truncate(der.len() / 2);
    let err = verify_x509_svid(&[CertificateDer::from(der)], &root.bundle(), t(NOW)).unwrap_err();
    assert!(
        matches!(err, X509SvidError::MalformedCertificate { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn bad_signature_on_leaf_is_rejected() {
    let root = ca("example.org");
    let svid = root.issue(&leaf_spec()).unwrap();
    let mut der = svid.leaf().to_vec();
    // Flip a bit in the last byte of the signature value.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = verify_x509_svid(&[CertificateDer::from(der)], &root.bundle(), t(NOW)).unwrap_err();
    assert_eq!(err, X509SvidError::BadSignature);
}

#[test]
fn x_11_edge_34_rejects_signing_certificate_presented_as_leaf() {
    let root = ca("example.org");
    let int = root.intermediate(&CaSpec::new()).unwrap();
    let err = verify_x509_svid(&[int.certificate().clone()], &root.bundle(), t(NOW)).unwrap_err();
    // Its ID has no path; X-13 (`cA=true`) would reject it next.
    assert_eq!(
        err,
        X509SvidError::LeafIdWithoutPath {
            id: "spiffe://example.org".into()
        }
    );
}

#[test]
fn x_21_accepts_every_key_algorithm() {
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let root = DevCa::root(td("example.org"), &CaSpec::new().key(alg)).unwrap();
        verify(&root, &leaf_spec().key(alg)).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
    }
}

#[cfg(feature = "ring")]
#[test]
fn ring_provider_verifies_the_same_chain() {
    let root = ca("example.org");
    let svid = root.issue(&leaf_spec()).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let verified = spiffe_svid::verify_x509_svid_with_provider(
        svid.chain(),
        &root.bundle(),
        t(NOW),
        &provider,
    )
    .unwrap();
    assert_eq!(
        verified.spiffe_id().as_str(),
        "spiffe://example.org/workload"
    );
}

#[test]
fn verifies_through_dyn_bundle_source() {
    let root = ca("example.org");
    let svid = root.issue(&leaf_spec()).unwrap();
    let source: Box<dyn X509BundleSource> = Box::new(root.bundle());
    verify_x509_svid(svid.chain(), source.as_ref(), t(NOW)).unwrap();
}

#[test]
fn x_20_long_uri_name_constraint_is_well_formed_and_fails_closed() {
    // Over 127 bytes: exercises the long DER length form of the issuer's
    // hand-encoded NameConstraints; webpki parses it and still fails closed.
    let long = format!("{}.example.org", "a".repeat(200));
    let root = ca("example.org");
    let int = root
        .intermediate(&CaSpec::new().uri_name_constraint(long))
        .unwrap();
    assert_eq!(
        verify(&int, &leaf_spec()).unwrap_err(),
        X509SvidError::UriNameConstraintsUnsupported
    );
}

#[test]
fn issuer_refuses_times_after_year_9999() {
    let spec = SvidSpec::new(id("spiffe://example.org/w"), t(T0), t(u64::MAX / 2));
    let err = ca("example.org").issue(&spec).unwrap_err();
    assert_eq!(
        err,
        spiffe_svid::issuer::IssueError::TimeOutOfRange { secs: u64::MAX / 2 }
    );
}
