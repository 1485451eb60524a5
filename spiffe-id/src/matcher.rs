//! Predicates over SPIFFE IDs, for authorization after authentication.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::{IstioPrincipal, SpiffeId, SpiffeIdRef, TrustDomain, TrustDomainAliases};

/// A predicate over SPIFFE IDs: which authenticated peers to accept.
///
/// Verifiers establish *who* a peer is; an `IdMatcher` decides whether that
/// identity is allowed. Matchers compose with [`and`](Self::and),
/// [`or`](Self::or), [`all_of`](Self::all_of), [`any_of`](Self::any_of) and
/// [`not`](Self::not). Every constructor fails closed: an empty set, an empty
/// `any_of` and an empty `all_of` match nothing.
///
/// ```
/// use spiffe_id::{IdMatcher, SpiffeIdRef, TrustDomain};
///
/// let prod = TrustDomain::new("prod.example")?;
/// let policy = IdMatcher::member_of(prod)
///     .and(IdMatcher::exact("spiffe://prod.example/billing".parse()?).not())
///     .or(IdMatcher::path_prefix("spiffe://dev.example/team-a".parse()?));
/// assert!(policy.matches(SpiffeIdRef::parse("spiffe://prod.example/web")?));
/// assert!(!policy.matches(SpiffeIdRef::parse("spiffe://prod.example/billing")?));
/// assert!(policy.matches(SpiffeIdRef::parse("spiffe://dev.example/team-a/web")?));
/// assert!(!policy.matches(SpiffeIdRef::parse("spiffe://dev.example/team-ab")?));
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone, Debug)]
pub struct IdMatcher {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Any,
    Exact(SpiffeId),
    OneOf(BTreeSet<SpiffeId>),
    MemberOf(TrustDomain),
    PathPrefix(SpiffeId),
    Istio(Vec<IstioPrincipal>),
    AllOf(Vec<IdMatcher>),
    AnyOf(Vec<IdMatcher>),
    Not(Box<IdMatcher>),
}

impl IdMatcher {
    /// Matches every valid SPIFFE ID.
    pub fn any() -> Self {
        Self { kind: Kind::Any }
    }

    /// Matches exactly `id` (byte-exact).
    pub fn exact(id: SpiffeId) -> Self {
        Self {
            kind: Kind::Exact(id),
        }
    }

    /// Matches any of `ids`; an empty set matches nothing.
    pub fn one_of(ids: impl IntoIterator<Item = SpiffeId>) -> Self {
        Self {
            kind: Kind::OneOf(ids.into_iter().collect()),
        }
    }

    /// Matches every ID of `trust_domain`, its own ID included.
    pub fn member_of(trust_domain: TrustDomain) -> Self {
        Self {
            kind: Kind::MemberOf(trust_domain),
        }
    }

    /// Matches `prefix` itself and every ID below it, on segment boundaries:
    /// `spiffe://td/ns/a` matches `spiffe://td/ns/a` and `spiffe://td/ns/a/sa/b`
    /// but not `spiffe://td/ns/ab`. A trust domain's own ID as the prefix
    /// matches the whole trust domain.
    pub fn path_prefix(prefix: SpiffeId) -> Self {
        Self {
            kind: Kind::PathPrefix(prefix),
        }
    }

    /// Matches the Istio authorization-policy principals, after Istio's
    /// trust-domain alias rewrite when `aliases` is given. No principals
    /// match nothing.
    pub fn istio(
        principals: impl IntoIterator<Item = IstioPrincipal>,
        aliases: Option<&TrustDomainAliases>,
    ) -> Self {
        let principals = match aliases {
            Some(aliases) => principals
                .into_iter()
                .flat_map(|p| aliases.expand(&p))
                .collect(),
            None => principals.into_iter().collect(),
        };
        Self {
            kind: Kind::Istio(principals),
        }
    }

    /// Matches when every one of `matchers` matches; an empty list matches
    /// nothing (fail closed, unlike the mathematical convention).
    pub fn all_of(matchers: impl IntoIterator<Item = IdMatcher>) -> Self {
        Self {
            kind: Kind::AllOf(matchers.into_iter().collect()),
        }
    }

    /// Matches when at least one of `matchers` matches; an empty list
    /// matches nothing.
    pub fn any_of(matchers: impl IntoIterator<Item = IdMatcher>) -> Self {
        Self {
            kind: Kind::AnyOf(matchers.into_iter().collect()),
        }
    }

    /// Matches when both `self` and `other` match.
    pub fn and(self, other: IdMatcher) -> Self {
        Self::all_of([self, other])
    }

    /// Matches when `self` or `other` matches.
    pub fn or(self, other: IdMatcher) -> Self {
        Self::any_of([self, other])
    }

    /// Matches when `self` does not.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Self {
            kind: Kind::Not(Box::new(self)),
        }
    }

    /// Whether `id` is accepted.
    pub fn matches<'a>(&self, id: impl Into<SpiffeIdRef<'a>>) -> bool {
        self.matches_ref(id.into())
    }

    fn matches_ref(&self, id: SpiffeIdRef<'_>) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(expected) => *expected == id,
            Kind::OneOf(set) => set.contains(id.as_str()),
            Kind::MemberOf(td) => id.is_member_of(td),
            Kind::PathPrefix(prefix) => match id.as_str().strip_prefix(prefix.as_str()) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
            Kind::Istio(principals) => principals.iter().any(|p| p.matches(id)),
            Kind::AllOf(all) => !all.is_empty() && all.iter().all(|m| m.matches_ref(id)),
            Kind::AnyOf(any) => any.iter().any(|m| m.matches_ref(id)),
            Kind::Not(inner) => !inner.matches_ref(id),
        }
    }
}
