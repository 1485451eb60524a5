//! X.509 bundles from PEM and from concatenated DER: never panic; round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_bundle::X509Bundle;
use spiffe_id::TrustDomain;

fuzz_target!(|data: &[u8]| {
    let Ok(td) = TrustDomain::new("example.org") else {
        return;
    };
    if let Ok(bundle) = X509Bundle::parse_der(td.clone(), data) {
        let again = X509Bundle::parse_der(td.clone(), &bundle.to_der());
        assert_eq!(again.as_ref().ok(), Some(&bundle));
        assert_eq!(bundle.trust_anchors().len(), bundle.len());
    }
    if let Ok(bundle) = X509Bundle::parse_pem(td.clone(), data) {
        let again = X509Bundle::parse_pem(td.clone(), bundle.to_pem().as_bytes());
        assert_eq!(again.as_ref().ok(), Some(&bundle));
    }
});
