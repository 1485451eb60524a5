//! The SPIFFE Workload API: a client with long-lived sources, and a server
//! that mesh components embed.
//!
//! TODO(crate docs): written when the client and server land.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod context;
pub mod proto;

pub use address::{AddressError, EndpointAddress, SPIFFE_ENDPOINT_SOCKET};
pub use context::{
    ContextError, HintedX509Svid, JwtBundles, JwtSvidToken, MAX_HINT_LEN, X509Bundles, X509Context,
};

/// The gRPC metadata key every Workload API call carries (E-04).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
/// The only value of [`SECURITY_HEADER`] a server accepts, compared
/// case-sensitively (E-05).
pub const SECURITY_HEADER_VALUE: &str = "true";
