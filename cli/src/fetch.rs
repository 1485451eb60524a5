//! `spiffe fetch x509|jwt|bundles`: what a workload gets from any SPIFFE
//! Workload API (our agent, SPIRE, Istio's pilot-agent), like
//! `spire-agent api fetch`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde::Serialize;
use spiffe_id::SpiffeId;
use spiffe_workload_api::{
    ClientError, EndpointAddress, JwtBundles, WorkloadApiClient, X509Bundles, X509Context,
};

use crate::agent_cmd::{print_now, stop_signal};
use crate::error::CliError;
use crate::output::{Outcome, OutputFormat, Report, Status};
use crate::pem;
use crate::rfc3339::Timestamp;

/// The `--help` text on exit statuses of the fetch commands.
pub(crate) const FETCH_EXIT_HELP: &str = "\
Exit status:
  0  fetched (with --watch: the stream ended or SIGINT/SIGTERM arrived)
  1  the server answered with an error (PermissionDenied: no identity for this caller), or a timeout
  2  usage error, or the server cannot be reached";

/// `spiffe fetch`.
#[derive(Debug, Subcommand)]
pub(crate) enum FetchCommand {
    /// The caller's X509-SVIDs and the X.509 bundles.
    #[command(after_help = FETCH_EXIT_HELP)]
    X509(X509Args),
    /// JWT-SVIDs for an audience, and the JWT bundles.
    #[command(after_help = FETCH_EXIT_HELP)]
    Jwt(JwtArgs),
    /// The X.509 and JWT bundles of every trust domain.
    #[command(after_help = FETCH_EXIT_HELP)]
    Bundles(BundlesArgs),
}

/// Where the Workload API is, and how long to wait.
#[derive(Debug, Args)]
pub(crate) struct Endpoint {
    /// The Workload API: a socket path, or a `unix://` or `tcp://` address.
    /// Default: the SPIFFE_ENDPOINT_SOCKET environment variable.
    #[arg(long, value_name = "PATH|ADDRESS")]
    socket: Option<String>,

    /// How long to wait for the server's answer (`10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    timeout: Duration,
}

/// A positive duration (`10s`, `1m`) for `--timeout`.
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    spiffe_cli::agent::entries::parse_duration(s)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            if d.is_zero() {
                Err("the timeout must be positive".to_owned())
            } else {
                Ok(d)
            }
        })
}

/// `spiffe fetch x509`.
#[derive(Debug, Args)]
pub(crate) struct X509Args {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Write `svid.N.pem` (chain), `svid.N.key` (PKCS#8, mode 0600),
    /// `bundle.N.pem` (the bundle of SVID N's trust domain) and
    /// `federated_bundle.N.M.pem` (the others) into this directory.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// Keep the stream open and report every update.
    #[arg(long)]
    watch: bool,
}

/// `spiffe fetch jwt`.
#[derive(Debug, Args)]
pub(crate) struct JwtArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// An audience of the tokens; repeat for several.
    #[arg(long, value_name = "AUDIENCE", required = true)]
    audience: Vec<String>,
    /// Only the token of this SPIFFE ID (default: one per identity).
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    spiffe_id: Option<SpiffeId>,
}

fn parse_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::parse(s).map_err(|e| format!("{e} (rule {})", e.rule()))
}

/// `spiffe fetch bundles`.
#[derive(Debug, Args)]
pub(crate) struct BundlesArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Keep the streams open and report every update.
    #[arg(long)]
    watch: bool,
}

/// The address of `--socket`, or of SPIFFE_ENDPOINT_SOCKET.
fn address(socket: Option<&str>) -> Result<EndpointAddress, CliError> {
    let Some(socket) = socket else {
        return EndpointAddress::from_env().map_err(|e| {
            CliError::Usage(format!(
                "no Workload API address: give --socket or set SPIFFE_ENDPOINT_SOCKET ({e})"
            ))
        });
    };
    let text = if socket.contains("://") || socket.starts_with("unix:") {
        socket.to_owned()
    } else {
        let absolute = std::path::absolute(socket)
            .map_err(|e| CliError::Usage(format!("--socket {socket:?}: {e}")))?;
        format!("unix://{}", absolute.display())
    };
    EndpointAddress::parse(&text).map_err(|e| CliError::Usage(format!("--socket {socket:?}: {e}")))
}

async fn connect(endpoint: &Endpoint) -> Result<WorkloadApiClient, CliError> {
    let address = address(endpoint.socket.as_deref())?;
    let connect = WorkloadApiClient::connect(&address);
    match tokio::time::timeout(endpoint.timeout, connect).await {
        Ok(Ok(client)) => Ok(client.with_timeout(endpoint.timeout)),
        Ok(Err(e)) => Err(CliError::Runtime(e.to_string())),
        Err(_) => Err(CliError::Runtime(format!(
            "cannot reach the Workload API at {address}: no connection within {} s",
            endpoint.timeout.as_secs_f64()
        ))),
    }
}

/// The report of an answer that is an error (exit status 1).
#[derive(Debug, Serialize)]
struct Refused {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_code: Option<String>,
}

impl Report for Refused {
    fn to_text(&self) -> String {
        format!("the Workload API refused: {}\n", self.error)
    }
}

fn refused(e: &ClientError, format: OutputFormat) -> Result<Outcome, CliError> {
    Outcome::new(
        Status::Invalid,
        format,
        &Refused {
            error: e.to_string(),
            grpc_code: e.grpc_code().map(|c| format!("{c:?}")),
        },
    )
}

/// When the connection itself failed, the error is a usage-level one.
fn answer_or_unreachable(e: ClientError, format: OutputFormat) -> Result<Outcome, CliError> {
    match e {
        ClientError::Connect { .. } => Err(CliError::Runtime(format!(
            "cannot reach the Workload API: {e}"
        ))),
        other => refused(&other, format),
    }
}

fn expires(t: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let when = Timestamp(i64::try_from(t).unwrap_or(i64::MAX));
    if t >= now {
        format!("{when} (in {} s)", t - now)
    } else {
        format!("{when} (expired {} s ago)", now - t)
    }
}

#[derive(Debug, Serialize)]
struct SvidReport {
    spiffe_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    default: bool,
    not_after: String,
    chain_length: usize,
}

#[derive(Clone, Debug, Serialize)]
struct X509BundleReport {
    trust_domain: String,
    x509_authorities: usize,
}

#[derive(Clone, Debug, Serialize)]
struct JwtBundleReport {
    trust_domain: String,
    jwt_authorities: usize,
}

#[derive(Debug, Serialize)]
struct X509Report {
    svids: Vec<SvidReport>,
    bundles: Vec<X509BundleReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    written: Vec<String>,
}

fn x509_bundle_reports(bundles: &X509Bundles) -> Vec<X509BundleReport> {
    bundles
        .iter()
        .map(|b| X509BundleReport {
            trust_domain: b.trust_domain().to_string(),
            x509_authorities: b.len(),
        })
        .collect()
}

fn jwt_bundle_reports(bundles: &JwtBundles) -> Vec<JwtBundleReport> {
    bundles
        .iter()
        .map(|b| JwtBundleReport {
            trust_domain: b.trust_domain().to_string(),
            jwt_authorities: b.len(),
        })
        .collect()
}

fn bundles_text(x509: &[X509BundleReport], jwt: &[JwtBundleReport]) -> String {
    let mut out = String::new();
    for b in x509 {
        out.push_str(&format!(
            "X.509 bundle {}: {} authorit{}\n",
            b.trust_domain,
            b.x509_authorities,
            if b.x509_authorities == 1 { "y" } else { "ies" }
        ));
    }
    for b in jwt {
        out.push_str(&format!(
            "JWT bundle {}: {} key{}\n",
            b.trust_domain,
            b.jwt_authorities,
            if b.jwt_authorities == 1 { "" } else { "s" }
        ));
    }
    out
}

impl Report for X509Report {
    fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, svid) in self.svids.iter().enumerate() {
            out.push_str(&format!(
                "SVID {n}{}: {}\n  hint: {}\n  expires: {}\n  chain: {} certificate{}\n",
                if svid.default { " (default)" } else { "" },
                svid.spiffe_id,
                svid.hint.as_deref().unwrap_or("-"),
                svid.not_after,
                svid.chain_length,
                if svid.chain_length == 1 { "" } else { "s" }
            ));
        }
        out.push_str(&bundles_text(&self.bundles, &[]));
        for path in &self.written {
            out.push_str(&format!("wrote {path}\n"));
        }
        out
    }
}

fn x509_report(context: &X509Context) -> X509Report {
    X509Report {
        svids: context
            .svids()
            .iter()
            .enumerate()
            .map(|(n, s)| SvidReport {
                spiffe_id: s.svid().spiffe_id().to_string(),
                hint: s.hint().map(str::to_owned),
                default: n == 0,
                not_after: expires(s.svid().expires_at().as_secs()),
                chain_length: s.svid().chain().len(),
            })
            .collect(),
        bundles: x509_bundle_reports(context.bundles()),
        written: Vec::new(),
    }
}

/// Writes `data` to a new hidden file beside `name` in `dir`, created with
/// `mode` (a key is never readable by others, not even for a moment);
/// returns its path, for [`std::fs::rename`] over `name`.
fn stage_file(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<PathBuf, CliError> {
    let path = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |e: std::io::Error| CliError::Runtime(format!("cannot write {}: {e}", path.display()));
    // Left over from a run that was killed: ours to replace.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(io)?;
    if let Err(e) = file.write_all(data) {
        let _ = std::fs::remove_file(&path);
        return Err(io(e));
    }
    Ok(path)
}

/// The process that staged `name`, if it is a staged file
/// (`.<written name>.<pid>.tmp`).
fn staged_by(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (written, pid) = rest.rsplit_once('.')?;
    if !is_written_name(written) || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name` is one of the files `--write` produces: `svid.N.pem`,
/// `svid.N.key`, `bundle.N.pem` or `federated_bundle.N.M.pem`.
fn is_written_name(name: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["svid", n, "pem" | "key"] | ["bundle", n, "pem"] => number(n),
        ["federated_bundle", n, m, "pem"] => number(n) && number(m),
        _ => false,
    }
}

/// Writes the files of `--write`; returns their paths. Each file replaces
/// the old one in a single rename, so a reader sees the old file or the new
/// one, never a partial or absent file; every file is staged before the
/// first rename, and each key is renamed before its certificates. Files of
/// an earlier write that this one does not produce (an SVID or federated
/// trust domain that went away) are removed, so nothing stale stays
/// trusted; other files in the directory are left alone.
fn write_context(dir: &Path, context: &X509Context) -> Result<Vec<String>, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--write {}: not a directory",
            dir.display()
        )));
    }
    let mut files: Vec<(String, String, u32)> = Vec::new();
    for (n, hinted) in context.svids().iter().enumerate() {
        let svid = hinted.svid();
        let key = pem::encode("PRIVATE KEY", svid.private_key().secret_der());
        files.push((format!("svid.{n}.key"), key, 0o600));
        files.push((
            format!("svid.{n}.pem"),
            pem::certificates(svid.chain()),
            0o644,
        ));
        let own_td = svid.spiffe_id().trust_domain();
        if let Some(bundle) = context.bundles().get(&own_td) {
            files.push((format!("bundle.{n}.pem"), bundle.to_pem(), 0o644));
        }
        let federated = context
            .bundles()
            .iter()
            .filter(|b| *b.trust_domain() != own_td);
        for (m, bundle) in federated.enumerate() {
            files.push((
                format!("federated_bundle.{n}.{m}.pem"),
                bundle.to_pem(),
                0o644,
            ));
        }
    }
    let mut staged = Vec::with_capacity(files.len());
    for (name, data, mode) in &files {
        match stage_file(dir, name, data.as_bytes(), *mode) {
            Ok(path) => staged.push(path),
            Err(e) => {
                for path in &staged {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (i, ((name, _, _), from)) in files.iter().zip(&staged).enumerate() {
        let to = dir.join(name);
        if let Err(e) = std::fs::rename(from, &to) {
            for path in staged.get(i..).unwrap_or_default() {
                let _ = std::fs::remove_file(path);
            }
            return Err(CliError::Runtime(format!(
                "cannot write {}: {e}",
                to.display()
            )));
        }
        written.push(to.display().to_string());
    }
    let listing = std::fs::read_dir(dir)
        .map_err(|e| CliError::Runtime(format!("cannot list {}: {e}", dir.display())))?;
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let stale = if is_written_name(name) {
            !files.iter().any(|(written, _, _)| written == name)
        } else {
            // Staged by a run that was killed before its renames.
            staged_by(name).is_some_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            })
        };
        if stale {
            std::fs::remove_file(entry.path()).map_err(|e| {
                CliError::Runtime(format!(
                    "cannot remove the stale {}: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    Ok(written)
}

/// One rendered report for `--watch`: a text block or one JSON line.
fn render_line<R: Report>(report: &R, format: OutputFormat) -> Result<String, CliError> {
    match format {
        OutputFormat::Text => Ok(format!("{}\n", report.to_text())),
        OutputFormat::Json => {
            let mut line =
                serde_json::to_string(report).map_err(|e| CliError::Output(e.to_string()))?;
            line.push('\n');
            Ok(line)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Runs `spiffe fetch`.
///
/// # Errors
///
/// [`CliError`] for usage errors and an unreachable server (exit 2).
pub(crate) fn run(command: FetchCommand, format: OutputFormat) -> Result<Outcome, CliError> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        match command {
            FetchCommand::X509(args) => x509(args, format).await,
            FetchCommand::Jwt(args) => jwt(args, format).await,
            FetchCommand::Bundles(args) => bundles(args, format).await,
        }
    })
}

async fn x509(args: X509Args, format: OutputFormat) -> Result<Outcome, CliError> {
    let client = connect(&args.endpoint).await?;
    if !args.watch {
        return match client.fetch_x509_context().await {
            Ok(context) => {
                let mut report = x509_report(&context);
                if let Some(dir) = &args.write {
                    report.written = write_context(dir, &context)?;
                }
                Outcome::new(Status::Ok, format, &report)
            }
            Err(e) => answer_or_unreachable(e, format),
        };
    }
    let mut stream = match client.watch_x509_context().await {
        Ok(stream) => stream,
        Err(e) => return answer_or_unreachable(e, format),
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            () = &mut stop => return Ok(quiet()),
            next = stream.next() => next,
        };
        match next {
            None => return Ok(quiet()),
            Some(Err(e)) => return refused(&e, format),
            Some(Ok(context)) => {
                let mut report = x509_report(&context);
                if let Some(dir) = &args.write {
                    report.written = write_context(dir, &context)?;
                }
                print_now(&render_line(&report, format)?);
            }
        }
    }
}

/// The outcome of a watch that ended: everything was printed already.
fn quiet() -> Outcome {
    Outcome {
        status: Status::Ok,
        stdout: String::new(),
        stderr: String::new(),
    }
}

#[derive(Debug, Serialize)]
struct JwtSvidReport {
    spiffe_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    audience: Vec<String>,
    expires: String,
    token: String,
}

#[derive(Debug, Serialize)]
struct JwtReport {
    svids: Vec<JwtSvidReport>,
    bundles: Vec<JwtBundleReport>,
}

impl Report for JwtReport {
    fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, svid) in self.svids.iter().enumerate() {
            out.push_str(&format!(
                "JWT-SVID {n}: {}\n  hint: {}\n  audience: {}\n  expires: {}\n  token: {}\n",
                svid.spiffe_id,
                svid.hint.as_deref().unwrap_or("-"),
                svid.audience.join(", "),
                svid.expires,
                svid.token
            ));
        }
        out.push_str(&bundles_text(&[], &self.bundles));
        out
    }
}

async fn jwt(args: JwtArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let client = connect(&args.endpoint).await?;
    let audience: Vec<&str> = args.audience.iter().map(String::as_str).collect();
    let tokens = match client
        .fetch_jwt_svids(&audience, args.spiffe_id.as_ref())
        .await
    {
        Ok(tokens) => tokens,
        Err(e) => return answer_or_unreachable(e, format),
    };
    let bundles = match client.fetch_jwt_bundles().await {
        Ok(bundles) => bundles,
        Err(e) => return answer_or_unreachable(e, format),
    };
    let mut svids = Vec::new();
    for token in &tokens {
        // The client checked the token's shape; its claims are read here
        // without a signature check, for the report only.
        let parsed = spiffe_svid::JwtSvid::parse_insecure(
            token.token(),
            &audience,
            rustls_pki_types::UnixTime::now(),
        );
        let expires_secs = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.expiry().duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        svids.push(JwtSvidReport {
            spiffe_id: token.spiffe_id().to_string(),
            hint: token.hint().map(str::to_owned),
            audience: parsed
                .as_ref()
                .map(|p| p.audience().to_vec())
                .unwrap_or_default(),
            expires: expires(expires_secs),
            token: token.token().to_owned(),
        });
    }
    Outcome::new(
        Status::Ok,
        format,
        &JwtReport {
            svids,
            bundles: jwt_bundle_reports(&bundles),
        },
    )
}

#[derive(Debug, Serialize)]
struct BundlesReport {
    x509: Vec<X509BundleReport>,
    jwt: Vec<JwtBundleReport>,
}

impl Report for BundlesReport {
    fn to_text(&self) -> String {
        bundles_text(&self.x509, &self.jwt)
    }
}

async fn bundles(args: BundlesArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let client = connect(&args.endpoint).await?;
    if !args.watch {
        let x509 = match client.fetch_x509_bundles().await {
            Ok(b) => b,
            Err(e) => return answer_or_unreachable(e, format),
        };
        let jwt = match client.fetch_jwt_bundles().await {
            Ok(b) => b,
            Err(e) => return answer_or_unreachable(e, format),
        };
        let report = BundlesReport {
            x509: x509_bundle_reports(&x509),
            jwt: jwt_bundle_reports(&jwt),
        };
        return Outcome::new(Status::Ok, format, &report);
    }
    let (mut x509_stream, mut jwt_stream) =
        match tokio::try_join!(client.watch_x509_bundles(), client.watch_jwt_bundles()) {
            Ok(streams) => streams,
            Err(e) => return answer_or_unreachable(e, format),
        };
    let mut x509 = None;
    let mut jwt = None;
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(quiet()),
            next = x509_stream.next() => match next {
                None => return Ok(quiet()),
                Some(Err(e)) => return refused(&e, format),
                Some(Ok(b)) => x509 = Some(x509_bundle_reports(&b)),
            },
            next = jwt_stream.next() => match next {
                None => return Ok(quiet()),
                Some(Err(e)) => return refused(&e, format),
                Some(Ok(b)) => jwt = Some(jwt_bundle_reports(&b)),
            },
        }
        // Report once both streams have said something, then every change.
        if let (Some(x), Some(j)) = (&x509, &jwt) {
            let report = BundlesReport {
                x509: x.clone(),
                jwt: j.clone(),
            };
            print_now(&render_line(&report, format)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_written_name, staged_by};

    #[test]
    fn staged_files_name_their_process() {
        assert_eq!(staged_by(".svid.0.key.4242.tmp"), Some(4242));
        assert_eq!(staged_by(".federated_bundle.1.2.pem.7.tmp"), Some(7));
        for name in [
            "svid.0.key",
            ".svid.0.key.tmp",
            ".svid.0.key.x1.tmp",
            ".notes.txt.12.tmp",
            "svid.0.key.12.tmp",
            ".svid.0.key.99999999999.tmp",
        ] {
            assert_eq!(staged_by(name), None, "{name}");
        }
    }

    #[test]
    fn only_the_names_write_produces_are_ours() {
        for name in [
            "svid.0.pem",
            "svid.12.key",
            "bundle.3.pem",
            "federated_bundle.0.7.pem",
        ] {
            assert!(is_written_name(name), "{name}");
        }
        for name in [
            "svid.pem",
            "svid.x.pem",
            "svid.0.crt",
            "svid.0.pem.bak",
            ".svid.0.pem.42.tmp",
            "bundle.0.key",
            "federated_bundle.0.pem",
            "federated_bundle.0.1.2.pem",
            "ca.pem",
            "svid.-1.pem",
        ] {
            assert!(!is_written_name(name), "{name}");
        }
    }
}
