//! The SDS server over a real Unix socket, driven by hand-written request
//! sequences, one test per rule of the behaviour spec (S*).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use spiffe_sds::{Limits, SECRET_TYPE_URL};
use spiffe_svid::X509Svid;
use spiffe_workload_api::EndpointAddress;
use spiffe_workload_api::WorkloadApiClient;

fn leaf_of(
    response_secret: &spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret,
) -> X509Svid {
    use spiffe_sds::envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    let Some(Type::TlsCertificate(tls)) = &response_secret.r#type else {
        panic!("not a certificate")
    };
    let Some(Specifier::InlineBytes(chain)) =
        tls.certificate_chain.as_ref().unwrap().specifier.as_ref()
    else {
        panic!()
    };
    let Some(Specifier::InlineBytes(key)) = tls.private_key.as_ref().unwrap().specifier.as_ref()
    else {
        panic!()
    };
    X509Svid::from_pem(chain, key).unwrap()
}

#[tokio::test]
async fn s18_first_request_is_answered_and_an_ack_is_not() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["default", "ROOTCA"])).await;
    let first = stream.recv().await;
    assert_eq!(first.type_url, SECRET_TYPE_URL);
    assert!(!first.version_info.is_empty() && !first.nonce.is_empty());
    assert_eq!(names_of(&first), ["ROOTCA", "default"]);
    let svid = leaf_of(&secrets_of(&first)[1]);
    assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/workload");
    stream.send(ack(&["default", "ROOTCA"], &first)).await;
    stream.expect_silence(300).await;
}

#[tokio::test]
async fn s18_1_nack_gets_no_reply_and_the_next_rotation_is_pushed() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    let first = stream.recv().await;
    stream.send(ack(&["default"], &first)).await;
    h.rotate(&pki);
    let push = stream.recv().await;
    assert_ne!(push.version_info, first.version_info);
    stream
        .send(nack(&["default"], &first.version_info, &push))
        .await;
    // No resend of the rejected content.
    stream.expect_silence(300).await;
    let newer = h.rotate(&pki);
    let push2 = stream.recv().await;
    assert_eq!(leaf_of(&secrets_of(&push2)[0]).leaf(), newer.leaf());
}

#[tokio::test]
async fn s18_2_stale_nonce_is_ignored() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    let first = stream.recv().await;
    h.rotate(&pki);
    let push = stream.recv().await;
    // Crossed the push: names it with the first nonce.
    stream.send(ack(&["default", "ROOTCA"], &first)).await;
    stream.expect_silence(300).await;
    stream.send(ack(&["default", "ROOTCA"], &push)).await;
    assert_eq!(names_of(&stream.recv().await), ["ROOTCA", "default"]);
}

#[tokio::test]
async fn s7_unknown_name_ends_the_stream_with_invalid_argument() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(
        &mut h.sds(),
        request(&["default", "file-root:system", "spiffe://example.org/other"]),
    )
    .await;
    let status = stream.recv_status().await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        r#"workload is not authorized for the requested identities ["file-root:system", "spiffe://example.org/other"]"#
    );
}

#[tokio::test]
async fn s18_4_name_change_mid_stream_is_answered() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    let first = stream.recv().await;
    stream
        .send(ack(&["default", "ALL", "spiffe://partner.test"], &first))
        .await;
    let second = stream.recv().await;
    assert_eq!(
        names_of(&second),
        ["ALL", "default", "spiffe://partner.test"]
    );
    assert_ne!(second.nonce, first.nonce);
}

#[tokio::test]
async fn s19_reconnect_with_old_version_and_nonce_gets_everything() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut client = h.sds();
    let mut stream = RawStream::open(&mut client, request(&["default"])).await;
    let first = stream.recv().await;
    drop(stream);
    let mut again = RawStream::open(&mut client, ack(&["default"], &first)).await;
    let answer = again.recv().await;
    assert_eq!(names_of(&answer), ["default"]);
    // Same content, same version: versions follow content.
    assert_eq!(answer.version_info, first.version_info);
}

#[tokio::test]
async fn s23_empty_names_wildcard_then_unsubscribe() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&[])).await;
    let all = stream.recv().await;
    assert_eq!(
        names_of(&all),
        [
            "spiffe://example.org",
            "spiffe://example.org/workload",
            "spiffe://partner.test"
        ]
    );
    stream.send(ack(&["default"], &all)).await;
    let named = stream.recv().await;
    stream.send(ack(&[], &named)).await;
    stream.expect_silence(300).await;
    // Unsubscribed: rotations are not pushed.
    h.rotate(&pki);
    stream.expect_silence(300).await;
}

#[tokio::test]
async fn s20_rotation_reaches_every_stream_within_one_update() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut client = h.sds();
    let mut streams = Vec::new();
    for _ in 0..50 {
        let mut s = RawStream::open(&mut client, request(&["default"])).await;
        let first = s.recv().await;
        s.send(ack(&["default"], &first)).await;
        streams.push(s);
    }
    let started = Instant::now();
    let newer = h.rotate(&pki);
    for s in &mut streams {
        let push = s.recv().await;
        assert_eq!(leaf_of(&secrets_of(&push)[0]).leaf(), newer.leaf());
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // Exactly one push each.
    for s in &mut streams {
        s.expect_silence(20).await;
    }
}

#[tokio::test]
async fn s24_fetch_secrets_unary() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let response = h
        .sds()
        .fetch_secrets(request(&["ROOTCA"]))
        .await
        .unwrap()
        .into_inner();
    assert!(response.version_info.is_empty() && response.nonce.is_empty());
    assert_eq!(names_of(&response), ["ROOTCA"]);
}

#[tokio::test]
async fn s25_delta_secrets_subscribe_push_and_unknown_as_removed() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut client = h.sds();
    let first = DeltaDiscoveryRequest {
        type_url: SECRET_TYPE_URL.to_owned(),
        resource_names_subscribe: vec!["default".into(), "file-root:system".into()],
        ..Default::default()
    };
    let mut delta = RawDelta::open(&mut client, first).await;
    let r1 = delta.recv().await;
    assert_eq!(r1.resources.len(), 1);
    assert_eq!(r1.resources[0].name, "default");
    assert_eq!(r1.removed_resources, ["file-root:system"]);
    assert!(!r1.nonce.is_empty());
    delta
        .tx
        .send(DeltaDiscoveryRequest {
            response_nonce: r1.nonce.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    delta.expect_silence(300).await;
    let newer = h.rotate(&pki);
    let r2 = delta.recv().await;
    assert_eq!(r2.resources.len(), 1);
    let secret =
        spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret::decode(
            r2.resources[0].resource.as_ref().unwrap().value.as_slice(),
        )
        .unwrap();
    assert_eq!(leaf_of(&secret).leaf(), newer.leaf());
    assert_ne!(r2.resources[0].version, r1.resources[0].version);
}

use prost::Message as _;

#[tokio::test]
async fn one_socket_serves_the_workload_api_and_sds() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let workload = WorkloadApiClient::connect(&EndpointAddress::Unix(h.socket.clone()))
        .await
        .unwrap();
    let context = workload.fetch_x509_context().await.unwrap();
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    let first = stream.recv().await;
    assert_eq!(
        leaf_of(&secrets_of(&first)[0]).leaf(),
        context.default_svid().leaf()
    );
}

#[tokio::test]
async fn no_identity_gets_bundles_but_not_default() {
    let pki = Pki::new();
    let provider = pki.provider();
    provider.remove_entry("workload");
    let h = Harness::start(provider, Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["ROOTCA"])).await;
    assert_eq!(names_of(&stream.recv().await), ["ROOTCA"]);
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    assert_eq!(
        stream.recv_status().await.code(),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn limits_streams_and_names() {
    let pki = Pki::new();
    let mut limits = Limits::default();
    limits.max_streams = 2;
    limits.max_names_per_request = 3;
    let h = Harness::start(pki.provider(), Harness::config().with_limits(limits)).await;
    let mut client = h.sds();
    let mut a = RawStream::open(&mut client, request(&["default"])).await;
    a.recv().await;
    let mut b = RawStream::open(&mut client, request(&["a", "b", "c", "d"])).await;
    assert_eq!(b.recv_status().await.code(), tonic::Code::InvalidArgument);
    let mut c = RawStream::open(&mut client, request(&["default"])).await;
    c.recv().await;
    // Two streams open (a and c): a third is refused.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(request(&["default"])).await.unwrap();
    let refused = client
        .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // Closing one frees its slot.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(request(&["default"])).await.unwrap();
        match client
            .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("slot not freed: {e}"),
        }
    }
}

#[tokio::test]
async fn s2_socket_accepts_connections_as_soon_as_it_is_bound() {
    let dir = TempDir::new("bind");
    let socket = dir.path().join("sds.sock");
    let listener = spiffe_sds::server::UnixSocketListener::bind(&socket).unwrap();
    // Nothing serves yet, but the kernel completes the connection.
    let early = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::UnixStream::connect(&socket),
    )
    .await
    .expect("connect completes at once")
    .unwrap();
    drop(early);
    let pki = Pki::new();
    let provider = pki.provider();
    let server = spiffe_sds::server::SdsServer::new(Arc::clone(&provider), Harness::config());
    let task = tokio::spawn(server.serve_with_incoming(listener, std::future::pending()));
    let mut client = spiffe_sds::envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient::new(unix_channel(&socket));
    let started = Instant::now();
    let response = client.fetch_secrets(request(&["default"])).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(names_of(&response.into_inner()), ["default"]);
    task.abort();
}

#[tokio::test]
async fn server_shutdown_ends_streams_with_unavailable() {
    let pki = Pki::new();
    let h = Harness::start(pki.provider(), Harness::config()).await;
    let mut stream = RawStream::open(&mut h.sds(), request(&["default"])).await;
    stream.recv().await;
    let stopping = tokio::spawn(h.stop());
    let status = stream.recv_status().await;
    assert_eq!(status.code(), tonic::Code::Unavailable);
    stopping.await.unwrap();
}
