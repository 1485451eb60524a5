//! `IstioIdentity` parsing and Istio principals: no panic; an accepted
//! identity is a valid SPIFFE ID, rebuilds from its parts, and matches its own
//! principal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_id::{IdMatcher, IstioIdentity, IstioPrincipal, SpiffeId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = IstioIdentity::parse(s) {
        assert_eq!(id.to_string(), s);
        let spiffe = SpiffeId::parse(s).expect("an Istio identity is a SPIFFE ID");
        let rebuilt = IstioIdentity::new(&id.trust_domain(), id.namespace(), id.service_account())
            .expect("parts of a valid identity are valid");
        assert_eq!(rebuilt, id);
        let _ = id.validate_kubernetes_names();
        let principal: IstioPrincipal = id.principal().parse().expect("own principal parses");
        assert!(principal.matches(spiffe.as_id_ref()));
        assert!(IdMatcher::istio([principal], None).matches(&spiffe));
    }
    if let Ok(p) = IstioPrincipal::parse(s) {
        assert_eq!(p.to_string(), s);
    }
});
