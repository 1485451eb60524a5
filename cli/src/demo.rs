//! `spiffe demo`: the project end to end on one machine, with nothing to
//! install. An agent with two federated trust domains on a temporary
//! socket; two workloads that fetch their SVIDs over the Workload API and
//! over SDS; chain verification against the federated bundles; a rustls
//! mTLS handshake between the workloads; a rotation reaching both clients.

use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use spiffe_cli::agent::{Agent, AgentConfig, Entry, Federation, Selector};
use spiffe_id::{IdMatcher, SpiffeId, TrustDomain};
use spiffe_sds::client::{ClientConfig, ReceivedSecret, SdsClient};
use spiffe_svid::tls::{
    SpiffeClientCertVerifier, SpiffeServerCertVerifier, mtls_client_config, mtls_server_config,
};
use spiffe_svid::{JwtSvid, X509SvidError, verify_x509_svid};
use spiffe_workload_api::{
    EndpointAddress, SourceOptions, SvidSelector, WorkloadApiClient, X509Bundles, X509Source,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::agent_cmd::{init_logging, own_uid};
use crate::error::CliError;
use crate::output::{Outcome, OutputFormat, Report, Status};

/// The `--help` text on exit statuses of `spiffe demo`.
const DEMO_EXIT_HELP: &str = "\
Exit status:
  0  every step passed
  1  a step failed (the report says which and why)
  2  the demo could not run (no async runtime, no temporary directory)";

/// How long any one step may wait for the agent or a client.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

const OWN: &str = "example.org";
const FEDERATED: &str = "other.org";
const FRONTEND: &str = "spiffe://example.org/ns/demo/sa/frontend";
const BACKEND: &str = "spiffe://other.org/ns/demo/sa/backend";

/// `spiffe demo` arguments.
#[derive(Debug, Args)]
#[command(after_help = DEMO_EXIT_HELP)]
pub(crate) struct DemoArgs {
    /// Lifetime of the demo's X509-SVIDs: the agent renews them at half of
    /// it, and the rotation step waits for that renewal.
    #[arg(long, value_name = "DURATION", default_value = "6s", value_parser = parse_ttl)]
    svid_ttl: Duration,

    /// Also print the agent's log lines (`-v`: attestation, issuance,
    /// rotation) on standard error.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// The rotation step waits for the renewal at half the lifetime, within
/// [`STEP_TIMEOUT`]: 2 to 20 seconds.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = spiffe_cli::agent::entries::parse_duration(s).map_err(|e| e.to_string())?;
    if (Duration::from_secs(2)..=Duration::from_secs(20)).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(
            "the demo's SVIDs live 2 to 20 seconds (the rotation step waits for half of it)"
                .to_owned(),
        )
    }
}

/// One step of the report.
#[derive(Debug, Serialize)]
struct Step {
    title: &'static str,
    passed: bool,
    millis: f64,
    details: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
struct DemoReport {
    passed: bool,
    total_millis: f64,
    steps: Vec<Step>,
}

impl Report for DemoReport {
    fn to_text(&self) -> String {
        let mut out = String::from(
            "spiffe demo: two federated trust domains, one local agent, two workloads\n\n",
        );
        for (n, step) in self.steps.iter().enumerate() {
            let mark = if step.passed { " ok " } else { "FAIL" };
            out.push_str(&format!(
                "[{mark}] {}. {:<58} {:>9.1} ms\n",
                n + 1,
                step.title,
                step.millis
            ));
            for detail in &step.details {
                out.push_str(&format!("         {detail}\n"));
            }
            if let Some(error) = &step.error {
                out.push_str(&format!("         error: {error}\n"));
            }
        }
        out.push('\n');
        if self.passed {
            out.push_str(&format!(
                "All {} steps passed in {:.2} s.\n",
                self.steps.len(),
                self.total_millis / 1000.0
            ));
        } else {
            out.push_str("The demo failed; see the step marked FAIL.\n");
        }
        out
    }
}

/// Runs the steps in order, stopping at the first failure.
struct Steps {
    steps: Vec<Step>,
    failed: bool,
}

impl Steps {
    /// Records a failure outside any step's body.
    fn fail(&mut self, title: &'static str, error: String) {
        self.failed = true;
        self.steps.push(Step {
            title,
            passed: false,
            millis: 0.0,
            details: Vec::new(),
            error: Some(error),
        });
    }

    /// Runs `body` as the step `title` unless an earlier step failed; the
    /// body returns its detail lines and a value for later steps.
    async fn run<T, F>(&mut self, title: &'static str, body: F) -> Option<T>
    where
        F: Future<Output = Result<(T, Vec<String>), String>>,
    {
        if self.failed {
            return None;
        }
        let start = Instant::now();
        let result = match tokio::time::timeout(STEP_TIMEOUT, body).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {} s", STEP_TIMEOUT.as_secs())),
        };
        let millis = start.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((value, details)) => {
                self.steps.push(Step {
                    title,
                    passed: true,
                    millis,
                    details,
                    error: None,
                });
                Some(value)
            }
            Err(error) => {
                self.failed = true;
                self.steps.push(Step {
                    title,
                    passed: false,
                    millis,
                    details: Vec::new(),
                    error: Some(error),
                });
                None
            }
        }
    }
}

/// A private directory for the socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, CliError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("spiffe-demo-{}-{nanos:08x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: the socket is already gone after a clean shutdown.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::parse(s).map_err(|e| e.to_string())
}

fn td(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::new(s).map_err(|e| e.to_string())
}

fn unix_secs(t: UnixTime) -> String {
    let now = UnixTime::now().as_secs();
    let secs = t.as_secs();
    if secs >= now {
        format!("expires in {} s", secs - now)
    } else {
        format!("expired {} s ago", now - secs)
    }
}

/// Step 1: the agent's configuration.
fn config(uid: u32, svid_ttl: Duration) -> Result<AgentConfig, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let frontend = Entry::new("frontend", id(FRONTEND)?, [Selector::Uid(uid)])
        .and_then(|e| e.with_hint("frontend"))
        .map_err(|e| err(&e))?
        .with_federates_with([td(FEDERATED)?]);
    let backend = Entry::new("backend", id(BACKEND)?, [Selector::Uid(uid)])
        .and_then(|e| e.with_hint("backend"))
        .map_err(|e| err(&e))?
        .with_federates_with([td(OWN)?]);
    Ok(AgentConfig::new(td(OWN)?)
        .federate_with(Federation::InMemory(td(FEDERATED)?))
        .svid_ttl(svid_ttl)
        .entries([frontend, backend]))
}

/// A workload's X509 source, following the SVID with `hint`.
async fn source(address: &EndpointAddress, hint: &str) -> Result<X509Source, String> {
    let client = WorkloadApiClient::connect_lazy(address).map_err(|e| e.to_string())?;
    let options = SourceOptions::default()
        .with_initial_timeout(Duration::from_secs(10))
        .with_svid(SvidSelector::Hint(hint.to_owned()));
    X509Source::with_options(client, options)
        .await
        .map_err(|e| format!("{hint}: {e}"))
}

/// Verifies `chain` against `bundles`, describing the result.
fn verify(
    what: &str,
    chain: &[CertificateDer<'static>],
    bundles: &X509Bundles,
) -> Result<String, String> {
    let verified =
        verify_x509_svid(chain, bundles, UnixTime::now()).map_err(|e| format!("{what}: {e}"))?;
    Ok(format!(
        "{what}: {} verified ({} certificates, {})",
        verified.spiffe_id(),
        chain.len(),
        unix_secs(verified.expires_at())
    ))
}

/// The bundles of an SDS validation context, as a bundle set.
fn sds_bundles(secret: Option<&ReceivedSecret>) -> Result<X509Bundles, String> {
    match secret {
        Some(ReceivedSecret::SpiffeBundles(bundles)) => {
            let mut set = X509Bundles::new();
            for bundle in bundles {
                set.insert(bundle.clone());
            }
            Ok(set)
        }
        Some(_) => Err("the validation context is not Envoy's SPIFFE validator".to_owned()),
        None => Err("no validation context received".to_owned()),
    }
}

/// Why an mTLS exchange failed.
#[derive(Debug)]
enum HandshakeError {
    /// The client's authorizer refused the server's SPIFFE ID.
    ClientRefusedServer(String),
    /// Anything else.
    Other(String),
}

impl From<HandshakeError> for String {
    fn from(e: HandshakeError) -> String {
        match e {
            HandshakeError::ClientRefusedServer(reason) => format!("client: {reason}"),
            HandshakeError::Other(reason) => reason,
        }
    }
}

impl From<String> for HandshakeError {
    fn from(reason: String) -> HandshakeError {
        HandshakeError::Other(reason)
    }
}

/// One mTLS exchange: `client` dials `server` over an in-memory pipe; each
/// side requires the other's SPIFFE ID. Returns the protocol and cipher.
async fn handshake(
    client: &X509Source,
    server: &X509Source,
    server_id: &SpiffeId,
    client_id: &SpiffeId,
) -> Result<String, HandshakeError> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let server_verifier =
        SpiffeClientCertVerifier::new(server.clone(), IdMatcher::exact(client_id.clone()))
            .map_err(|e| err(&e))?;
    let server_config = mtls_server_config(server_verifier, server.clone()).map_err(|e| err(&e))?;
    let client_verifier =
        SpiffeServerCertVerifier::new(client.clone(), IdMatcher::exact(server_id.clone()))
            .map_err(|e| err(&e))?;
    let client_config = mtls_client_config(client_verifier, client.clone()).map_err(|e| err(&e))?;
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let connector = TlsConnector::from(Arc::new(client_config));
    let name = ServerName::try_from("backend.demo").map_err(|e| err(&e))?;
    let serve = async move {
        let mut tls = acceptor.accept(server_io).await.map_err(|e| {
            let reason = authorization_refusal(&e).unwrap_or_else(|| e.to_string());
            format!("server: {reason}")
        })?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping)
            .await
            .map_err(|e| format!("server read: {e}"))?;
        tls.write_all(b"pong")
            .await
            .map_err(|e| format!("server write: {e}"))?;
        tls.shutdown()
            .await
            .map_err(|e| format!("server close: {e}"))?;
        Ok::<_, String>(ping)
    };
    let dial = async move {
        let mut tls = connector.connect(name, client_io).await.map_err(|e| {
            match authorization_refusal(&e) {
                Some(denied) => HandshakeError::ClientRefusedServer(denied),
                None => HandshakeError::Other(format!("client: {e}")),
            }
        })?;
        let (_, session) = tls.get_ref();
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let suite = session
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown cipher suite");
        let agreed = format!("{version}, {suite}");
        tls.write_all(b"ping")
            .await
            .map_err(|e| HandshakeError::Other(format!("client write: {e}")))?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong)
            .await
            .map_err(|e| HandshakeError::Other(format!("client read: {e}")))?;
        Ok::<_, HandshakeError>((agreed, pong))
    };
    let (ping, dialled) = tokio::join!(serve, dial);
    let (agreed, pong) = dialled?;
    if ping? != *b"ping" || pong != *b"pong" {
        return Err(HandshakeError::Other(
            "the application data did not arrive intact".to_owned(),
        ));
    }
    Ok(agreed)
}

/// The authorizer's words, when it is what refused the peer.
fn authorization_refusal(e: &std::io::Error) -> Option<String> {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    tls.and_then(spiffe_svid::tls::authorization_error)
        .map(|denied| denied.to_string())
}

/// Waits until `source` serves a leaf other than `old`; returns it.
async fn next_leaf(
    source: &X509Source,
    old: &CertificateDer<'static>,
) -> Result<CertificateDer<'static>, String> {
    let mut updates = source.subscribe();
    loop {
        let svid = source.svid().map_err(|e| e.to_string())?;
        if svid.leaf() != old {
            return Ok(svid.leaf().clone());
        }
        updates.changed().await.map_err(|e| e.to_string())?;
    }
}

/// Waits until the SDS client holds a certificate `name` other than `old`.
async fn next_sds_leaf(
    sds: &SdsClient,
    name: &str,
    old: &CertificateDer<'static>,
) -> Result<(), String> {
    let mut state = sds.watch();
    loop {
        let changed = state
            .borrow_and_update()
            .certificate(name)
            .is_some_and(|svid| svid.leaf() != old);
        if changed {
            return Ok(());
        }
        state
            .changed()
            .await
            .map_err(|_| "the SDS client stopped".to_owned())?;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs every step; the agent is shut down whatever happens.
async fn demo(socket_dir: &Path, svid_ttl: Duration) -> Result<Vec<Step>, CliError> {
    let uid = own_uid()?;
    let socket = socket_dir.join("agent.sock");
    let mut steps = Steps {
        steps: Vec::new(),
        failed: false,
    };
    let agent = steps
        .run(
            "start an agent: example.org + other.org, in-memory CAs",
            async {
                let agent = Agent::start(config(uid, svid_ttl)?, &socket)
                    .await
                    .map_err(|e| e.to_string())?;
                let details = vec![
                    format!("Workload API and SDS on {}", agent.endpoint_socket()),
                    format!(
                        "entry frontend: {FRONTEND} for unix:uid:{uid}, federates with {FEDERATED}"
                    ),
                    format!("entry backend:  {BACKEND} for unix:uid:{uid}, federates with {OWN}"),
                    format!(
                        "SVIDs live {} s, renewed at half their lifetime",
                        svid_ttl.as_secs()
                    ),
                ];
                Ok((agent, details))
            },
        )
        .await;
    let Some(agent) = agent else {
        return Ok(steps.steps);
    };

    if workloads(&mut steps, &agent).await.is_none() {
        // A step failed: stop the agent all the same, outside the report.
        let _ = agent.shutdown().await;
        return Ok(steps.steps);
    }
    steps
        .run("shut the agent down; the socket is removed", async {
            agent.shutdown().await.map_err(|e| e.to_string())?;
            if socket.exists() {
                return Err(format!("{} still exists", socket.display()));
            }
            Ok(((), vec![format!("{} removed", socket.display())]))
        })
        .await;
    Ok(steps.steps)
}

/// Steps 2 to 7, with the running agent.
async fn workloads(steps: &mut Steps, agent: &Agent) -> Option<()> {
    let parsed = EndpointAddress::parse(&agent.endpoint_socket())
        .map_err(|e| e.to_string())
        .and_then(|address| Ok((address, id(FRONTEND)?, id(BACKEND)?)));
    let (address, frontend_id, backend_id) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            steps.fail("set up the workloads", e);
            return None;
        }
    };

    let (frontend, backend) = steps
        .run(
            "fetch both workloads' X509-SVIDs over the Workload API",
            async {
                let frontend = source(&address, "frontend").await?;
                let backend = source(&address, "backend").await?;
                let mut details = Vec::new();
                for (name, source, want) in [
                    ("frontend", &frontend, &frontend_id),
                    ("backend", &backend, &backend_id),
                ] {
                    let svid = source.svid().map_err(|e| e.to_string())?;
                    if svid.spiffe_id() != want {
                        return Err(format!("{name} got {}, not {want}", svid.spiffe_id()));
                    }
                    let context = source.x509_context();
                    let domains: Vec<String> = context
                        .bundles()
                        .iter()
                        .map(|b| b.trust_domain().to_string())
                        .collect();
                    details.push(format!(
                        "{name}: {} ({}), bundles of {}",
                        svid.spiffe_id(),
                        unix_secs(svid.expires_at()),
                        domains.join(" and ")
                    ));
                }
                Ok(((frontend, backend), details))
            },
        )
        .await?;

    steps
        .run(
            "fetch a JWT-SVID for frontend, validate it as backend",
            async {
                let client = WorkloadApiClient::connect(&address)
                    .await
                    .map_err(|e| e.to_string())?;
                let audience = [BACKEND];
                let svid = client
                    .fetch_jwt_svid(&audience, Some(&frontend_id))
                    .await
                    .map_err(|e| e.to_string())?;
                let bundles = client
                    .fetch_jwt_bundles()
                    .await
                    .map_err(|e| e.to_string())?;
                let validated =
                    JwtSvid::parse_and_validate(svid.token(), &bundles, &audience, UnixTime::now())
                        .map_err(|e| e.to_string())?;
                let wrong = JwtSvid::parse_and_validate(
                    svid.token(),
                    &bundles,
                    &["spiffe://example.org/someone-else"],
                    UnixTime::now(),
                );
                if wrong.is_ok() {
                    return Err("a token for another audience was accepted".to_owned());
                }
                Ok((
                    (),
                    vec![
                        format!(
                            "{} for audience {BACKEND}, ES256, validated against the JWT bundle",
                            validated.spiffe_id()
                        ),
                        "the same token for another audience: rejected".to_owned(),
                    ],
                ))
            },
        )
        .await?;

    let sds = steps
        .run("fetch the same over SDS, as an Envoy would", async {
            let names = [
                FRONTEND,
                BACKEND,
                "spiffe://example.org",
                "spiffe://other.org",
            ];
            let sds = SdsClient::connect_unix(
                agent.socket_path(),
                ClientConfig::new("demo-envoy", names),
            )
            .map_err(|e| e.to_string())?;
            let mut state = sds.watch();
            while !state.borrow_and_update().has_all(names) {
                state
                    .changed()
                    .await
                    .map_err(|_| "the SDS client stopped".to_owned())?;
            }
            let current = sds.current();
            let mut details = Vec::new();
            for (name, source) in [(FRONTEND, &frontend), (BACKEND, &backend)] {
                let svid = current
                    .certificate(name)
                    .ok_or_else(|| format!("{name}: not a certificate"))?;
                let same = source.svid().is_ok_and(|s| s.leaf() == svid.leaf());
                details.push(format!(
                    "tls_certificate {name}: {}",
                    if same {
                        "the same certificate as over the Workload API"
                    } else {
                        "renewed since the Workload API fetch"
                    }
                ));
            }
            for name in ["spiffe://example.org", "spiffe://other.org"] {
                let bundles = sds_bundles(current.secrets.get(name))?;
                details.push(format!(
                    "validation_context {name}: SPIFFE validator with {} trust domain(s)",
                    bundles.len()
                ));
            }
            details.push(format!(
                "version {}, {} ACK(s)",
                current.version.as_deref().unwrap_or("-"),
                current.acks
            ));
            Ok((sds, details))
        })
        .await?;

    steps
        .run("verify each chain against the federated bundles", async {
            let frontend_svid = frontend.svid().map_err(|e| e.to_string())?;
            let backend_svid = backend.svid().map_err(|e| e.to_string())?;
            // Each workload checks the other's chain with the bundles it
            // received. (Both run as one user here, so each receives the
            // bundles of both entries: its own and the one federated.)
            let frontend_bundles = frontend.x509_context().bundles().clone();
            let backend_bundles = backend.x509_context().bundles().clone();
            let mut details = vec![
                verify(
                    "backend's chain with frontend's bundles",
                    backend_svid.chain(),
                    &frontend_bundles,
                )?,
                verify(
                    "frontend's chain with backend's bundles",
                    frontend_svid.chain(),
                    &backend_bundles,
                )?,
            ];
            let current = sds.current();
            let sds_frontend = current
                .certificate(FRONTEND)
                .ok_or("SDS lost the frontend certificate")?;
            let sds_backend = current
                .certificate(BACKEND)
                .ok_or("SDS lost the backend certificate")?;
            details.push(verify(
                "SDS frontend chain with SDS validation context spiffe://example.org",
                sds_frontend.chain(),
                &sds_bundles(current.secrets.get("spiffe://example.org"))?,
            )?);
            details.push(verify(
                "SDS backend chain with SDS validation context spiffe://other.org",
                sds_backend.chain(),
                &sds_bundles(current.secrets.get("spiffe://other.org"))?,
            )?);
            // Without the federated bundle, the backend is not trusted.
            let mut own_only = X509Bundles::new();
            let own_bundle = frontend_bundles
                .iter()
                .find(|b| b.trust_domain().as_str() == OWN)
                .ok_or_else(|| format!("frontend has no bundle of {OWN}"))?;
            own_only.insert(own_bundle.clone());
            match verify_x509_svid(backend_svid.chain(), &own_only, UnixTime::now()) {
                Ok(_) => return Err("backend verified without other.org's bundle".to_owned()),
                Err(e @ X509SvidError::NoBundle { .. }) => details.push(format!(
                    "backend's chain with example.org's bundle only: rejected ({e})"
                )),
                Err(e) => {
                    return Err(format!(
                        "backend's chain with example.org's bundle only failed, but not for the \
                         missing bundle: {e}"
                    ));
                }
            }
            Ok(((), details))
        })
        .await?;

    steps
        .run("mTLS handshake frontend -> backend (rustls)", async {
            let agreed = handshake(&frontend, &backend, &backend_id, &frontend_id).await?;
            let mut details = vec![
                format!("each side verified the other's SVID and SPIFFE ID; {agreed}"),
                "ping -> pong over the TLS connection".to_owned(),
            ];
            let impostor = SpiffeId::parse("spiffe://other.org/ns/demo/sa/someone-else")
                .map_err(|e| e.to_string())?;
            match handshake(&frontend, &backend, &impostor, &frontend_id).await {
                Ok(_) => return Err("a client expecting another server ID connected".to_owned()),
                Err(HandshakeError::ClientRefusedServer(reason)) => details.push(format!(
                    "a client that expects {impostor}: refused (client: {reason})"
                )),
                Err(HandshakeError::Other(reason)) => {
                    return Err(format!(
                        "a client expecting another server ID failed, but not on that ID: {reason}"
                    ));
                }
            }
            Ok(((), details))
        })
        .await?;

    steps
        .run(
            "rotate: new SVIDs reach the Workload API and SDS clients",
            async {
                let old_frontend = frontend.svid().map_err(|e| e.to_string())?.leaf().clone();
                let old_backend = backend.svid().map_err(|e| e.to_string())?.leaf().clone();
                let sds_old = sds
                    .current()
                    .certificate(FRONTEND)
                    .map(|s| s.leaf().clone())
                    .ok_or("SDS lost the frontend certificate")?;
                let mut rotations = agent.rotations();
                rotations.borrow_and_update();
                let waited = Instant::now();
                rotations
                    .changed()
                    .await
                    .map_err(|_| "the agent stopped renewing".to_owned())?;
                let rotated = Instant::now();
                let (a, b, c) = tokio::join!(
                    async {
                        let r = next_leaf(&frontend, &old_frontend).await;
                        (r, rotated.elapsed())
                    },
                    async {
                        let r = next_leaf(&backend, &old_backend).await;
                        (r, rotated.elapsed())
                    },
                    async {
                        let r = next_sds_leaf(&sds, FRONTEND, &sds_old).await;
                        (r, rotated.elapsed())
                    },
                );
                a.0?;
                b.0?;
                c.0?;
                let agreed = handshake(&frontend, &backend, &backend_id, &frontend_id).await?;
                Ok((
                    (),
                    vec![
                        format!(
                            "the agent renewed at half the lifetime ({} after this step began)",
                            ms(rotated - waited)
                        ),
                        format!("frontend's X509Source had the new SVID {} later", ms(a.1)),
                        format!("backend's X509Source had the new SVID {} later", ms(b.1)),
                        format!("the SDS client had the new certificate {} later", ms(c.1)),
                        format!("mTLS with the new certificates: ok ({agreed})"),
                    ],
                ))
            },
        )
        .await?;
    Some(())
}

/// Runs `spiffe demo`.
///
/// # Errors
///
/// [`CliError::Runtime`] when the demo cannot run at all.
pub(crate) fn run(args: DemoArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    if args.verbose > 0 {
        init_logging(args.verbose);
    }
    let dir = TempDir::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let started = Instant::now();
    let steps = runtime.block_on(demo(&dir.0, args.svid_ttl))?;
    let total_millis = started.elapsed().as_secs_f64() * 1000.0;
    let passed = !steps.is_empty() && steps.iter().all(|s| s.passed) && steps.len() == 8;
    let report = DemoReport {
        passed,
        total_millis,
        steps,
    };
    Outcome::new(Status::from_ok(passed), format, &report)
}
