//! An X509-SVID with its private key, as a workload holds it.

use std::fmt;
use std::sync::Arc;

use std::ops::Range;
use std::sync::OnceLock;

use rustls::SignatureAlgorithm;
use rustls::crypto::{CryptoProvider, KeyProvider};
use rustls::sign::SigningKey;
use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use spiffe_id::SpiffeId;
use x509_parser::certificate::X509Certificate;
use zeroize::Zeroizing;

use crate::profile::{check_leaf, check_signing_cert, not_after_secs, parse_cert};
use crate::{X509SvidError, default_crypto_provider};

/// An X509-SVID (leaf first, then its intermediates) and the leaf's PKCS#8
/// private key.
///
/// Building one checks what go-spiffe checks when it loads its own SVID:
/// the leaf profile (one SPIFFE URI SAN with a path, `cA=false`, key usage
/// with `digitalSignature` and without `keyCertSign`/`cRLSign`, EKU with both
/// TLS roles when present), that every certificate after the leaf is a CA
/// with `keyCertSign`, and that the key belongs to the leaf. The chain is not
/// verified against a bundle here (the workload trusts what its own Workload
/// API hands it); use [`verify_x509_svid`](crate::verify_x509_svid) for that.
///
/// # When the crypto provider sees the key
///
/// The key match is checked when the SVID is built, in one of two ways:
///
/// - If the PKCS#8 document carries its public key (an ECDSA P-256 or P-384
///   key whose ECPrivateKey has the optional `publicKey`; an RSA key of
///   2048 to 4096 bits, whose modulus and exponent are always there; an
///   Ed25519 key in the v2 OneAsymmetricKey form with `publicKey`), that
///   public key must equal the leaf's SubjectPublicKeyInfo, and the crypto
///   provider is **not** called yet.
/// - Otherwise the provider loads the key right away and derives its public
///   key, which must equal the leaf's SubjectPublicKeyInfo
///   ([`X509SvidError::InvalidPrivateKey`] if it cannot load the key).
///
/// In the first case the provider loads and validates the key (including
/// that the private key agrees with the public key it carries) the first
/// time [`X509Svid::signing_key`] is called, which the
/// [rustls integration](crate::tls) does on the first handshake that
/// presents this SVID. A key the provider refuses then makes
/// [`X509Svid::signing_key`] fail (every time, with the same error), and the
/// resolver presents nothing rather than a broken key.
///
/// Key algorithms: whatever the provider loads from PKCS#8; with the
/// built-in providers that is ECDSA P-256 and P-384, RSA and Ed25519.
///
/// `Debug` never prints key material, and the PKCS#8 bytes kept here are
/// overwritten with zeros when the value is dropped.
#[derive(Clone)]
pub struct X509Svid {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    // Shared so that clones do not multiply copies of the key in memory, and
    // load the provider's signing key only once between them.
    key: Arc<KeyState>,
    expires_at: UnixTime,
}

/// The private key, and the provider's signing key once loaded.
struct KeyState {
    pkcs8: Zeroizing<Vec<u8>>,
    key_provider: &'static dyn KeyProvider,
    /// Where the leaf's SubjectPublicKeyInfo is in the leaf's DER, for the
    /// check of the key the provider loads.
    leaf_spki: Range<usize>,
    /// The key's algorithm (known before the provider loads the key).
    algorithm: SignatureAlgorithm,
    signing_key: OnceLock<Result<Arc<dyn SigningKey>, X509SvidError>>,
}

impl fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain_len", &self.chain.len())
            .field("key_algorithm", &self.key.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl X509Svid {
    /// Builds an SVID from a list of DER certificates (leaf first) and a
    /// PKCS#8 DER private key, with the crate's
    /// [default crypto provider](crate::default_crypto_provider).
    ///
    /// # Errors
    ///
    /// [`X509SvidError::NoCertificates`] for an empty list;
    /// [`X509SvidError::MalformedCertificate`]; the leaf-profile variants
    /// listed on [`verify_x509_svid`](crate::verify_x509_svid);
    /// [`X509SvidError::SigningCertNotCa`] and
    /// [`X509SvidError::SigningCertWithoutKeyCertSign`] for a certificate
    /// after the leaf; [`X509SvidError::InvalidPrivateKey`] if the provider
    /// cannot load the key, when it loads it here (see
    /// [when the provider sees the key](X509Svid#when-the-crypto-provider-sees-the-key));
    /// [`X509SvidError::KeyMismatch`]; [`X509SvidError::NoCryptoProvider`].
    pub fn from_der_list(
        chain: Vec<CertificateDer<'static>>,
        pkcs8_key: &[u8],
    ) -> Result<Self, X509SvidError> {
        let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
        Self::from_der_list_with_provider(chain, pkcs8_key, &provider)
    }

    /// [`X509Svid::from_der_list`] with the given crypto provider.
    ///
    /// # Errors
    ///
    /// As [`X509Svid::from_der_list`], except
    /// [`X509SvidError::NoCryptoProvider`].
    pub fn from_der_list_with_provider(
        chain: Vec<CertificateDer<'static>>,
        pkcs8_key: &[u8],
        provider: &CryptoProvider,
    ) -> Result<Self, X509SvidError> {
        let leaf = chain.first().ok_or(X509SvidError::NoCertificates)?;
        let leaf_cert = parse_cert(leaf, 0)?;
        let spiffe_id = check_leaf(&leaf_cert)?;
        for (index, der) in chain.iter().enumerate().skip(1) {
            check_signing_cert(&parse_cert(der, index)?, index, true)?;
        }
        let (key, expires_at) = key_for_leaf(leaf, &leaf_cert, pkcs8_key, provider)?;
        Ok(X509Svid {
            spiffe_id,
            chain,
            key,
            expires_at,
        })
    }

    /// Builds an SVID from concatenated DER certificates (leaf first, as the
    /// Workload API's `X509SVID.x509_svid` holds them) and a PKCS#8 DER key
    /// (`X509SVID.x509_svid_key`).
    ///
    /// # Errors
    ///
    /// [`X509SvidError::MalformedCertificate`] if the bytes do not split into
    /// certificates; otherwise as [`X509Svid::from_der_list`].
    pub fn from_der(chain: &[u8], pkcs8_key: &[u8]) -> Result<Self, X509SvidError> {
        // Split by the certificates' outer SEQUENCE headers, then parse each
        // certificate once; the order of the checks (every certificate
        // parsed, then the leaf profile, then the signing certificates) and
        // their errors are those of splitting with x509-parser and calling
        // `from_der_list`.
        let mut parts = Vec::new();
        let mut rest = chain;
        while !rest.is_empty() {
            let index = parts.len();
            let len = match crate::der::sequence_len(rest) {
                Some(len) => len,
                // Not strict DER at the top: let x509-parser split (and
                // report) as before.
                None => {
                    let (after, _) = x509_parser::parse_x509_certificate(rest).map_err(|e| {
                        X509SvidError::MalformedCertificate {
                            index,
                            reason: e.to_string(),
                        }
                    })?;
                    rest.len().saturating_sub(after.len())
                }
            };
            let (der, after) = rest.split_at_checked(len).unwrap_or((rest, &[]));
            parts.push(der);
            rest = after;
        }
        // Every certificate is parsed before any is judged; the first
        // signing-certificate failure is kept for after the leaf's checks.
        let leaf = parts.first().copied().unwrap_or_default();
        let leaf_cert = match parts.first() {
            Some(der) => Some(parse_cert(der, 0)?),
            None => None,
        };
        let mut signing_failure = None;
        for (index, der) in parts.iter().enumerate().skip(1) {
            let cert = parse_cert(der, index)?;
            if signing_failure.is_none() {
                signing_failure = check_signing_cert(&cert, index, true).err();
            }
        }
        let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
        let Some(leaf_cert) = leaf_cert else {
            return Err(X509SvidError::NoCertificates);
        };
        let spiffe_id = check_leaf(&leaf_cert)?;
        if let Some(failure) = signing_failure {
            return Err(failure);
        }
        let (key, expires_at) = key_for_leaf(leaf, &leaf_cert, pkcs8_key, &provider)?;
        Ok(X509Svid {
            spiffe_id,
            chain: parts
                .iter()
                .map(|der| CertificateDer::from(der.to_vec()))
                .collect(),
            key,
            expires_at,
        })
    }

    /// Builds an SVID from PEM text holding the certificates (leaf first) and
    /// the key in any order: one text with both, or the two texts of a
    /// certificate file and a key file (pass `""` as `key_pem` when
    /// `cert_pem` holds both). Sections other than certificates and keys are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`X509SvidError::Pem`] for malformed PEM;
    /// [`X509SvidError::NoCertificates`], [`X509SvidError::NoPrivateKey`],
    /// [`X509SvidError::MultiplePrivateKeys`];
    /// [`X509SvidError::PrivateKeyNotPkcs8`] for a SEC1 or PKCS#1 key;
    /// otherwise as [`X509Svid::from_der_list`].
    ///
    /// # Example
    ///
    /// ```
    /// use spiffe_svid::{X509Svid, X509SvidError};
    ///
    /// let err = X509Svid::from_pem(b"no PEM here", b"").unwrap_err();
    /// assert_eq!(err, X509SvidError::NoCertificates);
    /// ```
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, X509SvidError> {
        let mut certs = Vec::new();
        let mut key: Option<Zeroizing<Vec<u8>>> = None;
        for text in [cert_pem, key_pem] {
            let mut reader = text;
            loop {
                let section = rustls_pki_types::pem::from_buf(&mut reader).map_err(|e| {
                    X509SvidError::Pem {
                        reason: e.to_string(),
                    }
                })?;
                let Some((kind, der)) = section else { break };
                let der = Zeroizing::new(der);
                match kind {
                    SectionKind::Certificate => certs.push(CertificateDer::from(der.to_vec())),
                    SectionKind::PrivateKey if key.is_some() => {
                        return Err(X509SvidError::MultiplePrivateKeys);
                    }
                    SectionKind::PrivateKey => key = Some(der),
                    SectionKind::EcPrivateKey => {
                        return Err(X509SvidError::PrivateKeyNotPkcs8 {
                            found: "SEC1 EC key",
                        });
                    }
                    SectionKind::RsaPrivateKey => {
                        return Err(X509SvidError::PrivateKeyNotPkcs8 {
                            found: "PKCS#1 RSA key",
                        });
                    }
                    _ => {}
                }
            }
        }
        if certs.is_empty() {
            return Err(X509SvidError::NoCertificates);
        }
        let key = key.ok_or(X509SvidError::NoPrivateKey)?;
        Self::from_der_list(certs, &key)
    }

    /// The leaf's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The certificates, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // The constructor rejects an empty chain, so index 0 exists; the
        // slice pattern avoids a panicking index all the same.
        match self.chain.as_slice() {
            [leaf, ..] => leaf,
            [] => empty_certificate(),
        }
    }

    /// The leaf's private key, PKCS#8 DER, borrowed from this SVID.
    pub fn private_key(&self) -> PrivateKeyDer<'_> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.pkcs8.as_slice()))
    }

    /// The key loaded by the crypto provider, ready for rustls (for example
    /// in a `CertifiedKey`). The provider loads it on the first call, unless
    /// it already did when the SVID was built (see
    /// [when the provider sees the key](X509Svid#when-the-crypto-provider-sees-the-key));
    /// the result, key or error, is kept and shared with clones.
    ///
    /// # Errors
    ///
    /// [`X509SvidError::InvalidPrivateKey`] if the provider cannot load the
    /// key; [`X509SvidError::KeyMismatch`] if the public key it derives is
    /// not the leaf's.
    pub fn signing_key(&self) -> Result<Arc<dyn SigningKey>, X509SvidError> {
        let state = &*self.key;
        state
            .signing_key
            .get_or_init(|| {
                let leaf = self.leaf().get(state.leaf_spki.clone()).unwrap_or_default();
                load_signing_key(state.key_provider, &state.pkcs8, leaf)
            })
            .clone()
    }

    /// The leaf's `notAfter`.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

/// The provider loads `pkcs8`; the public key it derives must be the leaf's
/// SubjectPublicKeyInfo `leaf_spki`.
fn load_signing_key(
    key_provider: &dyn KeyProvider,
    pkcs8: &[u8],
    leaf_spki: &[u8],
) -> Result<Arc<dyn SigningKey>, X509SvidError> {
    // The provider takes its own copy; rustls zeroizes that one.
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
    let signing_key =
        key_provider
            .load_private_key(key_der)
            .map_err(|e| X509SvidError::InvalidPrivateKey {
                reason: e.to_string(),
            })?;
    match signing_key.public_key() {
        Some(spki) if spki.as_ref() == leaf_spki => Ok(signing_key),
        _ => Err(X509SvidError::KeyMismatch),
    }
}

/// Checks that `pkcs8_key` belongs to the leaf (see the [`X509Svid`] docs
/// for how) and returns the key state and the leaf's `notAfter`.
fn key_for_leaf(
    leaf: &[u8],
    leaf_cert: &X509Certificate<'_>,
    pkcs8_key: &[u8],
    provider: &CryptoProvider,
) -> Result<(Arc<KeyState>, UnixTime), X509SvidError> {
    let spki_raw = leaf_cert.tbs_certificate.subject_pki.raw;
    // Where the SPKI sits in the leaf (x509-parser borrows it from there).
    let offset = (spki_raw.as_ptr() as usize).wrapping_sub(leaf.as_ptr() as usize);
    let leaf_spki = offset..offset.saturating_add(spki_raw.len());
    if leaf.get(leaf_spki.clone()) != Some(spki_raw) {
        return Err(X509SvidError::KeyMismatch);
    }

    let signing_key = OnceLock::new();
    let carried = crate::der::pkcs8_public_key(pkcs8_key);
    let matches = carried.is_some_and(|public| {
        spiffe_bundle::__private::der::spki(spki_raw)
            .is_some_and(|spki| crate::der::same_public_key(&public, &spki))
    });
    let algorithm = match carried {
        Some(public) if matches => match public.kind {
            crate::der::KeyKind::Ecdsa => SignatureAlgorithm::ECDSA,
            crate::der::KeyKind::Ed25519 => SignatureAlgorithm::ED25519,
            crate::der::KeyKind::Rsa => SignatureAlgorithm::RSA,
        },
        // No public key carried, or a different one: the provider decides
        // now, with the errors it always gave (it cannot load the key, or
        // the key it derives is not the leaf's).
        _ => {
            let key = load_signing_key(provider.key_provider, pkcs8_key, spki_raw)?;
            let algorithm = key.algorithm();
            let _ = signing_key.set(Ok(key));
            algorithm
        }
    };
    let expires_at =
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after_secs(leaf_cert)));
    Ok((
        Arc::new(KeyState {
            pkcs8: Zeroizing::new(pkcs8_key.to_vec()),
            key_provider: provider.key_provider,
            leaf_spki,
            algorithm,
            signing_key,
        }),
        expires_at,
    ))
}

// Stands in for a leaf that cannot be missing (constructors reject empty
// chains), so that accessors need no panicking index.
pub(crate) fn empty_certificate() -> &'static CertificateDer<'static> {
    static EMPTY: CertificateDer<'static> = CertificateDer::from_slice(&[]);
    &EMPTY
}
