//! Spec-exact SPIFFE IDs and trust domains.
//!
//! This crate parses and validates [SPIFFE IDs] and trust domains exactly as
//! the SPIFFE ID specification says, and gives the types every other crate of
//! the workspace builds on:
//!
//! | type | what it is |
//! |---|---|
//! | [`SpiffeIdRef`] | a validated ID borrowed from its input: zero-copy, no allocation, `Copy` |
//! | [`SpiffeId`] | a validated ID that owns its text: one `Arc<str>`, cloned without allocating |
//! | [`TrustDomain`] | a trust-domain name, sharing the allocation of the ID it came from |
//! | [`IstioIdentity`] | a typed view of `spiffe://<td>/ns/<namespace>/sa/<service-account>` |
//! | [`IdMatcher`] | a predicate for authorizing peers: exact, one of, member of, prefix, Istio principals, combinators |
//! | [`SpiffeIdError`] | what was wrong, naming the rule broken |
//!
//! It is `no_std` with `alloc` and has no dependencies; the `serde` feature
//! adds string (de)serialization for [`SpiffeId`], [`TrustDomain`] and
//! [`IstioIdentity`]. [`SpiffeIdError`] implements `core::error::Error`, which
//! is `std::error::Error`, so no `std` feature is needed.
//!
//! ```
//! use spiffe_id::{IstioIdentity, SpiffeId, SpiffeIdRef};
//!
//! // Borrowed: validate a certificate's URI SAN without allocating.
//! let peer = SpiffeIdRef::parse("spiffe://cluster.local/ns/prod/sa/web")?;
//! assert_eq!(peer.trust_domain_name(), "cluster.local");
//!
//! // Owned: keep it; clones share one allocation.
//! let owned: SpiffeId = peer.to_owned();
//! let istio = IstioIdentity::try_from(&owned)?;
//! assert_eq!((istio.namespace(), istio.service_account()), ("prod", "web"));
//!
//! // Errors name the rule.
//! let err = SpiffeId::parse("spiffe://example.org/a//b").unwrap_err();
//! assert_eq!(err.rule(), "ID-13");
//! assert_eq!(err.to_string(), "path cannot contain empty segments (at byte 23)");
//! # Ok::<(), spiffe_id::SpiffeIdError>(())
//! ```
//!
//! # The rules
//!
//! A SPIFFE ID is `spiffe://` followed by a trust domain and an optional path:
//!
//! - the scheme and authority marker are exactly `spiffe://` (ID-01);
//! - the trust domain is non-empty (ID-02), has only `[a-z0-9._-]` (ID-05 to
//!   ID-09: so no userinfo, no port, no percent-encoding, no IPv6 literal) and
//!   at most [`MAX_TRUST_DOMAIN_LEN`] bytes (ID-20). No DNS or IP rules apply
//!   (ID-10, ID-11): `example.org.` differs from `example.org`;
//! - the path is empty (ID-17) or `/`-separated segments of `[a-zA-Z0-9._-]`
//!   (ID-12, ID-16), none empty (ID-13), none `.` or `..` (ID-14), with no
//!   trailing `/` (ID-15); it is case-sensitive;
//! - no query and no fragment (ID-03, ID-04): `?` and `#` are bad bytes;
//! - at most [`MAX_ID_LEN`] bytes in all (ID-18; exactly 2048 is accepted).
//!
//! Nothing is trimmed, decoded or normalized, so the ID prints back
//! byte-identical to the input that parsed, and equality is byte equality.
//!
//! # Case
//!
//! The specification says that the trust domain "MUST be lowercase" (§2.1) and
//! also that the scheme and trust domain are case-insensitive (§2.4). This
//! crate follows the MUST and fails closed: [`SpiffeId::parse`],
//! [`SpiffeIdRef::parse`] and [`TrustDomain::new`] reject any uppercase byte
//! in the scheme or trust domain, as go-spiffe and SPIRE do. An uppercase
//! trust domain therefore never yields an ID at all, let alone one that
//! compares unequal to its lowercase form. Where a peer is known to send
//! another case, [`SpiffeId::parse_normalizing_case`] lowercases the scheme
//! and trust domain first, and its result *equals* the lowercase ID.
//!
//! # Lengths
//!
//! IDs of exactly 2048 bytes are accepted, as the specification requires;
//! longer ones are rejected with [`SpiffeIdError::TooLong`] before any byte is
//! scanned, which bounds the cost of hostile input. Trust-domain names are
//! limited to 255 bytes.
//!
//! [SPIFFE IDs]: https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod error;
mod id;
mod istio;
mod matcher;
mod principal;
#[cfg(feature = "serde")]
mod serde_impls;
mod syntax;
mod trust_domain;

pub use error::SpiffeIdError;
pub use id::{Segments, SpiffeId, SpiffeIdRef};
pub use istio::IstioIdentity;
pub use matcher::IdMatcher;
pub use principal::{IstioPrincipal, TrustDomainAliases};
pub use syntax::{
    MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN, SCHEME_PREFIX, validate_path, validate_path_segment,
};
pub use trust_domain::TrustDomain;
