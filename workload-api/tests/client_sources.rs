//! The long-lived sources against a fake server: the first update, retries
//! and their limits, restarts, change notification and shutdown.
#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_fake;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use client_fake::{
    Fake, Proxy, Reply, bundle_der, ca, eventually, id, serve, socket_path, td, x509_entry,
    x509_response,
};
use rustls_pki_types::UnixTime;
use spiffe_bundle::{JwtBundleSource, X509BundleSource};
use spiffe_svid::JwtSvid;
use spiffe_workload_api::{
    BundleSource, ClientError, EndpointAddress, GrpcCode, JwtSource, SourceOptions, SvidSelector,
    WorkloadApiClient, X509Source, proto,
};
use tonic::Code;

const MS: Duration = Duration::from_millis(1);

/// Fast retries, so that the tests take milliseconds.
fn fast() -> SourceOptions {
    SourceOptions::default()
        .with_initial_timeout(Duration::from_secs(5))
        .with_backoff(MS * 5, MS * 40)
}

fn client(address: &EndpointAddress) -> WorkloadApiClient {
    WorkloadApiClient::connect_lazy(address).unwrap()
}

async fn x509_source(
    address: &EndpointAddress,
    options: SourceOptions,
) -> Result<X509Source, ClientError> {
    X509Source::with_options(client(address), options).await
}

/// `changed()` does not fire within `wait`.
async fn assert_quiet<T>(subscription: &mut spiffe_workload_api::Subscription<T>, wait: Duration) {
    let changed = tokio::time::timeout(wait, subscription.changed()).await;
    assert!(changed.is_err(), "unexpected notification");
}

#[tokio::test]
async fn c4_x509_source_waits_for_the_first_update() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    // Not provisioned yet: PermissionDenied is retried (E-15).
    fake.x509
        .send_replace(Reply::Fail(Code::PermissionDenied, "no identity issued"));
    let server = serve(fake.clone(), &socket_path("first")).await;
    let entry = x509_entry(&example, "spiffe://example.org/web", "");
    let provision = {
        let fake = fake.clone();
        let entry = entry.clone();
        tokio::spawn(async move {
            eventually("a few refused attempts", || {
                Fake::count(&fake.x509_opens) >= 3
            })
            .await;
            fake.x509
                .send_replace(Reply::Send(x509_response(vec![entry])));
        })
    };
    let source = x509_source(&server.address(), fast()).await.unwrap();
    provision.await.unwrap();
    assert_eq!(
        source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/web")
    );
    assert_eq!(
        source.svid().unwrap().leaf().as_ref(),
        client_fake::leaf_of(&entry).as_slice()
    );
    assert_eq!(source.last_error(), None);
    // The source is a bundle source for the verifier.
    let verified =
        spiffe_svid::verify_x509_svid(source.svid().unwrap().chain(), &source, UnixTime::now());
    assert!(verified.is_ok(), "{verified:?}");
    assert!(source.x509_bundle_for(&td("example.org")).is_some());
    assert!(source.x509_bundle_for(&td("other.org")).is_none());
    assert_eq!(Fake::count(&fake.bad_headers), 0);
    drop(source);
    server.stop().await;
}

#[tokio::test]
async fn initial_timeout_reports_the_last_error() {
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Fail(Code::PermissionDenied, "no identity issued"));
    let server = serve(fake.clone(), &socket_path("initial-timeout")).await;
    let options = fast().with_initial_timeout(MS * 300);
    let started = std::time::Instant::now();
    let err = x509_source(&server.address(), options).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let ClientError::NoInitialUpdate { after, last_error } = err else {
        panic!("{err:?}")
    };
    assert_eq!(after, MS * 300);
    assert_eq!(
        last_error.unwrap().grpc_code(),
        Some(GrpcCode::PermissionDenied)
    );
    assert!(
        Fake::count(&fake.x509_opens) > 1,
        "PermissionDenied is retried"
    );
    server.stop().await;
}

#[tokio::test]
async fn initial_timeout_when_no_server_is_listening() {
    let address = EndpointAddress::Unix(socket_path("nobody"));
    let err = x509_source(&address, fast().with_initial_timeout(MS * 200))
        .await
        .unwrap_err();
    let ClientError::NoInitialUpdate { last_error, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(last_error.unwrap().grpc_code(), Some(GrpcCode::Unavailable));
}

#[tokio::test]
async fn e_13_e_16_statuses_that_are_not_retried() {
    for code in [Code::InvalidArgument, Code::Unimplemented] {
        let fake = Fake::new("example.org");
        fake.x509.send_replace(Reply::Fail(code, "refused"));
        let server = serve(fake.clone(), &socket_path("fatal")).await;
        let started = std::time::Instant::now();
        let err = x509_source(&server.address(), fast()).await.unwrap_err();
        assert_eq!(err.grpc_code(), Some(GrpcCode::from(code)), "{code:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{code:?}: not at once"
        );
        tokio::time::sleep(MS * 100).await;
        assert_eq!(Fake::count(&fake.x509_opens), 1, "{code:?} was retried");
        server.stop().await;
    }
}

#[tokio::test]
async fn e_13_invalid_argument_mid_stream_stops_the_source_which_keeps_its_material() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve(fake.clone(), &socket_path("fatal-later")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let mut updates = source.subscribe();
    fake.x509.send_replace(Reply::Fail(
        Code::InvalidArgument,
        "security header missing",
    ));
    let err = updates.changed().await.unwrap_err();
    let ClientError::Stopped { cause } = err else {
        panic!("{err:?}")
    };
    assert_eq!(cause.unwrap().grpc_code(), Some(GrpcCode::InvalidArgument));
    tokio::time::sleep(MS * 100).await;
    assert_eq!(Fake::count(&fake.x509_opens), 1);
    assert_eq!(
        source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/web")
    );
    assert_eq!(
        source.last_error().unwrap().grpc_code(),
        Some(GrpcCode::InvalidArgument)
    );
    server.stop().await;
}

#[tokio::test]
async fn w_04_reconnects_after_a_server_restart_and_serves_the_last_good_meanwhile() {
    let path = socket_path("restart");
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    let before = x509_entry(&example, "spiffe://example.org/web", "");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![before.clone()])));
    let server = serve(fake.clone(), &path).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let mut updates = source.subscribe();
    let first_svid = source.svid().unwrap();

    server.stop().await;
    eventually("the source to notice", || source.last_error().is_some()).await;
    // The agent is gone: the last good SVID is still served, unchanged.
    tokio::time::sleep(MS * 100).await;
    assert!(Arc::ptr_eq(&source.svid().unwrap(), &first_svid));
    assert_ne!(source.last_error(), None);

    // A new agent on the same path, with rotated material.
    let rotated = ca("example.org");
    let after = x509_entry(&rotated, "spiffe://example.org/web", "");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![after.clone()])));
    let opens_before = Fake::count(&fake.x509_opens);
    let server = serve(fake.clone(), &path).await;
    let context = tokio::time::timeout(Duration::from_secs(5), updates.changed())
        .await
        .expect("no update after the restart")
        .unwrap();
    assert!(Fake::count(&fake.x509_opens) > opens_before);
    assert_eq!(
        context.default_svid().leaf().as_ref(),
        client_fake::leaf_of(&after).as_slice()
    );
    assert_eq!(
        source.svid().unwrap().leaf().as_ref(),
        client_fake::leaf_of(&after).as_slice()
    );
    assert!(
        source
            .x509_bundle_for(&td("example.org"))
            .unwrap()
            .contains(rotated.root_certificate())
    );
    assert_eq!(source.last_error(), None);
    drop(source);
    server.stop().await;
}

#[tokio::test]
async fn e_14_an_agent_that_dies_without_a_status_is_retried() {
    // The connection just closes (the gRPC stack reports `Unknown`): the
    // source keeps its SVID and retries until the agent is back.
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve(fake.clone(), &socket_path("behind-proxy")).await;
    let front = socket_path("proxy");
    let proxy = Proxy::start(&front, &server.path);
    let source = x509_source(&proxy.address(), fast()).await.unwrap();
    let mut updates = source.subscribe();

    proxy.kill();
    eventually("the source to notice", || source.last_error().is_some()).await;
    let error = source.last_error().unwrap();
    assert!(!matches!(error, ClientError::Stopped { .. }), "{error:?}");
    tokio::time::sleep(MS * 100).await;
    assert_eq!(
        source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/web")
    );

    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/api",
            "",
        )])));
    let proxy = Proxy::start(&front, &server.path);
    let context = tokio::time::timeout(Duration::from_secs(5), updates.changed())
        .await
        .expect("no update after the agent came back")
        .unwrap();
    assert_eq!(
        context.default_svid().spiffe_id(),
        &id("spiffe://example.org/api")
    );
    assert_eq!(source.last_error(), None);
    drop(source);
    proxy.kill();
    server.stop().await;
}

#[tokio::test]
async fn an_identical_resend_notifies_nobody() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    let message = x509_response(vec![x509_entry(&example, "spiffe://example.org/web", "")]);
    fake.x509.send_replace(Reply::Send(message.clone()));
    let server = serve(fake.clone(), &socket_path("resend")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let svid = source.svid().unwrap();
    let mut updates = source.subscribe();

    // SPIRE resends on every cache event; a reconnect resends the state.
    fake.x509.send_replace(Reply::Send(message.clone()));
    fake.x509.send_replace(Reply::End);
    eventually("a reconnect", || Fake::count(&fake.x509_opens) >= 2).await;
    fake.x509.send_replace(Reply::Send(message.clone()));
    assert_quiet(&mut updates, MS * 200).await;
    assert!(
        Arc::ptr_eq(&source.svid().unwrap(), &svid),
        "the SVID was replaced"
    );

    // A real change is told.
    let changed = x509_response(vec![x509_entry(&example, "spiffe://example.org/api", "")]);
    fake.x509.send_replace(Reply::Send(changed));
    let context = updates.changed().await.unwrap();
    assert_eq!(
        context.default_svid().spiffe_id(),
        &id("spiffe://example.org/api")
    );
    assert_eq!(
        source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/api")
    );
    server.stop().await;
}

#[tokio::test]
async fn w_11_a_bad_message_is_discarded_and_the_stream_kept() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve(fake.clone(), &socket_path("bad-message")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let mut updates = source.subscribe();
    fake.x509.send_replace(Reply::Send(x509_response(vec![])));
    eventually("the error to show", || source.last_error().is_some()).await;
    assert!(matches!(source.last_error(), Some(ClientError::Decode(_))));
    assert_quiet(&mut updates, MS * 50).await;
    assert_eq!(
        source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/web")
    );
    assert_eq!(Fake::count(&fake.x509_opens), 1, "the stream was dropped");
    server.stop().await;
}

#[tokio::test]
async fn the_last_handle_dropped_stops_the_task() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve(fake.clone(), &socket_path("drop")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let mut updates = source.subscribe();
    let clone = source.clone();
    eventually("the stream to open", || {
        Fake::count(&fake.open_streams) == 1
    })
    .await;

    drop(source);
    // A clone keeps it going.
    tokio::time::sleep(MS * 50).await;
    assert_eq!(Fake::count(&fake.open_streams), 1);
    assert_eq!(
        clone.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/web")
    );

    drop(clone);
    // The subscription does not keep it alive; the call is cancelled.
    let err = updates.changed().await.unwrap_err();
    assert_eq!(err, ClientError::Stopped { cause: None });
    eventually("the stream to close", || {
        Fake::count(&fake.open_streams) == 0
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn svid_selection_by_hint_and_by_id() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509.send_replace(Reply::Send(x509_response(vec![
        x509_entry(&example, "spiffe://example.org/a", "internal"),
        x509_entry(&example, "spiffe://example.org/b", "external"),
    ])));
    let server = serve(fake.clone(), &socket_path("select")).await;
    let address = server.address();

    let default = x509_source(&address, fast()).await.unwrap();
    assert_eq!(default.svid().unwrap().spiffe_id().path(), "/a");
    let by_hint = x509_source(
        &address,
        fast().with_svid(SvidSelector::Hint("external".into())),
    )
    .await
    .unwrap();
    assert_eq!(by_hint.svid().unwrap().spiffe_id().path(), "/b");
    let by_id = x509_source(
        &address,
        fast().with_svid(SvidSelector::Id(id("spiffe://example.org/b"))),
    )
    .await
    .unwrap();
    assert_eq!(by_id.svid().unwrap().spiffe_id().path(), "/b");

    let missing = x509_source(
        &address,
        fast()
            .with_svid(SvidSelector::Hint("nope".into()))
            .with_initial_timeout(MS * 200),
    )
    .await
    .unwrap_err();
    let ClientError::NoInitialUpdate { last_error, .. } = missing else {
        panic!("{missing:?}")
    };
    assert!(matches!(
        *last_error.unwrap(),
        ClientError::SvidNotFound { .. }
    ));

    // The picked SVID leaving the context, along with a federated bundle:
    // the message is the agent's whole truth, so the SVID is gone (not
    // served stale) and the bundles are the new ones.
    let other = ca("other.org");
    let mut with_other = x509_response(vec![
        x509_entry(&example, "spiffe://example.org/a", "internal"),
        x509_entry(&example, "spiffe://example.org/b", "external"),
    ]);
    with_other
        .federated_bundles
        .insert("spiffe://other.org".into(), bundle_der(&other));
    fake.x509.send_replace(Reply::Send(with_other));
    eventually("the federated bundle", || {
        by_hint.x509_bundle_for(&td("other.org")).is_some()
    })
    .await;
    let mut updates = by_hint.subscribe();
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/a",
            "internal",
        )])));
    updates.changed().await.unwrap();
    assert!(matches!(
        by_hint.last_error(),
        Some(ClientError::SvidNotFound { .. })
    ));
    assert!(matches!(
        by_hint.svid(),
        Err(ClientError::SvidNotFound { .. })
    ));
    assert!(by_hint.x509_bundle_for(&td("other.org")).is_none());
    // The default source takes the message too.
    eventually("the default source to update", || {
        default.x509_context().svids().len() == 1
    })
    .await;
    // It comes back: served again, the error cleared.
    fake.x509.send_replace(Reply::Send(x509_response(vec![
        x509_entry(&example, "spiffe://example.org/a", "internal"),
        x509_entry(&example, "spiffe://example.org/b", "external"),
    ])));
    updates.changed().await.unwrap();
    assert_eq!(by_hint.svid().unwrap().spiffe_id().path(), "/b");
    assert!(by_hint.last_error().is_none());
    server.stop().await;
}

#[tokio::test]
async fn w_08_federated_bundles_removed_by_a_message_are_gone() {
    let example = ca("example.org");
    let other = ca("other.org");
    let fake = Fake::new("example.org");
    let entry = x509_entry(&example, "spiffe://example.org/web", "");
    let mut with_other = x509_response(vec![entry.clone()]);
    with_other
        .federated_bundles
        .insert("spiffe://other.org".into(), bundle_der(&other));
    fake.x509.send_replace(Reply::Send(with_other));
    let server = serve(fake.clone(), &socket_path("federation")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    assert!(source.x509_bundle_for(&td("other.org")).is_some());
    let mut updates = source.subscribe();
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![entry])));
    updates.changed().await.unwrap();
    assert!(source.x509_bundle_for(&td("other.org")).is_none());
    server.stop().await;
}

#[tokio::test]
async fn bundle_source_follows_x509_bundles() {
    let example = ca("example.org");
    let other = ca("other.org");
    let fake = Fake::new("example.org");
    let bundles = |map: &[(&str, &spiffe_svid::issuer::DevCa)]| {
        Reply::Send(proto::X509BundlesResponse {
            crl: vec![],
            bundles: map
                .iter()
                .map(|(k, ca)| ((*k).to_owned(), bundle_der(ca)))
                .collect::<BTreeMap<_, _>>(),
        })
    };
    fake.x509_bundles
        .send_replace(bundles(&[("spiffe://example.org", &example)]));
    let server = serve(fake.clone(), &socket_path("bundle-source")).await;
    let source = BundleSource::with_options(client(&server.address()), fast())
        .await
        .unwrap();
    assert_eq!(source.x509_bundles().len(), 1);
    assert!(source.x509_bundle_for(&td("other.org")).is_none());
    let mut updates = source.subscribe();
    fake.x509_bundles.send_replace(bundles(&[
        ("spiffe://example.org", &example),
        ("other.org", &other),
    ]));
    assert_eq!(updates.changed().await.unwrap().len(), 2);
    assert!(source.x509_bundle_for(&td("other.org")).is_some());
    assert_eq!(source.last_error(), None);
    server.stop().await;
}

#[tokio::test]
async fn jwt_tokens_are_refetched_after_half_their_life_and_the_cached_one_kept_on_failure() {
    let fake = Fake::new("example.org");
    fake.jwt_bundles
        .send_replace(Reply::Send(proto::JwtBundlesResponse {
            bundles: BTreeMap::from([(
                "example.org".into(),
                fake.jwt_issuer.bundle().to_jwks().into_bytes(),
            )]),
        }));
    fake.jwt_ids
        .lock()
        .unwrap()
        .push((id("spiffe://example.org/web"), String::new()));
    // `iat` and `exp` are whole seconds: a 4 s token is due for refresh at
    // most 2 s after it was fetched, and still valid a second later.
    *fake.jwt_lifetime.lock().unwrap() = Duration::from_secs(4);
    let server = serve(fake.clone(), &socket_path("jwt-refresh")).await;
    let source = JwtSource::with_options(client(&server.address()), fast())
        .await
        .unwrap();
    let token = source.fetch_jwt_svid(&["api"], None).await.unwrap();
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 1);

    tokio::time::sleep(MS * 2_050).await;
    // Due: fetched again; the agent fails, the unexpired token is kept.
    *fake.jwt_svid.lock().unwrap() = Some(Err(tonic::Status::unavailable("upstream down")));
    let kept = source.fetch_jwt_svid(&["api"], None).await.unwrap();
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 2);
    assert_eq!(kept.token(), token.token());
    // With no cached token, the failure is the caller's.
    let err = source.fetch_jwt_svid(&["other"], None).await.unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::Unavailable));
    server.stop().await;
}

#[tokio::test]
async fn jwt_source_follows_bundles_and_caches_tokens() {
    let fake = Fake::new("example.org");
    fake.jwt_bundles
        .send_replace(Reply::Send(proto::JwtBundlesResponse {
            bundles: BTreeMap::from([(
                "spiffe://example.org".into(),
                fake.jwt_issuer.bundle().to_jwks().into_bytes(),
            )]),
        }));
    fake.jwt_ids
        .lock()
        .unwrap()
        .push((id("spiffe://example.org/web"), String::new()));
    let server = serve(fake.clone(), &socket_path("jwt-source")).await;
    let source = JwtSource::with_options(client(&server.address()), fast())
        .await
        .unwrap();
    assert!(source.jwt_bundle_for(&td("example.org")).is_some());
    assert_eq!(source.bundles().len(), 1);

    let token = source.fetch_jwt_svid(&["api", "db"], None).await.unwrap();
    // Validated locally against the source's bundles.
    let validated =
        JwtSvid::parse_and_validate(token.token(), &source, &["db"], UnixTime::now()).unwrap();
    assert_eq!(validated.spiffe_id(), &id("spiffe://example.org/web"));
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 1);
    // Cached, whatever the audience order.
    let again = source.fetch_jwt_svid(&["db", "api"], None).await.unwrap();
    assert_eq!(again.token(), token.token());
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 1);
    // Another audience is another token.
    source.fetch_jwt_svid(&["other"], None).await.unwrap();
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 2);

    // Bundle changes are followed; the JWT bundle map becoming bare-keyed
    // and empty of keys is still a valid update.
    let mut updates = source.subscribe();
    fake.jwt_bundles
        .send_replace(Reply::Send(proto::JwtBundlesResponse {
            bundles: BTreeMap::from([("example.org".into(), br#"{"keys":[]}"#.to_vec())]),
        }));
    let bundles = updates.changed().await.unwrap();
    assert!(
        bundles
            .jwt_bundle_for(&td("example.org"))
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn the_x509_source_feeds_the_rustls_resolver_and_verifier() {
    use spiffe_svid::tls::{SpiffeServerCertVerifier, SvidCertResolver};
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve(fake.clone(), &socket_path("rustls")).await;
    let source = x509_source(&server.address(), fast()).await.unwrap();
    let resolver = SvidCertResolver::new(source.clone());
    let first = resolver.certified_key().unwrap();
    assert_eq!(
        first.end_entity_cert().unwrap(),
        source.svid().unwrap().leaf()
    );
    // Built once per SVID.
    assert!(Arc::ptr_eq(&first, &resolver.certified_key().unwrap()));
    // Rotation reaches the next handshake.
    let mut updates = source.subscribe();
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/api",
            "",
        )])));
    updates.changed().await.unwrap();
    let rotated = resolver.certified_key().unwrap();
    assert!(!Arc::ptr_eq(&first, &rotated));
    assert_eq!(
        rotated.end_entity_cert().unwrap(),
        source.svid().unwrap().leaf()
    );
    let verifier = SpiffeServerCertVerifier::new(source.clone(), spiffe_id::IdMatcher::any());
    assert!(verifier.is_ok());
    server.stop().await;
}
