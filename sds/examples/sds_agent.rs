//! A development agent: an in-memory CA, one registration entry for the
//! current user, and the Workload API plus SDS on one Unix socket, with the
//! SVID rotated every 30 seconds. Point an Envoy at the socket with the
//! bootstrap in `docs/proxy-authors.md`.
//!
//! ```sh
//! cargo run -p spiffe-sds --example sds_agent -- /tmp/agent.sock
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_sds::SdsConfig;
use spiffe_sds::server::SdsServer;
use spiffe_svid::issuer::{DevCa, SvidSpec};
use spiffe_workload_api::server::{
    RegistrationEntry, Selector, SelectorIdentityProvider, UnixSocketListener, WorkloadApiServer,
};

fn entry(ca: &DevCa, uid: u32) -> RegistrationEntry {
    let now = UnixTime::now().as_secs();
    let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
    let id = SpiffeId::parse("spiffe://example.org/workload").unwrap();
    let svid = ca
        .issue(&SvidSpec::new(id, t(now - 60), t(now + 3600)))
        .unwrap();
    RegistrationEntry::new(
        "workload",
        [Selector::Uid(uid)],
        svid.to_x509_svid().unwrap(),
    )
}

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/spiffe-agent.sock".to_owned());
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let td = TrustDomain::new("example.org").unwrap();
    let ca = DevCa::new(td.clone()).unwrap();
    let provider = Arc::new(SelectorIdentityProvider::new(ca.bundle()));
    provider.set_entry(entry(&ca, uid));

    // Listening from here on (before anything else starts, S2).
    let listener = UnixSocketListener::bind(&path).unwrap();
    println!("Workload API and SDS on unix://{path}");

    let rotator = Arc::clone(&provider);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            rotator.set_entry(entry(&ca, uid));
            println!("rotated the SVID");
        }
    });

    SdsServer::new(Arc::clone(&provider), SdsConfig::new(td))
        .serve_with_workload_api(WorkloadApiServer::from_arc(provider), listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .unwrap();
}
