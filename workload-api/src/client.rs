//! The Workload API client: one call per RPC, each carrying the security
//! header and a deadline, each answer decoded by [`crate::decode`].

mod error;
mod stream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use spiffe_id::SpiffeId;
use spiffe_svid::JwtSvid;
use tonic::codec::Streaming;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

pub use error::{ClientError, GrpcCode};
pub use stream::UpdateStream;

use crate::decode::{self, DecodeError};
use crate::proto::{self, spiffe_workload_api_client::SpiffeWorkloadApiClient};
use crate::{
    EndpointAddress, JwtBundles, JwtSvidToken, SECURITY_HEADER, SECURITY_HEADER_VALUE, X509Bundles,
    X509Context,
};

/// A client of the SPIFFE Workload API.
///
/// Every call carries the security header `workload.spiffe.io: true`
/// (E-04) and a deadline: the client's [timeout](Self::with_timeout) bounds
/// a unary call, and the opening of a stream up to its first message. Every
/// answer is checked by the functions of [`crate::decode`] before it is
/// returned. The client is cheap to clone; clones share one connection,
/// which is re-established on the next call after it breaks. It runs on
/// Tokio and needs a runtime with I/O and timers enabled.
///
/// For long-lived use (an SVID that follows rotation, bundles that follow
/// federation changes) use [`X509Source`](crate::X509Source),
/// [`JwtSource`](crate::JwtSource) or [`BundleSource`](crate::BundleSource),
/// which reconnect and keep serving the last good material.
///
/// ```no_run
/// use spiffe_workload_api::{ClientError, WorkloadApiClient};
///
/// # async fn run() -> Result<(), ClientError> {
/// // The address comes from SPIFFE_ENDPOINT_SOCKET (E-07).
/// let client = WorkloadApiClient::connect_env().await?;
/// let context = client.fetch_x509_context().await?;
/// println!("I am {}", context.default_svid().spiffe_id());
///
/// let token = client.fetch_jwt_svid(&["my-audience"], None).await?;
/// let validated = client.validate_jwt_svid(token.token(), "my-audience").await?;
/// assert_eq!(validated.spiffe_id(), token.spiffe_id());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkloadApiClient {
    inner: SpiffeWorkloadApiClient<Channel>,
    timeout: Duration,
    /// For `Debug` only.
    address: Arc<str>,
}

impl fmt::Debug for WorkloadApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiClient")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WorkloadApiClient {
    /// The timeout of a new client: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The largest response the client decodes: 16 MiB, the server's
    /// default limit. A larger response fails the call with
    /// `ResourceExhausted`.
    pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

    /// Connects to the Workload API at `address`, within
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT).
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] when the endpoint cannot be reached in time,
    /// or when called outside a Tokio runtime.
    pub async fn connect(address: &EndpointAddress) -> Result<Self, ClientError> {
        let timeout = Self::DEFAULT_TIMEOUT;
        let endpoint = endpoint(address, timeout)?;
        let connecting = async {
            match address {
                EndpointAddress::Unix(path) => connect_unix(&endpoint, path).await,
                EndpointAddress::Tcp(_) => endpoint.connect().await.map_err(|e| describe(&e)),
            }
        };
        let channel = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(reason)) => return Err(connect_error(address, reason)),
            Err(_) => {
                return Err(connect_error(
                    address,
                    format!("timed out after {timeout:?}"),
                ));
            }
        };
        Ok(Self::new(channel, address.to_string()))
    }

    /// Connects to the address in `SPIFFE_ENDPOINT_SOCKET` (E-07); see
    /// [`WorkloadApiClient::connect`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Address`] when the variable is unset or not a valid
    /// address (E-08 to E-10); otherwise as [`WorkloadApiClient::connect`].
    pub async fn connect_env() -> Result<Self, ClientError> {
        Self::connect(&EndpointAddress::from_env()?).await
    }

    /// A client for `address` that connects on its first call, and so does
    /// not fail when the server is not up yet: a call made while it is down
    /// fails with [`GrpcCode::Unavailable`]. Must be called inside a Tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] outside a Tokio runtime.
    pub fn connect_lazy(address: &EndpointAddress) -> Result<Self, ClientError> {
        let timeout = Self::DEFAULT_TIMEOUT;
        let endpoint = endpoint(address, timeout)?;
        let channel = match address {
            EndpointAddress::Unix(path) => lazy_unix(&endpoint, path),
            EndpointAddress::Tcp(_) => Ok(endpoint.connect_lazy()),
        }
        .map_err(|reason| connect_error(address, reason))?;
        Ok(Self::new(channel, address.to_string()))
    }

    /// A client over an existing tonic channel (a custom transport, or one
    /// shared with other services). The channel must not require TLS of a
    /// Workload API server (E-06) unless the server offers it.
    pub fn from_channel(channel: Channel) -> Self {
        Self::new(channel, "<channel>".to_owned())
    }

    fn new(channel: Channel, address: String) -> Self {
        WorkloadApiClient {
            // As large as the server's default responses: a context with
            // many federated bundles can pass tonic's 4 MiB default.
            inner: SpiffeWorkloadApiClient::new(channel)
                .max_decoding_message_size(Self::MAX_MESSAGE_SIZE),
            timeout: Self::DEFAULT_TIMEOUT,
            address: address.into(),
        }
    }

    /// This client with another timeout for each call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The endpoint address, for error messages.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The workload's X.509 context: the first message of `FetchX509SVID`
    /// (its SVIDs, the default first, and the bundles it trusts).
    ///
    /// # Errors
    ///
    /// [`ClientError::Status`] for the server's status (`PermissionDenied`
    /// when the workload has no identity); [`ClientError::Decode`] for a
    /// message that breaks the rules (see
    /// [`decode_x509_svid_response`](decode::decode_x509_svid_response));
    /// [`ClientError::StreamEnded`] if the stream ends before a message;
    /// [`ClientError::Timeout`].
    pub async fn fetch_x509_context(&self) -> Result<X509Context, ClientError> {
        let message = self.first(self.open_x509_svid()).await?;
        Ok(decode::decode_x509_svid_response(&message)?)
    }

    /// Follows `FetchX509SVID`: each item is the workload's complete new
    /// X.509 context.
    ///
    /// # Errors
    ///
    /// [`ClientError::Status`] or [`ClientError::Timeout`] when the stream
    /// cannot be opened. Later failures are items of the stream.
    pub async fn watch_x509_context(&self) -> Result<UpdateStream<X509Context>, ClientError> {
        self.watch(self.open_x509_svid(), decode::decode_x509_svid_response)
            .await
    }

    /// The X.509 bundles the workload may use, by trust domain: the first
    /// message of `FetchX509Bundles`.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::fetch_x509_context`], with
    /// [`decode_x509_bundles_response`](decode::decode_x509_bundles_response)'s
    /// rules.
    pub async fn fetch_x509_bundles(&self) -> Result<X509Bundles, ClientError> {
        let message = self.first(self.open_x509_bundles()).await?;
        Ok(decode::decode_x509_bundles_response(&message)?)
    }

    /// Follows `FetchX509Bundles`: each item is the complete new set of
    /// X.509 bundles.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::watch_x509_context`].
    pub async fn watch_x509_bundles(&self) -> Result<UpdateStream<X509Bundles>, ClientError> {
        self.watch(
            self.open_x509_bundles(),
            decode::decode_x509_bundles_response,
        )
        .await
    }

    /// The JWT bundles the workload may use, by trust domain: the first
    /// message of `FetchJWTBundles`.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::fetch_x509_context`], with
    /// [`decode_jwt_bundles_response`](decode::decode_jwt_bundles_response)'s
    /// rules.
    pub async fn fetch_jwt_bundles(&self) -> Result<JwtBundles, ClientError> {
        let message = self.first(self.open_jwt_bundles()).await?;
        Ok(decode::decode_jwt_bundles_response(&message)?)
    }

    /// Follows `FetchJWTBundles`: each item is the complete new set of JWT
    /// bundles.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::watch_x509_context`].
    pub async fn watch_jwt_bundles(&self) -> Result<UpdateStream<JwtBundles>, ClientError> {
        self.watch(self.open_jwt_bundles(), decode::decode_jwt_bundles_response)
            .await
    }

    /// JWT-SVIDs for `audience` (every value goes into `aud`, W-20): one per
    /// identity of the workload, or only for `spiffe_id` when given. Each
    /// token is checked as
    /// [`decode_jwt_svid_response`](decode::decode_jwt_svid_response) says,
    /// at the current time.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] for an empty audience list or an
    /// empty audience; [`ClientError::Status`] (`PermissionDenied` when the
    /// workload has no identity, or not `spiffe_id`);
    /// [`ClientError::Decode`]; [`ClientError::Timeout`].
    pub async fn fetch_jwt_svids(
        &self,
        audience: &[&str],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, ClientError> {
        Ok(self
            .fetch_jwt(audience, spiffe_id)
            .await?
            .into_iter()
            .map(|(token, _)| token)
            .collect())
    }

    /// The first JWT-SVID for `audience` (the default identity, or
    /// `spiffe_id` when given), parsed.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::fetch_jwt_svids`].
    pub async fn fetch_jwt_svid(
        &self,
        audience: &[&str],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<JwtSvid, ClientError> {
        self.fetch_jwt(audience, spiffe_id)
            .await?
            .into_iter()
            .next()
            .map(|(_, parsed)| parsed)
            .ok_or(ClientError::Decode(DecodeError::NoSvids))
    }

    pub(crate) async fn fetch_jwt(
        &self,
        audience: &[&str],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<(JwtSvidToken, JwtSvid)>, ClientError> {
        check_audience(audience)?;
        let request = request(proto::JwtsvidRequest {
            audience: audience.iter().map(|a| (*a).to_owned()).collect(),
            spiffe_id: spiffe_id.map_or_else(String::new, |id| id.as_str().to_owned()),
        });
        let mut inner = self.inner.clone();
        let response = self
            .within(async move { Ok(inner.fetch_jwtsvid(request).await?.into_inner()) })
            .await?;
        Ok(decode::decode_jwt_svids(
            &response,
            audience,
            spiffe_id,
            SystemTime::now(),
        )?)
    }

    /// Has the server validate `token` for `audience` (W-27), then parses
    /// the token locally (without its signature, which the server checked)
    /// and checks that it is for the subject the server reported. The claims
    /// of the returned value are the token's own.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] for an empty token or audience;
    /// [`ClientError::Status`] (`InvalidArgument` when the server refuses
    /// the token); [`ClientError::Decode`] when the answer breaks the rules
    /// (see
    /// [`decode_validate_jwt_svid_response`](decode::decode_validate_jwt_svid_response)),
    /// or the token does not parse locally or names another subject;
    /// [`ClientError::Timeout`].
    pub async fn validate_jwt_svid(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<JwtSvid, ClientError> {
        if token.is_empty() {
            return Err(ClientError::InvalidRequest {
                reason: "the token is empty",
            });
        }
        check_audience(&[audience])?;
        let request = request(proto::ValidateJwtsvidRequest {
            audience: audience.to_owned(),
            svid: token.to_owned(),
        });
        let mut inner = self.inner.clone();
        let response = self
            .within(async move { Ok(inner.validate_jwtsvid(request).await?.into_inner()) })
            .await?;
        let (spiffe_id, _claims) = decode::decode_validate_jwt_svid_response(&response)?;
        let parsed =
            JwtSvid::parse_insecure(token, &[audience], decode::unix_time(SystemTime::now()))
                .map_err(|source| DecodeError::InvalidJwtSvid { index: 0, source })?;
        if parsed.spiffe_id() != &spiffe_id {
            return Err(DecodeError::SpiffeIdMismatch {
                expected: spiffe_id,
                found: parsed.spiffe_id().clone(),
            }
            .into());
        }
        Ok(parsed)
    }

    pub(crate) async fn open_x509_svid(
        &self,
    ) -> Result<Streaming<proto::X509svidResponse>, ClientError> {
        let mut inner = self.inner.clone();
        let response = inner
            .fetch_x509svid(request(proto::X509svidRequest {}))
            .await?;
        Ok(response.into_inner())
    }

    pub(crate) async fn open_x509_bundles(
        &self,
    ) -> Result<Streaming<proto::X509BundlesResponse>, ClientError> {
        let mut inner = self.inner.clone();
        let response = inner
            .fetch_x509_bundles(request(proto::X509BundlesRequest {}))
            .await?;
        Ok(response.into_inner())
    }

    pub(crate) async fn open_jwt_bundles(
        &self,
    ) -> Result<Streaming<proto::JwtBundlesResponse>, ClientError> {
        let mut inner = self.inner.clone();
        let response = inner
            .fetch_jwt_bundles(request(proto::JwtBundlesRequest {}))
            .await?;
        Ok(response.into_inner())
    }

    /// `call` within the client's timeout.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                after: self.timeout,
            }),
        }
    }

    /// The first message of the stream `open` opens, within the timeout.
    /// Dropping the stream afterwards cancels the call.
    async fn first<M>(
        &self,
        open: impl Future<Output = Result<Streaming<M>, ClientError>>,
    ) -> Result<M, ClientError> {
        self.within(async {
            let mut stream = open.await?;
            stream.message().await?.ok_or(ClientError::StreamEnded)
        })
        .await
    }

    async fn watch<M, T>(
        &self,
        open: impl Future<Output = Result<Streaming<M>, ClientError>>,
        decode: fn(&M) -> Result<T, DecodeError>,
    ) -> Result<UpdateStream<T>, ClientError>
    where
        M: Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let streaming = self.within(open).await?;
        // One deadline covers the opening and the first message.
        let left = self.timeout.saturating_sub(started.elapsed());
        Ok(UpdateStream::new(streaming, decode, left))
    }
}

/// A request with the security header (E-04).
fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        SECURITY_HEADER,
        MetadataValue::from_static(SECURITY_HEADER_VALUE),
    );
    request
}

/// W-20: at least one audience, none empty.
fn check_audience(audience: &[&str]) -> Result<(), ClientError> {
    if audience.is_empty() {
        return Err(ClientError::InvalidRequest {
            reason: "at least one audience is required",
        });
    }
    if audience.iter().any(|a| a.is_empty()) {
        return Err(ClientError::InvalidRequest {
            reason: "an audience is empty",
        });
    }
    Ok(())
}

fn endpoint(address: &EndpointAddress, timeout: Duration) -> Result<Endpoint, ClientError> {
    // tonic spawns the connection's tasks on the current Tokio runtime and
    // would panic outside one.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(connect_error(
            address,
            "not called inside a Tokio runtime".to_owned(),
        ));
    }
    let uri = match address {
        // The authority of a Unix socket's requests is not used for
        // routing; `localhost` is what other clients send.
        EndpointAddress::Unix(_) => "http://localhost".to_owned(),
        EndpointAddress::Tcp(addr) => format!("http://{addr}"),
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| connect_error(address, describe(&e)))?;
    Ok(endpoint.connect_timeout(timeout))
}

#[cfg(unix)]
fn unix_connector(
    path: &std::path::Path,
) -> impl tower::Service<
    tonic::transport::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
+ 'static {
    let path = path.to_owned();
    tower::service_fn(move |_: tonic::transport::Uri| {
        let path = path.clone();
        async move {
            tokio::net::UnixStream::connect(path)
                .await
                .map(hyper_util::rt::TokioIo::new)
        }
    })
}

#[cfg(unix)]
async fn connect_unix(endpoint: &Endpoint, path: &std::path::Path) -> Result<Channel, String> {
    endpoint
        .connect_with_connector(unix_connector(path))
        .await
        .map_err(|e| describe(&e))
}

#[cfg(unix)]
fn lazy_unix(endpoint: &Endpoint, path: &std::path::Path) -> Result<Channel, String> {
    Ok(endpoint.connect_with_connector_lazy(unix_connector(path)))
}

#[cfg(not(unix))]
async fn connect_unix(_endpoint: &Endpoint, _path: &std::path::Path) -> Result<Channel, String> {
    Err("Unix domain sockets are not supported on this platform".to_owned())
}

#[cfg(not(unix))]
fn lazy_unix(_endpoint: &Endpoint, _path: &std::path::Path) -> Result<Channel, String> {
    Err("Unix domain sockets are not supported on this platform".to_owned())
}

fn connect_error(address: &EndpointAddress, reason: String) -> ClientError {
    ClientError::Connect {
        address: address.to_string(),
        reason,
    }
}

/// An error and its sources as one line: tonic's transport errors say
/// little at the top level.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
