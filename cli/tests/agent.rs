//! `spiffe agent` as a user runs it: the real binary on a Unix socket,
//! driven with the workspace's Workload API client; and `spiffe x509
//! verify` against the certificates it issues. Also `spiffe demo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, spiffe};
use rustls_pki_types::UnixTime;
use spiffe_svid::JwtSvid;
use spiffe_svid::issuer::DevCa;
use spiffe_workload_api::{EndpointAddress, WorkloadApiClient, X509Context};

/// A `spiffe agent` child process, stopped (SIGKILL) if the test fails.
struct AgentProcess {
    child: Option<Child>,
    socket: PathBuf,
}

impl AgentProcess {
    /// Starts `spiffe agent --socket <dir>/agent.sock <args>` and waits
    /// for the socket to appear.
    fn start(dir: &Path, args: &[&str]) -> AgentProcess {
        let socket = dir.join("agent.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_spiffe"))
            .arg("agent")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut agent = AgentProcess {
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !agent.socket.exists() {
            if let Some(status) = agent.child.as_mut().unwrap().try_wait().unwrap() {
                let out = agent.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "the agent exited with {status}:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not bind its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn address(&self) -> EndpointAddress {
        EndpointAddress::parse(&format!("unix://{}", self.socket.display())).unwrap()
    }

    async fn client(&self) -> WorkloadApiClient {
        WorkloadApiClient::connect(&self.address()).await.unwrap()
    }

    /// Sends SIGTERM and returns the exit code and the standard output.
    fn terminate(mut self) -> (i32, String, String) {
        let child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn leaf_lifetime(context: &X509Context) -> i64 {
    let not_after = context.default_svid().expires_at().as_secs();
    i64::try_from(not_after).unwrap() - i64::try_from(UnixTime::now().as_secs()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_default_entry_and_stops_cleanly_on_sigterm() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
            "-v",
        ],
    );
    let client = agent.client().await;
    let context = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        context.default_svid().spiffe_id().as_str(),
        "spiffe://example.org/ns/default/sa/default"
    );
    // Chain: leaf and the signing intermediate; both domains' bundles.
    assert_eq!(context.default_svid().chain().len(), 2);
    let domains: Vec<String> = context
        .bundles()
        .iter()
        .map(|b| b.trust_domain().to_string())
        .collect();
    assert_eq!(domains, ["example.org", "other.org"]);
    // The chain verifies against the agent's own bundle.
    let verified = spiffe_svid::verify_x509_svid(
        context.default_svid().chain(),
        context.bundles(),
        UnixTime::now(),
    )
    .unwrap();
    assert_eq!(verified.spiffe_id(), context.default_svid().spiffe_id());
    drop(client);

    // A second agent on the same path does not take the live socket over.
    let second = spiffe([
        "agent",
        "--trust-domain",
        "example.org",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    second.expect_code(2);
    assert!(
        second.stderr.contains("in use by another server"),
        "{}",
        second.stderr
    );
    assert!(agent.client().await.fetch_x509_context().await.is_ok());

    let socket = agent.socket.clone();
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!socket.exists(), "the socket was not removed");
    assert!(
        stdout.contains("export SPIFFE_ENDPOINT_SOCKET=unix://"),
        "{stdout}"
    );
    assert!(stdout.contains("entry default: spiffe://example.org/ns/default/sa/default"));
    // -v: one line per attested caller and per issuance.
    assert!(stderr.contains("caller attested"), "{stderr}");
    assert!(stderr.contains("agent stopped"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_quiet_by_default_and_prints_json_with_output_json() {
    let scratch = Scratch::new();
    let socket = scratch.path().join("agent.sock");
    // A relative --socket: the address printed is still absolute.
    let child = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args([
            "--output",
            "json",
            "agent",
            "--trust-domain",
            "example.org",
            "--socket",
            "agent.sock",
        ])
        .current_dir(scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent = {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        AgentProcess {
            child: Some(child),
            socket,
        }
    };
    agent.client().await.fetch_x509_context().await.unwrap();
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0);
    let banner: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(banner["trust_domain"], "example.org");
    let absolute = scratch.path().canonicalize().unwrap().join("agent.sock");
    assert_eq!(
        banner["endpoint_socket"],
        format!("unix://{}", absolute.display())
    );
    EndpointAddress::parse(banner["endpoint_socket"].as_str().unwrap()).unwrap();
    assert_eq!(
        banner["entries"][0]["spiffe_id"],
        "spiffe://example.org/ns/default/sa/default"
    );
    // No log lines without -v; only the closing note.
    assert_eq!(
        stderr.trim(),
        "spiffe agent: stopped, socket removed",
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_svids_at_half_their_lifetime_and_pushes_them() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &["--trust-domain", "example.org", "--svid-ttl", "2s"],
    );
    let client = agent.client().await;
    let mut stream = client.watch_x509_context().await.unwrap();
    let limit = Duration::from_secs(10);
    let mut next = async || {
        tokio::time::timeout(limit, stream.next())
            .await
            .expect("no update within 10 s")
            .unwrap()
            .unwrap()
    };
    let first = next().await;
    assert!(
        leaf_lifetime(&first) <= 2,
        "lifetime {}",
        leaf_lifetime(&first)
    );
    let started = Instant::now();
    let second = next().await;
    let waited = started.elapsed();
    assert_ne!(
        first.default_svid().leaf(),
        second.default_svid().leaf(),
        "an update without a new SVID"
    );
    // Renewed at half of 2 s: well before the first one expired.
    assert!(waited < Duration::from_millis(1900), "waited {waited:?}");
    // And again: renewal goes on.
    let third = next().await;
    assert_ne!(second.default_svid().leaf(), third.default_svid().leaf());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mints_jwt_svids_for_any_audience_with_the_configured_issuer() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--jwt-issuer",
            "https://oidc.example.org",
            "--jwt-ttl",
            "2m",
        ],
    );
    let client = agent.client().await;
    let svid = client
        .fetch_jwt_svid(&["any-audience", "another"], None)
        .await
        .unwrap();
    let bundles = client.fetch_jwt_bundles().await.unwrap();
    let validated =
        JwtSvid::parse_and_validate(svid.token(), &bundles, &["another"], UnixTime::now()).unwrap();
    assert_eq!(
        validated.spiffe_id().as_str(),
        "spiffe://example.org/ns/default/sa/default"
    );
    assert_eq!(validated.claims()["iss"], "https://oidc.example.org");
    let lifetime = validated
        .expiry()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(lifetime <= Duration::from_secs(120) && lifetime > Duration::from_secs(100));
    // The agent validates on the workload's behalf too.
    let checked = client
        .validate_jwt_svid(svid.token(), "any-audience")
        .await
        .unwrap();
    assert_eq!(checked.spiffe_id(), validated.spiffe_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federates_with_a_bundle_file() {
    let scratch = Scratch::new();
    let partner = DevCa::new(common::td("partner.test")).unwrap();
    let bundle = scratch.write("partner.pem", partner.certificate_pem());
    let arg = format!("partner.test={bundle}");
    let agent = AgentProcess::start(
        scratch.path(),
        &["--trust-domain", "example.org", "--federate-with", &arg],
    );
    let client = agent.client().await;
    let bundles = client.fetch_x509_bundles().await.unwrap();
    let partner_bundle = bundles.get(&common::td("partner.test")).unwrap();
    assert_eq!(partner_bundle.to_der(), partner.bundle().to_der());
    // The default entry federates with it: the X.509 context has it too.
    let context = client.fetch_x509_context().await.unwrap();
    assert!(context.bundles().get(&common::td("partner.test")).is_some());
}

#[test]
fn refuses_a_bad_configuration_with_exit_status_2() {
    let scratch = Scratch::new();
    let socket = scratch.path().join("agent.sock");
    let socket = socket.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--federate-with", "example.org"],
            "trust domain example.org is given twice",
        ),
        (&["--svid-ttl", "1s"], "lifetime 1 s is outside"),
        (
            &["--federate-with", "Bad_Domain"],
            "--federate-with \"Bad_Domain\"",
        ),
        (
            &[
                "--federate-with",
                "partner.test=https://bundle.partner.test/",
            ],
            "needs --bundle-endpoint-roots",
        ),
        (
            &["--federate-with", "partner.test=/nonexistent/bundle.pem"],
            "cannot read /nonexistent/bundle.pem",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["agent", "--trust-domain", "example.org", "--socket", socket];
        args.extend_from_slice(extra);
        let run = spiffe(&args);
        run.expect_code(2);
        assert!(run.stderr.contains(message), "{extra:?}: {}", run.stderr);
        assert!(!Path::new(socket).exists());
    }
    // A path that holds another kind of file is never replaced.
    let file = scratch.write("not-a-socket", "data");
    let run = spiffe([
        "agent",
        "--trust-domain",
        "example.org",
        "--socket",
        file.as_str(),
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("not a socket"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_verify_accepts_what_the_agent_issued_and_rejects_broken_chains() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
        ],
    );
    let context = agent.client().await.fetch_x509_context().await.unwrap();
    let svid = context.default_svid();
    let pem = |ders: &[rustls_pki_types::CertificateDer<'_>]| {
        ders.iter()
            .map(|d| pem_block("CERTIFICATE", d.as_ref()))
            .collect::<String>()
    };
    let chain = scratch.write("chain.pem", pem(svid.chain()));
    let own = context.bundles().get(&common::td("example.org")).unwrap();
    let other = context.bundles().get(&common::td("other.org")).unwrap();
    let own_bundle = scratch.write("own.pem", own.to_pem());
    let other_bundle = scratch.write("other.pem", other.to_pem());
    let own_arg = format!("example.org={own_bundle}");
    let other_arg = format!("other.org={other_bundle}");

    // Valid: against its own domain's bundle, among federated ones.
    let run = spiffe([
        "x509", "verify", "--bundle", &own_arg, "--bundle", &other_arg, &chain,
    ]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("spiffe://example.org/ns/default/sa/default")
    );

    // Only the other domain's bundle: no bundle for the leaf's domain.
    let run = spiffe(["x509", "verify", "--bundle", &other_arg, &chain]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("no X.509 bundle found for trust domain example.org"),
        "{}",
        run.stdout
    );

    // The other domain's roots presented as example.org's: no path.
    let impostor = format!("example.org={other_bundle}");
    spiffe(["x509", "verify", "--bundle", &impostor, &chain]).expect_code(1);

    // The leaf without its intermediate: no path to the root.
    let leaf_only = scratch.write("leaf.pem", pem(&svid.chain()[..1]));
    spiffe(["x509", "verify", "--bundle", &own_arg, &leaf_only]).expect_code(1);

    // A flipped bit in the leaf's signature.
    let mut tampered = svid.chain()[0].to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let mut tampered_chain = pem_block("CERTIFICATE", &tampered);
    tampered_chain.push_str(&pem(&svid.chain()[1..]));
    let tampered_path = scratch.write("tampered.pem", tampered_chain);
    spiffe(["x509", "verify", "--bundle", &own_arg, &tampered_path]).expect_code(1);

    // Past its lifetime.
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &own_arg,
        "--at",
        "2200-01-01T00:00:00Z",
        &chain,
    ])
    .expect_code(1);
}

#[test]
fn demo_runs_every_step_and_exits_0() {
    let run = spiffe(["--output", "json", "demo", "--svid-ttl", "2s"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8, "{report:#}");
    assert!(steps.iter().all(|s| s["passed"] == true));
    let text = spiffe(["demo", "--svid-ttl", "2s"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("All 8 steps passed"),
        "{}",
        text.stdout
    );
}

/// One PEM block.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_entries_of_an_entries_file_to_the_callers_they_select() {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let scratch = Scratch::new();
    let entries = scratch.write(
        "entries.toml",
        format!(
            r#"
[[entry]]
spiffe_id = "spiffe://{{{{ .TrustDomain }}}}/ns/{{{{ .Namespace }}}}/sa/{{{{ .ServiceAccount }}}}"
namespace = "prod"
service_account = "web"
selectors = ["unix:uid:{uid}"]
dns_names = ["web.prod.svc"]
hint = "web"
federates_with = ["other.org"]

[[entry]]
spiffe_id = "spiffe://example.org/not-for-this-caller"
selectors = ["unix:uid:{other}"]

[[entry]]
spiffe_id = "spiffe://other.org/ns/prod/sa/web"
selectors = ["unix:uid:{uid}", "unix:user:root"]
ttl = "10m"
"#,
            other = uid.wrapping_add(1)
        ),
    );
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
            "--entries",
            &entries,
        ],
    );
    let context = agent.client().await.fetch_x509_context().await.unwrap();
    let ids: Vec<(&str, Option<&str>)> = context
        .svids()
        .iter()
        .map(|s| (s.svid().spiffe_id().as_str(), s.hint()))
        .collect();
    assert_eq!(
        ids,
        [
            ("spiffe://example.org/ns/prod/sa/web", Some("web")),
            ("spiffe://other.org/ns/prod/sa/web", None)
        ]
    );
    let other = &context.svids()[1];
    let lifetime = other.svid().expires_at().as_secs() - UnixTime::now().as_secs();
    assert!((590..=600).contains(&lifetime), "{lifetime}");
    // The DNS name is in the leaf.
    let leaf = context.default_svid().leaf().as_ref().to_vec();
    assert!(leaf.windows(12).any(|w| w == b"web.prod.svc"));
}

#[test]
fn an_invalid_entries_file_is_refused_with_its_position() {
    let scratch = Scratch::new();
    let entries = scratch.write(
        "entries.json",
        r#"{"entry": [
            {"spiffe_id": "spiffe://example.org/a", "selectors": ["unix:uid:1"]},
            {"spiffe_id": "spiffe://example.org/b", "selectors": ["unix:uid:x"]}
        ]}"#,
    );
    let socket = scratch.path().join("agent.sock");
    let run = spiffe([
        "agent",
        "--trust-domain",
        "example.org",
        "--socket",
        socket.to_str().unwrap(),
        "--entries",
        &entries,
    ]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("entry 2 (entry-0002): selectors: \"unix:uid:x\""),
        "{}",
        run.stderr
    );
    assert!(!socket.exists());
    // An entry in a trust domain the agent has no CA for.
    let entries = scratch.write(
        "foreign.toml",
        "[[entry]]\nspiffe_id = \"spiffe://elsewhere.org/a\"\nselectors = [\"unix:uid:1\"]\n",
    );
    let run = spiffe([
        "agent",
        "--trust-domain",
        "example.org",
        "--socket",
        socket.to_str().unwrap(),
        "--entries",
        &entries,
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no CA for trust domain elsewhere.org"),
        "{}",
        run.stderr
    );
}

/// Runs `spiffe` with `args` against the agent's socket.
fn fetch(agent: &AgentProcess, args: &[&str]) -> common::Run {
    let mut all: Vec<&str> = args.to_vec();
    let socket = agent.socket.to_str().unwrap().to_owned();
    all.push("--socket");
    all.push(&socket);
    spiffe(&all)
}

#[test]
fn fetch_x509_writes_files_that_x509_verify_accepts() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
        ],
    );
    let text = fetch(&agent, &["fetch", "x509"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("SVID 0 (default): spiffe://example.org/ns/default/sa/default")
    );
    assert!(text.stdout.contains("X.509 bundle other.org: 1 authority"));

    let out = scratch.dir("out");
    let out_str = out.to_str().unwrap();
    // What an earlier write left for an SVID and a trust domain that are
    // gone, and a file of the user's.
    for stale in ["svid.1.pem", "svid.1.key", "federated_bundle.0.1.pem"] {
        std::fs::write(out.join(stale), "stale").unwrap();
    }
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    std::fs::write(out.join("svid.0.pem"), "old").unwrap();
    let json = fetch(
        &agent,
        &["--output", "json", "fetch", "x509", "--write", out_str],
    );
    json.expect_code(0);
    let report = json.json();
    assert_eq!(report["svids"][0]["default"], true);
    assert_eq!(report["written"].as_array().unwrap().len(), 4);
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "bundle.0.pem",
            "federated_bundle.0.0.pem",
            "notes.txt",
            "svid.0.key",
            "svid.0.pem"
        ]
    );
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(out.join("svid.0.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    // The written chain verifies with the written bundle.
    let chain = out.join("svid.0.pem");
    let bundle = format!("example.org={}", out.join("bundle.0.pem").display());
    let federated = format!(
        "other.org={}",
        out.join("federated_bundle.0.0.pem").display()
    );
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &bundle,
        "--bundle",
        &federated,
        chain.to_str().unwrap(),
    ])
    .expect_code(0);
    // The key file holds the leaf's key: `x509 inspect` checks a chain
    // file with its key appended.
    let mut with_key = std::fs::read_to_string(&chain).unwrap();
    with_key.push_str(&std::fs::read_to_string(out.join("svid.0.key")).unwrap());
    let with_key = scratch.write("with-key.pem", with_key);
    let inspect = spiffe(["--output", "json", "x509", "inspect", &with_key]);
    inspect.expect_code(0);
    assert_eq!(inspect.json()["private_key"]["format"], "PKCS#8");
    assert_eq!(inspect.json()["private_key"]["matches_leaf"], true);
    // Against the federated domain's bundle only: refused.
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &federated,
        chain.to_str().unwrap(),
    ])
    .expect_code(1);
}

#[test]
fn fetch_jwt_and_bundles() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(scratch.path(), &["--trust-domain", "example.org"]);
    let run = fetch(
        &agent,
        &["--output", "json", "fetch", "jwt", "--audience", "api"],
    );
    run.expect_code(0);
    let report = run.json();
    let token = report["svids"][0]["token"].as_str().unwrap().to_owned();
    assert_eq!(report["svids"][0]["audience"][0], "api");
    assert_eq!(report["bundles"][0]["jwt_authorities"], 1);
    // The token verifies with the bundle `fetch bundles` reports... and
    // with `spiffe jwt verify` against the JWT bundle the agent serves.
    let bundles = fetch(&agent, &["--output", "json", "fetch", "bundles"]);
    bundles.expect_code(0);
    assert_eq!(bundles.json()["jwt"][0]["trust_domain"], "example.org");
    assert_eq!(bundles.json()["x509"][0]["x509_authorities"], 1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let jwks = runtime.block_on(async {
        let client = agent.client().await;
        let bundles = client.fetch_jwt_bundles().await.unwrap();
        bundles.get(&common::td("example.org")).unwrap().to_jwks()
    });
    let jwks_path = scratch.write("example.org.jwks", jwks);
    let bundle_arg = format!("example.org={jwks_path}");
    spiffe([
        "jwt",
        "verify",
        "--bundle",
        &bundle_arg,
        "--audience",
        "api",
        &token,
    ])
    .expect_code(0);
    spiffe([
        "jwt",
        "verify",
        "--bundle",
        &bundle_arg,
        "--audience",
        "other",
        &token,
    ])
    .expect_code(1);
}

#[test]
fn fetch_exit_statuses() {
    let scratch = Scratch::new();
    // An agent whose only entry is for another uid: PermissionDenied.
    use std::os::unix::fs::MetadataExt;
    let other = std::fs::metadata("/proc/self")
        .unwrap()
        .uid()
        .wrapping_add(1);
    let entries = scratch.write(
        "entries.toml",
        format!("[[entry]]\nspiffe_id = \"spiffe://example.org/x\"\nselectors = [\"unix:uid:{other}\"]\n"),
    );
    let agent = AgentProcess::start(
        scratch.path(),
        &["--trust-domain", "example.org", "--entries", &entries],
    );
    for args in [
        &["--output", "json", "fetch", "x509"][..],
        &["--output", "json", "fetch", "jwt", "--audience", "a"],
        &["--output", "json", "fetch", "bundles"],
    ] {
        let run = fetch(&agent, args);
        run.expect_code(1);
        assert_eq!(run.json()["grpc_code"], "PermissionDenied", "{args:?}");
    }
    // No server there: exit 2, said plainly.
    let missing = scratch.path().join("missing.sock");
    let run = spiffe(["fetch", "x509", "--socket", missing.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("cannot connect to the Workload API"),
        "{}",
        run.stderr
    );
    // No address at all.
    let out = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args(["fetch", "x509"])
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SPIFFE_ENDPOINT_SOCKET"));
    // SPIFFE_ENDPOINT_SOCKET is used when --socket is absent.
    let out = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args(["fetch", "bundles"])
        .env(
            "SPIFFE_ENDPOINT_SOCKET",
            format!("unix://{}", agent.socket.display()),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "reached the agent, which refused"
    );
}

#[test]
fn fetch_x509_watch_prints_every_rotation() {
    use std::io::{BufRead, BufReader};
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &["--trust-domain", "example.org", "--svid-ttl", "2s"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args(["--output", "json", "fetch", "x509", "--watch", "--socket"])
        .arg(&agent.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines are read on a thread, so that a missing update fails the test
    // after a while instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || -> serde_json::Value {
        let line = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("no update within 15 s");
        serde_json::from_str(&line).unwrap()
    };
    let first = next();
    let second = next();
    let not_after = |v: &serde_json::Value| v["svids"][0]["not_after"].as_str().unwrap().to_owned();
    assert_ne!(not_after(&first)[..20], not_after(&second)[..20]);
    // SIGTERM ends the watch with status 0.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn sds_fetch_prints_what_envoy_would_receive() {
    let scratch = Scratch::new();
    let agent = AgentProcess::start(
        scratch.path(),
        &[
            "--trust-domain",
            "example.org",
            "--federate-with",
            "other.org",
        ],
    );
    let run = fetch(
        &agent,
        &[
            "--output",
            "json",
            "sds",
            "fetch",
            "default",
            "ROOTCA",
            "spiffe://other.org",
        ],
    );
    run.expect_code(0);
    let dump = run.json();
    let secrets = dump["dynamic_active_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 3);
    let default = &secrets[0]["secret"];
    assert_eq!(
        default["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    );
    // Redacted as Envoy's config dump does: base64 of "[redacted]".
    assert_eq!(
        default["tls_certificate"]["private_key"]["inline_bytes"],
        "W3JlZGFjdGVkXQ=="
    );
    use base64::Engine;
    let chain = base64::engine::general_purpose::STANDARD
        .decode(
            default["tls_certificate"]["certificate_chain"]["inline_bytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert!(
        String::from_utf8(chain)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let validator = &secrets[2]["secret"]["validation_context"]["custom_validator_config"];
    assert_eq!(validator["name"], "envoy.tls.cert_validator.spiffe");
    assert_eq!(
        validator["typed_config"]["trust_domains"][0]["name"],
        "other.org"
    );
    assert!(!secrets[0]["version_info"].as_str().unwrap().is_empty());

    let text = fetch(&agent, &["sds", "fetch", "default"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("certificate spiffe://example.org/ns/default/sa/default"),
        "{}",
        text.stdout
    );
    // A name the agent does not serve: exit 1, listed as missing.
    let run = fetch(
        &agent,
        &[
            "--output",
            "json",
            "sds",
            "fetch",
            "default",
            "spiffe://example.org/nobody",
            "--timeout",
            "2s",
        ],
    );
    run.expect_code(1);
    let missing = run.json()["missing"].clone();
    assert!(
        missing
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "spiffe://example.org/nobody"),
        "{missing}"
    );
    // The server refused the request as a whole, as SPIRE does; said on stderr.
    assert!(run.stderr.contains("not authorized"), "{}", run.stderr);
}
