//! `spiffe agent`: runs the local identity agent until SIGINT or SIGTERM.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use spiffe_bundle::SpiffeBundle;
use spiffe_cli::agent::{Agent, AgentConfig, Entry, Federation, Selector, entries};
use spiffe_federation::{BundleEndpoint, EndpointProfile, EndpointUrl};
use spiffe_id::{SpiffeId, TrustDomain};

use crate::args::parse_trust_domain;
use crate::error::CliError;
use crate::input::{read_chain, read_file};
use crate::output::{Outcome, OutputFormat, Report, Status};
use crate::trust_bundles::{BundleFormat, parse_single};

/// The `--help` text on exit statuses of `spiffe agent`.
const AGENT_EXIT_HELP: &str = "\
Exit status:
  0  stopped by SIGINT or SIGTERM; the socket was removed
  2  the configuration is invalid, the socket cannot be bound, or the server failed";

/// `spiffe agent` arguments.
#[derive(Debug, Args)]
#[command(after_help = AGENT_EXIT_HELP)]
pub(crate) struct AgentArgs {
    /// The agent's own trust domain.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: TrustDomain,

    /// The Unix socket to serve the Workload API and SDS on (a stale socket
    /// there is replaced; its directory must exist).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// A federated trust domain, repeatable: `<td>` runs it with its own
    /// in-memory CA (entries may then have IDs in it); `<td>=<file>` takes
    /// its bundle from a file (PEM, DER, SPIFFE bundle or JWKS);
    /// `<td>=https://...` polls its bundle endpoint (https_web profile,
    /// server certificate checked against --bundle-endpoint-roots).
    #[arg(long, value_name = "TD[=SOURCE]")]
    federate_with: Vec<String>,

    /// PEM root certificates that bundle endpoint servers (`<td>=https://`)
    /// must chain to.
    #[arg(long, value_name = "PEM")]
    bundle_endpoint_roots: Option<PathBuf>,

    /// Registration entries (TOML or JSON, see docs/agent.md). Without it,
    /// one entry `spiffe://<td>/ns/default/sa/default` for the user running
    /// the agent, federating with every federated trust domain.
    #[arg(long, value_name = "FILE")]
    entries: Option<PathBuf>,

    /// Lifetime of X509-SVIDs whose entry gives none (`30s`, `5m`, `1h`);
    /// each is renewed at half its lifetime.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    svid_ttl: Duration,

    /// Lifetime of JWT-SVIDs.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_ttl)]
    jwt_ttl: Duration,

    /// The `iss` claim of JWT-SVIDs (for relying parties that match an OIDC
    /// issuer); none by default.
    #[arg(long, value_name = "URL", value_parser = parse_issuer)]
    jwt_issuer: Option<String>,

    /// Give the own trust domain's bundles to callers that match no entry
    /// (they still get no SVID).
    #[arg(long)]
    allow_unauthenticated_verifiers: bool,

    /// Log more: `-v` one line per caller attested, SVID issued and
    /// rotation pushed; `-vv` protocol detail. Logs go to standard error.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn parse_issuer(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err("the issuer must be a non-empty URL without spaces".to_owned());
    }
    Ok(s.to_owned())
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    entries::parse_duration(s).map_err(|e| e.to_string())
}

/// What the agent serves, printed once it listens.
#[derive(Debug, Serialize)]
struct Started {
    socket: String,
    endpoint_socket: String,
    trust_domain: String,
    federated: Vec<FederatedReport>,
    entries: Vec<EntryReport>,
}

#[derive(Debug, Serialize)]
struct FederatedReport {
    trust_domain: String,
    source: String,
}

#[derive(Debug, Serialize)]
struct EntryReport {
    entry_id: String,
    spiffe_id: String,
    selectors: Vec<String>,
    ttl_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    federates_with: Vec<String>,
}

impl Report for Started {
    fn to_text(&self) -> String {
        let mut out = format!(
            "spiffe agent: trust domain {} on {}\n  export SPIFFE_ENDPOINT_SOCKET={}\n",
            self.trust_domain, self.socket, self.endpoint_socket
        );
        for f in &self.federated {
            out.push_str(&format!(
                "  federates with {} ({})\n",
                f.trust_domain, f.source
            ));
        }
        for e in &self.entries {
            out.push_str(&format!(
                "  entry {}: {} for {} (ttl {} s",
                e.entry_id,
                e.spiffe_id,
                e.selectors.join(" + "),
                e.ttl_seconds
            ));
            if let Some(hint) = &e.hint {
                out.push_str(&format!(", hint {hint}"));
            }
            if !e.federates_with.is_empty() {
                out.push_str(&format!(", federates with {}", e.federates_with.join(", ")));
            }
            out.push_str(")\n");
        }
        out.push_str("  stop with Ctrl-C (SIGINT) or SIGTERM\n");
        out
    }
}

fn selector_text(selector: &Selector) -> String {
    match selector {
        Selector::Uid(uid) => format!("unix:uid:{uid}"),
        Selector::Gid(gid) => format!("unix:gid:{gid}"),
        other => format!("{other:?}"),
    }
}

/// The uid this process runs as (the owner of `/proc/self`).
pub(crate) fn own_uid() -> Result<u32, CliError> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(CliError::read("/proc/self"))
}

/// The entry of an agent started without an entries file.
pub(crate) fn default_entry(
    trust_domain: &TrustDomain,
    uid: u32,
    federated: impl IntoIterator<Item = TrustDomain>,
) -> Result<Entry, CliError> {
    let id = SpiffeId::parse(&format!("spiffe://{trust_domain}/ns/default/sa/default"))
        .map_err(|e| CliError::Usage(format!("default SPIFFE ID: {e}")))?;
    Entry::new("default", id, [Selector::Uid(uid)])
        .map(|e| e.with_federates_with(federated))
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Parses one `--federate-with`.
fn federation(arg: &str, roots: Option<&Path>) -> Result<Federation, CliError> {
    let (name, source) = match arg.split_once('=') {
        Some((name, source)) => (name, Some(source)),
        None => (arg, None),
    };
    let td = parse_trust_domain(name)
        .map_err(|e| CliError::Usage(format!("--federate-with {arg:?}: {e}")))?;
    let Some(source) = source else {
        return Ok(Federation::InMemory(td));
    };
    if source.starts_with("https://") || source.starts_with("http://") {
        let url = EndpointUrl::parse(source)
            .map_err(|e| CliError::Usage(format!("--federate-with {arg:?}: {e}")))?;
        let Some(roots) = roots else {
            return Err(CliError::Usage(format!(
                "--federate-with {arg:?}: a bundle endpoint needs --bundle-endpoint-roots (the \
                 PEM roots its server certificate chains to)"
            )));
        };
        let chain = read_chain(roots)?;
        let profile = EndpointProfile::https_web_der(chain.certificates)
            .map_err(|e| CliError::Usage(format!("--bundle-endpoint-roots: {e}")))?;
        return Ok(Federation::Endpoint(BundleEndpoint::new(td, url, profile)));
    }
    let path = Path::new(source);
    let data = read_file(path)?;
    let format = BundleFormat::detect(&data).map_err(|reason| CliError::Certificates {
        path: path.to_owned(),
        reason,
    })?;
    if format == BundleFormat::BundleMap {
        return Err(CliError::Usage(format!(
            "--federate-with {arg:?}: give one trust domain's bundle, not a bundle map"
        )));
    }
    let bundle: SpiffeBundle = parse_single(format, td, &data, path)?;
    Ok(Federation::Bundle(bundle))
}

fn federation_source(f: &Federation) -> String {
    match f {
        Federation::InMemory(_) => "in-memory CA".to_owned(),
        Federation::Bundle(b) => format!(
            "bundle file: {} X.509 and {} JWT authorities",
            b.x509_bundle().authorities().len(),
            b.jwt_bundle().authorities().len()
        ),
        Federation::Endpoint(e) => format!("bundle endpoint {}", e.url().as_str()),
        other => format!("{other:?}"),
    }
}

/// Builds the configuration from the arguments.
fn config(args: &AgentArgs) -> Result<AgentConfig, CliError> {
    let mut config = AgentConfig::new(args.trust_domain.clone())
        .svid_ttl(args.svid_ttl)
        .jwt_ttl(args.jwt_ttl)
        .allow_unauthenticated_verifiers(args.allow_unauthenticated_verifiers);
    if let Some(iss) = &args.jwt_issuer {
        config = config.jwt_issuer(iss.clone());
    }
    for arg in &args.federate_with {
        config = config.federate_with(federation(arg, args.bundle_endpoint_roots.as_deref())?);
    }
    let entries = match &args.entries {
        Some(path) => entries::load(path, &args.trust_domain)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
        None => {
            let federated = config
                .federations()
                .iter()
                .map(|f| f.trust_domain().clone());
            vec![default_entry(&args.trust_domain, own_uid()?, federated)?]
        }
    };
    let config = config.entries(entries);
    config.check().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(config)
}

fn started(agent: &Agent) -> Started {
    let config = agent.config();
    Started {
        socket: agent.socket_path().display().to_string(),
        endpoint_socket: agent.endpoint_socket(),
        trust_domain: config.trust_domain().to_string(),
        federated: config
            .federations()
            .iter()
            .map(|f| FederatedReport {
                trust_domain: f.trust_domain().to_string(),
                source: federation_source(f),
            })
            .collect(),
        entries: config
            .registration_entries()
            .iter()
            .map(|e| EntryReport {
                entry_id: e.entry_id().to_owned(),
                spiffe_id: e.spiffe_id().to_string(),
                selectors: e.selectors().iter().map(selector_text).collect(),
                ttl_seconds: e.ttl().unwrap_or(args_ttl(config)).as_secs(),
                hint: e.hint().map(str::to_owned),
                federates_with: e.federates_with().iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }
}

fn args_ttl(config: &AgentConfig) -> Duration {
    config.default_svid_ttl()
}

/// Sets up logging to standard error: warnings and errors only unless
/// `-v` is given.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // A second initialisation (never done here) would only be refused.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called (inside a Tokio runtime), not when the future is first polled, so
/// a signal that arrives in between is not lost to the default action.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn recv(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            () = recv(term) => {}
            () = recv(int) => {}
        }
    }
}

/// Runs `spiffe agent`.
///
/// # Errors
///
/// [`CliError`] for invalid configuration and server failures (exit 2).
pub(crate) fn run(args: AgentArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    init_logging(args.verbose);
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        // Before the socket exists: a SIGTERM right after it appears must
        // still remove it.
        let stop = stop_signal();
        let agent = Agent::start(config, &args.socket)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        // The banner goes out at once (a supervisor waits for it); the
        // outcome at the end only says the agent stopped.
        let banner = Outcome::new(Status::Ok, format, &started(&agent))?;
        print_now(&banner.stdout);
        agent
            .serve_until(stop)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        Ok(Outcome {
            status: Status::Ok,
            stdout: String::new(),
            stderr: "spiffe agent: stopped, socket removed\n".to_owned(),
        })
    })
}

/// Writes `text` to standard output and flushes it.
pub(crate) fn print_now(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // A closed standard output does not stop the agent.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
