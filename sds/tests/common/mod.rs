//! Shared pieces of the integration tests: generated PKI, a provider, a
//! server on a Unix socket in a temporary directory, raw SDS streams.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prost::Message;
use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use spiffe_sds::envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use spiffe_sds::envoy_types::pb::google::rpc::Status as RpcStatus;
use spiffe_sds::server::SdsServer;
use spiffe_sds::{SECRET_TYPE_URL, SdsConfig};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{DevCa, IssuedSvid, KeyAlgorithm, SvidSpec};
use spiffe_workload_api::server::{
    RegistrationEntry, Selector, SelectorIdentityProvider, ServeError, UnixSocketListener,
    WorkloadApiServer,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

pub const OWN_TD: &str = "example.org";
pub const FED_TD: &str = "partner.test";
pub const STRANGER_TD: &str = "stranger.test";

/// A directory under the system temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "spiffe-sds-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

/// The uid this test process (and the Envoy it starts) runs as.
pub fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Three certificate authorities: the server's trust domain, a federated
/// one, and one nobody trusts.
pub struct Pki {
    pub own: DevCa,
    pub fed: DevCa,
    pub stranger: DevCa,
}

impl Pki {
    pub fn new() -> Self {
        Pki {
            own: DevCa::new(td(OWN_TD)).unwrap(),
            fed: DevCa::new(td(FED_TD)).unwrap(),
            stranger: DevCa::new(td(STRANGER_TD)).unwrap(),
        }
    }

    /// A fresh SVID from `ca`, valid from a minute ago for an hour.
    pub fn issue(ca: &DevCa, id: &str) -> IssuedSvid {
        Self::issue_with(ca, id, KeyAlgorithm::EcdsaP256)
    }

    pub fn issue_with(ca: &DevCa, id: &str, key: KeyAlgorithm) -> IssuedSvid {
        let now = UnixTime::now().as_secs();
        let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        let spec = SvidSpec::new(SpiffeId::parse(id).unwrap(), t(now - 60), t(now + 3600))
            .key(key)
            .dns_names(["localhost"]);
        ca.issue(&spec).unwrap()
    }

    pub fn svid(ca: &DevCa, id: &str) -> X509Svid {
        Self::issue(ca, id).to_x509_svid().unwrap()
    }

    /// A provider of the own trust domain that also trusts the federated
    /// one, with entry `workload` giving `spiffe://example.org/workload` to
    /// this process's uid.
    pub fn provider(&self) -> Arc<SelectorIdentityProvider> {
        let provider = Arc::new(
            SelectorIdentityProvider::new(self.own.bundle()).allow_unauthenticated_verifiers(true),
        );
        provider.set_x509_bundle(self.fed.bundle());
        provider.set_entry(self.entry("spiffe://example.org/workload"));
        provider
    }

    pub fn entry(&self, id: &str) -> RegistrationEntry {
        RegistrationEntry::new(
            "workload",
            [Selector::Uid(my_uid())],
            Self::svid(&self.own, id),
        )
    }
}

/// Our server (Workload API and SDS on one socket) on a temporary socket.
pub struct Harness {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub provider: Arc<SelectorIdentityProvider>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Harness {
    pub async fn start(provider: Arc<SelectorIdentityProvider>, config: SdsConfig) -> Self {
        let dir = TempDir::new("srv");
        let socket = dir.path().join("agent.sock");
        Self::start_at(dir, socket, provider, config)
    }

    pub fn start_at(
        dir: TempDir,
        socket: PathBuf,
        provider: Arc<SelectorIdentityProvider>,
        config: SdsConfig,
    ) -> Self {
        // Bound before anything connects: the kernel queues connections.
        let listener = UnixSocketListener::bind(&socket).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = SdsServer::new(Arc::clone(&provider), config);
        let workload_api = WorkloadApiServer::from_arc(Arc::clone(&provider));
        let task = tokio::spawn(
            server.serve_with_workload_api(workload_api, listener, async {
                let _ = stopped.await;
            }),
        );
        Harness {
            dir,
            socket,
            provider,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn config() -> SdsConfig {
        SdsConfig::new(td(OWN_TD))
    }

    /// Stops the server, keeping the directory for a restart.
    pub async fn stop(mut self) -> (TempDir, PathBuf, Arc<SelectorIdentityProvider>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within 10 s")
                .unwrap()
                .unwrap();
        }
        let dir = TempDir(std::mem::take(&mut self.dir.0));
        (dir, self.socket.clone(), Arc::clone(&self.provider))
    }

    pub fn channel(&self) -> Channel {
        unix_channel(&self.socket)
    }

    pub fn sds(&self) -> SecretDiscoveryServiceClient<Channel> {
        SecretDiscoveryServiceClient::new(self.channel())
    }

    /// Rotates the workload's SVID; returns the new leaf.
    pub fn rotate(&self, pki: &Pki) -> X509Svid {
        let entry = pki.entry("spiffe://example.org/workload");
        let svid = entry.svid().clone();
        self.provider.set_entry(entry);
        svid
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
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

/// A raw `StreamSecrets` stream driven by hand.
pub struct RawStream {
    pub tx: mpsc::Sender<DiscoveryRequest>,
    pub rx: tonic::Streaming<DiscoveryResponse>,
}

impl RawStream {
    pub async fn open(
        client: &mut SecretDiscoveryServiceClient<Channel>,
        first: DiscoveryRequest,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first).await.unwrap();
        let rx = tokio::time::timeout(
            Duration::from_secs(5),
            client.stream_secrets(ReceiverStream::new(rx)),
        )
        .await
        .expect("stream opens within 5 s")
        .unwrap()
        .into_inner();
        RawStream { tx, rx }
    }

    pub async fn send(&self, request: DiscoveryRequest) {
        self.tx.send(request).await.unwrap();
    }

    /// The next response, failing after 5 s.
    pub async fn recv(&mut self) -> DiscoveryResponse {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.message()).await {
            Ok(Ok(Some(r))) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// The status the stream ends with.
    pub async fn recv_status(&mut self) -> tonic::Status {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.message()).await {
            Ok(Err(status)) => status,
            other => panic!("expected the stream to fail, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(ms), self.rx.message()).await {
            panic!("expected no response, got {r:?}");
        }
    }
}

/// A raw `DeltaSecrets` stream.
pub struct RawDelta {
    pub tx: mpsc::Sender<DeltaDiscoveryRequest>,
    pub rx: tonic::Streaming<DeltaDiscoveryResponse>,
}

impl RawDelta {
    pub async fn open(
        client: &mut SecretDiscoveryServiceClient<Channel>,
        first: DeltaDiscoveryRequest,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first).await.unwrap();
        let rx = client
            .delta_secrets(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        RawDelta { tx, rx }
    }

    pub async fn recv(&mut self) -> DeltaDiscoveryResponse {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.message()).await {
            Ok(Ok(Some(r))) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    pub async fn expect_silence(&mut self, ms: u64) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(ms), self.rx.message()).await {
            panic!("expected no response, got {r:?}");
        }
    }
}

pub fn request(names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
        type_url: SECRET_TYPE_URL.to_owned(),
        ..Default::default()
    }
}

pub fn ack(names: &[&str], response: &DiscoveryResponse) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: response.version_info.clone(),
        response_nonce: response.nonce.clone(),
        ..request(names)
    }
}

pub fn nack(names: &[&str], version: &str, response: &DiscoveryResponse) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_owned(),
        response_nonce: response.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 13,
            message: "test rejects it".to_owned(),
            details: Vec::new(),
        }),
        ..request(names)
    }
}

pub fn secrets_of(response: &DiscoveryResponse) -> Vec<Secret> {
    response
        .resources
        .iter()
        .map(|any| Secret::decode(any.value.as_slice()).unwrap())
        .collect()
}

pub fn names_of(response: &DiscoveryResponse) -> Vec<String> {
    secrets_of(response).into_iter().map(|s| s.name).collect()
}
