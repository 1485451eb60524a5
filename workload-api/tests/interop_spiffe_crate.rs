//! Interop: the reference Rust client, the `spiffe` crate 0.19, against our
//! server over a real Unix socket. It fetches X.509-SVIDs, bundles, JWT-SVIDs
//! and JWT bundles, validates a token through the server, and its
//! `X509Source` follows a rotation.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::time::{Duration, SystemTime};

use spiffe::{WorkloadApiClient, X509Source};
use spiffe_workload_api::server::{RegistrationEntry, Selector};

use server_support::*;

fn endpoint(dir: &ScratchDir) -> String {
    format!("unix://{}", dir.socket().display())
}

fn my_entry(entry_id: &str, svid: spiffe_svid::X509Svid) -> RegistrationEntry {
    let (uid, _) = own_uid_gid();
    RegistrationEntry::new(entry_id, [Selector::Uid(uid)], svid)
}

fn chain_der(svid: &spiffe_svid::X509Svid) -> Vec<Vec<u8>> {
    svid.chain().iter().map(|c| c.to_vec()).collect()
}

fn spiffe_chain_der(svid: &spiffe::X509Svid) -> Vec<Vec<u8>> {
    svid.cert_chain()
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

#[tokio::test]
async fn spiffe_crate_fetches_x509_svids_and_bundles() {
    let world = World::new("example.org");
    let partner = spiffe_svid::issuer::DevCa::new(td("partner.test")).unwrap();
    world.provider.set_x509_bundle(partner.bundle());
    let web = svid(&world.ca, "spiffe://example.org/web");
    let db = svid(&world.ca, "spiffe://example.org/db");
    world.provider.update(|r| {
        r.set_entry(my_entry("a", web.clone()).with_hint("internal").unwrap());
        r.set_entry(my_entry("b", db.clone()));
    });
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());

    let client = WorkloadApiClient::connect_to(endpoint(&dir)).await.unwrap();
    let default = client.fetch_x509_svid().await.unwrap();
    assert_eq!(default.spiffe_id().to_string(), "spiffe://example.org/web");
    assert_eq!(spiffe_chain_der(&default), chain_der(&web));
    let key = web.private_key();
    assert_eq!(default.private_key().as_bytes(), key.secret_der());

    let all = client.fetch_all_x509_svids().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].hint(), Some("internal"));
    assert_eq!(all[1].spiffe_id().to_string(), "spiffe://example.org/db");
    assert_eq!(spiffe_chain_der(&all[1]), chain_der(&db));

    let context = client.fetch_x509_context().await.unwrap();
    assert_eq!(context.svids().len(), 2);
    let bundles = context.bundle_set();
    assert_eq!(bundles.len(), 2);
    let own = bundles
        .get(&spiffe::TrustDomain::new("example.org").unwrap())
        .unwrap();
    assert_eq!(
        own.authorities()[0].as_bytes(),
        world.ca.root_certificate().as_ref()
    );
    let federated = bundles
        .get(&spiffe::TrustDomain::new("partner.test").unwrap())
        .unwrap();
    assert_eq!(
        federated.authorities()[0].as_bytes(),
        partner.root_certificate().as_ref()
    );

    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert_eq!(bundles.len(), 2);
    assert!(
        bundles
            .get(&spiffe::TrustDomain::new("partner.test").unwrap())
            .is_some()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn spiffe_crate_fetches_and_validates_jwt_svids() {
    let world = World::new("example.org");
    world
        .provider
        .set_entry(my_entry("web", svid(&world.ca, "spiffe://example.org/web")));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());
    let client = WorkloadApiClient::connect_to(endpoint(&dir)).await.unwrap();

    let jwt = client.fetch_jwt_svid(["api", "db"], None).await.unwrap();
    assert_eq!(jwt.spiffe_id().to_string(), "spiffe://example.org/web");
    assert_eq!(jwt.audience(), ["api", "db"]);
    assert_eq!(jwt.key_id(), world.jwt.kid());

    let bundles = client.fetch_jwt_bundles().await.unwrap();
    let own = bundles
        .get(&spiffe::TrustDomain::new("example.org").unwrap())
        .unwrap();
    assert!(own.find_jwt_authority(world.jwt.kid()).is_some());

    // Server-side validation of a token for another workload.
    let token = world
        .jwt
        .issue(
            &id("spiffe://example.org/peer"),
            &["api"],
            SystemTime::now() + Duration::from_secs(60),
        )
        .unwrap();
    let validated = client.validate_jwt_token("api", &token).await.unwrap();
    assert_eq!(
        validated.spiffe_id().to_string(),
        "spiffe://example.org/peer"
    );
    assert!(client.validate_jwt_token("other", &token).await.is_err());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn spiffe_crate_x509_source_follows_a_rotation() {
    let world = World::new("example.org");
    let first = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", first.clone()));
    let dir = ScratchDir::new();
    let running = Running::start(world.server(), &dir.socket());

    let source = tokio::time::timeout(
        PATIENCE,
        X509Source::builder().endpoint(endpoint(&dir)).build(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(spiffe_chain_der(&source.svid().unwrap()), chain_der(&first));
    let mut updates = source.updated();

    let rotated = svid(&world.ca, "spiffe://example.org/web");
    world.provider.set_entry(my_entry("web", rotated.clone()));
    tokio::time::timeout(PATIENCE, updates.changed())
        .await
        .expect("no update after rotation")
        .unwrap();
    assert_eq!(
        spiffe_chain_der(&source.svid().unwrap()),
        chain_der(&rotated)
    );

    source.shutdown().await;
    running.stop().await.unwrap();
}
