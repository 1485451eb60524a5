//! The SPIFFE Workload API: a client with long-lived sources, and a server
//! that mesh components embed.
//!
//! The Workload API is how a workload gets its identity from the agent on
//! its node: X.509-SVIDs with their keys and trust bundles as a stream that
//! follows rotation, JWT-SVIDs on request, and JWT bundles. It is gRPC over
//! a Unix domain socket (or loopback TCP), service `SpiffeWorkloadAPI` with
//! no proto package, every call carrying the metadata
//! `workload.spiffe.io: true`.
//!
//! # What is here
//!
//! | feature | item | for |
//! |---|---|---|
//! | always | [`EndpointAddress`] | `SPIFFE_ENDPOINT_SOCKET` parsed exactly as the endpoint specification allows (E-07 to E-10) |
//! | always | [`X509Context`], [`X509Bundles`], [`JwtBundles`], [`JwtSvidToken`] | the checked values both sides exchange; bundle collections are bundle sources for the verifiers of `spiffe-svid` |
//! | always | [`proto`] | the generated messages and gRPC stubs (committed; no `protoc` needed) |
//! | `client` (default) | [`WorkloadApiClient`], [`decode`] | one call per RPC, each answer checked |
//! | `client` | [`X509Source`], [`JwtSource`], [`BundleSource`] | long-lived material: wait for the first update, follow the stream, reconnect with jittered backoff, keep the last good material while the agent is away |
//! | `server` | [`server`] | the embeddable server: an [`IdentityProvider`](server::IdentityProvider) trait, caller attestation from Unix peer credentials, the tonic service, listeners, a selector-based provider |
//! | `rustls` | sources as rustls SVID sources | mTLS that follows rotation |
//!
//! # A workload
//!
//! ```no_run
//! use rustls_pki_types::UnixTime;
//! use spiffe_workload_api::X509Source;
//!
//! # async fn run(peer_chain: Vec<rustls_pki_types::CertificateDer<'static>>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! // Waits for the first SVID, then follows rotation in the background.
//! let source = X509Source::from_env().await?;
//! println!("I am {}", source.svid()?.spiffe_id());
//!
//! // The source is a bundle source: verify a peer against the bundle of
//! // the peer's own trust domain (own or federated).
//! let peer = spiffe_svid::verify_x509_svid(&peer_chain, &source, UnixTime::now())?;
//! println!("peer is {}", peer.spiffe_id());
//! # Ok(()) }
//! ```
//!
//! Embedding the server is shown in the [`server`] module and in
//! `docs/mesh-components.md`.
//!
//! # Conformance notes
//!
//! - Responses are decoded strictly: an empty mandatory field, an SVID whose
//!   `spiffe_id` differs from its certificate, or a key that does not match
//!   its leaf is an error (W-11); duplicate hints keep the first (W-16);
//!   federated bundle keys are accepted as `spiffe://td` or `td`, and sent
//!   as `spiffe://td`.
//! - JWT bundles are read as plain JWK Sets, without filtering on `use`
//!   (SPIRE leaves `use` out of Workload API bundles).
//! - Sources stop retrying on `InvalidArgument` and `Unimplemented` (E-13,
//!   E-16) and retry everything else with backoff, `Cancelled` included
//!   (only the peer can cancel a source's stream).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
#[cfg(feature = "client")]
mod client;
mod context;
#[cfg(feature = "client")]
pub mod decode;
#[cfg(feature = "server")]
mod encode;
pub mod proto;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "client")]
mod source;

pub use address::{AddressError, EndpointAddress, SPIFFE_ENDPOINT_SOCKET};
#[cfg(feature = "client")]
pub use client::{ClientError, GrpcCode, UpdateStream, WorkloadApiClient};
pub use context::{
    ContextError, HintedX509Svid, JwtBundles, JwtSvidToken, MAX_HINT_LEN, X509Bundles, X509Context,
};
#[cfg(feature = "client")]
pub use decode::DecodeError;
#[cfg(feature = "client")]
pub use source::{BundleSource, JwtSource, SourceOptions, Subscription, SvidSelector, X509Source};

/// The gRPC metadata key every Workload API call carries (E-04).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
/// The only value of [`SECURITY_HEADER`] a server accepts, compared
/// case-sensitively (E-05).
pub const SECURITY_HEADER_VALUE: &str = "true";
