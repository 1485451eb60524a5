//! Certificates and secrets for unit tests, minted at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::Message;
use rustls_pki_types::UnixTime;
use spiffe_bundle::X509Bundle;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{DevCa, SvidSpec};
use spiffe_workload_api::X509Bundles;

use crate::{SdsConfig, WorkloadSecrets};

pub(crate) fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub(crate) struct Pki {
    pub(crate) own: DevCa,
    pub(crate) fed: DevCa,
}

impl Pki {
    pub(crate) fn new() -> Self {
        Pki {
            own: DevCa::new(td("example.org")).unwrap(),
            fed: DevCa::new(td("federated.test")).unwrap(),
        }
    }

    pub(crate) fn svid(&self, id: &str) -> X509Svid {
        let now = UnixTime::now().as_secs();
        let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        let spec = SvidSpec::new(SpiffeId::parse(id).unwrap(), t(now - 60), t(now + 3600));
        self.own.issue(&spec).unwrap().to_x509_svid().unwrap()
    }

    /// Two SVIDs (`web` first), own and federated bundles, and an empty
    /// (JWT-only) federated bundle.
    pub(crate) fn secrets(&self) -> Arc<WorkloadSecrets> {
        self.secrets_with(vec![
            self.svid("spiffe://example.org/web"),
            self.svid("spiffe://example.org/db"),
        ])
    }

    pub(crate) fn secrets_with(&self, svids: Vec<X509Svid>) -> Arc<WorkloadSecrets> {
        let bundles: X509Bundles = [
            self.own.bundle(),
            self.fed.bundle(),
            X509Bundle::empty(td("jwt-only.test")),
        ]
        .into_iter()
        .collect();
        Arc::new(WorkloadSecrets::new(td("example.org"), svids, bundles))
    }

    pub(crate) fn config(&self) -> Arc<SdsConfig> {
        Arc::new(SdsConfig::new(td("example.org")))
    }
}

pub(crate) fn request(names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
        type_url: crate::SECRET_TYPE_URL.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn ack(names: &[&str], response: &DiscoveryResponse) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: response.version_info.clone(),
        response_nonce: response.nonce.clone(),
        ..request(names)
    }
}

pub(crate) fn nack(
    names: &[&str],
    version: &str,
    response: &DiscoveryResponse,
) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_owned(),
        response_nonce: response.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 13,
            message: "rejected".to_owned(),
            details: Vec::new(),
        }),
        ..request(names)
    }
}

pub(crate) fn secrets_of(response: &DiscoveryResponse) -> Vec<Secret> {
    response
        .resources
        .iter()
        .map(|any| {
            assert_eq!(any.type_url, crate::SECRET_TYPE_URL);
            Secret::decode(any.value.as_slice()).unwrap()
        })
        .collect()
}

pub(crate) fn names_of(response: &DiscoveryResponse) -> Vec<String> {
    secrets_of(response).into_iter().map(|s| s.name).collect()
}
