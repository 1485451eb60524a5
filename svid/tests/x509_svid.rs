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

/// Overwrites the private part of a PKCS#8 document while leaving the public
/// key it carries alone: the key match passes without the provider, and
/// the provider refuses the key when it first loads it.
fn break_private_part(alg: KeyAlgorithm, key: &[u8]) -> Vec<u8> {
    let mut key = key.to_vec();
    // Find the private scalar / seed / modulus-after-version by its header.
    let (header, len): (&[u8], usize) = match alg {
        KeyAlgorithm::EcdsaP256 => (&[0x02, 0x01, 0x01, 0x04, 0x20], 32),
        KeyAlgorithm::EcdsaP384 => (&[0x02, 0x01, 0x01, 0x04, 0x30], 48),
        KeyAlgorithm::Ed25519 => (&[0x04, 0x22, 0x04, 0x20], 32),
        // The private exponent d follows n and e; break its top octets.
        KeyAlgorithm::Rsa2048 => (&[0x02, 0x03, 0x01, 0x00, 0x01, 0x02, 0x82, 0x01], 40),
        _ => unreachable!(),
    };
    let at = key
        .windows(header.len())
        .position(|w| w == header)
        .unwrap_or_else(|| panic!("{alg:?}: no private part found"))
        + header.len();
    let at = if alg == KeyAlgorithm::Rsa2048 {
        at + 2
    } else {
        at
    };
    for b in &mut key[at..at + len] {
        *b = 0xff;
    }
    key
}

#[test]
fn key_carrying_its_public_key_is_loaded_by_the_provider_only_when_needed() {
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let issued = ca("example.org").issue(&leaf_spec().key(alg)).unwrap();
        // A good key: the signing key loads, once, and clones share it.
        let svid = X509Svid::from_der_list(issued.chain().to_vec(), issued.key_der()).unwrap();
        let key = svid
            .signing_key()
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(std::sync::Arc::ptr_eq(
            &key,
            &svid.clone().signing_key().unwrap()
        ));
        assert_eq!(
            key.public_key().unwrap().as_ref(),
            x509_parser::parse_x509_certificate(issued.leaf())
                .unwrap()
                .1
                .tbs_certificate
                .subject_pki
                .raw
        );

        // A broken private part behind the right public key: accepted when
        // built (the provider is not asked), refused on first use, and the
        // same error every time.
        let broken = break_private_part(alg, issued.key_der());
        let svid = X509Svid::from_der_list(issued.chain().to_vec(), &broken)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        let err = svid.signing_key().err().unwrap();
        assert!(
            matches!(
                err,
                X509SvidError::InvalidPrivateKey { .. } | X509SvidError::KeyMismatch
            ),
            "{alg:?}: {err:?}"
        );
        assert_eq!(svid.signing_key().err(), Some(err));
        assert!(!format!("{svid:?}").contains("ff, ff"));
    }
}

#[cfg(feature = "rustls")]
#[test]
fn resolver_serves_nothing_for_a_key_the_provider_refuses() {
    use spiffe_svid::tls::{RotatingSvid, SvidCertResolver};

    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let broken = break_private_part(KeyAlgorithm::EcdsaP256, issued.key_der());
    let svid = X509Svid::from_der_list(issued.chain().to_vec(), &broken).unwrap();
    let rotating = std::sync::Arc::new(RotatingSvid::new(svid));
    let resolver = SvidCertResolver::new(std::sync::Arc::clone(&rotating));
    assert!(resolver.certified_key().is_none());
    assert!(matches!(
        resolver.key_error(),
        Some(X509SvidError::InvalidPrivateKey { .. })
    ));
    assert!(resolver.try_certified_key().is_err());

    // Rotation to a good SVID serves again and clears the error.
    rotating.set(X509Svid::from_der_list(issued.chain().to_vec(), issued.key_der()).unwrap());
    assert!(resolver.certified_key().is_some());
    assert_eq!(resolver.key_error(), None);
}

#[test]
fn key_without_public_key_is_checked_by_the_provider_when_built() {
    // A P-256 PKCS#8 document without the optional ECPrivateKey publicKey:
    // the provider derives the public key at once.
    let issued = ca("example.org").issue(&leaf_spec()).unwrap();
    let key = issued.key_der();
    // 30 81 87 | 02 01 00 | AlgorithmIdentifier (21) | 04 6d | 30 6b | 02 01 01 | 04 20 <32> | a1 44 ...
    assert_eq!(
        &key[..3],
        &[0x30, 0x81, 0x87],
        "aws-lc-rs P-256 PKCS#8 layout"
    );
    let mut ec = vec![0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20];
    ec.extend_from_slice(&key[36..68]);
    let mut doc = vec![0x30, 0x41, 0x02, 0x01, 0x00];
    doc.extend_from_slice(&key[6..27]);
    doc.extend([0x04, 0x27]);
    doc.extend(ec);
    let svid = X509Svid::from_der_list(issued.chain().to_vec(), &doc);
    // Whether the provider takes a key without its public part or not, it
    // has decided by now.
    match svid {
        Ok(svid) => assert!(svid.signing_key().is_ok()),
        Err(err) => assert!(
            matches!(err, X509SvidError::InvalidPrivateKey { .. }),
            "{err:?}"
        ),
    }
    let other = ca("example.org").issue(&leaf_spec()).unwrap();
    let err = X509Svid::from_der_list(other.chain().to_vec(), &doc).unwrap_err();
    assert!(
        matches!(
            err,
            X509SvidError::KeyMismatch | X509SvidError::InvalidPrivateKey { .. }
        ),
        "{err:?}"
    );
}
