//! The trait a mesh component implements to hand out identities, and the
//! errors it reports.

use std::future::Future;
use std::sync::Arc;

use rustls_pki_types::UnixTime;
use spiffe_id::SpiffeId;
use spiffe_svid::JwtSvid;
use tokio::sync::watch;

use super::Caller;
use crate::{JwtBundles, JwtSvidToken, X509Bundles, X509Context};

/// The current value of something a caller is entitled to, or why it has
/// none right now.
pub type Published<T> = Result<Arc<T>, ProviderError>;

/// A subscription to a caller's changing state: a [`watch`] channel whose
/// current value is the whole state (every Workload API message carries the
/// full state, W-05).
///
/// A watch channel is what makes a rotation cheap to fan out: the provider
/// stores one new [`Arc`] with one `send`, every open stream is woken, and a
/// slow stream skips straight to the newest value instead of queueing old
/// ones. Callers with the same entitlements can share one sender, so pushing
/// a rotation to 10,000 streams costs one store and 10,000 wake-ups.
///
/// What the value means to the server:
///
/// - `Ok(state)`: send it (the first one straight away, W-07);
/// - `Err(ProviderError::NoIdentity)`: answer `PermissionDenied "no identity
///   issued"` and end the stream, also in the middle of one (W5);
/// - any other `Err`: end the stream with that error's status;
/// - the sender dropped: end the stream with `Unavailable`, so the client
///   reconnects.
pub type Updates<T> = watch::Receiver<Published<T>>;

/// Why a provider cannot give a caller what it asked for. Each variant maps
/// to the status the Workload API specification prescribes
/// ([`ProviderError::to_status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The caller is entitled to no identity (or not to the requested one):
    /// `PermissionDenied "no identity issued"` (W-17, W-22). Clients retry
    /// with a backoff: the server may be eventually consistent.
    #[error("no identity issued")]
    NoIdentity,
    /// The caller could not be attested: `Unavailable "workload attestation
    /// failed"` (W4). The reason is for the embedder's logs; the client only
    /// sees the fixed message.
    #[error("workload attestation failed: {reason}")]
    AttestationFailed {
        /// What went wrong.
        reason: String,
    },
    /// The request is malformed, or the token to validate is not valid:
    /// `InvalidArgument` with this reason. Clients do not retry.
    #[error("{reason}")]
    InvalidRequest {
        /// What is wrong with it, sent to the client.
        reason: String,
    },
    /// The provider cannot answer now (upstream unreachable, minting failed,
    /// internal error): `Unavailable` with this reason. Clients retry.
    #[error("{reason}")]
    Unavailable {
        /// Why, sent to the client.
        reason: String,
    },
}

impl ProviderError {
    /// The gRPC status a Workload API server answers with (W11).
    pub fn to_status(&self) -> tonic::Status {
        match self {
            ProviderError::NoIdentity => tonic::Status::permission_denied("no identity issued"),
            ProviderError::AttestationFailed { .. } => {
                tonic::Status::unavailable("workload attestation failed")
            }
            ProviderError::InvalidRequest { reason } => tonic::Status::invalid_argument(reason),
            ProviderError::Unavailable { reason } => tonic::Status::unavailable(reason),
        }
    }
}

/// The source of identities behind a Workload API server: the SPIRE-like
/// agent or node agent that embeds the server implements it.
///
/// Every method receives the [`Caller`], attested from the connection's
/// peer credentials. The server calls each method once per RPC (attestation
/// is per RPC, S4/W4), checks afterwards that the caller is still the same
/// live process ([`Caller::check_alive`], W3), and turns errors into statuses
/// with [`ProviderError::to_status`].
///
/// Methods return `impl Future + Send`, so an implementation can be written
/// with `async fn`:
///
/// ```
/// use std::sync::Arc;
/// use spiffe_id::SpiffeId;
/// use spiffe_workload_api::server::{Caller, IdentityProvider, ProviderError, Updates};
/// use spiffe_workload_api::{JwtBundles, JwtSvidToken, X509Bundles, X509Context};
/// use tokio::sync::watch;
///
/// /// Serves one fixed X.509 context to every process of user 1000.
/// struct OneUser {
///     context: watch::Sender<Result<Arc<X509Context>, ProviderError>>,
///     bundles: watch::Sender<Result<Arc<X509Bundles>, ProviderError>>,
///     jwt_bundles: watch::Sender<Result<Arc<JwtBundles>, ProviderError>>,
/// }
///
/// impl OneUser {
///     fn check(&self, caller: &Caller) -> Result<(), ProviderError> {
///         if caller.uid() == Some(1000) { Ok(()) } else { Err(ProviderError::NoIdentity) }
///     }
/// }
///
/// impl IdentityProvider for OneUser {
///     async fn x509_context(&self, caller: &Caller) -> Result<Updates<X509Context>, ProviderError> {
///         self.check(caller)?;
///         Ok(self.context.subscribe())
///     }
///     async fn x509_bundles(&self, caller: &Caller) -> Result<Updates<X509Bundles>, ProviderError> {
///         self.check(caller)?;
///         Ok(self.bundles.subscribe())
///     }
///     async fn jwt_svids(
///         &self,
///         caller: &Caller,
///         _audience: &[String],
///         _spiffe_id: Option<&SpiffeId>,
///     ) -> Result<Vec<JwtSvidToken>, ProviderError> {
///         self.check(caller)?;
///         Err(ProviderError::Unavailable { reason: "JWT-SVIDs are not issued here".into() })
///     }
///     async fn jwt_bundles(&self, caller: &Caller) -> Result<Updates<JwtBundles>, ProviderError> {
///         self.check(caller)?;
///         Ok(self.jwt_bundles.subscribe())
///     }
///     // `validate_jwt_svid` has a default: the caller's JWT bundles.
/// }
/// ```
pub trait IdentityProvider: Send + Sync + 'static {
    /// The caller's X.509 context (SVIDs with hints, the bundles of their
    /// trust domains and federated bundles), for `FetchX509SVID`.
    ///
    /// # Errors
    ///
    /// [`ProviderError::AttestationFailed`] when the caller cannot be
    /// attested, [`ProviderError::NoIdentity`] when it has no identity, or
    /// [`ProviderError::Unavailable`]. The same errors can also arrive later
    /// as values of the subscription.
    fn x509_context(
        &self,
        caller: &Caller,
    ) -> impl Future<Output = Result<Updates<X509Context>, ProviderError>> + Send;

    /// The X.509 bundles the caller may use to verify peers, for
    /// `FetchX509Bundles`. They must include the server's own trust domain
    /// (W-19); the server refuses to send an empty set. SPIRE serves them
    /// only to callers with an identity, unless configured to allow
    /// "unauthenticated verifiers" (W6).
    ///
    /// # Errors
    ///
    /// As [`IdentityProvider::x509_context`].
    fn x509_bundles(
        &self,
        caller: &Caller,
    ) -> impl Future<Output = Result<Updates<X509Bundles>, ProviderError>> + Send;

    /// JWT-SVIDs for `audience` (never empty: the server answers
    /// `InvalidArgument` first), one per identity of the caller, or only for
    /// `spiffe_id` when given (W-20), for `FetchJWTSVID`. An empty list is
    /// answered with `PermissionDenied` (W-22).
    ///
    /// # Errors
    ///
    /// [`ProviderError::NoIdentity`] when the caller has no (such) identity,
    /// [`ProviderError::AttestationFailed`], or
    /// [`ProviderError::Unavailable`] when minting fails.
    fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> impl Future<Output = Result<Vec<JwtSvidToken>, ProviderError>> + Send;

    /// The JWT bundles the caller may use to validate JWT-SVIDs, including
    /// the own trust domain (W-23), for `FetchJWTBundles`.
    ///
    /// # Errors
    ///
    /// As [`IdentityProvider::x509_context`].
    fn jwt_bundles(
        &self,
        caller: &Caller,
    ) -> impl Future<Output = Result<Updates<JwtBundles>, ProviderError>> + Send;

    /// Validates `token` for `audience` (both non-empty) on the caller's
    /// behalf, for `ValidateJWTSVID` (W-25).
    ///
    /// The default validates against the current value of
    /// [`IdentityProvider::jwt_bundles`] for this caller at the current
    /// time, with the default [`spiffe_svid::JwtValidationOptions`].
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidRequest`] when the token is not a valid
    /// JWT-SVID for `audience`, or the errors of
    /// [`IdentityProvider::jwt_bundles`].
    fn validate_jwt_svid(
        &self,
        caller: &Caller,
        token: &str,
        audience: &str,
    ) -> impl Future<Output = Result<JwtSvid, ProviderError>> + Send {
        async move {
            let updates = self.jwt_bundles(caller).await?;
            // Clone the Arc out: a watch borrow must not be held across an
            // await, and validation needs none.
            let bundles = updates.borrow().clone()?;
            JwtSvid::parse_and_validate(token, &*bundles, &[audience], UnixTime::now()).map_err(
                |e| ProviderError::InvalidRequest {
                    reason: format!("invalid JWT-SVID: {e}"),
                },
            )
        }
    }
}
