//! `spiffe jwt inspect|verify`: JWT-SVIDs.

mod inspect;
mod verify;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Subcommand;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::output::{EXIT_STATUS_HELP, Outcome, OutputFormat};
use crate::rfc3339::Timestamp;

/// `spiffe jwt ...`
#[derive(Debug, Subcommand)]
pub(crate) enum JwtCommand {
    /// Decode a JWT-SVID and show its header and claims WITHOUT checking the
    /// signature, with the JWT-SVID format checks. Exit status 1 when a
    /// format check fails (expiry is shown, not checked).
    #[command(after_help = EXIT_STATUS_HELP)]
    Inspect(inspect::InspectArgs),
    /// Validate a JWT-SVID: signature with the JWT bundle of its subject's
    /// trust domain, audience, expiry. Exit status 0 when valid, 1 when not,
    /// with the reason.
    #[command(after_help = EXIT_STATUS_HELP)]
    Verify(verify::VerifyArgs),
}

pub(crate) fn run(command: JwtCommand, format: OutputFormat) -> Result<Outcome, CliError> {
    match command {
        JwtCommand::Inspect(args) => inspect::run(&args, format),
        JwtCommand::Verify(args) => verify::run(&args, format),
    }
}

/// A compact JWS split and decoded, nothing checked.
#[derive(Debug)]
pub(crate) struct DecodedJwt {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) signature_len: usize,
}

/// Splits a compact JWS and decodes its header and claims as JSON objects.
///
/// # Errors
///
/// [`CliError::Token`] when the token is not three base64url parts whose
/// first two are JSON objects.
pub(crate) fn decode(token: &str) -> Result<DecodedJwt, CliError> {
    let bad = |reason: String| CliError::Token { reason };
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(bad(match parts.len() {
            5 => "five parts: a JWE, which is never a JWT-SVID (rule J-01)".to_owned(),
            n => format!("{n} dot-separated parts, a compact JWS has 3 (rule J-01)"),
        }));
    };
    let object = |part: &'static str, b64: &str| -> Result<Map<String, Value>, CliError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| bad(format!("{part} is not base64url without padding: {e}")))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(bad(format!("{part} is not a JSON object"))),
            Err(e) => Err(bad(format!("{part} is not JSON: {e}"))),
        }
    };
    let signature_len = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| bad(format!("signature is not base64url without padding: {e}")))?
        .len();
    Ok(DecodedJwt {
        header: object("header", header)?,
        claims: object("claims", claims)?,
        signature_len,
    })
}

/// A NumericDate claim as a timestamp, when it is a number in range.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<Timestamp> {
    let n = claims.get(name)?.as_f64()?;
    (0.0..=253_402_300_799.0)
        .contains(&n)
        .then_some(Timestamp(n as i64))
}
