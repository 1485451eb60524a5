//! SPIFFE X509-SVIDs: verification of a peer's chain against the trust
//! bundle of its trust domain, loading a workload's own SVID with its key,
//! and (feature `issuer`) a development CA.
//!
//! # Verification model
//!
//! [`verify_x509_svid`] splits the work in two layers:
//!
//! 1. **The SPIFFE profile, checked by this crate** on the leaf (`chain[0]`),
//!    before anything else: exactly one URI SAN, parsed
//!    strictly as a SPIFFE ID with scheme `spiffe` and a non-root path
//!    a critical SAN when the subject is empty; no `cA=true`
//!    a key-usage extension with `digitalSignature` and
//!    without `keyCertSign` or `cRLSign`; and, if an EKU extension is
//!    present, both `serverAuth` and `clientAuth` in it. Then the
//!    bundle is looked up for the leaf's trust domain, and no other (W-12).
//! 2. **RFC 5280 path validation by rustls-webpki 0.103** (X-21), with the
//!    bundle's precomputed trust anchors, `chain[1..]` as candidate
//!    intermediates, the caller's time, and the signature algorithms of the
//!    rustls `CryptoProvider`. webpki checks signatures, validity periods,
//!    basic constraints and `pathLenConstraint`, name constraints, unknown
//!    critical extensions, and EKU through our policy (below). DNS names are
//!    not checked: SPIFFE authenticates by ID. On each candidate path this
//!    crate also requires `keyCertSign` on intermediates that carry a
//!    key-usage extension (RFC 5280 §6.1.4(n)), which webpki ignores.
//!
//! ## Decisions
//!
//! - **EKU.** The leaf needs no EKU (X-18 is a SHOULD) but, if it has one, it
//!   must list both TLS roles explicitly. Every other certificate of the path
//!   webpki checks (intermediates) may have no EKU, or one that allows both
//!   roles or `anyExtendedKeyUsage`: an SVID serves as client and server, so
//!   a CA restricted to one role cannot vouch for it.
//! - **Key usage.** Mandatory on the leaf (`digitalSignature`); a missing
//!   key-usage extension is rejected (edge case 16). A key usage that is not
//!   marked critical is accepted (edge case 17): the rule binds issuers, and
//!   go-spiffe accepts it too.
//! - **Missing basicConstraints** on the leaf is accepted (not a CA).
//! - **URI name constraints.** rustls-webpki 0.103 does not evaluate URI name
//!   constraints: every URI SAN under a CA whose name constraints have a URI
//!   subtree (permitted or excluded) is rejected. This crate keeps that fail
//!   closed behaviour and reports it as
//!   [`X509SvidError::UriNameConstraintsUnsupported`], so a trust domain
//!   whose CAs use URI name constraints (allowed by X-20) cannot be verified
//!   by this version. The variant is chosen when webpki reports a name
//!   constraint violation and a presented intermediate or a bundle authority
//!   carries a URI subtree.
//! - **Uppercase scheme** (`SPIFFE://`) is rejected: the ID is parsed
//!   strictly (checklist §2.0).
//! - **Trust anchors** are reduced to name, key and name constraints by
//!   webpki: a root's own validity and extensions are not checked.
//!
//! # JWT-SVIDs
//!
//! [`JwtSvid::parse_and_validate`] takes a compact JWS, any
//! `JwtBundleSource`, the audiences this validator answers to and the time.
//! It checks, in order: the size cap; compact serialization (J-01); `alg`
//! against RS/ES/PS 256/384/512 before anything else (J-03: `none`, `HS*`
//! and `EdDSA` are refused); the header has only `alg`, `kid` and `typ`
//! (J-02), `typ` absent or exactly `JWT`/`JOSE` (J-05); `sub` is a SPIFFE ID
//! and picks the bundle of its trust domain, and only that one (J-06, J-18);
//! the key by `kid` (required by default, as go-spiffe and SPIRE do; J-04
//! makes it optional, and [`JwtValidationOptions`] can relax it), whose type
//! and curve must fit `alg`, and whose JWK `alg`, if any, must equal it; the
//! signature; then `aud` (required, J-07; one of the expected audiences,
//! J-08; an empty expected list is an error, never a pass), `exp`
//! (required, J-10, J-11) and `nbf`/`iat`, with a 60-second leeway by
//! default. [`JwtSvid::parse_insecure`] skips only the signature, for tokens
//! received from a trusted agent.
//!
//! # Authorization, caching and mTLS
//!
//! - [`authorize`]: an [`Authorizer`] decides whether a verified peer is
//!   allowed; [`IdMatcher`] and closures are authorizers.
//! - [`cache`]: [`VerificationCache`](cache::VerificationCache) reuses
//!   successful verdicts for the same chain and bundle, bounded in size.
//! - `tls` (feature `rustls`): rustls certificate verifiers and SVID
//!   resolvers for SPIFFE mTLS, with session resumption off.
//!
//! # Crypto
//!
//! All signature checks and key loading go through a rustls
//! [`CryptoProvider`](rustls::crypto::CryptoProvider): the process default
//! if one is installed, otherwise the built-in one of feature `aws-lc-rs`
//! (default) or `ring` ([`default_crypto_provider`]). The `*_with_provider`
//! functions take one explicitly.
//!
//! # Time
//!
//! Every check takes the instant to check against, so tests are
//! deterministic.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authorize;
pub mod cache;
mod der;
mod error;
#[cfg(feature = "issuer")]
pub mod issuer;
mod jwt;
mod profile;
mod provider;
mod svid;
#[cfg(feature = "rustls")]
#[path = "rustls.rs"]
pub mod tls;
mod verify;

pub use authorize::{AuthorizationError, Authorizer, IdMatcher};
pub use error::X509SvidError;
#[doc(hidden)]
pub use jwt::__verify_jws_signature;
pub use jwt::{
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, InvalidSubjectReason, JwsAlgorithm, JwtSvid,
    JwtSvidError, JwtValidationOptions,
};
pub use provider::default_crypto_provider;
pub use svid::X509Svid;
pub use verify::{VerifiedX509Svid, verify_x509_svid, verify_x509_svid_with_provider};
