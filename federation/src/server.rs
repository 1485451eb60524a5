//! The bundle endpoint server.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use spiffe_bundle::{BundleSet, SpiffeBundle};
use spiffe_id::TrustDomain;
use spiffe_svid::default_crypto_provider;
use spiffe_svid::tls::{SvidCertResolver, SvidSource};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::{ConfigError, ServerError};

/// Where a [`BundleServer`] gets the bundle it serves; asked on every
/// request, so the newest bundle is always served (rule F-14).
///
/// Implemented by [`BundleSetEntry`] (one trust domain of a live
/// [`BundleSet`]), by [`SpiffeBundle`] (a fixed bundle), and by closures
/// `Fn() -> Option<SpiffeBundle>`.
pub trait BundleProvider: Send + Sync + 'static {
    /// The bundle to serve now, or `None` if there is none yet (the server
    /// then answers `503 Service Unavailable`).
    fn bundle(&self) -> Option<SpiffeBundle>;
}

impl<F> BundleProvider for F
where
    F: Fn() -> Option<SpiffeBundle> + Send + Sync + 'static,
{
    fn bundle(&self) -> Option<SpiffeBundle> {
        self()
    }
}

impl BundleProvider for SpiffeBundle {
    fn bundle(&self) -> Option<SpiffeBundle> {
        Some(self.clone())
    }
}

/// One trust domain's entry of a [`BundleSet`], as a [`BundleProvider`]:
/// the server follows every change to the set.
#[derive(Debug, Clone)]
pub struct BundleSetEntry {
    set: Arc<BundleSet>,
    trust_domain: TrustDomain,
}

impl BundleSetEntry {
    /// The entry of `trust_domain` in `set`.
    pub fn new(set: Arc<BundleSet>, trust_domain: TrustDomain) -> Self {
        BundleSetEntry { set, trust_domain }
    }
}

impl BundleProvider for BundleSetEntry {
    fn bundle(&self) -> Option<SpiffeBundle> {
        self.set.get(&self.trust_domain)
    }
}

/// The TLS side of a [`BundleServer`]: which certificate it presents.
/// Client certificates are never asked for (rule F-13).
#[derive(Clone)]
pub struct ServerTls(Arc<ServerConfig>);

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// `https_spiffe`: present the X509-SVID `svid` currently holds (rule
    /// F-19), looked up at every handshake so that it can rotate (pass an
    /// `Arc<RotatingSvid>` and keep a clone to rotate it).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoCryptoProvider`], or [`ConfigError::Tls`] if rustls
    /// refuses the configuration.
    pub fn https_spiffe(svid: impl SvidSource + 'static) -> Result<Self, ConfigError> {
        let config = server_builder()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SvidCertResolver::new(svid)));
        Ok(Self::with_http1(config))
    }

    /// `https_web`: present `chain` (leaf first) with `key`. The certificate
    /// should come from a public CA and must name the endpoint's host (rule
    /// F-12).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoCryptoProvider`], or [`ConfigError::Tls`] if rustls
    /// refuses the key or the chain.
    pub fn https_web(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, ConfigError> {
        let config = server_builder()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| ConfigError::Tls {
                reason: e.to_string(),
            })?;
        Ok(Self::with_http1(config))
    }

    /// A rustls configuration built by the caller, used as it is. It must
    /// not require client certificates (rule F-13), and its ALPN protocols,
    /// if any, must include `http/1.1`: this server speaks HTTP/1.1 only.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        ServerTls(config)
    }

    fn with_http1(mut config: ServerConfig) -> Self {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ServerTls(Arc::new(config))
    }
}

fn server_builder()
-> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, ConfigError> {
    let provider = default_crypto_provider().ok_or(ConfigError::NoCryptoProvider)?;
    // TLS 1.2 and 1.3, as Mozilla's "intermediate" profile (rule F-07).
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls {
            reason: e.to_string(),
        })
}

/// Limits of a [`BundleServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The only path served (`404` elsewhere), or `None` (the default) to
    /// serve the bundle on every path, as go-spiffe's handler does.
    pub path: Option<String>,
    /// Most connections open at once (default 256); more are closed at
    /// once.
    pub max_connections: usize,
    /// Longest time for a client to finish the TLS handshake (default
    /// 10 s).
    pub handshake_timeout: Duration,
    /// Longest time for a client to send a request's headers (default
    /// 10 s).
    pub header_read_timeout: Duration,
    /// How long [`BundleServer::shutdown`] lets open connections finish
    /// before closing them (default 5 s).
    pub shutdown_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            path: None,
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl ServerOptions {
    /// These options serving only `path`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// These options with another connection limit.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// These options with another TLS handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// These options with another header read timeout.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// These options with another shutdown grace period.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// A bundle rendered once per bundle value: the JSON and its ETag.
struct Rendered {
    generation: u64,
    body: Bytes,
    etag: HeaderValue,
}

/// Answers requests: the HTTP side of the server, without the network.
struct Responder {
    provider: Box<dyn BundleProvider>,
    path: Option<String>,
    rendered: Mutex<Option<Arc<Rendered>>>,
}

impl Responder {
    fn render(&self, bundle: &SpiffeBundle) -> Arc<Rendered> {
        let mut cached = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = cached
            .as_ref()
            .filter(|r| r.generation == bundle.generation())
        {
            return Arc::clone(r);
        }
        let json = bundle.to_json();
        let etag = etag_for(json.as_bytes());
        let rendered = Arc::new(Rendered {
            generation: bundle.generation(),
            body: Bytes::from(json),
            etag,
        });
        *cached = Some(Arc::clone(&rendered));
        rendered
    }

    fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
        if self.path.as_deref().is_some_and(|p| p != path) {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(bundle) = self.provider.bundle() else {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "no bundle available\n");
        };
        let rendered = self.render(&bundle);
        let not_modified = headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .any(|v| etag_matches(v, &rendered.etag));
        let mut response = if not_modified {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Full::new(rendered.body.clone()));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(rendered.body.len()));
            r
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, rendered.etag.clone());
        // Caches may keep it, but must ask again each time (the ETag makes
        // that cheap): a stale bundle is a security problem.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        response
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A strong ETag for a rendered bundle: its length and its FNV-1a 64-bit
/// hash. The JSON is deterministic (`SpiffeBundle::to_json`), so every
/// replica serving the same bundle gives the same tag; the hash only needs
/// to tell successive bundles of one trust domain apart, not resist an
/// adversary (the server chooses what it serves).
fn etag_for(body: &[u8]) -> HeaderValue {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let tag = format!("\"{:x}-{hash:016x}\"", body.len());
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `If-None-Match` comparison (RFC 9110 §13.1.2: weak comparison, `*`
/// matches any current representation).
fn etag_matches(header: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(header) = header.to_str() else {
        return false;
    };
    let ours = etag.as_bytes();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

/// A SPIFFE bundle endpoint server: serves one trust domain's bundle over
/// HTTPS (HTTP/1.1) in either profile.
///
/// - `GET` and `HEAD` return the provider's current bundle as
///   `application/json` (the deterministic JSON of
///   [`SpiffeBundle::to_json`]) with a strong `ETag`; a request whose
///   `If-None-Match` matches gets `304 Not Modified` and no body. Any other
///   method gets `405` with `Allow: GET, HEAD`; no bundle yet gives `503`.
/// - No client authentication of any kind (rule F-13).
/// - Connections are limited in number and in how long a client may take
///   to finish its handshake and send its headers.
/// - [`shutdown`](BundleServer::shutdown) stops accepting, lets open
///   requests finish within [`ServerOptions::shutdown_timeout`], and closes
///   the rest. Dropping the server closes everything at once.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use spiffe_bundle::BundleSet;
/// use spiffe_federation::{BundleServer, BundleSetEntry, ServerOptions, ServerTls};
/// use spiffe_id::TrustDomain;
/// use spiffe_svid::X509Svid;
/// use spiffe_svid::tls::RotatingSvid;
///
/// let td = TrustDomain::new("example.org")?;
/// let set = Arc::new(BundleSet::new());
/// let svid = Arc::new(RotatingSvid::new(X509Svid::from_pem(
///     &std::fs::read("server.pem")?,
///     &std::fs::read("server.key")?,
/// )?));
/// let server = BundleServer::bind(
///     "0.0.0.0:8443".parse()?,
///     ServerTls::https_spiffe(Arc::clone(&svid))?,
///     BundleSetEntry::new(Arc::clone(&set), td),
///     ServerOptions::default(),
/// )
/// .await?;
/// // ... rotate with `svid.set(..)`, update `set` as the CA changes ...
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct BundleServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for BundleServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl BundleServer {
    /// Listens on `addr` and serves `bundles` on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] if the address cannot be listened on;
    /// [`ServerError::Config`] as [`BundleServer::from_listener`].
    pub async fn bind(
        addr: SocketAddr,
        tls: ServerTls,
        bundles: impl BundleProvider,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ServerError::Bind {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        Self::from_listener(listener, tls, bundles, options)
    }

    /// Serves `bundles` on connections accepted from `listener`, on the
    /// current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] if the listener has no local address;
    /// [`ConfigError::NoRuntime`] outside a Tokio runtime;
    /// [`ConfigError::InvalidOption`] for `max_connections` 0.
    pub fn from_listener(
        listener: TcpListener,
        tls: ServerTls,
        bundles: impl BundleProvider,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        if options.max_connections == 0 {
            return Err(ConfigError::InvalidOption {
                option: "max_connections",
                reason: "must be positive".to_owned(),
            }
            .into());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let local_addr = listener.local_addr().map_err(|e| ServerError::Bind {
            addr: "listener".to_owned(),
            reason: e.to_string(),
        })?;
        let responder = Arc::new(Responder {
            provider: Box::new(bundles),
            path: options.path.clone(),
            rendered: Mutex::new(None),
        });
        let (stop, stop_rx) = watch::channel(false);
        let acceptor = TlsAcceptor::from(tls.0);
        let task = runtime.spawn(accept_loop(listener, acceptor, responder, options, stop_rx));
        Ok(BundleServer {
            local_addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the port chosen by the
    /// system when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets open ones finish their request
    /// within [`ServerOptions::shutdown_timeout`], closes the rest, and
    /// returns when all are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    responder: Arc<Responder>,
    options: ServerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    // Over the limit: close at once rather than queue.
                    let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                        continue;
                    };
                    let connection = serve_connection(
                        tcp,
                        acceptor.clone(),
                        Arc::clone(&responder),
                        options.clone(),
                        stop.clone(),
                    );
                    connections.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let grace = tokio::time::sleep(options.shutdown_timeout);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            () = &mut grace => {
                connections.abort_all();
                while connections.join_next().await.is_some() {}
                break;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    responder: Arc<Responder>,
    options: ServerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        // A failed or slow handshake is the client's problem; nothing to
        // answer over a connection that never became TLS.
        _ => return,
    };
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let responder = Arc::clone(&responder);
        async move {
            Ok::<_, Infallible>(responder.respond(
                request.method(),
                request.uri().path(),
                request.headers(),
            ))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // One request per connection: bundle clients make one GET per fetch,
    // and a kept-alive connection would let an idle client hold one of
    // the limited connection slots indefinitely.
    builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(options.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(bundle: Option<SpiffeBundle>) -> Responder {
        Responder {
            provider: Box::new(move || bundle.clone()),
            path: None,
            rendered: Mutex::new(None),
        }
    }

    fn bundle(seq: u64) -> SpiffeBundle {
        SpiffeBundle::empty(TrustDomain::new("example.org").unwrap()).with_sequence(Some(seq))
    }

    #[test]
    fn get_serves_json_with_an_etag() {
        let r = responder(Some(bundle(3)));
        let response = r.respond(&Method::GET, "/", &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            bundle(3).to_json().len().to_string().as_str()
        );
        assert!(response.headers().contains_key(ETAG));
    }

    #[test]
    fn if_none_match_gives_304() {
        let r = responder(Some(bundle(3)));
        let etag = r.respond(&Method::GET, "/", &HeaderMap::new()).headers()[ETAG].clone();
        for value in [
            etag.to_str().unwrap().to_owned(),
            format!("W/{}", etag.to_str().unwrap()),
            format!("\"other\", {}", etag.to_str().unwrap()),
            "*".to_owned(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(&value).unwrap());
            let response = r.respond(&Method::GET, "/", &headers);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{value}");
            assert_eq!(response.headers()[ETAG], etag);
        }
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(
            r.respond(&Method::GET, "/", &headers).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn etags_differ_between_bundles_and_agree_across_renders() {
        assert_ne!(
            etag_for(bundle(1).to_json().as_bytes()),
            etag_for(bundle(2).to_json().as_bytes())
        );
        // Another value with the same content: same tag.
        assert_eq!(
            etag_for(bundle(1).to_json().as_bytes()),
            etag_for(bundle(1).to_json().as_bytes())
        );
    }

    #[test]
    fn only_get_and_head() {
        let r = responder(Some(bundle(1)));
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
        ] {
            let response = r.respond(&m, "/", &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{m}");
            assert_eq!(response.headers()[ALLOW], "GET, HEAD");
        }
        assert_eq!(
            r.respond(&Method::HEAD, "/", &HeaderMap::new()).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn no_bundle_is_503_and_wrong_path_is_404() {
        let r = responder(None);
        assert_eq!(
            r.respond(&Method::GET, "/", &HeaderMap::new()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let mut r = responder(Some(bundle(1)));
        r.path = Some("/bundle".to_owned());
        assert_eq!(
            r.respond(&Method::GET, "/other", &HeaderMap::new())
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            r.respond(&Method::GET, "/bundle", &HeaderMap::new())
                .status(),
            StatusCode::OK
        );
    }
}
