//! Authorizers over verified X509-SVIDs: every `IdMatcher` constructor and
//! combinator, closures, shared authorizers, and denials naming the ID.
#![cfg(feature = "issuer")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{NOW, T0, T1, ca, id, t, td};
use spiffe_id::{IstioPrincipal, TrustDomainAliases};
use spiffe_svid::issuer::SvidSpec;
use spiffe_svid::{AuthorizationError, Authorizer, IdMatcher, VerifiedX509Svid, verify_x509_svid};

/// A verified SVID for `spiffe_id`, minted by a fresh CA of its trust domain.
fn verified(spiffe_id: &str) -> VerifiedX509Svid {
    let peer = id(spiffe_id);
    let ca = ca(peer.trust_domain_name());
    let svid = ca.issue(&SvidSpec::new(peer, t(T0), t(T1))).unwrap();
    verify_x509_svid(svid.chain(), &ca.bundle(), t(NOW)).unwrap()
}

fn allows(authorizer: &dyn Authorizer, spiffe_id: &str) -> bool {
    match authorizer.authorize(&verified(spiffe_id)) {
        Ok(()) => true,
        Err(e) => {
            // Every denial names the peer it denied.
            assert_eq!(e.spiffe_id().as_str(), spiffe_id);
            false
        }
    }
}

#[test]
fn any_allows_every_verified_peer() {
    let policy = IdMatcher::any();
    assert!(allows(&policy, "spiffe://a.test/web"));
    assert!(allows(&policy, "spiffe://b.test/ns/x/sa/y"));
}

#[test]
fn exact_allows_only_that_id() {
    let policy = IdMatcher::exact(id("spiffe://a.test/web"));
    assert!(allows(&policy, "spiffe://a.test/web"));
    assert!(!allows(&policy, "spiffe://a.test/web2"));
    assert!(!allows(&policy, "spiffe://a.test/web/child"));
    assert!(!allows(&policy, "spiffe://b.test/web"));
}

#[test]
fn one_of_allows_the_listed_ids_and_empty_denies_all() {
    let policy = IdMatcher::one_of([id("spiffe://a.test/web"), id("spiffe://b.test/db")]);
    assert!(allows(&policy, "spiffe://a.test/web"));
    assert!(allows(&policy, "spiffe://b.test/db"));
    assert!(!allows(&policy, "spiffe://a.test/db"));
    assert!(!allows(&IdMatcher::one_of([]), "spiffe://a.test/web"));
}

#[test]
fn member_of_allows_the_trust_domain_only() {
    let policy = IdMatcher::member_of(td("a.test"));
    assert!(allows(&policy, "spiffe://a.test/web"));
    assert!(allows(&policy, "spiffe://a.test/ns/x/sa/y"));
    assert!(!allows(&policy, "spiffe://b.test/web"));
    assert!(!allows(&policy, "spiffe://a.test.evil/web"));
}

#[test]
fn path_prefix_matches_on_segment_boundaries() {
    let policy = IdMatcher::path_prefix(id("spiffe://a.test/ns/prod"));
    assert!(allows(&policy, "spiffe://a.test/ns/prod"));
    assert!(allows(&policy, "spiffe://a.test/ns/prod/sa/web"));
    assert!(!allows(&policy, "spiffe://a.test/ns/production"));
    assert!(!allows(&policy, "spiffe://b.test/ns/prod/sa/web"));
}

#[test]
fn istio_principals_with_trust_domain_aliases() {
    let principal: IstioPrincipal = "cluster.local/ns/prod/sa/web".parse().unwrap();
    let without = IdMatcher::istio([principal.clone()], None);
    assert!(!allows(&without, "spiffe://new.test/ns/prod/sa/web"));

    let aliases = TrustDomainAliases::new(td("new.test"), [td("old.test")]);
    let with = IdMatcher::istio([principal], Some(&aliases));
    assert!(allows(&with, "spiffe://new.test/ns/prod/sa/web"));
    assert!(allows(&with, "spiffe://old.test/ns/prod/sa/web"));
    assert!(!allows(&with, "spiffe://new.test/ns/prod/sa/db"));
    assert!(!allows(&with, "spiffe://other.test/ns/prod/sa/web"));
}

#[test]
fn combinators_and_or_not() {
    let policy = IdMatcher::member_of(td("a.test"))
        .and(IdMatcher::exact(id("spiffe://a.test/billing")).not())
        .or(IdMatcher::exact(id("spiffe://b.test/auditor")));
    assert!(allows(&policy, "spiffe://a.test/web"));
    assert!(!allows(&policy, "spiffe://a.test/billing"));
    assert!(allows(&policy, "spiffe://b.test/auditor"));
    assert!(!allows(&policy, "spiffe://b.test/web"));

    let all = IdMatcher::all_of([
        IdMatcher::member_of(td("a.test")),
        IdMatcher::path_prefix(id("spiffe://a.test/ns")),
    ]);
    assert!(allows(&all, "spiffe://a.test/ns/x"));
    assert!(!allows(&all, "spiffe://a.test/web"));
    assert!(!allows(&IdMatcher::any_of([]), "spiffe://a.test/web"));
}

#[test]
fn matcher_denial_names_the_id() {
    let err = IdMatcher::exact(id("spiffe://a.test/web"))
        .authorize(&verified("spiffe://a.test/intruder"))
        .unwrap_err();
    assert_eq!(
        err,
        AuthorizationError::Denied {
            id: id("spiffe://a.test/intruder")
        }
    );
    assert_eq!(
        err.to_string(),
        "SPIFFE ID spiffe://a.test/intruder is not authorized"
    );
}

#[test]
fn closures_are_authorizers_and_give_reasons() {
    let only_short_lived = |peer: &VerifiedX509Svid| {
        if peer.expires_at().as_secs() - T0 <= 3_600 {
            Ok(())
        } else {
            Err(AuthorizationError::denied_because(
                peer.spiffe_id().clone(),
                "lifetime over an hour",
            ))
        }
    };
    assert!(
        only_short_lived
            .authorize(&verified("spiffe://a.test/web"))
            .is_ok()
    );

    let deny_all = |peer: &VerifiedX509Svid| {
        Err(AuthorizationError::denied_because(
            peer.spiffe_id().clone(),
            "maintenance",
        ))
    };
    let err = deny_all
        .authorize(&verified("spiffe://a.test/web"))
        .unwrap_err();
    assert_eq!(err.spiffe_id(), &id("spiffe://a.test/web"));
    assert_eq!(
        err.to_string(),
        "SPIFFE ID spiffe://a.test/web is not authorized: maintenance"
    );
}

#[test]
fn shared_and_dynamic_authorizers() {
    let shared: Arc<dyn Authorizer> = Arc::new(IdMatcher::member_of(td("a.test")));
    assert!(allows(&shared, "spiffe://a.test/web"));
    assert!(!allows(&Arc::clone(&shared), "spiffe://b.test/web"));

    type PolicyFn = dyn Fn(&VerifiedX509Svid) -> Result<(), AuthorizationError> + Send + Sync;
    let boxed: Box<PolicyFn> = Box::new(|_| Ok(()));
    assert!(allows(&boxed, "spiffe://b.test/web"));
}
