//! `spiffe x509 inspect|verify`: X509-SVID chains.

mod certificate;
mod inspect;
mod profile;
mod verify;

use clap::Subcommand;
use serde::Serialize;
use spiffe_svid::X509SvidError;

use crate::error::CliError;
use crate::output::{EXIT_STATUS_HELP, Outcome, OutputFormat};
use crate::rfc3339::Timestamp;

/// `spiffe x509 ...`
#[derive(Debug, Subcommand)]
pub(crate) enum X509Command {
    /// Show an X509-SVID chain: SPIFFE ID, each certificate (subject,
    /// issuer, serial, validity, key, CA, key usage, EKU, SANs) and the
    /// SPIFFE leaf-profile checks. Exit status 1 when a check fails or the
    /// key does not match the leaf. Nothing is verified against a bundle:
    /// use `x509 verify` for that.
    #[command(after_help = EXIT_STATUS_HELP)]
    Inspect(inspect::InspectArgs),
    /// Verify an X509-SVID chain against the trust bundles of one or more
    /// trust domains (SPIFFE profile, then RFC 5280 path validation with the
    /// bundle of the leaf's trust domain). Exit status 0 when valid, 1 when
    /// not, with the reason.
    #[command(after_help = EXIT_STATUS_HELP)]
    Verify(verify::VerifyArgs),
}

pub(crate) fn run(command: X509Command, format: OutputFormat) -> Result<Outcome, CliError> {
    match command {
        X509Command::Inspect(args) => inspect::run(&args, format),
        X509Command::Verify(args) => verify::run(&args, format),
    }
}

/// Why an X509-SVID was rejected, for both commands' reports.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SvidErrorReport {
    /// A stable snake_case name of the failure (`expired`, `no_bundle`, ...).
    kind: &'static str,
    /// The rule of the SPIFFE checklist, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    /// For `invalid_spiffe_id`: the SPIFFE ID rule the URI SAN breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_rule: Option<&'static str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<Timestamp>,
}

impl SvidErrorReport {
    pub(crate) fn new(error: &X509SvidError) -> Self {
        let (kind, rule) = classify(error);
        let mut report = SvidErrorReport {
            kind,
            rule,
            id_rule: None,
            message: error.to_string(),
            not_before: None,
            not_after: None,
        };
        // The library states instants in Unix seconds; people read dates.
        match error {
            X509SvidError::Expired { at, not_after } => {
                let (at, not_after) = (secs(*at), secs(*not_after));
                report.message =
                    format!("certificate expired at {not_after} (verification time {at})");
                report.not_after = Some(not_after);
            }
            X509SvidError::NotYetValid { at, not_before } => {
                let (at, not_before) = (secs(*at), secs(*not_before));
                report.message =
                    format!("certificate not valid before {not_before} (verification time {at})");
                report.not_before = Some(not_before);
            }
            X509SvidError::InvalidSpiffeId { source, .. } => report.id_rule = Some(source.rule()),
            _ => {}
        }
        report
    }

    /// Text lines under the headline: the rule and kind.
    pub(crate) fn text_details(&self) -> String {
        let mut out = String::new();
        if let Some(rule) = self.rule {
            out.push_str(&format!("  rule:         {rule}"));
            if let Some(id_rule) = self.id_rule {
                out.push_str(&format!(" (SPIFFE ID rule {id_rule})"));
            }
            out.push('\n');
        }
        out.push_str(&format!("  reason:       {}\n", self.kind));
        out
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

fn secs(s: u64) -> Timestamp {
    Timestamp(i64::try_from(s).unwrap_or(i64::MAX))
}

/// The stable name and the checklist rule of each rejection.
fn classify(error: &X509SvidError) -> (&'static str, Option<&'static str>) {
    use X509SvidError as E;
    match error {
        E::EmptyChain => ("empty_chain", None),
        E::MalformedCertificate { .. } => ("malformed_certificate", None),
        E::NoUriSan => ("no_uri_san", Some("X-01")),
        E::MultipleUriSans { .. } => ("multiple_uri_sans", Some("X-02")),
        E::InvalidSpiffeId { .. } => ("invalid_spiffe_id", Some("X-22")),
        E::LeafIdWithoutPath { .. } => ("leaf_id_without_path", Some("X-05")),
        E::NonCriticalSanWithEmptySubject => ("non_critical_san_with_empty_subject", Some("X-06")),
        E::LeafIsCa => ("leaf_is_ca", Some("X-13")),
        E::LeafWithoutKeyUsage => ("leaf_without_key_usage", Some("X-15")),
        E::LeafWithoutDigitalSignature => ("leaf_without_digital_signature", Some("X-17")),
        E::LeafWithKeyCertSign => ("leaf_with_key_cert_sign", Some("X-14")),
        E::LeafWithCrlSign => ("leaf_with_crl_sign", Some("X-14")),
        E::LeafExtendedKeyUsage { .. } => ("leaf_extended_key_usage", Some("X-18")),
        E::NoBundle { .. } => ("no_bundle", Some("W-12")),
        E::NoCryptoProvider => ("no_crypto_provider", None),
        E::Expired { .. } => ("expired", Some("X-21")),
        E::NotYetValid { .. } => ("not_yet_valid", Some("X-21")),
        E::InvalidValidityPeriod => ("invalid_validity_period", Some("X-21")),
        E::UnknownIssuer => ("unknown_issuer", Some("X-21")),
        E::BadSignature => ("bad_signature", Some("X-21")),
        E::UnsupportedSignatureAlgorithm { .. } => {
            ("unsupported_signature_algorithm", Some("X-21"))
        }
        E::CaUsedAsEndEntity => ("ca_used_as_end_entity", Some("X-11")),
        E::IssuerNotCa => ("issuer_not_ca", Some("X-16")),
        E::IssuerWithoutKeyCertSign => ("issuer_without_key_cert_sign", Some("X-16")),
        E::PathLenConstraintViolated => ("path_len_constraint_violated", Some("X-12")),
        E::NameConstraintViolation => ("name_constraint_violation", Some("X-20")),
        E::UriNameConstraintsUnsupported => ("uri_name_constraints_unsupported", Some("X-20")),
        E::UnsupportedCriticalExtension => ("unsupported_critical_extension", Some("X-21")),
        E::ExtendedKeyUsageNotAllowed => ("extended_key_usage_not_allowed", Some("X-19")),
        E::PathBuildingLimitExceeded { .. } => ("path_building_limit_exceeded", Some("X-21")),
        E::PathValidation { .. } => ("path_validation", Some("X-21")),
        E::SigningCertNotCa { .. } => ("signing_cert_not_ca", Some("X-16")),
        E::SigningCertWithoutKeyCertSign { .. } => {
            ("signing_cert_without_key_cert_sign", Some("X-16"))
        }
        E::KeyMismatch => ("key_mismatch", None),
        // Loading errors, and variants added later.
        _ => ("other", None),
    }
}
