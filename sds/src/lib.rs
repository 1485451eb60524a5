//! Envoy's Secret Discovery Service (SDS v3) for SPIFFE: a server that hands
//! Envoy its X509-SVIDs and trust bundles from the same
//! [`IdentityProvider`](spiffe_workload_api::server::IdentityProvider) as the
//! Workload API, and a client that behaves like Envoy.
//!
//! # The model
//!
//! | piece | what it does |
//! |---|---|
//! | [`SecretNames`], [`ResourceRef`] | which resource names mean what: `default` (the first SVID), `ROOTCA` (own trust domain), `ALL` (every trust domain), `spiffe://<td>` (one trust domain), an SVID's SPIFFE ID (that SVID); SPIRE's defaults or Istio's federation setting |
//! | [`WorkloadSecrets`] | what one workload may receive: its SVIDs in order and the bundles it trusts |
//! | [`tls_certificate_secret`], [`validation_context_secret`], [`validation_form`] | `Secret` messages: PEM chain and PKCS#8 key; Envoy's SPIFFE validator (one entry per trust domain, sorted, empty and repeated trust domains dropped) or plain `trusted_ca` |
//! | [`SecretStream`] | the `StreamSecrets` state machine (state of the world): ACK, NACK, stale nonces, subscription changes, wildcard, pushes — pure, no I/O |
//! | [`DeltaSecretStream`] | the `DeltaSecrets` state machine (incremental xDS), which SPIRE and Istio leave unimplemented |
//! | [`fetch_secrets`] | the unary `FetchSecrets` |
//! | [`server`] (feature `server`) | the tonic service, limits, and serving SDS alone or on the Workload API's socket |
//! | [`client`] (feature `client`) | an SDS client: subscribe, ACK/NACK, reconnect, watch the current secrets |
//!
//! The state machines are plain values: the server drives one per stream
//! with the client's requests and the provider's updates, and tests and the
//! fuzzer drive them directly.
//!
//! ```
//! use std::sync::Arc;
//! use spiffe_id::TrustDomain;
//! use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
//! use spiffe_sds::{SdsConfig, SecretNames, SecretStream, WorkloadSecrets};
//! use spiffe_svid::issuer::DevCa;
//! use spiffe_workload_api::X509Bundles;
//!
//! let td = TrustDomain::new("example.org")?;
//! let ca = DevCa::new(td.clone())?;
//! let config = SdsConfig::new(td.clone()).with_names(SecretNames::istio_federation());
//! let mut stream = SecretStream::new(Arc::new(config), 1);
//! let bundles: X509Bundles = [ca.bundle()].into_iter().collect();
//! stream.handle_update(Arc::new(WorkloadSecrets::bundles_only(td, bundles)))?;
//!
//! let request = DiscoveryRequest { resource_names: vec!["ROOTCA".into()], ..Default::default() };
//! let response = stream.handle_request(&request)?.response.expect("the first request is answered");
//! assert_eq!(response.resources.len(), 1);
//! assert!(!response.nonce.is_empty());
//!
//! // The ACK gets no reply.
//! let ack = DiscoveryRequest {
//!     version_info: response.version_info.clone(),
//!     response_nonce: response.nonce.clone(),
//!     ..request
//! };
//! assert!(stream.handle_request(&ack)?.response.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decisions
//!
//! - **Each name resolves on its own** (SPIRE fails a request for both
//!   `ROOTCA` and `spiffe://<own td>`). An unknown name ends the stream with
//!   `INVALID_ARGUMENT` and SPIRE's message, listing the sorted names (S7);
//!   a workload without an SVID still gets bundle names.
//! - **Versions follow content**: a 64-bit hash of the resources, so equal
//!   content has an equal version on every stream and after reconnects, and
//!   a push whose content equals what the stream last sent is not sent.
//! - **Responses are sorted by name**, each name once (S15).
//! - **Empty names** are the wildcard only before a stream named anything;
//!   afterwards they unsubscribe (the xDS rule, S23).
//! - **`ALL` without the SPIFFE validator is refused** (`INTERNAL`, as
//!   SPIRE): a flat `trusted_ca` of several trust domains would let one
//!   trust domain's CA vouch for another's IDs.
//! - **Delta**: unknown names are answered in `removed_resources` rather
//!   than ending the stream, the incremental protocol's way to say "does not
//!   exist".
//! - **No security header on SDS** (Envoy sends none, S3); attestation is
//!   the Workload API's, once per stream.
//!
//! Envoy needs `api_type: GRPC` (or `DELTA_GRPC`) and HTTP/2 on the SDS
//! cluster; `docs/proxy-authors.md` in the repository shows a bootstrap.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod delta;
mod envelope;
mod error;
mod fetch;
#[cfg(test)]
mod fixtures;
mod material;
mod names;
mod secret;
mod stream;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;

pub use config::{Limits, SdsConfig};
pub use delta::{DeltaOutcome, DeltaSecretStream};
pub use envelope::{SECRET_TYPE_URL, WILDCARD};
pub use error::{ErrorCode, NameConfigError, SdsError};
pub use fetch::fetch_secrets;
pub use material::WorkloadSecrets;
pub use names::{
    DEFAULT_ALL_BUNDLES_NAME, DEFAULT_BUNDLE_NAME, DEFAULT_SVID_NAME, ResourceRef, SecretNames,
};
pub use secret::{
    DISABLE_SPIFFE_VALIDATION_KEY, SPIFFE_VALIDATOR_NAME, ValidationForm, tls_certificate_secret,
    validation_context_secret, validation_form,
};
pub use stream::{RequestKind, RequestOutcome, SecretStream};

/// The protobuf types this crate speaks, re-exported so callers use the
/// same version.
pub use envoy_types;
