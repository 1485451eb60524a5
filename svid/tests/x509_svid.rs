//! Loading an X509Svid (chain + PKCS#8 key) from DER and PEM.
#![cfg(feature = "issuer")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ca, leaf_spec};
use rustls_pki_types::CertificateDer;
use spiffe_svid::issuer::{CaSpec, Defect, KeyAlgorithm};
use spiffe_svid::{X509Svid, X509SvidError};

#[test]
fn loads_from_der_list_with_every_key_algorithm() {
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let issued = ca("example.org").issue(&leaf_spec().key(alg)).unwrap();
        let svid = X509Svid::from_der_list(issued.chain().to_vec(), issued.key_der())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/workload");
        assert_eq!(svid.leaf(), issued.leaf());
        assert_eq!(svid.private_key().secret_der(), issued.key_der());
        assert_eq!(svid.expires_at(), common::t(common::T1));
    }
}

#[test]
fn loads_from_concatenated_der_with_intermediate() {
    let root = ca("example.org");
    let int = root.intermediate(&CaSpec::new()).unwrap();
    let issued = int.issue(&leaf_spec()).unwrap();
    let concatenated: Vec<u8> = issued.chain().iter().flat_map(|c| c.to_vec()).collect();
    let svid = X509Svid::from_der(&concatenated, issued.key_der()).unwrap();
    assert_eq!(svid.chain(), issued.chain());
}

#[test]
fn loads_from_pem_in_two_files_or_one_in_either_order() {
    let issued = ca("example.org")
        .intermediate(&CaSpec::new())
        .unwrap()
        .issue(&leaf_spec())
        .unwrap();
    let two =
        X509Svid::from_pem(issued.chain_pem().as_bytes(), issued.key_pem().as_bytes()).unwrap();
    assert_eq!(two.chain(), issued.chain());
    let certs_then_key = format!("{}{}", issued.chain_pem(), issued.key_pem());
    let key_then_certs = format!("{}{}", issued.key_pem(), issued.chain_pem());
    for text in [certs_then_key, key_then_certs] {
        let svid = X509Svid::from_pem(text.as_bytes(), b"").unwrap();
        assert_eq!(svid.chain(), issued.chain());
    }
}

#[test]
fn rejects_key_of_another_svid() {
    let ca = ca("example.org");
    let a = ca.issue(&leaf_spec()).unwrap();
    let b = ca.issue(&leaf_spec()).unwrap();
    let err = X509Svid::from_der_list(a.chain().to_vec(), b.key_der()).unwrap_err();
    assert_eq!(err, X509SvidError::KeyMismatch);
}

#[test]
fn rejects_key_of_another_algorithm() {
    let ca = ca("example.org");
    let a = ca.issue(&leaf_spec()).unwrap();
    let b = ca.issue(&leaf_spec().key(KeyAlgorithm::Ed25519)).unwrap();
    let err = X509Svid::from_der_list(a.chain().to_vec(), b.key_der()).unwrap_err();
    assert_eq!(err, X509SvidError::KeyMismatch);
}

#[test]
fn rejects_garbage_key() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let err = X509Svid::from_der_list(issued.chain().to_vec(), b"not a key").unwrap_err();
    assert!(
        matches!(err, X509SvidError::InvalidPrivateKey { .. }),
        "{err:?}"
    );
}

#[test]
fn rejects_non_pkcs8_key_sections() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    for (label, found) in [
        ("EC PRIVATE KEY", "SEC1 EC key"),
        ("RSA PRIVATE KEY", "PKCS#1 RSA key"),
    ] {
        let relabelled = issued.key_pem().replace("PRIVATE KEY", label);
        let err =
            X509Svid::from_pem(issued.chain_pem().as_bytes(), relabelled.as_bytes()).unwrap_err();
        assert_eq!(err, X509SvidError::PrivateKeyNotPkcs8 { found });
    }
}

#[test]
fn rejects_missing_or_repeated_parts() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let pem = issued.chain_pem().as_bytes();
    let key = issued.key_pem().as_bytes();
    assert_eq!(
        X509Svid::from_pem(pem, b"").unwrap_err(),
        X509SvidError::NoPrivateKey
    );
    assert_eq!(
        X509Svid::from_pem(key, b"").unwrap_err(),
        X509SvidError::NoCertificates
    );
    assert_eq!(
        X509Svid::from_pem(
            pem,
            format!("{}{}", issued.key_pem(), issued.key_pem()).as_bytes()
        )
        .unwrap_err(),
        X509SvidError::MultiplePrivateKeys
    );
    assert_eq!(
        X509Svid::from_der_list(Vec::new(), issued.key_der()).unwrap_err(),
        X509SvidError::NoCertificates
    );
    let err = X509Svid::from_pem(b"-----BEGIN CERTIFICATE-----\nnot base64!\n", b"").unwrap_err();
    assert!(matches!(err, X509SvidError::Pem { .. }), "{err:?}");
}

#[test]
fn rejects_corrupt_concatenated_der() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let mut der = issued.leaf().to_vec();
    der.extend_from_slice(&[0x30, 0x03, 0x01]);
    let err = X509Svid::from_der(&der, issued.key_der()).unwrap_err();
    assert!(
        matches!(err, X509SvidError::MalformedCertificate { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn rejects_leaf_profile_violations() {
    let ca = ca("example.org");
    for (defect, expected) in [
        (Defect::LeafIsCa, X509SvidError::LeafIsCa),
        (Defect::KeyCertSign, X509SvidError::LeafWithKeyCertSign),
        (
            Defect::NoDigitalSignature,
            X509SvidError::LeafWithoutDigitalSignature,
        ),
        (Defect::NoUriSan, X509SvidError::NoUriSan),
    ] {
        let issued = ca.issue(&leaf_spec().defect(defect)).unwrap();
        let err = X509Svid::from_der_list(issued.chain().to_vec(), issued.key_der()).unwrap_err();
        assert_eq!(err, expected);
    }
}

#[test]
fn rejects_signing_certificate_that_is_not_a_ca() {
    let ca = ca("example.org");
    let a = ca.issue(&leaf_spec()).unwrap();
    let b = ca.issue(&leaf_spec()).unwrap();
    let chain = vec![a.leaf().clone(), b.leaf().clone()];
    let err = X509Svid::from_der_list(chain, a.key_der()).unwrap_err();
    assert_eq!(err, X509SvidError::SigningCertNotCa { index: 1 });
}

#[test]
fn rejects_signing_certificate_without_key_cert_sign() {
    let int = ca("example.org")
        .intermediate(&CaSpec::new().without_key_cert_sign())
        .unwrap();
    let issued = int.issue(&leaf_spec()).unwrap();
    let err = X509Svid::from_der_list(issued.chain().to_vec(), issued.key_der()).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::SigningCertWithoutKeyCertSign { index: 1 }
    );
}

#[test]
fn debug_never_shows_key_material() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let svid = issued.to_x509_svid().unwrap();
    let shown = format!("{svid:?} {issued:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let body: String = issued
        .key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for chunk in body.as_bytes().chunks(16) {
        assert!(!shown.contains(std::str::from_utf8(chunk).unwrap()));
    }
    let hex: String = issued.key_der()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&hex));
    assert!(!shown.contains(&format!("{:?}", &issued.key_der()[..8])));
}

#[test]
fn clones_share_the_key() {
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let svid = issued.to_x509_svid().unwrap();
    let clone = svid.clone();
    assert_eq!(clone.private_key(), svid.private_key());
    assert_eq!(clone.chain(), svid.chain());
    let _: &CertificateDer<'static> = clone.leaf();
}
