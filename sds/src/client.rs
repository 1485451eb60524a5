//! An SDS client (feature `client`) that behaves like Envoy (C5): for proxy
//! authors who are not Envoy, and for tests.
//!
//! - The first request of each stream carries the node, the `Secret` type
//!   URL and the names; later requests carry no node (Envoy's
//!   `set_node_on_first_message_only`, as Istio configures it).
//! - Every response is checked: type URLs, each secret named as requested
//!   and at most once, certificates that parse into an X509-SVID whose key
//!   matches, validation contexts Envoy would accept (a SPIFFE validator
//!   with unique, non-empty trust domains, or a non-empty `trusted_ca`).
//!   An accepted response is ACKed (its version and nonce) and merged into
//!   the current secrets; a rejected one is NACKed (the last accepted
//!   version, the nonce, `error_detail` with code 13 and the reason) and
//!   changes nothing.
//! - A stream that fails or ends is reopened with a jittered exponential
//!   backoff (500 ms up to 30 s by default, reset by any response); the new
//!   stream starts with an empty nonce and the last accepted version.
//! - A named secret not received within 15 s of being asked for (Envoy's
//!   initial fetch timeout; [`ClientConfig::with_missing_after`]) is listed
//!   in [`ClientState::missing`], whether the server left it out or could
//!   not be reached; it leaves the list when it arrives or is no longer
//!   named.
//! - The current secrets are a [`watch`] value: [`SdsClient::watch`].
//!
//! ```no_run
//! use spiffe_sds::client::{ClientConfig, SdsClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new("my-proxy", ["default", "ROOTCA"]);
//! let client = SdsClient::connect_unix("/run/spire/agent.sock", config)?;
//! let mut updates = client.watch();
//! let state = updates.wait_for(|s| s.has_all(["default", "ROOTCA"])).await?.clone();
//! println!("version {:?}: {} secrets", state.version, state.secrets.len());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::config::core::v3::{DataSource, Node, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, SpiffeCertValidatorConfig, secret,
};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::{Message, Name};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use spiffe_bundle::X509Bundle;
use spiffe_id::TrustDomain;
use spiffe_svid::X509Svid;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::envelope::SECRET_TYPE_URL;
use crate::secret::SPIFFE_VALIDATOR_NAME;

/// Why the client could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Not called inside a Tokio runtime (the client runs as a task).
    #[error("the SDS client must be started inside a Tokio runtime")]
    NoRuntime,
    /// The endpoint could not be set up.
    #[error("invalid SDS endpoint: {reason}")]
    Endpoint {
        /// Why.
        reason: String,
    },
}

/// What a client asks for and how it retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    node: Node,
    names: Vec<String>,
    initial_backoff: Duration,
    max_backoff: Duration,
    missing_after: Duration,
}

/// How long a named secret may take to arrive before the client lists it
/// as missing: 15 s, Envoy's default initial fetch timeout.
pub const DEFAULT_MISSING_AFTER: Duration = Duration::from_secs(15);

impl ClientConfig {
    /// A client whose node ID is `node_id`, subscribing to `names` (none:
    /// everything the server has, S5).
    pub fn new<S: Into<String>>(
        node_id: impl Into<String>,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        ClientConfig {
            node: Node {
                id: node_id.into(),
                user_agent_name: env!("CARGO_PKG_NAME").to_owned(),
                ..Default::default()
            },
            names: names.into_iter().map(Into::into).collect(),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            missing_after: DEFAULT_MISSING_AFTER,
        }
    }

    /// Sends this node instead (for example with metadata such as
    /// `disable_spiffe_cert_validation`, or a build version).
    #[must_use]
    pub fn with_node(mut self, node: Node) -> Self {
        self.node = node;
        self
    }

    /// The reconnect backoff: first wait and cap (defaults 500 ms and 30 s,
    /// Envoy's).
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// How long a named secret may take to arrive, from when it is asked
    /// for, before it is listed in [`ClientState::missing`] (default
    /// [`DEFAULT_MISSING_AFTER`]; zero turns the timeout off, as Envoy's
    /// `initial_fetch_timeout: 0s`).
    #[must_use]
    pub fn with_missing_after(mut self, after: Duration) -> Self {
        self.missing_after = after;
        self
    }

    /// The node sent on the first request of each stream.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The names subscribed to.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// A secret as the client accepted it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ReceivedSecret {
    /// A TLS certificate: a checked X509-SVID with its key.
    Certificate(X509Svid),
    /// A validation context with Envoy's SPIFFE validator: one bundle per
    /// trust domain.
    SpiffeBundles(Vec<X509Bundle>),
    /// A validation context with a flat `trusted_ca`.
    TrustedCa(Vec<CertificateDer<'static>>),
}

/// The client's view: the accepted secrets and how the stream is doing.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientState {
    /// Accepted secrets by name.
    pub secrets: BTreeMap<String, ReceivedSecret>,
    /// The version of the last accepted response.
    pub version: Option<String>,
    /// Whether a stream is open and has received a response.
    pub connected: bool,
    /// Responses accepted and ACKed so far.
    pub acks: u64,
    /// Responses rejected and NACKed so far.
    pub nacks: u64,
    /// Why the last rejected response was rejected.
    pub last_rejection: Option<String>,
    /// Why the last stream ended, if one did.
    pub last_stream_error: Option<String>,
    /// Streams opened so far (the first, then one per reconnect).
    pub streams_opened: u64,
    /// Names asked for that have not arrived within the missing-resource
    /// timeout ([`ClientConfig::with_missing_after`]). A name leaves this
    /// set when its secret arrives or when it is no longer asked for.
    pub missing: BTreeSet<String>,
}

impl ClientState {
    /// Whether every one of `names` has been received.
    pub fn has_all<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        names.into_iter().all(|n| self.secrets.contains_key(n))
    }

    /// The certificate named `name`, if received.
    pub fn certificate(&self, name: &str) -> Option<&X509Svid> {
        match self.secrets.get(name)? {
            ReceivedSecret::Certificate(svid) => Some(svid),
            _ => None,
        }
    }
}

/// A running SDS client; dropping it stops it.
#[derive(Debug)]
pub struct SdsClient {
    state: watch::Receiver<Arc<ClientState>>,
    names: watch::Sender<Vec<String>>,
    task: JoinHandle<()>,
}

impl Drop for SdsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SdsClient {
    /// Starts a client of the SDS server on the Unix socket at `path`. It
    /// connects in the background and keeps reconnecting; watch
    /// [`SdsClient::watch`] for the secrets.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoRuntime`] outside a Tokio runtime.
    pub fn connect_unix(path: impl AsRef<Path>, config: ClientConfig) -> Result<Self, ClientError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::NoRuntime);
        }
        let path = path.as_ref().to_owned();
        // The authority is not used on a Unix socket.
        let endpoint = Endpoint::from_static("http://localhost");
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(
            move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map(hyper_util::rt::TokioIo::new)
                }
            },
        ));
        Self::with_channel(channel, config)
    }

    /// Starts a client on a tonic channel of your own.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoRuntime`] outside a Tokio runtime.
    pub fn with_channel(channel: Channel, config: ClientConfig) -> Result<Self, ClientError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::NoRuntime);
        }
        let (state_tx, state) = watch::channel(Arc::new(ClientState::default()));
        let state_tx = Arc::new(state_tx);
        let (names, names_rx) = watch::channel(config.names.clone());
        // It ends when `names` is dropped with the client.
        tokio::spawn(follow_names(
            config.missing_after,
            Arc::clone(&state_tx),
            names.subscribe(),
        ));
        let task = tokio::spawn(run(channel, config, state_tx, names_rx));
        Ok(SdsClient { state, names, task })
    }

    /// The client's state, updated after each response and each stream
    /// change.
    pub fn watch(&self) -> watch::Receiver<Arc<ClientState>> {
        self.state.clone()
    }

    /// The current state.
    pub fn current(&self) -> Arc<ClientState> {
        Arc::clone(&self.state.borrow())
    }

    /// Subscribes to other names on the open stream (and on later ones).
    /// Secrets no longer named leave the state promptly, connected or not
    /// (the client's task drops them; this call takes no lock on the state,
    /// so it is safe while holding a borrow of [`SdsClient::watch`]).
    pub fn set_names<S: Into<String>>(&self, names: impl IntoIterator<Item = S>) {
        self.names
            .send_replace(names.into_iter().map(Into::into).collect());
    }
}

/// Drops the secrets, and the missing entries, of names not in `names`. A
/// wildcard keeps every secret and names nothing that could be missing.
fn forget_unnamed(state_tx: &watch::Sender<Arc<ClientState>>, names: &[String]) {
    if is_wildcard(names) {
        state_tx.send_if_modified(|s| {
            if s.missing.is_empty() {
                return false;
            }
            Arc::make_mut(s).missing.clear();
            true
        });
        return;
    }
    state_tx.send_if_modified(|s| {
        let named = |name: &String| names.contains(name);
        if s.secrets.keys().all(named) && s.missing.iter().all(named) {
            return false;
        }
        let s = Arc::make_mut(s);
        s.secrets.retain(|name, _| named(name));
        s.missing.retain(named);
        true
    });
}

/// Follows the names asked for, connected or not: drops the secrets of
/// names no longer asked for, and lists in [`ClientState::missing`] the
/// names that have been asked for and not held for `after` (zero: never, as
/// Envoy's `initial_fetch_timeout` of 0). A name is timed from when this
/// task first sees it pending (named, not received, not yet missing): from
/// the request, whether or not the server can be reached, and again from
/// the moment its secret is dropped. A name removed and asked for again
/// before the task runs keeps its first time.
async fn follow_names(
    after: Duration,
    state_tx: Arc<watch::Sender<Arc<ClientState>>>,
    mut names_rx: watch::Receiver<Vec<String>>,
) {
    let mut state_rx = state_tx.subscribe();
    // Pending names and when each was first seen pending.
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let names = names_rx.borrow_and_update().clone();
        forget_unnamed(&state_tx, &names);
        let state = Arc::clone(&state_rx.borrow_and_update());
        let is_pending = |name: &String| {
            !name.is_empty() && !state.secrets.contains_key(name) && !state.missing.contains(name)
        };
        let now = Instant::now();
        if is_wildcard(&names) {
            pending.clear();
        } else {
            pending.retain(|name, _| names.contains(name) && is_pending(name));
            for name in names.iter().filter(|name| is_pending(name)) {
                pending.entry(name.clone()).or_insert(now);
            }
        }
        // A deadline past the end of time is no deadline.
        let deadline = pending
            .values()
            .filter_map(|since| since.checked_add(after))
            .min()
            .filter(|_| !after.is_zero());
        let due = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = names_rx.changed() => {
                if changed.is_err() {
                    // The client was dropped.
                    return;
                }
            }
            changed = state_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = due => {
                let now = Instant::now();
                let expired: Vec<&String> = pending
                    .iter()
                    .filter(|(_, since)| since.checked_add(after).is_some_and(|at| at <= now))
                    .map(|(name, _)| name)
                    .collect();
                state_tx.send_if_modified(|s| {
                    // Still named now: `set_names` may have run since.
                    let named = names_rx.borrow();
                    let wildcard = is_wildcard(&named);
                    let absent: Vec<String> = expired
                        .into_iter()
                        .filter(|name| {
                            !wildcard
                                && named.contains(*name)
                                && !s.secrets.contains_key(*name)
                                && !s.missing.contains(*name)
                        })
                        .cloned()
                        .collect();
                    if absent.is_empty() {
                        return false;
                    }
                    Arc::make_mut(s).missing.extend(absent);
                    true
                });
            }
        }
    }
}

async fn run(
    channel: Channel,
    config: ClientConfig,
    state_tx: Arc<watch::Sender<Arc<ClientState>>>,
    mut names_rx: watch::Receiver<Vec<String>>,
) {
    let mut client = SecretDiscoveryServiceClient::new(channel);
    let mut backoff = Backoff::new(config.initial_backoff, config.max_backoff);
    loop {
        let mut answered = false;
        let received = one_stream(
            &mut client,
            &config,
            &state_tx,
            &mut names_rx,
            &mut answered,
        )
        .await;
        if answered {
            // The server was reachable and talking: start over from the
            // shortest wait.
            backoff.reset();
        }
        let reason = match received {
            Ok(()) => "the server ended the stream".to_owned(),
            Err(status) => format!("{}: {}", status.code(), status.message()),
        };
        state_tx.send_modify(|s| {
            let s = Arc::make_mut(s);
            s.connected = false;
            s.last_stream_error = Some(reason);
        });
        if state_tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Runs one stream until it ends. Resets nothing on failure: the caller
/// backs off.
async fn one_stream(
    client: &mut SecretDiscoveryServiceClient<Channel>,
    config: &ClientConfig,
    state_tx: &watch::Sender<Arc<ClientState>>,
    names_rx: &mut watch::Receiver<Vec<String>>,
    answered: &mut bool,
) -> Result<(), tonic::Status> {
    let mut names = names_rx.borrow_and_update().clone();
    let (req_tx, req_rx) = mpsc::channel(4);
    let last_version = state_tx.borrow().version.clone().unwrap_or_default();
    let first = DiscoveryRequest {
        version_info: last_version,
        node: Some(config.node.clone()),
        resource_names: names.clone(),
        type_url: SECRET_TYPE_URL.to_owned(),
        ..Default::default()
    };
    // The channel was just created with room for four: this cannot fail.
    let _ = req_tx.try_send(first);
    state_tx.send_modify(|s| Arc::make_mut(s).streams_opened += 1);
    let mut inbound = client
        .stream_secrets(ReceiverStream::new(req_rx))
        .await?
        .into_inner();
    let mut last_nonce = String::new();
    loop {
        let response = tokio::select! {
            message = inbound.message() => match message? {
                Some(response) => response,
                None => return Ok(()),
            },
            changed = names_rx.changed() => {
                if changed.is_err() {
                    // The client handle is gone.
                    return Ok(());
                }
                names = names_rx.borrow_and_update().clone();
                // Dropping the secrets of names no longer asked for is
                // `follow_names`'s job, connected or not.
                let version = state_tx.borrow().version.clone().unwrap_or_default();
                let request = DiscoveryRequest {
                    version_info: version,
                    resource_names: names.clone(),
                    type_url: SECRET_TYPE_URL.to_owned(),
                    response_nonce: last_nonce.clone(),
                    ..Default::default()
                };
                if req_tx.send(request).await.is_err() {
                    return Ok(());
                }
                continue;
            }
        };
        *answered = true;
        last_nonce.clone_from(&response.nonce);
        let request = match check_response(&response, &names) {
            Ok(mut accepted) => {
                state_tx.send_modify(|s| {
                    // Names dropped by `set_names` while this response was
                    // on its way are not taken back.
                    let named = names_rx.borrow();
                    if !is_wildcard(&named) {
                        accepted.retain(|name, _| named.contains(name));
                    }
                    let s = Arc::make_mut(s);
                    for name in accepted.keys() {
                        s.missing.remove(name);
                    }
                    s.secrets.extend(accepted);
                    s.version = Some(response.version_info.clone());
                    s.connected = true;
                    s.acks += 1;
                });
                DiscoveryRequest {
                    version_info: response.version_info.clone(),
                    resource_names: names.clone(),
                    type_url: SECRET_TYPE_URL.to_owned(),
                    response_nonce: response.nonce.clone(),
                    ..Default::default()
                }
            }
            Err(reason) => {
                let version = state_tx.borrow().version.clone().unwrap_or_default();
                state_tx.send_modify(|s| {
                    let s = Arc::make_mut(s);
                    s.connected = true;
                    s.nacks += 1;
                    s.last_rejection = Some(reason.clone());
                });
                DiscoveryRequest {
                    version_info: version,
                    resource_names: names.clone(),
                    type_url: SECRET_TYPE_URL.to_owned(),
                    response_nonce: response.nonce.clone(),
                    // Code 13 (INTERNAL), as Envoy NACKs.
                    error_detail: Some(RpcStatus {
                        code: 13,
                        message: reason,
                        details: Vec::new(),
                    }),
                    ..Default::default()
                }
            }
        };
        if req_tx.send(request).await.is_err() {
            return Ok(());
        }
    }
}

/// Whether `names` asks for everything the server has (S5): no names, only
/// empty ones, or `*`.
fn is_wildcard(names: &[String]) -> bool {
    names.iter().all(String::is_empty) || names.iter().any(|n| n == "*")
}

/// Checks a whole response as Envoy would; any problem rejects all of it.
fn check_response(
    response: &DiscoveryResponse,
    names: &[String],
) -> Result<BTreeMap<String, ReceivedSecret>, String> {
    if !response.type_url.is_empty() && response.type_url != SECRET_TYPE_URL {
        return Err(format!(
            "unexpected response type URL {:?}",
            response.type_url
        ));
    }
    if response.version_info.is_empty() {
        return Err("response without a version".to_owned());
    }
    let wildcard = is_wildcard(names);
    let mut accepted = BTreeMap::new();
    for any in &response.resources {
        if any.type_url != SECRET_TYPE_URL {
            return Err(format!("unexpected resource type URL {:?}", any.type_url));
        }
        let secret = Secret::decode(any.value.as_slice())
            .map_err(|e| format!("a resource does not decode as a Secret: {e}"))?;
        if !wildcard && !names.contains(&secret.name) {
            return Err(format!("unexpected SDS secret {:?}", secret.name));
        }
        if accepted.contains_key(&secret.name) {
            return Err(format!("duplicate SDS secret {:?}", secret.name));
        }
        let checked =
            check_secret(&secret).map_err(|e| format!("secret {:?}: {e}", secret.name))?;
        accepted.insert(secret.name, checked);
    }
    Ok(accepted)
}

fn check_secret(secret: &Secret) -> Result<ReceivedSecret, String> {
    match &secret.r#type {
        Some(secret::Type::TlsCertificate(tls)) => {
            let chain = inline_bytes(tls.certificate_chain.as_ref(), "certificate_chain")?;
            let key = inline_bytes(tls.private_key.as_ref(), "private_key")?;
            X509Svid::from_pem(chain, key)
                .map(ReceivedSecret::Certificate)
                .map_err(|e| format!("the certificate is not a usable X509-SVID: {e}"))
        }
        Some(secret::Type::ValidationContext(context)) => check_validation_context(context),
        Some(_) => Err("neither a TLS certificate nor a validation context".to_owned()),
        None => Err("no secret type".to_owned()),
    }
}

fn check_validation_context(
    context: &CertificateValidationContext,
) -> Result<ReceivedSecret, String> {
    if let Some(custom) = &context.custom_validator_config {
        if custom.name != SPIFFE_VALIDATOR_NAME {
            return Err(format!("unknown certificate validator {:?}", custom.name));
        }
        let any = custom
            .typed_config
            .as_ref()
            .ok_or("the SPIFFE validator has no configuration")?;
        if any.type_url != SpiffeCertValidatorConfig::type_url() {
            return Err(format!(
                "unexpected validator config type {:?}",
                any.type_url
            ));
        }
        let config = SpiffeCertValidatorConfig::decode(any.value.as_slice())
            .map_err(|e| format!("the SPIFFE validator config does not decode: {e}"))?;
        if config.trust_domains.is_empty() {
            return Err("the SPIFFE validator lists no trust domain".to_owned());
        }
        let mut bundles: Vec<X509Bundle> = Vec::new();
        for entry in &config.trust_domains {
            let td = TrustDomain::new(&entry.name)
                .map_err(|e| format!("trust domain {:?}: {e}", entry.name))?;
            if bundles.iter().any(|b| *b.trust_domain() == td) {
                return Err(format!(
                    "multiple trust bundles are given for one trust domain for {td}"
                ));
            }
            let pem = inline_bytes(entry.trust_bundle.as_ref(), "trust_bundle")?;
            let bundle = X509Bundle::parse_pem(td.clone(), pem)
                .map_err(|e| format!("trust bundle of {td}: {e}"))?;
            if bundle.is_empty() {
                return Err(format!("failed to load trusted CA certificate for {td}"));
            }
            bundles.push(bundle);
        }
        return Ok(ReceivedSecret::SpiffeBundles(bundles));
    }
    let pem = inline_bytes(context.trusted_ca.as_ref(), "trusted_ca")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("trusted_ca is not PEM: {e}"))?;
    for (i, cert) in certs.iter().enumerate() {
        // Parsing checks the DER the way a TLS stack would load it.
        x509_parse_check(cert).map_err(|e| format!("trusted_ca certificate {i}: {e}"))?;
    }
    if certs.is_empty() {
        return Err("trusted_ca holds no certificate".to_owned());
    }
    Ok(ReceivedSecret::TrustedCa(certs))
}

fn x509_parse_check(cert: &CertificateDer<'_>) -> Result<(), String> {
    spiffe_bundle::X509Authority::from_der(cert.clone().into_owned())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn inline_bytes<'a>(source: Option<&'a DataSource>, field: &str) -> Result<&'a [u8], String> {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(data_source::Specifier::InlineBytes(b)) => Ok(b),
        Some(data_source::Specifier::InlineString(s)) => Ok(s.as_bytes()),
        Some(_) => Err(format!("{field} is not inline")),
        None => Err(format!("{field} is missing")),
    }
}

/// Exponential backoff with jitter: each delay is drawn from the upper half
/// of the current step, so many clients do not reconnect in lockstep.
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    seed: u64,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.subsec_nanos().into())
            | 1;
        Backoff {
            initial,
            max,
            current: initial,
            seed,
        }
    }

    fn reset(&mut self) {
        self.current = self.initial;
    }

    fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs no cryptographic randomness.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.seed % jitter_nanos.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c5_backoff_grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = b.next_delay();
            assert!(last <= Duration::from_secs(30));
        }
        assert!(last >= Duration::from_secs(15));
        b.reset();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
    }
}
