//! The one error type of this crate.

use spiffe_id::SpiffeIdError;

/// What was wrong with a bundle, a JWKS, a bundle map or a certificate list.
///
/// Positions name the element that failed: `index` is the zero-based
/// position in the document's `keys` array (for JSON input) or in the
/// certificate list (for PEM and DER input); `line` and `column` are
/// 1-based positions in malformed JSON. No variant holds a foreign error
/// type: their messages are kept as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The input is longer than [`ParseOptions::max_bytes`](crate::ParseOptions::max_bytes).
    #[error("input is {len} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More keys (or certificates) than [`ParseOptions::max_keys`](crate::ParseOptions::max_keys).
    #[error("{count} keys or certificates, over the limit of {limit}")]
    TooManyKeys {
        /// How many were found (for PEM and DER input: the limit plus one,
        /// as reading stops there).
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The input is not JSON (including empty input and trailing data).
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line (0 at end of input).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser reported.
        message: String,
    },
    /// One JSON object has the same member name twice (for example two
    /// `keys` members, or one trust domain twice in a bundle map).
    #[error("duplicate JSON member `{name}` at line {line} column {column}")]
    DuplicateMember {
        /// The repeated member name.
        name: String,
        /// 1-based line of the repetition.
        line: usize,
        /// 1-based column of the repetition.
        column: usize,
    },
    /// The document is valid JSON but not a JSON object.
    #[error("the document is {found}, not a JSON object")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The document has no `keys` member (rule B-06).
    #[error("the document has no `keys` member")]
    MissingKeys,
    /// `keys` is `null` or not an array (rule B-06).
    #[error("`keys` is {found}, not an array")]
    KeysNotArray {
        /// The JSON type found.
        found: &'static str,
    },
    /// A top-level member has the wrong type or value: `spiffe_sequence` that
    /// is not an unsigned 64-bit integer, `spiffe_refresh_hint` that is not a
    /// signed 64-bit integer, `trust_domains` that is not an object.
    #[error("`{member}` is invalid: {reason}")]
    InvalidTopLevelMember {
        /// The member name.
        member: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A bundle map has no `trust_domains` member (rule B-13).
    #[error("the bundle map has no `trust_domains` member")]
    MissingTrustDomains,
    /// An element of `keys` is not a JSON object.
    #[error("keys[{index}] is {found}, not a JSON object")]
    EntryNotObject {
        /// Position in `keys`.
        index: usize,
        /// The JSON type found.
        found: &'static str,
    },
    /// A member of a JWK has the wrong JSON type, is missing where it is
    /// required, or is not valid base64 (`x5c` is standard base64 with
    /// padding; key members are base64url without padding).
    #[error("keys[{index}].{member}: {reason}")]
    InvalidMember {
        /// Position in `keys`.
        index: usize,
        /// The member, with a position for arrays (`x5c[0]`).
        member: String,
        /// What was wrong.
        reason: String,
    },
    /// A well-formed key of a type, curve or size this crate does not accept
    /// (EC other than P-256/P-384/P-521 or with coordinates of the wrong
    /// length, RSA under 2048 or over 16384 bits, an even exponent or 1).
    #[error("keys[{index}]: unsupported key: {reason}")]
    UnsupportedKey {
        /// Position in `keys`.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// A JWK carries private key material (`d`).
    #[error("keys[{index}] holds private key material (`d`)")]
    PrivateKeyMaterial {
        /// Position in `keys`.
        index: usize,
    },
    /// The certificate in `x5c[0]` of an `x509-svid` entry does not parse.
    #[error("keys[{index}].x5c[0]: certificate does not parse: {reason}")]
    InvalidX5cCertificate {
        /// Position in `keys`.
        index: usize,
        /// What the X.509 parser reported.
        reason: String,
    },
    /// The key members of an `x509-svid` entry (`n`/`e`, `crv`/`x`/`y`) are
    /// not the public key of its `x5c` certificate.
    #[error("keys[{index}]: the JWK key does not match the key of its x5c certificate")]
    KeyMismatch {
        /// Position in `keys`.
        index: usize,
    },
    /// A JWT key has no `kid` (or an empty one). Always an error for a JWKS;
    /// for a SPIFFE bundle only in [`Mode::Strict`](crate::Mode::Strict)
    /// (rule J-16).
    #[error("keys[{index}] is a JWT authority without a `kid`")]
    MissingKid {
        /// Position in `keys`.
        index: usize,
    },
    /// Two JWT keys have the same `kid`.
    #[error("keys[{index}] repeats the key ID `{kid}`")]
    DuplicateKid {
        /// Position in `keys` of the second one.
        index: usize,
        /// The repeated key ID.
        kid: String,
    },
    /// [`Mode::Strict`](crate::Mode::Strict): an `x509-svid` entry whose `x5c`
    /// does not hold exactly one certificate (rule X-25).
    #[error("keys[{index}]: expected exactly one certificate in x5c, found {count}")]
    X5cCount {
        /// Position in `keys`.
        index: usize,
        /// How many `x5c` values there were.
        count: usize,
    },
    /// [`Mode::Strict`](crate::Mode::Strict): a key whose `kty` is missing or
    /// not one this crate uses for its `use` (rule B-10).
    #[error("keys[{index}]: unsupported key type {}", kty.as_deref().map_or_else(|| "(missing)".to_owned(), |k| format!("`{k}`")))]
    UnknownKty {
        /// Position in `keys`.
        index: usize,
        /// The `kty` value, if there was one.
        kty: Option<String>,
    },
    /// A certificate given as PEM or DER does not parse.
    #[error("certificate {index}: {reason}")]
    InvalidCertificate {
        /// Position in the certificate list.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// PEM text is malformed (unterminated section, bad base64).
    #[error("malformed PEM: {reason}")]
    Pem {
        /// What the PEM reader reported.
        reason: String,
    },
    /// Concatenated DER does not split into whole TLV elements.
    #[error("malformed DER at byte {offset}: {reason}")]
    Der {
        /// Offset of the element that failed.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A bundle-map key is not a bare trust-domain name.
    #[error("`{name}` is not a trust-domain name: {source}")]
    InvalidTrustDomain {
        /// The key as written.
        name: String,
        /// Why it was refused.
        source: SpiffeIdError,
    },
    /// The bundle of one trust domain inside a bundle map is invalid.
    #[error("bundle of `{trust_domain}`: {source}")]
    InBundleMap {
        /// The trust-domain key.
        trust_domain: String,
        /// What was wrong with its bundle.
        source: Box<BundleError>,
    },
    /// Parts of a bundle belong to different trust domains.
    #[error("trust domain mismatch: expected `{expected}`, found `{found}`")]
    TrustDomainMismatch {
        /// The bundle's trust domain.
        expected: String,
        /// The other one.
        found: String,
    },
    /// A key built directly (not from JSON) is unsupported or malformed.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What was wrong.
        reason: String,
    },
}
