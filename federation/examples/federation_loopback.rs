//! Two trust domains federating on loopback, one per profile:
//!
//! - `a.example` serves its bundle with `https_spiffe` (its endpoint
//!   presents an X509-SVID), and `b.example` fetches it with the endpoint's
//!   SPIFFE ID and a bootstrap bundle obtained out of band;
//! - `b.example` serves its bundle with `https_web` (a certificate for
//!   `localhost` from a Web PKI root), and `a.example` fetches it with that
//!   root.
//!
//! Each side keeps the other's bundle current with a `BundleWatcher`; then a
//! workload of each trust domain authenticates the other in a rustls mTLS
//! handshake; then `a.example` rotates its root and `b.example` learns of it.
//!
//! Run with `cargo run -p spiffe-federation --example federation_loopback`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle, X509Authority, X509Bundle};
use spiffe_federation::{
    BundleEndpoint, BundleServer, BundleSetEntry, BundleWatcher, EndpointProfile, EndpointUrl,
    ServerOptions, ServerTls, WatchOptions,
};
use spiffe_id::{IdMatcher, SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{DevCa, SvidSpec};
use spiffe_svid::tls::{
    RotatingSvid, SpiffeClientCertVerifier, SpiffeServerCertVerifier, mtls_client_config,
    mtls_server_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let a_td = TrustDomain::new("a.example")?;
    let b_td = TrustDomain::new("b.example")?;

    // Each trust domain: a CA, and the bundle set its workloads verify
    // with, holding its own bundle (refresh hint: 1 s, to keep this short).
    let a_ca = DevCa::new(a_td.clone())?;
    let b_ca = DevCa::new(b_td.clone())?;
    let a_set = Arc::new(BundleSet::new());
    let b_set = Arc::new(BundleSet::new());
    a_set.insert(bundle_of(&[&a_ca], 1)?);
    b_set.insert(bundle_of(&[&b_ca], 1)?);

    // a.example's endpoint: https_spiffe, with a rotatable X509-SVID.
    let a_endpoint_id = SpiffeId::parse("spiffe://a.example/bundle-endpoint")?;
    let a_endpoint_svid = Arc::new(RotatingSvid::new(issue(&a_ca, a_endpoint_id.as_str())?));
    let a_server = BundleServer::bind(
        "127.0.0.1:0".parse()?,
        ServerTls::https_spiffe(Arc::clone(&a_endpoint_svid))?,
        BundleSetEntry::new(Arc::clone(&a_set), a_td.clone()),
        ServerOptions::default(),
    )
    .await?;
    println!(
        "a.example serves its bundle (https_spiffe) on {}",
        a_server.local_addr()
    );

    // b.example's endpoint: https_web, with a certificate for localhost.
    let web = WebPki::new("localhost")?;
    let b_server = BundleServer::bind(
        "127.0.0.1:0".parse()?,
        ServerTls::https_web(web.chain.clone(), web.key())?,
        BundleSetEntry::new(Arc::clone(&b_set), b_td.clone()),
        ServerOptions::default(),
    )
    .await?;
    println!(
        "b.example serves its bundle (https_web) on {}",
        b_server.local_addr()
    );

    // Polls at the bundle's refresh hint, but at least every 200 ms here.
    let options = WatchOptions::default()
        .with_refresh_bounds(Duration::from_millis(200), Duration::from_secs(60));

    // a.example watches b.example over https_web: only the Web PKI roots.
    let a_watches_b = BundleWatcher::spawn(
        BundleEndpoint::new(
            b_td.clone(),
            EndpointUrl::parse(&format!(
                "https://localhost:{}/",
                b_server.local_addr().port()
            ))?,
            EndpointProfile::https_web(web.roots()?),
        ),
        Arc::clone(&a_set),
        options.clone(),
    )?;

    // b.example watches a.example over https_spiffe: the endpoint's SPIFFE
    // ID, and a.example's X.509 bundle obtained out of band for the first
    // connection (later ones use the fetched bundle).
    let bootstrap = a_set.get(&a_td).ok_or("no bundle")?.x509_bundle().clone();
    let b_watches_a = BundleWatcher::spawn(
        BundleEndpoint::new(
            a_td.clone(),
            EndpointUrl::parse(&format!(
                "https://127.0.0.1:{}/",
                a_server.local_addr().port()
            ))?,
            EndpointProfile::https_spiffe(a_endpoint_id.clone(), bootstrap),
        ),
        Arc::clone(&b_set),
        options,
    )?;

    let got = wait_for(&a_watches_b, |_| true).await?;
    println!(
        "a.example fetched b.example's bundle: sequence {:?}, {} X.509 authority",
        got.sequence(),
        got.x509_bundle().len()
    );
    let got = wait_for(&b_watches_a, |_| true).await?;
    println!(
        "b.example fetched a.example's bundle: sequence {:?}, {} X.509 authority",
        got.sequence(),
        got.x509_bundle().len()
    );

    // A workload of each trust domain; each verifies the other with the
    // federated bundles in its own set.
    let frontend = issue(&a_ca, "spiffe://a.example/frontend")?;
    let backend = issue(&b_ca, "spiffe://b.example/backend")?;
    mtls(&a_set, frontend.clone(), &b_set, backend).await?;
    println!("mTLS: spiffe://a.example/frontend -> spiffe://b.example/backend: ok");

    // a.example rotates its root: the new root is published next to the
    // old one, the endpoint's SVID moves to it, then the old root goes.
    let a_new_ca = DevCa::new(a_td.clone())?;
    a_set.insert(bundle_of(&[&a_ca, &a_new_ca], 2)?);
    wait_for(&b_watches_a, |b| b.sequence() == Some(2)).await?;
    a_endpoint_svid.set(issue(&a_new_ca, a_endpoint_id.as_str())?);
    a_set.insert(bundle_of(&[&a_new_ca], 3)?);
    let got = wait_for(&b_watches_a, |b| b.sequence() == Some(3)).await?;
    println!(
        "b.example followed a.example's root rotation: sequence {:?}",
        got.sequence()
    );

    let rotated = issue(&a_new_ca, "spiffe://a.example/frontend")?;
    let backend = issue(&b_ca, "spiffe://b.example/backend")?;
    mtls(&a_set, rotated, &b_set, backend.clone()).await?;
    println!("mTLS with a.example's new root: ok");
    if mtls(&a_set, frontend, &b_set, backend).await.is_ok() {
        return Err("an SVID of the removed root was still trusted".into());
    }
    println!("an SVID of a.example's removed root is refused: ok");

    a_watches_b.stop().await;
    b_watches_a.stop().await;
    a_server.shutdown().await;
    b_server.shutdown().await;
    println!("done");
    Ok(())
}

/// The SPIFFE bundle of `cas`' roots, with a one-second refresh hint.
fn bundle_of(cas: &[&DevCa], sequence: u64) -> Result<SpiffeBundle> {
    let td = cas.first().ok_or("no CA")?.trust_domain().clone();
    let authorities = cas
        .iter()
        .map(|ca| X509Authority::from_der(ca.root_certificate().clone()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let x509 = X509Bundle::from_authorities(td.clone(), authorities);
    Ok(SpiffeBundle::new(
        x509,
        JwtBundle::empty(td),
        Some(sequence),
        Some(1),
    )?)
}

/// An X509-SVID valid from a minute ago for an hour.
fn issue(ca: &DevCa, id: &str) -> Result<X509Svid> {
    let now = UnixTime::now().as_secs();
    let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
    Ok(ca
        .issue(&SvidSpec::new(
            SpiffeId::parse(id)?,
            t(now - 60),
            t(now + 3600),
        ))?
        .to_x509_svid()?)
}

async fn wait_for(
    watcher: &BundleWatcher,
    what: impl Fn(&SpiffeBundle) -> bool,
) -> Result<SpiffeBundle> {
    let mut updates = watcher.subscribe();
    let wait = async {
        loop {
            if let Some(bundle) = updates.current().filter(|b| what(b)) {
                return Ok(bundle);
            }
            if updates.changed().await.is_none() {
                return Err("watcher stopped");
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(15), wait).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(format!("timed out; watcher status: {:?}", watcher.status()).into()),
    }
}

/// A rustls mTLS handshake between two workloads over an in-memory pipe,
/// each verifying the other with its own bundle set.
async fn mtls(
    client_set: &Arc<BundleSet>,
    client: X509Svid,
    server_set: &Arc<BundleSet>,
    server: X509Svid,
) -> Result<()> {
    let server_config = mtls_server_config(
        SpiffeClientCertVerifier::new(
            Arc::clone(server_set),
            IdMatcher::member_of(client.spiffe_id().trust_domain()),
        )?,
        RotatingSvid::new(server.clone()),
    )?;
    let client_config = mtls_client_config(
        SpiffeServerCertVerifier::new(
            Arc::clone(client_set),
            IdMatcher::exact(server.spiffe_id().clone()),
        )?,
        RotatingSvid::new(client),
    )?;
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let serve = async move {
        let mut tls = acceptor.accept(server_io).await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        tls.write_all(&byte).await?;
        tls.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    let call = async move {
        let mut tls = connector
            .connect(ServerName::try_from("backend.invalid")?, client_io)
            .await?;
        tls.write_all(b"!").await?;
        tls.flush().await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        Ok::<_, Box<dyn Error>>(())
    };
    let (called, served) = tokio::join!(call, serve);
    called?;
    served?;
    Ok(())
}

/// A Web PKI root and a server certificate for one host name.
struct WebPki {
    root: rustls::pki_types::CertificateDer<'static>,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: Vec<u8>,
}

impl WebPki {
    fn new(host: &str) -> Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec![host.to_owned()])?.signed_by(&key, &ca)?;
        Ok(WebPki {
            root: ca.der().clone(),
            chain: vec![leaf.der().clone()],
            key: key.serialize_der(),
        })
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone())?;
        Ok(roots)
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}
