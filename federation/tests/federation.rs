//! Two trust domains, each with its own development CA and bundle endpoint,
//! federate with each other on loopback, in both profiles; their workloads
//! then complete a rustls mTLS handshake verified with the federated
//! bundles; then one side rotates its root and the other learns of it
//! through its watcher, driven by the refresh hint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{WebPki, bundle_of, ms, mtls_handshake, serve, svid, td};
use spiffe_bundle::{BundleSet, SpiffeBundle};
use spiffe_federation::{
    BundleEndpoint, BundleServer, BundleWatcher, EndpointProfile, EndpointUrl, ServerTls,
    WatchOptions,
};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::DevCa;
use spiffe_svid::tls::RotatingSvid;

/// One trust domain: its CA, the bundle set its workloads verify with
/// (holding its own bundle), and its bundle endpoint.
struct Domain {
    td: TrustDomain,
    ca: DevCa,
    set: Arc<BundleSet>,
    endpoint_svid: Arc<RotatingSvid>,
    server: BundleServer,
    host: &'static str,
}

impl Domain {
    /// A domain whose endpoint serves with an X509-SVID (`https_spiffe`),
    /// or with `web`'s certificate (`https_web`). The bundle's refresh hint
    /// is one second, so watchers poll often.
    async fn new(name: &str, web: Option<(&WebPki, &'static str)>) -> Self {
        let td = td(name);
        let ca = DevCa::new(td.clone()).unwrap();
        let set = Arc::new(BundleSet::new());
        set.insert(bundle_of(&[&ca], 1, Some(1)));
        let endpoint_svid = Arc::new(RotatingSvid::new(svid(
            &ca,
            &format!("spiffe://{name}/bundle-endpoint"),
        )));
        let (tls, host) = match web {
            Some((pki, host)) => (pki.server_tls(), host),
            None => (
                ServerTls::https_spiffe(Arc::clone(&endpoint_svid)).unwrap(),
                "127.0.0.1",
            ),
        };
        let server = serve(&set, &td, tls).await;
        Domain {
            td,
            ca,
            set,
            endpoint_svid,
            server,
            host,
        }
    }

    fn endpoint_id(&self) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://{}/bundle-endpoint", self.td)).unwrap()
    }

    fn url(&self) -> EndpointUrl {
        EndpointUrl::parse(&format!(
            "https://{}:{}/",
            self.host,
            self.server.local_addr().port()
        ))
        .unwrap()
    }

    /// This domain's endpoint, as configured by another domain: https_spiffe
    /// with a bootstrap bundle obtained out of band (its current X.509
    /// bundle), or https_web with the Web PKI roots.
    fn endpoint_for_others(&self, web: Option<&WebPki>) -> BundleEndpoint {
        let profile = match web {
            Some(pki) => EndpointProfile::https_web(pki.roots()),
            None => EndpointProfile::https_spiffe(
                self.endpoint_id(),
                self.set.get(&self.td).unwrap().x509_bundle().clone(),
            ),
        };
        BundleEndpoint::new(self.td.clone(), self.url(), profile)
    }

    fn own_bundle(&self) -> SpiffeBundle {
        self.set.get(&self.td).unwrap()
    }
}

fn fast_watch() -> WatchOptions {
    WatchOptions::default()
        .with_refresh_bounds(ms(200), Duration::from_secs(60))
        .with_retry_initial(ms(100))
}

async fn wait_for(watcher: &BundleWatcher, what: impl Fn(&SpiffeBundle) -> bool) -> SpiffeBundle {
    let mut updates = watcher.subscribe();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(b) = updates.current().filter(|b| what(b)) {
                return b;
            }
            updates.changed().await.expect("watcher stopped");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no such bundle; status {:?}", watcher.status()))
}

/// Both directions federated, then workloads talk, then `rotating` rotates
/// its root (and, for https_spiffe, its endpoint SVID) and the other side's
/// watcher follows.
async fn federate(a: Domain, b: Domain, a_web: Option<&WebPki>, b_web: Option<&WebPki>) {
    let a_workload = svid(&a.ca, &format!("spiffe://{}/frontend", a.td));
    let b_workload = svid(&b.ca, &format!("spiffe://{}/backend", b.td));

    // Before federation, neither side trusts the other.
    let err = mtls_handshake(
        Arc::clone(&a.set),
        a_workload.clone(),
        Arc::clone(&b.set),
        b_workload.clone(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("client"), "{err}");

    let a_watches_b = BundleWatcher::spawn(
        b.endpoint_for_others(b_web),
        Arc::clone(&a.set),
        fast_watch(),
    )
    .unwrap();
    let b_watches_a = BundleWatcher::spawn(
        a.endpoint_for_others(a_web),
        Arc::clone(&b.set),
        fast_watch(),
    )
    .unwrap();
    let got_b = wait_for(&a_watches_b, |_| true).await;
    let got_a = wait_for(&b_watches_a, |_| true).await;
    assert_eq!(got_b, b.own_bundle());
    assert_eq!(got_a, a.own_bundle());
    assert_eq!(a.set.get(&b.td).unwrap(), b.own_bundle());
    assert_eq!(b.set.get(&a.td).unwrap(), a.own_bundle());
    assert!(a_watches_b.status().last_error.is_none());

    // Workloads of the two trust domains now authenticate each other, in
    // both directions.
    mtls_handshake(
        Arc::clone(&a.set),
        a_workload.clone(),
        Arc::clone(&b.set),
        b_workload.clone(),
    )
    .await
    .unwrap();
    mtls_handshake(
        Arc::clone(&b.set),
        b_workload.clone(),
        Arc::clone(&a.set),
        a_workload.clone(),
    )
    .await
    .unwrap();

    // B rotates: a new root is published next to the old one (sequence 2),
    // then the old one is dropped and the endpoint SVID moves to the new
    // root (sequence 3). A learns each step through its watcher; for
    // https_spiffe the step to sequence 3 only authenticates because A
    // verifies the endpoint with the bundle it fetched (sequence 2), not
    // with the bootstrap bundle (rule F-21).
    let new_ca = DevCa::new(b.td.clone()).unwrap();
    b.set.insert(bundle_of(&[&b.ca, &new_ca], 2, Some(1)));
    let seen = wait_for(&a_watches_b, |x| x.sequence() == Some(2)).await;
    assert_eq!(seen.x509_bundle().len(), 2);

    b.endpoint_svid
        .set(svid(&new_ca, &format!("spiffe://{}/bundle-endpoint", b.td)));
    b.set.insert(bundle_of(&[&new_ca], 3, Some(1)));
    let seen = wait_for(&a_watches_b, |x| x.sequence() == Some(3)).await;
    assert_eq!(seen.x509_bundle().len(), 1);
    assert_eq!(a.set.get(&b.td).unwrap().sequence(), Some(3));

    // B's workloads with SVIDs from the new root are trusted by A; those
    // of the removed root no longer are.
    let b_rotated = svid(&new_ca, &format!("spiffe://{}/backend", b.td));
    mtls_handshake(
        Arc::clone(&a.set),
        a_workload.clone(),
        Arc::clone(&b.set),
        b_rotated,
    )
    .await
    .unwrap();
    let err = mtls_handshake(
        Arc::clone(&a.set),
        a_workload.clone(),
        Arc::clone(&b.set),
        b_workload,
    )
    .await
    .unwrap_err();
    assert!(err.contains("client"), "{err}");

    // The bundle endpoint kept polling without errors, and B's own watcher
    // still has A's bundle.
    assert!(
        a_watches_b.status().last_error.is_none(),
        "{:?}",
        a_watches_b.status()
    );
    assert_eq!(b.set.get(&a.td).unwrap(), a.own_bundle());

    a_watches_b.stop().await;
    b_watches_a.stop().await;
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_spiffe_both_ways_then_mtls_then_rotation() {
    let a = Domain::new("a.test", None).await;
    let b = Domain::new("b.test", None).await;
    federate(a, b, None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_web_both_ways_then_mtls_then_rotation() {
    // One Web PKI; A's endpoint is reached by name, B's by IP address, so
    // both kinds of RFC 6125 check are exercised.
    let pki = WebPki::new(&["localhost", "127.0.0.1"]);
    let a = Domain::new("a.test", Some((&pki, "localhost"))).await;
    let b = Domain::new("b.test", Some((&pki, "127.0.0.1"))).await;
    federate(a, b, Some(&pki), Some(&pki)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_profiles() {
    // A serves https_web, B serves https_spiffe.
    let pki = WebPki::new(&["localhost"]);
    let a = Domain::new("a.test", Some((&pki, "localhost"))).await;
    let b = Domain::new("b.test", None).await;
    federate(a, b, Some(&pki), None).await;
}
