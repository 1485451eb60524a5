//! `X509Source`: the workload's X.509-SVID and bundles, following
//! `FetchX509SVID`.

use std::sync::Arc;

use rustls_pki_types::UnixTime;
use spiffe_bundle::{X509Bundle, X509BundleSource};
use spiffe_id::TrustDomain;
use spiffe_svid::X509Svid;

use super::follow::{Follower, Published};
use super::{SourceOptions, Subscription};
use crate::decode::decode_x509_svid_response;
use crate::{ClientError, EndpointAddress, WorkloadApiClient, X509Context, proto};

/// The workload's X.509 identity and trust bundles, kept current by
/// following `FetchX509SVID`.
///
/// It serves one SVID, picked by [`SourceOptions::with_svid`] (the default
/// one unless told otherwise), and the bundles of the X.509 context. It is
/// an [`X509BundleSource`], so it plugs into
/// [`spiffe_svid::verify_x509_svid`] and the rustls verifiers; with feature
/// `rustls` it is also an `SvidSource` for the rustls certificate resolver,
/// which then presents each new SVID from the next handshake on.
///
/// # How a source follows the Workload API
///
/// The three sources ([`X509Source`], [`JwtSource`](crate::JwtSource),
/// [`BundleSource`](crate::BundleSource)) work alike. The constructor waits
/// for the first usable message; then a background Tokio task follows the
/// stream:
///
/// - a message that breaks the rules is discarded and the stream kept
///   (W-11); a message identical to the last one published changes
///   nothing and wakes no subscriber;
/// - when the stream ends or fails, the source reconnects with exponential
///   backoff and full jitter (the first retry within the base delay,
///   doubling up to a cap), reset once a message arrives (W-04, E-14,
///   E-15);
/// - `InvalidArgument` (E-13) and `Unimplemented` (E-16) stop it for good
///   (`Cancelled` is retried: only the peer can cancel a source's stream);
/// - meanwhile it keeps serving the last good material and never goes back
///   to serving nothing. An SVID the agent can no longer renew stays usable
///   until it expires, and peers still accept it; dropping it would turn a
///   control-plane outage into a data-plane one. This is a deliberate
///   choice against W-18 (a SHOULD) when a stream fails, even with
///   `PermissionDenied`. A *message* that leaves an SVID or bundle out does
///   remove it (W-08, W-09). `last_error()` tells what went wrong.
///
/// Clones share one background task, which stops when the last clone is
/// dropped (subscriptions do not keep it alive).
///
/// ```no_run
/// use rustls_pki_types::{CertificateDer, UnixTime};
/// use spiffe_workload_api::X509Source;
///
/// # async fn run(peer_chain: Vec<CertificateDer<'static>>) -> Result<(), Box<dyn std::error::Error>> {
/// let source = X509Source::from_env().await?;
/// println!("serving {}", source.svid()?.spiffe_id());
///
/// // Verify a peer against the bundle of its trust domain.
/// let peer = spiffe_svid::verify_x509_svid(&peer_chain, &source, UnixTime::now())?;
/// println!("peer is {}", peer.spiffe_id());
///
/// // React to rotation.
/// let mut updates = source.subscribe();
/// while let Ok(context) = updates.changed().await {
///     println!("rotated: {}", context.default_svid().spiffe_id());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct X509Source {
    inner: Arc<Follower<X509Context>>,
}

impl X509Source {
    /// Follows the Workload API at `address` with the default
    /// [`SourceOptions`]; returns once the first X.509 context has arrived.
    ///
    /// # Errors
    ///
    /// As [`X509Source::with_options`], and [`ClientError::Connect`]
    /// outside a Tokio runtime.
    pub async fn new(address: &EndpointAddress) -> Result<Self, ClientError> {
        let client = WorkloadApiClient::connect_lazy(address)?;
        Self::with_options(client, SourceOptions::default()).await
    }

    /// Follows the Workload API named by `SPIFFE_ENDPOINT_SOCKET` (E-07);
    /// see [`X509Source::new`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Address`] when the variable is unset or invalid;
    /// otherwise as [`X509Source::new`].
    pub async fn from_env() -> Result<Self, ClientError> {
        Self::new(&EndpointAddress::from_env()?).await
    }

    /// Follows the Workload API through `client`; returns once a message
    /// has decoded and held the SVID `options` asks for. Until then,
    /// failures are retried with backoff. Needs a Tokio runtime with timers
    /// enabled.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoInitialUpdate`] when no usable message came within
    /// the initial timeout, with the last error seen (a connection failure,
    /// `PermissionDenied`, a [`ClientError::Decode`] error, a
    /// [`ClientError::SvidNotFound`], ...); [`ClientError::Status`] at once
    /// for a status that is not retried (`InvalidArgument`,
    /// `Unimplemented`); [`ClientError::Connect`] outside a
    /// Tokio runtime.
    pub async fn with_options(
        client: WorkloadApiClient,
        options: SourceOptions,
    ) -> Result<Self, ClientError> {
        let selector = options.svid.clone();
        let decode = Box::new(move |message: &proto::X509svidResponse| {
            let context = decode_x509_svid_response(message)?;
            // A message without the chosen SVID is still the agent's whole
            // truth (W-08, W-09): its bundles replace the old ones and the
            // SVID is gone, so nothing stale is served or trusted.
            let (svid, problem) = match selector.select(&context) {
                Ok(svid) => (Some(Arc::new(svid.clone())), None),
                Err(problem) => (None, Some(problem)),
            };
            Ok(Published {
                value: Arc::new(context),
                svid,
                problem,
            })
        });
        let inner = Follower::start(
            client,
            &options,
            |client| Box::pin(async move { client.open_x509_svid().await }),
            decode,
        )
        .await?;
        Ok(X509Source {
            inner: Arc::new(inner),
        })
    }

    /// The latest X.509 context: all SVIDs and bundles.
    pub fn x509_context(&self) -> Arc<X509Context> {
        self.inner.value()
    }

    /// The SVID this source serves, from the latest context. The same `Arc`
    /// is returned until the SVID changes.
    ///
    /// # Errors
    ///
    /// [`ClientError::SvidNotFound`] when the latest message from the agent
    /// left out the SVID this source was asked for (by hint or ID);
    /// [`ClientError::SvidExpired`] once the SVID's leaf has expired (the
    /// agent has not renewed it, for example while it is unreachable).
    pub fn svid(&self) -> Result<Arc<X509Svid>, ClientError> {
        let Some(svid) = self.inner.svid() else {
            return Err(self
                .inner
                .last_error()
                .filter(|e| matches!(e, ClientError::SvidNotFound { .. }))
                .unwrap_or_else(|| ClientError::SvidNotFound {
                    wanted: "the selected SVID".to_owned(),
                }));
        };
        if svid.expires_at() <= UnixTime::now() {
            return Err(ClientError::SvidExpired {
                spiffe_id: svid.spiffe_id().to_string(),
            });
        }
        Ok(svid)
    }

    /// Notifications of each change of the X.509 context.
    pub fn subscribe(&self) -> Subscription<X509Context> {
        self.inner.subscribe()
    }

    /// The last error met while following the Workload API, or `None` if
    /// the last message was good. A fatal error stays here after the source
    /// stopped.
    pub fn last_error(&self) -> Option<ClientError> {
        self.inner.last_error()
    }
}

impl X509BundleSource for X509Source {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.inner.value().x509_bundle_for(trust_domain)
    }
}

#[cfg(feature = "rustls")]
impl spiffe_svid::tls::SvidSource for X509Source {
    fn current(&self) -> Option<Arc<X509Svid>> {
        // Nothing rather than a missing or expired SVID: the handshake
        // fails instead of presenting stale material.
        self.svid().ok()
    }
}
