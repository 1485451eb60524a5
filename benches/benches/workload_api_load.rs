//! Load benchmark of the Workload API server (not criterion: it measures a
//! server under concurrency, not one call in a loop).
//!
//! The server runs in a child process (this binary re-executed with
//! `SPIFFE_BENCH_ROLE=server`) so its memory can be read from
//! `/proc/<pid>/status` apart from the clients'. Measured:
//!
//! 1. unary `FetchJWTSVID` latency, p50/p90/p99/max, with 100 concurrent
//!    callers, each on its own connection, closed-loop and paced;
//! 2. 10,000 open `FetchX509SVID` streams on one socket: the server's
//!    resident memory per stream, and the time from a rotation (a new SVID
//!    set in the provider) until every stream has received it.
//!
//! Run: `cargo bench -p spiffe-benches --bench workload_api_load`
//! (`STREAMS`, `CALLERS`, `CALLS_PER_CALLER`, `PACE_MS` and `ROTATIONS`
//! override the defaults).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hyper_util::rt::TokioIo;
use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::{DevCa, JwtIssuer, SvidSpec};
use spiffe_workload_api::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spiffe_workload_api::proto::{JwtsvidRequest, X509svidRequest};
use spiffe_workload_api::server::{
    ProviderError, RegistrationEntry, Selector, SelectorIdentityProvider, UnixSocketListener,
    WorkloadApiServer,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

const ROLE: &str = "SPIFFE_BENCH_ROLE";
const SOCKET: &str = "SPIFFE_BENCH_SOCKET";
/// Streams per HTTP/2 connection in the stream test.
const STREAMS_PER_CONNECTION: usize = 500;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored too.
    if std::env::var(ROLE).as_deref() == Ok("server") {
        let path = PathBuf::from(std::env::var(SOCKET).unwrap());
        server_main(&path);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(client_main());
}

// ---------------------------------------------------------------- server --

fn svid_for(ca: &DevCa, id: &SpiffeId) -> spiffe_svid::X509Svid {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let spec = SvidSpec::new(
        id.clone(),
        UnixTime::since_unix_epoch(now - Duration::from_secs(60)),
        UnixTime::since_unix_epoch(now + Duration::from_secs(3600)),
    );
    ca.issue(&spec).unwrap().to_x509_svid().unwrap()
}

fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// The server process: serves until stdin closes; each `rotate` line sets a
/// new SVID for the benchmark's entry and answers `rotated`.
fn server_main(path: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let td = TrustDomain::new("bench.example").unwrap();
    let id = SpiffeId::parse("spiffe://bench.example/ns/bench/sa/client").unwrap();
    let ca = DevCa::new(td.clone()).unwrap();
    let jwt = Arc::new(JwtIssuer::new(td).unwrap());
    let minter = {
        let jwt = jwt.clone();
        move |id: &SpiffeId, audience: &[String]| {
            let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
            jwt.issue(id, &audience, SystemTime::now() + Duration::from_secs(300))
                .map_err(|e| ProviderError::Unavailable {
                    reason: e.to_string(),
                })
        }
    };
    let provider = Arc::new(SelectorIdentityProvider::new(ca.bundle()).with_jwt_minter(minter));
    provider.set_jwt_bundle(jwt.bundle());
    let entry = |svid| RegistrationEntry::new("bench", [Selector::Uid(own_uid())], svid);
    provider.set_entry(entry(svid_for(&ca, &id)));

    let server = WorkloadApiServer::from_arc(provider.clone())
        .max_streams(1_000_000)
        .max_streams_per_connection(u32::try_from(STREAMS_PER_CONNECTION * 2).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = runtime.block_on(async { UnixSocketListener::bind(path).unwrap() });
    let serving = runtime.spawn(async move {
        server
            .serve_with_incoming(listener, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
    });
    println!("ready");
    std::io::stdout().flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "rotate" {
            provider.set_entry(entry(svid_for(&ca, &id)));
            println!("rotated");
            std::io::stdout().flush().unwrap();
        }
    }
    let _ = stop_tx.send(());
    let _ = runtime.block_on(serving);
}

// ---------------------------------------------------------------- client --

struct ServerProcess {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    dir: PathBuf,
}

impl ServerProcess {
    fn start() -> (ServerProcess, PathBuf) {
        let dir = std::env::temp_dir().join(format!("swl-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("api.sock");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "server")
            .env(SOCKET, &socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "server did not start");
        (
            ServerProcess {
                child,
                stdin,
                stdout,
                dir,
            },
            socket,
        )
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn rotate(&mut self) {
        writeln!(self.stdin, "rotate").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "rotated");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    Endpoint::from_static("http://workload-api.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap()
}

fn req<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn client_main() {
    let callers = env_usize("CALLERS", 100);
    let calls = env_usize("CALLS_PER_CALLER", 200);
    let streams = env_usize("STREAMS", 10_000);
    let rotations = env_usize("ROTATIONS", 5);
    let (mut server, socket) = ServerProcess::start();

    // 1. Unary latency with concurrent callers: first closed-loop (each
    //    caller sends its next call as soon as the last returns, which
    //    measures saturation: by Little's law latency = callers /
    //    throughput), then paced (each caller one call per `PACE_MS`, the
    //    way workloads use the API).
    let pace = Duration::from_millis(env_usize("PACE_MS", 20) as u64);
    for paced in [None, Some(pace)] {
        let mut tasks = Vec::new();
        for i in 0..callers {
            let socket = socket.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = SpiffeWorkloadApiClient::new(channel(&socket).await);
                let mut latencies = Vec::with_capacity(calls);
                let mut ticker = paced.map(|p| {
                    // Spread the callers over the period.
                    let offset = p * u32::try_from(i).unwrap() / u32::try_from(callers).unwrap();
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, p)
                });
                for _ in 0..calls {
                    if let Some(ticker) = ticker.as_mut() {
                        ticker.tick().await;
                    }
                    let started = Instant::now();
                    let response = client
                        .fetch_jwtsvid(req(JwtsvidRequest {
                            audience: vec!["bench".to_owned()],
                            spiffe_id: String::new(),
                        }))
                        .await
                        .unwrap();
                    latencies.push(started.elapsed());
                    assert_eq!(response.into_inner().svids.len(), 1);
                }
                latencies
            }));
        }
        let started = Instant::now();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let wall = started.elapsed();
        latencies.sort();
        let mode = match paced {
            None => "closed loop".to_owned(),
            Some(p) => format!("paced, one call per {p:?} each"),
        };
        println!(
            "unary FetchJWTSVID, {callers} concurrent callers x {calls} calls ({mode}): \
             p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  ({:.0} calls/s)",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
            latencies.len() as f64 / wall.as_secs_f64(),
        );
    }

    // 2. Many open streams, one rotation.
    let before = server.rss_kib();
    let received = Arc::new(AtomicUsize::new(0));
    let connections = streams.div_ceil(STREAMS_PER_CONNECTION);
    let mut opened = 0;
    let mut stream_tasks = Vec::new();
    let open_started = Instant::now();
    for _ in 0..connections {
        let channel = channel(&socket).await;
        let n = STREAMS_PER_CONNECTION.min(streams - opened);
        opened += n;
        for _ in 0..n {
            let mut client = SpiffeWorkloadApiClient::new(channel.clone());
            let received = received.clone();
            stream_tasks.push(tokio::spawn(async move {
                let mut stream = client
                    .fetch_x509svid(req(X509svidRequest {}))
                    .await
                    .unwrap()
                    .into_inner();
                while let Some(message) = stream.message().await.unwrap() {
                    assert!(!message.svids.is_empty());
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    // Every stream has its first message.
    wait_for(&received, streams, Duration::from_secs(120)).await;
    let open_time = open_started.elapsed();
    // Let the allocator settle before reading memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    println!(
        "{streams} FetchX509SVID streams on {connections} connections opened in {open_time:?}; \
         server RSS {before} KiB -> {after} KiB: {:.1} KiB per stream",
        (after.saturating_sub(before)) as f64 / streams as f64,
    );

    let mut times = Vec::new();
    for round in 1..=rotations {
        let target = streams * (round + 1);
        let started = Instant::now();
        server.rotate();
        wait_for(&received, target, Duration::from_secs(60)).await;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "rotation reaching all {streams} streams ({rotations} rotations): \
         median {:?}  max {:?}",
        percentile(&times, 0.5),
        percentile(&times, 1.0),
    );
    for task in stream_tasks {
        task.abort();
    }
}

async fn wait_for(counter: &AtomicUsize, target: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while counter.load(Ordering::Relaxed) < target {
        assert!(
            Instant::now() < deadline,
            "only {} of {target} messages arrived",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
