//! `spiffe sds fetch`: what an Envoy would receive from an SDS v3 server,
//! in the shape of Envoy's secrets config dump.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use rustls_pki_types::UnixTime;
use serde::Serialize;
use serde_json::{Value, json};
use spiffe_sds::client::{ClientConfig, ClientState, ReceivedSecret, SdsClient};

use crate::error::CliError;
use crate::output::{Outcome, OutputFormat, Report, Status};
use crate::pem;
use crate::rfc3339::Timestamp;

/// The `--help` text on exit statuses of `spiffe sds fetch`.
const SDS_EXIT_HELP: &str = "\
Exit status:
  0  every name was received (a response rejected before that is reported, not fatal)
  1  some names did not arrive before --timeout: they are listed, with the last
     stream error or rejection (a server that cannot be reached ends this way)
  2  usage error, or no file at the socket path";

/// What Envoy prints in place of a private key.
const REDACTED: &str = "[redacted]";

/// `spiffe sds`.
#[derive(Debug, Subcommand)]
pub(crate) enum SdsCommand {
    /// Subscribe to secrets as an Envoy would and print what arrives.
    #[command(after_help = SDS_EXIT_HELP)]
    Fetch(FetchArgs),
}

/// `spiffe sds fetch`.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// Resource names: `default`, `ROOTCA`, `ALL`, a trust domain
    /// (`spiffe://example.org`) or a SPIFFE ID.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,

    /// The SDS server's Unix socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// How long to wait for every name (`10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::fetch::parse_timeout)]
    timeout: Duration,

    /// The node ID sent to the server.
    #[arg(long, value_name = "ID", default_value = "spiffe-cli")]
    node_id: String,
}

fn inline(text: &str) -> Value {
    json!({ "inline_bytes": STANDARD.encode(text) })
}

/// One secret in Envoy's `envoy.extensions.transport_sockets.tls.v3.Secret`
/// JSON form.
fn secret_json(name: &str, secret: &ReceivedSecret) -> Value {
    let mut out = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": name,
    });
    let body = match secret {
        ReceivedSecret::Certificate(svid) => (
            "tls_certificate",
            json!({
                "certificate_chain": inline(&pem::certificates(svid.chain())),
                "private_key": inline(REDACTED),
            }),
        ),
        ReceivedSecret::SpiffeBundles(bundles) => (
            "validation_context",
            json!({
                "custom_validator_config": {
                    "name": "envoy.tls.cert_validator.spiffe",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig",
                        "trust_domains": bundles.iter().map(|b| json!({
                            "name": b.trust_domain().to_string(),
                            "trust_bundle": inline(&b.to_pem()),
                        })).collect::<Vec<_>>(),
                    },
                },
            }),
        ),
        ReceivedSecret::TrustedCa(certs) => (
            "validation_context",
            json!({ "trusted_ca": inline(&pem::certificates(certs)) }),
        ),
        _ => ("unknown", Value::Null),
    };
    if let Some(object) = out.as_object_mut() {
        object.insert(body.0.to_owned(), body.1);
    }
    out
}

/// The report: Envoy's `SecretsConfigDump` shape, plus what is missing.
#[derive(Debug, Serialize)]
struct SdsReport {
    dynamic_active_secrets: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_rejection: Option<String>,
    #[serde(skip)]
    text: String,
}

impl Report for SdsReport {
    fn to_text(&self) -> String {
        self.text.clone()
    }
}

fn describe(name: &str, secret: &ReceivedSecret, version: &str) -> String {
    match secret {
        ReceivedSecret::Certificate(svid) => format!(
            "{name} (version {version}): certificate {}, {} in the chain, not after {}\n",
            svid.spiffe_id(),
            svid.chain().len(),
            Timestamp::from_unix_time(svid.expires_at())
        ),
        ReceivedSecret::SpiffeBundles(bundles) => {
            let domains: Vec<String> = bundles
                .iter()
                .map(|b| {
                    format!(
                        "{} ({} CA{})",
                        b.trust_domain(),
                        b.len(),
                        if b.len() == 1 { "" } else { "s" }
                    )
                })
                .collect();
            format!(
                "{name} (version {version}): validation context, SPIFFE validator for {}\n",
                domains.join(", ")
            )
        }
        ReceivedSecret::TrustedCa(certs) => format!(
            "{name} (version {version}): validation context, trusted_ca with {} certificate{}\n",
            certs.len(),
            if certs.len() == 1 { "" } else { "s" }
        ),
        _ => format!("{name} (version {version}): a secret of another kind\n"),
    }
}

fn report(names: &[String], state: &ClientState) -> SdsReport {
    let version = state.version.clone().unwrap_or_default();
    let now = Timestamp::from_unix_time(UnixTime::now()).to_string();
    let mut active = Vec::new();
    let mut missing = Vec::new();
    let mut text = String::new();
    for name in names {
        match state.secrets.get(name) {
            Some(secret) => {
                active.push(json!({
                    "name": name,
                    "version_info": version,
                    "last_updated": now,
                    "secret": secret_json(name, secret),
                }));
                text.push_str(&describe(name, secret, &version));
            }
            None => {
                missing.push(name.clone());
                text.push_str(&format!("{name}: not received\n"));
            }
        }
    }
    if let Some(reason) = &state.last_rejection {
        text.push_str(&format!("last rejected response: {reason}\n"));
    }
    SdsReport {
        dynamic_active_secrets: active,
        missing,
        last_rejection: state.last_rejection.clone(),
        text,
    }
}

/// Runs `spiffe sds fetch`.
///
/// # Errors
///
/// [`CliError`] when the client cannot be started (exit 2).
pub(crate) fn run(command: SdsCommand, format: OutputFormat) -> Result<Outcome, CliError> {
    let SdsCommand::Fetch(args) = command;
    if !args.socket.exists() {
        return Err(CliError::Runtime(format!(
            "no SDS server socket at {}",
            args.socket.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let config = ClientConfig::new(args.node_id.clone(), args.names.iter().cloned());
        let client = SdsClient::connect_unix(&args.socket, config)
            .map_err(|e| CliError::Runtime(format!("SDS client: {e}")))?;
        let mut state = client.watch();
        let wait = async {
            loop {
                if state
                    .borrow_and_update()
                    .has_all(args.names.iter().map(String::as_str))
                {
                    return true;
                }
                if state.changed().await.is_err() {
                    return false;
                }
            }
        };
        let complete = tokio::time::timeout(args.timeout, wait)
            .await
            .unwrap_or(false);
        let current = client.current();
        let report = report(&args.names, &current);
        let mut outcome = Outcome::new(Status::from_ok(complete), format, &report)?;
        if !complete {
            outcome.stderr = match (&current.last_rejection, &current.last_stream_error) {
                (Some(rejected), Some(ended)) => format!(
                    "spiffe sds fetch: not every name arrived; last rejected response: \
                     {rejected}; last stream error: {ended}\n"
                ),
                (Some(e), None) => {
                    format!(
                        "spiffe sds fetch: not every name arrived; last rejected response: {e}\n"
                    )
                }
                (None, Some(e)) => {
                    format!("spiffe sds fetch: not every name arrived; last stream error: {e}\n")
                }
                (None, None) => format!(
                    "spiffe sds fetch: not every name arrived within {} s\n",
                    args.timeout.as_secs_f64()
                ),
            };
        }
        Ok(outcome)
    })
}
