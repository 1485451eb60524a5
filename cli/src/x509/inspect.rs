//! `spiffe x509 inspect <file>`.

use std::path::PathBuf;

use clap::Args;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;
use spiffe_bundle::{X509Bundle, X509BundleSource};
use spiffe_id::TrustDomain;
use spiffe_svid::{X509SvidError, default_crypto_provider, verify_x509_svid};
use x509_parser::certificate::X509Certificate;

use super::SvidErrorReport;
use super::certificate::{CertificateDetails, describe};
use super::profile::{leaf_checks, signing_checks};
use crate::error::CliError;
use crate::input::{CertificateEncoding, FoundKey, read_chain};
use crate::output::{Check, CheckStatus, Outcome, OutputFormat, Report, Status};
use crate::rfc3339::Timestamp;

/// `spiffe x509 inspect`
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The chain, leaf first: PEM (CERTIFICATE sections, optionally with the
    /// leaf's PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY) or
    /// concatenated DER. `-` reads standard input.
    file: PathBuf,

    /// The instant for the validity status of each certificate, RFC 3339
    /// (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = crate::args::parse_at)]
    at: Option<UnixTime>,
}

/// The report of `x509 inspect` (JSON shape in docs/cli.md).
#[derive(Debug, Serialize)]
struct InspectReport {
    file: String,
    /// `pem` or `der`.
    encoding: &'static str,
    checked_at: Timestamp,
    /// The leaf's SPIFFE ID, when its one URI SAN is one.
    spiffe_id: Option<String>,
    /// No check failed and the key, if any, belongs to the leaf.
    valid: bool,
    /// The verdict of the verifier's own leaf-profile checks
    /// (spiffe_svid::verify_x509_svid, before any bundle is consulted).
    profile_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_error: Option<SvidErrorReport>,
    /// Every leaf-profile rule on its own.
    profile_checks: Vec<Check>,
    certificates: Vec<CertificateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<KeyReport>,
}

#[derive(Debug, Serialize)]
struct CertificateReport {
    #[serde(flatten)]
    details: CertificateDetails,
    /// For certificates after the leaf: the signing-certificate rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
struct KeyReport {
    /// `PKCS#8`, `SEC1` or `PKCS#1`.
    format: &'static str,
    /// The crypto provider could load the key.
    loads: bool,
    /// Whether the key's public half is the leaf's key; absent when that
    /// cannot be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    matches_leaf: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A bundle source with no bundle at all: the verifier then runs its leaf
/// profile and stops at "no bundle", which means the profile passed.
struct NoBundles;

impl X509BundleSource for NoBundles {
    fn x509_bundle_for(&self, _: &TrustDomain) -> Option<X509Bundle> {
        None
    }
}

pub(crate) fn run(args: &InspectArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let chain = read_chain(&args.file)?;
    let at = args.at.unwrap_or_else(UnixTime::now);
    let at_secs = Timestamp::from_unix_time(at);

    let parsed = parse_all(&chain.certificates).map_err(|reason| CliError::Certificates {
        path: args.file.clone(),
        reason,
    })?;

    let (profile_valid, profile_error) = match verify_x509_svid(&chain.certificates, &NoBundles, at)
    {
        Err(X509SvidError::NoBundle { .. }) | Ok(_) => (true, None),
        Err(e) => (false, Some(SvidErrorReport::new(&e))),
    };

    let mut certificates = Vec::new();
    let mut profile_checks = Vec::new();
    for (index, cert) in parsed.iter().enumerate() {
        let details = describe(cert, index, at_secs.0);
        let checks = if index == 0 {
            profile_checks = leaf_checks(cert);
            Vec::new()
        } else {
            signing_checks(cert)
        };
        certificates.push(CertificateReport { details, checks });
    }
    let spiffe_id = certificates
        .first()
        .and_then(|c| c.details.spiffe_id.clone());

    let private_key = match (&chain.key, parsed.first()) {
        (Some(key), Some(leaf)) => Some(check_key(key, leaf)),
        _ => None,
    };

    let any_fail = profile_checks
        .iter()
        .chain(certificates.iter().flat_map(|c| &c.checks))
        .any(|c| c.status == CheckStatus::Fail);
    let key_ok = private_key
        .as_ref()
        .is_none_or(|k| k.loads && k.matches_leaf != Some(false));
    let valid = profile_valid && !any_fail && key_ok;

    let report = InspectReport {
        file: args.file.display().to_string(),
        encoding: match chain.encoding {
            CertificateEncoding::Pem => "pem",
            CertificateEncoding::Der => "der",
        },
        checked_at: at_secs,
        spiffe_id,
        valid,
        profile_valid,
        profile_error,
        profile_checks,
        certificates,
        private_key,
    };
    Outcome::new(Status::from_ok(valid), format, &report)
}

fn parse_all<'a>(chain: &'a [CertificateDer<'_>]) -> Result<Vec<X509Certificate<'a>>, String> {
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, cert)| cert)
                .map_err(|e| format!("certificate {i} does not parse: {e}"))
        })
        .collect()
}

/// Loads the key with the crypto provider and compares its public key with
/// the leaf's SubjectPublicKeyInfo.
fn check_key(found: &FoundKey, leaf: &X509Certificate<'_>) -> KeyReport {
    let mut report = KeyReport {
        format: found.format,
        loads: false,
        matches_leaf: None,
        algorithm: None,
        error: None,
    };
    let Some(provider) = default_crypto_provider() else {
        report.error = Some("no rustls crypto provider is available".to_owned());
        return report;
    };
    match provider
        .key_provider
        .load_private_key(found.key.clone_key())
    {
        Ok(key) => {
            report.loads = true;
            report.algorithm = Some(format!("{:?}", key.algorithm()));
            report.matches_leaf = key
                .public_key()
                .map(|spki| spki.as_ref() == leaf.public_key().raw);
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

impl Report for InspectReport {
    fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{}: {} certificate(s), {}\n",
            self.file,
            self.certificates.len(),
            self.encoding.to_uppercase()
        ));
        out.push_str(&format!(
            "  SPIFFE ID:    {}\n",
            self.spiffe_id.as_deref().unwrap_or("(none)")
        ));
        out.push_str(&format!("  checked at:   {}\n", self.checked_at));
        for cert in &self.certificates {
            let d = &cert.details;
            out.push_str(&format!("\ncertificate [{}] {}\n", d.index, d.role));
            out.push_str(&format!("  subject:      {}\n", d.subject));
            out.push_str(&format!("  issuer:       {}\n", d.issuer));
            out.push_str(&format!("  serial:       {}\n", d.serial));
            out.push_str(&format!(
                "  validity:     {} .. {} ({})\n",
                d.not_before,
                d.not_after,
                d.validity_status.replace('_', " ")
            ));
            out.push_str(&format!(
                "  key:          {} (signed with {})\n",
                d.key_algorithm, d.signature_algorithm
            ));
            let ca = match (d.ca, d.path_len_constraint) {
                (true, Some(n)) => format!("yes (pathLen {n})"),
                (true, None) => "yes".to_owned(),
                (false, _) => "no".to_owned(),
            };
            out.push_str(&format!("  CA:           {ca}\n"));
            let ku = if d.key_usage.is_empty() && d.key_usage_critical.is_none() {
                "(none)".to_owned()
            } else {
                let critical = if d.key_usage_critical == Some(true) {
                    " (critical)"
                } else {
                    ""
                };
                format!("{}{critical}", d.key_usage.join(", "))
            };
            out.push_str(&format!("  key usage:    {ku}\n"));
            out.push_str(&format!(
                "  EKU:          {}\n",
                list(&d.extended_key_usage)
            ));
            out.push_str(&format!("  URI SANs:     {}\n", list(&d.uri_sans)));
            out.push_str(&format!("  DNS SANs:     {}\n", list(&d.dns_sans)));
            if !d.ip_sans.is_empty() {
                out.push_str(&format!("  IP SANs:      {}\n", list(&d.ip_sans)));
            }
            for problem in &d.problems {
                out.push_str(&format!("  problem:      {problem}\n"));
            }
            for check in &cert.checks {
                out.push_str(&check.to_text_line());
            }
        }
        out.push_str("\nSPIFFE leaf profile:\n");
        for check in &self.profile_checks {
            out.push_str(&check.to_text_line());
        }
        match &self.profile_error {
            None => out.push_str("  verifier verdict: pass\n"),
            Some(e) => out.push_str(&format!("  verifier verdict: FAIL: {}\n", e.message())),
        }
        if let Some(key) = &self.private_key {
            out.push_str(&format!("\nprivate key ({}):\n", key.format));
            match (&key.error, key.matches_leaf) {
                (Some(e), _) => out.push_str(&format!("  does not load: {e}\n")),
                (None, Some(true)) => out.push_str("  matches the leaf's public key\n"),
                (None, Some(false)) => {
                    out.push_str("  DOES NOT match the leaf's public key\n");
                }
                (None, None) => out.push_str("  loads; whether it matches the leaf is unknown\n"),
            }
            if key.format != "PKCS#8" {
                out.push_str("  note: SVID keys are PKCS#8 (PRIVATE KEY) in the Workload API\n");
            }
        }
        out.push_str(if self.valid {
            "\nresult: the chain follows the X509-SVID profile (not verified against a bundle)\n"
        } else {
            "\nresult: NOT a valid X509-SVID (see the failed checks above)\n"
        });
        out
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
