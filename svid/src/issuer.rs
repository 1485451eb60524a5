//! A development certificate authority that mints X509-SVIDs (feature
//! `issuer`).
//!
//! For tests, examples and local development only: keys live in memory and
//! nothing is persisted. Besides spec-valid SVIDs it mints deliberately
//! broken ones ([`Defect`], [`CaSpec`]), so that every validator rule can be
//! tested with certificates generated at test time, at fixed times.
//!
//! ```
//! use std::time::Duration;
//! use rustls_pki_types::UnixTime;
//! use spiffe_id::{SpiffeId, TrustDomain};
//! use spiffe_svid::issuer::{DevCa, SvidSpec};
//! use spiffe_svid::verify_x509_svid;
//!
//! let ca = DevCa::new(TrustDomain::new("example.org")?)?;
//! let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
//! let spec = SvidSpec::new(SpiffeId::parse("spiffe://example.org/web")?, t(1_000), t(2_000));
//! let svid = ca.issue(&spec)?;
//! let verified = verify_x509_svid(svid.chain(), &ca.bundle(), t(1_500))?;
//! assert_eq!(verified.spiffe_id().as_str(), "spiffe://example.org/web");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, string::Ia5String,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe_bundle::X509Bundle;
use spiffe_id::{SpiffeId, TrustDomain};
use zeroize::Zeroizing;

use crate::{X509Svid, X509SvidError};

mod jwt;
pub use jwt::JwtIssuer;

/// Why the development CA could not mint a certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// rcgen failed to generate a key or sign a certificate.
    #[error("certificate generation failed: {reason}")]
    Generation {
        /// rcgen's description.
        reason: String,
    },
    /// A validity bound is after the year 9999.
    #[error("validity bound {secs} s is out of range")]
    TimeOutOfRange {
        /// The bound, in seconds since the Unix epoch.
        secs: u64,
    },
    /// A name is not valid IA5 text.
    #[error("name {name:?} is not IA5 text")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A leaf was asked for a trust domain's own ID, which has no path (rule
    /// X-04: a leaf SVID's ID has a non-root path). Use
    /// [`Defect::UriSan`] to mint such a leaf on purpose.
    #[error("a leaf SVID's ID must have a path; {id} has none")]
    LeafIdWithoutPath {
        /// The requested ID.
        id: String,
    },
}

fn gen_err(e: rcgen::Error) -> IssueError {
    IssueError::Generation {
        reason: e.to_string(),
    }
}

/// The key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with PKCS#1 v1.5 and SHA-256.
    Rsa2048,
}

impl KeyAlgorithm {
    fn generate(self) -> Result<KeyPair, IssueError> {
        match self {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
        }
        .map_err(gen_err)
    }
}

/// A deliberate violation of the X509-SVID leaf profile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// `cA=true` in the leaf (X-13).
    LeafIsCa,
    /// No basicConstraints extension at all (allowed: not a CA).
    NoBasicConstraints,
    /// `keyCertSign` added to the leaf's key usage (X-14).
    KeyCertSign,
    /// `cRLSign` added to the leaf's key usage (X-14).
    CrlSign,
    /// Key usage without `digitalSignature` (only `keyEncipherment`; X-17).
    NoDigitalSignature,
    /// No key-usage extension (X-15).
    NoKeyUsage,
    /// Key usage `digitalSignature`, not marked critical (X-15).
    NonCriticalKeyUsage,
    /// No URI SAN; the SPIFFE ID is put in as a DNS-safe name instead (X-01).
    NoUriSan,
    /// A second URI SAN after the SPIFFE ID (X-02).
    ExtraUriSan(String),
    /// The URI SAN is this text instead of the SPIFFE ID (scheme and ID
    /// rules, X-05, X-22).
    UriSan(String),
    /// EKU lists `serverAuth` only (X-18).
    ServerAuthOnly,
    /// No EKU extension (allowed: X-18 is a SHOULD).
    NoEku,
    /// An empty subject with a non-critical SAN extension (X-06).
    NonCriticalSanWithEmptySubject,
}

/// What leaf to mint: SPIFFE ID, validity window, key algorithm, extra DNS
/// SANs and an optional [`Defect`].
#[derive(Clone, Debug)]
pub struct SvidSpec {
    id: SpiffeId,
    not_before: UnixTime,
    not_after: UnixTime,
    key: KeyAlgorithm,
    dns_names: Vec<String>,
    defect: Option<Defect>,
}

impl SvidSpec {
    /// A spec-valid leaf for `id`, valid from `not_before` to `not_after`
    /// (both inclusive), with an ECDSA P-256 key.
    pub fn new(id: SpiffeId, not_before: UnixTime, not_after: UnixTime) -> Self {
        SvidSpec {
            id,
            not_before,
            not_after,
            key: KeyAlgorithm::default(),
            dns_names: Vec::new(),
            defect: None,
        }
    }

    /// Uses another key algorithm.
    pub fn key(mut self, key: KeyAlgorithm) -> Self {
        self.key = key;
        self
    }

    /// Adds DNS SANs (allowed in any number, X-03).
    pub fn dns_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.dns_names.extend(names.into_iter().map(Into::into));
        self
    }

    /// Breaks the leaf on purpose.
    pub fn defect(mut self, defect: Defect) -> Self {
        self.defect = Some(defect);
        self
    }
}

/// How to mint a CA certificate (a root or an intermediate), including
/// deliberate defects for path-validation tests.
#[derive(Clone, Debug)]
pub struct CaSpec {
    not_before: UnixTime,
    not_after: UnixTime,
    key: KeyAlgorithm,
    path_len: Option<u8>,
    uri_name_constraint: Option<String>,
    not_ca: bool,
    without_key_cert_sign: bool,
    server_auth_only: bool,
}

impl Default for CaSpec {
    /// Valid from the Unix epoch to the start of the year 2200, ECDSA P-256,
    /// no path-length limit, no defects.
    fn default() -> Self {
        CaSpec {
            not_before: UnixTime::since_unix_epoch(Duration::ZERO),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(7_258_118_400)),
            key: KeyAlgorithm::default(),
            path_len: None,
            uri_name_constraint: None,
            not_ca: false,
            without_key_cert_sign: false,
            server_auth_only: false,
        }
    }
}

impl CaSpec {
    /// The [default](CaSpec::default) CA.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the validity window (both bounds inclusive).
    pub fn validity(mut self, not_before: UnixTime, not_after: UnixTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Uses another key algorithm.
    pub fn key(mut self, key: KeyAlgorithm) -> Self {
        self.key = key;
        self
    }

    /// Sets `pathLenConstraint`.
    pub fn path_len(mut self, path_len: u8) -> Self {
        self.path_len = Some(path_len);
        self
    }

    /// Adds a critical name-constraints extension with one permitted URI
    /// subtree (for example the trust domain's host name). rcgen 0.14 has no
    /// URI subtree type, so the extension is encoded here.
    pub fn uri_name_constraint(mut self, permitted: impl Into<String>) -> Self {
        self.uri_name_constraint = Some(permitted.into());
        self
    }

    /// Defect: `cA=false` (the certificate still signs).
    pub fn not_ca(mut self) -> Self {
        self.not_ca = true;
        self
    }

    /// Defect: key usage `digitalSignature` only, without `keyCertSign`.
    pub fn without_key_cert_sign(mut self) -> Self {
        self.without_key_cert_sign = true;
        self
    }

    /// Defect: EKU `serverAuth` only on the CA.
    pub fn server_auth_only(mut self) -> Self {
        self.server_auth_only = true;
        self
    }
}

/// A freshly minted SVID: the chain (leaf first, without the root) and the
/// leaf's PKCS#8 key, in DER and PEM.
pub struct IssuedSvid {
    chain: Vec<CertificateDer<'static>>,
    chain_pem: String,
    key_der: Zeroizing<Vec<u8>>,
    key_pem: Zeroizing<String>,
}

impl fmt::Debug for IssuedSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSvid")
            .field("chain_len", &self.chain.len())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl IssuedSvid {
    /// The certificates, leaf first, then the intermediates up to (not
    /// including) the root.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        self.chain
            .first()
            .unwrap_or_else(|| crate::svid::empty_certificate())
    }

    /// The certificates as PEM, leaf first.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The leaf's private key, PKCS#8 DER.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The leaf's private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Loads this SVID as an [`X509Svid`] (which checks it).
    ///
    /// # Errors
    ///
    /// As [`X509Svid::from_der_list`]: a broken SVID is rejected there too.
    pub fn to_x509_svid(&self) -> Result<X509Svid, X509SvidError> {
        X509Svid::from_der_list(self.chain.clone(), &self.key_der)
    }
}

/// An in-memory certificate authority of one trust domain: a root, or an
/// intermediate made by [`DevCa::intermediate`].
pub struct DevCa {
    trust_domain: TrustDomain,
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    cert_pem: String,
    // This CA's certificate and its ancestors below the root, nearest first;
    // empty for a root.
    chain_above: Vec<(CertificateDer<'static>, String)>,
    root: CertificateDer<'static>,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("trust_domain", &self.trust_domain)
            .field("depth", &self.chain_above.len())
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// A root CA for `trust_domain` with the [default](CaSpec::default) spec.
    ///
    /// # Errors
    ///
    /// [`IssueError`] if key generation or signing fails.
    pub fn new(trust_domain: TrustDomain) -> Result<Self, IssueError> {
        Self::root(trust_domain, &CaSpec::default())
    }

    /// A self-signed root CA for `trust_domain`. Its URI SAN is the trust
    /// domain's ID `spiffe://<td>` (X-08, X-09).
    ///
    /// # Errors
    ///
    /// [`IssueError`] if key generation or signing fails, or a bound is out
    /// of range.
    pub fn root(trust_domain: TrustDomain, spec: &CaSpec) -> Result<Self, IssueError> {
        let key = spec.key.generate()?;
        let params = ca_params(&trust_domain, spec, "root")?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let der = cert.der().clone();
        Ok(DevCa {
            trust_domain,
            issuer: Issuer::new(params, key),
            cert: der.clone(),
            cert_pem: cert.pem(),
            chain_above: Vec::new(),
            root: der,
        })
    }

    /// An intermediate CA signed by this CA. Leaves it issues carry it (and
    /// this CA's intermediates) in their chain.
    ///
    /// # Errors
    ///
    /// [`IssueError`] if key generation or signing fails, or a bound is out
    /// of range.
    pub fn intermediate(&self, spec: &CaSpec) -> Result<DevCa, IssueError> {
        let key = spec.key.generate()?;
        let params = ca_params(&self.trust_domain, spec, "intermediate")?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        let mut chain_above = vec![(cert.der().clone(), cert.pem())];
        chain_above.extend(self.chain_above.iter().cloned());
        Ok(DevCa {
            trust_domain: self.trust_domain.clone(),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            chain_above,
            root: self.root.clone(),
        })
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// This CA's own certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// This CA's own certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate this CA descends from (itself for a root).
    pub fn root_certificate(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// A bundle of the trust domain holding the root.
    pub fn bundle(&self) -> X509Bundle {
        // A certificate rcgen just produced always parses; fall back to an
        // empty bundle rather than panic.
        X509Bundle::from_der_certificates(self.trust_domain.clone(), [self.root.clone()])
            .unwrap_or_else(|_| X509Bundle::empty(self.trust_domain.clone()))
    }

    /// Mints a leaf for `spec`, signed by this CA.
    ///
    /// # Errors
    ///
    /// [`IssueError`] if key generation or signing fails, a name is not IA5
    /// text, or a bound is out of range.
    pub fn issue(&self, spec: &SvidSpec) -> Result<IssuedSvid, IssueError> {
        if spec.defect.is_none() && spec.id.is_trust_domain_id() {
            return Err(IssueError::LeafIdWithoutPath {
                id: spec.id.to_string(),
            });
        }
        let key = spec.key.generate()?;
        let mut params = leaf_template();
        set_validity(&mut params, spec.not_before, spec.not_after)?;
        params.use_authority_key_identifier_extension = true;
        let mut sans = vec![SanType::URI(ia5(spec.id.as_str())?)];
        for dns in &spec.dns_names {
            sans.push(SanType::DnsName(ia5(dns)?));
        }

        match &spec.defect {
            None => {}
            Some(Defect::LeafIsCa) => params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
            Some(Defect::NoBasicConstraints) => params.is_ca = IsCa::NoCa,
            Some(Defect::KeyCertSign) => params.key_usages.push(KeyUsagePurpose::KeyCertSign),
            Some(Defect::CrlSign) => params.key_usages.push(KeyUsagePurpose::CrlSign),
            Some(Defect::NoDigitalSignature) => {
                params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
            }
            Some(Defect::NoKeyUsage) => params.key_usages.clear(),
            Some(Defect::NonCriticalKeyUsage) => {
                params.key_usages.clear();
                // BIT STRING, 7 unused bits, digitalSignature (bit 0).
                let ku = CustomExtension::from_oid_content(&[2, 5, 29, 15], vec![3, 2, 7, 0x80]);
                params.custom_extensions.push(ku);
            }
            Some(Defect::NoUriSan) => {
                sans[0] = SanType::DnsName(ia5(&format!(
                    "{}.workload.test",
                    spec.id.trust_domain_name()
                ))?);
            }
            Some(Defect::ExtraUriSan(uri)) => sans.push(SanType::URI(ia5(uri)?)),
            Some(Defect::UriSan(uri)) => sans[0] = SanType::URI(ia5(uri)?),
            Some(Defect::ServerAuthOnly) => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Some(Defect::NoEku) => params.extended_key_usages.clear(),
            Some(Defect::NonCriticalSanWithEmptySubject) => {
                params.distinguished_name = DistinguishedName::new();
                sans.clear();
                let name = der_tlv(0x86, spec.id.as_str().as_bytes());
                let san = CustomExtension::from_oid_content(&[2, 5, 29, 17], der_tlv(0x30, &name));
                params.custom_extensions.push(san);
            }
        }
        params.subject_alt_names = sans;

        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        let mut chain = vec![cert.der().clone()];
        let mut chain_pem = cert.pem();
        for (der, pem) in &self.chain_above {
            chain.push(der.clone());
            chain_pem.push_str(pem);
        }
        Ok(IssuedSvid {
            chain,
            chain_pem,
            key_der: Zeroizing::new(key.serialize_der()),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

/// What every leaf the CA mints starts from, before its names, validity and
/// defect: subject `O=SPIFFE`, an explicit `cA=false`, key usage
/// `digitalSignature`, extended key usages `serverAuth` and `clientAuth`.
pub(crate) fn leaf_template() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "SPIFFE");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
}

fn ca_params(td: &TrustDomain, spec: &CaSpec, role: &str) -> Result<CertificateParams, IssueError> {
    // Path building matches issuers by subject name: every CA of the
    // process gets its own, so two CAs of one trust domain never collide.
    static NEXT_CA: AtomicU64 = AtomicU64::new(1);
    let serial = NEXT_CA.fetch_add(1, Ordering::Relaxed);
    let mut params = CertificateParams::default();
    set_validity(&mut params, spec.not_before, spec.not_after)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{td} development {role} CA {serial}"),
    );
    params.subject_alt_names = vec![SanType::URI(ia5(td.id_str())?)];
    params.is_ca = if spec.not_ca {
        IsCa::ExplicitNoCa
    } else {
        IsCa::Ca(match spec.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        })
    };
    params.key_usages = if spec.without_key_cert_sign {
        vec![KeyUsagePurpose::DigitalSignature]
    } else {
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
    };
    if spec.server_auth_only {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    }
    params.use_authority_key_identifier_extension = true;
    if let Some(permitted) = &spec.uri_name_constraint {
        // NameConstraints ::= SEQUENCE { permittedSubtrees [0] SEQUENCE OF
        //   GeneralSubtree ::= SEQUENCE { base [6] IA5String } }
        let base = der_tlv(0x86, permitted.as_bytes());
        let subtree = der_tlv(0x30, &base);
        let permitted_subtrees = der_tlv(0xa0, &subtree);
        let mut ext =
            CustomExtension::from_oid_content(&[2, 5, 29, 30], der_tlv(0x30, &permitted_subtrees));
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    }
    Ok(params)
}

/// One DER tag-length-value with a definite length.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn ia5(s: &str) -> Result<Ia5String, IssueError> {
    Ia5String::try_from(s).map_err(|_| IssueError::InvalidName { name: s.to_owned() })
}

/// Year 9999 ends here; later bounds are refused rather than overflow.
const MAX_SECS: u64 = 253_402_300_799;

/// Sets both validity bounds; the time type is rcgen's (the `time` crate's
/// `OffsetDateTime`), reached from the Unix epoch by adding seconds.
fn set_validity(
    params: &mut CertificateParams,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Result<(), IssueError> {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    for secs in [not_before.as_secs(), not_after.as_secs()] {
        if secs > MAX_SECS {
            return Err(IssueError::TimeOutOfRange { secs });
        }
    }
    params.not_before = epoch + Duration::from_secs(not_before.as_secs());
    params.not_after = epoch + Duration::from_secs(not_after.as_secs());
    Ok(())
}
