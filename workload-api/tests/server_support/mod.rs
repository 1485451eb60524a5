//! Shared by the server tests: a scratch directory, a CA, a provider, a
//! running server on a real Unix socket, and a raw generated client.
#![allow(dead_code, unreachable_pub)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{DevCa, JwtIssuer, SvidSpec};
use spiffe_workload_api::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spiffe_workload_api::server::{
    IdentityProvider, ProviderError, SelectorIdentityProvider, ServeError, UnixSocketListener,
    WorkloadApiServer,
};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long any single wait in a test may take before it counts as a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A directory removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Short: socket paths are limited to about 100 bytes.
        let dir = std::env::temp_dir().join(format!("swl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub fn socket(&self) -> PathBuf {
        self.0.join("api.sock")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The uid and gid this test process connects with.
pub fn own_uid_gid() -> (u32, u32) {
    let meta = std::fs::metadata("/proc/self").unwrap();
    (meta.uid(), meta.gid())
}

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// An SVID for `spiffe_id`, valid from an hour ago for a day.
pub fn svid(ca: &DevCa, spiffe_id: &str) -> X509Svid {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let t = |d: Duration| UnixTime::since_unix_epoch(d);
    let spec = SvidSpec::new(
        id(spiffe_id),
        t(now - Duration::from_secs(3600)),
        t(now + Duration::from_secs(86_400)),
    );
    ca.issue(&spec).unwrap().to_x509_svid().unwrap()
}

/// A JWT minter for `issuer`, tokens valid for five minutes.
pub fn minter(
    issuer: Arc<JwtIssuer>,
) -> impl Fn(&SpiffeId, &[String]) -> Result<String, ProviderError> + Send + Sync + 'static {
    move |id, audience| {
        let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
        let expires = SystemTime::now() + Duration::from_secs(300);
        issuer
            .issue(id, &audience, expires)
            .map_err(|e| ProviderError::Unavailable {
                reason: e.to_string(),
            })
    }
}

/// A server running on a Unix socket until [`Running::stop`].
pub struct Running {
    pub path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    /// Binds `path` and serves `server` there.
    pub fn start<P: IdentityProvider>(server: WorkloadApiServer<P>, path: &Path) -> Running {
        let listener = UnixSocketListener::bind(path).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_incoming(listener, async {
            let _ = stopped.await;
        }));
        Running {
            path: path.to_path_buf(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits for the server to finish.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("server did not shut down")
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A trust domain with a CA, a JWT issuer and a provider for it.
pub struct World {
    pub ca: DevCa,
    pub jwt: Arc<JwtIssuer>,
    pub provider: Arc<SelectorIdentityProvider>,
}

impl World {
    pub fn new(trust_domain: &str) -> World {
        let ca = DevCa::new(td(trust_domain)).unwrap();
        let jwt = Arc::new(JwtIssuer::new(td(trust_domain)).unwrap());
        let provider =
            SelectorIdentityProvider::new(ca.bundle()).with_jwt_minter(minter(jwt.clone()));
        provider.set_jwt_bundle(jwt.bundle());
        World {
            ca,
            jwt,
            provider: Arc::new(provider),
        }
    }

    pub fn server(&self) -> WorkloadApiServer<SelectorIdentityProvider> {
        WorkloadApiServer::from_arc(self.provider.clone())
    }
}

/// A raw generated client over a new connection to the socket at `path`.
pub async fn connect(path: &Path) -> SpiffeWorkloadApiClient<Channel> {
    SpiffeWorkloadApiClient::new(channel(path).await)
}

/// A new HTTP/2 connection to the socket at `path`.
pub async fn channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    // The URI is required by the API and ignored by the connector.
    Endpoint::from_static("http://workload-api.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap()
}

/// A request with the security header.
pub fn req<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

/// Waits for the next message of a stream, failing the test on a hang.
pub async fn next<T>(stream: &mut tonic::Streaming<T>) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("no message in time")
}
