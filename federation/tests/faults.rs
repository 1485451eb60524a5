//! Bad endpoints: each fault gives a precise error, and the watcher keeps
//! the last good bundle in the set (rule F-24) without telling subscribers
//! anything changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    FakeServer, Reply, WebPki, bundle_of, http, ms, serve, spiffe_server_config, svid, td,
};
use spiffe_bundle::{BundleSet, SpiffeBundle, X509Bundle};
use spiffe_federation::{
    BundleEndpoint, BundleWatcher, EndpointProfile, EndpointUrl, FetchError, FetchOptions,
    ServerTls, WatchOptions,
};
use spiffe_id::SpiffeId;
use spiffe_svid::issuer::DevCa;
use tokio::net::TcpListener;

const REMOTE: &str = "remote.test";
const ENDPOINT_ID: &str = "spiffe://remote.test/bundle-endpoint";

/// The remote trust domain: its CA, and the bundle the local side fetched
/// from it earlier (sequence 5).
struct Remote {
    ca: DevCa,
    good: SpiffeBundle,
}

fn remote() -> Remote {
    let ca = DevCa::new(td(REMOTE)).unwrap();
    let good = bundle_of(&[&ca], 5, None);
    Remote { ca, good }
}

fn url(host: &str, port: u16) -> EndpointUrl {
    EndpointUrl::parse(&format!("https://{host}:{port}/bundle")).unwrap()
}

fn web_endpoint(pki: &WebPki, port: u16) -> BundleEndpoint {
    BundleEndpoint::new(
        td(REMOTE),
        url("localhost", port),
        EndpointProfile::https_web(pki.roots()),
    )
}

/// Watches `endpoint` with `good` already in the set, waits for one fetch
/// attempt, checks the set and the subscribers were left alone, and returns
/// the error.
async fn fault(endpoint: BundleEndpoint, good: &SpiffeBundle, fetch: FetchOptions) -> FetchError {
    let set = Arc::new(BundleSet::new());
    set.insert(good.clone());
    let watcher = BundleWatcher::spawn(
        endpoint,
        Arc::clone(&set),
        WatchOptions::default().with_fetch_options(fetch),
    )
    .unwrap();
    let updates = watcher.subscribe();
    let status = watcher.refresh().await;
    assert!(status.consecutive_failures >= 1, "{status:?}");
    assert!(status.last_success.is_none());
    // The last good bundle stays, the very same value.
    let kept = set.get(&td(REMOTE)).unwrap();
    assert_eq!(kept.generation(), good.generation());
    assert_eq!(updates.current().unwrap().generation(), good.generation());
    assert!(!updates.clone().has_changed_for_test());
    // The next attempt is a retry with backoff, not a tight loop.
    assert!(status.next_attempt_in.unwrap() >= Duration::from_secs(4));
    watcher.stop().await;
    status.last_error.unwrap()
}

/// `BundleUpdates` has no `has_changed`; a zero-time wait stands in.
trait HasChanged {
    fn has_changed_for_test(self) -> bool;
}

impl HasChanged for spiffe_federation::BundleUpdates {
    fn has_changed_for_test(mut self) -> bool {
        futures_now(async move { self.changed().await.is_some() })
    }
}

/// Polls a future once: `true` only if it is ready with `true`.
fn futures_now(f: impl std::future::Future<Output = bool>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    matches!(f.as_mut().poll(&mut cx), std::task::Poll::Ready(true))
}

#[tokio::test]
async fn endpoint_down_is_a_connect_error() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let err = fault(web_endpoint(&pki, port), &r.good, FetchOptions::default()).await;
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot connect to https://localhost:"),
        "{err}"
    );
}

#[tokio::test]
async fn slow_endpoint_times_out() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let server = FakeServer::start(pki.server_config(), |_| Reply::Hang).await;
    let started = Instant::now();
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default().with_timeout(ms(500)),
    )
    .await;
    assert_eq!(
        err,
        FetchError::Timeout {
            url: url("localhost", server.port()).to_string(),
            after: ms(500)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn endpoint_that_never_starts_tls_is_a_connect_timeout() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    // Accepts TCP connections and holds them without a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let err = fault(
        web_endpoint(&pki, port),
        &r.good,
        FetchOptions::default().with_connect_timeout(ms(300)),
    )
    .await;
    assert!(
        matches!(err, FetchError::ConnectTimeout { after, .. } if after == ms(300)),
        "{err:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn html_is_refused_by_its_content_type() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let server = FakeServer::start(pki.server_config(), |_| {
        http(
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<html><body>Welcome to nginx!</body></html>",
        )
    })
    .await;
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default(),
    )
    .await;
    assert!(
        matches!(&err, FetchError::ContentType { found, .. } if found == "text/html; charset=utf-8"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("expected application/json"),
        "{err}"
    );
}

#[tokio::test]
async fn html_without_a_content_type_is_a_malformed_bundle() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let server = FakeServer::start(pki.server_config(), |_| {
        http("200 OK", &[], b"<html><body>hello</body></html>")
    })
    .await;
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default(),
    )
    .await;
    assert!(matches!(err, FetchError::MalformedBundle { .. }), "{err:?}");
    assert!(err.to_string().contains("malformed JSON"), "{err}");
}

#[tokio::test]
async fn ten_megabytes_with_a_content_length_are_refused_unread() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let total = 10 * 1024 * 1024;
    let server = FakeServer::start(pki.server_config(), move |_| Reply::Stream {
        head: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n"
        ),
        total,
    })
    .await;
    let started = Instant::now();
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default(),
    )
    .await;
    assert_eq!(
        err,
        FetchError::TooLarge {
            url: url("localhost", server.port()).to_string(),
            limit: 1 << 20
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn ten_megabytes_without_a_length_are_cut_off_at_the_limit() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let total = 10 * 1024 * 1024;
    // Body delimited by closing the connection: its size is only known by
    // reading it.
    let server = FakeServer::start(pki.server_config(), move |_| Reply::Stream {
        head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            .to_owned(),
        total,
    })
    .await;
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default().with_max_body_bytes(64 * 1024),
    )
    .await;
    assert!(
        matches!(err, FetchError::TooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    // The client stopped reading long before the end.
    tokio::time::sleep(ms(200)).await;
    assert!(
        server
            .body_bytes_written
            .load(std::sync::atomic::Ordering::SeqCst)
            < total,
        "the whole body was sent"
    );
}

#[tokio::test]
async fn a_bundle_of_another_trust_domain_is_refused() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    // The URL of other.test's endpoint, configured as remote.test's.
    let other = DevCa::new(td("other.test")).unwrap();
    let other_set = Arc::new(BundleSet::new());
    other_set.insert(bundle_of(&[&other], 9, None));
    let server = serve(&other_set, &td("other.test"), pki.server_tls()).await;
    let err = fault(
        web_endpoint(&pki, server.local_addr().port()),
        &r.good,
        FetchOptions::default(),
    )
    .await;
    assert!(
        matches!(&err, FetchError::WrongTrustDomain { expected, found, .. }
            if expected.as_str() == REMOTE && found.as_str() == "other.test"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("belongs to trust domain other.test, not remote.test"),
        "{err}"
    );
}

#[tokio::test]
async fn an_older_sequence_is_refused_unless_allowed() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let remote_set = Arc::new(BundleSet::new());
    remote_set.insert(bundle_of(&[&r.ca], 3, None));
    let server = serve(&remote_set, &td(REMOTE), pki.server_tls()).await;
    let endpoint = web_endpoint(&pki, server.local_addr().port());
    let err = fault(endpoint.clone(), &r.good, FetchOptions::default()).await;
    assert_eq!(
        err,
        FetchError::SequenceWentBackwards {
            current: 5,
            fetched: 3
        }
    );

    // A trust domain known to have restarted its sequence.
    let set = Arc::new(BundleSet::new());
    set.insert(r.good.clone());
    let watcher = BundleWatcher::spawn(
        endpoint,
        Arc::clone(&set),
        WatchOptions::default()
            .with_fetch_options(FetchOptions::default().with_allow_sequence_rollback(true)),
    )
    .unwrap();
    let status = watcher.refresh().await;
    assert_eq!(status.last_error, None);
    assert_eq!(set.get(&td(REMOTE)).unwrap().sequence(), Some(3));
}

#[tokio::test]
async fn a_server_presenting_the_wrong_spiffe_id_is_refused() {
    let r = remote();
    let remote_set = Arc::new(BundleSet::new());
    remote_set.insert(r.good.clone());
    // A valid X509-SVID of the right trust domain, for another workload.
    let impostor = Arc::new(spiffe_svid::tls::RotatingSvid::new(svid(
        &r.ca,
        "spiffe://remote.test/impostor",
    )));
    let server = serve(
        &remote_set,
        &td(REMOTE),
        ServerTls::https_spiffe(impostor).unwrap(),
    )
    .await;
    let endpoint = BundleEndpoint::new(
        td(REMOTE),
        url("127.0.0.1", server.local_addr().port()),
        EndpointProfile::https_spiffe(
            SpiffeId::parse(ENDPOINT_ID).unwrap(),
            r.good.x509_bundle().clone(),
        ),
    );
    let err = fault(endpoint, &r.good, FetchOptions::default()).await;
    assert!(
        matches!(&err, FetchError::WrongEndpointId { expected, presented, .. }
            if expected.as_str() == ENDPOINT_ID && presented.as_str() == "spiffe://remote.test/impostor"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("presented SPIFFE ID spiffe://remote.test/impostor"),
        "{err}"
    );
}

#[tokio::test]
async fn an_svid_from_an_untrusted_ca_is_a_tls_error() {
    let r = remote();
    let rogue = DevCa::new(td(REMOTE)).unwrap();
    let server = FakeServer::start(spiffe_server_config(svid(&rogue, ENDPOINT_ID)), |_| {
        http("200 OK", &[], b"{\"keys\":[]}")
    })
    .await;
    let endpoint = BundleEndpoint::new(
        td(REMOTE),
        url("127.0.0.1", server.port()),
        EndpointProfile::https_spiffe(
            SpiffeId::parse(ENDPOINT_ID).unwrap(),
            r.good.x509_bundle().clone(),
        ),
    );
    let err = fault(endpoint, &r.good, FetchOptions::default()).await;
    assert!(
        matches!(&err, FetchError::Tls { reason, .. } if reason.contains("UnknownIssuer")),
        "{err:?}"
    );
    assert_eq!(
        server.hits(),
        0,
        "nothing is sent to an unauthenticated server"
    );
}

#[tokio::test]
async fn f16_a_web_certificate_for_another_host_is_refused() {
    let r = remote();
    let pki = WebPki::new(&["bundles.other.example"]);
    let server = FakeServer::start(pki.server_config(), |_| {
        http("200 OK", &[], b"{\"keys\":[]}")
    })
    .await;
    let err = fault(
        web_endpoint(&pki, server.port()),
        &r.good,
        FetchOptions::default(),
    )
    .await;
    assert!(
        matches!(&err, FetchError::Tls { reason, .. } if reason.contains("not valid for name")),
        "{err:?}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn f18_no_bundle_for_the_endpoint_trust_domain() {
    let r = remote();
    // The endpoint is in a third trust domain whose bundle nobody has.
    let endpoint = BundleEndpoint::new(
        td(REMOTE),
        url("127.0.0.1", 9),
        EndpointProfile::https_spiffe(
            SpiffeId::parse("spiffe://third.test/bundle-endpoint").unwrap(),
            X509Bundle::empty(td(REMOTE)),
        ),
    );
    let err = fault(endpoint, &r.good, FetchOptions::default()).await;
    assert!(
        matches!(&err, FetchError::NoEndpointBundle { endpoint_id } if endpoint_id.trust_domain_name() == "third.test")
    );
    assert!(
        err.to_string()
            .contains("no X.509 bundle of trust domain third.test"),
        "{err}"
    );
}

#[tokio::test]
async fn non_2xx_statuses_are_errors() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    for (status, code) in [
        ("500 Internal Server Error", 500),
        ("404 Not Found", 404),
        ("304 Not Modified", 304),
    ] {
        let server = FakeServer::start(pki.server_config(), move |_| {
            http(
                status,
                &[("Content-Type", "application/json")],
                b"{\"keys\":[]}",
            )
        })
        .await;
        let err = fault(
            web_endpoint(&pki, server.port()),
            &r.good,
            FetchOptions::default(),
        )
        .await;
        assert_eq!(
            err,
            FetchError::Status {
                url: url("localhost", server.port()).to_string(),
                status: code
            }
        );
    }
}

#[tokio::test]
async fn garbage_responses_are_errors_not_panics() {
    let r = remote();
    let pki = WebPki::new(&["localhost"]);
    let replies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"HTTP/1.1".to_vec(),
        b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"keys\":{}}x".to_vec(),
    ];
    for reply in replies {
        let bytes = reply.clone();
        let server =
            FakeServer::start(pki.server_config(), move |_| Reply::Raw(bytes.clone())).await;
        let err = fault(
            web_endpoint(&pki, server.port()),
            &r.good,
            FetchOptions::default(),
        )
        .await;
        assert!(
            matches!(
                err,
                FetchError::Http { .. }
                    | FetchError::MalformedBundle { .. }
                    | FetchError::Redirect { .. }
            ),
            "{:?}: {err:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}
