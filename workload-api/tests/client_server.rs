//! Our client and sources against our server over a real Unix socket: every
//! RPC end to end, rotation reaching live sources, and a server restart
//! during which the sources keep serving the last good material.
#![cfg(all(feature = "client", feature = "server"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::time::Duration;

use rustls_pki_types::UnixTime;
use spiffe_bundle::X509BundleSource;
use spiffe_svid::verify_x509_svid;
use spiffe_workload_api::server::{RegistrationEntry, Selector};
use spiffe_workload_api::{
    BundleSource, ClientError, EndpointAddress, GrpcCode, JwtSource, SourceOptions, SvidSelector,
    WorkloadApiClient, X509Source,
};

use server_support::*;

fn mine(entry_id: &str, svid: spiffe_svid::X509Svid) -> RegistrationEntry {
    let (uid, _) = own_uid_gid();
    RegistrationEntry::new(entry_id, [Selector::Uid(uid)], svid)
}

fn address(dir: &ScratchDir) -> EndpointAddress {
    EndpointAddress::Unix(dir.socket())
}

fn fast() -> SourceOptions {
    SourceOptions::default()
        .with_initial_timeout(PATIENCE)
        .with_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

#[tokio::test]
async fn every_rpc_end_to_end_with_federation() {
    let world = World::new("example.org");
    let partner = World::new("partner.test");
    world.provider.update(|r| {
        r.set_entry(
            mine("a", svid(&world.ca, "spiffe://example.org/ns/a/sa/web"))
                .with_hint("internal")
                .unwrap(),
        );
        r.set_entry(mine(
            "b",
            svid(&world.ca, "spiffe://example.org/ns/a/sa/db"),
        ));
        r.set_x509_bundle(partner.ca.bundle());
        r.set_jwt_bundle(partner.jwt.bundle());
    });
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect(&address(&dir)).await.unwrap();

    // X.509: both SVIDs in entry order, with hints and both bundles.
    let context = client.fetch_x509_context().await.unwrap();
    let ids: Vec<_> = context
        .svids()
        .iter()
        .map(|s| s.svid().spiffe_id().as_str().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "spiffe://example.org/ns/a/sa/web",
            "spiffe://example.org/ns/a/sa/db"
        ]
    );
    assert_eq!(context.svids()[0].hint(), Some("internal"));
    assert_eq!(context.bundles().len(), 2);
    // A partner workload's SVID verifies against the fetched context.
    let partner_svid = svid(&partner.ca, "spiffe://partner.test/api");
    let verified = verify_x509_svid(partner_svid.chain(), &context, UnixTime::now()).unwrap();
    assert_eq!(verified.spiffe_id().as_str(), "spiffe://partner.test/api");

    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert!(
        bundles
            .x509_bundle_for(&td("partner.test"))
            .is_some_and(|b| b.contains(partner.ca.root_certificate()))
    );

    // JWT: fetch, validate locally against fetched bundles, and remotely.
    let token = client
        .fetch_jwt_svid(&["api"], Some(&id("spiffe://example.org/ns/a/sa/db")))
        .await
        .unwrap();
    assert_eq!(
        token.spiffe_id().as_str(),
        "spiffe://example.org/ns/a/sa/db"
    );
    let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
    assert_eq!(jwt_bundles.len(), 2);
    spiffe_svid::JwtSvid::parse_and_validate(
        token.token(),
        &jwt_bundles,
        &["api"],
        UnixTime::now(),
    )
    .unwrap();
    let validated = client
        .validate_jwt_svid(token.token(), "api")
        .await
        .unwrap();
    assert_eq!(validated.spiffe_id(), token.spiffe_id());
    // A token for another audience is refused by the server.
    let err = client
        .validate_jwt_svid(token.token(), "other")
        .await
        .unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::InvalidArgument), "{err:?}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_caller_is_permission_denied_for_the_client() {
    let world = World::new("example.org");
    // An entry for another uid only.
    world.provider.set_entry(RegistrationEntry::new(
        "other",
        [Selector::Uid(own_uid_gid().0.wrapping_add(1))],
        svid(&world.ca, "spiffe://example.org/other"),
    ));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect(&address(&dir)).await.unwrap();
    let err = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(err.grpc_code(), Some(GrpcCode::PermissionDenied), "{err:?}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn rotation_reaches_live_sources() {
    let world = World::new("example.org");
    world.provider.set_entry(mine(
        "web",
        svid(&world.ca, "spiffe://example.org/ns/a/sa/web"),
    ));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect(&address(&dir)).await.unwrap();
    let x509 = X509Source::with_options(client.clone(), fast())
        .await
        .unwrap();
    let bundles = BundleSource::with_options(client.clone(), fast())
        .await
        .unwrap();
    let first = x509.svid().unwrap();
    let mut updates = x509.subscribe();

    let rotated = svid(&world.ca, "spiffe://example.org/ns/a/sa/web");
    world.provider.set_entry(mine("web", rotated.clone()));
    let context = tokio::time::timeout(PATIENCE, updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(context.default_svid().leaf(), rotated.leaf());
    assert_eq!(x509.svid().unwrap().leaf(), rotated.leaf());
    assert_ne!(first.leaf(), rotated.leaf());

    // A federated bundle added later reaches the bundle source.
    let partner = World::new("partner.test");
    let mut bundle_updates = bundles.subscribe();
    world.provider.set_x509_bundle(partner.ca.bundle());
    let now = tokio::time::timeout(PATIENCE, bundle_updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(now.get(&td("partner.test")).is_some());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn sources_survive_a_server_restart_and_never_serve_nothing() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(mine("web", svid(&world.ca, "spiffe://example.org/web")));
    world.provider.set_entry(
        mine("api", svid(&world.ca, "spiffe://example.org/api"))
            .with_hint("api")
            .unwrap(),
    );
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect_lazy(&address(&dir)).unwrap();
    let x509 = X509Source::with_options(
        client.clone(),
        fast().with_svid(SvidSelector::Hint("api".to_owned())),
    )
    .await
    .unwrap();
    let jwt = JwtSource::with_options(client.clone(), fast())
        .await
        .unwrap();
    let before = x509.svid().unwrap();
    assert_eq!(before.spiffe_id().as_str(), "spiffe://example.org/api");
    let jwt_before = jwt.bundles();

    // The agent goes away: the sources keep what they had.
    running.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(x509.svid().unwrap().leaf(), before.leaf());
    assert_eq!(jwt.bundles().len(), jwt_before.len());
    assert!(x509.last_error().is_some(), "the outage is reported");

    // It comes back (same socket path) with rotated material.
    let rotated = svid(&world.ca, "spiffe://example.org/api");
    world
        .provider
        .set_entry(mine("api", rotated.clone()).with_hint("api").unwrap());
    let mut updates = x509.subscribe();
    let running = Running::start(world.server(), &dir.socket());
    let context = tokio::time::timeout(PATIENCE, updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(context.svid_by_hint("api").unwrap().leaf(), rotated.leaf());
    assert_eq!(x509.svid().unwrap().leaf(), rotated.leaf());

    // JWT-SVIDs work again through the source.
    let token = jwt
        .fetch_jwt_svid(&["aud"], Some(&id("spiffe://example.org/web")))
        .await
        .unwrap();
    assert_eq!(token.spiffe_id().as_str(), "spiffe://example.org/web");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_source_reports_a_missing_agent_at_start() {
    let dir = ScratchDir::new();
    let client = WorkloadApiClient::connect_lazy(&address(&dir)).unwrap();
    let err = X509Source::with_options(
        client,
        fast().with_initial_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::NoInitialUpdate { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_expired_svid_is_not_served_while_the_agent_is_away() {
    use std::time::SystemTime;

    use rustls_pki_types::UnixTime as T;
    use spiffe_svid::issuer::SvidSpec;

    let world = World::new("example.org");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    // Whole seconds: expires one to two seconds from now.
    let spec = SvidSpec::new(
        id("spiffe://example.org/web"),
        T::since_unix_epoch(now - Duration::from_secs(60)),
        T::since_unix_epoch(Duration::from_secs(now.as_secs() + 2)),
    );
    let short = world.ca.issue(&spec).unwrap().to_x509_svid().unwrap();
    world.provider.set_entry(mine("web", short));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect_lazy(&address(&dir)).unwrap();
    let x509 = X509Source::with_options(client, fast()).await.unwrap();
    assert!(x509.svid().is_ok());
    running.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        matches!(x509.svid(), Err(ClientError::SvidExpired { .. })),
        "{:?}",
        x509.svid()
    );
}
