//! `spiffe jwt verify --bundle ... --audience ... <token>`.

use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use clap::builder::NonEmptyStringValueParser;
use rustls_pki_types::UnixTime;
use serde::Serialize;
use serde_json::{Map, Value};
use spiffe_id::SpiffeId;
use spiffe_svid::{JwtSvidError, JwtValidationOptions};

use super::decode;
use crate::args::{TrustArgs, parse_at};
use crate::error::CliError;
use crate::input::read_token;
use crate::output::{Outcome, OutputFormat, Report, Status};
use crate::rfc3339::Timestamp;
use crate::trust_bundles::{self, LoadedBundle};

/// `spiffe jwt verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    trust: TrustArgs,

    /// An audience this validator answers to; repeat it for several. The
    /// token's `aud` must name at least one of them.
    #[arg(long = "audience", value_name = "AUD", required = true, value_parser = NonEmptyStringValueParser::new())]
    audiences: Vec<String>,

    /// Validate as of this instant, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    at: Option<UnixTime>,

    /// Clock-skew leeway for `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    leeway: u64,

    /// The token, a file holding it, or `-` to read it from standard input
    /// (which keeps it out of the shell history).
    token: String,
}

/// The report of `jwt verify` (JSON shape in docs/cli.md).
#[derive(Debug, Serialize)]
struct VerifyReport {
    valid: bool,
    verified_at: Timestamp,
    leeway_seconds: u64,
    expected_audiences: Vec<String>,
    /// The verified subject; when validation failed, the `sub` the token
    /// claims (if it is a SPIFFE ID), for context only.
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    /// All claims of a valid token.
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JwtErrorReport>,
    bundles: Vec<LoadedBundle>,
}

/// Why a JWT-SVID was rejected.
#[derive(Debug, Serialize)]
struct JwtErrorReport {
    /// A stable snake_case name (`expired`, `audience_mismatch`, ...).
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    message: String,
}

pub(crate) fn run(args: &VerifyArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let bundles = trust_bundles::load(&args.trust.bundles, args.trust.trust_domain.as_ref())?;
    let token = read_token(&args.token)?;
    let at = args.at.unwrap_or_else(UnixTime::now);
    let audiences: Vec<&str> = args.audiences.iter().map(String::as_str).collect();
    let options = JwtValidationOptions::new().with_leeway(Duration::from_secs(args.leeway));

    let mut report = VerifyReport {
        valid: false,
        verified_at: Timestamp::from_unix_time(at),
        leeway_seconds: args.leeway,
        expected_audiences: args.audiences.clone(),
        spiffe_id: None,
        trust_domain: None,
        audience: None,
        expires_at: None,
        algorithm: None,
        key_id: None,
        claims: None,
        error: None,
        bundles: bundles.loaded,
    };
    match options.parse_and_validate(&token, &bundles.map, &audiences, at) {
        Ok(svid) => {
            report.valid = true;
            report.spiffe_id = Some(svid.spiffe_id().to_string());
            report.trust_domain = Some(svid.spiffe_id().trust_domain_name().to_owned());
            report.audience = Some(svid.audience().to_vec());
            report.expires_at = svid
                .expiry()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| Timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
            report.algorithm = Some(svid.algorithm().name());
            report.key_id = svid.key_id().map(str::to_owned);
            report.claims = Some(svid.claims().clone());
        }
        Err(e) => {
            // Context from the unverified claims, labelled as claimed.
            if let Ok(jwt) = decode(&token) {
                let claimed = jwt
                    .claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .and_then(|s| SpiffeId::parse(s).ok());
                report.trust_domain = claimed.as_ref().map(|id| id.trust_domain_name().to_owned());
                report.spiffe_id = claimed.map(|id| id.to_string());
            }
            report.error = Some(error_report(&e, at, args.leeway));
        }
    }
    Outcome::new(Status::from_ok(report.valid), format, &report)
}

fn error_report(error: &JwtSvidError, at: UnixTime, leeway: u64) -> JwtErrorReport {
    let (kind, rule) = classify(error);
    let at = Timestamp::from_unix_time(at);
    let when = |t: &std::time::SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| Timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
            .unwrap_or(Timestamp(0))
    };
    // The library's messages leave the instants out; people want them.
    let message = match error {
        JwtSvidError::Expired { expired_at } => format!(
            "token expired at {} (verification time {at}, leeway {leeway} s)",
            when(expired_at)
        ),
        JwtSvidError::NotYetValid { not_before } => format!(
            "token is not valid before {} (verification time {at}, leeway {leeway} s)",
            when(not_before)
        ),
        JwtSvidError::IssuedInTheFuture { issued_at } => format!(
            "token was issued in the future, at {} (verification time {at}, leeway {leeway} s)",
            when(issued_at)
        ),
        other => other.to_string(),
    };
    JwtErrorReport {
        kind,
        rule,
        message,
    }
}

/// The stable name and the checklist rule of each rejection.
fn classify(error: &JwtSvidError) -> (&'static str, Option<&'static str>) {
    use JwtSvidError as E;
    match error {
        E::NoExpectedAudience => ("no_expected_audience", Some("J-07")),
        E::EmptyExpectedAudience => ("empty_expected_audience", Some("J-07")),
        E::TooLarge { .. } => ("too_large", None),
        E::JsonSerialization => ("json_serialization", Some("J-01")),
        E::Jwe => ("jwe", Some("J-01")),
        E::Malformed { .. } => ("malformed", Some("J-01")),
        E::Base64 { .. } => ("base64", Some("J-01")),
        E::MalformedHeader { .. } => ("malformed_header", None),
        E::MissingAlgorithm => ("missing_algorithm", Some("J-03")),
        E::UnsupportedAlgorithm { .. } => ("unsupported_algorithm", Some("J-03")),
        E::ForbiddenHeader { .. } => ("forbidden_header", Some("J-02")),
        E::InvalidType { .. } => ("invalid_type", Some("J-05")),
        E::MissingKeyId => ("missing_key_id", Some("J-04")),
        E::MalformedClaims { .. } => ("malformed_claims", None),
        E::MissingSubject => ("missing_subject", Some("J-06")),
        E::InvalidSubject { .. } => ("invalid_subject", Some("J-06")),
        E::MissingAudience => ("missing_audience", Some("J-07")),
        E::InvalidAudience { .. } => ("invalid_audience", Some("J-07")),
        E::AudienceMismatch { .. } => ("audience_mismatch", Some("J-08")),
        E::MissingExpiry => ("missing_expiry", Some("J-10")),
        E::InvalidNumericDate { claim: "exp" } => ("invalid_numeric_date", Some("J-10")),
        E::InvalidNumericDate { .. } => ("invalid_numeric_date", None),
        E::Expired { .. } => ("expired", Some("J-11")),
        E::NotYetValid { .. } => ("not_yet_valid", None),
        E::IssuedInTheFuture { .. } => ("issued_in_the_future", None),
        E::NoBundle { .. } => ("no_bundle", Some("J-18")),
        E::NoJwtAuthorities { .. } => ("no_jwt_authorities", Some("J-17")),
        E::UnknownKeyId { .. } => ("unknown_key_id", Some("J-18")),
        E::KeyAlgorithmMismatch { .. } => ("key_algorithm_mismatch", None),
        E::JwkAlgorithmMismatch { .. } => ("jwk_algorithm_mismatch", None),
        E::NoUsableKey { .. } => ("no_usable_key", Some("J-18")),
        E::NoCryptoProvider => ("no_crypto_provider", None),
        E::AlgorithmUnavailable { .. } => ("algorithm_unavailable", None),
        E::SignatureLength { .. } => ("signature_length", Some("J-12")),
        E::BadSignature => ("bad_signature", Some("J-12")),
        _ => ("other", None),
    }
}

impl Report for VerifyReport {
    fn to_text(&self) -> String {
        let mut out = String::new();
        match &self.error {
            None => out.push_str("valid JWT-SVID\n"),
            Some(e) => {
                out.push_str(&format!("invalid JWT-SVID: {}\n", e.message));
                if let Some(rule) = e.rule {
                    out.push_str(&format!("  rule:         {rule}\n"));
                }
                out.push_str(&format!("  reason:       {}\n", e.kind));
            }
        }
        if let Some(id) = &self.spiffe_id {
            let label = if self.valid {
                "SPIFFE ID:   "
            } else {
                "token claims:"
            };
            out.push_str(&format!("  {label} {id}\n"));
        }
        if let Some(aud) = &self.audience {
            out.push_str(&format!("  audience:     {}\n", aud.join(", ")));
        }
        out.push_str(&format!(
            "  expected:     {}\n",
            self.expected_audiences.join(", ")
        ));
        if let Some(t) = self.expires_at {
            out.push_str(&format!("  expires at:   {t}\n"));
        }
        if let Some(alg) = self.algorithm {
            let kid = self.key_id.as_deref().unwrap_or("(none)");
            out.push_str(&format!("  signed with:  {alg}, key {kid}\n"));
        }
        out.push_str(&format!(
            "  verified at:  {} (leeway {} s)\n",
            self.verified_at, self.leeway_seconds
        ));
        out.push_str("  bundles:\n");
        for b in &self.bundles {
            out.push_str(&format!(
                "    {}: {} X.509, {} JWT authorities from {} ({})\n",
                b.trust_domain,
                b.x509_authorities,
                b.jwt_authorities,
                b.path,
                b.format.name()
            ));
        }
        out
    }
}
