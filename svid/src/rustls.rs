// This file is the module `tls` (lib.rs: `#[path = "rustls.rs"]`): a module
// named `rustls` at the crate root would make `rustls::` paths there (code
// and intra-doc links) mean this module instead of the rustls crate.

//! rustls integration (feature `rustls`): SPIFFE mTLS.
//!
//! | type | role |
//! |---|---|
//! | [`SpiffeServerCertVerifier`] | a client's [`ServerCertVerifier`]: verifies the server's X509-SVID, then authorizes its SPIFFE ID |
//! | [`SpiffeClientCertVerifier`] | a server's [`ClientCertVerifier`]: client certificates are mandatory; verifies and authorizes them the same way |
//! | [`SvidSource`], [`RotatingSvid`] | where the workload's own, rotating X509-SVID comes from |
//! | [`SvidCertResolver`] | serves the current SVID to rustls, as [`ResolvesServerCert`] and [`ResolvesClientCert`] |
//! | [`mtls_server_config`], [`mtls_client_config`] | ready-made `ServerConfig`/`ClientConfig` with session resumption off |
//!
//! # How a peer is accepted
//!
//! 1. The presented chain (leaf first) is verified by
//!    [`verify_x509_svid_with_provider`]
//!    against the bundle of the leaf's trust domain, taken from any
//!    [`X509BundleSource`] (a [`BundleSet`](spiffe_bundle::BundleSet) for
//!    federation), or through a [`VerificationCache`] over such a source.
//!    A trust domain without a bundle fails closed.
//! 2. Only a verified peer reaches the [`Authorizer`]. A chain failure is
//!    therefore always reported as what it is, never as a denial.
//!
//! The server name the client connects to (SNI, DNS names and IP addresses
//! in the certificate) plays no part: a SPIFFE peer is authenticated by its
//! SPIFFE ID, and which IDs are acceptable is the authorizer's business. The
//! handshake signature (`CertificateVerify`) is checked with the
//! `signature_verification_algorithms` of the verifier's crypto provider.
//! No CA names are sent to clients (`root_hint_subjects` is empty).
//!
//! # Errors seen by rustls
//!
//! Failures become [`rustls::Error::InvalidCertificate`] with:
//!
//! | our error | [`CertificateError`] | alert sent |
//! |---|---|---|
//! | [`Expired`](X509SvidError::Expired) | `ExpiredContext` | `certificate_expired` |
//! | [`NotYetValid`](X509SvidError::NotYetValid) | `NotValidYetContext` | `certificate_expired` |
//! | [`UnknownIssuer`](X509SvidError::UnknownIssuer) | `UnknownIssuer` | `unknown_ca` |
//! | [`BadSignature`](X509SvidError::BadSignature) | `BadSignature` | `decrypt_error` |
//! | [`EmptyChain`](X509SvidError::EmptyChain), [`MalformedCertificate`](X509SvidError::MalformedCertificate) | `BadEncoding` | `bad_certificate` |
//! | [`UnsupportedCriticalExtension`](X509SvidError::UnsupportedCriticalExtension) | `UnhandledCriticalExtension` | `bad_certificate` |
//! | every other [`X509SvidError`] (SPIFFE profile, [`NoBundle`](X509SvidError::NoBundle), ...) | `Other`, holding the [`X509SvidError`] | `certificate_unknown` |
//! | an [`AuthorizationError`] | `Other`, holding the [`AuthorizationError`] (so the local error names the denied ID) | `certificate_unknown` |
//!
//! [`x509_svid_error`] and [`authorization_error`] get our error back out of
//! a `rustls::Error`. The peer only learns the alert.
//!
//! # Session resumption is off
//!
//! A resumed TLS session (tickets or session IDs) skips certificate
//! verification altogether: rustls calls neither verifier. A peer that was
//! authorized once could then come back after its bundle was replaced, its
//! trust domain was removed, or the authorization policy changed, and be let
//! in on the strength of the old decision. The configs built by
//! [`mtls_server_config`] and [`mtls_client_config`] therefore disable
//! resumption on both sides (no session cache, no tickets), so every
//! connection is verified and authorized again. Use a [`VerificationCache`]
//! to make repeated verifications cheap instead. If you build configs by
//! hand, do the same.
//!
//! ```
//! # #[cfg(feature = "issuer")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rustls_pki_types::UnixTime;
//! use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle};
//! use spiffe_id::{SpiffeId, TrustDomain};
//! use spiffe_svid::authorize::IdMatcher;
//! use spiffe_svid::issuer::{DevCa, SvidSpec};
//! use spiffe_svid::tls::{RotatingSvid, SpiffeClientCertVerifier, mtls_server_config};
//!
//! let td = TrustDomain::new("example.org")?;
//! let ca = DevCa::new(td.clone())?;
//! let bundles = Arc::new(BundleSet::new());
//! bundles.insert(SpiffeBundle::new(ca.bundle(), JwtBundle::empty(td.clone()), None, None)?);
//!
//! let now = UnixTime::now().as_secs();
//! let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
//! let spec = SvidSpec::new(SpiffeId::parse("spiffe://example.org/server")?, t(now - 60), t(now + 3600));
//! let svid = RotatingSvid::new(ca.issue(&spec)?.to_x509_svid()?);
//!
//! let verifier = SpiffeClientCertVerifier::new(bundles, IdMatcher::member_of(td))?;
//! let config = mtls_server_config(verifier, svid)?;
//! assert!(!config.session_storage.can_cache());
//! assert_eq!(config.send_tls13_tickets, 0);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "issuer"))]
//! # fn main() {}
//! ```

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, OtherError,
    ServerConfig, SignatureScheme,
};
use spiffe_bundle::X509BundleSource;

use crate::authorize::{AuthorizationError, Authorizer};
use crate::cache::VerificationCache;
use crate::{
    VerifiedX509Svid, X509Svid, X509SvidError, default_crypto_provider,
    verify_x509_svid_with_provider,
};

/// Verifies a presented chain: directly against a bundle source, or through
/// a cache.
trait ChainVerifier: Send + Sync {
    fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        at: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, X509SvidError>;
}

struct Direct<S> {
    source: S,
    provider: Arc<CryptoProvider>,
}

impl<S: X509BundleSource + Send + Sync> ChainVerifier for Direct<S> {
    fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        at: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, X509SvidError> {
        verify_x509_svid_with_provider(chain, &self.source, at, &self.provider).map(Arc::new)
    }
}

impl<S: X509BundleSource + Send + Sync> ChainVerifier for VerificationCache<S> {
    fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        at: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, X509SvidError> {
        VerificationCache::verify(self, chain, at)
    }
}

/// What both verifiers share: chain verification, authorization, and the
/// provider for handshake signatures.
#[derive(Clone)]
struct PeerVerifier {
    chain: Arc<dyn ChainVerifier>,
    authorizer: Arc<dyn Authorizer>,
    provider: Arc<CryptoProvider>,
    cached: bool,
}

impl fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVerifier")
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

impl PeerVerifier {
    fn direct<S, A>(source: S, authorizer: A, provider: Arc<CryptoProvider>) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        PeerVerifier {
            chain: Arc::new(Direct {
                source,
                provider: Arc::clone(&provider),
            }),
            authorizer: Arc::new(authorizer),
            provider,
            cached: false,
        }
    }

    fn cached<S, A>(cache: Arc<VerificationCache<S>>, authorizer: A) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        let provider = Arc::clone(cache.provider());
        PeerVerifier {
            chain: cache,
            authorizer: Arc::new(authorizer),
            provider,
            cached: true,
        }
    }

    fn verify_peer(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, Error> {
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        chain.push(CertificateDer::from(end_entity.as_ref()));
        chain.extend(
            intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );
        // Verification first: a chain failure is reported as such and the
        // authorizer never sees an unverified peer.
        let verified = self.chain.verify(&chain, now).map_err(verification_error)?;
        self.authorizer
            .authorize(&verified)
            .map_err(authorization_failure)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Maps a verification failure to the rustls error (see the
/// [module docs](self) for the table).
fn verification_error(error: X509SvidError) -> Error {
    let secs = |s: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
    Error::InvalidCertificate(match error {
        X509SvidError::Expired { at, not_after } => CertificateError::ExpiredContext {
            time: secs(at),
            not_after: secs(not_after),
        },
        X509SvidError::NotYetValid { at, not_before } => CertificateError::NotValidYetContext {
            time: secs(at),
            not_before: secs(not_before),
        },
        X509SvidError::UnknownIssuer => CertificateError::UnknownIssuer,
        X509SvidError::BadSignature => CertificateError::BadSignature,
        X509SvidError::EmptyChain | X509SvidError::MalformedCertificate { .. } => {
            CertificateError::BadEncoding
        }
        X509SvidError::UnsupportedCriticalExtension => CertificateError::UnhandledCriticalExtension,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    })
}

fn authorization_failure(error: AuthorizationError) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

fn other_error<T: std::error::Error + 'static>(error: &Error) -> Option<&T> {
    match error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<T>()
        }
        _ => None,
    }
}

/// The [`X509SvidError`] inside a rustls error produced by one of this
/// module's verifiers, when it was mapped to `CertificateError::Other` (see
/// the [module docs](self)); `None` otherwise.
pub fn x509_svid_error(error: &Error) -> Option<&X509SvidError> {
    other_error(error)
}

/// The [`AuthorizationError`] inside a rustls error produced by one of this
/// module's verifiers when the authorizer denied a verified peer; `None`
/// otherwise.
pub fn authorization_error(error: &Error) -> Option<&AuthorizationError> {
    other_error(error)
}

/// A rustls [`ServerCertVerifier`] for clients: the server must present an
/// X509-SVID that verifies against the bundle of its trust domain, and that
/// the authorizer accepts. The server name is ignored (see the
/// [module docs](self)).
#[derive(Clone, Debug)]
pub struct SpiffeServerCertVerifier(PeerVerifier);

impl SpiffeServerCertVerifier {
    /// A verifier with the crate's
    /// [default crypto provider](crate::default_crypto_provider), taking
    /// bundles from `bundles` (for example an
    /// `Arc<dyn X509BundleSource + Send + Sync>` or an `Arc<BundleSet>`).
    ///
    /// # Errors
    ///
    /// [`X509SvidError::NoCryptoProvider`] if no provider is available.
    pub fn new<S, A>(bundles: S, authorizer: A) -> Result<Self, X509SvidError>
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
        Ok(Self::with_provider(bundles, authorizer, provider))
    }

    /// A verifier whose chain and handshake signatures are checked by
    /// `provider`.
    pub fn with_provider<S, A>(bundles: S, authorizer: A, provider: Arc<CryptoProvider>) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        SpiffeServerCertVerifier(PeerVerifier::direct(bundles, authorizer, provider))
    }

    /// A verifier that verifies chains through `cache` (which may be shared
    /// with other verifiers), with the cache's crypto provider.
    pub fn with_cache<S, A>(cache: Arc<VerificationCache<S>>, authorizer: A) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        SpiffeServerCertVerifier(PeerVerifier::cached(cache, authorizer))
    }

    /// The crypto provider of signature checks.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.0.provider
    }

    /// Verifies and authorizes a peer chain at `now`, as a handshake does,
    /// and returns the verified SVID.
    ///
    /// # Errors
    ///
    /// The rustls error a handshake would fail with (see the
    /// [module docs](self)).
    pub fn verify_peer(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, Error> {
        self.0.verify_peer(end_entity, intermediates, now)
    }
}

impl ServerCertVerifier for SpiffeServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.0.verify_peer(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A rustls [`ClientCertVerifier`] for servers: client authentication is
/// mandatory, and the client must present an X509-SVID that verifies against
/// the bundle of its trust domain and that the authorizer accepts.
#[derive(Clone, Debug)]
pub struct SpiffeClientCertVerifier(PeerVerifier);

impl SpiffeClientCertVerifier {
    /// A verifier with the crate's
    /// [default crypto provider](crate::default_crypto_provider), taking
    /// bundles from `bundles`.
    ///
    /// # Errors
    ///
    /// [`X509SvidError::NoCryptoProvider`] if no provider is available.
    pub fn new<S, A>(bundles: S, authorizer: A) -> Result<Self, X509SvidError>
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
        Ok(Self::with_provider(bundles, authorizer, provider))
    }

    /// A verifier whose chain and handshake signatures are checked by
    /// `provider`.
    pub fn with_provider<S, A>(bundles: S, authorizer: A, provider: Arc<CryptoProvider>) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        SpiffeClientCertVerifier(PeerVerifier::direct(bundles, authorizer, provider))
    }

    /// A verifier that verifies chains through `cache` (which may be shared
    /// with other verifiers), with the cache's crypto provider.
    pub fn with_cache<S, A>(cache: Arc<VerificationCache<S>>, authorizer: A) -> Self
    where
        S: X509BundleSource + Send + Sync + 'static,
        A: Authorizer + 'static,
    {
        SpiffeClientCertVerifier(PeerVerifier::cached(cache, authorizer))
    }

    /// The crypto provider of signature checks.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.0.provider
    }

    /// Verifies and authorizes a peer chain at `now`, as a handshake does,
    /// and returns the verified SVID.
    ///
    /// # Errors
    ///
    /// The rustls error a handshake would fail with (see the
    /// [module docs](self)).
    pub fn verify_peer(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, Error> {
        self.0.verify_peer(end_entity, intermediates, now)
    }
}

impl ClientCertVerifier for SpiffeClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.0.verify_peer(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Where the workload's own X509-SVID comes from; asked on every handshake.
pub trait SvidSource: Send + Sync {
    /// The SVID to present now, or `None` if there is none (a server then
    /// aborts the handshake; a client sends no certificate, which a SPIFFE
    /// server rejects).
    fn current(&self) -> Option<Arc<X509Svid>>;
}

impl<T: SvidSource + ?Sized> SvidSource for Arc<T> {
    fn current(&self) -> Option<Arc<X509Svid>> {
        (**self).current()
    }
}

/// An X509-SVID holder that can be replaced at any time (on rotation) while
/// handshakes read it: reads are lock-free and a handshake sees either the
/// old or the new SVID, never a mix.
#[derive(Default)]
pub struct RotatingSvid {
    current: ArcSwapOption<X509Svid>,
}

impl fmt::Debug for RotatingSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.load();
        f.debug_struct("RotatingSvid")
            .field(
                "spiffe_id",
                &current.as_ref().map(|s| s.spiffe_id().clone()),
            )
            .finish()
    }
}

impl RotatingSvid {
    /// A holder serving `svid`.
    pub fn new(svid: X509Svid) -> Self {
        RotatingSvid {
            current: ArcSwapOption::from_pointee(svid),
        }
    }

    /// A holder with no SVID yet.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Replaces the SVID; the next handshake presents `svid`. The crypto
    /// provider may not have loaded its key yet (see
    /// [`X509Svid`](crate::X509Svid#when-the-crypto-provider-sees-the-key));
    /// call [`X509Svid::signing_key`] first to have a refused key reported
    /// here rather than by [`SvidCertResolver::key_error`] at the next
    /// handshake.
    pub fn set(&self, svid: X509Svid) {
        self.current.store(Some(Arc::new(svid)));
    }

    /// Removes the SVID (for example when the Workload API redacts it).
    pub fn clear(&self) {
        self.current.store(None);
    }

    /// The SVID served now.
    pub fn current(&self) -> Option<Arc<X509Svid>> {
        self.current.load_full()
    }
}

impl SvidSource for RotatingSvid {
    fn current(&self) -> Option<Arc<X509Svid>> {
        RotatingSvid::current(self)
    }
}

struct Served {
    svid: Arc<X509Svid>,
    key: Result<Arc<CertifiedKey>, X509SvidError>,
}

/// Serves the current SVID of an [`SvidSource`] to rustls, as a server
/// ([`ResolvesServerCert`]: whatever the client asked for in SNI) and as a
/// client ([`ResolvesClientCert`]: whatever CA names the server hinted).
///
/// The rustls `CertifiedKey` (the chain and
/// [`X509Svid::signing_key`]) is built once per SVID and reused until the
/// source hands out another one. Building it is when the crypto provider
/// first loads the SVID's private key (see
/// [`X509Svid`](crate::X509Svid#when-the-crypto-provider-sees-the-key)); if
/// the provider refuses the key, nothing is served for that SVID (fail
/// closed: a server aborts the handshake, a client sends no certificate) and
/// the error is kept for [`SvidCertResolver::key_error`].
pub struct SvidCertResolver {
    source: Arc<dyn SvidSource>,
    served: ArcSwapOption<Served>,
}

impl fmt::Debug for SvidCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served = self.served.load();
        f.debug_struct("SvidCertResolver")
            .field(
                "last_served",
                &served.as_ref().map(|s| s.svid.spiffe_id().clone()),
            )
            .field(
                "key_error",
                &served.as_ref().and_then(|s| s.key.as_ref().err()),
            )
            .finish_non_exhaustive()
    }
}

impl SvidCertResolver {
    /// A resolver serving what `source` currently holds.
    pub fn new(source: impl SvidSource + 'static) -> Self {
        SvidCertResolver {
            source: Arc::new(source),
            served: ArcSwapOption::empty(),
        }
    }

    /// The key and chain to present now, if the source has an SVID whose
    /// key the crypto provider accepts.
    pub fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.try_certified_key().ok().flatten()
    }

    /// As [`SvidCertResolver::certified_key`], with the reason when the
    /// source has an SVID that cannot be served.
    ///
    /// # Errors
    ///
    /// The error of [`X509Svid::signing_key`] for the source's current SVID
    /// ([`X509SvidError::InvalidPrivateKey`] or
    /// [`X509SvidError::KeyMismatch`]).
    pub fn try_certified_key(&self) -> Result<Option<Arc<CertifiedKey>>, X509SvidError> {
        let Some(svid) = self.source.current() else {
            return Ok(None);
        };
        if let Some(served) = self.served.load().as_ref() {
            if Arc::ptr_eq(&served.svid, &svid) {
                return served.key.clone().map(Some);
            }
        }
        let key = svid
            .signing_key()
            .map(|signing_key| Arc::new(CertifiedKey::new(svid.chain().to_vec(), signing_key)));
        self.served.store(Some(Arc::new(Served {
            svid,
            key: key.clone(),
        })));
        key.map(Some)
    }

    /// Why the SVID last looked at could not be served (its key was refused
    /// by the crypto provider), or `None` if it could (or none was looked
    /// at yet).
    pub fn key_error(&self) -> Option<X509SvidError> {
        self.served
            .load()
            .as_ref()
            .and_then(|served| served.key.as_ref().err().cloned())
    }
}

impl ResolvesServerCert for SvidCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certified_key()
    }
}

impl ResolvesClientCert for SvidCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.certified_key()
    }

    fn has_certs(&self) -> bool {
        self.source.current().is_some()
    }
}

/// A rustls `ServerConfig` for SPIFFE mTLS: the verifier's crypto provider
/// with its safe default protocol versions, mandatory client certificates
/// checked by `verifier`, the server's SVID served from `svid`, and **session
/// resumption disabled** (no session cache, no TLS 1.3 tickets; see the
/// [module docs](self) for why). ALPN and the rest can be set on the result.
///
/// # Errors
///
/// A rustls error if the provider is not consistent (no cipher suite for the
/// protocol versions).
pub fn mtls_server_config(
    verifier: SpiffeClientCertVerifier,
    svid: impl SvidSource + 'static,
) -> Result<ServerConfig, Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::clone(verifier.provider()))
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SvidCertResolver::new(svid)));
    // Resumption would skip the client-certificate verifier: off.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A rustls `ClientConfig` for SPIFFE mTLS: the verifier's crypto provider
/// with its safe default protocol versions, the server's certificate checked
/// by `verifier` (whatever server name is dialled), the client's SVID served
/// from `svid`, and **session resumption disabled** (see the
/// [module docs](self) for why).
///
/// # Errors
///
/// A rustls error if the provider is not consistent (no cipher suite for the
/// protocol versions).
pub fn mtls_client_config(
    verifier: SpiffeServerCertVerifier,
    svid: impl SvidSource + 'static,
) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(Arc::clone(verifier.provider()))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(SvidCertResolver::new(svid)));
    // Resumption would skip the server-certificate verifier: off.
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}
