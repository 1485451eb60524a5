//! `SpiffeIdRef` and `SpiffeId` parsing: no panic, both parsers agree, and an
//! accepted ID prints back byte-identical and rebuilds from its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_id::{SpiffeId, SpiffeIdRef};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let borrowed = SpiffeIdRef::parse(s);
    let owned = SpiffeId::parse(s);
    match (borrowed, owned) {
        (Ok(b), Ok(o)) => {
            assert_eq!(b.as_str(), s);
            assert_eq!(o.to_string(), s);
            assert_eq!(b.trust_domain_name(), o.trust_domain_name());
            assert!(s.len() <= spiffe_id::MAX_ID_LEN);
            let rebuilt = SpiffeId::from_segments(&o.trust_domain(), o.segments())
                .expect("segments of a valid ID are valid");
            assert_eq!(rebuilt, o);
        }
        (Err(b), Err(o)) => {
            assert_eq!(b, o);
            // Messages and rules never panic.
            let _ = (b.to_string(), b.rule());
        }
        (b, o) => panic!("parsers disagree on {s:?}: {b:?} vs {o:?}"),
    }
    // The normalizing parser either fails or yields a lowercase authority.
    if let Ok(n) = SpiffeId::parse_normalizing_case(s) {
        assert!(!n.trust_domain_name().bytes().any(|c| c.is_ascii_uppercase()));
    }
});

