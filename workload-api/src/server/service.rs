//! The tonic implementation of `SpiffeWorkloadAPI` over an
//! [`IdentityProvider`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use spiffe_id::SpiffeId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::provider::{IdentityProvider, ProviderError, Published, Updates};
use super::{Caller, ShutdownSignal};
use crate::encode;
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::proto::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse, WitsvidRequest,
    WitsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svidRequest, X509svidResponse,
};
use crate::{JwtBundles, SECURITY_HEADER, SECURITY_HEADER_VALUE, X509Bundles, X509Context};

/// A response stream of the service.
pub type ResponseStream<M> = Pin<Box<dyn Stream<Item = Result<M, Status>> + Send + 'static>>;

/// Checks the `workload.spiffe.io: true` header (W2, E-05): exactly one
/// value, exactly `true` (case-sensitive).
///
/// # Errors
///
/// `InvalidArgument "security header missing from request"`, SPIRE's
/// wording, for a missing header, another value or several values.
pub fn check_security_header(metadata: &MetadataMap) -> Result<(), Status> {
    let mut values = metadata.get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value.as_bytes() == SECURITY_HEADER_VALUE.as_bytes() => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

fn attestation_failed() -> Status {
    Status::unavailable("workload attestation failed")
}

fn shutting_down() -> Status {
    Status::unavailable("the Workload API server is shutting down")
}

/// The `SpiffeWorkloadAPI` gRPC service over an [`IdentityProvider`].
///
/// Built by [`WorkloadApiServer::service`](super::WorkloadApiServer::service),
/// which wraps it in the generated tonic server with the configured
/// message-size limits. Every call:
///
/// 1. checks the security header, before anything else (W2);
/// 2. takes the [`Caller`] the listener attached to the connection; a
///    request without one (served through another transport) fails
///    attestation;
/// 3. for streams, takes a slot of the global stream limit, or answers
///    `Unavailable` (load shedding; clients retry with a backoff);
/// 4. asks the provider (attestation, once per RPC), then checks that the
///    caller is still the process that connected (W3);
/// 5. answers; streams send the current state at once (W-07) and a new
///    message on each change, and end with `Unavailable` when the server
///    shuts down.
pub struct WorkloadApiService<P> {
    provider: Arc<P>,
    streams: Arc<Semaphore>,
    shutdown: ShutdownSignal,
}

impl<P> std::fmt::Debug for WorkloadApiService<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadApiService")
            .field("free_stream_slots", &self.streams.available_permits())
            .finish_non_exhaustive()
    }
}

impl<P: IdentityProvider> WorkloadApiService<P> {
    pub(super) fn new(provider: Arc<P>, max_streams: usize, shutdown: ShutdownSignal) -> Self {
        WorkloadApiService {
            provider,
            streams: Arc::new(Semaphore::new(max_streams.min(Semaphore::MAX_PERMITS))),
            shutdown,
        }
    }

    /// Steps 1 and 2 (and the shutdown check) for any RPC.
    fn admit<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        check_security_header(request.metadata())?;
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
            .map_err(|_| Status::unavailable("too many open Workload API streams"))
    }

    /// Steps 4 and 5 for a streaming RPC.
    fn stream<T, M>(
        &self,
        caller: &Caller,
        updates: Updates<T>,
        slot: OwnedSemaphorePermit,
        encode: fn(&T) -> Result<M, Status>,
        suppress_repeats: bool,
    ) -> Result<Response<ResponseStream<M>>, Status>
    where
        T: Send + Sync + 'static,
        M: Clone + PartialEq + Send + 'static,
    {
        caller.check_alive().map_err(|_| attestation_failed())?;
        // No identity now: a status instead of an empty stream (W5).
        if let Err(e) = &*updates.borrow() {
            return Err(e.to_status());
        }
        let stream = UpdateStream {
            updates: WatchStream::new(updates),
            shutdown: Box::pin(self.shutdown.triggered()),
            encode,
            suppress_repeats,
            last_value: None,
            last_message: None,
            done: false,
            _slot: slot,
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

fn encode_x509_context(context: &X509Context) -> Result<X509svidResponse, Status> {
    Ok(encode::x509_svid_response(context))
}

fn encode_x509_bundles(bundles: &X509Bundles) -> Result<X509BundlesResponse, Status> {
    if bundles.is_empty() {
        // W-19: at least the own trust domain; an empty map is not a valid
        // answer, so treat it as "not ready".
        return Err(Status::unavailable("no X.509 bundle available"));
    }
    Ok(encode::x509_bundles_response(bundles))
}

fn encode_jwt_bundles(bundles: &JwtBundles) -> Result<JwtBundlesResponse, Status> {
    if bundles.is_empty() {
        return Err(Status::unavailable("no JWT bundle available"));
    }
    Ok(encode::jwt_bundles_response(bundles))
}

#[tonic::async_trait]
impl<P: IdentityProvider> SpiffeWorkloadApi for WorkloadApiService<P> {
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchWITSVIDStream = ResponseStream<WitsvidResponse>;
    type FetchWITBundlesStream = ResponseStream<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let caller = self.admit(&request)?;
        let slot = self.stream_slot()?;
        let updates = self
            .provider
            .x509_context(&caller)
            .await
            .map_err(|e| e.to_status())?;
        // SPIRE sends on every cache notification; a provider that sends the
        // same Arc again gets no repeat, a new value always goes out.
        self.stream(&caller, updates, slot, encode_x509_context, false)
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        let caller = self.admit(&request)?;
        let slot = self.stream_slot()?;
        let updates = self
            .provider
            .x509_bundles(&caller)
            .await
            .map_err(|e| e.to_status())?;
        // W6: identical consecutive messages are not sent.
        self.stream(&caller, updates, slot, encode_x509_bundles, true)
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        let caller = self.admit(&request)?;
        let body = request.get_ref();
        // An empty string names no audience either (W-10, W-20).
        if body.audience.is_empty() || body.audience.iter().any(String::is_empty) {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        let spiffe_id = match body.spiffe_id.as_str() {
            "" => None,
            id => Some(SpiffeId::parse(id).map_err(|e| {
                Status::invalid_argument(format!("invalid requested SPIFFE ID: {e}"))
            })?),
        };
        let tokens = self
            .provider
            .jwt_svids(&caller, &body.audience, spiffe_id.as_ref())
            .await
            .map_err(|e| e.to_status())?;
        caller.check_alive().map_err(|_| attestation_failed())?;
        let response = encode::jwt_svid_response(&tokens);
        if response.svids.is_empty() {
            // W-21: never an empty list.
            return Err(ProviderError::NoIdentity.to_status());
        }
        Ok(Response::new(response))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        let caller = self.admit(&request)?;
        let slot = self.stream_slot()?;
        let updates = self
            .provider
            .jwt_bundles(&caller)
            .await
            .map_err(|e| e.to_status())?;
        self.stream(&caller, updates, slot, encode_jwt_bundles, true)
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        let caller = self.admit(&request)?;
        let body = request.get_ref();
        if body.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if body.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let svid = self
            .provider
            .validate_jwt_svid(&caller, &body.svid, &body.audience)
            .await
            .map_err(|e| e.to_status())?;
        caller.check_alive().map_err(|_| attestation_failed())?;
        Ok(Response::new(encode::validate_jwt_svid_response(&svid)))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }
}

/// A stream of full-state messages following a provider's [`Updates`].
struct UpdateStream<T, M> {
    updates: WatchStream<Published<T>>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    encode: fn(&T) -> Result<M, Status>,
    suppress_repeats: bool,
    // The value sent last, so that the same Arc published again is not
    // re-encoded or re-sent.
    last_value: Option<Arc<T>>,
    // The message sent last, for `suppress_repeats`.
    last_message: Option<M>,
    done: bool,
    // Held for the stream's lifetime: the global stream limit.
    _slot: OwnedSemaphorePermit,
}

// No field is ever pinned in place (the watch stream and the shutdown
// future are boxed), so the stream can be moved freely.
impl<T, M> Unpin for UpdateStream<T, M> {}

impl<T, M> UpdateStream<T, M> {
    /// Ends the stream with `status`.
    fn finish(&mut self, status: Status) -> Poll<Option<Result<M, Status>>> {
        self.done = true;
        Poll::Ready(Some(Err(status)))
    }
}

impl<T, M> Stream for UpdateStream<T, M>
where
    T: Send + Sync + 'static,
    M: Clone + PartialEq + Send + 'static,
{
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // Shutdown first: a server that is stopping ends every stream,
        // otherwise graceful shutdown would wait on them forever.
        if this.shutdown.as_mut().poll(cx).is_ready() {
            return this.finish(shutting_down());
        }
        loop {
            let value = match Pin::new(&mut this.updates).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                // The provider dropped its sender: let the client reconnect.
                Poll::Ready(None) => {
                    return this.finish(Status::unavailable("identity provider stopped"));
                }
                Poll::Ready(Some(Err(e))) => return this.finish(e.to_status()),
                Poll::Ready(Some(Ok(value))) => value,
            };
            if this
                .last_value
                .as_ref()
                .is_some_and(|last| Arc::ptr_eq(last, &value))
            {
                continue;
            }
            let message = match (this.encode)(&value) {
                Ok(m) => m,
                Err(status) => return this.finish(status),
            };
            this.last_value = Some(value);
            if this.suppress_repeats {
                if this.last_message.as_ref() == Some(&message) {
                    continue;
                }
                // Keep a copy to compare the next message against; only the
                // bundle streams, whose messages are small, do this.
                this.last_message = Some(message.clone());
            }
            return Poll::Ready(Some(Ok(message)));
        }
    }
}
