//! ID matchers, Istio principals and trust-domain aliases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spiffe_id::{
    IdMatcher, IstioPrincipal, SpiffeId, SpiffeIdError, SpiffeIdRef, TrustDomain,
    TrustDomainAliases,
};

fn id(s: &str) -> SpiffeIdRef<'_> {
    SpiffeIdRef::parse(s).unwrap()
}

fn owned(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

#[test]
fn any_matches_every_id() {
    let m = IdMatcher::any();
    assert!(m.matches(id("spiffe://a")));
    assert!(m.matches(id("spiffe://b/c/d")));
}

#[test]
fn exact_is_byte_exact() {
    let m = IdMatcher::exact(owned("spiffe://a/X"));
    assert!(m.matches(id("spiffe://a/X")));
    assert!(!m.matches(id("spiffe://a/x")));
    assert!(!m.matches(id("spiffe://a/X/y")));
    assert!(m.matches(&owned("spiffe://a/X")));
}

#[test]
fn one_of_matches_members_of_the_set_only() {
    let m = IdMatcher::one_of([owned("spiffe://a/x"), owned("spiffe://b/y")]);
    assert!(m.matches(id("spiffe://a/x")));
    assert!(m.matches(id("spiffe://b/y")));
    assert!(!m.matches(id("spiffe://a/y")));
    assert!(
        !IdMatcher::one_of([]).matches(id("spiffe://a/x")),
        "empty set fails closed"
    );
}

#[test]
fn member_of_matches_the_trust_domain_only() {
    let m = IdMatcher::member_of(td("a.org"));
    assert!(m.matches(id("spiffe://a.org")));
    assert!(m.matches(id("spiffe://a.org/x")));
    assert!(!m.matches(id("spiffe://a.org.evil/x")));
    assert!(!m.matches(id("spiffe://b.org/x")));
}

#[test]
fn path_prefix_respects_segment_boundaries() {
    let m = IdMatcher::path_prefix(owned("spiffe://td/ns/a"));
    assert!(m.matches(id("spiffe://td/ns/a")));
    assert!(m.matches(id("spiffe://td/ns/a/sa/b")));
    assert!(!m.matches(id("spiffe://td/ns/ab")));
    assert!(!m.matches(id("spiffe://td/ns")));
    assert!(!m.matches(id("spiffe://other/ns/a")));
    // A trust domain's own ID covers the trust domain, not look-alikes.
    let whole = IdMatcher::path_prefix(owned("spiffe://td"));
    assert!(whole.matches(id("spiffe://td/x")));
    assert!(whole.matches(id("spiffe://td")));
    assert!(!whole.matches(id("spiffe://td.evil/x")));
    assert!(!whole.matches(id("spiffe://tdx/x")));
}

#[test]
fn combinators_and_fail_closed_empties() {
    let a = IdMatcher::member_of(td("a"));
    let x = IdMatcher::exact(owned("spiffe://a/x"));
    let m = a.clone().and(x.clone().not());
    assert!(m.matches(id("spiffe://a/y")));
    assert!(!m.matches(id("spiffe://a/x")));
    assert!(!m.matches(id("spiffe://b/y")));

    let either = IdMatcher::member_of(td("b")).or(x);
    assert!(either.matches(id("spiffe://b/q")));
    assert!(either.matches(id("spiffe://a/x")));
    assert!(!either.matches(id("spiffe://a/q")));

    assert!(
        !IdMatcher::all_of([]).matches(id("spiffe://a/x")),
        "empty all_of fails closed"
    );
    assert!(!IdMatcher::any_of([]).matches(id("spiffe://a/x")));
    assert!(IdMatcher::all_of([a]).matches(id("spiffe://a/x")));
}

#[test]
fn istio_principal_forms() {
    let cases: &[(&str, &str, bool)] = &[
        // exact
        (
            "cluster.local/ns/default/sa/sleep",
            "spiffe://cluster.local/ns/default/sa/sleep",
            true,
        ),
        (
            "cluster.local/ns/default/sa/sleep",
            "spiffe://cluster.local/ns/default/sa/sleep2",
            false,
        ),
        // any authenticated peer
        ("*", "spiffe://anything/at/all", true),
        // prefix: a plain string prefix, as in Istio
        (
            "cluster.local/ns/default/*",
            "spiffe://cluster.local/ns/default/sa/x",
            true,
        ),
        (
            "cluster.local/ns/default/*",
            "spiffe://cluster.local/ns/prod/sa/x",
            false,
        ),
        (
            "cluster.local/ns/a*",
            "spiffe://cluster.local/ns/ab/sa/x",
            true,
        ),
        // suffix: any trust domain
        (
            "*/ns/default/sa/sleep",
            "spiffe://other.td/ns/default/sa/sleep",
            true,
        ),
        (
            "*/ns/default/sa/sleep",
            "spiffe://other.td/ns/default/sa/web",
            false,
        ),
    ];
    for &(principal, peer, expected) in cases {
        let p: IstioPrincipal = principal.parse().unwrap();
        assert_eq!(p.matches(id(peer)), expected, "{principal} vs {peer}");
        assert_eq!(p.to_string(), principal, "Display round trip");
    }
}

#[test]
fn istio_principal_rejects_what_can_never_match() {
    for bad in [
        "",
        "spiffe://cluster.local/ns/a/sa/b",
        "cluster.local/*/sa/b",
        "*/ns/a/*",
        "**",
        "Cluster.local/ns/a/sa/b",
        "cluster.local/ns/a/sa/b/",
        "cluster.local/ns/a b*",
    ] {
        let err = bad.parse::<IstioPrincipal>().unwrap_err();
        assert!(
            matches!(err, SpiffeIdError::BadPrincipal { .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(err.rule(), "PRINCIPAL");
    }
}

#[test]
fn trust_domain_aliases_rewrite_as_istio_does() {
    let aliases = TrustDomainAliases::new(td("new.td"), [td("old.td"), td("new.td")]);
    assert_eq!(aliases.trust_domain(), &td("new.td"));
    assert_eq!(aliases.aliases(), &[td("old.td")], "duplicates dropped");

    let principals = [
        "cluster.local/ns/a/sa/b", // pointer to local + aliases
        "old.td/ns/c/sa/d",        // an alias: rewritten too
        "foreign.td/ns/e/sa/f",    // unknown: kept as written
        "*/ns/g/sa/h",             // suffix: kept
        "cluster.local/ns/p/*",    // prefix: rewritten
    ]
    .map(|p| p.parse::<IstioPrincipal>().unwrap());
    let m = IdMatcher::istio(principals, Some(&aliases));

    for allowed in [
        "spiffe://new.td/ns/a/sa/b",
        "spiffe://old.td/ns/a/sa/b",
        "spiffe://new.td/ns/c/sa/d",
        "spiffe://old.td/ns/c/sa/d",
        "spiffe://foreign.td/ns/e/sa/f",
        "spiffe://anywhere/ns/g/sa/h",
        "spiffe://old.td/ns/p/sa/q",
    ] {
        assert!(m.matches(id(allowed)), "{allowed}");
    }
    for denied in [
        "spiffe://cluster.local/ns/a/sa/b",
        "spiffe://other.td/ns/a/sa/b",
        "spiffe://new.td/ns/e/sa/f",
        "spiffe://other.td/ns/p/sa/q",
    ] {
        assert!(!m.matches(id(denied)), "{denied}");
    }

    // Without aliases, principals are matched as written.
    let plain = IdMatcher::istio(["cluster.local/ns/a/sa/b".parse().unwrap()], None);
    assert!(plain.matches(id("spiffe://cluster.local/ns/a/sa/b")));
    assert!(!plain.matches(id("spiffe://new.td/ns/a/sa/b")));
    assert!(!IdMatcher::istio([], None).matches(id("spiffe://a/b")));
}

#[test]
fn local_trust_domain_cluster_local_keeps_matching_itself() {
    let aliases = TrustDomainAliases::new(td("cluster.local"), []);
    let m = IdMatcher::istio(["cluster.local/ns/a/sa/b".parse().unwrap()], Some(&aliases));
    assert!(m.matches(id("spiffe://cluster.local/ns/a/sa/b")));
}
