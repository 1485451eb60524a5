//! The Envoy bootstrap of `docs/agent.md`, run as written against `spiffe
//! agent` and a real Envoy: Envoy takes its certificate (`default`) and its
//! trust (`ALL`, with the federated trust domain) from the agent over SDS,
//! and accepts an mTLS client whose SVID is of the federated trust domain.
//!
//! Needs Envoy: `ENVOY_BIN`, or `target/envoy-venv/bin/envoy` (`.ci/run`
//! installs it). Skipped with a note when absent, unless
//! `SPIFFE_ENVOY_REQUIRED=1`, which makes a missing Envoy a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use spiffe_id::{IdMatcher, SpiffeId};
use spiffe_svid::tls::{SpiffeServerCertVerifier, mtls_client_config};
use spiffe_workload_api::{EndpointAddress, WorkloadApiClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Envoy is, or `None` (after saying so) when the test is skipped.
fn envoy_binary() -> Option<PathBuf> {
    let required = std::env::var("SPIFFE_ENVOY_REQUIRED").is_ok_and(|v| v == "1");
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/envoy-venv/bin/envoy"),
    };
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !required,
        "SPIFFE_ENVOY_REQUIRED=1 but Envoy is not at {} (set ENVOY_BIN)",
        path.display()
    );
    let line = format!(
        "SKIPPED: agent + Envoy test: no Envoy at {} (set ENVOY_BIN)\n",
        path.display()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The YAML block of docs/agent.md marked `# docs/agent.md: envoy-bootstrap`.
fn documented_bootstrap() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agent.md"))
            .unwrap();
    let start = doc
        .find("```yaml\n# docs/agent.md: envoy-bootstrap\n")
        .expect("docs/agent.md has no marked Envoy bootstrap");
    let body = &doc[start + "```yaml\n".len()..];
    body[..body.find("\n```").unwrap()].to_owned()
}

/// Kills a child process on drop (printing a log file when failing).
struct Guard {
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking()
            && let Some(log) = &self.log
            && let Ok(file) = std::fs::File::open(log)
        {
            let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
            for line in &lines[lines.len().saturating_sub(150)..] {
                eprintln!("envoy: {line}");
            }
        }
    }
}

/// GET on Envoy's admin interface: the body of a 200 answer.
async fn admin_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_owned());
    }
    // Chunked: <hex size>\r\n<data>\r\n ... 0\r\n\r\n
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_runs_the_documented_bootstrap_against_the_agent() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    // Envoy runs as this test's user, as does the client below: the first
    // entry (Envoy's default SVID) is of example.org, the second, picked by
    // hint, of the federated other.org.
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let entries = dir.path().join("entries.toml");
    std::fs::write(
        &entries,
        format!(
            r#"
[[entry]]
entry_id = "a-envoy"
spiffe_id = "spiffe://example.org/ns/default/sa/envoy"
selectors = ["unix:uid:{uid}"]
federates_with = ["other.org"]

[[entry]]
entry_id = "b-client"
spiffe_id = "spiffe://other.org/ns/default/sa/client"
selectors = ["unix:uid:{uid}"]
hint = "client"
federates_with = ["example.org"]
"#
        ),
    )
    .unwrap();
    let agent_child = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args([
            "agent",
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
        ])
        .arg("--socket")
        .arg(&socket)
        .arg("--entries")
        .arg(&entries)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut agent = Guard {
        child: Some(agent_child),
        log: None,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let admin = free_port();
    let listener = free_port();
    let bootstrap = documented_bootstrap()
        .replace("{{SOCKET}}", socket.to_str().unwrap())
        .replace("{{ADMIN_PORT}}", &admin.to_string())
        .replace("{{LISTENER_PORT}}", &listener.to_string());
    assert!(
        !bootstrap.contains("{{"),
        "a placeholder is left:\n{bootstrap}"
    );
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, bootstrap).unwrap();
    let log = dir.path().join("envoy.log");
    let envoy_child = Command::new(&envoy_bin)
        .arg("-c")
        .arg(&config)
        .args([
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
            "--log-level",
            "info",
        ])
        .args(["--file-flush-interval-msec", "100"])
        .arg("--log-path")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _envoy = Guard {
        child: Some(envoy_child),
        log: Some(log),
    };

    // Envoy receives `default` (its SVID) and `ALL` (both trust domains).
    let deadline = Instant::now() + Duration::from_secs(30);
    let secrets = loop {
        let dump = admin_get(admin, "/config_dump?resource=dynamic_active_secrets").await;
        let parsed: Option<serde_json::Value> = dump.and_then(|d| serde_json::from_str(&d).ok());
        let names: Vec<String> = parsed
            .as_ref()
            .and_then(|p| p["configs"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        if names.iter().any(|n| n == "default") && names.iter().any(|n| n == "ALL") {
            break parsed.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "Envoy did not take default and ALL from the agent: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all = secrets["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ALL")
        .unwrap();
    let domains: Vec<&str> = all["secret"]["validation_context"]["custom_validator_config"]
        ["typed_config"]["trust_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["example.org", "other.org"]);

    // An mTLS client of the federated trust domain, with its SVID from the
    // agent, reaches the listener and checks Envoy's SPIFFE ID.
    let address = EndpointAddress::parse(&format!("unix://{}", socket.display())).unwrap();
    let context = WorkloadApiClient::connect(&address)
        .await
        .unwrap()
        .fetch_x509_context()
        .await
        .unwrap();
    let client_svid = context.svid_by_hint("client").unwrap().clone();
    assert_eq!(
        client_svid.spiffe_id().as_str(),
        "spiffe://other.org/ns/default/sa/client"
    );
    let envoy_id = SpiffeId::parse("spiffe://example.org/ns/default/sa/envoy").unwrap();
    let verifier =
        SpiffeServerCertVerifier::new(context.bundles().clone(), IdMatcher::exact(envoy_id))
            .unwrap();
    let tls =
        mtls_client_config(verifier, spiffe_svid::tls::RotatingSvid::new(client_svid)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", listener))
                .await
                .ok()?;
            let mut stream = connector
                .connect(ServerName::try_from("envoy.local").ok()?, tcp)
                .await
                .ok()?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: envoy\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut raw = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
                .await
                .ok()?
                .ok()?;
            Some(String::from_utf8_lossy(&raw).into_owned())
        };
        if let Some(answer) = attempt.await {
            break answer;
        }
        assert!(Instant::now() < deadline, "no mTLS answer from Envoy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("hello from envoy"), "{body}");

    // SIGTERM: the agent stops with status 0 and removes its socket.
    let mut child = agent.child.take().unwrap();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
}
