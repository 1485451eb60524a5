//! SPIFFE trust bundles.
//!
//! A trust bundle holds the public keys (authorities) that sign the SVIDs of
//! one trust domain. This crate reads, holds and writes them:
//!
//! | type | what it is |
//! |---|---|
//! | [`X509Bundle`] | the X.509 authorities of one trust domain: CA certificates as DER, each with its [`TrustAnchor`](rustls_pki_types::TrustAnchor) extracted once; from and to PEM and concatenated DER |
//! | [`JwtBundle`] | the JWT authorities of one trust domain, by `kid`: EC P-256/P-384/P-521 and RSA keys with their SubjectPublicKeyInfo DER precomputed; from and to a plain JWKS (the Workload API form) |
//! | [`SpiffeBundle`] | the SPIFFE bundle document: a JWK Set with `x509-svid` and `jwt-svid` keys, `spiffe_sequence` and `spiffe_refresh_hint` |
//! | [`BundleMap`] | `{"trust_domains": {...}}`: one SPIFFE bundle per trust-domain name |
//! | [`BundleSet`] | one bundle per trust domain for federation, shared between threads: lock-free reads of an immutable [`Snapshot`], a [`version`](BundleSet::version) that changes with every change |
//! | [`X509BundleSource`], [`JwtBundleSource`] | what a verifier asks for bundles: implemented by all of the above, by `&T`, `Arc<T>` and `Box<T>` |
//! | [`BundleError`] | every way input can be wrong, naming the `keys` index and the member |
//!
//! Bundles are immutable, cheap to clone (one reference count) and carry a
//! process-unique *generation* number, given when the value is built and
//! shared by its clones, so a cache above can tell "the same bundle object"
//! with one integer comparison.
//!
//! ```
//! use spiffe_bundle::{JwtBundleSource, SpiffeBundle, X509BundleSource};
//! use spiffe_id::TrustDomain;
//!
//! let td = TrustDomain::new("example.org")?;
//! // The key is the P-256 base point, a valid public key.
//! let json = br#"{
//!     "keys": [
//!         {"use": "jwt-svid", "kty": "EC", "kid": "k1", "crv": "P-256",
//!          "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
//!          "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"},
//!         {"use": "wit-svid", "kty": "EC", "kid": "w1"}
//!     ],
//!     "spiffe_sequence": 7,
//!     "spiffe_refresh_hint": 300
//! }"#;
//! let bundle = SpiffeBundle::parse(td.clone(), json)?;
//! assert_eq!(bundle.sequence(), Some(7));
//! assert_eq!(bundle.jwt_bundle().get("k1").map(|k| k.kid()), Some("k1"));
//! // The `wit-svid` entry is ignored, and so dropped on output.
//! assert_eq!(bundle.jwt_bundle().len(), 1);
//! assert!(bundle.x509_bundle_for(&td).is_some_and(|b| b.is_empty()));
//! let again = SpiffeBundle::parse(td.clone(), bundle.to_json().as_bytes())?;
//! assert_eq!(again, bundle);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reading a SPIFFE bundle: lenient (spec) and strict modes
//!
//! [`SpiffeBundle::parse`] follows the consumer rules of the SPIFFE Trust
//! Domain and Bundle specification ([`Mode::Lenient`], the default): an
//! element that the spec says to ignore is skipped and the rest of the
//! bundle is used. [`Mode::Strict`] refuses the whole bundle where go-spiffe
//! and SPIRE refuse it. Both modes refuse malformed data: corrupt JSON, bad
//! base64, a certificate that does not parse, a key of an unsupported curve
//! or size, private key material, and two JWT keys with the same `kid`
//! (the spec leaves that case open; go-spiffe keeps the last silently, and
//! which key verifies a token must not depend on member order).
//!
//! | input | lenient (spec) | strict (go-spiffe) | rule |
//! |---|---|---|---|
//! | `keys` missing, `null` or not an array | error | error | B-06 |
//! | `keys: []` | empty bundle (trusts nothing) | same | B-08, B-09 |
//! | entry with no `use`, or an unknown `use` (`wit-svid`, `sig`, `X509-SVID`) | ignored | ignored | B-11 |
//! | `kty` missing or unknown (`foo`; also `oct`, `OKP` for `jwt-svid`) | ignored | error | B-07, B-10 |
//! | `x509-svid` with `x5c` missing or `[]` | ignored | error | X-26 |
//! | `x509-svid` with several `x5c` | first used, rest not decoded | error | X-27 |
//! | `x509-svid` with a `kid` | accepted, `kid` ignored | same | X-24 |
//! | `x509-svid` whose `n`/`e` or `crv`/`x`/`y` differ from the certificate's key | error | error | edge 9 |
//! | `jwt-svid` without `kid` (or `""`) | ignored | error | J-16 |
//! | two `jwt-svid` with the same `kid` | error | error | edge 12 |
//! | `spiffe_sequence` negative, fractional, a string or over 64 bits | error | error | B-04 |
//! | `spiffe_refresh_hint` not an integer | error | error | B-05 |
//! | `spiffe_refresh_hint` zero or negative | kept as written; [`SpiffeBundle::refresh_hint`] gives `None` | same | B-05, B-18 |
//! | unknown top-level or JWK members | ignored | ignored | B-03, B-12 |
//! | a JSON member twice in one object (two `keys`, two `x5c`, ...) | error | error | edge 22 |
//! | an EC point that is not on its curve | accepted here; refused by the verifier's crypto provider | same (go-spiffe refuses the bundle) | edge 9 |
//! | `kty: EC` with an unsupported `crv` | error | error | B-07 |
//!
//! [`SpiffeBundle::parse_with_report`] also lists the entries that were
//! ignored and why.
//!
//! **Ignored entries are dropped.** A [`SpiffeBundle`] holds only the
//! authorities it can use, so [`SpiffeBundle::to_json`] writes only those: a
//! `wit-svid` entry (or any other unknown one) does not survive a round
//! trip. A server that must republish a foreign bundle byte for byte should
//! keep the original document.
//!
//! # Reading a plain JWKS
//!
//! The Workload API's `FetchJWTBundles` sends each bundle as a plain JWKS,
//! and SPIRE leaves out `use` and the `spiffe_*` members there.
//! [`JwtBundle::parse_jwks`] therefore takes every key whatever its `use`,
//! and requires a `kid` on each (in both modes); a missing or unknown `kty`
//! is skipped in lenient mode and refused in strict mode.
//!
//! # Keys
//!
//! JWT authorities are EC keys on P-256, P-384 or P-521 whose coordinates
//! have exactly 32, 48 or 66 bytes, and RSA keys of 2048 to 16384 bits whose
//! exponent is odd and greater than one. Whether an EC point is on its curve
//! is **not** checked here: the crypto provider checks it when it parses the
//! key to verify a signature, and refuses the signature if it is not. A JWK's
//! `alg` is kept (the JWT-SVID verifier refuses a token whose `alg` differs
//! from a present JWK `alg`). The SubjectPublicKeyInfo DER of each key is
//! built once, when the bundle is parsed.
//!
//! # Output
//!
//! [`SpiffeBundle::to_json`], [`JwtBundle::to_jwks`] and
//! [`BundleMap::to_json`] are deterministic: no whitespace, object members
//! sorted by name at every level, X.509 authorities in bundle order and JWT
//! keys sorted by `kid`. So two equal bundles serialize to the same bytes
//! and can be compared or hashed as text. `x5c` values are standard base64
//! with padding; key members are base64url without padding.
//!
//! # Limits
//!
//! [`ParseOptions`] bounds the input size (default 1 MiB) and the number of
//! keys or certificates (default 1,000). JSON nesting is bounded by
//! `serde_json`'s recursion limit. Nothing in this crate panics on input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bundle_map;
mod der;
mod error;
mod json;
mod jwt;
mod key;
mod set;
mod source;
mod spiffe_bundle;
mod x509;

/// Building blocks shared with the other crates of this workspace
/// (`spiffe-svid`), so that each exists once.
///
/// **Not a public API.** Nothing here is covered by semantic versioning: it
/// may change or go away in any release, patch releases included. Do not use
/// it outside this workspace.
#[doc(hidden)]
pub mod __private {
    /// A strict DER reader: TLV elements in their shortest definite form,
    /// and the two parts of a SubjectPublicKeyInfo.
    pub mod der {
        pub use crate::der::{
            Spki, TAG_BIT_STRING, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE, Tlv, expect,
            optional, read, spki,
        };
    }

    /// A JSON reader that refuses duplicate member names at any depth, into
    /// any tree that implements [`JsonTree`](json::JsonTree) (this crate's
    /// own, or `serde_json::Value`).
    pub mod json {
        pub use crate::json::{JsonError, JsonTree, parse};
    }
}

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub use bundle_map::BundleMap;
pub use error::BundleError;
pub use jwt::{JwtAuthority, JwtBundle};
pub use key::{EcCurve, MAX_RSA_BITS, MIN_RSA_BITS, PublicKey};
pub use set::{BundleSet, InsertOutcome, Snapshot};
pub use source::{JwtBundleSource, X509BundleSource};
pub use spiffe_bundle::{IgnoreReason, IgnoredEntry, SpiffeBundle};
pub use x509::{X509Authority, X509Bundle};

use json::Json;

/// The default [`ParseOptions::max_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;
/// The default [`ParseOptions::max_keys`]: 1,000.
pub const DEFAULT_MAX_KEYS: usize = 1000;

/// How a SPIFFE bundle's questionable entries are treated. See the table in
/// the [crate docs](crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Follow the SPIFFE specification's consumer rules: ignore the entries
    /// it says to ignore and use the rest.
    #[default]
    Lenient,
    /// Refuse the whole document where go-spiffe and SPIRE refuse it.
    Strict,
}

/// Limits and mode for parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Longest input accepted, in bytes.
    pub max_bytes: usize,
    /// Most keys (JSON) or certificates (PEM, DER) accepted.
    pub max_keys: usize,
    /// Lenient (spec) or strict (go-spiffe) handling of SPIFFE bundles.
    pub mode: Mode,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_bytes: DEFAULT_MAX_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            mode: Mode::Lenient,
        }
    }
}

impl ParseOptions {
    /// The defaults in [`Mode::Strict`].
    pub fn strict() -> Self {
        ParseOptions {
            mode: Mode::Strict,
            ..Self::default()
        }
    }

    /// These options with another mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// These options with another size limit.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These options with another key-count limit.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    fn check_len(&self, len: usize) -> Result<(), BundleError> {
        if len > self.max_bytes {
            return Err(BundleError::TooLarge {
                len,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A process-unique, increasing number.
fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

fn parse_document(input: &[u8], options: &ParseOptions) -> Result<Json, BundleError> {
    options.check_len(input.len())?;
    json::parse_document(input)
}

fn keys_array<'a>(doc: &'a Json, options: &ParseOptions) -> Result<&'a [Json], BundleError> {
    let Json::Obj(top) = doc else {
        return Err(BundleError::NotAnObject { found: doc.kind() });
    };
    let keys = match top.get("keys") {
        None => return Err(BundleError::MissingKeys),
        Some(Json::Arr(keys)) => keys,
        Some(other) => {
            return Err(BundleError::KeysNotArray {
                found: other.kind(),
            });
        }
    };
    if keys.len() > options.max_keys {
        return Err(BundleError::TooManyKeys {
            count: keys.len(),
            limit: options.max_keys,
        });
    }
    Ok(keys)
}

fn entry_object(index: usize, entry: &Json) -> Result<&BTreeMap<String, Json>, BundleError> {
    match entry {
        Json::Obj(obj) => Ok(obj),
        other => Err(BundleError::EntryNotObject {
            index,
            found: other.kind(),
        }),
    }
}
