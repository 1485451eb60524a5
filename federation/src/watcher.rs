//! Keeps one trust domain's entry of a `BundleSet` current by polling its
//! bundle endpoint.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use spiffe_bundle::{BundleSet, InsertOutcome, SpiffeBundle, X509Bundle, X509BundleSource};
use spiffe_id::TrustDomain;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::endpoint::Profile;
use crate::{BundleClient, BundleEndpoint, ConfigError, EndpointProfile, FetchError, FetchOptions};

/// How often a [`BundleWatcher`] polls, and how it retries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// The interval when the bundle has no (positive) `spiffe_refresh_hint`
    /// (default 5 minutes, rules F-03 and B-18).
    pub default_refresh: Duration,
    /// The shortest interval, whatever the hint says (default 30 s), so a
    /// tiny hint cannot make the watcher hammer the endpoint.
    pub min_refresh: Duration,
    /// The longest interval, whatever the hint says (default 1 hour).
    pub max_refresh: Duration,
    /// Each interval is shortened by a random fraction up to this one
    /// (default 0.1), so that watchers started together spread out. Never
    /// lengthened: publishers add keys 3 to 5 hints ahead (rule F-02), so
    /// polling early is safe and polling late is not.
    pub jitter: f64,
    /// The delay before the first retry after a failure (default 5 s). It
    /// doubles with each further failure, up to the interval in force:
    /// after a failure the watcher never polls less often than usual
    /// (rule F-24), nor in a tight loop.
    pub retry_initial: Duration,
    /// The options of each fetch.
    pub fetch: FetchOptions,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            default_refresh: Duration::from_secs(300),
            min_refresh: Duration::from_secs(30),
            max_refresh: Duration::from_secs(3600),
            jitter: 0.1,
            retry_initial: Duration::from_secs(5),
            fetch: FetchOptions::default(),
        }
    }
}

impl WatchOptions {
    /// These options with another default interval.
    pub fn with_default_refresh(mut self, interval: Duration) -> Self {
        self.default_refresh = interval;
        self
    }

    /// These options with other bounds on the interval.
    pub fn with_refresh_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_refresh = min;
        self.max_refresh = max;
        self
    }

    /// These options with another jitter fraction (0 to 1).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// These options with another first retry delay.
    pub fn with_retry_initial(mut self, delay: Duration) -> Self {
        self.retry_initial = delay;
        self
    }

    /// These options with other fetch options.
    pub fn with_fetch_options(mut self, fetch: FetchOptions) -> Self {
        self.fetch = fetch;
        self
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |option, reason: &str| {
            Err(ConfigError::InvalidOption {
                option,
                reason: reason.to_owned(),
            })
        };
        if self.min_refresh > self.max_refresh {
            return invalid("min_refresh", "above max_refresh");
        }
        if self.min_refresh.is_zero() {
            return invalid("min_refresh", "must be positive");
        }
        if self.retry_initial.is_zero() {
            return invalid("retry_initial", "must be positive");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return invalid("jitter", "must be between 0 and 1");
        }
        Ok(())
    }

    /// The interval for a bundle with this refresh hint, before jitter.
    pub(crate) fn interval(&self, hint: Option<Duration>) -> Duration {
        hint.unwrap_or(self.default_refresh)
            .max(self.min_refresh)
            .min(self.max_refresh)
    }

    /// The delay before the retry after `failures` consecutive failures
    /// (1 or more), before jitter.
    pub(crate) fn retry_delay(&self, failures: u32, interval: Duration) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.retry_initial
            .saturating_mul(1 << doublings)
            .min(interval)
    }

    /// `delay` shortened by a random fraction up to `jitter`.
    pub(crate) fn jittered(&self, delay: Duration, random: u64) -> Duration {
        // Integer arithmetic: no float-to-duration conversion can panic.
        let permille = (self.jitter.clamp(0.0, 1.0) * 1000.0) as u128;
        let nanos = delay.as_nanos();
        let max_cut = nanos.saturating_mul(permille) / 1000;
        let cut = u128::from(random) % max_cut.saturating_add(1);
        let left = nanos.saturating_sub(cut);
        Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
    }
}

/// What a [`BundleWatcher`] did last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchStatus {
    /// Fetch attempts finished so far.
    pub attempts: u64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Why the last attempt failed, or `None` if it succeeded (or none
    /// finished yet). The bundle in the set is then the last good one.
    pub last_error: Option<FetchError>,
    /// When the last successful fetch finished.
    pub last_success: Option<SystemTime>,
    /// The delay chosen before the next attempt.
    pub next_attempt_in: Option<Duration>,
}

/// Receives the bundles a [`BundleWatcher`] stores, only when they change.
#[derive(Debug, Clone)]
pub struct BundleUpdates {
    rx: watch::Receiver<Option<SpiffeBundle>>,
}

impl BundleUpdates {
    /// The watched trust domain's bundle as last stored by the watcher (or
    /// found in the set when it started).
    pub fn current(&self) -> Option<SpiffeBundle> {
        self.rx.borrow().clone()
    }

    /// Waits until the watcher stores a different bundle, and returns it.
    /// Returns `None` once the watcher has stopped.
    pub async fn changed(&mut self) -> Option<SpiffeBundle> {
        self.rx.changed().await.ok()?;
        self.rx.borrow_and_update().clone()
    }
}

/// The X.509 bundles an `https_spiffe` watcher authenticates the endpoint
/// with: the newest in the set, else the profile's own (bootstrap) source.
struct SetFirst {
    set: Arc<BundleSet>,
    fallback: Arc<dyn X509BundleSource + Send + Sync>,
}

impl X509BundleSource for SetFirst {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.set
            .x509_bundle_for(trust_domain)
            .or_else(|| self.fallback.x509_bundle_for(trust_domain))
    }
}

/// Control shared by the watcher handle and its task.
struct Control {
    refresh: Notify,
    started: AtomicU64,
}

/// Polls a bundle endpoint and keeps its trust domain's entry of a
/// [`BundleSet`] current.
///
/// - **When.** The first fetch starts at once. After a success the next one
///   comes after the bundle's `spiffe_refresh_hint` (rule F-03), bounded by
///   [`WatchOptions::min_refresh`] and [`WatchOptions::max_refresh`], or
///   [`WatchOptions::default_refresh`] without a hint, shortened by jitter.
///   After a failure it retries with exponential backoff, never later than
///   the regular interval. [`refresh`](BundleWatcher::refresh) fetches now.
/// - **What is stored.** A fetched bundle replaces the set's entry unless
///   its `spiffe_sequence` is lower (rule F-04; see
///   [`FetchOptions::allow_sequence_rollback`]). On any failure the set
///   keeps the last good bundle (rule F-24) and
///   [`status`](BundleWatcher::status) says why.
/// - **Who hears of it.** [`subscribe`](BundleWatcher::subscribe) gives a
///   [`BundleUpdates`] that wakes only when the stored bundle really
///   changed, not on every poll.
/// - **https_spiffe.** The endpoint's SVID is verified against the bundle of
///   the endpoint ID's trust domain found in the *set* (the newest one,
///   whether this watcher or another one fetched it, rules F-21, F-22), and
///   against the profile's own bundle source only while the set has none.
/// - **Stopping.** [`stop`](BundleWatcher::stop), or dropping the watcher,
///   ends the task; an ongoing fetch is abandoned. The set keeps its entry:
///   ending a federation relationship (rule F-25) is stopping the watcher
///   *and* [`BundleSet::remove`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use spiffe_bundle::BundleSet;
/// use spiffe_federation::{BundleEndpoint, BundleWatcher, EndpointProfile, EndpointUrl, WatchOptions};
/// use spiffe_id::TrustDomain;
///
/// let roots = rustls::RootCertStore::empty(); // the Web PKI roots you trust
/// let set = Arc::new(BundleSet::new());
/// let endpoint = BundleEndpoint::new(
///     TrustDomain::new("partner.example")?,
///     EndpointUrl::parse("https://bundles.partner.example/")?,
///     EndpointProfile::https_web(roots),
/// );
/// let watcher = BundleWatcher::spawn(endpoint, Arc::clone(&set), WatchOptions::default())?;
/// let mut updates = watcher.subscribe();
/// while let Some(bundle) = updates.changed().await {
///     println!("partner.example bundle now at sequence {:?}", bundle.sequence());
/// }
/// # Ok(())
/// # }
/// ```
pub struct BundleWatcher {
    endpoint: BundleEndpoint,
    control: Arc<Control>,
    updates: watch::Receiver<Option<SpiffeBundle>>,
    status: watch::Receiver<WatchStatus>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for BundleWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleWatcher")
            .field("endpoint", &self.endpoint)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for BundleWatcher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl BundleWatcher {
    /// Starts watching `endpoint` on the current Tokio runtime, storing its
    /// bundles in `set`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoRuntime`] outside a Tokio runtime;
    /// [`ConfigError::InvalidOption`] for inconsistent options (a minimum
    /// above the maximum, a zero minimum or retry delay, a jitter outside
    /// 0 to 1); the errors of [`BundleClient::with_options`].
    pub fn spawn(
        endpoint: BundleEndpoint,
        set: Arc<BundleSet>,
        options: WatchOptions,
    ) -> Result<Self, ConfigError> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let client_endpoint = match &endpoint.profile().0 {
            Profile::Web { .. } => endpoint.clone(),
            Profile::Spiffe {
                endpoint_id,
                bundles,
            } => endpoint.with_profile(EndpointProfile::https_spiffe(
                endpoint_id.clone(),
                SetFirst {
                    set: Arc::clone(&set),
                    fallback: Arc::clone(bundles),
                },
            )),
        };
        let client = BundleClient::with_options(client_endpoint, options.fetch.clone())?;
        let (updates_tx, updates) = watch::channel(set.get(endpoint.trust_domain()));
        let (status_tx, status) = watch::channel(WatchStatus::default());
        let (stop, stop_rx) = watch::channel(false);
        let control = Arc::new(Control {
            refresh: Notify::new(),
            started: AtomicU64::new(0),
        });
        let task = Task {
            client,
            set,
            options,
            control: Arc::clone(&control),
            updates: updates_tx,
            status: status_tx,
            random: RandomState::new(),
        };
        let task = runtime.spawn(task.run(stop_rx));
        Ok(BundleWatcher {
            endpoint,
            control,
            updates,
            status,
            stop,
            task: Some(task),
        })
    }

    /// The watched endpoint.
    pub fn endpoint(&self) -> &BundleEndpoint {
        &self.endpoint
    }

    /// A receiver of the bundles this watcher stores.
    pub fn subscribe(&self) -> BundleUpdates {
        BundleUpdates {
            rx: self.updates.clone(),
        }
    }

    /// What the watcher did last.
    pub fn status(&self) -> WatchStatus {
        self.status.borrow().clone()
    }

    /// Fetches now, without waiting for the timer, and returns the status
    /// after that attempt. An attempt under way when this is called does
    /// not count: the one returned started after the call. Returns the last
    /// status at once if the watcher has stopped.
    pub async fn refresh(&self) -> WatchStatus {
        let mut status = self.status.clone();
        let target = self
            .control
            .started
            .load(Ordering::SeqCst)
            .saturating_add(1);
        self.control.refresh.notify_one();
        loop {
            if status.borrow_and_update().attempts >= target {
                break;
            }
            if status.changed().await.is_err() {
                break;
            }
        }
        status.borrow().clone()
    }

    /// Stops the watcher and waits for its task to end. The set keeps the
    /// last bundle stored.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The polling task.
struct Task {
    client: BundleClient,
    set: Arc<BundleSet>,
    options: WatchOptions,
    control: Arc<Control>,
    updates: watch::Sender<Option<SpiffeBundle>>,
    status: watch::Sender<WatchStatus>,
    random: RandomState,
}

impl Task {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut status = WatchStatus::default();
        loop {
            self.control.started.fetch_add(1, Ordering::SeqCst);
            let attempt = self.attempt(&mut status);
            let delay = tokio::select! {
                delay = attempt => delay,
                _ = stop.changed() => return,
            };
            status.attempts = status.attempts.saturating_add(1);
            status.next_attempt_in = Some(delay);
            self.status.send_replace(status.clone());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.control.refresh.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One fetch and store; returns the delay before the next.
    async fn attempt(&self, status: &mut WatchStatus) -> Duration {
        let td = self.client.endpoint().trust_domain();
        let current = self.set.get(td);
        let result = match self.client.fetch(current.as_ref()).await {
            Ok(bundle) => self.store(bundle),
            Err(e) => Err(e),
        };
        let hint = self.set.get(td).and_then(|b| b.refresh_hint());
        let interval = self.options.interval(hint);
        let delay = match result {
            Ok(()) => {
                status.consecutive_failures = 0;
                status.last_error = None;
                status.last_success = Some(SystemTime::now());
                interval
            }
            Err(e) => {
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.last_error = Some(e);
                self.options
                    .retry_delay(status.consecutive_failures, interval)
            }
        };
        self.options.jittered(delay, self.random_u64())
    }

    fn store(&self, bundle: SpiffeBundle) -> Result<(), FetchError> {
        let outcome = if self.options.fetch.allow_sequence_rollback {
            self.set.insert_forced(bundle.clone())
        } else {
            self.set.insert(bundle.clone())
        };
        match outcome {
            InsertOutcome::Added | InsertOutcome::Replaced(_) => {
                self.updates.send_replace(Some(bundle));
                Ok(())
            }
            // Another writer stored a newer bundle since the fetch started.
            InsertOutcome::Stale { current, offered } => Err(FetchError::SequenceWentBackwards {
                current,
                fetched: offered,
            }),
            _ => Ok(()),
        }
    }

    fn random_u64(&self) -> u64 {
        let mut hasher = self.random.build_hasher();
        hasher.write_u64(self.control.started.load(Ordering::Relaxed));
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn f03_interval_follows_the_hint_within_bounds() {
        let o = WatchOptions::default();
        assert_eq!(o.interval(None), S(300));
        assert_eq!(o.interval(Some(S(120))), S(120));
        assert_eq!(o.interval(Some(S(1))), S(30));
        assert_eq!(o.interval(Some(S(86_400))), S(3600));
    }

    #[test]
    fn f24_backoff_doubles_up_to_the_interval() {
        let o = WatchOptions::default();
        assert_eq!(o.retry_delay(1, S(300)), S(5));
        assert_eq!(o.retry_delay(2, S(300)), S(10));
        assert_eq!(o.retry_delay(3, S(300)), S(20));
        assert_eq!(o.retry_delay(7, S(300)), S(300));
        assert_eq!(o.retry_delay(u32::MAX, S(300)), S(300));
    }

    #[test]
    fn jitter_only_shortens() {
        let o = WatchOptions::default();
        for r in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
            let d = o.jittered(S(100), r);
            assert!(d <= S(100) && d >= S(90), "{d:?}");
        }
        let none = WatchOptions::default().with_jitter(0.0);
        assert_eq!(none.jittered(S(100), u64::MAX), S(100));
        let nan = WatchOptions::default().with_jitter(f64::NAN);
        assert_eq!(nan.jittered(S(100), 77), S(100));
        assert!(o.jittered(Duration::MAX, u64::MAX).as_secs() > 0);
    }

    #[test]
    fn options_are_checked() {
        let bad = [
            WatchOptions::default().with_refresh_bounds(S(10), S(5)),
            WatchOptions::default().with_refresh_bounds(S(0), S(5)),
            WatchOptions::default().with_retry_initial(S(0)),
            WatchOptions::default().with_jitter(1.5),
            WatchOptions::default().with_jitter(f64::NAN),
        ];
        for o in bad {
            assert!(
                matches!(o.check(), Err(ConfigError::InvalidOption { .. })),
                "{o:?}"
            );
        }
        assert!(WatchOptions::default().check().is_ok());
    }
}
