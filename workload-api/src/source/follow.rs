//! Following one Workload API stream for as long as a source lives:
//! reconnecting with backoff, discarding bad and repeated messages, and
//! publishing each real change.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spiffe_svid::X509Svid;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tonic::codec::Streaming;

use super::{SourceOptions, Subscription};
use crate::{ClientError, WorkloadApiClient};

/// Opens the stream a source follows.
pub(crate) type Open<M> =
    fn(
        WorkloadApiClient,
    ) -> Pin<Box<dyn Future<Output = Result<Streaming<M>, ClientError>> + Send>>;

/// Turns a message into what the source publishes.
pub(crate) type Decode<M, T> = Box<dyn Fn(&M) -> Result<Published<T>, ClientError> + Send + Sync>;

/// What a source publishes on each change. `svid` is the SVID an
/// `X509Source` picked from the context, kept in one `Arc` per update so
/// that rustls resolvers see a new pointer only on a real change.
#[derive(Debug)]
pub(crate) struct Published<T> {
    pub(crate) value: Arc<T>,
    pub(crate) svid: Option<Arc<X509Svid>>,
    /// Set when the value is published but is not what the source was asked
    /// for (an `X509Source` whose chosen SVID the message left out): it
    /// becomes the source's `last_error`, and a first message with a
    /// problem does not end the initial wait.
    pub(crate) problem: Option<ClientError>,
}

impl<T> Clone for Published<T> {
    fn clone(&self) -> Self {
        Published {
            value: Arc::clone(&self.value),
            svid: self.svid.clone(),
            problem: self.problem.clone(),
        }
    }
}

/// The last error a source met; cleared by the next good message.
#[derive(Debug, Default)]
pub(crate) struct Health {
    last_error: Mutex<Option<ClientError>>,
}

impl Health {
    fn set(&self, error: ClientError) {
        *self.lock() = Some(error);
    }

    fn clear(&self) {
        *self.lock() = None;
    }

    pub(crate) fn get(&self) -> Option<ClientError> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ClientError>> {
        // The value is a plain Option, valid whatever a panicking holder
        // did; keep going rather than propagate the poison.
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stream followed by a background task. Dropping it stops the task,
/// which drops the stream and so cancels the call.
pub(crate) struct Follower<T> {
    rx: watch::Receiver<Published<T>>,
    health: Arc<Health>,
    task: AbortHandle,
}

impl<T> fmt::Debug for Follower<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follower")
            .field("last_error", &self.health.get())
            .field("following", &!self.task.is_finished())
            .finish()
    }
}

impl<T> Drop for Follower<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Send + Sync + 'static> Follower<T> {
    /// Waits (up to the initial timeout) for the first message that
    /// decodes, then follows the stream in a background task.
    pub(crate) async fn start<M>(
        client: WorkloadApiClient,
        options: &SourceOptions,
        open: Open<M>,
        decode: Decode<M, T>,
    ) -> Result<Self, ClientError>
    where
        M: PartialEq + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::Connect {
                address: client.address().to_owned(),
                reason: "not called inside a Tokio runtime".to_owned(),
            });
        }
        let health = Arc::new(Health::default());
        let mut feed = Feed {
            client,
            open,
            decode,
            backoff: Backoff::new(options.backoff_base, options.backoff_max),
            last_raw: None,
            stream: None,
            health: Arc::clone(&health),
        };
        let first_usable = async {
            loop {
                let published = feed.next().await?;
                if published.problem.is_none() {
                    return Ok(published);
                }
            }
        };
        let first = match tokio::time::timeout(options.initial_timeout, first_usable).await {
            Ok(Ok(first)) => first,
            Ok(Err(fatal)) => return Err(fatal),
            Err(_) => {
                return Err(ClientError::NoInitialUpdate {
                    after: options.initial_timeout,
                    last_error: health.get().map(Box::new),
                });
            }
        };
        let (tx, rx) = watch::channel(first);
        let task = tokio::spawn(async move {
            // Ends on a fatal error; dropping `tx` then tells subscribers.
            while let Ok(update) = feed.next().await {
                tx.send_replace(update);
            }
        });
        Ok(Follower {
            rx,
            health,
            task: task.abort_handle(),
        })
    }
}

impl<T> Follower<T> {
    /// The latest value.
    pub(crate) fn value(&self) -> Arc<T> {
        Arc::clone(&self.rx.borrow().value)
    }

    /// The SVID published with the latest value.
    pub(crate) fn svid(&self) -> Option<Arc<X509Svid>> {
        self.rx.borrow().svid.clone()
    }

    pub(crate) fn last_error(&self) -> Option<ClientError> {
        self.health.get()
    }

    pub(crate) fn subscribe(&self) -> Subscription<T> {
        let mut rx = self.rx.clone();
        rx.mark_unchanged();
        Subscription::new(rx, Arc::clone(&self.health))
    }
}

struct Feed<M, T> {
    client: WorkloadApiClient,
    open: Open<M>,
    decode: Decode<M, T>,
    backoff: Backoff,
    /// The last message that was published, to recognise a resend.
    last_raw: Option<M>,
    stream: Option<Streaming<M>>,
    health: Arc<Health>,
}

impl<M: PartialEq, T> Feed<M, T> {
    /// Reads until a message brings a new value, reconnecting as needed.
    /// Returns an error only for a fatal one, after which it must not be
    /// called again.
    async fn next(&mut self) -> Result<Published<T>, ClientError> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => match (self.open)(self.client.clone()).await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(error) => {
                        self.retry_after(error).await?;
                        continue;
                    }
                },
            };
            match stream.message().await {
                Ok(Some(message)) => {
                    // The server answers again: the next failure starts
                    // the backoff from the beginning.
                    self.backoff.reset();
                    if self.last_raw.as_ref() == Some(&message) {
                        // A resend of what is published (SPIRE sends on
                        // every cache event; a reconnect sends the full
                        // state): healthy, but nothing to tell.
                        self.health.clear();
                        continue;
                    }
                    match (self.decode)(&message) {
                        Ok(published) => {
                            self.last_raw = Some(message);
                            match &published.problem {
                                Some(problem) => self.health.set(problem.clone()),
                                None => self.health.clear(),
                            }
                            return Ok(published);
                        }
                        // W-11: discard the message, keep the stream and the
                        // last good value (as go-spiffe's watchers do).
                        Err(error) => self.health.set(error),
                    }
                }
                Ok(None) => {
                    self.stream = None;
                    self.retry_after(ClientError::StreamEnded).await?;
                }
                Err(status) => {
                    self.stream = None;
                    self.retry_after(status.into()).await?;
                }
            }
        }
    }

    /// Records `error`, then waits out the backoff, or gives up on a fatal
    /// error.
    async fn retry_after(&mut self, error: ClientError) -> Result<(), ClientError> {
        let fatal = error.is_fatal();
        self.health.set(error.clone());
        if fatal {
            return Err(error);
        }
        tokio::time::sleep(self.backoff.next_delay()).await;
        Ok(())
    }
}

/// Exponential backoff with full jitter: the n-th retry waits a uniformly
/// random time in `[0, min(max, base * 2^n)]`, so the first one is fast and
/// many workloads restarting together do not reconnect in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
            rng: seed(),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay, before jitter.
    pub(crate) fn ceiling(&self) -> Duration {
        // 2^20 times any sane base is far past any sane cap.
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.random() % nanos.saturating_add(1))
    }

    /// xorshift64: statistical quality is irrelevant here, only spread.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// A non-zero seed that differs between calls and processes.
fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64 finaliser, to spread nearby inputs.
    let mut z =
        nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z == 0 { 0x2545_F491_4F6C_DD1D } else { z }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter_and_resets() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1_000));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            ceilings.push(ceiling);
        }
        assert_eq!(
            ceilings,
            [ms(100), ms(200), ms(400), ms(800), ms(1_000), ms(1_000)]
        );
        backoff.reset();
        assert_eq!(backoff.ceiling(), ms(100));
        // Many attempts neither overflow nor exceed the cap.
        for _ in 0..100 {
            assert!(backoff.next_delay() <= ms(1_000));
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10);
        assert_ne!(seed(), seed());
    }
}
