//! Bundle maps (spec §5) and the federated BundleSet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use spiffe_bundle::{
    BundleError, BundleMap, BundleSet, InsertOutcome, JwtBundleSource, SpiffeBundle,
    X509BundleSource,
};
use spiffe_id::{SpiffeIdError, TrustDomain};

fn bundle(name: &str, seq: Option<u64>) -> SpiffeBundle {
    let td = TrustDomain::new(name).unwrap();
    let json = doc(vec![
        x509_entry(&ca_ec256()),
        jwt_entry("k", &jwt_key_p256()),
    ]);
    SpiffeBundle::parse(td, &json).unwrap().with_sequence(seq)
}

// ---- bundle map ------------------------------------------------------------

#[test]
fn map_01_empty_trust_domains_is_valid() {
    assert!(
        BundleMap::parse(br#"{"trust_domains":{}}"#)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn map_02_b_13_rejects_missing_trust_domains() {
    assert_eq!(
        BundleMap::parse(b"{}"),
        Err(BundleError::MissingTrustDomains)
    );
    assert!(matches!(
        BundleMap::parse(br#"{"trust_domains":[]}"#),
        Err(BundleError::InvalidTopLevelMember {
            member: "trust_domains",
            ..
        })
    ));
}

#[test]
fn map_03_b_15_rejects_duplicate_trust_domain() {
    let json = br#"{"trust_domains":{"a.org":{"keys":[]},"a.org":{"keys":[]}}}"#;
    assert!(matches!(
        BundleMap::parse(json),
        Err(BundleError::DuplicateMember { name, .. }) if name == "a.org"
    ));
}

#[test]
fn map_04_rejects_spiffe_uri_key() {
    let json = br#"{"trust_domains":{"spiffe://a.org":{"keys":[]}}}"#;
    assert!(matches!(
        BundleMap::parse(json),
        Err(BundleError::InvalidTrustDomain { name, .. }) if name == "spiffe://a.org"
    ));
}

#[test]
fn map_05_rejects_uppercase_key() {
    let json = br#"{"trust_domains":{"Example.com":{"keys":[]}}}"#;
    assert!(matches!(
        BundleMap::parse(json),
        Err(BundleError::InvalidTrustDomain {
            source: SpiffeIdError::BadTrustDomainChar { .. },
            ..
        })
    ));
}

#[test]
fn map_06_b_16_per_bundle_refresh_hint_is_kept_as_data_only() {
    let json = br#"{"trust_domains":{"a.org":{"keys":[],"spiffe_refresh_hint":5}}}"#;
    let map = BundleMap::parse(json).unwrap();
    assert_eq!(map.get("a.org").unwrap().refresh_hint_seconds(), Some(5));
}

#[test]
fn map_bad_bundle_names_its_trust_domain() {
    let json = br#"{"trust_domains":{"a.org":{"keys":[]},"b.org":{}}}"#;
    assert_eq!(
        BundleMap::parse(json),
        Err(BundleError::InBundleMap {
            trust_domain: "b.org".into(),
            source: Box::new(BundleError::MissingKeys)
        })
    );
}

#[test]
fn map_round_trip_is_sorted_and_deterministic() {
    let map: BundleMap = [bundle("z.org", Some(1)), bundle("a.org", None)]
        .into_iter()
        .collect();
    let out = map.to_json();
    assert!(
        out.starts_with(r#"{"trust_domains":{"a.org":{"keys":["#),
        "{out}"
    );
    let again = BundleMap::parse(out.as_bytes()).unwrap();
    assert_eq!(again, map);
    assert_eq!(again.to_json(), out);
    let td = TrustDomain::new("z.org").unwrap();
    assert!(again.x509_bundle_for(&td).is_some());
    assert!(
        again
            .jwt_bundle_for(&TrustDomain::new("q.org").unwrap())
            .is_none()
    );
}

// ---- BundleSet ---------------------------------------------------------------

#[test]
fn set_insert_lookup_by_trust_domain_and_name() {
    let set = BundleSet::new();
    assert_eq!(set.insert(bundle("b.org", Some(1))), InsertOutcome::Added);
    assert_eq!(set.insert(bundle("a.org", None)), InsertOutcome::Added);
    let td = TrustDomain::new("b.org").unwrap();
    assert_eq!(set.get(&td).unwrap().sequence(), Some(1));
    assert_eq!(
        set.get_by_name("a.org").unwrap().trust_domain().as_str(),
        "a.org"
    );
    assert!(set.get_by_name("spiffe://a.org").is_none());
    assert!(set.get_by_name("c.org").is_none());
    assert_eq!(set.len(), 2);
}

#[test]
fn set_iterates_sorted() {
    let set: BundleSet = ["m.org", "a.org", "z.org", "b.org"]
        .into_iter()
        .map(|n| bundle(n, None))
        .collect();
    let names: Vec<String> = set
        .snapshot()
        .iter()
        .map(|b| b.trust_domain().to_string())
        .collect();
    assert_eq!(names, ["a.org", "b.org", "m.org", "z.org"]);
}

#[test]
fn set_replaces_only_when_sequence_is_not_older() {
    let set = BundleSet::new();
    set.insert(bundle("a.org", Some(5)));
    let v = set.version();
    assert_eq!(
        set.insert(bundle("a.org", Some(4)).with_refresh_hint_seconds(Some(1))),
        InsertOutcome::Stale {
            current: 5,
            offered: 4
        }
    );
    assert_eq!(set.version(), v, "a refused insert changes nothing");
    // Equal sequence, different content: not older, so replaced.
    let same_seq = bundle("a.org", Some(5)).with_refresh_hint_seconds(Some(9));
    assert!(matches!(set.insert(same_seq), InsertOutcome::Replaced(_)));
    assert!(matches!(
        set.insert(bundle("a.org", Some(6))),
        InsertOutcome::Replaced(_)
    ));
    // Forced: older accepted.
    assert!(matches!(
        set.insert_forced(bundle("a.org", Some(1))),
        InsertOutcome::Replaced(_)
    ));
    assert_eq!(set.get_by_name("a.org").unwrap().sequence(), Some(1));
    // No sequence on either side: cannot be ordered, replaced.
    assert!(matches!(
        set.insert(bundle("a.org", None)),
        InsertOutcome::Replaced(_)
    ));
}

#[test]
fn set_version_changes_with_every_change_only() {
    let set = BundleSet::new();
    let v0 = set.version();
    set.insert(bundle("a.org", Some(1)));
    let v1 = set.version();
    assert_ne!(v0, v1);
    // An equal bundle (another object, same content) changes nothing.
    assert_eq!(
        set.insert(bundle("a.org", Some(1))),
        InsertOutcome::Unchanged
    );
    assert_eq!(set.version(), v1);
    set.insert(bundle("a.org", Some(2)));
    let v2 = set.version();
    assert!(v2 > v1);
    assert!(set.remove(&TrustDomain::new("a.org").unwrap()).is_some());
    assert!(set.version() > v2);
    let v3 = set.version();
    assert!(set.remove(&TrustDomain::new("a.org").unwrap()).is_none());
    assert_eq!(set.version(), v3);
    set.replace_all([bundle("x.org", None), bundle("y.org", None)]);
    assert_eq!(set.len(), 2);
    let v4 = set.version();
    set.replace_all([bundle("y.org", None), bundle("x.org", None)]);
    assert_eq!(set.version(), v4, "same content, no change");
}

#[test]
fn set_snapshot_is_stable_while_set_changes() {
    let set = BundleSet::new();
    set.insert(bundle("a.org", None));
    let snap = set.snapshot();
    set.insert(bundle("b.org", None));
    assert_eq!(snap.len(), 1);
    assert_eq!(set.snapshot().len(), 2);
    assert!(snap.version() < set.version());
}

#[test]
fn b_01_sources_pick_the_bundle_by_trust_domain() {
    let set = Arc::new(BundleSet::new());
    set.insert(bundle("a.org", None));
    let a = TrustDomain::new("a.org").unwrap();
    let b = TrustDomain::new("b.org").unwrap();
    fn x509<S: X509BundleSource + ?Sized>(s: &S, td: &TrustDomain) -> bool {
        s.x509_bundle_for(td).is_some()
    }
    fn jwt<S: JwtBundleSource + ?Sized>(s: &S, td: &TrustDomain) -> bool {
        s.jwt_bundle_for(td).is_some()
    }
    assert!(x509(&set, &a) && !x509(&set, &b));
    assert!(jwt(&*set, &a) && !jwt(&*set, &b));
    assert!(x509(&*set.snapshot(), &a));
    let one = set.get(&a).unwrap();
    assert!(x509(&one, &a) && !x509(&one, &b));
    assert!(x509(one.x509_bundle(), &a) && !x509(one.x509_bundle(), &b));
    assert!(jwt(one.jwt_bundle(), &a) && !jwt(one.jwt_bundle(), &b));
    let dynamic: Box<dyn X509BundleSource> = Box::new(one.clone());
    assert!(x509(&dynamic, &a));
    // Cheap handles: same generation, same object.
    assert_eq!(
        set.x509_bundle_for(&a).unwrap().generation(),
        one.x509_bundle().generation()
    );
}

#[test]
fn set_readers_run_while_a_writer_swaps() {
    let set = Arc::new(BundleSet::new());
    set.insert(bundle("a.org", Some(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (set, stop) = (Arc::clone(&set), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut last = 0;
                // At least one read, however the threads are scheduled.
                loop {
                    let b = set.get_by_name("a.org").unwrap();
                    let seq = b.sequence().unwrap();
                    assert!(seq >= last, "never goes back");
                    last = seq;
                    reads += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                reads
            })
        })
        .collect();
    for seq in 1..=200 {
        set.insert(bundle("a.org", Some(seq)));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(set.get_by_name("a.org").unwrap().sequence(), Some(200));
}

#[test]
fn spiffe_bundle_new_checks_trust_domains() {
    let a = bundle("a.org", None);
    let b = bundle("b.org", None);
    assert!(matches!(
        SpiffeBundle::new(a.x509_bundle().clone(), b.jwt_bundle().clone(), None, None),
        Err(BundleError::TrustDomainMismatch { .. })
    ));
    let ok = SpiffeBundle::new(
        a.x509_bundle().clone(),
        a.jwt_bundle().clone(),
        Some(3),
        Some(60),
    )
    .unwrap();
    assert_eq!(ok.sequence(), Some(3));
}
