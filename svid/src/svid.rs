//! An X509-SVID with its private key, as a workload holds it.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::SigningKey;
use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use spiffe_id::SpiffeId;
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
/// with `keyCertSign`, and that the key belongs to the leaf: the crypto
/// provider loads the key and derives its public key, which must equal the
/// leaf's SubjectPublicKeyInfo. The chain is not verified against a bundle
/// here (the workload trusts what its own Workload API hands it); use
/// [`verify_x509_svid`](crate::verify_x509_svid) for that.
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
    // Shared so that clones do not multiply copies of the key in memory.
    private_key: Arc<Zeroizing<Vec<u8>>>,
    signing_key: Arc<dyn SigningKey>,
    expires_at: UnixTime,
}

impl fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain_len", &self.chain.len())
            .field("key_algorithm", &self.signing_key.algorithm())
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
    /// cannot load the key; [`X509SvidError::KeyMismatch`];
    /// [`X509SvidError::NoCryptoProvider`].
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

        let private_key = Zeroizing::new(pkcs8_key.to_vec());
        // The provider takes its own copy; rustls zeroizes that one.
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key.to_vec()));
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| X509SvidError::InvalidPrivateKey {
                reason: e.to_string(),
            })?;
        match signing_key.public_key() {
            Some(spki) if spki.as_ref() == leaf_cert.tbs_certificate.subject_pki.raw => {}
            _ => return Err(X509SvidError::KeyMismatch),
        }
        let expires_at =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after_secs(&leaf_cert)));
        Ok(X509Svid {
            spiffe_id,
            chain,
            private_key: Arc::new(private_key),
            signing_key,
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
        let mut certs = Vec::new();
        let mut rest = chain;
        while !rest.is_empty() {
            let index = certs.len();
            let (after, _) = x509_parser::parse_x509_certificate(rest).map_err(|e| {
                X509SvidError::MalformedCertificate {
                    index,
                    reason: e.to_string(),
                }
            })?;
            let len = rest.len() - after.len();
            let (der, after) = rest.split_at(len);
            certs.push(CertificateDer::from(der.to_vec()));
            rest = after;
        }
        Self::from_der_list(certs, pkcs8_key)
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
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.private_key.as_slice()))
    }

    /// The key loaded by the crypto provider, ready for rustls (for example
    /// in a `CertifiedKey`).
    pub fn signing_key(&self) -> &Arc<dyn SigningKey> {
        &self.signing_key
    }

    /// The leaf's `notAfter`.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

// Stands in for a leaf that cannot be missing (constructors reject empty
// chains), so that accessors need no panicking index.
pub(crate) fn empty_certificate() -> &'static CertificateDer<'static> {
    static EMPTY: CertificateDer<'static> = CertificateDer::from_slice(&[]);
    &EMPTY
}
