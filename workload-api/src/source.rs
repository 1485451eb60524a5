//! Long-lived sources that follow the Workload API's streams for the
//! life of the workload. How they follow it is described on
//! [`X509Source`].

mod bundle;
mod follow;
mod jwt;
mod x509;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use spiffe_id::SpiffeId;
use spiffe_svid::X509Svid;
use tokio::sync::watch;

pub use bundle::BundleSource;
pub use jwt::JwtSource;
pub use x509::X509Source;

use crate::{ClientError, X509Context};
use follow::{Health, Published};

/// Which of the workload's X.509-SVIDs an [`X509Source`] serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SvidSelector {
    /// The default SVID: the first one (W-31).
    #[default]
    Default,
    /// The SVID with this hint.
    Hint(String),
    /// The first SVID with this SPIFFE ID.
    Id(SpiffeId),
}

impl SvidSelector {
    /// The SVID of `context` this selector picks.
    ///
    /// # Errors
    ///
    /// [`ClientError::SvidNotFound`] when no SVID has the hint or ID.
    pub(crate) fn select<'a>(&self, context: &'a X509Context) -> Result<&'a X509Svid, ClientError> {
        match self {
            SvidSelector::Default => Ok(context.default_svid()),
            SvidSelector::Hint(hint) => {
                context
                    .svid_by_hint(hint)
                    .ok_or_else(|| ClientError::SvidNotFound {
                        wanted: format!("with hint `{hint}`"),
                    })
            }
            SvidSelector::Id(id) => {
                context
                    .svid_by_id(id)
                    .ok_or_else(|| ClientError::SvidNotFound {
                        wanted: id.to_string(),
                    })
            }
        }
    }
}

/// How a source waits for its first update and reconnects.
///
/// ```
/// use std::time::Duration;
/// use spiffe_workload_api::{SourceOptions, SvidSelector};
///
/// let options = SourceOptions::default()
///     .with_initial_timeout(Duration::from_secs(5))
///     .with_backoff(Duration::from_millis(50), Duration::from_secs(10))
///     .with_svid(SvidSelector::Hint("internal".into()));
/// ```
#[derive(Debug, Clone)]
pub struct SourceOptions {
    initial_timeout: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    svid: SvidSelector,
}

impl Default for SourceOptions {
    /// 30 s for the first update; retries after at most 100 ms, doubling up
    /// to 30 s; the default SVID.
    fn default() -> Self {
        SourceOptions {
            initial_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            svid: SvidSelector::Default,
        }
    }
}

impl SourceOptions {
    /// How long the constructor waits for the first usable update.
    #[must_use]
    pub fn with_initial_timeout(mut self, timeout: Duration) -> Self {
        self.initial_timeout = timeout;
        self
    }

    /// The reconnect backoff: the n-th retry in a row waits a random time
    /// up to `min(max, base * 2^n)`.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Which SVID an [`X509Source`] serves (other sources ignore it). A
    /// message without that SVID is refused with
    /// [`ClientError::SvidNotFound`] and the last one kept.
    #[must_use]
    pub fn with_svid(mut self, svid: SvidSelector) -> Self {
        self.svid = svid;
        self
    }
}

/// Notifications of a source's changes: each real change of its material,
/// never a resend of the same.
///
/// A subscription does not keep its source running: once every clone of
/// the source is dropped (or the source stopped on a fatal error),
/// [`Subscription::changed`] returns [`ClientError::Stopped`].
pub struct Subscription<T> {
    rx: watch::Receiver<Published<T>>,
    health: Arc<Health>,
}

impl<T> Clone for Subscription<T> {
    fn clone(&self) -> Self {
        Subscription {
            rx: self.rx.clone(),
            health: Arc::clone(&self.health),
        }
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    fn new(rx: watch::Receiver<Published<T>>, health: Arc<Health>) -> Self {
        Subscription { rx, health }
    }

    /// Waits for the next change and returns the new material. Changes
    /// that happened since the last call (or since the subscription was
    /// made) are reported at once, coalesced into the latest.
    ///
    /// # Errors
    ///
    /// [`ClientError::Stopped`] once the source no longer follows the
    /// Workload API, with the error that stopped it, if any.
    pub async fn changed(&mut self) -> Result<Arc<T>, ClientError> {
        match self.rx.changed().await {
            Ok(()) => Ok(Arc::clone(&self.rx.borrow_and_update().value)),
            Err(_) => Err(ClientError::Stopped {
                cause: self.health.get().map(Box::new),
            }),
        }
    }

    /// The latest material, now marked as seen.
    pub fn latest(&mut self) -> Arc<T> {
        Arc::clone(&self.rx.borrow_and_update().value)
    }
}
