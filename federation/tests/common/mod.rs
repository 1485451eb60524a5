//! Helpers shared by the integration tests: trust domains with development
//! CAs, a Web PKI made with rcgen, rustls mTLS between workloads, and fake
//! bundle endpoints that misbehave on purpose. Everything listens on
//! 127.0.0.1 only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{RootCertStore, ServerConfig};
use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle, X509Authority, X509Bundle};
use spiffe_federation::{BundleServer, BundleSetEntry, ServerOptions, ServerTls};
use spiffe_id::{IdMatcher, SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::DevCa;
use spiffe_svid::issuer::SvidSpec;
use spiffe_svid::tls::{
    RotatingSvid, SpiffeClientCertVerifier, SpiffeServerCertVerifier, SvidCertResolver,
    mtls_client_config, mtls_server_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// An X509-SVID for `spiffe_id`, valid from a minute ago for an hour.
pub fn svid(ca: &DevCa, spiffe_id: &str) -> X509Svid {
    let now = UnixTime::now().as_secs();
    ca.issue(&SvidSpec::new(id(spiffe_id), at(now - 60), at(now + 3600)))
        .unwrap()
        .to_x509_svid()
        .unwrap()
}

/// The SPIFFE bundle of `cas`' roots (all of one trust domain).
pub fn bundle_of(cas: &[&DevCa], sequence: u64, refresh_hint: Option<i64>) -> SpiffeBundle {
    let td = cas[0].trust_domain().clone();
    let x509 = X509Bundle::from_authorities(
        td.clone(),
        cas.iter()
            .map(|ca| X509Authority::from_der(ca.root_certificate().clone()).unwrap()),
    );
    SpiffeBundle::new(x509, JwtBundle::empty(td), Some(sequence), refresh_hint).unwrap()
}

/// A Web PKI: a root CA and a server certificate for `names`.
pub struct WebPki {
    pub root: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

impl WebPki {
    pub fn new(names: &[&str]) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Web PKI root");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        WebPki {
            root: ca.der().clone(),
            chain: vec![leaf.der().clone()],
            key_der: leaf_key.serialize_der(),
        }
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        roots
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    pub fn server_tls(&self) -> ServerTls {
        ServerTls::https_web(self.chain.clone(), self.key()).unwrap()
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        let mut config = server_builder()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key())
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn server_builder() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
    ServerConfig::builder_with_provider(spiffe_svid::default_crypto_provider().unwrap())
        .with_safe_default_protocol_versions()
        .unwrap()
}

/// A rustls server config presenting `svid`, for fake https_spiffe servers.
pub fn spiffe_server_config(svid: X509Svid) -> Arc<ServerConfig> {
    let mut config = server_builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SvidCertResolver::new(RotatingSvid::new(svid))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A real bundle endpoint serving `set`'s entry for `td`.
pub async fn serve(set: &Arc<BundleSet>, td: &TrustDomain, tls: ServerTls) -> BundleServer {
    BundleServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        tls,
        BundleSetEntry::new(Arc::clone(set), td.clone()),
        ServerOptions::default(),
    )
    .await
    .unwrap()
}

/// What a fake endpoint does with a request.
pub enum Reply {
    /// Writes these bytes and closes.
    Raw(Vec<u8>),
    /// Never answers (until the test ends).
    Hang,
    /// Writes `head`, then `total` bytes of body in 64 KiB pieces, stopping
    /// when the client goes away.
    Stream { head: String, total: usize },
}

/// An HTTP/1.1 response with a body and `Connection: close`.
pub fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Reply::Raw(out)
}

/// A fake endpoint over TLS on 127.0.0.1.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub body_bytes_written: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start(
        tls: Arc<ServerConfig>,
        reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let reply = Arc::new(reply);
        let (reqs, wr) = (Arc::clone(&requests), Arc::clone(&written));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, reply, reqs, wr) = (
                    acceptor.clone(),
                    Arc::clone(&reply),
                    Arc::clone(&reqs),
                    Arc::clone(&wr),
                );
                conns.spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    reqs.lock().unwrap().push(head.clone());
                    match reply(&head) {
                        Reply::Raw(bytes) => {
                            let _ = tls.write_all(&bytes).await;
                            let _ = tls.shutdown().await;
                        }
                        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                        Reply::Stream { head, total } => {
                            if tls.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let piece = vec![b'a'; 65536];
                            let mut sent = 0;
                            while sent < total {
                                let n = piece.len().min(total - sent);
                                if tls.write_all(&piece[..n]).await.is_err() {
                                    return;
                                }
                                sent += n;
                                wr.fetch_add(n, Ordering::SeqCst);
                            }
                            let _ = tls.shutdown().await;
                        }
                    }
                });
            }
        });
        FakeServer {
            addr,
            requests,
            body_bytes_written: written,
            task,
        }
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A rustls mTLS handshake between a client workload and a server
/// workload over an in-memory pipe, each verifying the other with its own
/// bundle set; then one byte each way. `Err` carries the first side's
/// error.
pub async fn mtls_handshake(
    client_set: Arc<BundleSet>,
    client_svid: X509Svid,
    server_set: Arc<BundleSet>,
    server_svid: X509Svid,
) -> Result<(), String> {
    let server_id = server_svid.spiffe_id().clone();
    let client_td = client_svid.spiffe_id().trust_domain();
    let server_config = mtls_server_config(
        SpiffeClientCertVerifier::new(server_set, IdMatcher::member_of(client_td)).unwrap(),
        RotatingSvid::new(server_svid),
    )
    .unwrap();
    let client_config = mtls_client_config(
        SpiffeServerCertVerifier::new(client_set, IdMatcher::exact(server_id)).unwrap(),
        RotatingSvid::new(client_svid),
    )
    .unwrap();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let server = async move {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| format!("server: {e}"))?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b)
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.write_all(b"o")
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.flush().await.map_err(|e| format!("server: {e}"))?;
        Ok::<_, String>(())
    };
    let client = async move {
        let name = ServerName::try_from("workload.invalid").unwrap();
        let mut tls = connector
            .connect(name, client_io)
            .await
            .map_err(|e| format!("client: {e}"))?;
        tls.write_all(b"p")
            .await
            .map_err(|e| format!("client: {e}"))?;
        tls.flush().await.map_err(|e| format!("client: {e}"))?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b)
            .await
            .map_err(|e| format!("client: {e}"))?;
        Ok::<_, String>(())
    };
    let (c, s) = tokio::join!(client, server);
    c.and(s)
}
