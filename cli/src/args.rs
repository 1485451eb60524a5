//! Arguments shared by several commands.

use clap::Args;
use rustls_pki_types::UnixTime;
use spiffe_id::TrustDomain;

use crate::rfc3339;
use crate::trust_bundles::BundleArg;

/// The trust bundles a verify command checks against.
#[derive(Debug, Args)]
pub(crate) struct TrustArgs {
    /// A trust bundle: `[<trust-domain>=]<file-or-directory>`; repeat it for
    /// federation. PEM or DER certificates, a SPIFFE bundle, a JWKS or a
    /// bundle map (JSON), told apart by content. A directory loads every
    /// file in it, each named `<trust-domain>.pem|.crt|.cer|.der|.json|.jwks`
    /// (a bundle map may have any name). See docs/cli.md.
    #[arg(long = "bundle", value_name = "[TD=]PATH", required = true, value_parser = BundleArg::parse)]
    pub(crate) bundles: Vec<BundleArg>,

    /// The trust domain of bundle files given without a `<trust-domain>=`
    /// prefix whose format does not name it (PEM, DER, SPIFFE bundle, JWKS).
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    pub(crate) trust_domain: Option<TrustDomain>,
}

/// clap's parser for `--at`.
pub(crate) fn parse_at(s: &str) -> Result<UnixTime, String> {
    rfc3339::parse(s).map_err(|e| e.to_string())
}

/// clap's parser for `--trust-domain`.
pub(crate) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::new(s).map_err(|e| format!("{e} (rule {})", e.rule()))
}
