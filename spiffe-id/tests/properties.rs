//! Property tests: round trips from valid parts, and agreement between the
//! borrowed and owned parsers on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use spiffe_id::{IstioIdentity, SpiffeId, SpiffeIdRef, TrustDomain};

/// A valid trust-domain name: 1 to 255 bytes of `[a-z0-9._-]`.
fn trust_domain_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{1,40}",
        "[a-z0-9]{1,20}(\\.[a-z0-9-]{1,20}){0,4}",
        "[a-z0-9._-]{200,255}",
    ]
}

/// A valid path segment: `[a-zA-Z0-9._-]+`, not `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,24}".prop_filter("dot segment", |s| s != "." && s != "..")
}

fn segments() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 0..10)
}

/// Strings that are often close to valid IDs, so both branches get exercised.
fn near_id() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("spiffe://".to_owned()),
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        "[a-zA-Z0-9._-]{1,8}",
        "[%?#@: A-Z~+]",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn valid_parts_round_trip(td in trust_domain_name(), segs in segments()) {
        let mut uri = format!("spiffe://{td}");
        for s in &segs {
            uri.push('/');
            uri.push_str(s);
        }
        prop_assume!(uri.len() <= spiffe_id::MAX_ID_LEN);

        let borrowed = SpiffeIdRef::parse(&uri).unwrap();
        prop_assert_eq!(borrowed.as_str(), uri.as_str());
        prop_assert_eq!(borrowed.trust_domain_name(), td.as_str());
        prop_assert_eq!(borrowed.segments().collect::<Vec<_>>(), segs.iter().map(String::as_str).collect::<Vec<_>>());

        let owned = SpiffeId::parse(&uri).unwrap();
        prop_assert_eq!(owned.to_string(), uri.clone());
        prop_assert_eq!(owned.as_id_ref(), borrowed);
        prop_assert_eq!(borrowed.to_owned(), owned.clone());

        let trust_domain = TrustDomain::new(&td).unwrap();
        prop_assert_eq!(owned.trust_domain(), trust_domain.clone());
        prop_assert_eq!(SpiffeId::from_segments(&trust_domain, &segs).unwrap(), owned.clone());
        prop_assert_eq!(SpiffeId::from_path(&trust_domain, owned.path()).unwrap(), owned.clone());
        prop_assert_eq!(trust_domain.to_string().parse::<TrustDomain>().unwrap(), trust_domain);
    }

    #[test]
    fn borrowed_and_owned_parsers_agree(s in near_id()) {
        let borrowed = SpiffeIdRef::parse(&s);
        let owned = SpiffeId::parse(&s);
        match (borrowed, owned) {
            (Ok(b), Ok(o)) => {
                prop_assert_eq!(b.as_str(), s.as_str());
                prop_assert_eq!(o.as_str(), s.as_str());
                prop_assert_eq!(b.trust_domain_name(), o.trust_domain_name());
                prop_assert_eq!(b.path(), o.path());
            }
            (Err(b), Err(o)) => prop_assert_eq!(b, o),
            (b, o) => prop_assert!(false, "disagree on {:?}: {:?} vs {:?}", s, b, o),
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_and_accepted_ones_round_trip(s in any::<String>()) {
        if let Ok(id) = SpiffeId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
        }
        let _ = TrustDomain::parse(&s);
        let _ = IstioIdentity::parse(&s);
        let _ = SpiffeId::parse_normalizing_case(&s);
    }

    #[test]
    fn istio_round_trip(td in trust_domain_name(), ns in segment(), sa in segment()) {
        let trust_domain = TrustDomain::new(&td).unwrap();
        let id = IstioIdentity::new(&trust_domain, &ns, &sa).unwrap();
        prop_assert_eq!(id.namespace(), ns.as_str());
        prop_assert_eq!(id.service_account(), sa.as_str());
        let uri = format!("spiffe://{td}/ns/{ns}/sa/{sa}");
        prop_assert_eq!(id.to_string(), uri.clone());
        prop_assert_eq!(uri.parse::<IstioIdentity>().unwrap(), id);
    }

    #[test]
    fn normalizing_case_equals_lowercase(td in "[a-zA-Z0-9._-]{1,30}", segs in segments()) {
        let path: String = segs.iter().map(|s| format!("/{s}")).collect();
        let mixed = format!("sPiFfE://{td}{path}");
        let lower = format!("spiffe://{}{path}", td.to_ascii_lowercase());
        prop_assert_eq!(
            SpiffeId::parse_normalizing_case(&mixed).unwrap(),
            SpiffeId::parse(&lower).unwrap()
        );
    }
}
