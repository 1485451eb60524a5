//! The Workload API client against a fake server on a Unix socket: every
//! RPC, the security header, deadlines, and the decoding rules.
#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_fake;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use client_fake::{
    Fake, Reply, bundle_der, ca, id, serve, serve_tcp, socket_path, td, x509_entry, x509_response,
};
use rustls_pki_types::UnixTime;
use spiffe_bundle::{JwtBundleSource, X509BundleSource};
use spiffe_svid::X509SvidError;
use spiffe_workload_api::decode::{
    decode_jwt_bundles_response, decode_jwt_svid_response, decode_x509_bundles_response,
    decode_x509_svid_response,
};
use spiffe_workload_api::proto::{self, spiffe_workload_api_client::SpiffeWorkloadApiClient};
use spiffe_workload_api::{ClientError, DecodeError, EndpointAddress, GrpcCode, WorkloadApiClient};
use tonic::Code;

// --- Every RPC, with the header --------------------------------------------

#[tokio::test]
async fn e_04_every_rpc_works_and_carries_the_security_header() {
    let example = ca("example.org");
    let other = ca("other.org");
    let fake = Fake::new("example.org");
    let entry = x509_entry(&example, "spiffe://example.org/web", "");
    let mut message = x509_response(vec![entry]);
    message
        .federated_bundles
        .insert("spiffe://other.org".into(), bundle_der(&other));
    fake.x509.send_replace(Reply::Send(message));
    fake.x509_bundles
        .send_replace(Reply::Send(proto::X509BundlesResponse {
            crl: vec![],
            bundles: BTreeMap::from([
                ("spiffe://example.org".into(), bundle_der(&example)),
                ("spiffe://other.org".into(), bundle_der(&other)),
            ]),
        }));
    fake.jwt_bundles
        .send_replace(Reply::Send(proto::JwtBundlesResponse {
            bundles: BTreeMap::from([(
                "spiffe://example.org".into(),
                fake.jwt_issuer.bundle().to_jwks().into_bytes(),
            )]),
        }));
    fake.jwt_ids.lock().unwrap().extend([
        (id("spiffe://example.org/web"), String::new()),
        (id("spiffe://example.org/db"), "db".into()),
    ]);
    let server = serve(fake.clone(), &socket_path("every-rpc")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();

    let context = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        context.default_svid().spiffe_id().as_str(),
        "spiffe://example.org/web"
    );
    assert!(context.x509_bundle_for(&td("example.org")).is_some());
    assert!(context.x509_bundle_for(&td("other.org")).is_some());
    // The context verifies the SVID it came with.
    let verified =
        spiffe_svid::verify_x509_svid(context.default_svid().chain(), &context, UnixTime::now());
    assert!(verified.is_ok(), "{verified:?}");

    let mut watch = client.watch_x509_context().await.unwrap();
    let watched = watch.next().await.unwrap().unwrap();
    assert_eq!(watched.svids().len(), 1);

    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert_eq!(bundles.len(), 2);
    let mut watch = client.watch_x509_bundles().await.unwrap();
    assert_eq!(watch.next().await.unwrap().unwrap().len(), 2);

    let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
    assert!(jwt_bundles.jwt_bundle_for(&td("example.org")).is_some());
    let mut watch = client.watch_jwt_bundles().await.unwrap();
    assert_eq!(watch.next().await.unwrap().unwrap().len(), 1);

    let tokens = client
        .fetch_jwt_svids(&["api", "other"], None)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[1].hint(), Some("db"));
    let request = fake.last_jwt_request.lock().unwrap().clone().unwrap();
    assert_eq!(request.audience, ["api", "other"]);
    assert_eq!(request.spiffe_id, "");

    let db = id("spiffe://example.org/db");
    let token = client.fetch_jwt_svid(&["api"], Some(&db)).await.unwrap();
    assert_eq!(token.spiffe_id(), &db);
    let request = fake.last_jwt_request.lock().unwrap().clone().unwrap();
    assert_eq!(request.spiffe_id, "spiffe://example.org/db");

    let validated = client
        .validate_jwt_svid(token.token(), "api")
        .await
        .unwrap();
    assert_eq!(validated.spiffe_id(), &db);
    // Refused by the server: wrong audience.
    let err = client
        .validate_jwt_svid(token.token(), "nope")
        .await
        .unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::InvalidArgument));

    assert_eq!(Fake::count(&fake.bad_headers), 0);
    assert_eq!(Fake::count(&fake.good_headers), 10);
    server.stop().await;
}

#[tokio::test]
async fn e_05_fake_server_refuses_a_call_without_the_header() {
    // The header checks above only mean something if the fake enforces it.
    let fake = Fake::new("example.org");
    let server = serve(fake.clone(), &socket_path("no-header")).await;
    let path = server.path.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
        .unwrap();
    let mut raw = SpiffeWorkloadApiClient::new(channel);
    let status = raw
        .fetch_jwtsvid(proto::JwtsvidRequest {
            audience: vec!["a".into()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(Fake::count(&fake.bad_headers), 1);
    server.stop().await;
}

// --- Connection, status, deadline -------------------------------------------

#[tokio::test]
async fn connect_to_a_missing_socket_is_a_connect_error() {
    let address = EndpointAddress::Unix(socket_path("missing"));
    let err = WorkloadApiClient::connect(&address).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn lazy_client_reports_unavailable_then_connects_when_the_server_is_up() {
    let path = socket_path("lazy");
    let client = WorkloadApiClient::connect_lazy(&EndpointAddress::Unix(path.clone())).unwrap();
    let err = client.fetch_x509_bundles().await.unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::Unavailable), "{err:?}");

    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509_bundles
        .send_replace(Reply::Send(proto::X509BundlesResponse {
            crl: vec![],
            bundles: BTreeMap::from([("example.org".into(), bundle_der(&example))]),
        }));
    let server = serve(fake, &path).await;
    assert_eq!(client.fetch_x509_bundles().await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn e_02_tcp_endpoints_work_too() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![x509_entry(
            &example,
            "spiffe://example.org/web",
            "",
        )])));
    let server = serve_tcp(fake.clone()).await;
    assert!(matches!(server.address(), EndpointAddress::Tcp(_)));
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    let context = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        context.default_svid().spiffe_id(),
        &id("spiffe://example.org/web")
    );
    let lazy = WorkloadApiClient::connect_lazy(&server.address()).unwrap();
    assert_eq!(lazy.fetch_x509_context().await.unwrap().svids().len(), 1);
    assert_eq!(Fake::count(&fake.bad_headers), 0);
    server.stop().await;
}

#[tokio::test]
async fn status_codes_are_reported_as_our_own() {
    let fake = Fake::new("example.org");
    fake.x509
        .send_replace(Reply::Fail(Code::PermissionDenied, "no identity issued"));
    let server = serve(fake, &socket_path("status")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    let err = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Status {
            code: GrpcCode::PermissionDenied,
            message: "no identity issued".into()
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stream_without_a_first_message_times_out() {
    let fake = Fake::new("example.org");
    let server = serve(fake.clone(), &socket_path("timeout")).await;
    let client = WorkloadApiClient::connect(&server.address())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Timeout {
            after: Duration::from_millis(200)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // A watch gets the same deadline for its first message.
    let mut watch = client.watch_x509_bundles().await.unwrap();
    assert!(matches!(
        watch.next().await,
        Some(Err(ClientError::Timeout { .. }))
    ));
    assert!(watch.next().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_stream_that_ends_before_a_message_is_stream_ended() {
    let fake = Fake::new("example.org");
    fake.jwt_bundles.send_replace(Reply::End);
    let server = serve(fake, &socket_path("ended")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    assert_eq!(
        client.fetch_jwt_bundles().await.unwrap_err(),
        ClientError::StreamEnded
    );
    server.stop().await;
}

#[tokio::test]
async fn w_20_requests_with_no_audience_are_refused_before_sending() {
    let fake = Fake::new("example.org");
    let server = serve(fake.clone(), &socket_path("audience")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    for audience in [&[][..], &[""][..], &["a", ""][..]] {
        let err = client.fetch_jwt_svids(audience, None).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest { .. }), "{err:?}");
    }
    let err = client.validate_jwt_svid("", "a").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest { .. }));
    let err = client.validate_jwt_svid("x.y.z", "").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest { .. }));
    assert_eq!(Fake::count(&fake.jwt_svid_calls), 0);
    assert_eq!(Fake::count(&fake.validate_calls), 0);
    server.stop().await;
}

#[tokio::test]
async fn w_08_a_watch_sees_each_full_state_and_redactions() {
    let example = ca("example.org");
    let other = ca("other.org");
    let fake = Fake::new("example.org");
    let entry = x509_entry(&example, "spiffe://example.org/web", "");
    let mut with_other = x509_response(vec![entry.clone()]);
    with_other
        .federated_bundles
        .insert("spiffe://other.org".into(), bundle_der(&other));
    fake.x509.send_replace(Reply::Send(with_other));
    let server = serve(fake.clone(), &socket_path("redaction")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    let mut watch = client.watch_x509_context().await.unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert!(first.x509_bundle_for(&td("other.org")).is_some());

    // A bad message is reported and the stream goes on (W-11).
    fake.x509.send_replace(Reply::Send(x509_response(vec![])));
    assert_eq!(
        watch.next().await.unwrap().unwrap_err(),
        ClientError::Decode(DecodeError::NoSvids)
    );

    // An empty federated_bundles map removes the federated bundle.
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![entry])));
    let second = watch.next().await.unwrap().unwrap();
    assert!(second.x509_bundle_for(&td("other.org")).is_none());
    assert!(second.x509_bundle_for(&td("example.org")).is_some());

    // A status ends the stream.
    fake.x509
        .send_replace(Reply::Fail(Code::PermissionDenied, "no identity issued"));
    let err = watch.next().await.unwrap().unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::PermissionDenied));
    assert!(watch.next().await.is_none());
    server.stop().await;
}

// --- Decoding rules (no server needed) ----------------------------------------

#[test]
fn w_14_an_empty_svid_list_is_an_error() {
    let err = decode_x509_svid_response(&x509_response(vec![])).unwrap_err();
    assert_eq!(err, DecodeError::NoSvids);
}

#[test]
fn w_11_empty_mandatory_fields_are_errors() {
    let example = ca("example.org");
    let good = x509_entry(&example, "spiffe://example.org/web", "");
    type Clear = fn(&mut proto::X509svid);
    let cases: [(&str, Clear); 4] = [
        ("spiffe_id", |e| e.spiffe_id.clear()),
        ("x509_svid", |e| e.x509_svid.clear()),
        ("x509_svid_key", |e| e.x509_svid_key.clear()),
        ("bundle", |e| e.bundle.clear()),
    ];
    for (field, clear) in cases {
        let mut entry = good.clone();
        clear(&mut entry);
        let err = decode_x509_svid_response(&x509_response(vec![good.clone(), entry])).unwrap_err();
        assert_eq!(
            err,
            DecodeError::EmptySvidField { index: 1, field },
            "{field}"
        );
    }
}

#[test]
fn spiffe_id_field_must_be_the_leafs_id() {
    let example = ca("example.org");
    let mut entry = x509_entry(&example, "spiffe://example.org/web", "");
    entry.spiffe_id = "spiffe://example.org/admin".into();
    let err = decode_x509_svid_response(&x509_response(vec![entry])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::SpiffeIdMismatch {
            expected: id("spiffe://example.org/admin"),
            found: id("spiffe://example.org/web"),
        }
    );
    let mut entry = x509_entry(&example, "spiffe://example.org/web", "");
    entry.spiffe_id = "not-an-id".into();
    assert!(matches!(
        decode_x509_svid_response(&x509_response(vec![entry])),
        Err(DecodeError::InvalidSpiffeId { .. })
    ));
}

#[test]
fn the_key_must_be_the_leafs() {
    let example = ca("example.org");
    let mut entry = x509_entry(&example, "spiffe://example.org/web", "");
    let other = x509_entry(&example, "spiffe://example.org/web", "");
    entry.x509_svid_key = other.x509_svid_key;
    let err = decode_x509_svid_response(&x509_response(vec![entry])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::InvalidX509Svid {
            index: 0,
            source: X509SvidError::KeyMismatch
        }
    );
    let mut entry = x509_entry(&example, "spiffe://example.org/web", "");
    entry.x509_svid_key = b"not a key".to_vec();
    assert!(matches!(
        decode_x509_svid_response(&x509_response(vec![entry])),
        Err(DecodeError::InvalidX509Svid { index: 0, .. })
    ));
}

#[test]
fn w_16_of_duplicate_hints_the_first_wins() {
    // The checklist's case: [A(internal), B(external), C(internal), D(""),
    // E("")] gives [A, B, D, E].
    let example = ca("example.org");
    let names = [
        ("a", "internal"),
        ("b", "external"),
        ("c", "internal"),
        ("d", ""),
        ("e", ""),
    ];
    let entries: Vec<_> = names
        .iter()
        .map(|(n, hint)| x509_entry(&example, &format!("spiffe://example.org/{n}"), hint))
        .collect();
    let context = decode_x509_svid_response(&x509_response(entries)).unwrap();
    let ids: Vec<_> = context
        .svids()
        .iter()
        .map(|s| s.svid().spiffe_id().path().to_owned())
        .collect();
    assert_eq!(ids, ["/a", "/b", "/d", "/e"]);
    assert_eq!(
        context.svid_by_hint("internal").unwrap().spiffe_id().path(),
        "/a"
    );
    // A later duplicate is dropped unread, even when it is malformed.
    let mut entries = vec![x509_entry(&example, "spiffe://example.org/a", "h")];
    entries.push(proto::X509svid {
        hint: "h".into(),
        ..Default::default()
    });
    assert_eq!(
        decode_x509_svid_response(&x509_response(entries))
            .unwrap()
            .svids()
            .len(),
        1
    );
}

#[test]
fn each_svid_bundle_is_its_trust_domains_and_federated_keys_take_both_forms() {
    let example = ca("example.org");
    let second = ca("second.org");
    let bare = ca("bare.org");
    let spiffe = ca("spiffe.org");
    let mut message = x509_response(vec![
        x509_entry(&example, "spiffe://example.org/web", ""),
        x509_entry(&second, "spiffe://second.org/web", ""),
    ]);
    message.federated_bundles = BTreeMap::from([
        ("bare.org".into(), bundle_der(&bare)),
        ("spiffe://spiffe.org".into(), bundle_der(&spiffe)),
    ]);
    let context = decode_x509_svid_response(&message).unwrap();
    for (name, ca) in [
        ("example.org", &example),
        ("second.org", &second),
        ("bare.org", &bare),
        ("spiffe.org", &spiffe),
    ] {
        let bundle = context.x509_bundle_for(&td(name)).unwrap();
        assert!(bundle.contains(ca.root_certificate()), "{name}");
    }
    assert_eq!(context.bundles().len(), 4);
    // The bundle of example.org is not offered for second.org's SVIDs.
    let second_bundle = context.x509_bundle_for(&td("second.org")).unwrap();
    assert!(!second_bundle.contains(example.root_certificate()));
}

#[test]
fn bad_bundle_keys_and_conflicts_are_errors() {
    let example = ca("example.org");
    let other = ca("other.org");
    let base = x509_response(vec![x509_entry(&example, "spiffe://example.org/web", "")]);
    let with = |key: &str, der: Vec<u8>| {
        let mut m = base.clone();
        m.federated_bundles.insert(key.to_owned(), der);
        decode_x509_svid_response(&m)
    };
    assert!(matches!(
        with("spiffe://other.org/path", bundle_der(&other)),
        Err(DecodeError::BundleKeyHasPath { .. })
    ));
    assert!(matches!(
        with("Other.org", bundle_der(&other)),
        Err(DecodeError::InvalidBundleKey { .. })
    ));
    // A bundle of the wrong form.
    assert!(matches!(
        with("other.org", b"-----BEGIN CERTIFICATE-----".to_vec()),
        Err(DecodeError::InvalidX509Bundle { .. })
    ));
    // The SVID's own trust domain again, with other authorities.
    assert_eq!(
        with("spiffe://example.org", bundle_der(&other)).unwrap_err(),
        DecodeError::ConflictingBundles {
            trust_domain: td("example.org")
        }
    );
    // ... or with the same ones: accepted once.
    assert_eq!(
        with("example.org", bundle_der(&example))
            .unwrap()
            .bundles()
            .len(),
        1
    );

    // One trust domain under both key forms, differing.
    let message = proto::X509BundlesResponse {
        crl: vec![],
        bundles: BTreeMap::from([
            ("other.org".into(), bundle_der(&other)),
            ("spiffe://other.org".into(), bundle_der(&example)),
        ]),
    };
    assert!(matches!(
        decode_x509_bundles_response(&message),
        Err(DecodeError::ConflictingBundles { .. })
    ));
}

#[test]
fn jwt_bundles_are_standard_jwks_without_use() {
    let fake = Fake::new("example.org");
    // SPIRE leaves `use` out; a client filtering on it would find no keys.
    let mut jwks: serde_json::Value =
        serde_json::from_str(&fake.jwt_issuer.bundle().to_jwks()).unwrap();
    for key in jwks["keys"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("use");
    }
    let message = proto::JwtBundlesResponse {
        bundles: BTreeMap::from([("example.org".into(), jwks.to_string().into_bytes())]),
    };
    let bundles = decode_jwt_bundles_response(&message).unwrap();
    let bundle = bundles.jwt_bundle_for(&td("example.org")).unwrap();
    assert_eq!(bundle.len(), 1);
    assert!(bundle.get(fake.jwt_issuer.kid()).is_some());

    let bad = proto::JwtBundlesResponse {
        bundles: BTreeMap::from([("example.org".into(), b"not json".to_vec())]),
    };
    assert!(matches!(
        decode_jwt_bundles_response(&bad),
        Err(DecodeError::InvalidJwtBundle { .. })
    ));
}

#[test]
fn fetched_jwt_svids_are_checked() {
    let fake = Fake::new("example.org");
    let web = id("spiffe://example.org/web");
    let later = SystemTime::now() + Duration::from_secs(300);
    let token = fake.jwt_issuer.issue(&web, &["a", "b"], later).unwrap();
    let response = |spiffe_id: &str, svid: &str| proto::JwtsvidResponse {
        svids: vec![proto::Jwtsvid {
            spiffe_id: spiffe_id.into(),
            svid: svid.into(),
            hint: String::new(),
        }],
    };
    let now = SystemTime::now();
    let good = response(web.as_str(), &token);
    assert_eq!(
        decode_jwt_svid_response(&good, &["a", "b"], Some(&web), now).unwrap()[0].token(),
        token
    );

    // Declared ID differs from the token's subject.
    let lying = response("spiffe://example.org/admin", &token);
    assert!(matches!(
        decode_jwt_svid_response(&lying, &["a"], None, now),
        Err(DecodeError::SpiffeIdMismatch { .. })
    ));
    // Not the identity asked for.
    let admin = id("spiffe://example.org/admin");
    assert!(matches!(
        decode_jwt_svid_response(&good, &["a"], Some(&admin), now),
        Err(DecodeError::SpiffeIdMismatch { .. })
    ));
    // Not for every requested audience.
    assert_eq!(
        decode_jwt_svid_response(&good, &["a", "c"], None, now).unwrap_err(),
        DecodeError::AudienceMissing {
            index: 0,
            audience: "c".into()
        }
    );
    // Expired at the time of the check.
    let in_an_hour = now + Duration::from_secs(3600);
    assert!(matches!(
        decode_jwt_svid_response(&good, &["a"], None, in_an_hour),
        Err(DecodeError::InvalidJwtSvid { index: 0, .. })
    ));
    // Empty mandatory fields.
    assert_eq!(
        decode_jwt_svid_response(&response("", &token), &["a"], None, now).unwrap_err(),
        DecodeError::EmptySvidField {
            index: 0,
            field: "spiffe_id"
        }
    );
    assert_eq!(
        decode_jwt_svid_response(&response(web.as_str(), ""), &["a"], None, now).unwrap_err(),
        DecodeError::EmptySvidField {
            index: 0,
            field: "svid"
        }
    );
}

#[tokio::test]
async fn decode_errors_reach_the_caller_as_decode_errors() {
    let example = ca("example.org");
    let fake = Fake::new("example.org");
    let mut entry = x509_entry(&example, "spiffe://example.org/web", "");
    entry.bundle = b"garbage".to_vec();
    fake.x509
        .send_replace(Reply::Send(x509_response(vec![entry])));
    let server = serve(fake, &socket_path("decode")).await;
    let client = WorkloadApiClient::connect(&server.address()).await.unwrap();
    let err = client.fetch_x509_context().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Decode(DecodeError::InvalidX509Bundle { .. })
        ),
        "{err:?}"
    );
    server.stop().await;
}
