//! The tonic `SecretDiscoveryService` over an [`IdentityProvider`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use spiffe_workload_api::server::{Caller, IdentityProvider, ShutdownSignal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::source::WorkloadWatch;
use crate::config::SdsConfig;
use crate::delta::DeltaSecretStream;
use crate::error::SdsError;
use crate::fetch::fetch_secrets;
use crate::material::WorkloadSecrets;
use crate::stream::{RequestKind, SecretStream};

/// A response stream of the service.
pub type SdsResponseStream<M> = Pin<Box<dyn Stream<Item = Result<M, Status>> + Send + 'static>>;

/// Responses queued per stream before the stream's task waits for the
/// client to read; a slow client slows only its own stream.
const STREAM_BUFFER: usize = 4;

fn attestation_failed() -> Status {
    Status::unavailable("workload attestation failed")
}

fn shutting_down() -> Status {
    Status::unavailable("the SDS server is shutting down")
}

/// The `envoy.service.secret.v3.SecretDiscoveryService` gRPC service.
///
/// Built by [`SdsServer::service`](super::SdsServer::service). Every call:
///
/// 1. takes the [`Caller`] the listener attached to the connection (the
///    same as the Workload API's on a shared socket); a request without one
///    fails with `Unavailable "workload attestation failed"`. No security
///    header is required: Envoy never sends one (S3);
/// 2. for streams, takes a slot of the stream limit, or answers
///    `ResourceExhausted`;
/// 3. attests the caller through the provider, once per RPC, then checks
///    that it is still the process that connected (S4, W3);
/// 4. serves: `StreamSecrets` through a [`SecretStream`], `DeltaSecrets`
///    through a [`DeltaSecretStream`], `FetchSecrets` once. Streams follow
///    the provider's subscriptions, so a rotation reaches every open
///    stream as soon as the provider publishes it, and end with
///    `Unavailable` on shutdown.
pub struct SdsService<P> {
    provider: Arc<P>,
    config: Arc<SdsConfig>,
    streams: Arc<Semaphore>,
    shutdown: ShutdownSignal,
    next_stream_id: AtomicU64,
}

impl<P> std::fmt::Debug for SdsService<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdsService")
            .field("config", &self.config)
            .field("free_stream_slots", &self.streams.available_permits())
            .finish_non_exhaustive()
    }
}

impl<P: IdentityProvider> SdsService<P> {
    pub(super) fn new(provider: Arc<P>, config: Arc<SdsConfig>, shutdown: ShutdownSignal) -> Self {
        let max = config.limits().max_streams.min(Semaphore::MAX_PERMITS);
        SdsService {
            provider,
            config,
            streams: Arc::new(Semaphore::new(max)),
            shutdown,
            next_stream_id: AtomicU64::new(1),
        }
    }

    fn admit<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        if self.shutdown.is_triggered() {
            return Err(shutting_down());
        }
        Caller::from_request(request)
            .cloned()
            .ok_or_else(attestation_failed)
    }

    fn stream_slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.streams)
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("too many open SDS streams"))
    }

    async fn attest(&self, caller: &Caller) -> Result<WorkloadWatch, Status> {
        let watch =
            WorkloadWatch::attest(&*self.provider, caller, self.config.trust_domain().clone())
                .await?;
        caller.check_alive().map_err(|_| attestation_failed())?;
        Ok(watch)
    }

    fn spawn_stream<M: Machine>(
        &self,
        machine: M,
        watch: WorkloadWatch,
        inbound: Streaming<M::Request>,
        slot: OwnedSemaphorePermit,
    ) -> SdsResponseStream<M::Response> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            drive(machine, watch, inbound, tx, shutdown).await;
            drop(slot);
        });
        Box::pin(ReceiverStream::new(rx))
    }

    fn stream_id(&self) -> u64 {
        self.next_stream_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[tonic::async_trait]
impl<P: IdentityProvider> SecretDiscoveryService for SdsService<P> {
    type StreamSecretsStream = SdsResponseStream<DiscoveryResponse>;
    type DeltaSecretsStream = SdsResponseStream<DeltaDiscoveryResponse>;

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let caller = self.admit(&request)?;
        let slot = self.stream_slot()?;
        let watch = self.attest(&caller).await?;
        let machine = SecretStream::new(Arc::clone(&self.config), self.stream_id());
        let inbound = request.into_inner();
        Ok(Response::new(
            self.spawn_stream(machine, watch, inbound, slot),
        ))
    }

    async fn delta_secrets(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        let caller = self.admit(&request)?;
        let slot = self.stream_slot()?;
        let watch = self.attest(&caller).await?;
        let machine = DeltaSecretStream::new(Arc::clone(&self.config), self.stream_id());
        let inbound = request.into_inner();
        Ok(Response::new(
            self.spawn_stream(machine, watch, inbound, slot),
        ))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let caller = self.admit(&request)?;
        let mut watch = self.attest(&caller).await?;
        let secrets = watch.current()?;
        let response = fetch_secrets(&self.config, &secrets, request.get_ref()).map_err(|e| {
            log_error(&e, request.get_ref().node.as_ref());
            Status::from(e)
        })?;
        Ok(Response::new(response))
    }
}

/// A per-stream state machine the driver can run.
trait Machine: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    fn on_request(&mut self, request: &Self::Request) -> Result<Option<Self::Response>, SdsError>;
    fn on_update(
        &mut self,
        secrets: Arc<WorkloadSecrets>,
    ) -> Result<Option<Self::Response>, SdsError>;
    fn node(&self) -> Option<&Node>;
}

impl Machine for SecretStream {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;

    fn on_request(
        &mut self,
        request: &DiscoveryRequest,
    ) -> Result<Option<DiscoveryResponse>, SdsError> {
        let outcome = self.handle_request(request)?;
        log_kind(&outcome.kind, &request.resource_names, self.node());
        Ok(outcome.response)
    }

    fn on_update(
        &mut self,
        secrets: Arc<WorkloadSecrets>,
    ) -> Result<Option<DiscoveryResponse>, SdsError> {
        self.handle_update(secrets)
    }

    fn node(&self) -> Option<&Node> {
        SecretStream::node(self)
    }
}

impl Machine for DeltaSecretStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;

    fn on_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
    ) -> Result<Option<DeltaDiscoveryResponse>, SdsError> {
        let outcome = self.handle_request(request)?;
        if let Some(kind) = &outcome.kind {
            log_kind(kind, &request.resource_names_subscribe, self.node());
        }
        for (name, e) in &outcome.unresolved {
            tracing::info!(name = %name, error = %e, "SDS delta: answering an unresolved name as removed");
        }
        Ok(outcome.response)
    }

    fn on_update(
        &mut self,
        secrets: Arc<WorkloadSecrets>,
    ) -> Result<Option<DeltaDiscoveryResponse>, SdsError> {
        Ok(self.handle_update(secrets)?.response)
    }

    fn node(&self) -> Option<&Node> {
        DeltaSecretStream::node(self)
    }
}

fn node_id(node: Option<&Node>) -> &str {
    node.map_or("", |n| n.id.as_str())
}

fn log_kind(kind: &RequestKind, names: &[String], node: Option<&Node>) {
    match kind {
        RequestKind::Nack { message } => tracing::warn!(
            node = node_id(node),
            names = ?names,
            reason = %message,
            "SDS client rejected the last response (NACK); it keeps its previous secrets"
        ),
        RequestKind::Stale { nonce } => tracing::debug!(
            node = node_id(node),
            nonce = %nonce,
            "SDS request answers an older response (stale nonce); ignored"
        ),
        RequestKind::NotApplied { version } => tracing::info!(
            node = node_id(node),
            version = %version,
            "SDS client did not apply the last response"
        ),
        _ => tracing::trace!(node = node_id(node), names = ?names, kind = ?kind, "SDS request"),
    }
}

fn log_error(e: &SdsError, node: Option<&Node>) {
    tracing::warn!(node = node_id(node), error = %e, "SDS request refused");
}

/// Runs one stream: requests and provider updates in, responses out, until
/// the client leaves, an error ends the stream, or the server shuts down.
async fn drive<M: Machine>(
    mut machine: M,
    mut watch: WorkloadWatch,
    mut inbound: Streaming<M::Request>,
    tx: mpsc::Sender<Result<M::Response, Status>>,
    shutdown: ShutdownSignal,
) {
    // The current secrets first, so the first request is answered at once
    // (Istio waits forever for `default` and `ROOTCA`, S27).
    let initial = watch
        .current()
        .and_then(|secrets| machine.on_update(secrets).map_err(Status::from));
    if let Err(status) = initial {
        let _ = tx.send(Err(status)).await;
        return;
    }
    let stopping = shutdown.triggered();
    tokio::pin!(stopping);
    loop {
        let step = tokio::select! {
            biased;
            () = &mut stopping => Err(shutting_down()),
            () = tx.closed() => return,
            message = inbound.message() => match message {
                Ok(Some(request)) => machine.on_request(&request).map_err(|e| {
                    log_error(&e, machine.node());
                    Status::from(e)
                }),
                // The client closed its side, or cancelled: the stream ends
                // with OK (S22).
                Ok(None) | Err(_) => return,
            },
            update = watch.changed() => match update {
                Ok(secrets) => machine.on_update(secrets).map_err(|e| {
                    log_error(&e, machine.node());
                    Status::from(e)
                }),
                Err(status) => Err(status),
            },
        };
        match step {
            Ok(Some(response)) => {
                if tx.send(Ok(response)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
    }
}
