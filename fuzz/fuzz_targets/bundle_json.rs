//! SPIFFE bundle documents and bundle maps: never panic; whatever parses
//! serializes to a document that parses back to the same bundle and bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_bundle::{BundleMap, ParseOptions, SpiffeBundle};
use spiffe_id::TrustDomain;

fuzz_target!(|data: &[u8]| {
    let Ok(td) = TrustDomain::new("example.org") else {
        return;
    };
    for opts in [ParseOptions::default(), ParseOptions::strict()] {
        if let Ok(bundle) = SpiffeBundle::parse_with(td.clone(), data, &opts) {
            let json = bundle.to_json();
            match SpiffeBundle::parse_with(td.clone(), json.as_bytes(), &opts) {
                Ok(again) => {
                    assert_eq!(again, bundle);
                    assert_eq!(again.to_json(), json);
                }
                // A certificate key a JWK cannot express is written without
                // `kty`, which strict mode refuses on the way back.
                Err(e) => assert!(
                    opts.mode == spiffe_bundle::Mode::Strict,
                    "lenient round trip failed: {e}"
                ),
            }
        }
    }
    if let Ok(map) = BundleMap::parse(data) {
        let json = map.to_json();
        let again = BundleMap::parse(json.as_bytes());
        assert_eq!(again.as_ref().ok(), Some(&map));
    }
});
