//! `TrustDomain` parsing from a name or an ID: no panic, and an accepted
//! trust domain prints a name that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_id::TrustDomain;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(td) = TrustDomain::parse(s) {
        let name = td.to_string();
        assert!(!name.is_empty() && name.len() <= spiffe_id::MAX_TRUST_DOMAIN_LEN);
        let again = TrustDomain::new(&name).expect("a printed name parses");
        assert_eq!(again, td);
        assert_eq!(td.id().as_str(), td.id_str());
        assert_eq!(td.id().trust_domain(), td);
    }
    if let Ok(td) = TrustDomain::new(s) {
        assert_eq!(td.as_str(), s);
    }
});
