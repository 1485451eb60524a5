//! NIST PKITS 4.13.34–4.13.37: URI name constraints, which x509-limbo does
//! not cover. The certificates come from the `cryptography-vectors` PyPI
//! package: `PKITS_DIR` names its `cryptography_vectors/x509/PKITS_data`
//! folder (the test reads `PKITS_DIR/certs/*.crt`).
//!
//! The project's decision (crate docs, "URI name constraints"): keep
//! rustls-webpki 0.103's fail-closed behaviour, which rejects every URI SAN
//! under a CA with URI name constraints. So the two invalid cases (35, 37)
//! are rejected as PKITS expects, and the two valid ones (34, 36) are
//! rejected too: a documented deviation, asserted here so that a change of
//! behaviour (a webpki upgrade, or URI constraints checked by us) shows up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe_bundle::X509Authority;

use super::{missing, provider};
use crate::X509SvidError;
use crate::verify::{ChainEku, ChainPath, verify_chain};

/// 2015-01-01T00:00:00Z, inside the validity of every PKITS certificate.
const AT: u64 = 1_420_070_400;

struct UriCase {
    test: &'static str,
    ca: &'static str,
    ee: &'static str,
    pkits_valid: bool,
}

const URI_CASES: &[UriCase] = &[
    UriCase {
        test: "4.13.34",
        ca: "nameConstraintsURI1CACert",
        ee: "ValidURInameConstraintsTest34EE",
        pkits_valid: true,
    },
    UriCase {
        test: "4.13.35",
        ca: "nameConstraintsURI1CACert",
        ee: "InvalidURInameConstraintsTest35EE",
        pkits_valid: false,
    },
    UriCase {
        test: "4.13.36",
        ca: "nameConstraintsURI2CACert",
        ee: "ValidURInameConstraintsTest36EE",
        pkits_valid: true,
    },
    UriCase {
        test: "4.13.37",
        ca: "nameConstraintsURI2CACert",
        ee: "InvalidURInameConstraintsTest37EE",
        pkits_valid: false,
    },
];

fn pkits_certs() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("PKITS_DIR") else {
        missing(
            "PKITS_DIR is not set (point it at cryptography_vectors/x509/PKITS_data of the \
             cryptography-vectors wheel)",
        );
        return None;
    };
    let certs = PathBuf::from(dir).join("certs");
    assert!(
        certs.join("TrustAnchorRootCertificate.crt").is_file(),
        "PKITS_DIR is set but {} has no TrustAnchorRootCertificate.crt",
        certs.display()
    );
    Some(certs)
}

fn load(certs: &Path, name: &str) -> CertificateDer<'static> {
    let path = certs.join(format!("{name}.crt"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into()
}

/// PKITS anchor → `ca` → `ee` through the chain layer, with the SVID EKU
/// policy (the PKITS certificates carry no EKU).
fn verify(certs: &Path, ca: &str, ee: &str) -> Result<ChainPath, X509SvidError> {
    verify_from(certs, "TrustAnchorRootCertificate", &[ca], ee)
}

/// `anchor` (as a bundle authority) → `intermediates` → `ee`.
fn verify_from(
    certs: &Path,
    anchor: &str,
    intermediates: &[&str],
    ee: &str,
) -> Result<ChainPath, X509SvidError> {
    let provider = crate::default_crypto_provider().unwrap();
    let root = X509Authority::from_der(load(certs, anchor)).unwrap();
    let intermediates: Vec<_> = intermediates.iter().map(|n| load(certs, n)).collect();
    verify_chain(
        &load(certs, ee),
        &intermediates,
        std::slice::from_ref(root.trust_anchor()),
        UnixTime::since_unix_epoch(Duration::from_secs(AT)),
        &ChainEku::Svid,
        &provider,
    )
}

#[test]
fn pkits_uri_name_constraints_fail_closed() {
    let Some(certs) = pkits_certs() else { return };
    if provider().is_none() {
        return;
    }

    // Control: PKITS 4.1.1 (no name constraints) validates, so the
    // rejections below are about URI name constraints, not the corpus.
    let control = verify(&certs, "GoodCACert", "ValidCertificatePathTest1EE");
    assert!(control.is_ok(), "PKITS 4.1.1 control: {control:?}");
    println!("PKITS 4.1.1 (control, no name constraints): valid, accepted");

    for case in URI_CASES {
        let result = verify(&certs, case.ca, case.ee);
        // Fail closed: every URI SAN under a URI-constrained CA is
        // rejected, and reported as unsupported rather than as a violation.
        assert_eq!(
            result.as_ref().map(|_| ()),
            Err(&X509SvidError::UriNameConstraintsUnsupported),
            "PKITS {} ({})",
            case.test,
            case.ee
        );
        // The same with the constrained CA itself as the trust anchor: the
        // URI subtree is then found in the anchor's name constraints.
        assert_eq!(
            verify_from(&certs, case.ca, &[], case.ee).map(|_| ()),
            Err(X509SvidError::UriNameConstraintsUnsupported),
            "PKITS {} with {} as the trust anchor",
            case.test,
            case.ca
        );
        if case.pkits_valid {
            println!(
                "PKITS {} ({}): PKITS valid, rejected (UriNameConstraintsUnsupported): \
                 documented deviation, URI name constraints fail closed",
                case.test, case.ee
            );
        } else {
            println!(
                "PKITS {} ({}): PKITS invalid, rejected (UriNameConstraintsUnsupported): agrees",
                case.test, case.ee
            );
        }
    }
}
