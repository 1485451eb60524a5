//! Authorization: deciding whether a peer whose X509-SVID was verified is
//! allowed.
//!
//! Verification ([`verify_x509_svid`](crate::verify_x509_svid)) establishes
//! *who* the peer is; an [`Authorizer`] decides whether that identity may
//! talk to us. The two steps are kept apart on purpose: an authorizer only
//! ever sees a [`VerifiedX509Svid`], so a chain that failed verification can
//! never be reported as an authorization problem, and a policy can never
//! accept a peer that was not verified.
//!
//! The usual policies are [`IdMatcher`]s (re-exported here and at the crate
//! root), which implement [`Authorizer`]:
//!
//! | policy | constructor |
//! |---|---|
//! | any verified peer | [`IdMatcher::any`] |
//! | exactly one ID | [`IdMatcher::exact`] |
//! | one of a set of IDs | [`IdMatcher::one_of`] |
//! | every ID of a trust domain | [`IdMatcher::member_of`] |
//! | an ID and everything below it | [`IdMatcher::path_prefix`] |
//! | Istio principals, with trust-domain aliases | [`IdMatcher::istio`] |
//! | combinations | [`IdMatcher::and`], [`IdMatcher::or`], [`IdMatcher::not`], [`IdMatcher::all_of`], [`IdMatcher::any_of`] |
//!
//! Closures `Fn(&VerifiedX509Svid) -> Result<(), AuthorizationError>` are
//! authorizers too, for policies that need more than the ID (for example the
//! chain or its expiry).
//!
//! ```
//! use spiffe_id::{SpiffeId, TrustDomain};
//! use spiffe_svid::authorize::{AuthorizationError, Authorizer, IdMatcher};
//! use spiffe_svid::VerifiedX509Svid;
//!
//! // Anyone in prod.example except the billing service.
//! let policy = IdMatcher::member_of(TrustDomain::new("prod.example")?)
//!     .and(IdMatcher::exact(SpiffeId::parse("spiffe://prod.example/billing")?).not());
//!
//! // A closure with its own reason.
//! let custom = |peer: &VerifiedX509Svid| {
//!     if peer.spiffe_id().path().starts_with("/admin") {
//!         Err(AuthorizationError::denied_because(peer.spiffe_id().clone(), "admins use another port"))
//!     } else {
//!         Ok(())
//!     }
//! };
//! fn takes_authorizer(_: &dyn Authorizer) {}
//! takes_authorizer(&policy);
//! takes_authorizer(&custom);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

pub use spiffe_id::IdMatcher;
use spiffe_id::SpiffeId;

use crate::VerifiedX509Svid;

/// Why an [`Authorizer`] refused a verified peer. Every variant names the
/// peer's SPIFFE ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The policy does not allow this SPIFFE ID.
    #[error("SPIFFE ID {id} is not authorized")]
    Denied {
        /// The peer's (verified) SPIFFE ID.
        id: SpiffeId,
    },
    /// The policy does not allow this SPIFFE ID, for the given reason.
    #[error("SPIFFE ID {id} is not authorized: {reason}")]
    DeniedBecause {
        /// The peer's (verified) SPIFFE ID.
        id: SpiffeId,
        /// Why, as the policy explains it.
        reason: String,
    },
}

impl AuthorizationError {
    /// A denial of `id` without further explanation.
    pub fn denied(id: SpiffeId) -> Self {
        AuthorizationError::Denied { id }
    }

    /// A denial of `id` with a reason.
    pub fn denied_because(id: SpiffeId, reason: impl Into<String>) -> Self {
        AuthorizationError::DeniedBecause {
            id,
            reason: reason.into(),
        }
    }

    /// The SPIFFE ID that was denied.
    pub fn spiffe_id(&self) -> &SpiffeId {
        match self {
            AuthorizationError::Denied { id } | AuthorizationError::DeniedBecause { id, .. } => id,
        }
    }
}

/// Decides whether a verified peer is allowed.
///
/// Implemented by [`IdMatcher`] (the peer's SPIFFE ID must match), by
/// closures `Fn(&VerifiedX509Svid) -> Result<(), AuthorizationError>`
/// (references to and boxes of such closures included), and by `Arc`s of any
/// authorizer (`Arc<dyn Authorizer>` for a policy chosen at run time).
pub trait Authorizer: Send + Sync {
    /// `Ok(())` if `peer` is allowed.
    ///
    /// # Errors
    ///
    /// [`AuthorizationError`] naming the peer's SPIFFE ID when it is not.
    fn authorize(&self, peer: &VerifiedX509Svid) -> Result<(), AuthorizationError>;
}

impl Authorizer for IdMatcher {
    fn authorize(&self, peer: &VerifiedX509Svid) -> Result<(), AuthorizationError> {
        if self.matches(peer.spiffe_id()) {
            Ok(())
        } else {
            Err(AuthorizationError::denied(peer.spiffe_id().clone()))
        }
    }
}

impl<F> Authorizer for F
where
    F: Fn(&VerifiedX509Svid) -> Result<(), AuthorizationError> + Send + Sync,
{
    fn authorize(&self, peer: &VerifiedX509Svid) -> Result<(), AuthorizationError> {
        self(peer)
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    fn authorize(&self, peer: &VerifiedX509Svid) -> Result<(), AuthorizationError> {
        (**self).authorize(peer)
    }
}
