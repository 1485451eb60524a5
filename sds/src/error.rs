//! What can go wrong in the SDS core, and the gRPC status each error ends a
//! call with.

/// Why a request cannot be answered. Every variant ends the call: on
/// `StreamSecrets` the stream ends with [`SdsError::code`] and Envoy retries
/// with its backoff (500 ms up to 30 s), keeping the secrets it already has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdsError {
    /// One or more requested names resolve to nothing the workload may have
    /// (S7): an unknown name (`file-root:system`), a SPIFFE ID the workload
    /// has no SVID for, `default` for a workload without an identity, or the
    /// ID of a trust domain without a bundle. The message is SPIRE's, so
    /// operators can search for it.
    #[error("workload is not authorized for the requested identities {names:?}")]
    UnknownNames {
        /// The names that did not resolve, sorted.
        names: Vec<String>,
    },
    /// A request names more resources than the server accepts.
    #[error("{count} resource names in one request, over the limit of {max}")]
    TooManyNames {
        /// How many distinct names the request carried.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// A resource name is longer than the server accepts.
    #[error("a resource name of {len} bytes is over the limit of {max} bytes")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The request asks for another resource type than `Secret`.
    #[error(
        "type URL {type_url:?} is not served here, only {}",
        crate::SECRET_TYPE_URL
    )]
    UnsupportedTypeUrl {
        /// The type URL the request carried.
        type_url: String,
    },
    /// The name asks for several trust domains at once (`ALL`, or `ROOTCA`
    /// in the Istio federation setting), which only Envoy's SPIFFE
    /// certificate validator can express, but the validator is disabled for
    /// this client (by configuration, node metadata, or an Envoy older than
    /// 1.18). A flat `trusted_ca` of every trust domain would let any trust
    /// domain's CA vouch for any other's IDs, so it is refused, as SPIRE
    /// does (S11).
    #[error("{name:?} needs Envoy's SPIFFE certificate validator, which is off for this client")]
    SpiffeValidatorRequired {
        /// The requested name.
        name: String,
    },
    /// The bundle behind a name holds no X.509 authority (for example a
    /// JWT-only federated bundle), and Envoy rejects a validation context
    /// without certificates (S12).
    #[error("no X.509 authorities to send for {name:?}")]
    NoAuthorities {
        /// The requested name.
        name: String,
    },
}

/// The gRPC status code an [`SdsError`] ends a call with; mirrors
/// `tonic::Code` for the codes this crate uses, without tying the pure core
/// to tonic's types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `INVALID_ARGUMENT` (3): the request is wrong; as SPIRE answers
    /// unknown names.
    InvalidArgument,
    /// `INTERNAL` (13): SPIRE's answer when `ALL` is asked of a client
    /// without the SPIFFE validator.
    Internal,
    /// `UNAVAILABLE` (14): the material is not usable now; clients retry.
    Unavailable,
}

impl SdsError {
    /// The status code the call ends with.
    pub fn code(&self) -> ErrorCode {
        match self {
            SdsError::UnknownNames { .. }
            | SdsError::TooManyNames { .. }
            | SdsError::NameTooLong { .. }
            | SdsError::UnsupportedTypeUrl { .. } => ErrorCode::InvalidArgument,
            SdsError::SpiffeValidatorRequired { .. } => ErrorCode::Internal,
            SdsError::NoAuthorities { .. } => ErrorCode::Unavailable,
        }
    }
}

impl From<SdsError> for tonic::Status {
    fn from(err: SdsError) -> Self {
        let message = err.to_string();
        match err.code() {
            ErrorCode::InvalidArgument => tonic::Status::invalid_argument(message),
            ErrorCode::Internal => tonic::Status::internal(message),
            ErrorCode::Unavailable => tonic::Status::unavailable(message),
        }
    }
}

/// Why a name setting is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameConfigError {
    /// A configured name is empty: Envoy never asks for it, and an empty
    /// name is dropped from requests (S5).
    #[error("a configured resource name is empty")]
    Empty,
    /// Two settings use the same name; SPIRE lets the first shadow the
    /// other, which hides a configuration mistake.
    #[error("resource name {name:?} is configured twice")]
    Duplicate {
        /// The name used twice.
        name: String,
    },
    /// A configured name starts with `spiffe://` and would shadow a trust
    /// domain's or an SVID's own name.
    #[error("resource name {name:?} starts with spiffe://, which is reserved for SPIFFE IDs")]
    SpiffeScheme {
        /// The name.
        name: String,
    },
    /// A configured name is `*`, the xDS wildcard.
    #[error("resource name \"*\" is the xDS wildcard")]
    Wildcard,
}
