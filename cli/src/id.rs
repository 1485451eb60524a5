//! `spiffe id parse`: validate a SPIFFE ID and show its parts, or the rule
//! it breaks and where.

use clap::{Args, Subcommand};
use serde::Serialize;
use spiffe_id::{IstioIdentity, SpiffeId, SpiffeIdError};

use crate::error::CliError;
use crate::output::{EXIT_STATUS_HELP, Outcome, OutputFormat, Report, Status};

/// `spiffe id ...`
#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Validate a SPIFFE ID and print its parts, or the rule it breaks (with
    /// the byte position). Exit status 1 when the ID is invalid.
    #[command(after_help = EXIT_STATUS_HELP)]
    Parse(ParseArgs),
}

/// `spiffe id parse`
#[derive(Debug, Args)]
pub(crate) struct ParseArgs {
    /// The SPIFFE ID, for example spiffe://example.org/ns/prod/sa/web. Put
    /// `--` before an ID that starts with `-`.
    id: String,

    /// Also require the Istio shape `spiffe://<td>/ns/<namespace>/sa/<sa>`,
    /// and print the namespace and service account. Kubernetes naming rules
    /// are reported as a warning (Istio does not enforce them either).
    #[arg(long)]
    istio: bool,
}

pub(crate) fn run(command: IdCommand, format: OutputFormat) -> Result<Outcome, CliError> {
    match command {
        IdCommand::Parse(args) => {
            let report = parse(&args.id, args.istio);
            Outcome::new(Status::from_ok(report.valid), format, &report)
        }
    }
}

/// The report of `id parse` (`--output json` shape in docs/cli.md).
#[derive(Debug, Serialize)]
pub(crate) struct IdReport {
    input: String,
    /// The requested check passed: a SPIFFE ID, and with `--istio` an Istio
    /// identity.
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_id: Option<IdParts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    istio: Option<IstioParts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<IdErrorReport>,
}

/// The parts of a valid SPIFFE ID.
#[derive(Debug, Serialize)]
struct IdParts {
    trust_domain: String,
    path: String,
    segments: Vec<String>,
    /// The ID names the trust domain itself (no path): not a workload ID,
    /// and never valid in a leaf X509-SVID.
    trust_domain_id: bool,
}

#[derive(Debug, Serialize)]
struct IstioParts {
    namespace: String,
    service_account: String,
    /// The identity as Istio authorization policies write it.
    principal: String,
    /// Whether the names are valid Kubernetes names (informational).
    kubernetes_names_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes_names_error: Option<IdErrorReport>,
}

/// A broken rule, as [`SpiffeIdError`] names it.
#[derive(Debug, Serialize)]
pub(crate) struct IdErrorReport {
    /// `ID-01` .. `ID-20`, `ISTIO` or `K8S`.
    pub(crate) rule: &'static str,
    pub(crate) message: String,
    /// Byte offset in the input where the rule is broken, when the error
    /// names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<usize>,
}

impl IdErrorReport {
    pub(crate) fn new(error: &SpiffeIdError, input: &str) -> Self {
        IdErrorReport {
            rule: error.rule(),
            message: error.to_string(),
            index: error_index(error, input),
        }
    }
}

/// The byte offset an error points at. Only the variants that carry one,
/// and a trailing slash (which is always the last byte).
fn error_index(error: &SpiffeIdError, input: &str) -> Option<usize> {
    match error {
        SpiffeIdError::BadTrustDomainChar { index, .. }
        | SpiffeIdError::BadPathSegmentChar { index, .. }
        | SpiffeIdError::EmptySegment { index }
        | SpiffeIdError::DotSegment { index } => Some(*index),
        SpiffeIdError::TrailingSlash => input.len().checked_sub(1),
        _ => None,
    }
}

fn parse(input: &str, istio: bool) -> IdReport {
    let mut report = IdReport {
        input: input.to_owned(),
        valid: false,
        spiffe_id: None,
        istio: None,
        error: None,
    };
    let id = match SpiffeId::parse(input) {
        Ok(id) => id,
        Err(e) => {
            report.error = Some(IdErrorReport::new(&e, input));
            return report;
        }
    };
    report.spiffe_id = Some(IdParts {
        trust_domain: id.trust_domain_name().to_owned(),
        path: id.path().to_owned(),
        segments: id.segments().map(str::to_owned).collect(),
        trust_domain_id: id.is_trust_domain_id(),
    });
    if !istio {
        report.valid = true;
        return report;
    }
    match IstioIdentity::try_from(id) {
        Ok(identity) => {
            let k8s = identity.validate_kubernetes_names().err();
            report.istio = Some(IstioParts {
                namespace: identity.namespace().to_owned(),
                service_account: identity.service_account().to_owned(),
                principal: identity.principal().to_owned(),
                kubernetes_names_valid: k8s.is_none(),
                kubernetes_names_error: k8s.map(|e| IdErrorReport::new(&e, input)),
            });
            report.valid = true;
        }
        Err(e) => report.error = Some(IdErrorReport::new(&e, input)),
    }
    report
}

impl Report for IdReport {
    fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(error) = &self.error {
            let what = if self.spiffe_id.is_some() {
                "not an Istio identity"
            } else {
                "invalid SPIFFE ID"
            };
            out.push_str(&format!("{what}: {}\n", error.message));
            out.push_str(&format!("  rule:   {}\n", error.rule));
            out.push_str(&format!("  input:  {}\n", self.input));
            if let Some(caret) = error.index.and_then(|i| caret_line(&self.input, i)) {
                out.push_str(&format!("          {caret}\n"));
            }
        } else {
            out.push_str(if self.istio.is_some() {
                "valid SPIFFE ID (Istio identity)\n"
            } else {
                "valid SPIFFE ID\n"
            });
            out.push_str(&format!("  id:              {}\n", self.input));
        }
        if let Some(parts) = &self.spiffe_id {
            out.push_str(&format!("  trust domain:    {}\n", parts.trust_domain));
            if parts.trust_domain_id {
                out.push_str("  path:            (none: this is the trust domain's own ID)\n");
            } else {
                out.push_str(&format!("  path:            {}\n", parts.path));
                out.push_str(&format!(
                    "  segments ({}):    {}\n",
                    parts.segments.len(),
                    parts.segments.join(", ")
                ));
            }
        }
        if let Some(istio) = &self.istio {
            out.push_str(&format!("  namespace:       {}\n", istio.namespace));
            out.push_str(&format!("  service account: {}\n", istio.service_account));
            out.push_str(&format!("  principal:       {}\n", istio.principal));
            if let Some(e) = &istio.kubernetes_names_error {
                out.push_str(&format!("  warning: {} (rule {})\n", e.message, e.rule));
            }
        }
        out
    }
}

/// `^ byte N` under the offending byte, when the input is printable ASCII
/// (otherwise columns and bytes disagree, and the caret would mislead).
fn caret_line(input: &str, index: usize) -> Option<String> {
    if !input.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) || index > input.len() {
        return None;
    }
    Some(format!("{}^ byte {index}", " ".repeat(index)))
}
