//! Istio authorization-policy principals and trust-domain aliases.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::syntax::SCHEME_PREFIX;
use crate::{SpiffeIdError, SpiffeIdRef, TrustDomain};

/// A principal as written in an Istio `AuthorizationPolicy`: a SPIFFE ID
/// without its `spiffe://` scheme, such as `cluster.local/ns/default/sa/web`.
///
/// Istio's wildcard forms are supported, with Istio's meaning:
///
/// | principal | matches the peer ID `spiffe://<p>` when |
/// |---|---|
/// | `*` | always (any authenticated peer) |
/// | `prefix*` | the text after `spiffe://` starts with `prefix` |
/// | `*suffix` | the text after `spiffe://` ends with `suffix` |
/// | anything else | the text after `spiffe://` equals it |
///
/// Prefixes are plain string prefixes, as in Istio (`td/ns/a*` matches
/// namespace `ab`); for a prefix on segment boundaries use
/// [`IdMatcher::path_prefix`](crate::IdMatcher::path_prefix).
///
/// ```
/// use spiffe_id::{IstioPrincipal, SpiffeIdRef};
///
/// let p: IstioPrincipal = "cluster.local/ns/default/*".parse()?;
/// assert!(p.matches(SpiffeIdRef::parse("spiffe://cluster.local/ns/default/sa/web")?));
/// assert!(!p.matches(SpiffeIdRef::parse("spiffe://cluster.local/ns/prod/sa/web")?));
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstioPrincipal {
    kind: Kind,
    /// The principal without its wildcard.
    text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Any,
    Exact,
    Prefix,
    Suffix,
}

impl IstioPrincipal {
    /// Parses a principal.
    ///
    /// # Errors
    ///
    /// [`SpiffeIdError::BadPrincipal`] when the principal is empty, starts
    /// with `spiffe://` (Istio adds the scheme itself, so such a principal
    /// would never match), has a `*` anywhere but first or last, has a byte
    /// that can never appear in a SPIFFE ID, or, for an exact principal, is
    /// not a valid SPIFFE ID once `spiffe://` is put in front of it.
    pub fn parse(principal: &str) -> Result<Self, SpiffeIdError> {
        let bad = |reason| Err(SpiffeIdError::BadPrincipal { reason });
        if principal.is_empty() {
            return bad("empty principal");
        }
        if principal.starts_with(SCHEME_PREFIX) {
            return bad("principals are written without `spiffe://`; Istio adds it");
        }
        if principal == "*" {
            return Ok(Self {
                kind: Kind::Any,
                text: String::new(),
            });
        }
        let (kind, text) = if let Some(rest) = principal.strip_prefix('*') {
            (Kind::Suffix, rest)
        } else if let Some(rest) = principal.strip_suffix('*') {
            (Kind::Prefix, rest)
        } else {
            (Kind::Exact, principal)
        };
        if text.contains('*') {
            return bad("a `*` wildcard may only be the first or the last character");
        }
        if kind == Kind::Exact {
            let mut uri = String::with_capacity(SCHEME_PREFIX.len() + text.len());
            uri.push_str(SCHEME_PREFIX);
            uri.push_str(text);
            if SpiffeIdRef::parse(&uri).is_err() {
                return bad("not a valid SPIFFE ID once `spiffe://` is added");
            }
        } else if !text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/'))
        {
            return bad("has a character that never appears in a SPIFFE ID");
        }
        Ok(Self {
            kind,
            text: String::from(text),
        })
    }

    /// Whether `id` matches this principal.
    #[inline]
    pub fn matches(&self, id: SpiffeIdRef<'_>) -> bool {
        let Some(s) = id.as_str().strip_prefix(SCHEME_PREFIX) else {
            return false;
        };
        match self.kind {
            Kind::Any => true,
            Kind::Exact => s == self.text,
            Kind::Prefix => s.starts_with(self.text.as_str()),
            Kind::Suffix => s.ends_with(self.text.as_str()),
        }
    }

    /// The trust-domain part of an exact or prefix principal with a path
    /// (the text before the first `/`); `None` where Istio does not rewrite.
    fn trust_domain_part(&self) -> Option<(&str, &str)> {
        match self.kind {
            Kind::Exact | Kind::Prefix => {
                let slash = self.text.find('/')?;
                Some(self.text.split_at(slash))
            }
            Kind::Any | Kind::Suffix => None,
        }
    }
}

impl FromStr for IstioPrincipal {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl fmt::Display for IstioPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Any => f.write_str("*"),
            Kind::Exact => f.write_str(&self.text),
            Kind::Prefix => write!(f, "{}*", self.text),
            Kind::Suffix => write!(f, "*{}", self.text),
        }
    }
}

impl fmt::Debug for IstioPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IstioPrincipal")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// The mesh's trust domain and its aliases, as in Istio's
/// `MeshConfig.trustDomain` and `trustDomainAliases`.
///
/// Istio rewrites a principal whose trust domain is the local trust domain,
/// one of its aliases, or the literal `cluster.local` into one copy per trust
/// domain in `[trust_domain] + aliases`. So after a trust-domain migration, a
/// policy written for `cluster.local/ns/a/sa/b` still matches
/// `spiffe://new.example/ns/a/sa/b`. Principals of other trust domains, `*`,
/// suffix principals (`*/ns/a/sa/b`) and principals without a path are kept as
/// written.
///
/// ```
/// use spiffe_id::{IdMatcher, IstioPrincipal, SpiffeIdRef, TrustDomain, TrustDomainAliases};
///
/// let aliases = TrustDomainAliases::new(
///     TrustDomain::new("new.example")?,
///     [TrustDomain::new("old.example")?],
/// );
/// let policy = IdMatcher::istio(["cluster.local/ns/a/sa/b".parse::<IstioPrincipal>()?], Some(&aliases));
/// assert!(policy.matches(SpiffeIdRef::parse("spiffe://new.example/ns/a/sa/b")?));
/// assert!(policy.matches(SpiffeIdRef::parse("spiffe://old.example/ns/a/sa/b")?));
/// // `cluster.local` itself is only a pointer to the local trust domain.
/// assert!(!policy.matches(SpiffeIdRef::parse("spiffe://cluster.local/ns/a/sa/b")?));
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDomainAliases {
    /// `[trust_domain] + aliases`, the local trust domain first, no
    /// duplicates.
    domains: Vec<TrustDomain>,
}

/// Istio's default trust domain, which policies use as a pointer to "the local
/// trust domain and its aliases".
const CLUSTER_LOCAL: &str = "cluster.local";

impl TrustDomainAliases {
    /// The local trust domain and its aliases.
    pub fn new(trust_domain: TrustDomain, aliases: impl IntoIterator<Item = TrustDomain>) -> Self {
        let mut domains = Vec::from([trust_domain]);
        for alias in aliases {
            if !domains.contains(&alias) {
                domains.push(alias);
            }
        }
        Self { domains }
    }

    /// The local trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.domains[0]
    }

    /// The aliases, without the local trust domain.
    pub fn aliases(&self) -> &[TrustDomain] {
        &self.domains[1..]
    }

    /// Istio's rewrite of one principal: the principals a policy entry stands
    /// for under these aliases (at least the principal itself).
    pub fn expand(&self, principal: &IstioPrincipal) -> Vec<IstioPrincipal> {
        let Some((td, rest)) = principal.trust_domain_part() else {
            return Vec::from([principal.clone()]);
        };
        let rewritten = td == CLUSTER_LOCAL || self.domains.iter().any(|d| d.as_str() == td);
        if !rewritten {
            return Vec::from([principal.clone()]);
        }
        self.domains
            .iter()
            .map(|d| {
                let mut text = String::with_capacity(d.as_str().len() + rest.len());
                text.push_str(d.as_str());
                text.push_str(rest);
                IstioPrincipal {
                    kind: principal.kind,
                    text,
                }
            })
            .collect()
    }
}
