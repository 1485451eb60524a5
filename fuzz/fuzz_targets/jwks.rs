//! Plain JWKS (Workload API JWT bundles): never panic; round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_bundle::{JwtBundle, ParseOptions};
use spiffe_id::TrustDomain;

fuzz_target!(|data: &[u8]| {
    let Ok(td) = TrustDomain::new("example.org") else {
        return;
    };
    for opts in [ParseOptions::default(), ParseOptions::strict()] {
        if let Ok(bundle) = JwtBundle::parse_jwks_with(td.clone(), data, &opts) {
            let json = bundle.to_jwks();
            let again = JwtBundle::parse_jwks_with(td.clone(), json.as_bytes(), &opts);
            assert_eq!(again.as_ref().ok(), Some(&bundle));
            for a in bundle.authorities() {
                assert!(!a.subject_public_key().is_empty());
            }
        }
    }
});
