//! The bundle endpoint server over the network (methods, ETags, shutdown),
//! the client's conditional requests, and redirects (rules F-15, F-17,
//! F-23).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{FakeServer, Reply, WebPki, bundle_of, http, serve, spiffe_server_config, svid, td};
use rustls::pki_types::ServerName;
use spiffe_bundle::{BundleSet, SpiffeBundle};
use spiffe_federation::{
    BundleClient, BundleEndpoint, BundleServer, EndpointProfile, EndpointUrl, FetchError,
    FetchOptions, ServerOptions, ServerTls,
};
use spiffe_id::SpiffeId;
use spiffe_svid::issuer::DevCa;
use spiffe_svid::tls::RotatingSvid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TD: &str = "remote.test";
const ENDPOINT_ID: &str = "spiffe://remote.test/bundle-endpoint";

fn web_client(pki: &WebPki, url: &str, options: FetchOptions) -> BundleClient {
    BundleClient::with_options(
        BundleEndpoint::new(
            td(TD),
            EndpointUrl::parse(url).unwrap(),
            EndpointProfile::https_web(pki.roots()),
        ),
        options,
    )
    .unwrap()
}

/// Sends `request` over TLS to `port` and returns the raw response.
async fn raw(pki: &WebPki, port: u16, request: &str) -> String {
    let config = rustls::ClientConfig::builder_with_provider(
        spiffe_svid::default_crypto_provider().unwrap(),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pki.roots())
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn bundle_server(pki: &WebPki) -> (Arc<BundleSet>, SpiffeBundle, BundleServer) {
    let ca = DevCa::new(td(TD)).unwrap();
    let set = Arc::new(BundleSet::new());
    let bundle = bundle_of(&[&ca], 1, Some(60));
    set.insert(bundle.clone());
    let server = serve(&set, &td(TD), pki.server_tls()).await;
    (set, bundle, server)
}

#[tokio::test]
async fn f14_get_head_405_and_etags_over_the_network() {
    let pki = WebPki::new(&["localhost"]);
    let (_set, bundle, server) = bundle_server(&pki).await;
    let port = server.local_addr().port();

    let get = raw(
        &pki,
        port,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
    assert_eq!(header(&get, "content-type"), Some("application/json"));
    assert!(get.ends_with(&bundle.to_json()), "{get}");
    let etag = header(&get, "etag").unwrap().to_owned();

    let head = raw(
        &pki,
        port,
        "HEAD /any/path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(
        header(&head, "content-length"),
        Some(bundle.to_json().len().to_string().as_str())
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");

    let post = raw(
        &pki,
        port,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert_eq!(header(&post, "allow"), Some("GET, HEAD"));

    let conditional = raw(
        &pki,
        port,
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        conditional.starts_with("HTTP/1.1 304 Not Modified\r\n"),
        "{conditional}"
    );
    assert_eq!(header(&conditional, "etag"), Some(etag.as_str()));
    assert!(conditional.ends_with("\r\n\r\n"));

    server.shutdown().await;
    // Closed for good.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_client_revalidates_with_if_none_match() {
    let pki = WebPki::new(&["localhost"]);
    let ca = DevCa::new(td(TD)).unwrap();
    let json = bundle_of(&[&ca], 4, None).to_json();
    let server = FakeServer::start(pki.server_config(), move |request| {
        if request
            .to_ascii_lowercase()
            .contains("if-none-match: \"v4\"")
        {
            http("304 Not Modified", &[("ETag", "\"v4\"")], b"")
        } else {
            http(
                "200 OK",
                &[("ETag", "\"v4\""), ("Content-Type", "application/json")],
                json.as_bytes(),
            )
        }
    })
    .await;
    let client = web_client(
        &pki,
        &format!("https://localhost:{}/", server.port()),
        FetchOptions::default(),
    );
    let first = client.fetch(None).await.unwrap();
    let second = client.fetch(Some(&first)).await.unwrap();
    assert_eq!(
        second.generation(),
        first.generation(),
        "304 returns the current bundle"
    );
    let requests = server.requests.lock().unwrap().clone();
    assert!(!requests[0].to_ascii_lowercase().contains("if-none-match"));
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains("if-none-match: \"v4\"")
    );
    // A caller holding another bundle gets a full download.
    let other = bundle_of(&[&ca], 3, None);
    client.fetch(Some(&other)).await.unwrap();
    assert!(
        !server.requests.lock().unwrap()[2]
            .to_ascii_lowercase()
            .contains("if-none-match")
    );
}

#[tokio::test]
async fn the_client_and_server_agree_on_etags() {
    let pki = WebPki::new(&["localhost"]);
    let hits = Arc::new(AtomicU64::new(0));
    let ca = DevCa::new(td(TD)).unwrap();
    let bundle = bundle_of(&[&ca], 1, None);
    let counted = Arc::clone(&hits);
    let server = BundleServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        pki.server_tls(),
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(bundle.clone())
        },
        ServerOptions::default().with_path("/bundle"),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let client = web_client(
        &pki,
        &format!("https://localhost:{port}/bundle"),
        FetchOptions::default(),
    );
    let first = client.fetch(None).await.unwrap();
    let second = client.fetch(Some(&first)).await.unwrap();
    assert_eq!(second.generation(), first.generation());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The configured path only.
    let other = web_client(
        &pki,
        &format!("https://localhost:{port}/other"),
        FetchOptions::default(),
    );
    assert!(matches!(
        other.fetch(None).await,
        Err(FetchError::Status { status: 404, .. })
    ));
}

#[tokio::test]
async fn f17_redirects_are_followed_once_and_never_remembered() {
    let pki = WebPki::new(&["localhost"]);
    let (_set, bundle, target) = bundle_server(&pki).await;
    let location = format!("https://localhost:{}/moved", target.local_addr().port());
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let loc = location.clone();
        let redirector = FakeServer::start(pki.server_config(), move |_| {
            http(status, &[("Location", &loc)], b"")
        })
        .await;
        let client = web_client(
            &pki,
            &format!("https://localhost:{}/", redirector.port()),
            FetchOptions::default(),
        );
        assert_eq!(client.fetch(None).await.unwrap(), bundle);
        assert_eq!(client.fetch(None).await.unwrap(), bundle);
        // Both fetches started at the configured URL (rule F-17).
        assert_eq!(redirector.hits(), 2, "{status}");
    }
}

#[tokio::test]
async fn f15_redirects_to_invalid_urls_are_refused() {
    let pki = WebPki::new(&["localhost"]);
    for (location, reason) in [
        ("http://localhost/bundle", "the scheme must be https"),
        (
            "https://user:pw@localhost/bundle",
            "the URL must not carry userinfo",
        ),
    ] {
        let redirector = FakeServer::start(pki.server_config(), move |_| {
            http("302 Found", &[("Location", location)], b"")
        })
        .await;
        let client = web_client(
            &pki,
            &format!("https://localhost:{}/", redirector.port()),
            FetchOptions::default(),
        );
        let err = client.fetch(None).await.unwrap_err();
        assert!(
            matches!(&err, FetchError::Redirect { location: l, reason: r, .. } if l == location && r == reason),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn redirect_limits() {
    let pki = WebPki::new(&["localhost"]);
    // Redirects to itself forever.
    let redirector = FakeServer::start(pki.server_config(), |_| {
        http("302 Found", &[("Location", "/again")], b"")
    })
    .await;
    let url = format!("https://localhost:{}/", redirector.port());
    let err = web_client(&pki, &url, FetchOptions::default())
        .fetch(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { limit: 3, .. }),
        "{err:?}"
    );
    assert_eq!(redirector.hits(), 4);
    let err = web_client(&pki, &url, FetchOptions::default().with_max_redirects(0))
        .fetch(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { limit: 0, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn f16_redirect_targets_get_the_same_web_checks() {
    let pki = WebPki::new(&["localhost"]);
    let other_pki = WebPki::new(&["localhost"]);
    // The target's certificate comes from a root the client does not trust.
    let (_set, _bundle, target) = bundle_server(&other_pki).await;
    let location = format!("https://localhost:{}/", target.local_addr().port());
    let redirector = FakeServer::start(pki.server_config(), move |_| {
        http("302 Found", &[("Location", &location)], b"")
    })
    .await;
    let client = web_client(
        &pki,
        &format!("https://localhost:{}/", redirector.port()),
        FetchOptions::default(),
    );
    let err = client.fetch(None).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Tls { url, .. } if url.contains(&target.local_addr().port().to_string())),
        "{err:?}"
    );
}

#[tokio::test]
async fn f23_https_spiffe_redirect_targets_must_present_the_same_id() {
    let ca = DevCa::new(td(TD)).unwrap();
    let bundle = bundle_of(&[&ca], 1, None);
    let set = Arc::new(BundleSet::new());
    set.insert(bundle.clone());
    let good = serve(
        &set,
        &td(TD),
        ServerTls::https_spiffe(RotatingSvid::new(svid(&ca, ENDPOINT_ID))).unwrap(),
    )
    .await;
    let other = serve(
        &set,
        &td(TD),
        ServerTls::https_spiffe(RotatingSvid::new(svid(&ca, "spiffe://remote.test/mirror")))
            .unwrap(),
    )
    .await;
    for (target, ok) in [
        (good.local_addr().port(), true),
        (other.local_addr().port(), false),
    ] {
        let location = format!("https://127.0.0.1:{target}/");
        let redirector =
            FakeServer::start(spiffe_server_config(svid(&ca, ENDPOINT_ID)), move |_| {
                http("302 Found", &[("Location", &location)], b"")
            })
            .await;
        let client = BundleClient::new(BundleEndpoint::new(
            td(TD),
            EndpointUrl::parse(&format!("https://127.0.0.1:{}/", redirector.port())).unwrap(),
            EndpointProfile::https_spiffe(SpiffeId::parse(ENDPOINT_ID).unwrap(), Arc::clone(&set)),
        ))
        .unwrap();
        let result = client.fetch(None).await;
        if ok {
            assert_eq!(result.unwrap(), bundle);
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, FetchError::WrongEndpointId { presented, .. } if presented.as_str() == "spiffe://remote.test/mirror"),
                "{err:?}"
            );
        }
    }
}

#[tokio::test]
async fn no_bundle_yet_is_503() {
    let pki = WebPki::new(&["localhost"]);
    let server = BundleServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        pki.server_tls(),
        || None,
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let client = web_client(
        &pki,
        &format!("https://localhost:{}/", server.local_addr().port()),
        FetchOptions::default(),
    );
    assert!(matches!(
        client.fetch(None).await,
        Err(FetchError::Status { status: 503, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_open_requests() {
    let pki = WebPki::new(&["localhost"]);
    // A provider slow enough that shutdown starts mid-request.
    let ca = DevCa::new(td(TD)).unwrap();
    let bundle = bundle_of(&[&ca], 1, None);
    // The provider tells the test it is serving, then waits for the test
    // to have started the shutdown: the request is in flight for sure.
    let (serving_tx, serving_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let serving_tx = std::sync::Mutex::new(serving_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    let server = BundleServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        pki.server_tls(),
        move || {
            serving_tx.lock().unwrap().send(()).unwrap();
            release_rx
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            Some(bundle.clone())
        },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let client = web_client(
        &pki,
        &format!("https://localhost:{}/", server.local_addr().port()),
        FetchOptions::default(),
    );
    let fetch = tokio::spawn(async move { client.fetch(None).await });
    tokio::task::spawn_blocking(move || serving_rx.recv().unwrap())
        .await
        .unwrap();
    let shutdown = tokio::spawn(async move { server.shutdown().await });
    // Shutdown has begun (it waits on the request in flight); let the
    // request finish: it must still get its answer.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the request"
    );
    release_tx.send(()).unwrap();
    assert!(fetch.await.unwrap().is_ok());
    shutdown.await.unwrap();
}

#[test]
fn config_errors() {
    assert!(matches!(
        BundleClient::new(BundleEndpoint::new(
            td(TD),
            EndpointUrl::parse("https://localhost/").unwrap(),
            EndpointProfile::https_web(rustls::RootCertStore::empty()),
        )),
        Err(spiffe_federation::ConfigError::NoWebPkiRoots)
    ));
    assert!(matches!(
        EndpointProfile::https_web_der([rustls::pki_types::CertificateDer::from(vec![1, 2, 3])]),
        Err(spiffe_federation::ConfigError::InvalidRootCertificate { index: 0, .. })
    ));
    // A watcher needs a runtime.
    let pki = WebPki::new(&["localhost"]);
    let endpoint = BundleEndpoint::new(
        td(TD),
        EndpointUrl::parse("https://localhost/").unwrap(),
        EndpointProfile::https_web(pki.roots()),
    );
    assert!(matches!(
        spiffe_federation::BundleWatcher::spawn(
            endpoint,
            Arc::new(BundleSet::new()),
            Default::default()
        ),
        Err(spiffe_federation::ConfigError::NoRuntime)
    ));
    let _ = Reply::Hang;
}
