//! The `DeltaSecrets` state machine (incremental xDS), as a pure value.
//!
//! SPIRE and Istio both answer `DeltaSecrets` with `UNIMPLEMENTED` (S25);
//! this one implements the incremental protocol of Envoy's
//! `discovery.proto`:
//!
//! - subscriptions are changed by `resource_names_subscribe` and
//!   `resource_names_unsubscribe` in any request, ACKs included; `*`
//!   subscribes to everything, and an empty first request is the legacy
//!   wildcard;
//! - every response carries a fresh nonce (mandatory here) and per-resource
//!   versions derived from the content;
//! - a name listed in `resource_names_subscribe` is always answered, even
//!   when the client should already have that version (it may have dropped
//!   it in the meantime);
//! - otherwise only resources whose content changed are sent; resources the
//!   client had that no longer exist, and explicitly subscribed names that
//!   resolve to nothing, go to `removed_resources` (how the incremental
//!   protocol says "does not exist"), so an unknown name does not end the
//!   stream: it is answered as removed and sent when it appears;
//! - `initial_resource_versions` on the first request tells what the client
//!   kept from an earlier stream: unchanged resources are not re-sent;
//! - ACKs and NACKs get no reply; a NACK is reported, and rejected content is
//!   not re-sent until it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

use crate::config::SdsConfig;
use crate::envelope::{NonceSource, SECRET_TYPE_URL, WILDCARD, content_version};
use crate::error::SdsError;
use crate::material::WorkloadSecrets;
use crate::secret::validation_form;
use crate::stream::{RequestKind, check_type_url};

/// What the delta stream did with a request or an update.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeltaOutcome {
    /// How the request was classified ([`RequestKind::Stale`] here means an
    /// ACK or NACK of an older response: its subscription changes still
    /// apply, since they are deltas). For updates, [`RequestKind::First`]
    /// is never used; see [`DeltaSecretStream::handle_update`].
    pub kind: Option<RequestKind>,
    /// Names that resolve to nothing, answered as removed, with why.
    pub unresolved: Vec<(String, SdsError)>,
    /// The response to send, if any.
    pub response: Option<DeltaDiscoveryResponse>,
}

/// One `DeltaSecrets` stream's state: the node, the subscription, what the
/// client holds (name and version), and the workload's latest secrets.
///
/// ```
/// use std::sync::Arc;
/// use spiffe_id::TrustDomain;
/// use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
/// use spiffe_sds::{DeltaSecretStream, SdsConfig, WorkloadSecrets};
/// use spiffe_workload_api::X509Bundles;
///
/// let td = TrustDomain::new("example.org")?;
/// let mut stream = DeltaSecretStream::new(Arc::new(SdsConfig::new(td.clone())), 1);
/// stream.handle_update(Arc::new(WorkloadSecrets::bundles_only(td, X509Bundles::new())))?;
///
/// // `default` does not exist for a workload without an SVID: answered as
/// // removed, and the stream goes on.
/// let request = DeltaDiscoveryRequest {
///     resource_names_subscribe: vec!["default".into()],
///     ..Default::default()
/// };
/// let outcome = stream.handle_request(&request)?;
/// let response = outcome.response.expect("an answer to an explicit subscription");
/// assert_eq!(response.removed_resources, vec!["default".to_owned()]);
/// assert!(!response.nonce.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeltaSecretStream {
    config: Arc<SdsConfig>,
    nonces: NonceSource,
    node: Option<Node>,
    started: bool,
    wildcard: bool,
    subscribed: BTreeSet<String>,
    /// What the client holds, name to version, as far as the server knows.
    known: BTreeMap<String, String>,
    /// Names subscribed explicitly and not answered yet.
    forced: BTreeSet<String>,
    last_nonce: Option<String>,
    secrets: Option<Arc<WorkloadSecrets>>,
}

impl DeltaSecretStream {
    /// A new stream; `stream_id` makes nonces unique across streams.
    pub fn new(config: Arc<SdsConfig>, stream_id: u64) -> Self {
        DeltaSecretStream {
            config,
            nonces: NonceSource::new(stream_id),
            node: None,
            started: false,
            wildcard: false,
            subscribed: BTreeSet::new(),
            known: BTreeMap::new(),
            forced: BTreeSet::new(),
            last_nonce: None,
            secrets: None,
        }
    }

    /// The node of the first request that carried one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// The explicitly subscribed names.
    pub fn subscribed_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.subscribed.iter().map(String::as_str)
    }

    /// Whether the stream subscribes to everything.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Handles one request.
    ///
    /// # Errors
    ///
    /// [`SdsError::UnsupportedTypeUrl`], [`SdsError::TooManyNames`] (also
    /// when the subscription as a whole grows past the limit), or
    /// [`SdsError::NameTooLong`]; each ends the stream. Unresolvable names
    /// are not errors here (see [`DeltaOutcome::unresolved`]).
    pub fn handle_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
    ) -> Result<DeltaOutcome, SdsError> {
        check_type_url(&request.type_url)?;
        let limits = *self.config.limits();
        let listed = request.resource_names_subscribe.len()
            + request.resource_names_unsubscribe.len()
            + request.initial_resource_versions.len();
        // Checked before anything is stored, so a huge request cannot grow
        // the state (its size is already bounded by the message limit).
        if listed > limits.max_names_per_request.saturating_mul(3) {
            return Err(SdsError::TooManyNames {
                count: listed,
                max: limits.max_names_per_request,
            });
        }
        for name in request
            .resource_names_subscribe
            .iter()
            .chain(&request.resource_names_unsubscribe)
            .chain(request.initial_resource_versions.keys())
        {
            if name.len() > limits.max_name_len {
                return Err(SdsError::NameTooLong {
                    len: name.len(),
                    max: limits.max_name_len,
                });
            }
        }

        let first = !self.started;
        let kind = if first {
            RequestKind::First
        } else if request.response_nonce.is_empty() {
            RequestKind::BeforeResponse
        } else if self.last_nonce.as_deref() != Some(request.response_nonce.as_str()) {
            RequestKind::Stale {
                nonce: request.response_nonce.clone(),
            }
        } else if let Some(detail) = &request.error_detail {
            RequestKind::Nack {
                message: detail.message.clone(),
            }
        } else {
            RequestKind::Ack
        };

        let mut subscribed = self.subscribed.clone();
        let mut wildcard = self.wildcard;
        let mut forced = self.forced.clone();
        if first && request.resource_names_subscribe.is_empty() {
            // Legacy wildcard: a first request that names nothing.
            wildcard = true;
        }
        for name in &request.resource_names_subscribe {
            if name == WILDCARD {
                wildcard = true;
            } else if !name.is_empty() {
                subscribed.insert(name.clone());
                forced.insert(name.clone());
            }
        }
        let mut dropped = Vec::new();
        for name in &request.resource_names_unsubscribe {
            if name == WILDCARD {
                wildcard = false;
            } else {
                subscribed.remove(name);
                forced.remove(name);
                dropped.push(name);
            }
        }
        if subscribed.len() > limits.max_names_per_request {
            return Err(SdsError::TooManyNames {
                count: subscribed.len(),
                max: limits.max_names_per_request,
            });
        }

        self.started = true;
        if self.node.is_none() {
            self.node.clone_from(&request.node);
        }
        self.subscribed = subscribed;
        self.wildcard = wildcard;
        self.forced = forced;
        if first {
            for (name, version) in &request.initial_resource_versions {
                self.known.insert(name.clone(), version.clone());
            }
        }
        // The client forgets what it unsubscribed from, unless the wildcard
        // still covers it.
        if !self.wildcard {
            for name in dropped {
                self.known.remove(name);
            }
        }

        let mut outcome = self.diff();
        outcome.kind = Some(kind);
        Ok(outcome)
    }

    /// Takes the workload's new secrets and returns what changed for the
    /// client, if anything.
    ///
    /// # Errors
    ///
    /// None today: unresolvable names are reported in the outcome. The
    /// `Result` keeps the signature of [`crate::SecretStream`].
    pub fn handle_update(
        &mut self,
        secrets: Arc<WorkloadSecrets>,
    ) -> Result<DeltaOutcome, SdsError> {
        self.secrets = Some(secrets);
        if !self.started {
            return Ok(DeltaOutcome {
                kind: None,
                unresolved: Vec::new(),
                response: None,
            });
        }
        Ok(self.diff())
    }

    /// Compares what the client should have with what it has.
    fn diff(&mut self) -> DeltaOutcome {
        let mut outcome = DeltaOutcome {
            kind: None,
            unresolved: Vec::new(),
            response: None,
        };
        let Some(secrets) = self.secrets.clone() else {
            // Answered when the secrets arrive.
            return outcome;
        };
        let form = validation_form(self.node.as_ref(), self.config.spiffe_validator());
        let names = self.config.names();

        let mut desired: BTreeMap<String, Option<Any>> = BTreeMap::new();
        if self.wildcard {
            for (name, secret) in secrets.wildcard_secrets(form) {
                desired.insert(name, Some(pack_any(secret)));
            }
        }
        for name in &self.subscribed {
            if desired.contains_key(name) {
                continue;
            }
            match secrets.secret_for(name, names, form) {
                Ok(secret) => {
                    desired.insert(name.clone(), Some(pack_any(secret)));
                }
                Err(e) => {
                    outcome.unresolved.push((name.clone(), e));
                    desired.insert(name.clone(), None);
                }
            }
        }

        let mut resources = Vec::new();
        let mut removed = Vec::new();
        for (name, any) in &desired {
            let forced = self.forced.contains(name);
            match any {
                Some(any) => {
                    let version = content_version([any]);
                    if forced || self.known.get(name) != Some(&version) {
                        self.known.insert(name.clone(), version.clone());
                        resources.push(Resource {
                            name: name.clone(),
                            version,
                            resource: Some(any.clone()),
                            ..Default::default()
                        });
                    }
                }
                None => {
                    if forced || self.known.remove(name).is_some() {
                        removed.push(name.clone());
                    }
                }
            }
        }
        // What the client holds but should no longer: gone from the
        // wildcard set, or never re-subscribed after a reconnect.
        let stale: Vec<String> = self
            .known
            .keys()
            .filter(|name| !desired.contains_key(*name))
            .cloned()
            .collect();
        for name in stale {
            self.known.remove(&name);
            if self.wildcard {
                removed.push(name);
            }
        }
        self.forced.clear();
        removed.sort();
        removed.dedup();

        if resources.is_empty() && removed.is_empty() {
            return outcome;
        }
        let nonce = self.nonces.next_nonce();
        self.last_nonce = Some(nonce.clone());
        let system_version_info =
            content_version(resources.iter().filter_map(|r| r.resource.as_ref()));
        outcome.response = Some(DeltaDiscoveryResponse {
            system_version_info,
            resources,
            type_url: SECRET_TYPE_URL.to_owned(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::google::rpc::Status as RpcStatus;

    use super::*;
    use crate::fixtures::Pki;

    fn subscribe(names: &[&str]) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: SECRET_TYPE_URL.to_owned(),
            resource_names_subscribe: names.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn names(response: &DeltaDiscoveryResponse) -> Vec<&str> {
        response.resources.iter().map(|r| r.name.as_str()).collect()
    }

    fn started(pki: &Pki, names: &[&str]) -> (DeltaSecretStream, DeltaDiscoveryResponse) {
        let mut stream = DeltaSecretStream::new(pki.config(), 3);
        stream.handle_update(pki.secrets()).unwrap();
        let outcome = stream.handle_request(&subscribe(names)).unwrap();
        assert_eq!(outcome.kind, Some(RequestKind::First));
        (stream, outcome.response.unwrap())
    }

    #[test]
    fn delta_subscribe_answers_with_versions_and_a_nonce() {
        let pki = Pki::new();
        let (_, response) = started(&pki, &["default", "ROOTCA"]);
        assert_eq!(names(&response), ["ROOTCA", "default"]);
        assert!(!response.nonce.is_empty());
        assert_eq!(response.type_url, SECRET_TYPE_URL);
        for r in &response.resources {
            assert!(!r.version.is_empty());
            assert_eq!(r.resource.as_ref().unwrap().type_url, SECRET_TYPE_URL);
        }
    }

    #[test]
    fn delta_ack_and_nack_get_no_reply_and_rejected_content_is_not_resent() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let ack = DeltaDiscoveryRequest {
            response_nonce: first.nonce.clone(),
            ..Default::default()
        };
        let outcome = stream.handle_request(&ack).unwrap();
        assert_eq!(outcome.kind, Some(RequestKind::Ack));
        assert!(outcome.response.is_none());
        let secrets = pki.secrets();
        let push = stream
            .handle_update(Arc::clone(&secrets))
            .unwrap()
            .response
            .unwrap();
        assert_eq!(names(&push), ["default"]);
        let nack = DeltaDiscoveryRequest {
            response_nonce: push.nonce.clone(),
            error_detail: Some(RpcStatus {
                code: 13,
                message: "bad".into(),
                details: vec![],
            }),
            ..Default::default()
        };
        let outcome = stream.handle_request(&nack).unwrap();
        assert!(matches!(outcome.kind, Some(RequestKind::Nack { .. })));
        assert!(outcome.response.is_none());
        assert!(stream.handle_update(secrets).unwrap().response.is_none());
    }

    #[test]
    fn delta_explicit_subscribe_is_answered_even_if_unchanged() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let again = DeltaDiscoveryRequest {
            response_nonce: first.nonce.clone(),
            ..subscribe(&["default"])
        };
        let outcome = stream.handle_request(&again).unwrap();
        let response = outcome.response.unwrap();
        assert_eq!(names(&response), ["default"]);
        assert_eq!(response.resources[0].version, first.resources[0].version);
        assert_ne!(response.nonce, first.nonce);
    }

    #[test]
    fn delta_unknown_names_are_removed_not_fatal() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default", "file-root:system"]);
        assert_eq!(names(&first), ["default"]);
        assert_eq!(first.removed_resources, ["file-root:system"]);
        // Not repeated on later pushes.
        let push = stream.handle_update(pki.secrets()).unwrap();
        let push = push.response.unwrap();
        assert!(push.removed_resources.is_empty());
        assert_eq!(push.resources.len(), 1);
    }

    #[test]
    fn delta_identity_removed_is_sent_as_removed() {
        let pki = Pki::new();
        let (mut stream, _) = started(&pki, &["default", "ROOTCA"]);
        let response = stream
            .handle_update(pki.secrets_with(Vec::new()))
            .unwrap()
            .response
            .unwrap();
        assert_eq!(response.removed_resources, ["default"]);
        assert!(response.resources.is_empty());
    }

    #[test]
    fn delta_unsubscribe_and_wildcard() {
        let pki = Pki::new();
        let mut stream = DeltaSecretStream::new(pki.config(), 3);
        stream.handle_update(pki.secrets()).unwrap();
        // An empty first request is the legacy wildcard.
        let all = stream
            .handle_request(&subscribe(&[]))
            .unwrap()
            .response
            .unwrap();
        assert_eq!(all.resources.len(), 4);
        assert!(stream.is_wildcard());
        let off = DeltaDiscoveryRequest {
            response_nonce: all.nonce.clone(),
            resource_names_unsubscribe: vec!["*".into()],
            ..Default::default()
        };
        assert!(stream.handle_request(&off).unwrap().response.is_none());
        assert!(!stream.is_wildcard());
        assert!(
            stream
                .handle_update(Pki::new().secrets())
                .unwrap()
                .response
                .is_none()
        );
    }

    #[test]
    fn delta_reconnect_skips_what_the_client_already_has() {
        let pki = Pki::new();
        let secrets = pki.secrets();
        let mut old = DeltaSecretStream::new(pki.config(), 1);
        old.handle_update(Arc::clone(&secrets)).unwrap();
        let first = old
            .handle_request(&subscribe(&["default", "ROOTCA"]))
            .unwrap()
            .response
            .unwrap();
        let mut stream = DeltaSecretStream::new(pki.config(), 2);
        stream.handle_update(secrets).unwrap();
        let mut request = subscribe(&["default", "ROOTCA"]);
        // The client keeps ROOTCA at the current version but lost default.
        let rootca = first.resources.iter().find(|r| r.name == "ROOTCA").unwrap();
        request
            .initial_resource_versions
            .insert("ROOTCA".into(), rootca.version.clone());
        let response = stream.handle_request(&request).unwrap().response.unwrap();
        // Explicit subscriptions are always answered (the client may have
        // dropped them): both come back.
        assert_eq!(names(&response), ["ROOTCA", "default"]);
    }

    #[test]
    fn delta_stale_nonce_still_applies_subscription_deltas() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let _push = stream
            .handle_update(pki.secrets())
            .unwrap()
            .response
            .unwrap();
        let late = DeltaDiscoveryRequest {
            response_nonce: first.nonce.clone(),
            ..subscribe(&["ROOTCA"])
        };
        let outcome = stream.handle_request(&late).unwrap();
        assert!(matches!(outcome.kind, Some(RequestKind::Stale { .. })));
        assert_eq!(names(&outcome.response.unwrap()), ["ROOTCA"]);
    }
}
