//! `spiffe x509 verify --bundle ... <chain>`.

use std::path::PathBuf;

use clap::Args;
use rustls_pki_types::UnixTime;
use serde::Serialize;
use spiffe_id::SpiffeId;
use spiffe_svid::verify_x509_svid;
use x509_parser::extensions::GeneralName;

use super::SvidErrorReport;
use crate::args::{TrustArgs, parse_at};
use crate::error::CliError;
use crate::input::read_chain;
use crate::output::{Outcome, OutputFormat, Report, Status};
use crate::rfc3339::Timestamp;
use crate::trust_bundles::{self, LoadedBundle};

/// `spiffe x509 verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    trust: TrustArgs,

    /// Verify as of this instant, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    at: Option<UnixTime>,

    /// The chain to verify, leaf first: PEM (a private key in the file is
    /// ignored) or concatenated DER. `-` reads standard input.
    chain: PathBuf,
}

/// The report of `x509 verify` (JSON shape in docs/cli.md).
#[derive(Debug, Serialize)]
struct VerifyReport {
    valid: bool,
    chain: String,
    verified_at: Timestamp,
    /// The verified ID; when verification failed, the ID the leaf claims
    /// (if its URI SAN parses), for context only.
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domain: Option<String>,
    /// Earliest `notAfter` of the leaf and intermediates of the verified
    /// path.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    /// The verified path: leaf, intermediates used, and the bundle's anchor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    path: Vec<PathEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<SvidErrorReport>,
    bundles: Vec<LoadedBundle>,
}

#[derive(Debug, Serialize)]
struct PathEntry {
    /// `leaf`, `intermediate` or `anchor`.
    role: &'static str,
    subject: String,
}

pub(crate) fn run(args: &VerifyArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let bundles = trust_bundles::load(&args.trust.bundles, args.trust.trust_domain.as_ref())?;
    let chain = read_chain(&args.chain)?;
    let at = args.at.unwrap_or_else(UnixTime::now);

    let mut report = VerifyReport {
        valid: false,
        chain: args.chain.display().to_string(),
        verified_at: Timestamp::from_unix_time(at),
        spiffe_id: None,
        trust_domain: None,
        expires_at: None,
        path: Vec::new(),
        error: None,
        bundles: bundles.loaded,
    };
    match verify_x509_svid(&chain.certificates, &bundles.map, at) {
        Ok(verified) => {
            report.valid = true;
            report.spiffe_id = Some(verified.spiffe_id().to_string());
            report.trust_domain = Some(verified.spiffe_id().trust_domain_name().to_owned());
            report.expires_at = Some(Timestamp::from_unix_time(verified.expires_at()));
            let last = verified.chain().len().saturating_sub(1);
            report.path = verified
                .chain()
                .iter()
                .enumerate()
                .map(|(i, der)| PathEntry {
                    role: match i {
                        0 => "leaf",
                        i if i == last => "anchor",
                        _ => "intermediate",
                    },
                    subject: subject_of(der),
                })
                .collect();
        }
        Err(e) => {
            let claimed = chain.certificates.first().and_then(|leaf| claimed_id(leaf));
            report.trust_domain = claimed.as_ref().map(|id| id.trust_domain_name().to_owned());
            report.spiffe_id = claimed.map(|id| id.to_string());
            report.error = Some(SvidErrorReport::new(&e));
        }
    }
    Outcome::new(Status::from_ok(report.valid), format, &report)
}

fn subject_of(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let name = cert.subject().to_string();
            if name.is_empty() {
                "(empty subject)".to_owned()
            } else {
                name
            }
        }
        Err(_) => "(unparseable)".to_owned(),
    }
}

/// The SPIFFE ID in the leaf's first URI SAN, if it parses.
fn claimed_id(leaf: &[u8]) -> Option<SpiffeId> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        GeneralName::URI(uri) => SpiffeId::parse(uri).ok(),
        _ => None,
    })
}

impl Report for VerifyReport {
    fn to_text(&self) -> String {
        let mut out = String::new();
        match &self.error {
            None => out.push_str("valid X509-SVID\n"),
            Some(e) => {
                out.push_str(&format!("invalid X509-SVID: {}\n", e.message()));
                out.push_str(&e.text_details());
            }
        }
        if let Some(id) = &self.spiffe_id {
            let label = if self.valid {
                "SPIFFE ID:   "
            } else {
                "leaf claims: "
            };
            out.push_str(&format!("  {label} {id}\n"));
        }
        out.push_str(&format!("  verified at:  {}\n", self.verified_at));
        if let Some(t) = self.expires_at {
            out.push_str(&format!("  expires at:   {t}\n"));
        }
        if !self.path.is_empty() {
            out.push_str("  path:\n");
            for (i, entry) in self.path.iter().enumerate() {
                out.push_str(&format!("    [{i}] {:<13}{}\n", entry.role, entry.subject));
            }
        }
        out.push_str("  bundles:\n");
        for b in &self.bundles {
            let mark = if self.trust_domain.as_deref() == Some(b.trust_domain.as_str()) {
                " <- leaf's trust domain"
            } else {
                ""
            };
            out.push_str(&format!(
                "    {}: {} X.509, {} JWT authorities from {} ({}){mark}\n",
                b.trust_domain,
                b.x509_authorities,
                b.jwt_authorities,
                b.path,
                b.format.name(),
            ));
        }
        out
    }
}
