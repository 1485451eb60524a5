//! X.509 authorities of one trust domain.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, Der, TrustAnchor};
use spiffe_id::TrustDomain;
use x509_parser::oid_registry::OID_X509_EXT_NAME_CONSTRAINTS;

use crate::key::PublicKey;
use crate::{BundleError, ParseOptions, der, next_generation};

/// One X.509 authority: a CA certificate kept as DER, with the parts a path
/// validator needs extracted once when it is built.
#[derive(Clone)]
pub struct X509Authority {
    der: CertificateDer<'static>,
    anchor: TrustAnchor<'static>,
    public_key: PublicKey,
}

impl fmt::Debug for X509Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Authority")
            .field("der_len", &self.der.len())
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl PartialEq for X509Authority {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for X509Authority {}

impl X509Authority {
    /// Parses one DER certificate (with nothing after it) and extracts its
    /// trust anchor.
    ///
    /// The certificate is not required to be a CA: bundles that list a
    /// non-CA certificate break a publisher rule, not a consumer one, and
    /// path validation will not use such a certificate to sign anything.
    ///
    /// # Errors
    ///
    /// [`BundleError::InvalidCertificate`] (index 0) if the bytes are not one
    /// X.509 certificate.
    pub fn from_der(der: impl Into<CertificateDer<'static>>) -> Result<Self, BundleError> {
        Self::from_der_reason(der.into())
            .map_err(|reason| BundleError::InvalidCertificate { index: 0, reason })
    }

    pub(crate) fn from_der_reason(der: CertificateDer<'static>) -> Result<Self, String> {
        let (rest, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the certificate", rest.len()));
        }
        let tbs = &cert.tbs_certificate;
        let subject =
            der::contents(tbs.subject.as_raw()).ok_or_else(|| "malformed subject".to_owned())?;
        let spki_raw = tbs.subject_pki.raw;
        let spki =
            der::contents(spki_raw).ok_or_else(|| "malformed subjectPublicKeyInfo".to_owned())?;
        // webpki keeps the NameConstraints contents without the outer tag.
        let name_constraints = match tbs
            .extensions()
            .iter()
            .find(|e| e.oid == OID_X509_EXT_NAME_CONSTRAINTS)
        {
            None => None,
            Some(e) => Some(Der::from(
                der::contents(e.value)
                    .ok_or_else(|| "malformed name constraints".to_owned())?
                    .to_vec(),
            )),
        };
        let anchor = TrustAnchor {
            subject: Der::from(subject.to_vec()),
            subject_public_key_info: Der::from(spki.to_vec()),
            name_constraints,
        };
        // A key that neither a JWK nor the verifier could use would be
        // published without `kty` (breaking rule B-10) and could never
        // verify a signature: refuse it here, once.
        let public_key = PublicKey::from_spki_der(spki_raw).ok_or_else(|| {
            "unsupported public key: a CA key must be EC P-256, P-384 or P-521 (uncompressed \
             point), RSA of 2048 to 16384 bits with an odd exponent above 1, or Ed25519"
                .to_owned()
        })?;
        Ok(X509Authority {
            der,
            anchor,
            public_key,
        })
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The trust anchor (subject, SubjectPublicKeyInfo and name constraints),
    /// in the form rustls-webpki takes: each is the contents of its DER
    /// SEQUENCE, without the outer tag and length (checked in the tests
    /// against `webpki::anchor_from_trusted_cert`).
    pub fn trust_anchor(&self) -> &TrustAnchor<'static> {
        &self.anchor
    }

    /// The certificate's public key (RSA, EC on P-256/P-384/P-521, or
    /// Ed25519: certificates with other keys are refused).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

struct Inner {
    trust_domain: TrustDomain,
    authorities: Vec<X509Authority>,
    anchors: Vec<TrustAnchor<'static>>,
    generation: u64,
}

/// The X.509 authorities (CA certificates) of one trust domain.
///
/// Immutable and cheap to clone (one reference count). Each value built gets
/// a process-unique [`generation`](X509Bundle::generation); clones share it.
/// Authorities keep the order they were given in, without repeats (the same
/// DER twice is kept once). An empty bundle is valid and trusts nothing
/// (rule B-09).
#[derive(Clone)]
pub struct X509Bundle(Arc<Inner>);

impl fmt::Debug for X509Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Bundle")
            .field("trust_domain", &self.0.trust_domain)
            .field("authorities", &self.0.authorities.len())
            .field("generation", &self.0.generation)
            .finish()
    }
}

/// Equal when the trust domain and the authorities (in order) are equal; the
/// generation is not compared.
impl PartialEq for X509Bundle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.trust_domain == other.0.trust_domain
                && self.0.authorities == other.0.authorities)
    }
}

impl Eq for X509Bundle {}

impl X509Bundle {
    /// A bundle of already-parsed authorities (repeats removed).
    pub fn from_authorities(
        trust_domain: TrustDomain,
        authorities: impl IntoIterator<Item = X509Authority>,
    ) -> Self {
        let mut seen = HashSet::new();
        let authorities: Vec<X509Authority> = authorities
            .into_iter()
            .filter(|a| seen.insert(a.der.to_vec()))
            .collect();
        let anchors = authorities.iter().map(|a| a.anchor.clone()).collect();
        X509Bundle(Arc::new(Inner {
            trust_domain,
            authorities,
            anchors,
            generation: next_generation(),
        }))
    }

    /// An empty bundle.
    pub fn empty(trust_domain: TrustDomain) -> Self {
        Self::from_authorities(trust_domain, [])
    }

    /// A bundle of DER certificates, one per item.
    ///
    /// # Errors
    ///
    /// [`BundleError::InvalidCertificate`] naming the first certificate that
    /// does not parse, by position.
    pub fn from_der_certificates<C>(
        trust_domain: TrustDomain,
        certificates: impl IntoIterator<Item = C>,
    ) -> Result<Self, BundleError>
    where
        C: Into<CertificateDer<'static>>,
    {
        let authorities = certificates
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                X509Authority::from_der_reason(c.into())
                    .map_err(|reason| BundleError::InvalidCertificate { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_authorities(trust_domain, authorities))
    }

    /// Parses concatenated DER certificates (what the Workload API's
    /// `X509SVIDResponse.bundle` and `federated_bundles` hold), with the
    /// default [`ParseOptions`]. Empty input gives an empty bundle.
    ///
    /// # Errors
    ///
    /// See [`X509Bundle::parse_der_with`].
    pub fn parse_der(trust_domain: TrustDomain, der: &[u8]) -> Result<Self, BundleError> {
        Self::parse_der_with(trust_domain, der, &ParseOptions::default())
    }

    /// Parses concatenated DER certificates. The input is split by walking
    /// the DER headers (tag and length) of each top-level element; each piece
    /// is then parsed once as a certificate.
    ///
    /// # Errors
    ///
    /// - [`BundleError::TooLarge`] over `options.max_bytes`;
    /// - [`BundleError::Der`] if the input does not split into whole
    ///   SEQUENCEs (with the offset of the bad element);
    /// - [`BundleError::TooManyKeys`] with more than `options.max_keys`
    ///   certificates;
    /// - [`BundleError::InvalidCertificate`] for a piece that is not a
    ///   certificate.
    pub fn parse_der_with(
        trust_domain: TrustDomain,
        der: &[u8],
        options: &ParseOptions,
    ) -> Result<Self, BundleError> {
        options.check_len(der.len())?;
        let mut pieces = Vec::new();
        let mut offset = 0;
        while offset < der.len() {
            let rest = der.get(offset..).unwrap_or_default();
            let (tlv, _) = der::read(rest).map_err(|reason| BundleError::Der { offset, reason })?;
            if tlv.tag != der::TAG_SEQUENCE {
                return Err(BundleError::Der {
                    offset,
                    reason: "element is not a SEQUENCE",
                });
            }
            if pieces.len() == options.max_keys {
                return Err(BundleError::TooManyKeys {
                    count: pieces.len() + 1,
                    limit: options.max_keys,
                });
            }
            pieces.push(CertificateDer::from(tlv.raw.to_vec()));
            offset += tlv.raw.len();
        }
        Self::from_der_certificates(trust_domain, pieces)
    }

    /// Parses PEM text with the default [`ParseOptions`]. Only `CERTIFICATE`
    /// sections are read; other sections and text between sections are
    /// skipped. Empty or blank input gives an empty bundle; other text
    /// without any certificate is an error.
    ///
    /// # Errors
    ///
    /// See [`X509Bundle::parse_pem_with`].
    pub fn parse_pem(trust_domain: TrustDomain, pem: &[u8]) -> Result<Self, BundleError> {
        Self::parse_pem_with(trust_domain, pem, &ParseOptions::default())
    }

    /// Parses PEM text.
    ///
    /// # Errors
    ///
    /// - [`BundleError::TooLarge`] over `options.max_bytes`;
    /// - [`BundleError::Pem`] for a malformed section (no END line, bad
    ///   base64), or for non-blank text with no `CERTIFICATE` section;
    /// - [`BundleError::TooManyKeys`] with more than `options.max_keys`
    ///   certificates;
    /// - [`BundleError::InvalidCertificate`] for a section that is not a
    ///   certificate, by position among the certificate sections.
    pub fn parse_pem_with(
        trust_domain: TrustDomain,
        pem: &[u8],
        options: &ParseOptions,
    ) -> Result<Self, BundleError> {
        options.check_len(pem.len())?;
        let mut certs = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let cert = item.map_err(|e| BundleError::Pem {
                reason: e.to_string(),
            })?;
            if certs.len() == options.max_keys {
                return Err(BundleError::TooManyKeys {
                    count: certs.len() + 1,
                    limit: options.max_keys,
                });
            }
            certs.push(cert);
        }
        // Text that holds no certificate at all (a key file, a CSR, a typo'd
        // path's contents) is a mistake worth reporting, not an empty trust
        // store; only empty or blank input means "no authorities".
        if certs.is_empty() && !pem.iter().all(u8::is_ascii_whitespace) {
            return Err(BundleError::Pem {
                reason: "no CERTIFICATE section found".to_owned(),
            });
        }
        Self::from_der_certificates(trust_domain, certs)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.0.trust_domain
    }

    /// The authorities, in order.
    pub fn authorities(&self) -> &[X509Authority] {
        &self.0.authorities
    }

    /// The trust anchors of the authorities, in the same order, ready to pass
    /// to rustls-webpki without parsing anything again.
    pub fn trust_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.0.anchors
    }

    /// Number of authorities.
    pub fn len(&self) -> usize {
        self.0.authorities.len()
    }

    /// Whether the bundle has no authority (then it trusts nothing).
    pub fn is_empty(&self) -> bool {
        self.0.authorities.is_empty()
    }

    /// Whether `der` is one of the authorities.
    pub fn contains(&self, der: &[u8]) -> bool {
        self.0.authorities.iter().any(|a| a.der.as_ref() == der)
    }

    /// The process-unique number given to this value when it was built.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The certificates as concatenated DER.
    pub fn to_der(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.0.authorities {
            out.extend_from_slice(&a.der);
        }
        out
    }

    /// The certificates as PEM `CERTIFICATE` sections (64-character lines,
    /// `\n` line ends).
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        for a in &self.0.authorities {
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = STANDARD.encode(a.der.as_ref());
            for chunk in b64.as_bytes().chunks(64) {
                out.push_str(&String::from_utf8_lossy(chunk));
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out
    }
}
