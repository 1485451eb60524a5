//! Our SDS client (C5): against our server, and against a fake server that
//! sends what a client must reject.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use spiffe_sds::client::{ClientConfig, ClientState, ReceivedSecret, SdsClient};
use spiffe_sds::envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    Secret, TlsCertificate, secret,
};
use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use spiffe_sds::envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use spiffe_sds::envoy_types::util::pack_any;
use spiffe_sds::server::SdsResponseStream;
use spiffe_sds::{SECRET_TYPE_URL, SecretNames};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

async fn wait_for(
    rx: &mut watch::Receiver<Arc<ClientState>>,
    what: &str,
    f: impl FnMut(&Arc<ClientState>) -> bool,
) -> Arc<ClientState> {
    let found = match tokio::time::timeout(Duration::from_secs(10), rx.wait_for(f)).await {
        Ok(Ok(state)) => Some(Arc::clone(&state)),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("timed out waiting for {what}; state: {:?}", rx.borrow()))
}

#[tokio::test]
async fn c5_client_receives_acks_and_follows_rotation() {
    let pki = Pki::new();
    let config = Harness::config().with_names(SecretNames::istio_federation());
    let h = Harness::start(pki.provider(), config).await;
    let first = h.rotate(&pki);
    let client = SdsClient::connect_unix(
        &h.socket,
        ClientConfig::new("client-test", ["default", "ROOTCA"]),
    )
    .unwrap();
    let mut rx = client.watch();
    let state = wait_for(&mut rx, "both secrets", |s| {
        s.has_all(["default", "ROOTCA"])
    })
    .await;
    assert_eq!(state.certificate("default").unwrap().leaf(), first.leaf());
    match &state.secrets["ROOTCA"] {
        ReceivedSecret::SpiffeBundles(bundles) => {
            let tds: Vec<&str> = bundles.iter().map(|b| b.trust_domain().as_str()).collect();
            assert_eq!(tds, [OWN_TD, FED_TD]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.nacks, 0);
    let rotated = h.rotate(&pki);
    let state = wait_for(&mut rx, "the rotated certificate", |s| {
        s.certificate("default")
            .is_some_and(|c| c.leaf() == rotated.leaf())
    })
    .await;
    assert!(state.acks >= 2);
}

#[tokio::test]
async fn c5_client_reconnects_after_a_server_restart() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let config = ClientConfig::new("client-test", ["default"])
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let client = SdsClient::connect_unix(&h.socket, config).unwrap();
    let mut rx = client.watch();
    wait_for(&mut rx, "default", |s| s.has_all(["default"])).await;
    let (dir, socket, provider) = h.stop().await;
    wait_for(&mut rx, "the disconnect", |s| !s.connected).await;
    // The client keeps the last good secret while the server is away.
    assert!(client.current().has_all(["default"]));
    let h = Harness::start_at(dir, socket, provider, Harness::config());
    let rotated = h.rotate(&pki);
    let state = wait_for(&mut rx, "the new server's certificate", |s| {
        s.certificate("default")
            .is_some_and(|c| c.leaf() == rotated.leaf())
    })
    .await;
    assert!(state.streams_opened >= 2);
}

#[tokio::test]
async fn c5_client_changes_names_mid_stream() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let client =
        SdsClient::connect_unix(&h.socket, ClientConfig::new("client-test", ["default"])).unwrap();
    let mut rx = client.watch();
    wait_for(&mut rx, "default", |s| s.has_all(["default"])).await;
    client.set_names(["ROOTCA", "spiffe://partner.test"]);
    let state = wait_for(&mut rx, "the new names", |s| {
        s.has_all(["ROOTCA", "spiffe://partner.test"])
    })
    .await;
    assert!(!state.secrets.contains_key("default"));
    assert_eq!(state.streams_opened, 1);
}

#[tokio::test]
async fn c5_names_are_missing_while_the_server_is_unreachable_and_leave_on_arrival() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let (dir, socket, provider) = h.stop().await;
    let config = ClientConfig::new("client-test", ["default", "ROOTCA"])
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .with_missing_after(Duration::from_millis(300));
    let client = SdsClient::connect_unix(&socket, config).unwrap();
    let mut rx = client.watch();
    let state = wait_for(&mut rx, "both names missing", |s| s.missing.len() == 2).await;
    assert!(!state.connected && state.secrets.is_empty());
    let h = Harness::start_at(dir, socket, provider, Harness::config());
    h.rotate(&pki);
    let state = wait_for(&mut rx, "the secrets", |s| s.has_all(["default", "ROOTCA"])).await;
    assert!(state.missing.is_empty(), "{:?}", state.missing);
}

#[tokio::test]
async fn c5_nothing_is_missing_with_a_wildcard_subscription() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let (dir, socket, provider) = h.stop().await;
    // Unreachable, and "*" (everything) names nothing that could be late.
    let config =
        ClientConfig::new("client-test", ["*"]).with_missing_after(Duration::from_millis(100));
    let client = SdsClient::connect_unix(&socket, config).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(client.current().missing.is_empty());
    drop((dir, provider));
}

#[tokio::test]
async fn c5_set_names_while_disconnected_drops_unnamed_secrets() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    h.rotate(&pki);
    let config = ClientConfig::new("client-test", ["default", "ROOTCA"])
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let client = SdsClient::connect_unix(&h.socket, config).unwrap();
    let mut rx = client.watch();
    wait_for(&mut rx, "both secrets", |s| {
        s.has_all(["default", "ROOTCA"])
    })
    .await;
    let (dir, socket, provider) = h.stop().await;
    wait_for(&mut rx, "the disconnect", |s| !s.connected).await;
    client.set_names(["ROOTCA"]);
    let state = wait_for(&mut rx, "default dropped while disconnected", |s| {
        !s.secrets.contains_key("default")
    })
    .await;
    assert!(!state.connected);
    assert_eq!(state.secrets.keys().collect::<Vec<_>>(), ["ROOTCA"]);
    // Back online, the server is asked for the new names only.
    let _h = Harness::start_at(dir, socket, provider, Harness::config());
    let state = wait_for(&mut rx, "a new stream's answer", |s| {
        s.connected && s.streams_opened >= 2
    })
    .await;
    assert_eq!(state.secrets.keys().collect::<Vec<_>>(), ["ROOTCA"]);
}

#[tokio::test]
async fn c5_set_names_does_not_wait_for_a_borrow_of_the_state() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let (_dir, socket, _provider) = h.stop().await;
    let client = Arc::new(
        SdsClient::connect_unix(&socket, ClientConfig::new("client-test", ["a"])).unwrap(),
    );
    let rx = client.watch();
    let caller = Arc::clone(&client);
    // A caller that looks at the state and changes its names while still
    // holding the borrow.
    // On a thread of its own, so that a hang fails the test instead of
    // holding up the runtime's shutdown.
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let held = rx.borrow();
        caller.set_names(["b"]);
        drop(held);
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(5))
        .expect("set_names blocked on the caller's own borrow");
}

#[tokio::test]
async fn c5_a_zero_timeout_never_lists_a_name_missing() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let (_dir, socket, _provider) = h.stop().await;
    let config = ClientConfig::new("client-test", ["default"]).with_missing_after(Duration::ZERO);
    let client = SdsClient::connect_unix(&socket, config).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.current().missing.is_empty());
}

/// A server that answers each request with the next prepared response and
/// records what the client sent.
struct Scripted {
    responses: Mutex<Vec<DiscoveryResponse>>,
    seen: Arc<Mutex<Vec<DiscoveryRequest>>>,
}

#[tonic::async_trait]
impl SecretDiscoveryService for Scripted {
    type StreamSecretsStream = SdsResponseStream<DiscoveryResponse>;
    type DeltaSecretsStream = SdsResponseStream<DeltaDiscoveryResponse>;

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let mut inbound = request.into_inner();
        let responses: Vec<DiscoveryResponse> =
            std::mem::take(&mut *self.responses.lock().unwrap());
        let seen = Arc::clone(&self.seen);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut responses = responses.into_iter();
            while let Some(Ok(request)) = inbound.next().await {
                seen.lock().unwrap().push(request);
                if let Some(r) = responses.next()
                    && tx.send(Ok(r)).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn delta_secrets(
        &self,
        _: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("not here"))
    }

    async fn fetch_secrets(
        &self,
        _: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

fn certificate_response(
    version: &str,
    nonce: &str,
    chain: Vec<u8>,
    key: Vec<u8>,
) -> DiscoveryResponse {
    let inline = |b| DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(b)),
        ..Default::default()
    };
    let secret = Secret {
        name: "default".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(chain)),
            private_key: Some(inline(key)),
            ..Default::default()
        })),
    };
    DiscoveryResponse {
        version_info: version.into(),
        resources: vec![pack_any(secret)],
        type_url: SECRET_TYPE_URL.into(),
        nonce: nonce.into(),
        ..Default::default()
    }
}

/// Serves `scripted` on a Unix socket in a new directory.
fn serve_scripted(
    scripted: Scripted,
) -> (
    TempDir,
    std::path::PathBuf,
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
) {
    let dir = TempDir::new("fake");
    let socket = dir.path().join("fake.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SecretDiscoveryServiceServer::new(scripted))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    (dir, socket, server)
}

#[tokio::test]
async fn c5_client_nacks_a_certificate_that_does_not_parse() {
    let pki = Pki::new();
    let good = Pki::issue(&pki.own, "spiffe://example.org/workload");
    let garbage =
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n".to_vec();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let scripted = Scripted {
        responses: Mutex::new(vec![
            certificate_response(
                "v1",
                "n1",
                good.chain_pem().as_bytes().to_vec(),
                good.key_pem().as_bytes().to_vec(),
            ),
            certificate_response("v2", "n2", garbage, good.key_pem().as_bytes().to_vec()),
        ]),
        seen: Arc::clone(&seen),
    };
    let (_dir, socket, server) = serve_scripted(scripted);
    let client =
        SdsClient::connect_unix(&socket, ClientConfig::new("client-test", ["default"])).unwrap();
    let mut rx = client.watch();
    let state = wait_for(&mut rx, "the NACK", |s| s.nacks == 1).await;
    // The good certificate from v1 is kept; v2 was rejected with a reason.
    assert_eq!(state.version.as_deref(), Some("v1"));
    assert_eq!(
        state.certificate("default").unwrap().leaf(),
        good.to_x509_svid().unwrap().leaf()
    );
    assert!(
        state
            .last_rejection
            .as_deref()
            .unwrap()
            .contains("certificate")
    );
    // On the wire: first request with node and names, ACK of v1, NACK of
    // v2 carrying the last good version and code 13.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].node.as_ref().unwrap().id, "client-test");
    assert_eq!(seen[0].resource_names, ["default"]);
    assert!(seen[0].response_nonce.is_empty());
    assert_eq!(
        (
            seen[1].version_info.as_str(),
            seen[1].response_nonce.as_str()
        ),
        ("v1", "n1")
    );
    assert!(seen[1].error_detail.is_none() && seen[1].node.is_none());
    assert_eq!(
        (
            seen[2].version_info.as_str(),
            seen[2].response_nonce.as_str()
        ),
        ("v1", "n2")
    );
    assert_eq!(seen[2].error_detail.as_ref().unwrap().code, 13);
    server.abort();
}

#[tokio::test]
async fn c5_a_name_the_server_leaves_out_is_missing_after_the_timeout() {
    let pki = Pki::new();
    let good = Pki::issue(&pki.own, "spiffe://example.org/workload");
    // One response with "default" only: "ROOTCA" never comes.
    let scripted = Scripted {
        responses: Mutex::new(vec![certificate_response(
            "v1",
            "n1",
            good.chain_pem().as_bytes().to_vec(),
            good.key_pem().as_bytes().to_vec(),
        )]),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let (_dir, socket, server) = serve_scripted(scripted);
    let asked = tokio::time::Instant::now();
    let config = ClientConfig::new("client-test", ["default", "ROOTCA"])
        .with_missing_after(Duration::from_millis(300));
    let client = SdsClient::connect_unix(&socket, config).unwrap();
    let mut rx = client.watch();
    let state = wait_for(&mut rx, "the missing name", |s| !s.missing.is_empty()).await;
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert_eq!(state.missing.iter().collect::<Vec<_>>(), ["ROOTCA"]);
    assert!(state.has_all(["default"]) && state.connected);
    // No longer asked for: no longer missing.
    client.set_names(["default"]);
    wait_for(&mut rx, "an empty missing list", |s| s.missing.is_empty()).await;
    // Asked for again: timed again from that moment.
    let asked_again = tokio::time::Instant::now();
    client.set_names(["default", "ROOTCA"]);
    wait_for(&mut rx, "the name missing again", |s| !s.missing.is_empty()).await;
    assert!(asked_again.elapsed() >= Duration::from_millis(300));
    // A wildcard names nothing that could be missing.
    client.set_names(["*"]);
    let state = wait_for(&mut rx, "no missing name under a wildcard", |s| {
        s.missing.is_empty()
    })
    .await;
    assert!(state.has_all(["default"]));
    server.abort();
}
