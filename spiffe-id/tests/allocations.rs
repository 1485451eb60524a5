//! Allocation counts the crate documents: the borrowed parser never
//! allocates, an owned ID is one allocation, and clones, trust domains and
//! Istio views of an owned ID share it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use allocation_counter::measure;
use spiffe_id::{IdMatcher, IstioIdentity, SpiffeId, SpiffeIdRef, TrustDomain};

const ISTIO: &str =
    "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";

fn allocations(f: impl FnOnce()) -> u64 {
    measure(f).count_total
}

#[test]
fn borrowed_parsing_never_allocates() {
    assert_eq!(
        allocations(|| {
            let id = SpiffeIdRef::parse(black_box(ISTIO)).unwrap();
            black_box(id.segments().count());
            black_box(id.trust_domain_name());
        }),
        0
    );
    assert_eq!(
        allocations(|| {
            black_box(SpiffeIdRef::parse(black_box("spiffe://example.org/a//b")).unwrap_err());
        }),
        0,
        "errors do not allocate either"
    );
}

#[test]
fn owned_parsing_is_one_allocation() {
    assert_eq!(
        allocations(|| {
            black_box(SpiffeId::parse(black_box(ISTIO)).unwrap());
        }),
        1
    );
    assert_eq!(
        allocations(|| {
            black_box(TrustDomain::new(black_box("example.org")).unwrap());
        }),
        1
    );
    let td = TrustDomain::new("cluster.local").unwrap();
    assert_eq!(
        allocations(|| {
            black_box(SpiffeId::from_segments(&td, ["ns", "default", "sa", "web"]).unwrap());
        }),
        1
    );
    assert_eq!(
        allocations(|| {
            black_box(IstioIdentity::new(&td, "default", "web").unwrap());
        }),
        1
    );
}

#[test]
fn clones_and_views_share_the_allocation() {
    let id = SpiffeId::parse(ISTIO).unwrap();
    let td = TrustDomain::new("cluster.local").unwrap();
    assert_eq!(
        allocations(|| {
            let clone = black_box(id.clone());
            black_box(clone.trust_domain());
            black_box(IstioIdentity::try_from(&id).unwrap());
            black_box(td.id());
            black_box(id.as_id_ref());
        }),
        0
    );
}

#[test]
fn matching_does_not_allocate() {
    let id = SpiffeId::parse(ISTIO).unwrap();
    let matcher = IdMatcher::member_of(TrustDomain::new("cluster.local").unwrap()).and(
        IdMatcher::istio(["cluster.local/ns/istio-system/*".parse().unwrap()], None),
    );
    assert_eq!(
        allocations(|| {
            assert!(black_box(&matcher).matches(&id));
        }),
        0
    );
}
