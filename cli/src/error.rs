//! Usage and input errors: everything that ends a command with exit status 2
//! before there is anything to report on.
//!
//! A verification that ran and failed is not an error here: it is a report
//! with exit status 1 (see [`crate::output`]).

use std::io;
use std::path::PathBuf;

use spiffe_bundle::BundleError;
use spiffe_id::SpiffeIdError;

/// Why a command could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A file (or standard input) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file, or `-` for standard input.
        path: PathBuf,
        /// What the operating system reported.
        source: io::Error,
    },
    /// A file is larger than the command accepts.
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A certificate file holds nothing the command can use, or is
    /// malformed (bad PEM, a DER certificate that does not parse).
    #[error("{}: {reason}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A bundle file could not be read as a bundle.
    #[error("bundle {}: {source}", path.display())]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What the bundle parser reported.
        source: BundleError,
    },
    /// Which trust domain a bundle file belongs to cannot be told.
    #[error(
        "bundle {}: its trust domain is unknown; write `<trust-domain>=<path>` or give \
         --trust-domain",
        path.display()
    )]
    BundleTrustDomainUnknown {
        /// The file.
        path: PathBuf,
    },
    /// Two bundle files give different keys under one JWT key ID of one
    /// trust domain.
    #[error(
        "bundles of trust domain {trust_domain} disagree on JWT key {kid:?} ({} and an earlier one)",
        path.display()
    )]
    ConflictingJwtKey {
        /// The trust domain.
        trust_domain: String,
        /// The key ID.
        kid: String,
        /// The later file.
        path: PathBuf,
    },
    /// A trust-domain name given on the command line or as a file name is
    /// not valid.
    #[error("{what} {name:?} is not a valid trust domain: {source} (rule {})", source.rule())]
    TrustDomain {
        /// Where the name came from.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it is not a trust domain.
        source: SpiffeIdError,
    },
    /// A token is not a compact JWS whose header and claims are JSON objects.
    #[error("not a JWT: {reason}")]
    Token {
        /// What was wrong.
        reason: String,
    },
    /// Arguments that parse but do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A long-running command (agent, demo, fetch) failed: the agent could
    /// not start, a server or stream failed.
    #[error("{0}")]
    Runtime(String),
    /// The report could not be written.
    #[error("cannot write the output: {0}")]
    Output(String),
}

impl CliError {
    /// A [`CliError::Read`] for `path`.
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Read { path, source }
    }
}
