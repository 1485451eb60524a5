//! `spiffe jwt inspect <token-or-file>`: decode, never verify.

use clap::Args;
use rustls_pki_types::UnixTime;
use serde::Serialize;
use serde_json::{Map, Value};
use spiffe_id::SpiffeId;
use spiffe_svid::JwsAlgorithm;

use super::{decode, numeric_date};
use crate::error::CliError;
use crate::input::read_token;
use crate::output::{Check, CheckStatus, Outcome, OutputFormat, Report, Status};
use crate::rfc3339::Timestamp;

/// `spiffe jwt inspect`
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token, a file holding it, or `-` to read it from standard input
    /// (which keeps it out of the shell history).
    token: String,

    /// The instant for the "expired" status, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = crate::args::parse_at)]
    at: Option<UnixTime>,
}

/// The report of `jwt inspect` (JSON shape in docs/cli.md).
#[derive(Debug, Serialize)]
struct InspectReport {
    /// Always `false`: this command never checks the signature.
    signature_verified: bool,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature_bytes: usize,
    /// `sub`, when it is a valid SPIFFE ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<Timestamp>,
    checked_at: Timestamp,
    /// Whether `exp` is before `checked_at` (no leeway); absent without a
    /// usable `exp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<bool>,
    /// No format check failed.
    valid: bool,
    checks: Vec<Check>,
}

pub(crate) fn run(args: &InspectArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let token = read_token(&args.token)?;
    let jwt = decode(&token)?;
    let at = Timestamp::from_unix_time(args.at.unwrap_or_else(UnixTime::now));
    let checks = format_checks(&jwt.header, &jwt.claims);
    let expires_at = numeric_date(&jwt.claims, "exp");
    let report = InspectReport {
        signature_verified: false,
        spiffe_id: jwt
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| SpiffeId::parse(s).ok())
            .map(|id| id.to_string()),
        expires_at,
        issued_at: numeric_date(&jwt.claims, "iat"),
        not_before: numeric_date(&jwt.claims, "nbf"),
        checked_at: at,
        expired: expires_at.map(|exp| exp.0 < at.0),
        valid: checks.iter().all(|c| c.status != CheckStatus::Fail),
        checks,
        header: jwt.header,
        claims: jwt.claims,
        signature_bytes: jwt.signature_len,
    };
    Outcome::new(Status::from_ok(report.valid), format, &report)
}

/// The JWT-SVID rules that can be checked without a key.
fn format_checks(header: &Map<String, Value>, claims: &Map<String, Value>) -> Vec<Check> {
    let mut checks = vec![Check::new(
        "J-01",
        "compact JWS serialization",
        CheckStatus::Pass,
    )];

    const J03: &str = "alg is RS/ES/PS 256/384/512";
    checks.push(match header.get("alg") {
        Some(Value::String(alg)) if JwsAlgorithm::from_name(alg).is_some() => {
            Check::new("J-03", J03, CheckStatus::Pass).detail(alg.as_str())
        }
        Some(Value::String(alg)) => {
            Check::new("J-03", J03, CheckStatus::Fail).detail(format!("{alg:?} is not allowed"))
        }
        Some(_) => Check::new("J-03", J03, CheckStatus::Fail).detail("not a string"),
        None => Check::new("J-03", J03, CheckStatus::Fail).detail("missing"),
    });

    const J02: &str = "header has only alg, kid and typ";
    let extra: Vec<&str> = header
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "alg" | "kid" | "typ"))
        .collect();
    checks.push(if extra.is_empty() {
        Check::new("J-02", J02, CheckStatus::Pass)
    } else {
        Check::new("J-02", J02, CheckStatus::Fail).detail(extra.join(", "))
    });

    const J05: &str = "typ, if present, is JWT or JOSE";
    checks.push(match header.get("typ") {
        None => Check::new("J-05", J05, CheckStatus::Pass).detail("absent"),
        Some(Value::String(t)) if t == "JWT" || t == "JOSE" => {
            Check::new("J-05", J05, CheckStatus::Pass).detail(t.as_str())
        }
        Some(other) => Check::new("J-05", J05, CheckStatus::Fail).detail(other.to_string()),
    });

    const J04: &str = "kid is present";
    checks.push(match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() => {
            Check::new("J-04", J04, CheckStatus::Pass).detail(k.as_str())
        }
        // Optional in the spec, required by `jwt verify` (as by go-spiffe).
        _ => Check::new("J-04", J04, CheckStatus::Warn)
            .detail("missing: verifiers here and in go-spiffe require it"),
    });

    const J06: &str = "sub is a SPIFFE ID";
    checks.push(match claims.get("sub") {
        Some(Value::String(sub)) => match SpiffeId::parse(sub) {
            Ok(id) => Check::new("J-06", J06, CheckStatus::Pass).detail(id.as_str()),
            Err(e) => Check::new("J-06", J06, CheckStatus::Fail)
                .detail(format!("{sub:?}: {e} (rule {})", e.rule())),
        },
        Some(_) => Check::new("J-06", J06, CheckStatus::Fail).detail("not a string"),
        None => Check::new("J-06", J06, CheckStatus::Fail).detail("missing"),
    });

    const J07: &str = "aud is present (non-empty strings)";
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => !a.is_empty(),
        Some(Value::Array(items)) => items
            .iter()
            .all(|v| v.as_str().is_some_and(|a| !a.is_empty())),
        _ => false,
    };
    checks.push(match claims.get("aud") {
        None => Check::new("J-07", J07, CheckStatus::Fail).detail("missing"),
        Some(aud) => Check::new("J-07", J07, CheckStatus::from_ok(aud_ok)).detail(aud.to_string()),
    });

    const J10: &str = "exp is present (a NumericDate)";
    checks.push(match (claims.get("exp"), numeric_date(claims, "exp")) {
        (None, _) => Check::new("J-10", J10, CheckStatus::Fail).detail("missing"),
        (Some(_), Some(t)) => Check::new("J-10", J10, CheckStatus::Pass).detail(t.to_string()),
        (Some(v), None) => {
            Check::new("J-10", J10, CheckStatus::Fail).detail(format!("{v} is not a NumericDate"))
        }
    });
    checks
}

impl Report for InspectReport {
    fn to_text(&self) -> String {
        let mut out =
            String::from("JWT (signature NOT verified; use `spiffe jwt verify` to validate it)\n");
        let pretty = |map: &Map<String, Value>| {
            serde_json::to_string_pretty(map)
                .unwrap_or_default()
                .replace('\n', "\n  ")
        };
        out.push_str(&format!("header:\n  {}\n", pretty(&self.header)));
        out.push_str(&format!("claims:\n  {}\n", pretty(&self.claims)));
        out.push_str(&format!("signature: {} bytes\n", self.signature_bytes));
        if let Some(id) = &self.spiffe_id {
            out.push_str(&format!("SPIFFE ID:  {id}\n"));
        }
        for (label, t) in [
            ("issued at: ", self.issued_at),
            ("not before:", self.not_before),
            ("expires at:", self.expires_at),
        ] {
            if let Some(t) = t {
                out.push_str(&format!("{label} {t}\n"));
            }
        }
        match self.expired {
            Some(true) => out.push_str(&format!("status:     EXPIRED at {}\n", self.checked_at)),
            Some(false) => {
                out.push_str(&format!("status:     not expired at {}\n", self.checked_at))
            }
            None => {}
        }
        out.push_str("JWT-SVID format:\n");
        for check in &self.checks {
            out.push_str(&check.to_text_line());
        }
        out
    }
}
