//! The agent as a library (`spiffe_cli::agent`), in-process: attestation
//! outcomes, per-entry federation, forced rotation, configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use spiffe_cli::agent::{Agent, AgentConfig, AgentError, Entry, Federation, Selector};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_workload_api::{EndpointAddress, GrpcCode, WorkloadApiClient};

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn entry(entry_id: &str, spiffe_id: &str, uid: u32) -> Entry {
    Entry::new(entry_id, id(spiffe_id), [Selector::Uid(uid)]).unwrap()
}

async fn client(agent: &Agent) -> WorkloadApiClient {
    let address = EndpointAddress::parse(&agent.endpoint_socket()).unwrap();
    WorkloadApiClient::connect(&address).await.unwrap()
}

#[tokio::test]
async fn a_caller_no_entry_matches_gets_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    // The only entry is for another uid.
    let other_uid = own_uid().wrapping_add(1);
    let config = AgentConfig::new(td("example.org")).entry(entry(
        "web",
        "spiffe://example.org/web",
        other_uid,
    ));
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    let client = client(&agent).await;
    for result in [
        client.fetch_x509_context().await.map(|_| ()),
        client.fetch_x509_bundles().await.map(|_| ()),
        client.fetch_jwt_svid(&["aud"], None).await.map(|_| ()),
        client.fetch_jwt_bundles().await.map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.grpc_code(), Some(GrpcCode::PermissionDenied), "{e}");
    }
    let socket = agent.socket_path().to_path_buf();
    agent.shutdown().await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn unauthenticated_verifiers_get_only_the_own_bundle_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig::new(td("example.org"))
        .federate_with(Federation::InMemory(td("other.org")))
        .allow_unauthenticated_verifiers(true)
        .entry(entry(
            "web",
            "spiffe://example.org/web",
            own_uid().wrapping_add(1),
        ));
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    let client = client(&agent).await;
    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert_eq!(bundles.len(), 1);
    assert!(bundles.get(&td("example.org")).is_some());
    let e = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(e.grpc_code(), Some(GrpcCode::PermissionDenied));
    agent.shutdown().await.unwrap();
}

#[tokio::test]
async fn entries_get_the_bundles_of_the_domains_they_federate_with_only() {
    let dir = tempfile::tempdir().unwrap();
    let uid = own_uid();
    let config = AgentConfig::new(td("example.org"))
        .federate_with(Federation::InMemory(td("other.org")))
        .federate_with(Federation::InMemory(td("third.org")))
        // Federated with the agent, but no entry of this caller asks for it.
        .federate_with(Federation::InMemory(td("fourth.org")))
        .entry(
            entry("a-web", "spiffe://example.org/web", uid)
                .with_hint("web")
                .unwrap()
                .with_federates_with([td("other.org")]),
        )
        // An SVID of the second in-memory domain, for the same caller.
        .entry(
            entry("b-api", "spiffe://third.org/api", uid)
                .with_hint("api")
                .unwrap(),
        );
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    let context = client(&agent).await.fetch_x509_context().await.unwrap();
    let ids: Vec<&str> = context
        .svids()
        .iter()
        .map(|s| s.svid().spiffe_id().as_str())
        .collect();
    assert_eq!(ids, ["spiffe://example.org/web", "spiffe://third.org/api"]);
    let domains: Vec<String> = context
        .bundles()
        .iter()
        .map(|b| b.trust_domain().to_string())
        .collect();
    // example.org (own), other.org (federated with), third.org (an SVID's);
    // not fourth.org.
    assert_eq!(domains, ["example.org", "other.org", "third.org"]);
    assert!(agent.x509_bundle(&td("fourth.org")).is_some());
    // Each SVID verifies against the bundle of its own domain.
    for svid in context.svids() {
        spiffe_svid::verify_x509_svid(
            svid.svid().chain(),
            context.bundles(),
            rustls_pki_types::UnixTime::now(),
        )
        .unwrap();
    }
    assert_eq!(
        agent.x509_bundle(&td("third.org")).unwrap().to_der(),
        context.bundles().get(&td("third.org")).unwrap().to_der()
    );
    agent.shutdown().await.unwrap();
}

#[tokio::test]
async fn rotate_now_pushes_new_svids_to_open_streams() {
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig::new(td("example.org")).entry(entry(
        "web",
        "spiffe://example.org/web",
        own_uid(),
    ));
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    let client = client(&agent).await;
    let mut stream = client.watch_x509_context().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.default_svid().leaf(),
        agent.svid("web").unwrap().leaf()
    );
    let mut rotations = agent.rotations();
    let before = *rotations.borrow_and_update();
    agent.rotate_now();
    let second = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(first.default_svid().leaf(), second.default_svid().leaf());
    assert_eq!(
        second.default_svid().leaf(),
        agent.svid("web").unwrap().leaf()
    );
    assert!(*rotations.borrow_and_update() > before);
    agent.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_configurations_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("a.sock");
    let uid = own_uid();
    let base = || AgentConfig::new(td("example.org"));
    let cases = [
        (base(), "no registration entry"),
        (
            base().entry(entry("x", "spiffe://other.org/x", uid)),
            "no CA for trust domain other.org",
        ),
        (
            base()
                .federate_with(Federation::InMemory(td("other.org")))
                .entry(
                    entry("x", "spiffe://example.org/x", uid)
                        .with_federates_with([td("unknown.org")]),
                ),
            "federates with unknown.org",
        ),
        (
            base()
                .entry(entry("x", "spiffe://example.org/x", uid))
                .entry(entry("x", "spiffe://example.org/y", uid)),
            "entry ID \"x\" is used twice",
        ),
        (
            base()
                .federate_with(Federation::InMemory(td("other.org")))
                .federate_with(Federation::InMemory(td("other.org")))
                .entry(entry("x", "spiffe://example.org/x", uid)),
            "given twice",
        ),
        (
            base().jwt_ttl(Duration::from_millis(500)).entry(entry(
                "x",
                "spiffe://example.org/x",
                uid,
            )),
            "outside",
        ),
    ];
    for (config, message) in cases {
        match Agent::start(config, &socket).await {
            Err(e @ AgentError::Config { .. }) => {
                assert!(e.to_string().contains(message), "{e}");
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
        assert!(!socket.exists());
    }
}

#[tokio::test]
async fn shutdown_is_bounded_when_a_client_keeps_its_connection_open() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig::new(td("example.org")).entry(entry(
        "web",
        "spiffe://example.org/web",
        own_uid(),
    ));
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    // An HTTP/2 client that opens the connection and then never reads nor
    // closes it: the graceful drain alone would wait for it for ever.
    let mut stuck = std::os::unix::net::UnixStream::connect(agent.socket_path()).unwrap();
    stuck
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let socket = agent.socket_path().to_path_buf();
    let limit = spiffe_workload_api::server::SHUTDOWN_GRACE + Duration::from_secs(3);
    let shutdown = tokio::spawn(tokio::time::timeout(limit, agent.shutdown()));
    // The socket is gone at once, while the stuck connection still drains:
    // a new caller is refused instead of waiting.
    let gone_by = tokio::time::Instant::now() + Duration::from_secs(1);
    while socket.exists() {
        assert!(
            tokio::time::Instant::now() < gone_by,
            "the socket outlived the start of the shutdown by a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!shutdown.is_finished(), "the drain should still be waiting");
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());
    shutdown
        .await
        .unwrap()
        .expect("shutdown waited past the grace period")
        .unwrap();
    assert!(!socket.exists());
    drop(stuck);
}

#[tokio::test]
async fn follows_a_federated_bundle_endpoint() {
    use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle};
    use spiffe_federation::{
        BundleEndpoint, BundleServer, BundleSetEntry, EndpointProfile, EndpointUrl, ServerOptions,
        ServerTls,
    };
    use spiffe_svid::issuer::{DevCa, SvidSpec};
    use spiffe_svid::tls::RotatingSvid;

    // partner.test serves its bundle (https_spiffe profile) on loopback.
    let partner = td("partner.test");
    let partner_ca = DevCa::new(partner.clone()).unwrap();
    let set = std::sync::Arc::new(BundleSet::new());
    let served = |sequence| {
        SpiffeBundle::new(
            partner_ca.bundle(),
            JwtBundle::empty(partner.clone()),
            Some(sequence),
            Some(1),
        )
        .unwrap()
    };
    set.insert(served(1));
    let endpoint_id = id("spiffe://partner.test/bundle-endpoint");
    let now = rustls_pki_types::UnixTime::now().as_secs();
    let t = |s| rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(s));
    let endpoint_svid = partner_ca
        .issue(&SvidSpec::new(
            endpoint_id.clone(),
            t(now - 60),
            t(now + 3600),
        ))
        .unwrap()
        .to_x509_svid()
        .unwrap();
    let server = BundleServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::https_spiffe(RotatingSvid::new(endpoint_svid)).unwrap(),
        BundleSetEntry::new(std::sync::Arc::clone(&set), partner.clone()),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let url = EndpointUrl::parse(&format!(
        "https://127.0.0.1:{}/",
        server.local_addr().port()
    ))
    .unwrap();
    let endpoint = BundleEndpoint::new(
        partner.clone(),
        url,
        EndpointProfile::https_spiffe(endpoint_id, partner_ca.bundle()),
    );

    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig::new(td("example.org"))
        .federate_with(Federation::Endpoint(endpoint))
        .entry(
            entry("web", "spiffe://example.org/web", own_uid())
                .with_federates_with([partner.clone()]),
        );
    let agent = Agent::start(config, dir.path().join("a.sock"))
        .await
        .unwrap();
    let client = client(&agent).await;
    let mut bundles = client.watch_x509_bundles().await.unwrap();
    // The first fetch brings partner.test's bundle to the workload.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, bundles.next())
            .await
            .expect("partner.test's bundle never reached the workload")
            .unwrap()
            .unwrap();
        if let Some(b) = next.get(&partner) {
            assert_eq!(b.to_der(), partner_ca.bundle().to_der());
            break;
        }
    }
    drop(bundles);
    agent.shutdown().await.unwrap();
    server.shutdown().await;
}
