//! The embeddable Workload API server (feature `server`).
//!
//! A mesh component (a SPIRE-like agent, an Istio-like node agent) provides
//! identities through an [`IdentityProvider`]; this module does the rest:
//!
//! | piece | what it does |
//! |---|---|
//! | [`UnixSocketListener`], [`TcpSocketListener`] | bind the endpoint (stale socket removed, mode set, loopback-only TCP) and tag each connection with its [`Caller`] (peer credentials, `/proc` handle) |
//! | [`Caller`] | who connected; [`Caller::from_request`] reads it in any tonic service on the same socket, [`Caller::check_alive`] checks the process is still the one that connected (W3) |
//! | [`WorkloadApiService`] | `SpiffeWorkloadAPI`: security header first (W2), attestation once per RPC, full-state streams, statuses as the specification prescribes |
//! | [`WorkloadApiServer`] | limits (streams, message sizes) and `serve_*` helpers with graceful shutdown that ends open streams |
//! | [`SelectorIdentityProvider`] | a ready provider: entries selected by uid/gid, rotation pushed to every open stream |
//!
//! # Embedding
//!
//! ```no_run
//! use spiffe_id::{SpiffeId, TrustDomain};
//! use spiffe_workload_api::server::{
//!     RegistrationEntry, SelectorIdentityProvider, Selector, UnixSocketListener,
//!     WorkloadApiServer,
//! };
//! # async fn run(ca_bundle: spiffe_bundle::X509Bundle, svid: spiffe_svid::X509Svid)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let provider = std::sync::Arc::new(SelectorIdentityProvider::new(ca_bundle));
//! provider.set_entry(RegistrationEntry::new("web", [Selector::Uid(1000)], svid));
//!
//! // Bind first, so clients can connect as soon as this returns (S2).
//! let listener = UnixSocketListener::bind("/run/spiffe/agent.sock")?;
//! WorkloadApiServer::from_arc(provider.clone())
//!     .max_streams(10_000)
//!     .serve_with_incoming(listener, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! // Rotation elsewhere: `provider.set_entry(...)` with the new SVID.
//! # Ok(()) }
//! ```
//!
//! Another service on the same socket (Envoy SDS) is added to the router
//! that [`WorkloadApiServer::tonic_server`] starts, next to
//! [`WorkloadApiServer::service`], sharing one [`ShutdownSignal`]:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use spiffe_workload_api::server::*;
//! # async fn run(provider: Arc<SelectorIdentityProvider>) -> Result<(), Box<dyn std::error::Error>> {
//! let server = WorkloadApiServer::from_arc(provider);
//! let shutdown = ShutdownSignal::new();
//! let listener = UnixSocketListener::bind("/run/spiffe/agent.sock")?;
//! let stop = shutdown.clone();
//! let serving = server
//!     .tonic_server()
//!     .add_service(server.service(&shutdown))
//!     // .add_service(sds_service_reading_Caller_from_request_extensions)
//!     .serve_with_incoming_shutdown(listener, async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         stop.trigger(); // ends the open streams, then tonic drains
//!     });
//! // The drain is bounded: connections still open after SHUTDOWN_GRACE
//! // are closed.
//! shutdown.drain_within_grace(serving).await?;
//! # Ok(()) }
//! ```
//!
//! # Decisions
//!
//! - **Attestation** is the provider's: the server hands it the [`Caller`]
//!   once per RPC, then checks liveness (W3/W4). A failed liveness check
//!   fails the RPC with `Unavailable "workload attestation failed"`; the
//!   connection stays open (tonic gives a service no handle to close it).
//! - **Streams end on shutdown** with `Unavailable`, so clients reconnect
//!   with a backoff; without that, tonic's graceful shutdown would wait for
//!   the long-lived streams forever. [`WorkloadApiServer::serve_with_incoming`]
//!   then closes whatever is still open after [`SHUTDOWN_GRACE`] (a client
//!   that stops reading could otherwise hold the drain open).
//! - **Limits**: HTTP/2 `max_concurrent_streams` per connection (excess
//!   streams are refused by HTTP/2), a global cap on open streams
//!   (`Unavailable "too many open Workload API streams"`, retried by
//!   clients), and message sizes. tonic's `concurrency_limit_per_connection`
//!   is not used: it queues requests, and a queued request behind
//!   long-lived streams would wait for ever.
//! - **JWT bundles** are plain JWKS as SPIRE serves them (no `use`, no
//!   `spiffe_*` members; [`spiffe_bundle::JwtBundle::to_jwks`]).
//! - **WIT-SVIDs** are not supported: `Unimplemented` (W-29).
//! - **Deterministic responses**: SVIDs in provider order, bundles by trust
//!   domain; the generated `map` fields are `BTreeMap`s, so messages of
//!   equal content are equal bytes on the wire.

mod caller;
mod listener;
mod provider;
mod selector;
mod service;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::transport::server::Connected;

pub use caller::{Caller, CallerError};
pub use listener::{Connection, DEFAULT_SOCKET_MODE, TcpSocketListener, UnixSocketListener};
pub use provider::{IdentityProvider, ProviderError, Published, Updates};
pub use selector::{
    JWT_CACHE_CAPACITY, JwtMinter, RegistrationEntry, Registrations, Selector,
    SelectorIdentityProvider,
};
pub use service::{ResponseStream, WorkloadApiService, check_security_header};

use crate::EndpointAddress;
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApiServer;

/// Default cap on open streams across all connections.
pub const DEFAULT_MAX_STREAMS: usize = 10_000;
/// Default HTTP/2 limit on concurrent streams per connection. Envoy opens
/// one SDS stream per secret, and a process may watch several things, so
/// this is generous.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 1_024;
/// Default limit on a decoded request. Workload API requests are small (the
/// largest is a JWT-SVID to validate, 16 KiB by default).
pub const DEFAULT_MAX_DECODING_MESSAGE_SIZE: usize = 1024 * 1024;
/// Default limit on an encoded response (many federated bundles make large
/// responses).
pub const DEFAULT_MAX_ENCODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How long [`WorkloadApiServer::serve_with_incoming`] lets open
/// connections drain after shutdown is signalled before closing them.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a server could not start or stopped with an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The directory that should hold the socket does not exist; it is not
    /// created, since its ownership and mode are the operator's choice.
    #[error("directory {path} for the socket does not exist")]
    ParentDirectoryMissing {
        /// The directory.
        path: String,
    },
    /// The socket path holds a file that is not a socket; it is left alone.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: String,
    },
    /// Another server is listening on the socket (it accepted a
    /// connection); it is left alone. Only a socket nobody listens on is
    /// replaced as stale.
    #[error("{path} is in use by another server; refusing to replace it")]
    SocketInUse {
        /// The path.
        path: String,
    },
    /// A TCP address that is not loopback (E-03).
    #[error(
        "{addr} is not a loopback address; TCP is only allowed where the source address identifies the workload"
    )]
    NotLoopback {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// A system call on the socket failed.
    #[error("cannot {op} {path}: {reason}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The socket path or address.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {reason}")]
    Transport {
        /// tonic's error.
        reason: String,
    },
}

/// A shutdown signal shared by the services on one endpoint. Cloning gives
/// another handle to the same signal; [`ShutdownSignal::trigger`] on any of
/// them ends every stream that waits on it.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        ShutdownSignal::new()
    }
}

impl ShutdownSignal {
    /// A signal not triggered yet.
    pub fn new() -> Self {
        ShutdownSignal {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Triggers the signal (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A future that completes once the signal is triggered. It keeps the
    /// signal alive, so dropping every other handle does not complete it.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let tx = Arc::clone(&self.tx);
        async move {
            let mut rx = tx.subscribe();
            // `tx` lives in this future, so the channel cannot close.
            let _ = rx.wait_for(|triggered| *triggered).await;
        }
    }

    /// Runs `serving`, a server whose graceful shutdown this signal starts
    /// (tonic's `serve_with_incoming_shutdown` with a shutdown future that
    /// calls [`ShutdownSignal::trigger`]), until it ends, or until
    /// [`SHUTDOWN_GRACE`] after the signal was triggered, whichever is
    /// first. The graceful drain waits for every connection to close, and a
    /// client that keeps its connection open or stops reading (its
    /// flow-control window full) would otherwise hold the server, and its
    /// socket file, for ever; past the grace period `serving` is dropped,
    /// which closes what is left.
    ///
    /// # Errors
    ///
    /// [`ServeError::Transport`] with the server's error if it fails.
    pub async fn drain_within_grace<E: std::fmt::Display>(
        &self,
        serving: impl Future<Output = Result<(), E>>,
    ) -> Result<(), ServeError> {
        let deadline = async {
            self.triggered().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = serving => result.map_err(|e| ServeError::Transport {
                reason: e.to_string(),
            }),
            () = deadline => Ok(()),
        }
    }
}

/// A Workload API server over an [`IdentityProvider`]: its limits, and
/// helpers that serve it on an endpoint until a shutdown future completes.
pub struct WorkloadApiServer<P> {
    provider: Arc<P>,
    max_streams: usize,
    max_streams_per_connection: u32,
    max_decoding_message_size: usize,
    max_encoding_message_size: usize,
}

impl<P> std::fmt::Debug for WorkloadApiServer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadApiServer")
            .field("max_streams", &self.max_streams)
            .field(
                "max_streams_per_connection",
                &self.max_streams_per_connection,
            )
            .field("max_decoding_message_size", &self.max_decoding_message_size)
            .field("max_encoding_message_size", &self.max_encoding_message_size)
            .finish_non_exhaustive()
    }
}

impl<P: IdentityProvider> WorkloadApiServer<P> {
    /// A server over `provider` with the default limits.
    pub fn new(provider: P) -> Self {
        Self::from_arc(Arc::new(provider))
    }

    /// A server over a shared provider (the embedder keeps a handle to push
    /// updates, the SDS service may share it).
    pub fn from_arc(provider: Arc<P>) -> Self {
        WorkloadApiServer {
            provider,
            max_streams: DEFAULT_MAX_STREAMS,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_decoding_message_size: DEFAULT_MAX_DECODING_MESSAGE_SIZE,
            max_encoding_message_size: DEFAULT_MAX_ENCODING_MESSAGE_SIZE,
        }
    }

    /// The cap on open streams across all connections
    /// ([`DEFAULT_MAX_STREAMS`]); a stream over it is refused with
    /// `Unavailable`.
    #[must_use]
    pub fn max_streams(mut self, max: usize) -> Self {
        self.max_streams = max;
        self
    }

    /// The HTTP/2 limit on concurrent streams per connection
    /// ([`DEFAULT_MAX_STREAMS_PER_CONNECTION`]).
    #[must_use]
    pub fn max_streams_per_connection(mut self, max: u32) -> Self {
        self.max_streams_per_connection = max;
        self
    }

    /// The largest request accepted, in bytes
    /// ([`DEFAULT_MAX_DECODING_MESSAGE_SIZE`]).
    #[must_use]
    pub fn max_decoding_message_size(mut self, max: usize) -> Self {
        self.max_decoding_message_size = max;
        self
    }

    /// The largest response sent, in bytes
    /// ([`DEFAULT_MAX_ENCODING_MESSAGE_SIZE`]); a larger one fails the RPC.
    #[must_use]
    pub fn max_encoding_message_size(mut self, max: usize) -> Self {
        self.max_encoding_message_size = max;
        self
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<P> {
        &self.provider
    }

    /// The `SpiffeWorkloadAPI` tonic service with this server's limits, for
    /// a router of your own. Its streams end when `shutdown` is triggered.
    /// Each call makes a service with its own stream cap.
    pub fn service(
        &self,
        shutdown: &ShutdownSignal,
    ) -> SpiffeWorkloadApiServer<WorkloadApiService<P>> {
        let service = WorkloadApiService::new(
            Arc::clone(&self.provider),
            self.max_streams,
            shutdown.clone(),
        );
        SpiffeWorkloadApiServer::new(service)
            .max_decoding_message_size(self.max_decoding_message_size)
            .max_encoding_message_size(self.max_encoding_message_size)
    }

    /// A tonic server builder with this server's HTTP/2 limits, to add the
    /// Workload API and other services (SDS, health) to one endpoint.
    pub fn tonic_server(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder().max_concurrent_streams(self.max_streams_per_connection)
    }

    /// Serves the Workload API on the connections of `incoming` (a
    /// [`UnixSocketListener`] or [`TcpSocketListener`]) until `shutdown`
    /// completes; then open streams end with `Unavailable`, connections are
    /// drained, and `incoming` is dropped (a Unix listener removes its
    /// socket file).
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
        let service = self.service(&signal);
        let serving = self
            .tonic_server()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                stop.trigger();
            });
        signal.drain_within_grace(serving).await
    }

    /// Binds `address` ([`UnixSocketListener::bind`] or
    /// [`TcpSocketListener::bind`], loopback only) and serves until
    /// `shutdown` completes; see [`WorkloadApiServer::serve_with_incoming`].
    ///
    /// # Errors
    ///
    /// The binding errors of the listener, and [`ServeError::Transport`].
    pub async fn serve(
        self,
        address: &EndpointAddress,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        match address {
            EndpointAddress::Unix(path) => {
                let listener = UnixSocketListener::bind(path)?;
                self.serve_with_incoming(listener, shutdown).await
            }
            EndpointAddress::Tcp(addr) => {
                let listener = TcpSocketListener::bind(*addr).await?;
                self.serve_with_incoming(listener, shutdown).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SHUTDOWN_GRACE, ServeError, ShutdownSignal};

    #[tokio::test(start_paused = true)]
    async fn a_drain_that_never_ends_is_cut_at_the_grace_period() {
        let signal = ShutdownSignal::new();
        let trigger = signal.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.trigger();
        });
        let start = tokio::time::Instant::now();
        let never = std::future::pending::<Result<(), std::io::Error>>();
        let result = signal.drain_within_grace(never).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(start.elapsed(), Duration::from_secs(1) + SHUTDOWN_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn without_the_signal_there_is_no_deadline() {
        let signal = ShutdownSignal::new();
        let long = async {
            tokio::time::sleep(SHUTDOWN_GRACE * 10).await;
            Err::<(), _>("listener closed")
        };
        let start = tokio::time::Instant::now();
        match signal.drain_within_grace(long).await {
            Err(ServeError::Transport { reason }) => assert_eq!(reason, "listener closed"),
            other => panic!("expected the server's own error, got {other:?}"),
        }
        assert_eq!(start.elapsed(), SHUTDOWN_GRACE * 10);
    }
}
