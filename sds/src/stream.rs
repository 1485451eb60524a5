//! The `StreamSecrets` state machine (state of the world, S16 to S23), as
//! a pure value: requests and workload updates go in, responses come out.
//! The server drives one per stream; tests and fuzzing drive it directly.

use std::collections::BTreeSet;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;

use crate::config::SdsConfig;
use crate::envelope::{
    NonceSource, SECRET_TYPE_URL, Subscription, WILDCARD, content_version, resolve,
};
use crate::error::SdsError;
use crate::material::WorkloadSecrets;
use crate::secret::validation_form;

/// What a request was, as the stream saw it (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// The first request of the stream. Never stale, whatever nonce and
    /// version it carries (S19).
    First,
    /// A later request sent before the stream answered anything (for
    /// example a change of names while the workload's secrets are not
    /// known yet).
    BeforeResponse,
    /// An ACK: the nonce of the last response and its version.
    Ack,
    /// A NACK (`error_detail` set): the client rejected the last response
    /// and keeps what it had (S18.1).
    Nack {
        /// The client's reason (Envoy sends the exception text).
        message: String,
    },
    /// The nonce of the last response, but another version and no error:
    /// the client did not apply the last response (S18.3).
    NotApplied {
        /// The version the client reports.
        version: String,
    },
    /// A nonce other than the last one sent: the request answers an older
    /// response and is ignored entirely, no reply and no state change
    /// (S18.2).
    Stale {
        /// The nonce it carried.
        nonce: String,
    },
}

/// What the stream did with a request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RequestOutcome {
    /// How the request was classified.
    pub kind: RequestKind,
    /// Whether it changed the set of subscribed names.
    pub subscription_changed: bool,
    /// The response to send, if any.
    pub response: Option<DiscoveryResponse>,
}

/// The last response sent on the stream.
#[derive(Clone, Debug)]
struct Sent {
    nonce: String,
    version: String,
    resources: Vec<Any>,
}

/// One `StreamSecrets` stream's state (S16): the first node, the
/// subscription, the last response sent, the last version the client
/// accepted, and the workload's latest secrets.
///
/// Rules it applies:
///
/// - the first request's node is kept for the whole stream and decides the
///   validation context's form (S17, S10);
/// - a NACK is reported and changes nothing on the client, which keeps its
///   last good secrets; the server does not resend rejected content (S21);
/// - a request carrying a nonce other than the last one sent is stale and
///   ignored, but only once a nonce was sent (S18.2, S19);
/// - a reply goes out only for the first request or a change of the set of
///   names, never for a plain ACK or NACK (S18.4);
/// - an empty name list is the wildcard (everything, S5) only while the
///   stream never named anything; afterwards it unsubscribes from all, with
///   no reply (S23); `*` is the explicit wildcard;
/// - a request that arrives before the secrets are known is answered as
///   soon as they are (S18.5);
/// - a change of secrets is pushed with a new version and nonce, unless the
///   resources for the subscribed names are byte for byte what was last
///   sent (S20, S21);
/// - responses have the `Secret` type URL, a non-empty version derived from
///   the content, a fresh nonce, each name once, sorted by name (S15).
///
/// ```
/// use std::sync::Arc;
/// use spiffe_id::TrustDomain;
/// use spiffe_sds::envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
/// use spiffe_sds::{RequestKind, SdsConfig, SecretStream, WorkloadSecrets};
/// use spiffe_workload_api::X509Bundles;
///
/// let td = TrustDomain::new("example.org")?;
/// let mut stream = SecretStream::new(Arc::new(SdsConfig::new(td.clone())), 1);
///
/// // Envoy asks for `default` before the workload's secrets are known.
/// let first = DiscoveryRequest { resource_names: vec!["default".into()], ..Default::default() };
/// let outcome = stream.handle_request(&first)?;
/// assert_eq!(outcome.kind, RequestKind::First);
/// assert!(outcome.response.is_none());
///
/// // The workload turns out to have no SVID: `default` cannot be served,
/// // and the stream ends with INVALID_ARGUMENT.
/// let err = stream.handle_update(Arc::new(WorkloadSecrets::bundles_only(td, X509Bundles::new())));
/// assert!(err.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SecretStream {
    config: Arc<SdsConfig>,
    nonces: NonceSource,
    node: Option<Node>,
    /// `None` until the first request.
    subscription: Option<Subscription>,
    /// Whether any request named a resource (S23).
    named: bool,
    last_sent: Option<Sent>,
    acked_version: Option<String>,
    secrets: Option<Arc<WorkloadSecrets>>,
}

impl SecretStream {
    /// A new stream. `stream_id` makes nonces unique across the streams of
    /// a server.
    pub fn new(config: Arc<SdsConfig>, stream_id: u64) -> Self {
        SecretStream {
            config,
            nonces: NonceSource::new(stream_id),
            node: None,
            subscription: None,
            named: false,
            last_sent: None,
            acked_version: None,
            secrets: None,
        }
    }

    /// The node of the first request that carried one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// The version of the last response the client ACKed.
    pub fn acked_version(&self) -> Option<&str> {
        self.acked_version.as_deref()
    }

    /// The version of the last response sent.
    pub fn sent_version(&self) -> Option<&str> {
        self.last_sent.as_ref().map(|s| s.version.as_str())
    }

    /// The names currently subscribed to (empty for a pure wildcard or
    /// nothing).
    pub fn subscribed_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.subscription
            .iter()
            .flat_map(|s| s.names.iter().map(String::as_str))
    }

    /// Whether the stream currently subscribes to everything.
    pub fn is_wildcard(&self) -> bool {
        self.subscription.as_ref().is_some_and(|s| s.wildcard)
    }

    /// Handles one request from the client.
    ///
    /// # Errors
    ///
    /// Each error ends the stream with [`SdsError::code`]:
    /// [`SdsError::UnsupportedTypeUrl`], [`SdsError::TooManyNames`],
    /// [`SdsError::NameTooLong`] for a request over the limits, and the
    /// errors of resolving the names when a reply is due
    /// ([`SdsError::UnknownNames`] and the others).
    pub fn handle_request(
        &mut self,
        request: &DiscoveryRequest,
    ) -> Result<RequestOutcome, SdsError> {
        check_type_url(&request.type_url)?;
        let first = self.subscription.is_none();
        if let Some(sent) = &self.last_sent
            && request.response_nonce != sent.nonce
        {
            return Ok(RequestOutcome {
                kind: RequestKind::Stale {
                    nonce: request.response_nonce.clone(),
                },
                subscription_changed: false,
                response: None,
            });
        }
        let subscription = self.parse_subscription(&request.resource_names)?;

        let kind = if first {
            RequestKind::First
        } else if let Some(detail) = &request.error_detail {
            RequestKind::Nack {
                message: detail.message.clone(),
            }
        } else {
            match &self.last_sent {
                None => RequestKind::BeforeResponse,
                Some(sent) if sent.version == request.version_info => {
                    self.acked_version = Some(sent.version.clone());
                    RequestKind::Ack
                }
                Some(_) => RequestKind::NotApplied {
                    version: request.version_info.clone(),
                },
            }
        };
        if self.node.is_none() {
            self.node.clone_from(&request.node);
        }
        self.named |= request.resource_names.iter().any(|n| !n.is_empty());
        let changed = self.subscription.as_ref() != Some(&subscription);
        let reply = (first || changed) && !subscription.is_empty();
        self.subscription = Some(subscription);

        let response = match (&self.secrets, reply) {
            (Some(secrets), true) => {
                let secrets = Arc::clone(secrets);
                self.respond(&secrets, true)?
            }
            // Without secrets the request is remembered and answered when
            // they arrive (S18.5).
            _ => None,
        };
        Ok(RequestOutcome {
            kind,
            subscription_changed: changed && !first,
            response,
        })
    }

    /// Takes the workload's new secrets, and returns the push for the
    /// subscribed names if their content changed (S20), or the pending
    /// answer to a request that arrived before any secrets (S18.5).
    ///
    /// # Errors
    ///
    /// As resolving the subscribed names: an SVID the workload lost, for
    /// example, ends the stream with [`SdsError::UnknownNames`] (Envoy keeps
    /// the old certificate until it expires).
    pub fn handle_update(
        &mut self,
        secrets: Arc<WorkloadSecrets>,
    ) -> Result<Option<DiscoveryResponse>, SdsError> {
        self.secrets = Some(Arc::clone(&secrets));
        match &self.subscription {
            Some(s) if !s.is_empty() => self.respond(&secrets, false),
            _ => Ok(None),
        }
    }

    /// Builds the response for the current subscription; `None` when it is
    /// an unrequested push of what was last sent.
    fn respond(
        &mut self,
        secrets: &WorkloadSecrets,
        requested: bool,
    ) -> Result<Option<DiscoveryResponse>, SdsError> {
        let Some(subscription) = &self.subscription else {
            return Ok(None);
        };
        let form = validation_form(self.node.as_ref(), self.config.spiffe_validator());
        let resolved = resolve(subscription, secrets, self.config.names(), form)?;
        let resources: Vec<Any> = resolved.into_iter().map(|(_, any)| any).collect();
        if !requested
            && self
                .last_sent
                .as_ref()
                .is_some_and(|s| s.resources == resources)
        {
            return Ok(None);
        }
        let version = content_version(&resources);
        let nonce = self.nonces.next_nonce();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: resources.clone(),
            type_url: SECRET_TYPE_URL.to_owned(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        self.last_sent = Some(Sent {
            nonce,
            version,
            resources,
        });
        Ok(Some(response))
    }

    fn parse_subscription(&self, requested: &[String]) -> Result<Subscription, SdsError> {
        let limits = self.config.limits();
        let mut subscription = Subscription::default();
        for name in requested {
            if name.is_empty() {
                continue;
            }
            if name.len() > limits.max_name_len {
                return Err(SdsError::NameTooLong {
                    len: name.len(),
                    max: limits.max_name_len,
                });
            }
            if name == WILDCARD {
                subscription.wildcard = true;
            } else {
                subscription.names.insert(name.clone());
                if subscription.names.len() > limits.max_names_per_request {
                    return Err(SdsError::TooManyNames {
                        count: count_distinct(requested),
                        max: limits.max_names_per_request,
                    });
                }
            }
        }
        // No name at all: the legacy wildcard, but only on a stream that
        // never named anything; later it means "unsubscribe from all" (S23).
        if subscription.is_empty() && !self.named {
            subscription.wildcard = true;
        }
        Ok(subscription)
    }
}

fn count_distinct(names: &[String]) -> usize {
    names
        .iter()
        .filter(|n| !n.is_empty() && *n != WILDCARD)
        .collect::<BTreeSet<_>>()
        .len()
}

/// An empty type URL is accepted: the method already says what is asked.
pub(crate) fn check_type_url(type_url: &str) -> Result<(), SdsError> {
    if type_url.is_empty() || type_url == SECRET_TYPE_URL {
        Ok(())
    } else {
        Err(SdsError::UnsupportedTypeUrl {
            type_url: type_url.chars().take(256).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{Pki, ack, nack, names_of, request, secrets_of};

    fn started(pki: &Pki, names: &[&str]) -> (SecretStream, DiscoveryResponse) {
        let mut stream = SecretStream::new(pki.config(), 7);
        stream.handle_update(pki.secrets()).unwrap();
        let outcome = stream.handle_request(&request(names)).unwrap();
        assert_eq!(outcome.kind, RequestKind::First);
        (stream, outcome.response.unwrap())
    }

    #[test]
    fn s15_envelope_type_url_version_nonce_and_sorted_names() {
        let pki = Pki::new();
        let (_, response) = started(&pki, &["ROOTCA", "default", "spiffe://example.org/db"]);
        assert_eq!(response.type_url, SECRET_TYPE_URL);
        assert!(!response.version_info.is_empty());
        assert!(!response.nonce.is_empty());
        assert_eq!(
            names_of(&response),
            ["ROOTCA", "default", "spiffe://example.org/db"]
        );
    }

    #[test]
    fn s15_duplicate_requested_names_appear_once() {
        let pki = Pki::new();
        let (_, response) = started(&pki, &["default", "default", ""]);
        assert_eq!(names_of(&response), ["default"]);
    }

    #[test]
    fn s18_4_ack_gets_no_reply_and_is_recorded() {
        let pki = Pki::new();
        let (mut stream, response) = started(&pki, &["default"]);
        let outcome = stream
            .handle_request(&ack(&["default"], &response))
            .unwrap();
        assert_eq!(outcome.kind, RequestKind::Ack);
        assert!(outcome.response.is_none());
        assert_eq!(stream.acked_version(), Some(response.version_info.as_str()));
    }

    #[test]
    fn s18_1_nack_gets_no_reply_and_no_resend_s21() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        stream.handle_request(&ack(&["default"], &first)).unwrap();
        // A rotation is pushed, the client rejects it.
        let secrets = pki.secrets();
        let push = stream.handle_update(Arc::clone(&secrets)).unwrap().unwrap();
        assert_ne!(push.version_info, first.version_info);
        let outcome = stream
            .handle_request(&nack(&["default"], &first.version_info, &push))
            .unwrap();
        assert!(matches!(outcome.kind, RequestKind::Nack { .. }));
        assert!(outcome.response.is_none());
        // The last good version is still the ACKed one.
        assert_eq!(stream.acked_version(), Some(first.version_info.as_str()));
        // The same content again is not re-sent: no NACK loop.
        assert!(stream.handle_update(secrets).unwrap().is_none());
        // New content is.
        assert!(stream.handle_update(pki.secrets()).unwrap().is_some());
    }

    #[test]
    fn s18_2_stale_nonce_is_ignored_entirely() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let push = stream.handle_update(pki.secrets()).unwrap().unwrap();
        // An ACK of the first response that crossed the push: stale, even
        // though it changes the names.
        let stale = ack(&["default", "ROOTCA"], &first);
        let outcome = stream.handle_request(&stale).unwrap();
        assert_eq!(
            outcome.kind,
            RequestKind::Stale {
                nonce: first.nonce.clone()
            }
        );
        assert!(outcome.response.is_none());
        assert_eq!(stream.subscribed_names().collect::<Vec<_>>(), ["default"]);
        // With the current nonce, the change applies.
        let outcome = stream
            .handle_request(&ack(&["default", "ROOTCA"], &push))
            .unwrap();
        assert!(outcome.subscription_changed);
        assert_eq!(names_of(&outcome.response.unwrap()), ["ROOTCA", "default"]);
    }

    #[test]
    fn s19_first_request_is_never_stale() {
        let pki = Pki::new();
        let mut stream = SecretStream::new(pki.config(), 1);
        stream.handle_update(pki.secrets()).unwrap();
        // A reconnecting old Envoy: old version and old nonce.
        let mut first = request(&["default"]);
        first.version_info = "old".into();
        first.response_nonce = "from-another-stream".into();
        let outcome = stream.handle_request(&first).unwrap();
        assert_eq!(outcome.kind, RequestKind::First);
        assert_eq!(names_of(&outcome.response.unwrap()), ["default"]);
    }

    #[test]
    fn s18_3_matching_nonce_other_version_is_reported_not_stale() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let mut req = ack(&["default"], &first);
        req.version_info = String::new();
        let outcome = stream.handle_request(&req).unwrap();
        assert_eq!(
            outcome.kind,
            RequestKind::NotApplied {
                version: String::new()
            }
        );
        assert!(outcome.response.is_none());
    }

    #[test]
    fn s18_4_name_change_mid_stream_is_answered_even_with_a_nack() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["default"]);
        let outcome = stream
            .handle_request(&nack(&["default", "ALL"], "", &first))
            .unwrap();
        assert!(matches!(outcome.kind, RequestKind::Nack { .. }));
        assert!(outcome.subscription_changed);
        assert_eq!(names_of(&outcome.response.unwrap()), ["ALL", "default"]);
    }

    #[test]
    fn s18_5_request_before_secrets_is_answered_when_they_arrive() {
        let pki = Pki::new();
        let mut stream = SecretStream::new(pki.config(), 1);
        let outcome = stream.handle_request(&request(&["default"])).unwrap();
        assert!(outcome.response.is_none());
        // A change of names before any answer.
        let outcome = stream.handle_request(&request(&["ROOTCA"])).unwrap();
        assert_eq!(outcome.kind, RequestKind::BeforeResponse);
        assert!(outcome.response.is_none());
        let response = stream.handle_update(pki.secrets()).unwrap().unwrap();
        assert_eq!(names_of(&response), ["ROOTCA"]);
    }

    #[test]
    fn s20_push_on_change_with_new_version_and_nonce_equal_content_not_resent() {
        let pki = Pki::new();
        let (mut stream, first) = started(&pki, &["ROOTCA"]);
        // New SVIDs, same bundles: ROOTCA's content is unchanged.
        assert!(stream.handle_update(pki.secrets()).unwrap().is_none());
        // A new own bundle changes it.
        let other = Pki::new();
        let push = stream.handle_update(other.secrets()).unwrap().unwrap();
        assert_ne!(push.version_info, first.version_info);
        assert_ne!(push.nonce, first.nonce);
        assert_eq!(names_of(&push), ["ROOTCA"]);
    }

    #[test]
    fn s23_empty_names_are_wildcard_first_then_unsubscribe() {
        let pki = Pki::new();
        let (mut stream, all) = started(&pki, &[]);
        assert!(stream.is_wildcard());
        assert_eq!(
            names_of(&all),
            [
                "spiffe://example.org",
                "spiffe://example.org/db",
                "spiffe://example.org/web",
                "spiffe://federated.test",
            ]
        );
        // Naming something, then nothing: unsubscribe, no reply.
        let named = stream
            .handle_request(&ack(&["default"], &all))
            .unwrap()
            .response
            .unwrap();
        let outcome = stream.handle_request(&ack(&[], &named)).unwrap();
        assert!(outcome.subscription_changed);
        assert!(outcome.response.is_none());
        assert!(!stream.is_wildcard());
        // Nothing is pushed to an unsubscribed stream.
        assert!(stream.handle_update(pki.secrets()).unwrap().is_none());
        // Explicit `*` is the wildcard at any time.
        let outcome = stream.handle_request(&ack(&["*"], &named)).unwrap();
        assert_eq!(names_of(&outcome.response.unwrap()).len(), 4);
    }

    #[test]
    fn s7_unknown_names_fail_with_sorted_list() {
        let pki = Pki::new();
        let mut stream = SecretStream::new(pki.config(), 1);
        stream.handle_update(pki.secrets()).unwrap();
        let err = stream
            .handle_request(&request(&[
                "file-root:system",
                "default",
                "spiffe://example.org/nobody",
                "spiffe://unknown.test",
            ]))
            .unwrap_err();
        assert_eq!(
            err,
            SdsError::UnknownNames {
                names: vec![
                    "file-root:system".into(),
                    "spiffe://example.org/nobody".into(),
                    "spiffe://unknown.test".into(),
                ]
            }
        );
        assert_eq!(err.code(), crate::ErrorCode::InvalidArgument);
        assert!(err.to_string().starts_with(
            "workload is not authorized for the requested identities [\"file-root:system\""
        ));
    }

    #[test]
    fn identity_removed_mid_stream_ends_the_stream() {
        let pki = Pki::new();
        let (mut stream, _) = started(&pki, &["default", "ROOTCA"]);
        let err = stream
            .handle_update(pki.secrets_with(Vec::new()))
            .unwrap_err();
        assert!(matches!(err, SdsError::UnknownNames { names } if names == ["default"]));
    }

    #[test]
    fn no_identity_still_serves_bundle_names() {
        let pki = Pki::new();
        let mut stream = SecretStream::new(pki.config(), 1);
        stream.handle_update(pki.secrets_with(Vec::new())).unwrap();
        let outcome = stream.handle_request(&request(&["ROOTCA"])).unwrap();
        assert_eq!(names_of(&outcome.response.unwrap()), ["ROOTCA"]);
    }

    #[test]
    fn s17_first_node_is_kept_for_the_validator_choice() {
        use crate::fixtures::td;
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
        use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
        let pki = Pki::new();
        let mut stream = SecretStream::new(pki.config(), 1);
        stream.handle_update(pki.secrets()).unwrap();
        let mut first = request(&["ROOTCA"]);
        first.node = Some(Node {
            id: "n1".into(),
            metadata: Some(Struct {
                fields: [(
                    crate::DISABLE_SPIFFE_VALIDATION_KEY.to_owned(),
                    Value {
                        kind: Some(Kind::BoolValue(true)),
                    },
                )]
                .into_iter()
                .collect(),
            }),
            ..Default::default()
        });
        let response = stream.handle_request(&first).unwrap().response.unwrap();
        // Later requests carry no node (set_node_on_first_message_only).
        let later = ack(&["ROOTCA", "spiffe://example.org"], &response);
        let response = stream.handle_request(&later).unwrap().response.unwrap();
        for secret in secrets_of(&response) {
            match secret.r#type {
                Some(Type::ValidationContext(v)) => {
                    assert!(v.trusted_ca.is_some(), "{}", secret.name);
                    assert!(v.custom_validator_config.is_none());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(stream.node().unwrap().id, "n1");
        let _ = td("x.test");
    }

    #[test]
    fn limits_and_type_url_end_the_stream() {
        let pki = Pki::new();
        let limits = crate::Limits {
            max_names_per_request: 2,
            max_name_len: 30,
            ..Default::default()
        };
        let config =
            Arc::new(SdsConfig::new(crate::fixtures::td("example.org")).with_limits(limits));
        let mut stream = SecretStream::new(Arc::clone(&config), 1);
        assert!(matches!(
            stream.handle_request(&request(&["a", "b", "c"])),
            Err(SdsError::TooManyNames { count: 3, max: 2 })
        ));
        let mut stream = SecretStream::new(Arc::clone(&config), 1);
        assert!(matches!(
            stream.handle_request(&request(&[&"x".repeat(31)])),
            Err(SdsError::NameTooLong { len: 31, max: 30 })
        ));
        let mut stream = SecretStream::new(config, 1);
        let mut req = request(&["default"]);
        req.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster".into();
        assert!(matches!(
            stream.handle_request(&req),
            Err(SdsError::UnsupportedTypeUrl { .. })
        ));
        let _ = pki;
    }
}
