//! What a client is configured with before its first request (rule F-08):
//! the endpoint URL, the profile, and the trust domain whose bundle the
//! endpoint serves.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, DnsName, ServerName};
use spiffe_bundle::X509BundleSource;
use spiffe_id::{SpiffeId, TrustDomain};
use url::{Host, Position, Url};

use crate::ConfigError;

/// A valid bundle endpoint URL (rule F-10): scheme `https`, a host, and no
/// userinfo. Port, path and query are unconstrained. A fragment is allowed
/// and never sent.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    url: Url,
    server_name: ServerName<'static>,
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EndpointUrl")
            .field(&self.url.as_str())
            .finish()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl FromStr for EndpointUrl {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<Url> for EndpointUrl {
    type Error = ConfigError;

    fn try_from(url: Url) -> Result<Self, Self::Error> {
        Self::from_url(url).map_err(|(url, reason)| ConfigError::InvalidUrl { url, reason })
    }
}

impl EndpointUrl {
    /// Parses and checks a bundle endpoint URL.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] if `url` does not parse, its scheme is
    /// not `https` (case edge 1), it has a user name or password (edge 2),
    /// or it has no host.
    ///
    /// ```
    /// use spiffe_federation::EndpointUrl;
    ///
    /// assert!(EndpointUrl::parse("https://host:8443/path?x=1").is_ok());
    /// assert!(EndpointUrl::parse("http://host/bundle").is_err());
    /// assert!(EndpointUrl::parse("https://user:pw@host/bundle").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let parsed = Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        Self::try_from(parsed)
    }

    /// Checks a parsed URL; on failure returns it as text with the reason.
    fn from_url(url: Url) -> Result<Self, (String, String)> {
        let fail = |url: &Url, reason: &str| Err((url.to_string(), reason.to_owned()));
        if url.scheme() != "https" {
            return fail(&url, "the scheme must be https");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return fail(&url, "the URL must not carry userinfo");
        }
        let server_name = match url.host() {
            None => return fail(&url, "the URL has no host"),
            Some(Host::Domain(domain)) => match DnsName::try_from(domain.to_owned()) {
                Ok(name) => ServerName::DnsName(name),
                Err(_) => return fail(&url, "the host is not a valid DNS name"),
            },
            Some(Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
            Some(Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
        };
        Ok(EndpointUrl { url, server_name })
    }

    /// The target of a redirect from this URL: `location` resolved against
    /// it, and checked like a configured URL (rules F-15, F-17).
    pub(crate) fn redirect(&self, location: &str) -> Result<Self, String> {
        let joined = self.url.join(location).map_err(|e| e.to_string())?;
        Self::from_url(joined).map_err(|(_, reason)| reason)
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The name the TLS client checks (`https_web`) and sends as SNI.
    pub(crate) fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// The host to connect to, without IPv6 brackets.
    pub(crate) fn connect_host(&self) -> String {
        match self.url.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Domain(d)) => d.to_owned(),
            None => String::new(),
        }
    }

    /// The port to connect to (443 when not written).
    pub(crate) fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// The `Host` header: host and port, the port only when not 443.
    pub(crate) fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// Path and query, the request target.
    pub(crate) fn request_target(&self) -> &str {
        &self.url[Position::BeforePath..Position::AfterQuery]
    }
}

/// How the client authenticates the bundle endpoint server (rule F-06: both
/// are supported; there is no fallback from one to the other, rule F-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileKind {
    /// `https_web`: a Web PKI certificate naming the URL's host.
    HttpsWeb,
    /// `https_spiffe`: an X509-SVID with the configured endpoint SPIFFE ID.
    HttpsSpiffe,
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileKind::HttpsWeb => "https_web",
            ProfileKind::HttpsSpiffe => "https_spiffe",
        })
    }
}

/// The bundle endpoint profile, with what it needs to authenticate the
/// server.
#[derive(Clone)]
pub struct EndpointProfile(pub(crate) Profile);

#[derive(Clone)]
pub(crate) enum Profile {
    Web {
        roots: Arc<RootCertStore>,
    },
    Spiffe {
        endpoint_id: SpiffeId,
        bundles: Arc<dyn X509BundleSource + Send + Sync>,
    },
}

impl fmt::Debug for EndpointProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Profile::Web { roots } => f
                .debug_struct("HttpsWeb")
                .field("roots", &roots.len())
                .finish(),
            Profile::Spiffe { endpoint_id, .. } => f
                .debug_struct("HttpsSpiffe")
                .field("endpoint_id", endpoint_id)
                .finish_non_exhaustive(),
        }
    }
}

impl EndpointProfile {
    /// `https_web`: the server's certificate must chain to one of `roots`
    /// and name the URL's host (RFC 6125, checked by rustls; rule F-16).
    /// Nothing else is configured (rule F-11). The roots are the caller's:
    /// this crate ships none.
    pub fn https_web(roots: impl Into<Arc<RootCertStore>>) -> Self {
        EndpointProfile(Profile::Web {
            roots: roots.into(),
        })
    }

    /// `https_web` with roots given as DER certificates.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRootCertificate`] naming the first certificate
    /// rustls refuses as a trust anchor.
    pub fn https_web_der<I>(roots: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = CertificateDer<'static>>,
    {
        let mut store = RootCertStore::empty();
        for (index, der) in roots.into_iter().enumerate() {
            store
                .add(der)
                .map_err(|e| ConfigError::InvalidRootCertificate {
                    index,
                    reason: e.to_string(),
                })?;
        }
        Ok(Self::https_web(store))
    }

    /// `https_spiffe`: the server must present an X509-SVID for exactly
    /// `endpoint_id` that verifies against the X.509 bundle of
    /// `endpoint_id`'s trust domain, looked up in `bundles` at every
    /// connection (rules F-18, F-20).
    ///
    /// `bundles` is where that bundle comes from: a bootstrap bundle
    /// ([`X509Bundle`](spiffe_bundle::X509Bundle),
    /// [`SpiffeBundle`](spiffe_bundle::SpiffeBundle)) or a live set (an
    /// `Arc<BundleSet>`, so that later connections use the newest bundle,
    /// rules F-21, F-22). A [`BundleWatcher`](crate::BundleWatcher) looks in
    /// its own set first, and in `bundles` only while the set has no bundle
    /// for that trust domain.
    pub fn https_spiffe(
        endpoint_id: SpiffeId,
        bundles: impl X509BundleSource + Send + Sync + 'static,
    ) -> Self {
        EndpointProfile(Profile::Spiffe {
            endpoint_id,
            bundles: Arc::new(bundles),
        })
    }

    /// Which profile this is.
    pub fn kind(&self) -> ProfileKind {
        match self.0 {
            Profile::Web { .. } => ProfileKind::HttpsWeb,
            Profile::Spiffe { .. } => ProfileKind::HttpsSpiffe,
        }
    }

    /// The endpoint SPIFFE ID of an `https_spiffe` profile.
    pub fn endpoint_id(&self) -> Option<&SpiffeId> {
        match &self.0 {
            Profile::Web { .. } => None,
            Profile::Spiffe { endpoint_id, .. } => Some(endpoint_id),
        }
    }
}

/// A bundle endpoint: the trust domain whose bundle it serves, its URL and
/// its profile, all three given explicitly (rule F-08: the trust domain is
/// never taken from the URL's host).
#[derive(Clone, Debug)]
pub struct BundleEndpoint {
    trust_domain: TrustDomain,
    url: EndpointUrl,
    profile: EndpointProfile,
}

impl BundleEndpoint {
    /// The endpoint serving `trust_domain`'s bundle at `url`, authenticated
    /// per `profile`.
    pub fn new(trust_domain: TrustDomain, url: EndpointUrl, profile: EndpointProfile) -> Self {
        BundleEndpoint {
            trust_domain,
            url,
            profile,
        }
    }

    /// The trust domain whose bundle the endpoint serves.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The configured URL (redirects never replace it, rule F-17).
    pub fn url(&self) -> &EndpointUrl {
        &self.url
    }

    /// The profile.
    pub fn profile(&self) -> &EndpointProfile {
        &self.profile
    }

    pub(crate) fn with_profile(&self, profile: EndpointProfile) -> Self {
        BundleEndpoint {
            trust_domain: self.trust_domain.clone(),
            url: self.url.clone(),
            profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match EndpointUrl::parse(url) {
            Err(ConfigError::InvalidUrl { reason, .. }) => reason,
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn f10_requires_https() {
        assert_eq!(reason("http://example.org/b"), "the scheme must be https");
        assert_eq!(reason("ftp://example.org/b"), "the scheme must be https");
    }

    #[test]
    fn f10_rejects_userinfo() {
        assert_eq!(
            reason("https://user:pw@example.org/b"),
            "the URL must not carry userinfo"
        );
        assert_eq!(
            reason("https://user@example.org/b"),
            "the URL must not carry userinfo"
        );
        assert_eq!(
            reason("https://:pw@example.org/b"),
            "the URL must not carry userinfo"
        );
    }

    #[test]
    fn f10_leaves_port_path_and_query_free() {
        let url = EndpointUrl::parse("https://Example.org:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(url.host_header(), "example.org:8443");
        assert_eq!(url.request_target(), "/a/b?x=1&y=2");
        assert_eq!(url.port(), 8443);
        let url = EndpointUrl::parse("https://example.org").unwrap();
        assert_eq!(url.host_header(), "example.org");
        assert_eq!(url.request_target(), "/");
        assert_eq!(url.port(), 443);
    }

    #[test]
    fn ip_hosts() {
        let url = EndpointUrl::parse("https://[::1]:8443/").unwrap();
        assert_eq!(url.connect_host(), "::1");
        assert_eq!(url.host_header(), "[::1]:8443");
        assert!(matches!(url.server_name(), ServerName::IpAddress(_)));
        let url = EndpointUrl::parse("https://127.0.0.1/").unwrap();
        assert_eq!(url.connect_host(), "127.0.0.1");
        assert!(matches!(url.server_name(), ServerName::IpAddress(_)));
    }

    #[test]
    fn unparseable_urls() {
        assert!(EndpointUrl::parse("not a url").is_err());
        assert!(EndpointUrl::parse("https://").is_err());
        assert!(EndpointUrl::parse("").is_err());
    }

    #[test]
    fn f15_redirect_targets() {
        let base = EndpointUrl::parse("https://a.example/bundle").unwrap();
        assert_eq!(
            base.redirect("/other?x").unwrap().as_str(),
            "https://a.example/other?x"
        );
        assert_eq!(
            base.redirect("https://b.example:9443/b").unwrap().as_str(),
            "https://b.example:9443/b"
        );
        assert_eq!(
            base.redirect("http://b.example/b").unwrap_err(),
            "the scheme must be https"
        );
        assert_eq!(
            base.redirect("https://u:p@b.example/b").unwrap_err(),
            "the URL must not carry userinfo"
        );
    }
}
