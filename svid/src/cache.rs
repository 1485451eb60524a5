//! A bounded cache of successful X509-SVID verifications.
//!
//! A server that sees the same peers again and again (one SVID per workload,
//! reconnecting many times until it rotates) spends most of a full
//! verification on signature checks whose result cannot have changed.
//! [`VerificationCache`] remembers successful verdicts and gives them back
//! without any signature check while they still hold.
//!
//! # When a cached verdict is reused
//!
//! A verdict reached at time `verified_at` for a chain is reused at time `at`
//! only if **all** of these hold; otherwise the chain is verified in full
//! (and the verdict replaced, or dropped on failure):
//!
//! 1. the presented chain is byte-for-byte the same: the key is a
//!    cryptographic digest (SHA-256 or longer, from the rustls
//!    `CryptoProvider`) of every certificate of the chain, in order and
//!    length-prefixed. A non-cryptographic hash is never used, so two chains
//!    cannot share a verdict;
//! 2. `verified_at <= at < expires_at`, where `expires_at` is
//!    [`VerifiedX509Svid::expires_at`], the earliest `notAfter` of the
//!    verified path. Checking at a time before the verdict (a clock going
//!    back, or a caller probing another instant) is a full verification; so
//!    is the last second of validity;
//! 3. the bundle source still gives, for the leaf's trust domain, the very
//!    bundle the chain was verified against: same
//!    [`generation`](spiffe_bundle::X509Bundle::generation). A new bundle
//!    for the trust domain (rotation, federation refresh, an operator's
//!    change) invalidates every verdict reached with the old one, and a
//!    trust domain that disappeared from the source fails closed (full
//!    verification, which reports [`X509SvidError::NoBundle`]).
//!
//! A failed verification is never cached, and it removes any verdict held
//! for the same chain.
//!
//! # Cost and bounds
//!
//! A hit hashes the presented chain (about a microsecond for a typical
//! chain), takes a mutex, and asks the source for one bundle to compare one
//! integer; nothing is parsed and no signature is checked. The cache holds
//! at most [`capacity`](VerificationCache::capacity) verdicts
//! ([`DEFAULT_CAPACITY`] by default). Inserting into a full cache first
//! drops verdicts that have expired, then the least recently used one (a
//! linear scan, done only after a full verification, which costs far more).
//!
//! If the crypto provider has no TLS 1.3 cipher suite to take a SHA-2 hash
//! from, nothing is cached and every call is a full verification.
//!
//! ```
//! # #[cfg(feature = "issuer")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rustls_pki_types::UnixTime;
//! use spiffe_id::{SpiffeId, TrustDomain};
//! use spiffe_svid::cache::VerificationCache;
//! use spiffe_svid::issuer::{DevCa, SvidSpec};
//!
//! let ca = DevCa::new(TrustDomain::new("example.org")?)?;
//! let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
//! let spec = SvidSpec::new(SpiffeId::parse("spiffe://example.org/web")?, t(1_000), t(2_000));
//! let svid = ca.issue(&spec)?;
//!
//! let cache = VerificationCache::new(ca.bundle())?.with_capacity(128);
//! let first = cache.verify(svid.chain(), t(1_500))?; // full verification
//! let again = cache.verify(svid.chain(), t(1_600))?; // cached verdict
//! assert_eq!(first, again);
//! assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "issuer"))]
//! # fn main() {}
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustls::crypto::CryptoProvider;
use rustls::crypto::hash::{Hash, HashAlgorithm};
use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe_bundle::X509BundleSource;
use spiffe_id::TrustDomain;

use crate::{
    VerifiedX509Svid, X509SvidError, default_crypto_provider, verify_x509_svid_with_provider,
};

/// The number of verdicts a [`VerificationCache`] keeps unless told
/// otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Counters of a [`VerificationCache`], since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from a cached verdict, without signature checks.
    pub hits: u64,
    /// Calls that ran a full verification (successful or not).
    pub misses: u64,
    /// Verdicts dropped to make room (expired ones and least recently used
    /// ones), not counting invalidations by a bundle change.
    pub evictions: u64,
}

struct Entry {
    verified: Arc<VerifiedX509Svid>,
    trust_domain: TrustDomain,
    verified_at: u64,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Box<[u8]>, Entry>,
    clock: u64,
}

/// A bundle source with a bounded cache of successful X509-SVID
/// verifications (see the [module docs](self) for the exact rules).
///
/// Methods take `&self`; the cache is shared between threads behind an
/// `Arc`.
pub struct VerificationCache<S> {
    source: S,
    provider: Arc<CryptoProvider>,
    digest: Option<&'static dyn Hash>,
    capacity: usize,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl<S> fmt::Debug for VerificationCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("caching", &self.is_caching())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S: X509BundleSource> VerificationCache<S> {
    /// A cache over `source` with the crate's
    /// [default crypto provider](crate::default_crypto_provider) and
    /// [`DEFAULT_CAPACITY`].
    ///
    /// # Errors
    ///
    /// [`X509SvidError::NoCryptoProvider`] if no provider is available.
    pub fn new(source: S) -> Result<Self, X509SvidError> {
        let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
        Ok(Self::with_provider(source, provider))
    }

    /// A cache over `source` whose full verifications use `provider`, with
    /// [`DEFAULT_CAPACITY`]. The cache key's digest also comes from
    /// `provider`: the SHA-256 of its TLS 1.3 cipher suites, or else SHA-384
    /// or SHA-512.
    pub fn with_provider(source: S, provider: Arc<CryptoProvider>) -> Self {
        // SHA-256 first: it is the cheapest of the three on CPUs with SHA
        // extensions, and a hit is mostly this hash.
        let hashes = || {
            provider
                .cipher_suites
                .iter()
                .filter_map(|suite| suite.tls13())
                .map(|suite| suite.common.hash_provider)
        };
        let digest = hashes()
            .find(|hash| hash.algorithm() == HashAlgorithm::SHA256)
            .or_else(|| {
                hashes().find(|hash| {
                    matches!(
                        hash.algorithm(),
                        HashAlgorithm::SHA384 | HashAlgorithm::SHA512
                    )
                })
            });
        VerificationCache {
            source,
            provider,
            digest,
            capacity: DEFAULT_CAPACITY,
            state: Mutex::new(State::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Sets how many verdicts are kept at most. `0` disables caching (every
    /// call is a full verification). Verdicts already held beyond the new
    /// capacity are dropped, least recently used first.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        while state.entries.len() > capacity {
            if !evict_lru(state) {
                break;
            }
        }
        self
    }

    /// Verifies `chain` (leaf first) at time `at` against the source's bundle
    /// for the leaf's trust domain, exactly as
    /// [`verify_x509_svid_with_provider`] does, unless a verdict for the same
    /// chain and the same bundle holds at `at` (see the [module docs](self)).
    ///
    /// The result is shared with the cache: a hit returns the verdict of the
    /// earlier verification (its chain, expiry and bundle generation).
    ///
    /// # Errors
    ///
    /// As [`verify_x509_svid_with_provider`]. Errors are never cached.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        at: UnixTime,
    ) -> Result<Arc<VerifiedX509Svid>, X509SvidError> {
        let key = match self.digest {
            Some(digest) if self.capacity > 0 && !chain.is_empty() => {
                Some(chain_key(digest, chain))
            }
            _ => None,
        };
        let now = at.as_secs();

        if let Some(key) = &key {
            if let Some(verified) = self.lookup(key, now) {
                return Ok(verified);
            }
        }

        self.misses.fetch_add(1, Ordering::Relaxed);
        let result = verify_x509_svid_with_provider(chain, &self.source, at, &self.provider);
        let Some(key) = key else {
            return result.map(Arc::new);
        };
        match result {
            Ok(verified) => {
                let verified = Arc::new(verified);
                self.insert(key, Arc::clone(&verified), now);
                Ok(verified)
            }
            Err(error) => {
                self.lock().entries.remove(&key);
                Err(error)
            }
        }
    }

    /// A cached verdict for `key` that holds at `now` with the source's
    /// current bundle; a verdict made stale by a bundle change is dropped.
    fn lookup(&self, key: &[u8], now: u64) -> Option<Arc<VerifiedX509Svid>> {
        let (verified, trust_domain) = {
            let mut state = self.lock();
            state.clock += 1;
            let clock = state.clock;
            let entry = state.entries.get_mut(key)?;
            if !(entry.verified_at <= now && now < entry.verified.expires_at().as_secs()) {
                return None;
            }
            entry.last_used = clock;
            (Arc::clone(&entry.verified), entry.trust_domain.clone())
        };
        // The source is asked without holding the lock: it may be slow, or
        // itself use this cache.
        let current = self
            .source
            .x509_bundle_for(&trust_domain)
            .map(|bundle| bundle.generation());
        if current == Some(verified.bundle_generation()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(verified);
        }
        let mut state = self.lock();
        if state
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.verified, &verified))
        {
            state.entries.remove(key);
        }
        None
    }

    fn insert(&self, key: Box<[u8]>, verified: Arc<VerifiedX509Svid>, now: u64) {
        let mut state = self.lock();
        state.clock += 1;
        let clock = state.clock;
        if !state.entries.contains_key(&key) && state.entries.len() >= self.capacity {
            let before = state.entries.len();
            state
                .entries
                .retain(|_, e| now < e.verified.expires_at().as_secs());
            let mut evicted = before - state.entries.len();
            while state.entries.len() >= self.capacity && evict_lru(&mut state) {
                evicted += 1;
            }
            self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        }
        let trust_domain = verified.spiffe_id().trust_domain();
        state.entries.insert(
            key,
            Entry {
                verified,
                trust_domain,
                verified_at: now,
                last_used: clock,
            },
        );
    }
}

impl<S> VerificationCache<S> {
    /// The bundle source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The crypto provider of full verifications.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The maximum number of verdicts kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether verdicts are cached at all: the capacity is not zero and the
    /// provider offers a SHA-2 hash for the key.
    pub fn is_caching(&self) -> bool {
        self.capacity > 0 && self.digest.is_some()
    }

    /// The number of verdicts held (some may be stale, and are dropped when
    /// next looked up or when room is needed).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no verdict is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every verdict (for example after a policy change that should
    /// re-verify every peer).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Hit, miss and eviction counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and every update
        // leaves the map consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops the least recently used verdict; `false` if there was none.
fn evict_lru(state: &mut State) -> bool {
    let oldest = state
        .entries
        .iter()
        .min_by_key(|(_, e)| e.last_used)
        .map(|(k, _)| k.clone());
    match oldest {
        Some(key) => state.entries.remove(&key).is_some(),
        None => false,
    }
}

/// The digest of the whole chain: a domain-separation label, then each
/// certificate as its 8-byte big-endian length and its DER.
fn chain_key(digest: &dyn Hash, chain: &[CertificateDer<'_>]) -> Box<[u8]> {
    let mut ctx = digest.start();
    ctx.update(b"spiffe-svid verification cache v1\0");
    for cert in chain {
        ctx.update(&(cert.len() as u64).to_be_bytes());
        ctx.update(cert.as_ref());
    }
    Box::from(ctx.finish().as_ref())
}
