//! The one error type of the X509-SVID code.

use spiffe_id::{SpiffeIdError, TrustDomain};

/// Why an X509-SVID was rejected, or could not be loaded.
///
/// Each variant says what was wrong with the input. Where a rule of the
/// project's spec checklist applies, the variant names it (`X-02`, ...).
/// Errors of rustls-webpki are mapped to the variants below; the ones with no
/// variant of their own become [`X509SvidError::PathValidation`] with the
/// library's description as text, so no foreign error type is part of this
/// API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509SvidError {
    // --- The presented chain and the leaf (SPIFFE profile) ---
    /// The certificate chain is empty.
    #[error("empty certificate chain")]
    EmptyChain,
    /// A certificate of the chain is not DER X.509 that can be parsed.
    #[error("certificate {index} of the chain cannot be parsed: {reason}")]
    MalformedCertificate {
        /// Position in the chain (0 is the leaf).
        index: usize,
        /// What the parser reported.
        reason: String,
    },
    /// The leaf has no URI SAN (rule X-01).
    #[error("leaf certificate contains no URI SAN")]
    NoUriSan,
    /// The leaf has more than one URI SAN, even if only one is a SPIFFE ID
    /// (rule X-02).
    #[error("leaf certificate contains {count} URI SANs; exactly one is allowed")]
    MultipleUriSans {
        /// How many URI SANs the leaf has.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID (rules X-22 and the ID
    /// rules). The scheme must be exactly `spiffe` in lowercase.
    #[error("leaf URI SAN {uri:?} is not a valid SPIFFE ID: {source}")]
    InvalidSpiffeId {
        /// The URI SAN as found in the certificate.
        uri: String,
        /// Why it is not a SPIFFE ID.
        source: SpiffeIdError,
    },
    /// The leaf's SPIFFE ID has no path, i.e. it names a trust domain, not a
    /// workload (rule X-05).
    #[error("leaf SPIFFE ID {id} has no path")]
    LeafIdWithoutPath {
        /// The trust-domain ID found in the leaf.
        id: String,
    },
    /// The subject is empty but the SAN extension is not critical (rule X-06,
    /// RFC 5280 §4.1.2.6).
    #[error("leaf certificate has an empty subject and a non-critical SAN extension")]
    NonCriticalSanWithEmptySubject,
    /// The leaf has `cA=true` (rules ).
    #[error("leaf certificate has the CA flag set")]
    LeafIsCa,
    /// The leaf has no key-usage extension (rule X-15).
    #[error("leaf certificate has no key usage extension")]
    LeafWithoutKeyUsage,
    /// The leaf's key usage lacks `digitalSignature` (rule X-17).
    #[error("leaf certificate must have 'digitalSignature' set as key usage")]
    LeafWithoutDigitalSignature,
    /// The leaf's key usage has `keyCertSign` (rule X-14).
    #[error("leaf certificate has the keyCertSign key usage")]
    LeafWithKeyCertSign,
    /// The leaf's key usage has `cRLSign` (rule X-14).
    #[error("leaf certificate has the cRLSign key usage")]
    LeafWithCrlSign,
    /// The leaf has an extended-key-usage extension that does not list both
    /// `id-kp-serverAuth` and `id-kp-clientAuth` (rule X-18).
    #[error(
        "leaf extended key usage must contain both serverAuth and clientAuth \
         (serverAuth: {server_auth}, clientAuth: {client_auth})"
    )]
    LeafExtendedKeyUsage {
        /// Whether `id-kp-serverAuth` is listed.
        server_auth: bool,
        /// Whether `id-kp-clientAuth` is listed.
        client_auth: bool,
    },

    // --- The bundle ---
    /// The bundle source has no X.509 bundle for the leaf's trust domain. No
    /// other trust domain's bundle is ever tried (rule W-12).
    #[error("no X.509 bundle found for trust domain {trust_domain}")]
    NoBundle {
        /// The leaf's trust domain.
        trust_domain: TrustDomain,
    },
    /// No signature-verification algorithms: no rustls `CryptoProvider` was
    /// installed as the process default and neither the `aws-lc-rs` nor the
    /// `ring` feature is enabled.
    #[error("no rustls CryptoProvider is available")]
    NoCryptoProvider,

    // --- RFC 5280 path validation (rustls-webpki) ---
    /// A certificate of the path had expired at the verification time.
    #[error("certificate expired: verified at {at} s, notAfter is {not_after} s (Unix time)")]
    Expired {
        /// The verification time, in seconds since the Unix epoch.
        at: u64,
        /// The certificate's `notAfter`, in seconds since the Unix epoch.
        not_after: u64,
    },
    /// A certificate of the path was not yet valid at the verification time.
    #[error(
        "certificate not yet valid: verified at {at} s, notBefore is {not_before} s (Unix time)"
    )]
    NotYetValid {
        /// The verification time, in seconds since the Unix epoch.
        at: u64,
        /// The certificate's `notBefore`, in seconds since the Unix epoch.
        not_before: u64,
    },
    /// A certificate's `notBefore` is after its `notAfter`.
    #[error("certificate validity period is invalid (notBefore after notAfter)")]
    InvalidValidityPeriod,
    /// No path leads from the leaf to an authority of the trust domain's
    /// bundle (including an empty bundle).
    #[error("certificate signed by unknown authority")]
    UnknownIssuer,
    /// A signature in the path does not verify with its issuer's key.
    #[error("invalid signature on a certificate of the path")]
    BadSignature,
    /// A signature algorithm or key type of the path is not supported by the
    /// crypto provider, or does not match the issuer's key.
    #[error("unsupported signature algorithm: {reason}")]
    UnsupportedSignatureAlgorithm {
        /// The path validator's description.
        reason: String,
    },
    /// A CA certificate was used as the end entity.
    #[error("a CA certificate was presented as the leaf")]
    CaUsedAsEndEntity,
    /// A certificate that is not a CA (`cA=false` or no basic constraints)
    /// issued another certificate of the path (edge case 25).
    #[error("a certificate that is not a CA was used as an issuer")]
    IssuerNotCa,
    /// An intermediate of the path has a key-usage extension without
    /// `keyCertSign` (RFC 5280 §6.1.4(n), rule X-16). rustls-webpki ignores
    /// key usage; this crate checks it on the path webpki builds.
    #[error("signing certificate must have 'keyCertSign' set as key usage")]
    IssuerWithoutKeyCertSign,
    /// A `pathLenConstraint` of the path is exceeded.
    #[error("path length constraint violated")]
    PathLenConstraintViolated,
    /// A name constraint of the path excludes one of the leaf's names.
    #[error("name constraint violated")]
    NameConstraintViolation,
    /// A CA of the path (or of the bundle) carries URI name constraints,
    /// which rustls-webpki 0.103 does not evaluate: it rejects every URI SAN
    /// under them (fail closed), so no X509-SVID can be verified through such
    /// a CA. See the crate docs.
    #[error(
        "a CA carries URI name constraints, which are not supported (every URI SAN under them is rejected)"
    )]
    UriNameConstraintsUnsupported,
    /// A certificate of the path has a critical extension that the path
    /// validator does not know.
    #[error("unsupported critical extension")]
    UnsupportedCriticalExtension,
    /// A certificate of the path has an extended-key-usage extension that
    /// allows neither both `serverAuth` and `clientAuth` nor
    /// `anyExtendedKeyUsage`, or an empty one.
    #[error("extended key usage of a certificate in the path does not allow an SVID")]
    ExtendedKeyUsageNotAllowed,
    /// Path building gave up: too many signatures, candidate paths, or name
    /// comparisons, or a path that is too deep.
    #[error("path building limit exceeded: {reason}")]
    PathBuildingLimitExceeded {
        /// Which limit.
        reason: String,
    },
    /// Any other path-validation failure (bad DER inside a certificate,
    /// distrusted key, ...), with the path validator's description.
    #[error("could not verify the certificate chain: {reason}")]
    PathValidation {
        /// The path validator's description.
        reason: String,
    },

    // --- Loading an SVID with its key ---
    /// The input holds no certificate.
    #[error("no certificates found")]
    NoCertificates,
    /// The input holds no private key.
    #[error("no private key found")]
    NoPrivateKey,
    /// The input holds more than one private key.
    #[error("more than one private key found")]
    MultiplePrivateKeys,
    /// The private key is not PKCS#8 (for example a SEC1 `EC PRIVATE KEY` or
    /// a PKCS#1 `RSA PRIVATE KEY`).
    #[error("private key is not PKCS#8 ({found})")]
    PrivateKeyNotPkcs8 {
        /// What was found instead.
        found: &'static str,
    },
    /// The crypto provider cannot load the private key (malformed, or an
    /// unsupported algorithm or curve).
    #[error("unsupported or malformed private key: {reason}")]
    InvalidPrivateKey {
        /// The provider's description.
        reason: String,
    },
    /// The private key does not belong to the leaf certificate.
    #[error("leaf certificate does not match private key")]
    KeyMismatch,
    /// A certificate after the leaf does not have `cA=true`.
    #[error("signing certificate {index} must have CA flag set to true")]
    SigningCertNotCa {
        /// Position in the chain.
        index: usize,
    },
    /// A certificate after the leaf lacks the `keyCertSign` key usage.
    #[error("signing certificate {index} must have 'keyCertSign' set as key usage")]
    SigningCertWithoutKeyCertSign {
        /// Position in the chain.
        index: usize,
    },
    /// The PEM text is malformed.
    #[error("malformed PEM: {reason}")]
    Pem {
        /// What is wrong.
        reason: String,
    },
}
