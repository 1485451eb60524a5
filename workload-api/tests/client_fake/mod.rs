//! A fake Workload API server for the client tests: serves whatever the
//! test puts in its watch channels on a Unix socket, checks the security
//! header on every call, and counts calls and open streams.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls_pki_types::UnixTime;
use serde_json::Value;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::JwtSvid;
use spiffe_svid::issuer::{DevCa, JwtIssuer, SvidSpec};
use spiffe_workload_api::proto::spiffe_workload_api_server::{
    SpiffeWorkloadApi, SpiffeWorkloadApiServer,
};
use spiffe_workload_api::proto::{self, X509svid};
use spiffe_workload_api::{EndpointAddress, SECURITY_HEADER, SECURITY_HEADER_VALUE};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream, UnixListenerStream};
use tonic::{Code, Request, Response, Status};

/// What a stream RPC does next.
#[derive(Clone, Debug)]
pub enum Reply<M> {
    /// Send this message.
    Send(M),
    /// End the stream with this status (at open: refuse the call).
    Fail(Code, &'static str),
    /// End the stream without a status.
    End,
    /// Send nothing (yet).
    Hold,
}

/// What the fake serves and what it saw.
pub struct Fake {
    pub x509: watch::Sender<Reply<proto::X509svidResponse>>,
    pub x509_bundles: watch::Sender<Reply<proto::X509BundlesResponse>>,
    pub jwt_bundles: watch::Sender<Reply<proto::JwtBundlesResponse>>,
    /// Overrides the minted answer of `FetchJWTSVID`.
    pub jwt_svid: Mutex<Option<Result<proto::JwtsvidResponse, Status>>>,
    pub jwt_issuer: JwtIssuer,
    /// The identities `FetchJWTSVID` mints for, with their hints.
    pub jwt_ids: Mutex<Vec<(SpiffeId, String)>>,
    /// How long minted JWT-SVIDs live.
    pub jwt_lifetime: Mutex<Duration>,
    pub last_jwt_request: Mutex<Option<proto::JwtsvidRequest>>,
    pub good_headers: AtomicUsize,
    pub bad_headers: AtomicUsize,
    pub x509_opens: AtomicUsize,
    pub x509_bundles_opens: AtomicUsize,
    pub jwt_bundles_opens: AtomicUsize,
    pub jwt_svid_calls: AtomicUsize,
    pub validate_calls: AtomicUsize,
    pub open_streams: AtomicUsize,
}

impl Fake {
    pub fn new(jwt_trust_domain: &str) -> Arc<Fake> {
        Arc::new(Fake {
            x509: watch::channel(Reply::Hold).0,
            x509_bundles: watch::channel(Reply::Hold).0,
            jwt_bundles: watch::channel(Reply::Hold).0,
            jwt_svid: Mutex::new(None),
            jwt_issuer: JwtIssuer::new(td(jwt_trust_domain)).unwrap(),
            jwt_ids: Mutex::new(Vec::new()),
            jwt_lifetime: Mutex::new(Duration::from_secs(300)),
            last_jwt_request: Mutex::new(None),
            good_headers: AtomicUsize::new(0),
            bad_headers: AtomicUsize::new(0),
            x509_opens: AtomicUsize::new(0),
            x509_bundles_opens: AtomicUsize::new(0),
            jwt_bundles_opens: AtomicUsize::new(0),
            jwt_svid_calls: AtomicUsize::new(0),
            validate_calls: AtomicUsize::new(0),
            open_streams: AtomicUsize::new(0),
        })
    }

    pub fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// A running fake server.
pub struct Running {
    /// The socket path (empty for TCP).
    pub path: PathBuf,
    address: EndpointAddress,
    pub fake: Arc<Fake>,
    kill: watch::Sender<bool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Running {
    /// A test that panics before `stop` still stops the server (dropping
    /// `kill` ends it) and removes its socket.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Running {
    pub fn address(&self) -> EndpointAddress {
        self.address.clone()
    }

    /// Ends every open stream with `Unavailable`, stops accepting, waits
    /// for the server to finish and removes the socket.
    pub async fn stop(mut self) {
        self.kill.send_replace(true);
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("server did not stop")
            .unwrap();
        // Drop removes the socket.
    }
}

/// A fresh socket path in the temporary directory.
pub fn socket_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "wapi-client-{}-{name}-{n}.sock",
        std::process::id()
    ))
}

/// Serves `fake` on `path`.
pub async fn serve(fake: Arc<Fake>, path: &Path) -> Running {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).unwrap();
    let address = EndpointAddress::Unix(path.to_owned());
    serve_on(
        fake,
        UnixListenerStream::new(listener),
        path.to_owned(),
        address,
    )
}

/// Serves `fake` on a loopback TCP port.
pub async fn serve_tcp(fake: Arc<Fake>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = EndpointAddress::Tcp(listener.local_addr().unwrap());
    serve_on(
        fake,
        TcpListenerStream::new(listener),
        PathBuf::new(),
        address,
    )
}

fn serve_on<S, IO>(fake: Arc<Fake>, incoming: S, path: PathBuf, address: EndpointAddress) -> Running
where
    S: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: tonic::transport::server::Connected
        + tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + Unpin
        + Send
        + 'static,
{
    let (kill, kill_rx) = watch::channel(false);
    let service = Service {
        fake: Arc::clone(&fake),
        kill: kill_rx.clone(),
    };
    let mut shutdown = kill_rx;
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(service))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = shutdown.wait_for(|k| *k).await;
            })
            .await
            .unwrap();
    });
    Running {
        path,
        address,
        fake,
        kill,
        handle: Some(handle),
    }
}

struct Service {
    fake: Arc<Fake>,
    kill: watch::Receiver<bool>,
}

type Streamed<M> = Pin<Box<dyn Stream<Item = Result<M, Status>> + Send>>;

impl Service {
    fn check_header<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let values: Vec<_> = request.metadata().get_all(SECURITY_HEADER).iter().collect();
        if values.len() == 1 && values[0].to_str().ok() == Some(SECURITY_HEADER_VALUE) {
            self.fake.good_headers.fetch_add(1, Ordering::SeqCst);
            Ok(())
        } else {
            self.fake.bad_headers.fetch_add(1, Ordering::SeqCst);
            Err(Status::invalid_argument(
                "security header missing from request",
            ))
        }
    }

    /// A stream that sends the channel's current reply and each later one.
    fn follow<M>(&self, replies: &watch::Sender<Reply<M>>) -> Result<Streamed<M>, Status>
    where
        M: Clone + Send + Sync + 'static,
    {
        let mut rx = replies.subscribe();
        if let Reply::Fail(code, message) = &*rx.borrow() {
            return Err(Status::new(*code, *message));
        }
        let (tx, out) = mpsc::channel(16);
        let mut kill = self.kill.clone();
        let fake = Arc::clone(&self.fake);
        fake.open_streams.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _open = OpenStream(Arc::clone(&fake));
            rx.mark_changed();
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let reply = rx.borrow_and_update().clone();
                        match reply {
                            Reply::Send(message) => {
                                if tx.send(Ok(message)).await.is_err() {
                                    break;
                                }
                            }
                            Reply::Fail(code, message) => {
                                let _ = tx.send(Err(Status::new(code, message))).await;
                                break;
                            }
                            Reply::End => break,
                            Reply::Hold => {}
                        }
                    }
                    () = async { let _ = kill.wait_for(|k| *k).await; } => {
                        let _ = tx.send(Err(Status::unavailable("server stopping"))).await;
                        break;
                    }
                    () = tx.closed() => break,
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(out)))
    }
}

/// Counts a stream as open until its forwarding task ends.
struct OpenStream(Arc<Fake>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Service {
    type FetchJWTBundlesStream = Streamed<proto::JwtBundlesResponse>;
    type FetchX509SVIDStream = Streamed<proto::X509svidResponse>;
    type FetchX509BundlesStream = Streamed<proto::X509BundlesResponse>;
    type FetchWITSVIDStream = Streamed<proto::WitsvidResponse>;
    type FetchWITBundlesStream = Streamed<proto::WitBundlesResponse>;

    async fn fetch_jwt_bundles(
        &self,
        request: Request<proto::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.check_header(&request)?;
        self.fake.jwt_bundles_opens.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(self.follow(&self.fake.jwt_bundles)?))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<proto::JwtsvidRequest>,
    ) -> Result<Response<proto::JwtsvidResponse>, Status> {
        self.check_header(&request)?;
        self.fake.jwt_svid_calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        *self.fake.last_jwt_request.lock().unwrap() = Some(request.clone());
        if let Some(answer) = self.fake.jwt_svid.lock().unwrap().clone() {
            return answer.map(Response::new);
        }
        if request.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        let audience: Vec<&str> = request.audience.iter().map(String::as_str).collect();
        let expires = SystemTime::now() + *self.fake.jwt_lifetime.lock().unwrap();
        let svids: Vec<_> = self
            .fake
            .jwt_ids
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| request.spiffe_id.is_empty() || id.as_str() == request.spiffe_id)
            .map(|(id, hint)| proto::Jwtsvid {
                spiffe_id: id.to_string(),
                svid: self.fake.jwt_issuer.issue(id, &audience, expires).unwrap(),
                hint: hint.clone(),
            })
            .collect();
        if svids.is_empty() {
            return Err(Status::permission_denied("no identity issued"));
        }
        Ok(Response::new(proto::JwtsvidResponse { svids }))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<proto::ValidateJwtsvidRequest>,
    ) -> Result<Response<proto::ValidateJwtsvidResponse>, Status> {
        self.check_header(&request)?;
        self.fake.validate_calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        let bundle = self.fake.jwt_issuer.bundle();
        let svid = JwtSvid::parse_and_validate(
            &request.svid,
            &bundle,
            &[request.audience.as_str()],
            UnixTime::now(),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(proto::ValidateJwtsvidResponse {
            spiffe_id: svid.spiffe_id().to_string(),
            claims: Some(to_struct(svid.claims())),
        }))
    }

    async fn fetch_x509svid(
        &self,
        request: Request<proto::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.check_header(&request)?;
        self.fake.x509_opens.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(self.follow(&self.fake.x509)?))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<proto::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.check_header(&request)?;
        self.fake.x509_bundles_opens.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(self.follow(&self.fake.x509_bundles)?))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<proto::WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        self.check_header(&request)?;
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<proto::WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        self.check_header(&request)?;
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }
}

pub fn to_struct(map: &serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
    }
}

fn to_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

// --- Material -----------------------------------------------------------

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub fn id(text: &str) -> SpiffeId {
    SpiffeId::parse(text).unwrap()
}

/// A CA of `trust_domain`.
pub fn ca(trust_domain: &str) -> DevCa {
    DevCa::new(td(trust_domain)).unwrap()
}

/// Concatenated DER of the CA's root: a bundle as the Workload API sends it.
pub fn bundle_der(ca: &DevCa) -> Vec<u8> {
    ca.root_certificate().to_vec()
}

/// An `X509SVID` message for `spiffe_id`, issued by `ca`, valid an hour
/// either side of now.
pub fn x509_entry(ca: &DevCa, spiffe_id: &str, hint: &str) -> X509svid {
    let now = UnixTime::now().as_secs();
    let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
    let issued = ca
        .issue(&SvidSpec::new(id(spiffe_id), t(now - 3600), t(now + 3600)))
        .unwrap();
    X509svid {
        spiffe_id: spiffe_id.to_owned(),
        x509_svid: issued.chain().iter().flat_map(|c| c.to_vec()).collect(),
        x509_svid_key: issued.key_der().to_vec(),
        bundle: bundle_der(ca),
        hint: hint.to_owned(),
    }
}

/// An `X509SVIDResponse` with these SVIDs and no federated bundles.
pub fn x509_response(svids: Vec<X509svid>) -> proto::X509svidResponse {
    proto::X509svidResponse {
        svids,
        ..Default::default()
    }
}

/// The leaf certificate of an `X509SVID` message (its first DER element).
pub fn leaf_of(entry: &X509svid) -> Vec<u8> {
    let svid = spiffe_svid::X509Svid::from_der(&entry.x509_svid, &entry.x509_svid_key).unwrap();
    svid.leaf().to_vec()
}

/// Polls `condition` every 5 ms for up to 5 s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A byte-forwarding proxy in front of a server socket: killing it closes
/// every connection at once, with no gRPC status, as when an agent process
/// dies.
pub struct Proxy {
    pub path: PathBuf,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub fn start(front: &Path, back: &Path) -> Proxy {
        let _ = std::fs::remove_file(front);
        let listener = UnixListener::bind(front).unwrap();
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let back = back.to_owned();
        let registry = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let back = back.clone();
                let copy = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::UnixStream::connect(back).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                registry.lock().unwrap().push(copy.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Proxy {
            path: front.to_owned(),
            tasks,
        }
    }

    pub fn address(&self) -> EndpointAddress {
        EndpointAddress::Unix(self.path.clone())
    }

    /// Closes the listener and every connection, and removes the socket.
    pub fn kill(self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
