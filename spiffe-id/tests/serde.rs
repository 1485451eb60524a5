//! String (de)serialization behind the `serde` feature.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spiffe_id::{IstioIdentity, SpiffeId, TrustDomain};

#[test]
fn ids_round_trip_as_strings() {
    let id = SpiffeId::parse("spiffe://example.org/a/b").unwrap();
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"spiffe://example.org/a/b\"");
    assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), id);

    let td = TrustDomain::new("example.org").unwrap();
    assert_eq!(serde_json::to_string(&td).unwrap(), "\"example.org\"");
    assert_eq!(
        serde_json::from_str::<TrustDomain>("\"example.org\"").unwrap(),
        td
    );

    let istio: IstioIdentity = "spiffe://td/ns/a/sa/b".parse().unwrap();
    let json = serde_json::to_string(&istio).unwrap();
    assert_eq!(serde_json::from_str::<IstioIdentity>(&json).unwrap(), istio);
}

#[test]
fn invalid_strings_are_errors() {
    let err = serde_json::from_str::<SpiffeId>("\"spiffe://example.org/\"").unwrap_err();
    assert!(err.to_string().contains("trailing slash"), "{err}");
    assert!(serde_json::from_str::<SpiffeId>("42").is_err());
    // Trust domains deserialize from bare names only, as they serialize.
    assert!(serde_json::from_str::<TrustDomain>("\"spiffe://example.org\"").is_err());
    assert!(serde_json::from_str::<IstioIdentity>("\"spiffe://td/a/b\"").is_err());
}
