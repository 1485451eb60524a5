//! The error types of this crate.

use std::time::Duration;

use spiffe_bundle::BundleError;
use spiffe_id::{SpiffeId, TrustDomain};

/// Why a client, watcher or server could not be set up.
///
/// No variant holds a foreign error type: their messages are kept as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The bundle endpoint URL is not a valid endpoint URL (rule F-10): it
    /// does not parse, its scheme is not `https`, it has userinfo, or it has
    /// no host.
    #[error("invalid bundle endpoint URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https_web` profile was given no Web PKI root: every handshake
    /// would fail.
    #[error("the https_web profile has no Web PKI root certificate")]
    NoWebPkiRoots,
    /// A Web PKI root certificate given as DER was refused.
    #[error("Web PKI root certificate {index} refused: {reason}")]
    InvalidRootCertificate {
        /// Position in the list given.
        index: usize,
        /// Why it was refused.
        reason: String,
    },
    /// No rustls `CryptoProvider` is installed as the process default and
    /// no built-in one is compiled in.
    #[error("no rustls CryptoProvider is available")]
    NoCryptoProvider,
    /// rustls refused the TLS configuration (for example a certificate and
    /// key that do not match, or a provider without a usable cipher suite).
    #[error("TLS configuration refused: {reason}")]
    Tls {
        /// What rustls reported.
        reason: String,
    },
    /// An option is out of range (for example a minimum refresh interval
    /// above the maximum).
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A watcher or server was started outside a Tokio runtime.
    #[error("not called from within a Tokio runtime")]
    NoRuntime,
}

/// Why fetching a bundle from a bundle endpoint failed.
///
/// Every variant says which step failed; `url` is the URL being fetched at
/// that step (the configured one, or a redirect target). No variant holds a
/// foreign error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The TCP connection could not be made (name resolution failed, the
    /// connection was refused or reset).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL being fetched.
        url: String,
        /// What the operating system reported.
        reason: String,
    },
    /// The TCP connection and TLS handshake did not finish within
    /// [`FetchOptions::connect_timeout`](crate::FetchOptions::connect_timeout).
    #[error("connecting to {url} (TCP and TLS) took longer than {after:?}")]
    ConnectTimeout {
        /// The URL being fetched.
        url: String,
        /// The timeout in force.
        after: Duration,
    },
    /// The whole fetch, redirects and body included, did not finish within
    /// [`FetchOptions::timeout`](crate::FetchOptions::timeout).
    #[error("fetching the bundle from {url} took longer than {after:?}")]
    Timeout {
        /// The configured URL.
        url: String,
        /// The timeout in force.
        after: Duration,
    },
    /// The TLS handshake failed: for `https_web` the certificate is not
    /// trusted by the Web PKI roots or does not name the host (rule F-16);
    /// for `https_spiffe` the server's X509-SVID does not verify against the
    /// bundle of the endpoint ID's trust domain (rule F-20).
    #[error("TLS handshake with {url} failed: {reason}")]
    Tls {
        /// The URL being fetched.
        url: String,
        /// What failed.
        reason: String,
    },
    /// `https_spiffe`: the server's X509-SVID verified, but its SPIFFE ID is
    /// not the configured endpoint ID (rules F-20, F-23).
    #[error("{url} presented SPIFFE ID {presented}, expected {expected}")]
    WrongEndpointId {
        /// The URL being fetched.
        url: String,
        /// The configured endpoint SPIFFE ID.
        expected: SpiffeId,
        /// The (verified) SPIFFE ID the server presented.
        presented: SpiffeId,
    },
    /// `https_spiffe`: there is no bundle of the endpoint ID's trust domain to
    /// authenticate the server with (rule F-18). Nothing was sent.
    #[error("no X.509 bundle of trust domain {} to authenticate endpoint {endpoint_id}", endpoint_id.trust_domain_name())]
    NoEndpointBundle {
        /// The configured endpoint SPIFFE ID.
        endpoint_id: SpiffeId,
    },
    /// The HTTP exchange failed (malformed response, connection closed
    /// early, unsupported `Content-Encoding`).
    #[error("HTTP exchange with {url} failed: {reason}")]
    Http {
        /// The URL being fetched.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with a status other than 2xx (and other than a
    /// redirect that was followed).
    #[error("{url} answered with HTTP status {status}")]
    Status {
        /// The URL being fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The response's `Content-Type` is not JSON (`application/json` or
    /// `application/*+json`, with an optional UTF-8 charset).
    #[error("{url} answered with content type {found:?}, expected application/json")]
    ContentType {
        /// The URL being fetched.
        url: String,
        /// The `Content-Type` received.
        found: String,
    },
    /// The response body is longer than
    /// [`FetchOptions::max_body_bytes`](crate::FetchOptions::max_body_bytes)
    /// (by its `Content-Length`, or while it was read).
    #[error("the response from {url} is over the limit of {limit} bytes")]
    TooLarge {
        /// The URL being fetched.
        url: String,
        /// The limit in force.
        limit: usize,
    },
    /// A redirect was not followed: its target is not a valid endpoint URL
    /// for the profile (rules F-15, F-17), or it has no `Location`.
    #[error("redirect from {url} to {location:?} refused: {reason}")]
    Redirect {
        /// The URL that answered with the redirect.
        url: String,
        /// The `Location` received (empty if there was none).
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// More redirects than
    /// [`FetchOptions::max_redirects`](crate::FetchOptions::max_redirects)
    /// (with a limit of 0, any redirect).
    #[error("{url} redirected, over the limit of {limit} redirects")]
    TooManyRedirects {
        /// The URL that answered with the redirect over the limit.
        url: String,
        /// The limit in force.
        limit: u8,
    },
    /// The body is not a valid SPIFFE bundle.
    #[error("the bundle from {url} is malformed: {source}")]
    MalformedBundle {
        /// The URL it came from.
        url: String,
        /// What was wrong with it.
        source: BundleError,
    },
    /// The bundle's X.509 authorities name another trust domain than the
    /// configured one (see the [crate docs](crate#which-trust-domain-a-bundle-belongs-to)).
    #[error("the bundle from {url} belongs to trust domain {found}, not {expected}")]
    WrongTrustDomain {
        /// The URL it came from.
        url: String,
        /// The configured trust domain.
        expected: TrustDomain,
        /// The trust domain its authorities name.
        found: TrustDomain,
    },
    /// The bundle's `spiffe_sequence` is lower than the current bundle's
    /// (rule F-04); it was not used.
    #[error("the bundle's sequence number went backwards: fetched {fetched}, current {current}")]
    SequenceWentBackwards {
        /// The current bundle's sequence number.
        current: u64,
        /// The fetched bundle's sequence number.
        fetched: u64,
    },
}

/// Why a bundle endpoint server could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the operating system reported.
        reason: String,
    },
    /// The server's configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
