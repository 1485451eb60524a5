//! Arbitrary sequences of SDS requests and workload updates driven through
//! the pure `StreamSecrets` and `DeltaSecrets` state machines: never panic,
//! keep state bounded by the limits, and every response obeys the envelope
//! rules (S15): the Secret type URL, a non-empty version, a fresh nonce,
//! each name once and sorted, only subscribed names, and no reply to a plain
//! ACK.
//!
//! Each operation is one byte (what to do) followed by the bytes it
//! consumes: hand-built requests reach the interesting states quickly,
//! protobuf-decoded ones cover whatever the wire can carry.
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use rustls_pki_types::UnixTime;
use spiffe_bundle::X509Bundle;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_sds::envoy_types::pb::envoy::config::core::v3::Node;
use spiffe_sds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DiscoveryRequest, DiscoveryResponse,
};
use spiffe_sds::envoy_types::pb::google::rpc::Status;
use spiffe_sds::{DeltaSecretStream, Limits, SECRET_TYPE_URL, SdsConfig, SecretStream, WorkloadSecrets};
use spiffe_svid::issuer::{DevCa, SvidSpec};
use spiffe_workload_api::X509Bundles;

const NOW: u64 = 1_800_000_000;
const MAX_NAMES: usize = 8;

const NAMES: &[&str] = &[
    "default",
    "ROOTCA",
    "ALL",
    "spiffe://example.org",
    "spiffe://example.org/web",
    "spiffe://example.org/db",
    "spiffe://federated.test",
    "spiffe://jwt-only.test",
    "file-root:system",
    "*",
    "",
];

struct Fixture {
    config: Arc<SdsConfig>,
    secrets: Vec<Arc<WorkloadSecrets>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let at = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        let td = |n| TrustDomain::new(n).expect("valid name");
        let own = DevCa::new(td("example.org")).expect("CA");
        let fed = DevCa::new(td("federated.test")).expect("CA");
        let svid = |id: &str| {
            let spec = SvidSpec::new(SpiffeId::parse(id).expect("ID"), at(NOW - 60), at(NOW + 3600));
            own.issue(&spec).expect("leaf").to_x509_svid().expect("SVID")
        };
        let bundles: X509Bundles = [
            own.bundle(),
            fed.bundle(),
            X509Bundle::empty(td("jwt-only.test")),
        ]
        .into_iter()
        .collect();
        let web = svid("spiffe://example.org/web");
        let db = svid("spiffe://example.org/db");
        let web2 = svid("spiffe://example.org/web");
        let secrets = vec![
            Arc::new(WorkloadSecrets::new(td("example.org"), vec![web, db.clone()], bundles.clone())),
            Arc::new(WorkloadSecrets::new(td("example.org"), vec![web2, db], bundles.clone())),
            Arc::new(WorkloadSecrets::bundles_only(td("example.org"), bundles)),
        ];
        let mut limits = Limits::default();
        limits.max_names_per_request = MAX_NAMES;
        limits.max_name_len = 64;
        Fixture {
            config: Arc::new(SdsConfig::new(td("example.org")).with_limits(limits)),
            secrets,
        }
    })
}

/// A cursor over the fuzzer's bytes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self) -> &[u8] {
        let n = usize::from(self.byte().unwrap_or(0)).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn name(&mut self) -> String {
        match self.byte() {
            Some(b) if usize::from(b) < NAMES.len() * 20 => NAMES[usize::from(b) % NAMES.len()].to_owned(),
            _ => String::from_utf8_lossy(self.bytes()).into_owned(),
        }
    }

    fn names(&mut self) -> Vec<String> {
        let n = self.byte().unwrap_or(0) % 12;
        (0..n).map(|_| self.name()).collect()
    }
}

/// What the state machine sent last, for the envelope checks.
#[derive(Default)]
struct Sent {
    nonce: String,
    version: String,
    nonces: BTreeSet<String>,
}

fn check_sotw(response: &DiscoveryResponse, stream: &SecretStream, sent: &mut Sent) {
    assert_eq!(response.type_url, SECRET_TYPE_URL);
    assert!(!response.version_info.is_empty());
    assert!(!response.nonce.is_empty());
    assert!(sent.nonces.insert(response.nonce.clone()), "nonce reused");
    let subscribed: BTreeSet<&str> = stream.subscribed_names().collect();
    assert!(subscribed.len() <= MAX_NAMES);
    let mut previous: Option<String> = None;
    for any in &response.resources {
        assert_eq!(any.type_url, SECRET_TYPE_URL);
        let secret = Secret::decode(any.value.as_slice()).expect("our own encoding");
        assert!(previous.as_deref() < Some(secret.name.as_str()), "names sorted and unique");
        assert!(stream.is_wildcard() || subscribed.contains(secret.name.as_str()));
        previous = Some(secret.name);
    }
    sent.nonce.clone_from(&response.nonce);
    sent.version.clone_from(&response.version_info);
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let mut input = Input(data);
    let mut ids = 0u64;
    let mut sotw = SecretStream::new(Arc::clone(&fx.config), ids);
    let mut delta = DeltaSecretStream::new(Arc::clone(&fx.config), ids);
    let mut sent = Sent::default();
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 256 {
            break;
        }
        match op % 7 {
            // A hand-built state-of-the-world request.
            0 | 1 => {
                let flags = input.byte().unwrap_or(0);
                let names = input.names();
                let request = DiscoveryRequest {
                    version_info: match flags & 3 {
                        0 => String::new(),
                        1 => sent.version.clone(),
                        _ => "old".to_owned(),
                    },
                    response_nonce: match (flags >> 2) & 3 {
                        0 => String::new(),
                        1 => sent.nonce.clone(),
                        _ => "stale".to_owned(),
                    },
                    node: (flags & 16 != 0).then(|| Node {
                        id: "n".to_owned(),
                        ..Default::default()
                    }),
                    error_detail: (flags & 32 != 0).then(|| Status {
                        code: 13,
                        message: "nack".to_owned(),
                        details: Vec::new(),
                    }),
                    type_url: if flags & 64 != 0 { "x".to_owned() } else { SECRET_TYPE_URL.to_owned() },
                    resource_names: names.clone(),
                    ..Default::default()
                };
                match sotw.handle_request(&request) {
                    Ok(outcome) => {
                        if let Some(response) = &outcome.response {
                            check_sotw(response, &sotw, &mut sent);
                            // A plain ACK of it gets no reply.
                            let ack = DiscoveryRequest {
                                version_info: response.version_info.clone(),
                                response_nonce: response.nonce.clone(),
                                resource_names: names,
                                ..Default::default()
                            };
                            let again = sotw.handle_request(&ack).expect("an ACK is fine");
                            assert!(again.response.is_none(), "reply to a plain ACK");
                        }
                    }
                    Err(_) => {
                        // The stream ends; the client reconnects.
                        ids += 1;
                        sotw = SecretStream::new(Arc::clone(&fx.config), ids);
                        sent = Sent::default();
                    }
                }
            }
            // A request decoded from raw bytes.
            2 => {
                if let Ok(request) = DiscoveryRequest::decode(input.bytes()) {
                    match sotw.handle_request(&request) {
                        Ok(outcome) => {
                            if let Some(response) = &outcome.response {
                                check_sotw(response, &sotw, &mut sent);
                            }
                        }
                        Err(_) => {
                            ids += 1;
                            sotw = SecretStream::new(Arc::clone(&fx.config), ids);
                            sent = Sent::default();
                        }
                    }
                }
            }
            // The workload's secrets change.
            3 => {
                let secrets = &fx.secrets[usize::from(input.byte().unwrap_or(0)) % fx.secrets.len()];
                match sotw.handle_update(Arc::clone(secrets)) {
                    Ok(Some(response)) => check_sotw(&response, &sotw, &mut sent),
                    Ok(None) => {}
                    Err(_) => {
                        ids += 1;
                        sotw = SecretStream::new(Arc::clone(&fx.config), ids);
                        sent = Sent::default();
                    }
                }
                if let Ok(outcome) = delta.handle_update(Arc::clone(secrets)) {
                    if let Some(r) = outcome.response {
                        assert!(!r.nonce.is_empty());
                        assert_eq!(r.type_url, SECRET_TYPE_URL);
                    }
                }
            }
            // A hand-built or raw delta request.
            4 | 5 => {
                let request = if op % 7 == 4 {
                    DeltaDiscoveryRequest {
                        resource_names_subscribe: input.names(),
                        resource_names_unsubscribe: input.names(),
                        response_nonce: if input.byte().unwrap_or(0) & 1 == 0 {
                            String::new()
                        } else {
                            "1-1".to_owned()
                        },
                        ..Default::default()
                    }
                } else {
                    DeltaDiscoveryRequest::decode(input.bytes()).unwrap_or_default()
                };
                match delta.handle_request(&request) {
                    Ok(outcome) => {
                        assert!(delta.subscribed_names().count() <= MAX_NAMES);
                        if let Some(r) = outcome.response {
                            assert!(!r.nonce.is_empty());
                            assert_eq!(r.type_url, SECRET_TYPE_URL);
                            let names: BTreeSet<&str> = r.resources.iter().map(|x| x.name.as_str()).collect();
                            assert_eq!(names.len(), r.resources.len(), "a name twice");
                        }
                    }
                    Err(_) => {
                        ids += 1;
                        delta = DeltaSecretStream::new(Arc::clone(&fx.config), ids);
                    }
                }
            }
            // Reconnect.
            _ => {
                ids += 1;
                sotw = SecretStream::new(Arc::clone(&fx.config), ids);
                delta = DeltaSecretStream::new(Arc::clone(&fx.config), ids);
                sent = Sent::default();
            }
        }
    }
});
