//! How long a rotation takes to reach 1,000 SDS streams.
//!
//! - `sds_rotation/server_1000_streams`: our server on a Unix socket with
//!   1,000 open `StreamSecrets` streams (each subscribed to `default`, as
//!   Envoy opens one stream per secret), spread over 4 connections; one
//!   iteration is the time from the provider publishing a new SVID to the
//!   last stream receiving it (and each stream ACKing).
//! - `sds_rotation/state_machines_1000`: the same push computed by 1,000
//!   pure [`SecretStream`]s, without I/O: the CPU part of the above.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use spiffe_sds::envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use spiffe_sds::server::SdsServer;
use spiffe_sds::{SECRET_TYPE_URL, SdsConfig, SecretStream, WorkloadSecrets};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{DevCa, SvidSpec};
use spiffe_workload_api::X509Bundles;
use spiffe_workload_api::server::{
    RegistrationEntry, Selector, SelectorIdentityProvider, UnixSocketListener,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

const STREAMS: usize = 1_000;
const CONNECTIONS: usize = 4;

fn svids(ca: &DevCa, n: usize) -> Vec<X509Svid> {
    let now = UnixTime::now().as_secs();
    let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
    (0..n)
        .map(|_| {
            let spec = SvidSpec::new(
                SpiffeId::parse("spiffe://example.org/workload").unwrap(),
                t(now - 60),
                t(now + 3600),
            );
            ca.issue(&spec).unwrap().to_x509_svid().unwrap()
        })
        .collect()
}

fn request(names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
        type_url: SECRET_TYPE_URL.to_owned(),
        ..Default::default()
    }
}

fn unix_channel(path: std::path::PathBuf) -> Channel {
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        },
    ))
}

fn server_1000_streams(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let ca = DevCa::new(td.clone()).unwrap();
    let pool = svids(&ca, 2);
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let entry = |svid: &X509Svid| RegistrationEntry::new("w", [Selector::Uid(uid)], svid.clone());
    let provider = Arc::new(SelectorIdentityProvider::new(ca.bundle()));
    provider.set_entry(entry(&pool[0]));

    let dir = std::env::temp_dir().join(format!("spiffe-sds-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("sds.sock");
    let (notify_tx, mut notify_rx) = mpsc::unbounded_channel::<()>();
    rt.block_on(async {
        let listener = UnixSocketListener::bind(&socket).unwrap();
        let server = SdsServer::new(Arc::clone(&provider), SdsConfig::new(td.clone()));
        tokio::spawn(server.serve_with_incoming(listener, std::future::pending()));
        // Each lazily connected channel is one connection.
        let channels: Vec<Channel> = (0..CONNECTIONS)
            .map(|_| unix_channel(socket.clone()))
            .collect();
        for i in 0..STREAMS {
            let mut client = SecretDiscoveryServiceClient::new(channels[i % CONNECTIONS].clone());
            let notify = notify_tx.clone();
            let (tx, rx) = mpsc::channel(4);
            tx.send(request(&["default"])).await.unwrap();
            let mut inbound = client
                .stream_secrets(ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            tokio::spawn(async move {
                while let Ok(Some(response)) = inbound.message().await {
                    let ack = DiscoveryRequest {
                        version_info: response.version_info,
                        response_nonce: response.nonce,
                        ..request(&["default"])
                    };
                    if tx.send(ack).await.is_err() || notify.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        // Every stream got its first response.
        for _ in 0..STREAMS {
            notify_rx.recv().await.unwrap();
        }
    });

    let mut next = 1;
    c.benchmark_group("sds_rotation")
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .bench_function("server_1000_streams", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        provider.set_entry(entry(&pool[next % pool.len()]));
                        next += 1;
                        for _ in 0..STREAMS {
                            notify_rx.recv().await.unwrap();
                        }
                        total += started.elapsed();
                    }
                    total
                })
            });
        });
    let _ = std::fs::remove_dir_all(&dir);
}

fn state_machines_1000(c: &mut Criterion) {
    let td = TrustDomain::new("example.org").unwrap();
    let ca = DevCa::new(td.clone()).unwrap();
    let pool = svids(&ca, 2);
    let bundles: X509Bundles = [ca.bundle()].into_iter().collect();
    let secrets: Vec<Arc<WorkloadSecrets>> = pool
        .iter()
        .map(|s| {
            Arc::new(WorkloadSecrets::new(
                td.clone(),
                vec![s.clone()],
                bundles.clone(),
            ))
        })
        .collect();
    let config = Arc::new(SdsConfig::new(td));
    let mut streams: Vec<SecretStream> = (0..STREAMS as u64)
        .map(|i| {
            let mut s = SecretStream::new(Arc::clone(&config), i);
            s.handle_update(Arc::clone(&secrets[0])).unwrap();
            s.handle_request(&request(&["default"])).unwrap();
            s
        })
        .collect();
    let mut next = 1;
    c.benchmark_group("sds_rotation")
        .sample_size(20)
        .bench_function("state_machines_1000", |b| {
            b.iter(|| {
                let update = &secrets[next % secrets.len()];
                next += 1;
                for s in &mut streams {
                    let pushed = s.handle_update(Arc::clone(update)).unwrap();
                    assert!(pushed.is_some());
                }
            });
        });
}

criterion_group!(benches, state_machines_1000, server_1000_streams);
criterion_main!(benches);
