//! SPIFFE federation: fetching, watching and serving trust bundles over
//! SPIFFE bundle endpoints (`SPIFFE_Federation.md`).
//!
//! Federation lets the workloads of two trust domains authenticate each
//! other without a shared CA: each side publishes its trust bundle at a
//! *bundle endpoint*, and each side polls the other's and keeps the result,
//! one bundle per trust domain, in a [`BundleSet`](spiffe_bundle::BundleSet)
//! that its verifiers read.
//!
//! | type | role |
//! |---|---|
//! | [`EndpointUrl`], [`EndpointProfile`], [`BundleEndpoint`] | what a client is configured with: URL, profile, trust domain (rule F-08) |
//! | [`BundleClient`], [`FetchOptions`] | one fetch: TLS per profile, HTTP checks, size cap, timeouts, redirects, bundle checks |
//! | [`BundleWatcher`], [`WatchOptions`], [`BundleUpdates`], [`WatchStatus`] | keeps a `BundleSet` entry current, driven by the refresh hint |
//! | [`BundleServer`], [`ServerTls`], [`BundleProvider`], [`BundleSetEntry`] | serves a trust domain's bundle, with ETags |
//! | [`FetchError`], [`ConfigError`], [`ServerError`] | what went wrong |
//!
//! See `docs/federation.md` in the repository for a guide, and the
//! `federation_loopback` example for both sides of both profiles on one
//! machine.
//!
//! # Profiles
//!
//! - **`https_web`** ([`EndpointProfile::https_web`]): the server presents
//!   an ordinary Web PKI certificate. rustls checks that it chains to one of
//!   the roots *the caller supplies* (this crate ships none) and that it
//!   names the URL's host (RFC 6125; rule F-16).
//! - **`https_spiffe`** ([`EndpointProfile::https_spiffe`]): the server
//!   presents an X509-SVID. It must verify, with `spiffe-svid`'s verifier,
//!   against the X.509 bundle of the configured endpoint SPIFFE ID's trust
//!   domain, and its ID must be exactly that endpoint ID (rule F-20). That
//!   bundle is looked up at every connection, so once a newer one is stored
//!   it is the one used (rules F-21, F-22).
//!
//! There is no fallback from one profile to the other (rule F-26), and the
//! trust domain is always configured, never taken from the URL (rule F-08).
//!
//! # What a fetch checks
//!
//! In this order; the first failure is the [`FetchError`]:
//!
//! 1. `https_spiffe`: a bundle for the endpoint ID's trust domain exists
//!    ([`FetchError::NoEndpointBundle`]), before anything is sent.
//! 2. TCP and TLS within [`FetchOptions::connect_timeout`]; server
//!    authentication per profile ([`FetchError::Tls`],
//!    [`FetchError::WrongEndpointId`]). Session resumption is off, so every
//!    connection authenticates the server.
//! 3. One `GET` of the URL's path and query, HTTP/1.1. A `301`, `302`,
//!    `303`, `307` or `308` is followed when its target is itself a valid
//!    endpoint URL (`https`, no userinfo), over a new connection with the
//!    same TLS checks (for `https_spiffe`: the same endpoint SPIFFE ID, rule
//!    F-23), up to [`FetchOptions::max_redirects`] times. Every redirect is
//!    treated as temporary: the next fetch starts from the configured URL
//!    again (rules F-15, F-17).
//! 4. The status is 2xx ([`FetchError::Status`]); `Content-Type`, if
//!    present, is JSON with an optional UTF-8 charset
//!    ([`FetchError::ContentType`]; absent is accepted, since the server
//!    only SHOULD set it, rule F-14); no content coding.
//! 5. The body is at most [`FetchOptions::max_body_bytes`] (1 MiB by
//!    default): a larger `Content-Length` is refused before reading, and
//!    reading stops as soon as the limit is passed
//!    ([`FetchError::TooLarge`]).
//! 6. The body parses as a SPIFFE bundle of the configured trust domain
//!    ([`FetchError::MalformedBundle`]; lenient mode by default, see
//!    [`spiffe_bundle`]).
//! 7. The bundle belongs to the configured trust domain, as far as it can
//!    tell ([`FetchError::WrongTrustDomain`], below).
//! 8. Its `spiffe_sequence` is not lower than the current bundle's
//!    ([`FetchError::SequenceWentBackwards`], rule F-04).
//!
//! The whole fetch is bounded by [`FetchOptions::timeout`]
//! ([`FetchError::Timeout`]). Nothing in the response handling panics, and
//! nothing is ever stored by a failed fetch.
//!
//! # Which trust domain a bundle belongs to
//!
//! A SPIFFE bundle document does not name its trust domain: the trust
//! domain is whatever the client was configured with (rule F-08), and the
//! document is parsed as that trust domain's bundle. Two things could still
//! betray a bundle of another trust domain, and this crate checks only the
//! second:
//!
//! - *The `https_spiffe` endpoint ID's trust domain.* It need **not** be the
//!   configured one: an endpoint may serve another trust domain's bundle
//!   (rule F-22), so a difference is not an error.
//! - *The SPIFFE IDs of the X.509 authorities.* A signing certificate
//!   SHOULD carry the SPIFFE ID of its trust domain (rule X-08; SPIRE's and
//!   `spiffe-svid`'s development CAs do). If some authorities carry a SPIFFE
//!   ID and **none** of those is in the configured trust domain, the bundle
//!   is refused with [`FetchError::WrongTrustDomain`]: this catches an
//!   endpoint URL paired with the wrong trust domain. Authorities without a
//!   SPIFFE ID, and JWT authorities, name nothing and pass. A trust domain
//!   whose only CA legitimately carries another trust domain's ID (rule
//!   X-10 allows a CA to issue for other trust domains) needs
//!   [`FetchOptions::check_authority_trust_domain`] set to `false`.
//!
//! # Runtime and crypto
//!
//! Everything runs on Tokio. TLS is rustls with the crypto provider of
//! [`spiffe_svid::default_crypto_provider`] (the process default if one is
//! installed, otherwise aws-lc-rs), TLS 1.2 and 1.3.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod endpoint;
mod error;
mod response;
mod server;
mod watcher;

pub use client::{BundleClient, DEFAULT_MAX_BODY_BYTES, FetchOptions};
pub use endpoint::{BundleEndpoint, EndpointProfile, EndpointUrl, ProfileKind};
pub use error::{ConfigError, FetchError, ServerError};
pub use server::{BundleProvider, BundleServer, BundleSetEntry, ServerOptions, ServerTls};
pub use watcher::{BundleUpdates, BundleWatcher, WatchOptions, WatchStatus};
