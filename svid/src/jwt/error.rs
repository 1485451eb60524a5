//! The one error type of the JWT-SVID code.

use std::time::SystemTime;

use spiffe_id::{SpiffeIdError, TrustDomain};

/// Why a JWT-SVID was rejected.
///
/// There is one variant per failed check; where a rule of the project's spec
/// checklist applies, the variant names it (`J-03`, ...). No error type of
/// another library is part of this API: JSON and base64 failures carry the
/// library's description as text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidError {
    // --- The caller's input ---
    /// The caller passed no expected audience. The audience check is never
    /// skipped (J-07): an empty list is an error, not "accept anything".
    #[error("no expected audience given; at least one is required")]
    NoExpectedAudience,
    /// An expected audience passed by the caller is the empty string.
    #[error("an expected audience is the empty string")]
    EmptyExpectedAudience,

    // --- Serialization (J-01) ---
    /// The token is longer than the configured maximum.
    #[error("token is {len} bytes long; at most {max} are accepted")]
    TooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The token is a JWS JSON serialization (general or flattened); only
    /// the compact serialization is allowed (J-01).
    #[error("JWS JSON serialization is not allowed; JWT-SVIDs use the compact serialization")]
    JsonSerialization,
    /// The token has five parts: a JWE, which JWT-SVID does not support
    /// (J-01).
    #[error("token is a JWE (5 parts); only JWS compact tokens are JWT-SVIDs")]
    Jwe,
    /// The token is not three dot-separated parts (or is empty).
    #[error("token is not a compact JWS: {reason}")]
    Malformed {
        /// What is wrong with the structure.
        reason: String,
    },
    /// A part is not strict base64url without padding.
    #[error("{part} is not valid base64url (no padding): {reason}")]
    Base64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
        /// What the decoder reported.
        reason: String,
    },

    // --- JOSE header ---
    /// The header is not a JSON object (or has a duplicate member, or a
    /// member of the wrong JSON type).
    #[error("malformed JOSE header: {reason}")]
    MalformedHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// The header has no `alg` (J-03, J-19).
    #[error("JOSE header has no `alg`")]
    MissingAlgorithm,
    /// `alg` is not one of RS256/384/512, ES256/384/512, PS256/384/512
    /// (J-03): `none`, `HS256`, `EdDSA` and anything else is rejected.
    #[error("algorithm {alg:?} is not allowed for JWT-SVIDs")]
    UnsupportedAlgorithm {
        /// The `alg` found (truncated to 64 characters).
        alg: String,
    },
    /// The header has a member other than `alg`, `kid` and `typ` (J-02),
    /// for example `jku`, `jwk`, `x5u`, `x5c`, `crit` or `cty`.
    #[error("JOSE header member {name:?} is not allowed in a JWT-SVID")]
    ForbiddenHeader {
        /// The member name (truncated to 64 characters).
        name: String,
    },
    /// `typ` is present but not exactly `JWT` or `JOSE` (J-05).
    #[error("JOSE header `typ` is {typ:?}; it must be \"JWT\" or \"JOSE\" when present")]
    InvalidType {
        /// The `typ` found (truncated to 64 characters).
        typ: String,
    },
    /// The header has no `kid` (or an empty one) and the options require one
    /// (the default; go-spiffe and SPIRE require it, J-04 makes it
    /// optional).
    #[error("JOSE header has no key ID (`kid`)")]
    MissingKeyId,

    // --- Claims ---
    /// The payload is not a JSON object (or has a duplicate member).
    #[error("malformed claims: {reason}")]
    MalformedClaims {
        /// What is wrong with them.
        reason: String,
    },
    /// `sub` is missing or empty (J-06, J-19).
    #[error("token has no subject (`sub`)")]
    MissingSubject,
    /// `sub` is not a string holding a valid SPIFFE ID (J-06).
    #[error("subject {subject:?} is not a valid SPIFFE ID: {reason}")]
    InvalidSubject {
        /// The subject found (truncated to 256 characters; empty if `sub`
        /// is not a string).
        subject: String,
        /// Why it is not a SPIFFE ID.
        reason: InvalidSubjectReason,
    },
    /// `aud` is missing (J-07).
    #[error("token has no audience (`aud`)")]
    MissingAudience,
    /// `aud` is neither a non-empty string nor an array of non-empty
    /// strings.
    #[error("invalid audience claim: {reason}")]
    InvalidAudience {
        /// What is wrong with it.
        reason: String,
    },
    /// None of the token's audiences is an expected audience (J-08), which
    /// includes an empty `aud` array.
    #[error("expected audience in {expected:?}, token audience is {actual:?}")]
    AudienceMismatch {
        /// The audiences the caller accepts.
        expected: Vec<String>,
        /// The audiences of the token.
        actual: Vec<String>,
    },
    /// `exp` is missing (J-10).
    #[error("token has no expiry (`exp`)")]
    MissingExpiry,
    /// A time claim (`exp`, `nbf` or `iat`) is not a NumericDate: a JSON
    /// number from 0 to 253402300799 (year 9999). Strings are rejected.
    #[error("claim `{claim}` is not a NumericDate")]
    InvalidNumericDate {
        /// `exp`, `nbf` or `iat`.
        claim: &'static str,
    },
    /// The token expired more than the leeway ago (J-11).
    #[error("token has expired")]
    Expired {
        /// The token's `exp`.
        expired_at: SystemTime,
    },
    /// `nbf` is more than the leeway in the future.
    #[error("token is not valid yet (`nbf`)")]
    NotYetValid {
        /// The token's `nbf`.
        not_before: SystemTime,
    },
    /// `iat` is more than the leeway in the future.
    #[error("token was issued in the future (`iat`)")]
    IssuedInTheFuture {
        /// The token's `iat`.
        issued_at: SystemTime,
    },

    // --- Key selection ---
    /// The bundle source has no bundle for the trust domain of `sub`
    /// (J-18).
    #[error("no JWT bundle for trust domain {trust_domain}")]
    NoBundle {
        /// The trust domain of the token's subject.
        trust_domain: TrustDomain,
    },
    /// The trust domain's bundle has no JWT authority at all: the trust
    /// domain does not issue JWT-SVIDs (J-17).
    #[error("trust domain {trust_domain} has no JWT authorities")]
    NoJwtAuthorities {
        /// The trust domain of the token's subject.
        trust_domain: TrustDomain,
    },
    /// No authority of the trust domain's bundle has the token's `kid`
    /// (J-18); keys of other trust domains are never tried.
    #[error("no JWT authority {kid:?} in trust domain {trust_domain}")]
    UnknownKeyId {
        /// The token's `kid` (truncated to 256 characters).
        kid: String,
        /// The trust domain of the token's subject.
        trust_domain: TrustDomain,
    },
    /// The key's type or curve does not fit `alg` (ES256 needs P-256, ES384
    /// P-384, ES512 P-521, RS* and PS* need RSA).
    #[error("{alg} cannot be verified with a {key} key")]
    KeyAlgorithmMismatch {
        /// The header `alg`.
        alg: &'static str,
        /// The key's type (`EC P-384`, `RSA`, ...).
        key: String,
    },
    /// The JWK of the key has an `alg` different from the header's.
    #[error("key is restricted to {key_alg:?}, token uses {alg}")]
    JwkAlgorithmMismatch {
        /// The header `alg`.
        alg: &'static str,
        /// The JWK `alg` of the key (truncated to 64 characters).
        key_alg: String,
    },
    /// With `kid` optional and absent, no key of the bundle fits `alg`.
    #[error("no key of trust domain {trust_domain} can verify {alg}")]
    NoUsableKey {
        /// The header `alg`.
        alg: &'static str,
        /// The trust domain of the token's subject.
        trust_domain: TrustDomain,
    },

    // --- Signature ---
    /// No crypto provider is installed and no built-in one is enabled.
    #[error("no rustls CryptoProvider is available")]
    NoCryptoProvider,
    /// The crypto provider has no verifier for this algorithm (for example
    /// ES512 with the `ring` provider, which lacks P-521).
    #[error("the crypto provider cannot verify {alg} signatures")]
    AlgorithmUnavailable {
        /// The header `alg`.
        alg: &'static str,
    },
    /// An ECDSA signature does not have the exact length of `r || s` for
    /// its curve (64, 96 or 132 bytes).
    #[error("{alg} signature is {actual} bytes long; expected {expected}")]
    SignatureLength {
        /// The header `alg`.
        alg: &'static str,
        /// The length JWA requires.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// The signature does not verify with the selected key (J-12).
    #[error("signature verification failed")]
    BadSignature,
}

/// Why a `sub` claim is not a SPIFFE ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSubjectReason {
    /// `sub` is not a JSON string.
    #[error("`sub` is not a string")]
    NotAString,
    /// The string does not parse as a SPIFFE ID.
    #[error("{0}")]
    SpiffeId(SpiffeIdError),
}

/// Cuts attacker-controlled text kept in an error to `max` characters.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_owned(),
    }
}
