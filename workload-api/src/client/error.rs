//! The client's error type and the gRPC status codes it reports.

use std::fmt;
use std::time::Duration;

use crate::AddressError;
use crate::decode::DecodeError;

/// A gRPC status code, as the Workload API server sent it (or as the gRPC
/// stack reported a transport failure: an endpoint that cannot be reached
/// is [`GrpcCode::Unavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrpcCode {
    /// `OK` (0); never an error in practice.
    Ok,
    /// `CANCELLED` (1).
    Cancelled,
    /// `UNKNOWN` (2).
    Unknown,
    /// `INVALID_ARGUMENT` (3): a missing security header or a bad request
    /// field. Not retried (E-13).
    InvalidArgument,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `NOT_FOUND` (5).
    NotFound,
    /// `ALREADY_EXISTS` (6).
    AlreadyExists,
    /// `PERMISSION_DENIED` (7): the caller has no identity, possibly not
    /// yet (E-15).
    PermissionDenied,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `ABORTED` (10).
    Aborted,
    /// `OUT_OF_RANGE` (11).
    OutOfRange,
    /// `UNIMPLEMENTED` (12): the server lacks the RPC. Not retried (E-16).
    Unimplemented,
    /// `INTERNAL` (13).
    Internal,
    /// `UNAVAILABLE` (14): the server is not ready or cannot be reached
    /// (E-14).
    Unavailable,
    /// `DATA_LOSS` (15).
    DataLoss,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated,
}

impl GrpcCode {
    /// The code's number on the wire.
    pub fn as_i32(self) -> i32 {
        match self {
            GrpcCode::Ok => 0,
            GrpcCode::Cancelled => 1,
            GrpcCode::Unknown => 2,
            GrpcCode::InvalidArgument => 3,
            GrpcCode::DeadlineExceeded => 4,
            GrpcCode::NotFound => 5,
            GrpcCode::AlreadyExists => 6,
            GrpcCode::PermissionDenied => 7,
            GrpcCode::ResourceExhausted => 8,
            GrpcCode::FailedPrecondition => 9,
            GrpcCode::Aborted => 10,
            GrpcCode::OutOfRange => 11,
            GrpcCode::Unimplemented => 12,
            GrpcCode::Internal => 13,
            GrpcCode::Unavailable => 14,
            GrpcCode::DataLoss => 15,
            GrpcCode::Unauthenticated => 16,
        }
    }

    fn name(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::Cancelled => "CANCELLED",
            GrpcCode::Unknown => "UNKNOWN",
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::OutOfRange => "OUT_OF_RANGE",
            GrpcCode::Unimplemented => "UNIMPLEMENTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unavailable => "UNAVAILABLE",
            GrpcCode::DataLoss => "DATA_LOSS",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<tonic::Code> for GrpcCode {
    fn from(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::Ok => GrpcCode::Ok,
            C::Cancelled => GrpcCode::Cancelled,
            C::Unknown => GrpcCode::Unknown,
            C::InvalidArgument => GrpcCode::InvalidArgument,
            C::DeadlineExceeded => GrpcCode::DeadlineExceeded,
            C::NotFound => GrpcCode::NotFound,
            C::AlreadyExists => GrpcCode::AlreadyExists,
            C::PermissionDenied => GrpcCode::PermissionDenied,
            C::ResourceExhausted => GrpcCode::ResourceExhausted,
            C::FailedPrecondition => GrpcCode::FailedPrecondition,
            C::Aborted => GrpcCode::Aborted,
            C::OutOfRange => GrpcCode::OutOfRange,
            C::Unimplemented => GrpcCode::Unimplemented,
            C::Internal => GrpcCode::Internal,
            C::Unavailable => GrpcCode::Unavailable,
            C::DataLoss => GrpcCode::DataLoss,
            C::Unauthenticated => GrpcCode::Unauthenticated,
        }
    }
}

/// Why a Workload API call, or a source following the API, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No usable endpoint address: `SPIFFE_ENDPOINT_SOCKET` is unset or
    /// invalid (E-07 to E-10).
    #[error("Workload API address: {0}")]
    Address(#[from] AddressError),
    /// The endpoint could not be connected to, or the client could not be
    /// set up (for example outside a Tokio runtime).
    #[error("cannot connect to the Workload API at {address}: {reason}")]
    Connect {
        /// The endpoint address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The server (or the gRPC stack, for a broken connection) ended the
    /// call with a status.
    #[error("Workload API call failed with {code}: {message}")]
    Status {
        /// The status code.
        code: GrpcCode,
        /// The status message.
        message: String,
    },
    /// The server's answer broke the Workload API's rules; it was
    /// discarded (W-11).
    #[error("invalid Workload API response: {0}")]
    Decode(#[from] DecodeError),
    /// The call, or a stream's first message, took longer than the
    /// client's timeout.
    #[error("no answer from the Workload API within {after:?}")]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The server ended a stream without a status, before its first message
    /// (a one-shot fetch) or while a source was following it.
    #[error("the Workload API server ended the stream")]
    StreamEnded,
    /// The request was refused before it was sent: a mandatory field was
    /// empty (W-10, W-20, W-26).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The X.509 context has no SVID that the source was told to pick.
    #[error("the X.509 context has no SVID {wanted}")]
    SvidNotFound {
        /// The hint or SPIFFE ID asked for.
        wanted: String,
    },
    /// The SVID a source serves has expired: the agent did not renew it
    /// in time (it may be unreachable).
    #[error("the SVID {spiffe_id} has expired and was not renewed")]
    SvidExpired {
        /// The SVID's SPIFFE ID.
        spiffe_id: String,
    },
    /// A source got no usable update before its initial timeout.
    #[error("no usable update from the Workload API within {after:?}{}", cause_suffix(.last_error))]
    NoInitialUpdate {
        /// The initial timeout.
        after: Duration,
        /// The last error seen while waiting, if any.
        last_error: Option<Box<ClientError>>,
    },
    /// The source stopped following the Workload API after an error that
    /// must not be retried (InvalidArgument, Unimplemented), or
    /// because every handle to it was dropped. It still serves its last
    /// material.
    #[error("the source stopped following the Workload API{}", cause_suffix(.cause))]
    Stopped {
        /// The error that stopped it, if one did.
        cause: Option<Box<ClientError>>,
    },
}

fn cause_suffix(cause: &Option<Box<ClientError>>) -> String {
    match cause {
        Some(e) => format!(": {e}"),
        None => String::new(),
    }
}

impl ClientError {
    /// The gRPC status code, for a [`ClientError::Status`].
    pub fn grpc_code(&self) -> Option<GrpcCode> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether a long-lived watcher gives up after this error: the
    /// specification says not to retry `InvalidArgument` (E-13) or
    /// `Unimplemented` (E-16). Everything else (`Unavailable`,
    /// `PermissionDenied`, connection failures, a stream that ended) is
    /// retried with a backoff (E-14, E-15, W-04). So is `Cancelled`:
    /// go-spiffe stops on it because there it means its own context was
    /// cancelled, but a source is only ever stopped by being dropped, so a
    /// `Cancelled` here comes from the peer (an HTTP/2 reset by a restarting
    /// agent or a proxy) and must not stop the source for good.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self.grpc_code(),
            Some(GrpcCode::InvalidArgument | GrpcCode::Unimplemented)
        )
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Status {
            code: status.code().into(),
            message: status.message().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_number() {
        for n in 0..=16 {
            let code = GrpcCode::from(tonic::Code::from_i32(n));
            assert_eq!(code.as_i32(), n);
        }
        assert_eq!(GrpcCode::InvalidArgument.to_string(), "INVALID_ARGUMENT");
    }

    #[test]
    fn e_13_e_16_fatal_codes() {
        let status = |code| ClientError::Status {
            code,
            message: String::new(),
        };
        assert!(status(GrpcCode::InvalidArgument).is_fatal());
        assert!(status(GrpcCode::Unimplemented).is_fatal());
        assert!(!status(GrpcCode::Cancelled).is_fatal());
        assert!(!status(GrpcCode::Unavailable).is_fatal());
        assert!(!status(GrpcCode::PermissionDenied).is_fatal());
        assert!(!status(GrpcCode::Unknown).is_fatal());
        assert!(!ClientError::StreamEnded.is_fatal());
    }
}
