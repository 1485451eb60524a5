//! What the Workload API carries, as checked values: the X.509 context of a
//! workload, bundle collections and JWT-SVIDs. The client decodes responses
//! into these types and the server encodes them, so both sides agree on one
//! model.

use std::collections::BTreeMap;
use std::sync::Arc;

use spiffe_bundle::{JwtBundle, JwtBundleSource, X509Bundle, X509BundleSource};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;

/// Longest hint accepted. The Workload API specification says servers
/// should not support hints longer than 1024 bytes (W-32).
pub const MAX_HINT_LEN: usize = 1024;

/// Why a set of SVIDs and bundles does not form a valid Workload API value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// An X.509 context must hold at least one SVID (W-14).
    #[error("an X.509 context needs at least one SVID")]
    NoSvids,
    /// Two SVIDs carry the same non-empty hint (W-15).
    #[error("hint `{hint}` is used by more than one SVID")]
    DuplicateHint {
        /// The repeated hint.
        hint: String,
    },
    /// A hint is longer than [`MAX_HINT_LEN`] bytes (W-32).
    #[error("hint of {len} bytes is over the limit of {MAX_HINT_LEN} bytes")]
    HintTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// An SVID's trust domain has no X.509 bundle in the context (every
    /// SVID travels with its own trust domain's bundle, W-14).
    #[error("no X.509 bundle for the trust domain of SVID {spiffe_id}")]
    MissingBundle {
        /// The SVID whose bundle is missing.
        spiffe_id: SpiffeId,
    },
}

/// An X.509-SVID with the optional hint an operator gave it.
#[derive(Clone, Debug)]
pub struct HintedX509Svid {
    svid: X509Svid,
    hint: Option<Arc<str>>,
}

impl HintedX509Svid {
    /// Pairs an SVID with a hint (`None` or an empty hint mean no hint).
    pub fn new(svid: X509Svid, hint: Option<&str>) -> Self {
        let hint = hint.filter(|h| !h.is_empty()).map(Arc::from);
        HintedX509Svid { svid, hint }
    }

    /// The SVID.
    pub fn svid(&self) -> &X509Svid {
        &self.svid
    }

    /// The hint, if the SVID has one.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// X.509 bundles keyed by trust domain, at most one per trust domain, in
/// trust-domain order.
#[derive(Clone, Debug, Default)]
pub struct X509Bundles {
    map: BTreeMap<TrustDomain, X509Bundle>,
}

impl X509Bundles {
    /// An empty collection.
    pub fn new() -> Self {
        X509Bundles::default()
    }

    /// Adds `bundle`, returning the one it replaces for the same trust domain.
    pub fn insert(&mut self, bundle: X509Bundle) -> Option<X509Bundle> {
        self.map.insert(bundle.trust_domain().clone(), bundle)
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&X509Bundle> {
        self.map.get(trust_domain)
    }

    /// The bundles, in trust-domain order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &X509Bundle> + '_ {
        self.map.values()
    }

    /// How many trust domains have a bundle.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no bundle.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl FromIterator<X509Bundle> for X509Bundles {
    fn from_iter<I: IntoIterator<Item = X509Bundle>>(iter: I) -> Self {
        let mut bundles = X509Bundles::new();
        for bundle in iter {
            bundles.insert(bundle);
        }
        bundles
    }
}

impl X509BundleSource for X509Bundles {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.map.get(trust_domain).cloned()
    }
}

/// JWT bundles keyed by trust domain, at most one per trust domain, in
/// trust-domain order.
#[derive(Clone, Debug, Default)]
pub struct JwtBundles {
    map: BTreeMap<TrustDomain, JwtBundle>,
}

impl JwtBundles {
    /// An empty collection.
    pub fn new() -> Self {
        JwtBundles::default()
    }

    /// Adds `bundle`, returning the one it replaces for the same trust domain.
    pub fn insert(&mut self, bundle: JwtBundle) -> Option<JwtBundle> {
        self.map.insert(bundle.trust_domain().clone(), bundle)
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        self.map.get(trust_domain)
    }

    /// The bundles, in trust-domain order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &JwtBundle> + '_ {
        self.map.values()
    }

    /// How many trust domains have a bundle.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no bundle.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl FromIterator<JwtBundle> for JwtBundles {
    fn from_iter<I: IntoIterator<Item = JwtBundle>>(iter: I) -> Self {
        let mut bundles = JwtBundles::new();
        for bundle in iter {
            bundles.insert(bundle);
        }
        bundles
    }
}

impl JwtBundleSource for JwtBundles {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.map.get(trust_domain).cloned()
    }
}

/// The complete X.509 state of a workload: its SVIDs (the first is the
/// default identity, W-31) and the bundles it trusts, its own trust
/// domain's and federated ones.
///
/// Built with [`X509Context::new`], which enforces the Workload API's
/// rules: at least one SVID, unique non-empty hints of at most
/// [`MAX_HINT_LEN`] bytes, and a bundle for every SVID's trust domain.
///
/// It is an [`X509BundleSource`], so it plugs straight into
/// [`spiffe_svid::verify_x509_svid`] and the rustls verifiers.
#[derive(Clone, Debug)]
pub struct X509Context {
    // A copy of `svids[0]`, so the default needs no fallible lookup.
    default: X509Svid,
    svids: Vec<HintedX509Svid>,
    bundles: X509Bundles,
}

impl X509Context {
    /// Checks and assembles an X.509 context.
    ///
    /// # Errors
    ///
    /// [`ContextError::NoSvids`] for an empty list,
    /// [`ContextError::DuplicateHint`] or [`ContextError::HintTooLong`] for
    /// a bad hint, [`ContextError::MissingBundle`] when an SVID's trust
    /// domain has no bundle in `bundles`.
    pub fn new(svids: Vec<HintedX509Svid>, bundles: X509Bundles) -> Result<Self, ContextError> {
        let Some(first) = svids.first() else {
            return Err(ContextError::NoSvids);
        };
        let default = first.svid().clone();
        check_hints(svids.iter().map(HintedX509Svid::hint))?;
        for svid in &svids {
            let id = svid.svid().spiffe_id();
            if bundles.get(&id.trust_domain()).is_none() {
                return Err(ContextError::MissingBundle {
                    spiffe_id: id.clone(),
                });
            }
        }
        Ok(X509Context {
            default,
            svids,
            bundles,
        })
    }

    /// The default SVID: the first one.
    pub fn default_svid(&self) -> &X509Svid {
        &self.default
    }

    /// All SVIDs, the default first.
    pub fn svids(&self) -> &[HintedX509Svid] {
        &self.svids
    }

    /// The SVID with this hint.
    pub fn svid_by_hint(&self, hint: &str) -> Option<&X509Svid> {
        self.svids
            .iter()
            .find(|s| s.hint() == Some(hint))
            .map(HintedX509Svid::svid)
    }

    /// The first SVID with this SPIFFE ID.
    pub fn svid_by_id(&self, id: &SpiffeId) -> Option<&X509Svid> {
        self.svids
            .iter()
            .map(HintedX509Svid::svid)
            .find(|s| s.spiffe_id() == id)
    }

    /// The bundles: the SVIDs' own trust domains and federated ones.
    pub fn bundles(&self) -> &X509Bundles {
        &self.bundles
    }
}

impl X509BundleSource for X509Context {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.bundles.x509_bundle_for(trust_domain)
    }
}

/// A JWT-SVID token as the Workload API hands it out: the token, the
/// SPIFFE ID it was issued for, and an optional hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtSvidToken {
    spiffe_id: SpiffeId,
    token: Arc<str>,
    hint: Option<Arc<str>>,
}

impl JwtSvidToken {
    /// Pairs a compact JWS with the SPIFFE ID it was issued for.
    pub fn new(spiffe_id: SpiffeId, token: impl Into<Arc<str>>, hint: Option<&str>) -> Self {
        JwtSvidToken {
            spiffe_id,
            token: token.into(),
            hint: hint.filter(|h| !h.is_empty()).map(Arc::from),
        }
    }

    /// The SPIFFE ID the token was issued for.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The token, JWS compact serialization.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// Checks W-15 and W-32 on a list of hints (`None` = no hint).
///
/// # Errors
///
/// [`ContextError::DuplicateHint`] or [`ContextError::HintTooLong`].
pub(crate) fn check_hints<'a>(
    hints: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), ContextError> {
    let mut seen: Vec<&str> = Vec::new();
    for hint in hints.flatten() {
        if hint.len() > MAX_HINT_LEN {
            return Err(ContextError::HintTooLong { len: hint.len() });
        }
        if seen.contains(&hint) {
            return Err(ContextError::DuplicateHint {
                hint: hint.to_owned(),
            });
        }
        seen.push(hint);
    }
    Ok(())
}
