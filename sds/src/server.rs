//! The SDS server (feature `server`): `SecretDiscoveryService` over the
//! Workload API's [`IdentityProvider`], alone or on the same Unix socket as
//! the Workload API.
//!
//! # One socket for both APIs
//!
//! The SPIRE agent serves the Workload API and SDS on one socket, and Istio
//! points Envoy at one socket for SDS. [`SdsServer::serve_with_workload_api`]
//! does the same: one listener, one router, both services, the same
//! [`Caller`] attestation (the listener
//! reads the peer credentials at accept, each RPC hands them to the same
//! provider), one shutdown signal. The Workload API keeps requiring its
//! `workload.spiffe.io` header; SDS does not, since Envoy never sends it
//! (S3).
//!
//! # Listening first
//!
//! [`UnixSocketListener::bind`] listens as soon as it returns: the kernel
//! queues connections and the HTTP/2 handshake completes as soon as the
//! server is polled, before any RPC (S2). Bind before anything else starts,
//! in particular before Istio's pilot-agent: it probes the socket once at
//! startup with a one-second deadline, and **deletes** a socket it cannot
//! dial, then serves its own SDS there (I1, I2). Istio's default path is
//! [`ISTIO_WORKLOAD_SOCKET`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use spiffe_sds::SdsConfig;
//! use spiffe_sds::server::{SdsServer, ISTIO_WORKLOAD_SOCKET};
//! use spiffe_workload_api::server::{
//!     RegistrationEntry, Selector, SelectorIdentityProvider, UnixSocketListener, WorkloadApiServer,
//! };
//! # async fn run(ca: spiffe_bundle::X509Bundle, svid: spiffe_svid::X509Svid)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Arc::new(SelectorIdentityProvider::new(ca));
//! provider.set_entry(RegistrationEntry::new("envoy", [Selector::Uid(1337)], svid));
//!
//! // Listening from here on: Envoy and pilot-agent can connect.
//! let listener = UnixSocketListener::bind(ISTIO_WORKLOAD_SOCKET)?;
//! let config = SdsConfig::new(provider.trust_domain().clone());
//! SdsServer::new(Arc::clone(&provider), config)
//!     .serve_with_workload_api(WorkloadApiServer::from_arc(provider), listener, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

mod service;
mod source;

use std::future::Future;
use std::sync::Arc;

use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
use spiffe_workload_api::server::{
    Caller, IdentityProvider, ServeError, ShutdownSignal, WorkloadApiServer,
};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

pub use service::{SdsResponseStream, SdsService};
#[doc(no_inline)]
pub use spiffe_workload_api::server::UnixSocketListener;

use crate::config::SdsConfig;

/// Where Istio's pilot-agent looks for an external SDS server, and where
/// Envoy's `sds-grpc` cluster points, inside the proxy container (pilot-agent
/// runs from `/`, and uses the relative path
/// `./var/run/secrets/workload-spiffe-uds/socket`). A Kubernetes setup
/// mounts this directory from the node agent (for example a CSI driver).
/// Only the file name can be changed in Istio, with
/// `WORKLOAD_IDENTITY_SOCKET_FILE`.
pub const ISTIO_WORKLOAD_SOCKET: &str = "/var/run/secrets/workload-spiffe-uds/socket";

/// The same directory through the `/run` path most distributions link
/// `/var/run` to; use whichever the pod spec mounts.
pub const ISTIO_WORKLOAD_SOCKET_RUN: &str = "/run/secrets/workload-spiffe-uds/socket";

/// An SDS server over an [`IdentityProvider`]: the settings, and helpers
/// that serve it alone or next to the Workload API.
pub struct SdsServer<P> {
    provider: Arc<P>,
    config: Arc<SdsConfig>,
}

impl<P> std::fmt::Debug for SdsServer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdsServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<P: IdentityProvider> SdsServer<P> {
    /// A server that serves `provider`'s identities with `config`. Share the
    /// provider with the Workload API server (and keep a handle to publish
    /// rotations).
    pub fn new(provider: Arc<P>, config: SdsConfig) -> Self {
        SdsServer {
            provider,
            config: Arc::new(config),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SdsConfig {
        &self.config
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<P> {
        &self.provider
    }

    /// The tonic service, with the message-size limits of the config, for
    /// a router of your own. Its streams end with `Unavailable` when
    /// `shutdown` is triggered. Each call makes a service with its own
    /// stream cap.
    pub fn service(
        &self,
        shutdown: &ShutdownSignal,
    ) -> SecretDiscoveryServiceServer<SdsService<P>> {
        let max = self.config.limits().max_message_bytes;
        SecretDiscoveryServiceServer::new(SdsService::new(
            Arc::clone(&self.provider),
            Arc::clone(&self.config),
            shutdown.clone(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
    }

    /// Serves SDS alone on the connections of `incoming` (a
    /// [`UnixSocketListener`]) until `shutdown` completes; then open streams
    /// end with `Unavailable` and connections drain, for at most
    /// [`SHUTDOWN_GRACE`](spiffe_workload_api::server::SHUTDOWN_GRACE).
    ///
    /// # Errors
    ///
    /// [`ServeError::Transport`] if the gRPC server fails.
    pub async fn serve_with_incoming<I, IO, IE>(
        self,
        incoming: I,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError>
    where
        I: Stream<Item = Result<IO, IE>>,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + Connected<ConnectInfo = Caller>
            + Unpin
            + Send
            + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let signal = ShutdownSignal::new();
        let stop = signal.clone();
        let serving = tonic::transport::Server::builder()
            .add_service(self.service(&signal))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                stop.trigger();
            });
        signal.drain_within_grace(serving).await
    }

    /// Serves the Workload API of `workload_api` and SDS on the same
    /// connections (one Unix socket, as the SPIRE agent does), with the same
    /// caller attestation, until `shutdown` completes. The HTTP/2 limits are
    /// the Workload API server's.
    ///
    /// # Errors
    ///
    /// [`ServeError::Transport`] if the gRPC server fails.
    pub async fn serve_with_workload_api<Q, I, IO, IE>(
        self,
        workload_api: WorkloadApiServer<Q>,
        incoming: I,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError>
    where
        Q: IdentityProvider,
        I: Stream<Item = Result<IO, IE>>,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + Connected<ConnectInfo = Caller>
            + Unpin
            + Send
            + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let signal = ShutdownSignal::new();
        let stop = signal.clone();
        let serving = workload_api
            .tonic_server()
            .add_service(workload_api.service(&signal))
            .add_service(self.service(&signal))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                stop.trigger();
            });
        signal.drain_within_grace(serving).await
    }
}
