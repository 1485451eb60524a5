//! The Workload API server over a real Unix socket, driven by the raw
//! generated client: every RPC, the security header, attestation outcomes,
//! rotation to many open streams, limits and shutdown.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe_bundle::JwtBundle;
use spiffe_id::SpiffeId;
use spiffe_svid::issuer::{DevCa, JwtIssuer};
use spiffe_svid::{JwtSvid, X509Svid};
use spiffe_workload_api::proto::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, WitBundlesRequest, WitsvidRequest,
    X509BundlesRequest, X509svidRequest,
};
use spiffe_workload_api::server::{
    Caller, IdentityProvider, ProviderError, RegistrationEntry, Selector, SelectorIdentityProvider,
    TcpSocketListener, Updates, WorkloadApiServer,
};
use spiffe_workload_api::{JwtBundles, JwtSvidToken, X509Bundles, X509Context};
use tonic::Code;

use server_support::*;

/// An entry for this test process's uid.
fn my_entry(entry_id: &str, svid: X509Svid) -> RegistrationEntry {
    let (uid, _) = own_uid_gid();
    RegistrationEntry::new(entry_id, [Selector::Uid(uid)], svid)
}

fn chain_der(svid: &X509Svid) -> Vec<u8> {
    svid.chain().iter().flat_map(|c| c.to_vec()).collect()
}

/// Splits concatenated DER certificates.
fn split_der(mut der: &[u8]) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    while !der.is_empty() {
        assert_eq!(der[0], 0x30, "not a DER SEQUENCE");
        let (len, header) = match der[1] {
            l if l < 0x80 => (usize::from(l), 2),
            0x81 => (usize::from(der[2]), 3),
            0x82 => (usize::from(der[2]) << 8 | usize::from(der[3]), 4),
            other => panic!("unexpected length byte {other:#x}"),
        };
        out.push(CertificateDer::from(der[..header + len].to_vec()));
        der = &der[header + len..];
    }
    out
}

#[tokio::test]
async fn w_5_fetch_x509svid_sends_full_state_at_once() {
    let world = World::new("example.org");
    let federated = DevCa::new(td("partner.test")).unwrap();
    world.provider.set_x509_bundle(federated.bundle());
    let web = svid(&world.ca, "spiffe://example.org/web");
    let db = svid(&world.ca, "spiffe://example.org/db");
    world.provider.update(|r| {
        r.set_entry(
            my_entry("a-web", web.clone())
                .with_hint("internal")
                .unwrap(),
        );
        r.set_entry(my_entry("b-db", db.clone()));
    });
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());

    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();

    assert_eq!(msg.svids.len(), 2);
    let first = &msg.svids[0];
    assert_eq!(first.spiffe_id, "spiffe://example.org/web");
    assert_eq!(first.hint, "internal");
    assert_eq!(first.x509_svid, chain_der(&web));
    assert_eq!(first.bundle, world.ca.bundle().to_der());
    // The key is PKCS#8 DER and matches the leaf.
    let rebuilt =
        X509Svid::from_der_list(split_der(&first.x509_svid), &first.x509_svid_key).unwrap();
    assert_eq!(rebuilt.spiffe_id(), web.spiffe_id());
    assert_eq!(msg.svids[1].spiffe_id, "spiffe://example.org/db");
    assert_eq!(msg.svids[1].hint, "");
    // Only the trust domain no SVID belongs to is federated.
    assert_eq!(msg.federated_bundles.len(), 1);
    assert_eq!(
        msg.federated_bundles["spiffe://partner.test"],
        federated.bundle().to_der()
    );
    drop(stream);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_5_mid_stream_loss_of_identity_ends_the_stream_with_permission_denied() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(next(&mut stream).await.unwrap().is_some());

    assert!(world.provider.remove_entry("web"));
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "no identity issued");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_17_unknown_caller_gets_permission_denied_everywhere() {
    let world = World::new("example.org");
    // An entry for somebody else.
    let (uid, _) = own_uid_gid();
    world.provider.set_entry(RegistrationEntry::new(
        "other",
        [Selector::Uid(uid.wrapping_add(1))],
        svid(&world.ca, "spiffe://example.org/other"),
    ));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;

    let denied = |status: tonic::Status| {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(status.message(), "no identity issued");
    };
    denied(
        client
            .fetch_x509svid(req(X509svidRequest {}))
            .await
            .unwrap_err(),
    );
    denied(
        client
            .fetch_x509_bundles(req(X509BundlesRequest {}))
            .await
            .unwrap_err(),
    );
    denied(
        client
            .fetch_jwt_bundles(req(JwtBundlesRequest {}))
            .await
            .unwrap_err(),
    );
    denied(
        client
            .fetch_jwtsvid(req(JwtsvidRequest {
                audience: vec!["api".into()],
                spiffe_id: String::new(),
            }))
            .await
            .unwrap_err(),
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_6_unauthenticated_verifiers_get_only_the_own_bundles_when_allowed() {
    let ca = DevCa::new(td("example.org")).unwrap();
    let partner = DevCa::new(td("partner.test")).unwrap();
    let provider = SelectorIdentityProvider::new(ca.bundle()).allow_unauthenticated_verifiers(true);
    provider.set_x509_bundle(partner.bundle());
    let dir = ScratchDir::new();
    let running = Running::start(WorkloadApiServer::new(provider), &dir.socket());
    let mut client = connect(&dir.socket()).await;

    let mut stream = client
        .fetch_x509_bundles(req(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.bundles.len(), 1);
    assert_eq!(msg.bundles["spiffe://example.org"], ca.bundle().to_der());

    // The own JWT trust domain is listed even before it has a key (W-23).
    let mut stream = client
        .fetch_jwt_bundles(req(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.bundles.len(), 1);
    assert_eq!(msg.bundles["spiffe://example.org"], br#"{"keys":[]}"#);
    // Still no X.509-SVID.
    let status = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_6_x509_bundles_always_include_own_domain_and_skip_repeats() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509_bundles(req(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.bundles.len(), 1);
    assert_eq!(
        msg.bundles["spiffe://example.org"],
        world.ca.bundle().to_der()
    );

    // The same content again (a new bundle value, equal certificates): no
    // message. Then a real change: the next message is that change.
    world.provider.set_x509_bundle(world.ca.bundle());
    let partner = DevCa::new(td("partner.test")).unwrap();
    world.provider.set_x509_bundle(partner.bundle());
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.bundles.len(), 2);
    assert_eq!(
        msg.bundles["spiffe://partner.test"],
        partner.bundle().to_der()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_7_fetch_jwtsvid_mints_for_each_identity_and_checks_the_request() {
    let world = World::new("example.org");
    world.provider.update(|r| {
        r.set_entry(
            my_entry("a", svid(&world.ca, "spiffe://example.org/a"))
                .with_hint("h")
                .unwrap(),
        );
        r.set_entry(my_entry("b", svid(&world.ca, "spiffe://example.org/b")));
    });
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;

    let response = client
        .fetch_jwtsvid(req(JwtsvidRequest {
            audience: vec!["api".into(), "db".into()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.svids.len(), 2);
    assert_eq!(response.svids[0].spiffe_id, "spiffe://example.org/a");
    assert_eq!(response.svids[0].hint, "h");
    let token = JwtSvid::parse_and_validate(
        &response.svids[0].svid,
        &world.jwt.bundle(),
        &["db"],
        UnixTime::now(),
    )
    .unwrap();
    assert_eq!(token.spiffe_id().as_str(), "spiffe://example.org/a");
    assert_eq!(token.audience(), ["api", "db"]);

    // Only the requested identity.
    let response = client
        .fetch_jwtsvid(req(JwtsvidRequest {
            audience: vec!["api".into()],
            spiffe_id: "spiffe://example.org/b".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.svids.len(), 1);
    assert_eq!(response.svids[0].spiffe_id, "spiffe://example.org/b");

    let status = |audience: Vec<String>, spiffe_id: &str| {
        let mut client = client.clone();
        let request = req(JwtsvidRequest {
            audience,
            spiffe_id: spiffe_id.into(),
        });
        async move { client.fetch_jwtsvid(request).await.unwrap_err() }
    };
    let s = status(vec![], "").await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(s.message(), "audience must be specified");
    let s = status(vec!["api".into(), String::new()], "").await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(s.message(), "audience must be specified");
    let s = status(vec!["api".into()], "spiffe://example.org/").await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(
        s.message().starts_with("invalid requested SPIFFE ID"),
        "{s:?}"
    );
    let s = status(vec!["api".into()], "not an id").await;
    assert_eq!(s.code(), Code::InvalidArgument);
    // W-22: an identity the caller is not entitled to.
    let s = status(vec!["api".into()], "spiffe://example.org/c").await;
    assert_eq!(s.code(), Code::PermissionDenied);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_7_minted_jwt_svids_are_reused_until_half_their_lifetime() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    let ca = DevCa::new(td("example.org")).unwrap();
    let issuer = JwtIssuer::new(td("example.org")).unwrap();
    let minted = Arc::new(AtomicUsize::new(0));
    // Tokens live 4 s, so the cache must mint anew after 2 s.
    let minter = {
        let minted = minted.clone();
        move |id: &SpiffeId, audience: &[String]| {
            minted.fetch_add(1, Ordering::SeqCst);
            let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
            issuer
                .issue(id, &audience, SystemTime::now() + Duration::from_secs(4))
                .map_err(|e| ProviderError::Unavailable {
                    reason: e.to_string(),
                })
        }
    };
    let provider = Arc::new(SelectorIdentityProvider::new(ca.bundle()).with_jwt_minter(minter));
    provider.set_entry(my_entry("web", svid(&ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(WorkloadApiServer::from_arc(provider), &dir.socket());
    let client = connect(&dir.socket()).await;
    let fetch = |audience: &[&str]| {
        let request = req(JwtsvidRequest {
            audience: audience.iter().map(|a| (*a).to_owned()).collect(),
            spiffe_id: String::new(),
        });
        let mut client = client.clone();
        async move {
            client
                .fetch_jwtsvid(request)
                .await
                .unwrap()
                .into_inner()
                .svids[0]
                .svid
                .clone()
        }
    };
    let first = fetch(&["api", "db"]).await;
    // The same audience in another order is the same request.
    assert_eq!(fetch(&["db", "api"]).await, first);
    assert_eq!(minted.load(Ordering::SeqCst), 1);
    // Another audience is another token.
    assert_ne!(fetch(&["api"]).await, first);
    assert_eq!(minted.load(Ordering::SeqCst), 2);
    // Past half the lifetime, a new token.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_ne!(fetch(&["api", "db"]).await, first);
    assert_eq!(minted.load(Ordering::SeqCst), 3);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_8_jwt_bundles_are_jwks_per_trust_domain_and_skip_repeats() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let partner = JwtIssuer::new(td("partner.test")).unwrap();
    world.provider.set_jwt_bundle(partner.bundle());
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_jwt_bundles(req(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.bundles.len(), 2);
    let own =
        JwtBundle::parse_jwks(td("example.org"), &msg.bundles["spiffe://example.org"]).unwrap();
    assert_eq!(own, world.jwt.bundle());
    let jwks: serde_json::Value =
        serde_json::from_slice(&msg.bundles["spiffe://partner.test"]).unwrap();
    // Standard JWKS: no `use`, no `spiffe_*` members.
    assert_eq!(jwks.as_object().unwrap().len(), 1);
    assert!(jwks["keys"][0].get("use").is_none());
    assert_eq!(jwks["keys"][0]["kid"], partner.kid());

    // Same content again: suppressed; then a rotation of the own key.
    world.provider.set_jwt_bundle(world.jwt.bundle());
    let rotated = JwtIssuer::new(td("example.org")).unwrap();
    world.provider.set_jwt_bundle(rotated.bundle());
    let msg = next(&mut stream).await.unwrap().unwrap();
    let own =
        JwtBundle::parse_jwks(td("example.org"), &msg.bundles["spiffe://example.org"]).unwrap();
    assert_eq!(own, rotated.bundle());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_9_validate_jwtsvid_returns_claims_and_rejects_bad_input() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let token = world
        .jwt
        .issue(
            &id("spiffe://example.org/peer"),
            &["api"],
            std::time::SystemTime::now() + Duration::from_secs(60),
        )
        .unwrap();

    let response = client
        .validate_jwtsvid(req(ValidateJwtsvidRequest {
            audience: "api".into(),
            svid: token.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.spiffe_id, "spiffe://example.org/peer");
    let claims = response.claims.unwrap().fields;
    use prost_types::value::Kind;
    // A single-string `aud` comes back as a list (W9).
    let Some(Kind::ListValue(aud)) = &claims["aud"].kind else {
        panic!("aud is not a list: {:?}", claims["aud"]);
    };
    assert_eq!(aud.values.len(), 1);
    assert_eq!(aud.values[0].kind, Some(Kind::StringValue("api".into())));
    assert_eq!(
        claims["sub"].kind,
        Some(Kind::StringValue("spiffe://example.org/peer".into()))
    );
    assert!(matches!(claims["exp"].kind, Some(Kind::NumberValue(_))));

    let invalid = |audience: &str, svid: &str| {
        let mut client = client.clone();
        let request = req(ValidateJwtsvidRequest {
            audience: audience.into(),
            svid: svid.into(),
        });
        async move {
            let status = client.validate_jwtsvid(request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            status.message().to_owned()
        }
    };
    assert_eq!(invalid("", &token).await, "audience must be specified");
    assert_eq!(invalid("api", "").await, "svid must be specified");
    assert!(invalid("other", &token).await.contains("invalid JWT-SVID"));
    assert!(invalid("api", "a.b.c").await.contains("invalid JWT-SVID"));
    // Signed by a key the bundles do not hold.
    let stranger = JwtIssuer::new(td("example.org")).unwrap();
    let forged = stranger
        .issue(
            &id("spiffe://example.org/peer"),
            &["api"],
            std::time::SystemTime::now() + Duration::from_secs(60),
        )
        .unwrap();
    assert!(invalid("api", &forged).await.contains("invalid JWT-SVID"));
    running.stop().await.unwrap();
}

/// The seven RPCs, called with the given metadata, each reduced to its
/// status (`Ok` for success).
async fn call_all(
    client: &mut spiffe_workload_api::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient<
        tonic::transport::Channel,
    >,
    headers: &[&str],
) -> Vec<(&'static str, Code)> {
    fn with<T>(message: T, headers: &[&str]) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for value in headers {
            request
                .metadata_mut()
                .append("workload.spiffe.io", value.parse().unwrap());
        }
        request
    }
    fn code<T>(result: Result<T, tonic::Status>) -> Code {
        result.err().map_or(Code::Ok, |s| s.code())
    }
    let jwt = || JwtsvidRequest {
        audience: vec!["api".into()],
        spiffe_id: String::new(),
    };
    let validate = || ValidateJwtsvidRequest {
        audience: "api".into(),
        svid: "a.b.c".into(),
    };
    vec![
        (
            "FetchX509SVID",
            code(
                client
                    .fetch_x509svid(with(X509svidRequest {}, headers))
                    .await,
            ),
        ),
        (
            "FetchX509Bundles",
            code(
                client
                    .fetch_x509_bundles(with(X509BundlesRequest {}, headers))
                    .await,
            ),
        ),
        (
            "FetchJWTSVID",
            code(client.fetch_jwtsvid(with(jwt(), headers)).await),
        ),
        (
            "FetchJWTBundles",
            code(
                client
                    .fetch_jwt_bundles(with(JwtBundlesRequest {}, headers))
                    .await,
            ),
        ),
        (
            "ValidateJWTSVID",
            code(client.validate_jwtsvid(with(validate(), headers)).await),
        ),
        (
            "FetchWITSVID",
            code(
                client
                    .fetch_witsvid(with(WitsvidRequest::default(), headers))
                    .await,
            ),
        ),
        (
            "FetchWITBundles",
            code(
                client
                    .fetch_wit_bundles(with(WitBundlesRequest {}, headers))
                    .await,
            ),
        ),
    ]
}

#[tokio::test]
async fn w_2_security_header_is_checked_first_on_every_rpc() {
    // A caller with no identity: any status but InvalidArgument proves the
    // header passed, and the header check must come before attestation.
    let world = World::new("example.org");
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;

    for headers in [
        &[][..],
        &["True"],
        &["TRUE"],
        &[""],
        &["1"],
        &["true", "true"],
        &["true", "false"],
    ] {
        for (rpc, code) in call_all(&mut client, headers).await {
            assert_eq!(code, Code::InvalidArgument, "{rpc} with {headers:?}");
        }
    }
    let statuses = call_all(&mut client, &["true"]).await;
    let expected = [
        ("FetchX509SVID", Code::PermissionDenied),
        ("FetchX509Bundles", Code::PermissionDenied),
        ("FetchJWTSVID", Code::PermissionDenied),
        ("FetchJWTBundles", Code::PermissionDenied),
        // The default validation consults the caller's JWT bundles.
        ("ValidateJWTSVID", Code::PermissionDenied),
        // W-29: no WIT profile.
        ("FetchWITSVID", Code::Unimplemented),
        ("FetchWITBundles", Code::Unimplemented),
    ];
    assert_eq!(statuses, expected);

    // The message, as SPIRE words it.
    let status = client
        .fetch_x509svid(tonic::Request::new(X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.message(), "security header missing from request");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn w_5_rotation_reaches_every_open_stream() {
    let world = World::new("example.org");
    let first = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", first.clone()));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());

    // 50 streams over 5 connections.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let client = connect(&dir.socket()).await;
        for _ in 0..10 {
            let mut client = client.clone();
            let stream = client
                .fetch_x509svid(req(X509svidRequest {}))
                .await
                .unwrap()
                .into_inner();
            streams.push(stream);
        }
    }
    for stream in &mut streams {
        let msg = next(stream).await.unwrap().unwrap();
        assert_eq!(msg.svids[0].x509_svid, chain_der(&first));
    }

    let rotated = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", rotated.clone()));
    for stream in &mut streams {
        let msg = next(stream).await.unwrap().unwrap();
        assert_eq!(msg.svids.len(), 1);
        assert_eq!(msg.svids[0].x509_svid, chain_der(&rotated));
    }
    drop(streams);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_change_for_other_callers_sends_nothing() {
    let world = World::new("example.org");
    let mine = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", mine));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    next(&mut stream).await.unwrap().unwrap();

    // An entry of another uid changes: nothing for this caller. Then this
    // caller's own rotation arrives as the very next message.
    let (uid, _) = own_uid_gid();
    world.provider.set_entry(RegistrationEntry::new(
        "other",
        [Selector::Uid(uid.wrapping_add(1))],
        svid(&world.ca, "spiffe://example.org/other"),
    ));
    let rotated = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", rotated.clone()));
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.svids[0].x509_svid, chain_der(&rotated));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_ends_open_streams_and_removes_the_socket() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut x509 = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let mut bundles = client
        .fetch_jwt_bundles(req(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    next(&mut x509).await.unwrap().unwrap();
    next(&mut bundles).await.unwrap().unwrap();

    // The streams stay open: `stop` would time out if shutdown waited on
    // them.
    running.stop().await.unwrap();
    let status = next(&mut x509).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = next(&mut bundles).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!dir.socket().exists(), "socket file left behind");
}

#[tokio::test]
async fn s_1_stale_socket_is_replaced() {
    let dir = ScratchDir::new();
    // A socket file left by a dead server.
    drop(std::os::unix::net::UnixListener::bind(dir.socket()).unwrap());
    assert!(dir.socket().exists());
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(next(&mut stream).await.unwrap().is_some());
    drop(stream);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn s_1_a_file_that_is_not_a_socket_is_left_alone() {
    use spiffe_workload_api::server::{ServeError, UnixSocketListener};
    let dir = ScratchDir::new();
    std::fs::write(dir.socket(), b"precious").unwrap();
    let err = UnixSocketListener::bind(dir.socket()).unwrap_err();
    assert!(matches!(err, ServeError::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(dir.socket()).unwrap(), b"precious");

    std::fs::remove_file(dir.socket()).unwrap();
    std::fs::create_dir(dir.socket()).unwrap();
    let err = UnixSocketListener::bind(dir.socket()).unwrap_err();
    assert!(matches!(err, ServeError::NotASocket { .. }), "{err:?}");
    assert!(dir.socket().is_dir());

    // The parent directory is not created.
    let err = UnixSocketListener::bind(dir.0.join("missing/api.sock")).unwrap_err();
    assert!(
        matches!(err, ServeError::ParentDirectoryMissing { .. }),
        "{err:?}"
    );
    assert!(!dir.0.join("missing").exists());
}

#[tokio::test]
async fn s_1_socket_permissions() {
    use spiffe_workload_api::server::UnixSocketListener;
    use std::os::unix::fs::PermissionsExt;
    let dir = ScratchDir::new();
    let listener = UnixSocketListener::bind(dir.socket()).unwrap();
    let mode = std::fs::metadata(dir.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o777);
    drop(listener);
    assert!(!dir.socket().exists());

    let listener = UnixSocketListener::bind_with_mode(dir.socket(), 0o660).unwrap();
    let mode = std::fs::metadata(dir.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o660);
    assert_eq!(listener.path(), dir.socket());
}

#[tokio::test]
async fn a_listener_does_not_remove_a_socket_it_did_not_create() {
    use spiffe_workload_api::server::UnixSocketListener;
    let dir = ScratchDir::new();
    let old = UnixSocketListener::bind(dir.socket()).unwrap();
    // A live server's socket is not taken over.
    let err = UnixSocketListener::bind(dir.socket()).unwrap_err();
    assert!(
        matches!(
            err,
            spiffe_workload_api::server::ServeError::SocketInUse { .. }
        ),
        "{err:?}"
    );
    // Someone removes it and a second server binds the path.
    std::fs::remove_file(dir.socket()).unwrap();
    let new = UnixSocketListener::bind(dir.socket()).unwrap();
    drop(old);
    assert!(
        dir.socket().exists(),
        "the old listener removed the new socket"
    );
    drop(new);
    assert!(!dir.socket().exists());
}

/// Wraps a provider and records the callers it is asked about.
struct Recording<P> {
    inner: P,
    callers: Mutex<Vec<Caller>>,
}

impl<P: IdentityProvider> Recording<P> {
    fn seen(&self, caller: &Caller) {
        self.callers.lock().unwrap().push(caller.clone());
    }
}

impl<P: IdentityProvider> IdentityProvider for Recording<P> {
    async fn x509_context(&self, caller: &Caller) -> Result<Updates<X509Context>, ProviderError> {
        self.seen(caller);
        self.inner.x509_context(caller).await
    }
    async fn x509_bundles(&self, caller: &Caller) -> Result<Updates<X509Bundles>, ProviderError> {
        self.seen(caller);
        self.inner.x509_bundles(caller).await
    }
    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, ProviderError> {
        self.seen(caller);
        self.inner.jwt_svids(caller, audience, spiffe_id).await
    }
    async fn jwt_bundles(&self, caller: &Caller) -> Result<Updates<JwtBundles>, ProviderError> {
        self.seen(caller);
        self.inner.jwt_bundles(caller).await
    }
}

#[tokio::test]
async fn w_3_caller_is_this_process_once_per_rpc() {
    let ca = DevCa::new(td("example.org")).unwrap();
    let provider = Arc::new(Recording {
        inner: SelectorIdentityProvider::new(ca.bundle()),
        callers: Mutex::new(Vec::new()),
    });
    provider
        .inner
        .set_entry(my_entry("web", svid(&ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(WorkloadApiServer::from_arc(provider.clone()), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    next(&mut stream).await.unwrap().unwrap();
    // Rotations do not attest again.
    provider
        .inner
        .set_entry(my_entry("web", svid(&ca, "spiffe://example.org/web")));
    next(&mut stream).await.unwrap().unwrap();
    client
        .fetch_x509_bundles(req(X509BundlesRequest {}))
        .await
        .unwrap();

    let callers = provider.callers.lock().unwrap().clone();
    assert_eq!(callers.len(), 2);
    let (uid, gid) = own_uid_gid();
    for caller in callers {
        assert_eq!(caller.pid(), Some(std::process::id()));
        assert_eq!(caller.uid(), Some(uid));
        assert_eq!(caller.gid(), Some(gid));
        assert_eq!(caller.tcp_peer_addr(), None);
        caller.check_alive().unwrap();
    }
    drop(stream);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn global_stream_cap_sheds_load_with_unavailable() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server().max_streams(2), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let a = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let _b = client
        .fetch_jwt_bundles(req(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let status = client
        .fetch_x509_bundles(req(X509BundlesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "too many open Workload API streams");
    // Unary calls are not counted.
    client
        .fetch_jwtsvid(req(JwtsvidRequest {
            audience: vec!["api".into()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap();

    // Closing a stream frees its slot (once the server sees the reset).
    drop(a);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match client.fetch_x509_bundles(req(X509BundlesRequest {})).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("slot not freed: {s:?}"),
        }
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let world = World::new("example.org");
    let dir = ScratchDir::new();
    let running = Running::start(
        world.server().max_decoding_message_size(1024),
        &dir.socket(),
    );
    let mut client = connect(&dir.socket()).await;
    let status = client
        .validate_jwtsvid(req(ValidateJwtsvidRequest {
            audience: "api".into(),
            svid: "x".repeat(4096),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    running.stop().await.unwrap();
}

/// Grants one fixed context to every TCP caller on loopback.
struct LoopbackOnly {
    context: tokio::sync::watch::Sender<Result<Arc<X509Context>, ProviderError>>,
    seen: Mutex<Option<Caller>>,
}

impl IdentityProvider for LoopbackOnly {
    async fn x509_context(&self, caller: &Caller) -> Result<Updates<X509Context>, ProviderError> {
        *self.seen.lock().unwrap() = Some(caller.clone());
        match caller.tcp_peer_addr() {
            Some(addr) if addr.ip().is_loopback() => Ok(self.context.subscribe()),
            _ => Err(ProviderError::AttestationFailed {
                reason: "not a loopback peer".into(),
            }),
        }
    }
    async fn x509_bundles(&self, _: &Caller) -> Result<Updates<X509Bundles>, ProviderError> {
        Err(ProviderError::NoIdentity)
    }
    async fn jwt_svids(
        &self,
        _: &Caller,
        _: &[String],
        _: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, ProviderError> {
        Err(ProviderError::NoIdentity)
    }
    async fn jwt_bundles(&self, _: &Caller) -> Result<Updates<JwtBundles>, ProviderError> {
        Err(ProviderError::NoIdentity)
    }
}

#[tokio::test]
async fn e_03_tcp_is_loopback_only_and_carries_the_peer_address() {
    use spiffe_workload_api::server::ServeError;
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let err = TcpSocketListener::bind(addr.parse().unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServeError::NotLoopback { .. }),
            "{addr}: {err:?}"
        );
    }

    let ca = DevCa::new(td("example.org")).unwrap();
    let web = svid(&ca, "spiffe://example.org/web");
    let context = X509Context::new(
        vec![spiffe_workload_api::HintedX509Svid::new(web.clone(), None)],
        [ca.bundle()].into_iter().collect(),
    )
    .unwrap();
    let provider = Arc::new(LoopbackOnly {
        context: tokio::sync::watch::Sender::new(Ok(Arc::new(context))),
        seen: Mutex::new(None),
    });
    let listener = TcpSocketListener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        WorkloadApiServer::from_arc(provider.clone()).serve_with_incoming(listener, async {
            let _ = stopped.await;
        }),
    );

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client =
        spiffe_workload_api::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(
            channel,
        );
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(msg.svids[0].x509_svid, chain_der(&web));
    let seen = provider.seen.lock().unwrap().clone().unwrap();
    assert!(seen.tcp_peer_addr().unwrap().ip().is_loopback());
    assert_eq!(seen.pid(), None);

    drop(stream);
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn serve_binds_an_endpoint_address() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let address: spiffe_workload_api::EndpointAddress =
        format!("unix://{}", dir.socket().display())
            .parse()
            .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = world.server();
    let task = tokio::spawn(async move {
        server
            .serve(&address, async {
                let _ = stopped.await;
            })
            .await
    });
    // `serve` binds when first polled; wait for the socket.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !dir.socket().exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socket never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = connect(&dir.socket()).await;
    let mut stream = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(next(&mut stream).await.unwrap().is_some());
    stop.send(()).unwrap();
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!dir.socket().exists());
}

#[tokio::test]
async fn x509_bundles_stream_follows_federation_changes() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let partner = DevCa::new(td("partner.test")).unwrap();
    world.provider.set_x509_bundle(partner.bundle());
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut svids = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut svids).await.unwrap().unwrap();
    assert_eq!(msg.federated_bundles.len(), 1);

    // Removing a federated trust domain: the next full state has none
    // (W-08: an empty map clears them).
    assert!(
        world
            .provider
            .update(|r| r.remove_federated_bundles(&td("partner.test")))
    );
    let msg = next(&mut svids).await.unwrap().unwrap();
    assert!(msg.federated_bundles.is_empty());
    // The own trust domain cannot be removed.
    assert!(
        !world
            .provider
            .update(|r| r.remove_federated_bundles(&td("example.org")))
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn federates_with_limits_the_federated_bundles_a_caller_gets() {
    let world = World::new("example.org");
    let partner = DevCa::new(td("partner.test")).unwrap();
    let other = DevCa::new(td("other.test")).unwrap();
    world.provider.set_x509_bundle(partner.bundle());
    world.provider.set_x509_bundle(other.bundle());
    world
        .provider
        .set_jwt_bundle(JwtBundle::empty(td("other.test")));
    // Federates with partner.test only: other.test's bundles are not served.
    world.provider.set_entry(
        my_entry("web", svid(&world.ca, "spiffe://example.org/web"))
            .with_federates_with([td("partner.test")]),
    );
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let mut client = connect(&dir.socket()).await;
    let mut x509 = client
        .fetch_x509svid(req(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut x509).await.unwrap().unwrap();
    let keys: Vec<&str> = msg.federated_bundles.keys().map(String::as_str).collect();
    assert_eq!(keys, ["spiffe://partner.test"]);
    let mut bundles = client
        .fetch_x509_bundles(req(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut bundles).await.unwrap().unwrap();
    let keys: Vec<&str> = msg.bundles.keys().map(String::as_str).collect();
    assert_eq!(keys, ["spiffe://example.org", "spiffe://partner.test"]);
    let mut jwt = client
        .fetch_jwt_bundles(req(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut jwt).await.unwrap().unwrap();
    let keys: Vec<&str> = msg.bundles.keys().map(String::as_str).collect();
    assert_eq!(keys, ["spiffe://example.org"]);

    // An empty list: no federated bundle at all, and the open stream gets
    // the change.
    world.provider.set_entry(
        my_entry("web", svid(&world.ca, "spiffe://example.org/web"))
            .with_federates_with(std::iter::empty()),
    );
    let msg = next(&mut x509).await.unwrap().unwrap();
    assert!(
        msg.federated_bundles.is_empty(),
        "{:?}",
        msg.federated_bundles.keys()
    );
    // A second matching entry without a list sees every trust domain.
    world.provider.set_entry(my_entry(
        "zz-all",
        svid(&world.ca, "spiffe://example.org/all"),
    ));
    let msg = next(&mut x509).await.unwrap().unwrap();
    let keys: Vec<&str> = msg.federated_bundles.keys().map(String::as_str).collect();
    assert_eq!(keys, ["spiffe://other.test", "spiffe://partner.test"]);
    running.stop().await.unwrap();
}
