//! A local SPIFFE identity agent with in-memory certificate authorities.
//!
//! An [`Agent`] holds a root and a signing CA and a JWT-SVID key for its
//! own trust domain (and for each trust domain it
//! [federates with in memory](Federation::InMemory)), issues an X509-SVID
//! for every registration [`Entry`], renews each at half its lifetime, and
//! serves the SPIFFE Workload API and Envoy's SDS v3 on one Unix socket.
//! Callers are attested from the socket's peer credentials: a caller gets
//! the SVIDs of the entries whose every selector it matches (its uid, its
//! gid), and `PermissionDenied` when there is none. Keys live in memory
//! only; nothing is written but the socket, which is removed at
//! [shutdown](Agent::shutdown).
//!
//! It is meant for development and tests, not production: there is no
//! persistence, no node attestation and no upstream authority.
//!
//! ```no_run
//! use spiffe_cli::agent::{Agent, AgentConfig, Entry, Federation, Selector};
//! use spiffe_id::{SpiffeId, TrustDomain};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let web = Entry::new(
//!     "web",
//!     SpiffeId::parse("spiffe://example.org/ns/default/sa/web")?,
//!     [Selector::Uid(1000)],
//! )?
//! .with_federates_with([TrustDomain::new("other.org")?]);
//! let config = AgentConfig::new(TrustDomain::new("example.org")?)
//!     .federate_with(Federation::InMemory(TrustDomain::new("other.org")?))
//!     .entry(web);
//! let agent = Agent::start(config, "/tmp/agent.sock").await?;
//! // ... point workloads at unix:///tmp/agent.sock ...
//! agent.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod entries;

mod authority;
mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spiffe_bundle::{JwtBundle, SpiffeBundle, X509Bundle};
use spiffe_federation::{BundleEndpoint, BundleWatcher, WatchOptions};
use spiffe_id::TrustDomain;
use spiffe_sds::SdsConfig;
use spiffe_sds::server::SdsServer;
use spiffe_svid::X509Svid;
use spiffe_workload_api::server::{
    ProviderError, RegistrationEntry, SelectorIdentityProvider, UnixSocketListener,
    WorkloadApiServer,
};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use self::authority::Authority;
pub use self::entries::{Entry, Selector};
use self::provider::AgentProvider;

/// The lifetime of X509-SVIDs whose entry gives none (SPIRE's default).
pub const DEFAULT_SVID_TTL: Duration = Duration::from_secs(3600);

/// The lifetime of JWT-SVIDs (SPIRE's default).
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(300);

/// After a failed issuance, the agent tries again this much later.
const RETRY_ISSUE: Duration = Duration::from_secs(1);

/// The renewal task wakes at least this often and compares against the
/// wall clock, so that a machine resumed from suspend (the monotonic clock
/// stood still) renews at once rather than serving expired SVIDs.
const MAX_RENEWAL_SLEEP: Duration = Duration::from_secs(5);

/// Where the bundle of a federated trust domain comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Federation {
    /// A second trust domain run by this agent, with its own in-memory CA:
    /// entries may have SPIFFE IDs in it, and both domains' bundles are
    /// served, so that federation works on one machine.
    InMemory(TrustDomain),
    /// A fixed bundle (read from a file, say).
    Bundle(SpiffeBundle),
    /// A SPIFFE bundle endpoint, polled as its refresh hint says.
    Endpoint(BundleEndpoint),
}

impl Federation {
    /// The federated trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        match self {
            Federation::InMemory(td) => td,
            Federation::Bundle(bundle) => bundle.trust_domain(),
            Federation::Endpoint(endpoint) => endpoint.trust_domain(),
        }
    }
}

/// What an [`Agent`] runs: its trust domain, federations, registration
/// entries and lifetimes.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    trust_domain: TrustDomain,
    federations: Vec<Federation>,
    entries: Vec<Entry>,
    svid_ttl: Duration,
    jwt_ttl: Duration,
    jwt_issuer: Option<String>,
    allow_unauthenticated_verifiers: bool,
}

impl AgentConfig {
    /// An agent of `trust_domain`, with no entry yet, SVIDs for
    /// [`DEFAULT_SVID_TTL`] and JWT-SVIDs for [`DEFAULT_JWT_TTL`].
    pub fn new(trust_domain: TrustDomain) -> Self {
        AgentConfig {
            trust_domain,
            federations: Vec::new(),
            entries: Vec::new(),
            svid_ttl: DEFAULT_SVID_TTL,
            jwt_ttl: DEFAULT_JWT_TTL,
            jwt_issuer: None,
            allow_unauthenticated_verifiers: false,
        }
    }

    /// Federates with another trust domain.
    #[must_use]
    pub fn federate_with(mut self, federation: Federation) -> Self {
        self.federations.push(federation);
        self
    }

    /// Adds a registration entry.
    #[must_use]
    pub fn entry(mut self, entry: Entry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Adds registration entries.
    #[must_use]
    pub fn entries(mut self, entries: impl IntoIterator<Item = Entry>) -> Self {
        self.entries.extend(entries);
        self
    }

    /// The lifetime of X509-SVIDs whose entry gives none. SVIDs are renewed
    /// at half their lifetime.
    #[must_use]
    pub fn svid_ttl(mut self, ttl: Duration) -> Self {
        self.svid_ttl = ttl;
        self
    }

    /// The lifetime of JWT-SVIDs.
    #[must_use]
    pub fn jwt_ttl(mut self, ttl: Duration) -> Self {
        self.jwt_ttl = ttl;
        self
    }

    /// The `iss` claim of the own trust domain's JWT-SVIDs (none by
    /// default).
    #[must_use]
    pub fn jwt_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.jwt_issuer = Some(issuer.into());
        self
    }

    /// Whether callers that match no entry still get the own trust
    /// domain's bundles (SPIRE's `allow_unauthenticated_verifiers`); off by
    /// default.
    #[must_use]
    pub fn allow_unauthenticated_verifiers(mut self, allow: bool) -> Self {
        self.allow_unauthenticated_verifiers = allow;
        self
    }

    /// The agent's own trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The lifetime of X509-SVIDs whose entry gives none.
    pub fn default_svid_ttl(&self) -> Duration {
        self.svid_ttl
    }

    /// The registration entries.
    pub fn registration_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The federations.
    pub fn federations(&self) -> &[Federation] {
        &self.federations
    }

    /// Checks everything that can be checked before starting: the trust
    /// domains are distinct, there is at least one entry, entry IDs are
    /// unique, every entry's trust domain has an in-memory CA, every
    /// trust domain an entry federates with is federated, and the
    /// lifetimes are within [`entries::MIN_TTL`] and [`entries::MAX_TTL`].
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] saying what is wrong.
    pub fn check(&self) -> Result<(), AgentError> {
        let config = |reason: String| Err(AgentError::Config { reason });
        let mut domains = BTreeSet::from([&self.trust_domain]);
        for federation in &self.federations {
            if !domains.insert(federation.trust_domain()) {
                return config(format!(
                    "trust domain {} is given twice (the own one, or federated twice)",
                    federation.trust_domain()
                ));
            }
        }
        if self.entries.is_empty() {
            return config("no registration entry: the agent would serve nobody".to_owned());
        }
        for ttl in [self.svid_ttl, self.jwt_ttl] {
            if !(entries::MIN_TTL..=entries::MAX_TTL).contains(&ttl) {
                return config(format!(
                    "lifetime {} s is outside {} s to {} s",
                    ttl.as_secs_f64(),
                    entries::MIN_TTL.as_secs(),
                    entries::MAX_TTL.as_secs()
                ));
            }
        }
        let issuing = self.issuing_domains();
        let mut ids = BTreeSet::new();
        for entry in &self.entries {
            if !ids.insert(entry.entry_id()) {
                return config(format!("entry ID {:?} is used twice", entry.entry_id()));
            }
            let td = entry.spiffe_id().trust_domain();
            if !issuing.contains(&td) {
                return config(format!(
                    "entry {:?}: the agent has no CA for trust domain {td} of {} (federate with \
                     it in memory to run one)",
                    entry.entry_id(),
                    entry.spiffe_id()
                ));
            }
            if let Some(unknown) = entry
                .federates_with()
                .iter()
                .find(|td| !domains.contains(td))
            {
                return config(format!(
                    "entry {:?} federates with {unknown}, which the agent does not federate with",
                    entry.entry_id()
                ));
            }
        }
        Ok(())
    }

    /// The trust domains with an in-memory CA.
    fn issuing_domains(&self) -> BTreeSet<TrustDomain> {
        let mut domains = BTreeSet::from([self.trust_domain.clone()]);
        for federation in &self.federations {
            if let Federation::InMemory(td) = federation {
                domains.insert(td.clone());
            }
        }
        domains
    }
}

/// Why an agent could not start or failed while running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration does not hold together.
    #[error("invalid agent configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// An in-memory CA could not be created.
    #[error("cannot create the CA of trust domain {trust_domain}: {reason}")]
    Authority {
        /// The trust domain.
        trust_domain: String,
        /// What failed.
        reason: String,
    },
    /// An SVID could not be issued.
    #[error("cannot issue the X509-SVID of entry {entry_id:?}: {reason}")]
    Issue {
        /// The entry.
        entry_id: String,
        /// What failed.
        reason: String,
    },
    /// A bundle endpoint could not be watched.
    #[error("cannot watch the bundle endpoint of {trust_domain}: {reason}")]
    Federation {
        /// The federated trust domain.
        trust_domain: String,
        /// What failed.
        reason: String,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {}: {reason}", path.display())]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The server failed while serving.
    #[error("the Workload API and SDS server failed: {reason}")]
    Serve {
        /// What failed.
        reason: String,
    },
}

/// The renewal state of one entry.
struct Issued {
    svid: X509Svid,
    /// Half-way through the certificate's actual validity (wall clock).
    renew_at: SystemTime,
}

/// What the agent's tasks share.
struct Shared {
    config: AgentConfig,
    authorities: BTreeMap<TrustDomain, Arc<Authority>>,
    selector: Arc<SelectorIdentityProvider>,
    issued: Mutex<BTreeMap<String, Issued>>,
    rotate_now: Notify,
    rotations: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Issued>> {
        // Every change is one insert: the map stays consistent.
        self.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ttl_of(&self, entry: &Entry) -> Duration {
        entry.ttl().unwrap_or(self.config.svid_ttl)
    }

    /// Issues the SVID of `entry` (its authority exists: checked at start).
    fn issue(&self, entry: &Entry) -> Result<Issued, AgentError> {
        let failed = |reason: String| AgentError::Issue {
            entry_id: entry.entry_id().to_owned(),
            reason,
        };
        let td = entry.spiffe_id().trust_domain();
        let authority = self
            .authorities
            .get(&td)
            .ok_or_else(|| failed(format!("no CA for trust domain {td}")))?;
        let svid = authority
            .issue_x509(entry.spiffe_id(), entry.dns_names(), self.ttl_of(entry))
            .map_err(failed)?;
        // Half of what was really issued (whole seconds, perhaps shortened
        // to the CA's life), counted from now: SPIRE's rule, read off the
        // certificate rather than the configuration.
        let now = SystemTime::now();
        let not_after = UNIX_EPOCH + Duration::from_secs(svid.expires_at().as_secs());
        let remaining = not_after
            .duration_since(now)
            .map_err(|_| failed("the issued SVID is already expired".to_owned()))?;
        Ok(Issued {
            svid,
            renew_at: now + remaining / 2,
        })
    }

    /// When the first SVID is due for renewal.
    fn renew_due_at(&self) -> SystemTime {
        let now = SystemTime::now();
        self.lock()
            .values()
            .map(|i| i.renew_at)
            .fold(now + self.config.svid_ttl, SystemTime::min)
    }

    /// Renews the SVIDs that are due (all of them when `all`), publishes
    /// them in one update, and returns when the next one is due.
    fn renew(&self, all: bool) -> SystemTime {
        let now = SystemTime::now();
        // One lock over issuing, publishing and recording: `Agent::svid`
        // never lags behind what the streams were sent.
        let mut issued = self.lock();
        let mut renewed = Vec::new();
        for entry in &self.config.entries {
            let due = issued
                .get(entry.entry_id())
                .is_none_or(|i| all || i.renew_at <= now);
            if !due {
                continue;
            }
            match self.issue(entry) {
                Ok(new) => renewed.push((entry, new)),
                Err(e) => {
                    tracing::error!(error = %e, "SVID renewal failed; retrying in 1 s");
                    // The old SVID stays; its next try is a second away,
                    // not in the past (which would spin).
                    if let Some(old) = issued.get_mut(entry.entry_id()) {
                        old.renew_at = now + RETRY_ISSUE;
                    }
                }
            }
        }
        if !renewed.is_empty() {
            self.selector.update(|r| {
                for (entry, new) in &renewed {
                    r.set_entry(registration(entry, &new.svid));
                }
            });
            for (entry, new) in renewed {
                tracing::info!(
                    entry = entry.entry_id(),
                    id = %entry.spiffe_id(),
                    not_after = new.svid.expires_at().as_secs(),
                    "SVID issued; pushed to open streams"
                );
                issued.insert(entry.entry_id().to_owned(), new);
            }
            self.rotations.send_modify(|n| *n += 1);
        }
        issued
            .values()
            .map(|i| i.renew_at)
            .fold(now + self.config.svid_ttl, SystemTime::min)
    }
}

/// The registration entry the selector provider serves for `entry`.
fn registration(entry: &Entry, svid: &X509Svid) -> RegistrationEntry {
    let mut registration = RegistrationEntry::new(
        entry.entry_id(),
        entry.selectors().iter().copied(),
        svid.clone(),
    )
    .with_federates_with(entry.federates_with().iter().cloned());
    // The hint was checked against the same limit when the entry was made.
    if let Some(hint) = entry.hint() {
        match registration.clone().with_hint(hint) {
            Ok(hinted) => registration = hinted,
            Err(e) => tracing::warn!(entry = entry.entry_id(), error = %e, "hint dropped"),
        }
    }
    registration
}

/// A running agent. Dropping it without [`Agent::shutdown`] stops the
/// server too, but without waiting for open streams to end.
pub struct Agent {
    socket: PathBuf,
    /// The socket file's (device, inode) as bound: only that file is removed.
    socket_file: Option<(u64, u64)>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), AgentError>>>,
    rotation: JoinHandle<()>,
    watchers: Vec<(BundleWatcher, JoinHandle<()>)>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("socket", &self.socket)
            .field("trust_domain", &self.shared.config.trust_domain)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Checks `config`, creates the CAs, issues every entry's SVID, binds
    /// the Unix socket at `socket` (a stale socket there is replaced; any
    /// other file is an error) and starts serving, on the current Tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] (see [`AgentConfig::check`]),
    /// [`AgentError::Authority`], [`AgentError::Issue`],
    /// [`AgentError::Federation`], [`AgentError::Listen`].
    pub async fn start(config: AgentConfig, socket: impl AsRef<Path>) -> Result<Agent, AgentError> {
        config.check()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(AgentError::Config {
                reason: "Agent::start must run inside a Tokio runtime".to_owned(),
            });
        }
        // Absolute, so `endpoint_socket` is a valid address and the socket
        // is removed at shutdown even if the working directory changed.
        let socket = std::path::absolute(socket.as_ref()).map_err(|e| AgentError::Listen {
            path: socket.as_ref().to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut authorities = BTreeMap::new();
        for td in config.issuing_domains() {
            // The `iss` names the own trust domain's issuer only: another
            // domain run in memory stands for another deployment.
            let iss = config
                .jwt_issuer
                .as_deref()
                .filter(|_| td == config.trust_domain);
            let authority = Authority::new(&td, iss)?;
            authorities.insert(td, Arc::new(authority));
        }
        let own_bundle = authorities
            .get(&config.trust_domain)
            .map(|a| a.x509_bundle())
            .ok_or_else(|| AgentError::Config {
                reason: "no CA for the own trust domain".to_owned(),
            })?;
        let jwt_ttl = config.jwt_ttl;
        let minter_authorities = authorities.clone();
        let selector = SelectorIdentityProvider::new(own_bundle)
            .allow_unauthenticated_verifiers(config.allow_unauthenticated_verifiers)
            .with_jwt_minter(move |id, audience| {
                let td = id.trust_domain();
                let authority =
                    minter_authorities
                        .get(&td)
                        .ok_or_else(|| ProviderError::Unavailable {
                            reason: format!("no JWT-SVID key for trust domain {td}"),
                        })?;
                let token = authority
                    .issue_jwt(id, audience, jwt_ttl)
                    .map_err(|reason| ProviderError::Unavailable { reason })?;
                tracing::info!(id = %id, audience = ?audience, "JWT-SVID issued");
                Ok(token)
            });
        let selector = Arc::new(selector);
        selector.update(|r| {
            for authority in authorities.values() {
                r.set_x509_bundle(authority.x509_bundle());
                r.set_jwt_bundle(authority.jwt_bundle());
            }
            for federation in &config.federations {
                if let Federation::Bundle(bundle) = federation {
                    r.set_x509_bundle(bundle.x509_bundle().clone());
                    r.set_jwt_bundle(bundle.jwt_bundle().clone());
                }
            }
        });
        let (rotations, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            authorities,
            selector: Arc::clone(&selector),
            issued: Mutex::new(BTreeMap::new()),
            rotate_now: Notify::new(),
            rotations,
        });
        // Every entry's first SVID, before the socket exists: a workload
        // that connects finds its identity at once.
        for entry in &shared.config.entries {
            let issued = shared.issue(entry)?;
            selector.set_entry(registration(entry, &issued.svid));
            shared.lock().insert(entry.entry_id().to_owned(), issued);
        }

        let mut watchers = Vec::new();
        for federation in &shared.config.federations {
            if let Federation::Endpoint(endpoint) = federation {
                watchers.push(watch_endpoint(endpoint.clone(), Arc::clone(&selector))?);
            }
        }

        let listener = UnixSocketListener::bind(&socket)
            .map_err(|e| AgentError::Listen {
                path: socket.clone(),
                reason: e.to_string(),
            })?
            .on_rejected(|e| {
                tracing::warn!(error = %e, "connection closed: the caller could not be identified");
            });
        let socket_file = file_id(&socket);
        let (stop, stopped) = oneshot::channel::<()>();
        let sds = SdsServer::new(
            Arc::new(AgentProvider {
                inner: Arc::clone(&selector),
            }),
            SdsConfig::new(shared.config.trust_domain.clone()),
        );
        let workload_api = WorkloadApiServer::from_arc(Arc::clone(sds.provider()));
        let server = tokio::spawn(async move {
            sds.serve_with_workload_api(workload_api, listener, async {
                // A dropped sender stops the server as well.
                let _ = stopped.await;
            })
            .await
            .map_err(|e| AgentError::Serve {
                reason: e.to_string(),
            })
        });
        let rotation = tokio::spawn(rotate(Arc::clone(&shared)));
        tracing::info!(
            socket = %socket.display(),
            trust_domain = %shared.config.trust_domain,
            entries = shared.config.entries.len(),
            "agent serving the Workload API and SDS"
        );
        Ok(Agent {
            socket,
            socket_file,
            shared,
            stop: Some(stop),
            server: Some(server),
            rotation,
            watchers,
        })
    }

    /// The socket path, made absolute.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The Workload API address of the socket, `unix://<path>` (the value
    /// for `SPIFFE_ENDPOINT_SOCKET`).
    pub fn endpoint_socket(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The configuration the agent runs.
    pub fn config(&self) -> &AgentConfig {
        &self.shared.config
    }

    /// The X.509 bundle the agent holds for `trust_domain` (own or
    /// federated).
    pub fn x509_bundle(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.shared
            .selector
            .update(|r| r.x509_bundle(trust_domain).cloned())
    }

    /// The JWT bundle the agent holds for `trust_domain`.
    pub fn jwt_bundle(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.shared
            .selector
            .update(|r| r.jwt_bundle(trust_domain).cloned())
    }

    /// The current X509-SVID of an entry.
    pub fn svid(&self, entry_id: &str) -> Option<X509Svid> {
        self.shared.lock().get(entry_id).map(|i| i.svid.clone())
    }

    /// Renews every SVID now, instead of at half its lifetime.
    pub fn rotate_now(&self) {
        self.shared.rotate_now.notify_one();
    }

    /// Counts renewal rounds that published new SVIDs: the value changes
    /// after each.
    pub fn rotations(&self) -> watch::Receiver<u64> {
        self.shared.rotations.subscribe()
    }

    /// Serves until `signal` completes or the server fails, then shuts
    /// down as [`Agent::shutdown`] does.
    ///
    /// # Errors
    ///
    /// [`AgentError::Serve`] if the server failed.
    pub async fn serve_until(mut self, signal: impl Future<Output = ()>) -> Result<(), AgentError> {
        let Some(server) = self.server.as_mut() else {
            return Ok(());
        };
        tokio::select! {
            () = signal => self.shutdown().await,
            result = server => {
                self.server = None;
                let result = flatten(result);
                self.shutdown().await?;
                result
            }
        }
    }

    /// Stops serving: the socket file is removed at once, open streams are
    /// ended (with a grace period of a few seconds for in-flight calls and
    /// connections), renewal and bundle watching stop.
    ///
    /// # Errors
    ///
    /// [`AgentError::Serve`] if the server had failed.
    pub async fn shutdown(mut self) -> Result<(), AgentError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The socket goes now, not after the drain: new callers fail fast
        // instead of waiting on a server that no longer accepts, and a new
        // agent can bind the path at once. The listener, dropped after the
        // drain, removes only the file it bound, so not a newer agent's.
        if self.socket_file.is_some() && file_id(&self.socket) == self.socket_file {
            let _ = std::fs::remove_file(&self.socket);
        }
        let result = match self.server.take() {
            Some(server) => flatten(server.await),
            None => Ok(()),
        };
        // Renewal has stopped once this returns: a round in progress ends
        // first (it never awaits, so the abort lands between rounds).
        self.rotation.abort();
        let _ = (&mut self.rotation).await;
        for (watcher, forward) in self.watchers.drain(..) {
            forward.abort();
            watcher.stop().await;
        }
        tracing::info!(socket = %self.socket.display(), "agent stopped");
        result
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.rotation.abort();
        for (_, forward) in &self.watchers {
            forward.abort();
        }
    }
}

/// The (device, inode) of the socket file at `path`, if there is one.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| (m.dev(), m.ino()))
}

fn flatten(
    result: Result<Result<(), AgentError>, tokio::task::JoinError>,
) -> Result<(), AgentError> {
    result.unwrap_or_else(|e| {
        Err(AgentError::Serve {
            reason: e.to_string(),
        })
    })
}

/// Renews SVIDs at half their lifetime, or all at once when asked.
async fn rotate(shared: Arc<Shared>) {
    let mut next = shared.renew_due_at();
    loop {
        let wait = next
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_RENEWAL_SLEEP);
        let all = tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = shared.rotate_now.notified() => true,
        };
        next = shared.renew(all);
    }
}

/// Watches a bundle endpoint and publishes each new bundle.
fn watch_endpoint(
    endpoint: BundleEndpoint,
    selector: Arc<SelectorIdentityProvider>,
) -> Result<(BundleWatcher, JoinHandle<()>), AgentError> {
    let trust_domain = endpoint.trust_domain().clone();
    let watcher = BundleWatcher::spawn(
        endpoint,
        Arc::new(spiffe_bundle::BundleSet::new()),
        WatchOptions::default(),
    )
    .map_err(|e| AgentError::Federation {
        trust_domain: trust_domain.to_string(),
        reason: e.to_string(),
    })?;
    let mut updates = watcher.subscribe();
    let forward = tokio::spawn(async move {
        let mut next = updates.current();
        loop {
            if let Some(bundle) = next.take() {
                tracing::info!(trust_domain = %bundle.trust_domain(), "federated bundle updated");
                selector.update(|r| {
                    r.set_x509_bundle(bundle.x509_bundle().clone());
                    r.set_jwt_bundle(bundle.jwt_bundle().clone());
                });
            }
            match updates.changed().await {
                Some(bundle) => next = Some(bundle),
                None => break,
            }
        }
    });
    Ok((watcher, forward))
}
