//! The bundle endpoint client: one GET per fetch, over a fresh TLS
//! connection, in either profile.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{
    ACCEPT, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, HeaderValue, IF_NONE_MATCH,
    LOCATION, USER_AGENT,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use spiffe_bundle::{Mode, ParseOptions, SpiffeBundle, X509BundleSource};
use spiffe_svid::IdMatcher;
use spiffe_svid::default_crypto_provider;
use spiffe_svid::tls::{SpiffeServerCertVerifier, authorization_error, x509_svid_error};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::endpoint::Profile;
use crate::response::{self, BodyError};
use crate::{BundleEndpoint, ConfigError, EndpointUrl, FetchError};

/// The default [`FetchOptions::max_body_bytes`]: 1 MiB, the
/// [`spiffe_bundle::DEFAULT_MAX_BYTES`] of bundle parsing.
pub const DEFAULT_MAX_BODY_BYTES: usize = spiffe_bundle::DEFAULT_MAX_BYTES;

/// Limits and policies of a [`BundleClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Longest response body accepted, in bytes (default 1 MiB). Checked
    /// against `Content-Length` before reading, and while reading.
    pub max_body_bytes: usize,
    /// Longest time for the TCP connection and the TLS handshake, per
    /// connection (default 10 s).
    pub connect_timeout: Duration,
    /// Longest time for a whole fetch, redirects and body included
    /// (default 30 s).
    pub timeout: Duration,
    /// Most redirects followed in one fetch (default 3); 0 refuses every
    /// redirect.
    pub max_redirects: u8,
    /// Accept a bundle whose `spiffe_sequence` is lower than the current
    /// one's (default `false`), for a trust domain known to have restarted
    /// its sequence.
    pub allow_sequence_rollback: bool,
    /// Refuse a bundle whose X.509 authorities name only other trust
    /// domains (default `true`; see the
    /// [crate docs](crate#which-trust-domain-a-bundle-belongs-to)).
    pub check_authority_trust_domain: bool,
    /// How questionable bundle entries are treated (default
    /// [`Mode::Lenient`], the SPIFFE specification's consumer rules).
    pub mode: Mode,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_redirects: 3,
            allow_sequence_rollback: false,
            check_authority_trust_domain: true,
            mode: Mode::Lenient,
        }
    }
}

impl FetchOptions {
    /// These options with another body size limit.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// These options with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// These options with another overall timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These options with another redirect limit.
    pub fn with_max_redirects(mut self, max_redirects: u8) -> Self {
        self.max_redirects = max_redirects;
        self
    }

    /// These options with sequence rollbacks allowed or not.
    pub fn with_allow_sequence_rollback(mut self, allow: bool) -> Self {
        self.allow_sequence_rollback = allow;
        self
    }

    /// These options with the authority trust-domain check on or off.
    pub fn with_check_authority_trust_domain(mut self, check: bool) -> Self {
        self.check_authority_trust_domain = check;
        self
    }

    /// These options with another bundle parsing mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

/// The ETag of the last bundle fetched, so the next fetch can ask whether
/// it changed.
struct Cached {
    url: String,
    etag: HeaderValue,
    bundle: SpiffeBundle,
}

/// A client of one bundle endpoint.
///
/// Each [`fetch`](BundleClient::fetch) opens a new TLS connection (polls
/// are minutes apart, and a fresh handshake is what lets `https_spiffe`
/// use the newest bundle, rule F-21), sends one `GET`, follows redirects
/// within the limits of rules F-15 and F-17, and checks the answer. Session
/// resumption is off: a resumed session would skip server authentication.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use spiffe_bundle::{BundleSet, X509Bundle};
/// use spiffe_federation::{BundleClient, BundleEndpoint, EndpointProfile, EndpointUrl};
/// use spiffe_id::{SpiffeId, TrustDomain};
///
/// // https_spiffe, self-serving: the endpoint's own trust domain, with a
/// // bundle obtained out of band for the first connection.
/// let td = TrustDomain::new("partner.example")?;
/// let bootstrap = X509Bundle::parse_pem(td.clone(), &std::fs::read("partner-bundle.pem")?)?;
/// let endpoint = BundleEndpoint::new(
///     td.clone(),
///     EndpointUrl::parse("https://bundle.partner.example:8443/")?,
///     EndpointProfile::https_spiffe(SpiffeId::parse("spiffe://partner.example/spire/server")?, bootstrap),
/// );
/// let client = BundleClient::new(endpoint)?;
/// let set = BundleSet::new();
/// let bundle = client.fetch(set.get(&td).as_ref()).await?;
/// set.insert(bundle);
/// # Ok(())
/// # }
/// ```
pub struct BundleClient {
    endpoint: BundleEndpoint,
    options: FetchOptions,
    connector: TlsConnector,
    last: Mutex<Option<Cached>>,
}

impl fmt::Debug for BundleClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleClient")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What one HTTP exchange gave.
enum Answer {
    Body {
        body: Vec<u8>,
        etag: Option<HeaderValue>,
    },
    NotModified,
    Redirect(String),
}

impl BundleClient {
    /// A client of `endpoint` with the default [`FetchOptions`].
    ///
    /// # Errors
    ///
    /// See [`BundleClient::with_options`].
    pub fn new(endpoint: BundleEndpoint) -> Result<Self, ConfigError> {
        Self::with_options(endpoint, FetchOptions::default())
    }

    /// A client of `endpoint` with `options`, whose TLS is done by the
    /// crypto provider of [`spiffe_svid::default_crypto_provider`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoCryptoProvider`]; [`ConfigError::NoWebPkiRoots`] for
    /// an `https_web` profile with an empty root store;
    /// [`ConfigError::Tls`] if rustls refuses the configuration.
    pub fn with_options(
        endpoint: BundleEndpoint,
        options: FetchOptions,
    ) -> Result<Self, ConfigError> {
        let provider = default_crypto_provider().ok_or(ConfigError::NoCryptoProvider)?;
        let config = client_config(&endpoint.profile().0, provider)?;
        Ok(BundleClient {
            endpoint,
            options,
            connector: TlsConnector::from(Arc::new(config)),
            last: Mutex::new(None),
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &BundleEndpoint {
        &self.endpoint
    }

    /// The options.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Fetches the endpoint's bundle.
    ///
    /// `current` is the bundle the caller holds for the trust domain, if
    /// any: a fetched bundle with a lower `spiffe_sequence` is refused
    /// (unless [`FetchOptions::allow_sequence_rollback`]), and if `current`
    /// is the bundle this client fetched last, the request carries that
    /// response's `ETag` in `If-None-Match`, so an unchanged bundle is not
    /// downloaded again (a `304` answer returns `current`).
    ///
    /// The configured URL is always where the fetch starts: redirects are
    /// followed for this fetch only (rule F-17).
    ///
    /// # Errors
    ///
    /// Every [`FetchError`]: connection ([`Connect`](FetchError::Connect),
    /// [`ConnectTimeout`](FetchError::ConnectTimeout)), server
    /// authentication ([`Tls`](FetchError::Tls),
    /// [`WrongEndpointId`](FetchError::WrongEndpointId),
    /// [`NoEndpointBundle`](FetchError::NoEndpointBundle)), HTTP
    /// ([`Http`](FetchError::Http), [`Status`](FetchError::Status),
    /// [`ContentType`](FetchError::ContentType),
    /// [`TooLarge`](FetchError::TooLarge),
    /// [`Redirect`](FetchError::Redirect),
    /// [`TooManyRedirects`](FetchError::TooManyRedirects)), the bundle
    /// ([`MalformedBundle`](FetchError::MalformedBundle),
    /// [`WrongTrustDomain`](FetchError::WrongTrustDomain),
    /// [`SequenceWentBackwards`](FetchError::SequenceWentBackwards)), and
    /// [`Timeout`](FetchError::Timeout) for the whole.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with I/O and time enabled, as Tokio's own
    /// network and timer functions do.
    pub async fn fetch(&self, current: Option<&SpiffeBundle>) -> Result<SpiffeBundle, FetchError> {
        let after = self.options.timeout;
        match tokio::time::timeout(after, self.fetch_following_redirects(current)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: self.endpoint.url().to_string(),
                after,
            }),
        }
    }

    async fn fetch_following_redirects(
        &self,
        current: Option<&SpiffeBundle>,
    ) -> Result<SpiffeBundle, FetchError> {
        if let Profile::Spiffe {
            endpoint_id,
            bundles,
        } = &self.endpoint.profile().0
        {
            // Fail before connecting: the handshake could only fail, and
            // this says why.
            if bundles
                .x509_bundle_for(&endpoint_id.trust_domain())
                .is_none()
            {
                return Err(FetchError::NoEndpointBundle {
                    endpoint_id: endpoint_id.clone(),
                });
            }
        }
        let mut url = self.endpoint.url().clone();
        let mut redirects = 0u8;
        loop {
            let conditional = self.conditional_for(&url, current);
            let answer = self
                .exchange(&url, conditional.as_ref().map(|(etag, _)| etag))
                .await?;
            match answer {
                Answer::Body { body, etag } => {
                    let bundle = self.accept(&url, &body, current)?;
                    self.remember(&url, etag, &bundle);
                    return Ok(bundle);
                }
                Answer::NotModified => {
                    // Only asked for when `current` is the cached bundle.
                    if let Some((_, bundle)) = conditional {
                        return Ok(bundle);
                    }
                    return Err(FetchError::Status {
                        url: url.to_string(),
                        status: StatusCode::NOT_MODIFIED.as_u16(),
                    });
                }
                Answer::Redirect(location) => {
                    if redirects >= self.options.max_redirects {
                        return Err(FetchError::TooManyRedirects {
                            url: url.to_string(),
                            limit: self.options.max_redirects,
                        });
                    }
                    redirects = redirects.saturating_add(1);
                    url = url
                        .redirect(&location)
                        .map_err(|reason| FetchError::Redirect {
                            url: url.to_string(),
                            location,
                            reason,
                        })?;
                }
            }
        }
    }

    /// The `If-None-Match` to send to `url`, and the bundle a `304` means:
    /// only when `current` is what this client last fetched from `url`.
    fn conditional_for(
        &self,
        url: &EndpointUrl,
        current: Option<&SpiffeBundle>,
    ) -> Option<(HeaderValue, SpiffeBundle)> {
        let current = current?;
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = last.as_ref()?;
        (cached.url == url.as_str() && cached.bundle == *current)
            .then(|| (cached.etag.clone(), current.clone()))
    }

    fn remember(&self, url: &EndpointUrl, etag: Option<HeaderValue>, bundle: &SpiffeBundle) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = etag.map(|etag| Cached {
            url: url.as_str().to_owned(),
            etag,
            bundle: bundle.clone(),
        });
    }

    /// Parses and checks a body.
    fn accept(
        &self,
        url: &EndpointUrl,
        body: &[u8],
        current: Option<&SpiffeBundle>,
    ) -> Result<SpiffeBundle, FetchError> {
        let td = self.endpoint.trust_domain();
        let parse = ParseOptions::default()
            .with_mode(self.options.mode)
            .with_max_bytes(self.options.max_body_bytes);
        let bundle = response::parse_bundle(td, body, &parse).map_err(|source| {
            FetchError::MalformedBundle {
                url: url.to_string(),
                source,
            }
        })?;
        if self.options.check_authority_trust_domain {
            if let Some(found) = response::foreign_trust_domain(bundle.x509_bundle(), td) {
                return Err(FetchError::WrongTrustDomain {
                    url: url.to_string(),
                    expected: td.clone(),
                    found,
                });
            }
        }
        if !self.options.allow_sequence_rollback {
            let current = current
                .filter(|c| c.trust_domain() == td)
                .and_then(SpiffeBundle::sequence);
            if let (Some(current), Some(fetched)) = (current, bundle.sequence()) {
                if fetched < current {
                    return Err(FetchError::SequenceWentBackwards { current, fetched });
                }
            }
        }
        Ok(bundle)
    }

    /// One connection, one request, one answer.
    async fn exchange(
        &self,
        url: &EndpointUrl,
        if_none_match: Option<&HeaderValue>,
    ) -> Result<Answer, FetchError> {
        let http = |e: &dyn fmt::Display| FetchError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let tls = self.connect(url).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
                .await
                .map_err(|e| http(&e))?;
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(url.request_target())
            .header(HOST, url.host_header())
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("spiffe-federation/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        let request = request.body(Empty::new()).map_err(|e| http(&e))?;
        let conditional = if_none_match.is_some();
        let work = async {
            let response = sender.send_request(request).await.map_err(|e| http(&e))?;
            self.read_response(url, response, conditional).await
        };
        drive(work, connection).await
    }

    async fn read_response(
        &self,
        url: &EndpointUrl,
        response: Response<hyper::body::Incoming>,
        conditional: bool,
    ) -> Result<Answer, FetchError> {
        let status = response.status();
        let headers = response.headers();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = headers.get(LOCATION).ok_or_else(|| FetchError::Redirect {
                url: url.to_string(),
                location: String::new(),
                reason: "no Location header".to_owned(),
            })?;
            let location = location.to_str().map_err(|_| FetchError::Redirect {
                url: url.to_string(),
                location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
                reason: "the Location header is not text".to_owned(),
            })?;
            return Ok(Answer::Redirect(location.to_owned()));
        }
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Answer::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        response::check_content_type(headers.get(CONTENT_TYPE)).map_err(|found| {
            FetchError::ContentType {
                url: url.to_string(),
                found,
            }
        })?;
        response::check_content_encoding(headers.get(CONTENT_ENCODING)).map_err(|reason| {
            FetchError::Http {
                url: url.to_string(),
                reason,
            }
        })?;
        let limit = self.options.max_body_bytes;
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // Refuse a declared oversize body without reading any of it.
        if declared.is_some_and(|len| u64::try_from(limit).is_ok_and(|limit| len > limit)) {
            return Err(too_large());
        }
        let etag = headers.get(ETAG).cloned();
        let body = response::read_body(response.into_body(), limit)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => too_large(),
                BodyError::Http(reason) => FetchError::Http {
                    url: url.to_string(),
                    reason,
                },
            })?;
        Ok(Answer::Body { body, etag })
    }

    /// TCP, then TLS, within the connect timeout.
    async fn connect(&self, url: &EndpointUrl) -> Result<TlsStream<TcpStream>, FetchError> {
        let after = self.options.connect_timeout;
        let connecting = async {
            let tcp = TcpStream::connect((url.connect_host().as_str(), url.port()))
                .await
                .map_err(|e| FetchError::Connect {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            // Best effort: a request is one small write.
            let _ = tcp.set_nodelay(true);
            self.connector
                .connect(url.server_name().clone(), tcp)
                .await
                .map_err(|e| self.tls_error(url, &e))
        };
        match tokio::time::timeout(after, connecting).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::ConnectTimeout {
                url: url.to_string(),
                after,
            }),
        }
    }

    /// Classifies a handshake failure: a verified server with another
    /// SPIFFE ID is [`FetchError::WrongEndpointId`]; everything else is
    /// [`FetchError::Tls`] with the most specific reason available.
    fn tls_error(&self, url: &EndpointUrl, error: &std::io::Error) -> FetchError {
        let rustls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let reason = match rustls_error {
            Some(err) => {
                if let (Some(denied), Some(expected)) = (
                    authorization_error(err),
                    self.endpoint.profile().endpoint_id(),
                ) {
                    return FetchError::WrongEndpointId {
                        url: url.to_string(),
                        expected: expected.clone(),
                        presented: denied.spiffe_id().clone(),
                    };
                }
                match x509_svid_error(err) {
                    Some(svid) => format!("the server's X509-SVID was refused: {svid}"),
                    None => err.to_string(),
                }
            }
            None => error.to_string(),
        };
        FetchError::Tls {
            url: url.to_string(),
            reason,
        }
    }
}

/// Runs `work` while driving the HTTP connection it talks over; dropping
/// the result drops the connection, so nothing outlives a fetch (no task is
/// spawned that a timeout would leave behind).
async fn drive<T, W, C, E>(work: W, connection: C) -> Result<T, FetchError>
where
    W: Future<Output = Result<T, FetchError>>,
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(work);
    tokio::pin!(connection);
    let mut connection_done = false;
    loop {
        tokio::select! {
            result = &mut work => return result,
            // A connection error also fails `work`, which reports it.
            _ = &mut connection, if !connection_done => connection_done = true,
        }
    }
}

/// The rustls client configuration of a profile.
fn client_config(
    profile: &Profile,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, ConfigError> {
    let tls = |e: rustls::Error| ConfigError::Tls {
        reason: e.to_string(),
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(tls)?;
    let mut config = match profile {
        Profile::Web { roots } => {
            if roots.is_empty() {
                return Err(ConfigError::NoWebPkiRoots);
            }
            // rustls' WebPKI verifier: chain to a root and RFC 6125 name
            // check against the URL's host (rule F-16).
            builder
                .with_root_certificates(Arc::clone(roots))
                .with_no_client_auth()
        }
        Profile::Spiffe {
            endpoint_id,
            bundles,
        } => {
            let verifier = SpiffeServerCertVerifier::with_provider(
                Arc::clone(bundles),
                IdMatcher::exact(endpoint_id.clone()),
                provider,
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    // A resumed session skips server authentication (and, for
    // https_spiffe, the newest bundle, rule F-21): every fetch verifies.
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
