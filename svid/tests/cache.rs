//! `VerificationCache`: hits skip signature checks (observed by counting the
//! crypto provider's signature verifications), the validity window and the
//! verification time bound reuse, a bundle change invalidates, the size is
//! bounded, and failures are never cached.
#![cfg(feature = "issuer")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{NOW, T0, T1, ca, id, t, td};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
};
use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle, X509Bundle};
use spiffe_svid::cache::{DEFAULT_CAPACITY, VerificationCache};
use spiffe_svid::issuer::{DevCa, IssuedSvid, SvidSpec};
use spiffe_svid::{X509SvidError, default_crypto_provider};

/// A signature algorithm that counts its calls and delegates.
#[derive(Debug)]
struct Counting {
    inner: &'static dyn SignatureVerificationAlgorithm,
    calls: &'static AtomicUsize,
}

impl SignatureVerificationAlgorithm for Counting {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.verify_signature(public_key, message, signature)
    }
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }
}

/// The default provider with every certificate signature check counted.
fn counting_provider() -> (Arc<CryptoProvider>, &'static AtomicUsize) {
    let calls: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let base = default_crypto_provider().unwrap();
    let all: Vec<&'static dyn SignatureVerificationAlgorithm> = base
        .signature_verification_algorithms
        .all
        .iter()
        .map(|inner| {
            let wrapped: &'static dyn SignatureVerificationAlgorithm =
                Box::leak(Box::new(Counting {
                    inner: *inner,
                    calls,
                }));
            wrapped
        })
        .collect();
    let mut provider = (*base).clone();
    provider.signature_verification_algorithms = WebPkiSupportedAlgorithms {
        all: Box::leak(all.into_boxed_slice()),
        mapping: base.signature_verification_algorithms.mapping,
    };
    (Arc::new(provider), calls)
}

fn issue(ca: &DevCa, spiffe_id: &str) -> IssuedSvid {
    ca.issue(&SvidSpec::new(id(spiffe_id), t(T0), t(T1)))
        .unwrap()
}

fn spiffe_bundle(x509: X509Bundle) -> SpiffeBundle {
    spiffe_bundle_seq(x509, None)
}

fn spiffe_bundle_seq(x509: X509Bundle, sequence: Option<u64>) -> SpiffeBundle {
    let td = x509.trust_domain().clone();
    SpiffeBundle::new(x509, JwtBundle::empty(td), sequence, None).unwrap()
}

#[test]
fn hit_skips_signature_verification() {
    let (provider, calls) = counting_provider();
    let ca = ca("example.org");
    let svid = issue(&ca, "spiffe://example.org/web");
    let cache = VerificationCache::with_provider(ca.bundle(), provider);
    assert!(cache.is_caching());
    assert_eq!(cache.capacity(), DEFAULT_CAPACITY);

    let first = cache.verify(svid.chain(), t(NOW)).unwrap();
    let full_checks = calls.load(Ordering::SeqCst);
    assert!(full_checks >= 1, "a full verification checks signatures");

    for offset in 0..10 {
        let again = cache.verify(svid.chain(), t(NOW + offset)).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the cached verdict is returned"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        full_checks,
        "hits check no signature"
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (10, 1));
    assert_eq!(cache.len(), 1);
}

#[test]
fn expiry_is_respected() {
    let ca = ca("example.org");
    let svid = issue(&ca, "spiffe://example.org/web");
    let cache = VerificationCache::new(ca.bundle()).unwrap();
    let verified = cache.verify(svid.chain(), t(NOW)).unwrap();
    assert_eq!(verified.expires_at(), t(T1));

    // Just before expiry: a hit.
    cache.verify(svid.chain(), t(T1 - 1)).unwrap();
    assert_eq!(cache.stats().hits, 1);
    // At notAfter (still valid, inclusive): not reused, verified in full.
    cache.verify(svid.chain(), t(T1)).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 2));
    // After expiry: the full verification reports it, and the verdict is gone.
    let err = cache.verify(svid.chain(), t(T1 + 1)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::Expired {
            at: T1 + 1,
            not_after: T1
        }
    );
    assert!(cache.is_empty());
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 3));
}

#[test]
fn no_reuse_before_the_verification_time() {
    let ca = ca("example.org");
    let svid = issue(&ca, "spiffe://example.org/web");
    let cache = VerificationCache::new(ca.bundle()).unwrap();
    cache.verify(svid.chain(), t(NOW)).unwrap();

    // Earlier than the cached verdict, before notBefore: verified in full.
    let err = cache.verify(svid.chain(), t(T0 - 1)).unwrap_err();
    assert_eq!(
        err,
        X509SvidError::NotYetValid {
            at: T0 - 1,
            not_before: T0
        }
    );
    assert_eq!(cache.stats().hits, 0);
    // Earlier but valid: verified in full again (and re-cached from there).
    cache.verify(svid.chain(), t(T0)).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (0, 3));
    cache.verify(svid.chain(), t(NOW)).unwrap();
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn bundle_change_invalidates() {
    let (provider, calls) = counting_provider();
    let ca = ca("example.org");
    let svid = issue(&ca, "spiffe://example.org/web");
    let set = Arc::new(BundleSet::new());
    set.insert(spiffe_bundle(ca.bundle()));
    let cache = VerificationCache::with_provider(Arc::clone(&set), provider);

    let first = cache.verify(svid.chain(), t(NOW)).unwrap();
    cache.verify(svid.chain(), t(NOW)).unwrap();
    assert_eq!(cache.stats().hits, 1);

    // Same CA, but a new bundle value (a refresh with a new sequence
    // number): a new generation, so the verdict is not reused.
    let before = calls.load(Ordering::SeqCst);
    set.insert(spiffe_bundle_seq(ca.bundle(), Some(2)));
    let second = cache.verify(svid.chain(), t(NOW)).unwrap();
    assert!(calls.load(Ordering::SeqCst) > before, "verified in full");
    assert_ne!(first.bundle_generation(), second.bundle_generation());
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 2));
    cache.verify(svid.chain(), t(NOW)).unwrap();
    assert_eq!(cache.stats().hits, 2);

    // The trust domain's CA is rotated out: the cached verdict must not
    // outlive it.
    let other = DevCa::new(td("example.org")).unwrap();
    set.insert_forced(spiffe_bundle(other.bundle()));
    assert_eq!(
        cache.verify(svid.chain(), t(NOW)).unwrap_err(),
        X509SvidError::UnknownIssuer
    );
    assert!(cache.is_empty());

    // Back to the right CA, then the trust domain disappears: fail closed.
    set.insert_forced(spiffe_bundle(ca.bundle()));
    cache.verify(svid.chain(), t(NOW)).unwrap();
    set.remove(&td("example.org"));
    assert_eq!(
        cache.verify(svid.chain(), t(NOW)).unwrap_err(),
        X509SvidError::NoBundle {
            trust_domain: td("example.org")
        }
    );
    assert_eq!(cache.stats().hits, 2);
}

#[test]
fn size_is_bounded_and_least_recently_used_is_evicted() {
    let ca = ca("example.org");
    let svids: Vec<IssuedSvid> = (0..5)
        .map(|i| issue(&ca, &format!("spiffe://example.org/w{i}")))
        .collect();
    let cache = VerificationCache::new(ca.bundle())
        .unwrap()
        .with_capacity(2);

    cache.verify(svids[0].chain(), t(NOW)).unwrap();
    cache.verify(svids[1].chain(), t(NOW)).unwrap();
    cache.verify(svids[0].chain(), t(NOW)).unwrap(); // 0 is now more recent
    cache.verify(svids[2].chain(), t(NOW)).unwrap(); // evicts 1
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().evictions, 1);

    let hits = cache.stats().hits;
    cache.verify(svids[0].chain(), t(NOW)).unwrap();
    cache.verify(svids[2].chain(), t(NOW)).unwrap();
    assert_eq!(cache.stats().hits, hits + 2, "0 and 2 are kept");
    cache.verify(svids[1].chain(), t(NOW)).unwrap();
    assert_eq!(cache.stats().hits, hits + 2, "1 was evicted");

    for svid in &svids {
        cache.verify(svid.chain(), t(NOW)).unwrap();
        assert!(cache.len() <= 2);
    }
}

#[test]
fn full_cache_drops_expired_verdicts_first() {
    let ca = ca("example.org");
    let short = ca
        .issue(&SvidSpec::new(
            id("spiffe://example.org/short"),
            t(T0),
            t(NOW + 10),
        ))
        .unwrap();
    let long_a = issue(&ca, "spiffe://example.org/a");
    let long_b = issue(&ca, "spiffe://example.org/b");
    let cache = VerificationCache::new(ca.bundle())
        .unwrap()
        .with_capacity(2);

    cache.verify(long_a.chain(), t(NOW)).unwrap();
    cache.verify(short.chain(), t(NOW)).unwrap(); // most recently used
    cache.verify(long_b.chain(), t(NOW + 20)).unwrap(); // `short` has expired
    let hits = cache.stats().hits;
    cache.verify(long_a.chain(), t(NOW + 21)).unwrap();
    assert_eq!(
        cache.stats().hits,
        hits + 1,
        "the expired verdict went first"
    );
}

#[test]
fn zero_capacity_disables_caching() {
    let ca = ca("example.org");
    let svid = issue(&ca, "spiffe://example.org/web");
    let cache = VerificationCache::new(ca.bundle())
        .unwrap()
        .with_capacity(0);
    assert!(!cache.is_caching());
    cache.verify(svid.chain(), t(NOW)).unwrap();
    cache.verify(svid.chain(), t(NOW)).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (0, 2));
    assert!(cache.is_empty());
}

#[test]
fn failed_chain_is_never_cached() {
    let (provider, calls) = counting_provider();
    let ca = ca("example.org");
    let rogue = DevCa::new(td("example.org")).unwrap();
    let svid = issue(&rogue, "spiffe://example.org/web");
    let cache = VerificationCache::with_provider(ca.bundle(), provider);

    for _ in 0..3 {
        assert_eq!(
            cache.verify(svid.chain(), t(NOW)).unwrap_err(),
            X509SvidError::UnknownIssuer
        );
        assert!(cache.is_empty());
    }
    assert_eq!((cache.stats().hits, cache.stats().misses), (0, 3));

    // A valid leaf whose chain fails at the later time is not served from
    // the verdict of the earlier time either.
    let good = issue(&ca, "spiffe://example.org/web");
    cache.verify(good.chain(), t(NOW)).unwrap();
    assert!(cache.verify(good.chain(), t(T1 + 1)).is_err());
    assert!(cache.is_empty());
    let before = calls.load(Ordering::SeqCst);
    cache.verify(good.chain(), t(NOW)).unwrap();
    assert!(
        calls.load(Ordering::SeqCst) > before,
        "verified in full again"
    );
}

#[test]
fn key_covers_the_whole_chain() {
    let root = ca("example.org");
    let inter = root.intermediate(&Default::default()).unwrap();
    let svid = inter
        .issue(&SvidSpec::new(id("spiffe://example.org/web"), t(T0), t(T1)))
        .unwrap();
    let cache = VerificationCache::new(root.bundle()).unwrap();
    cache.verify(svid.chain(), t(NOW)).unwrap();

    // The same leaf with the root appended is another chain: verified on
    // its own, not served from the first verdict.
    let mut longer: Vec<CertificateDer<'static>> = svid.chain().to_vec();
    longer.push(root.root_certificate().clone());
    cache.verify(&longer, t(NOW)).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (0, 2));

    // The leaf alone (intermediate missing) fails, and must not hit either.
    assert_eq!(
        cache.verify(&svid.chain()[..1], t(NOW)).unwrap_err(),
        X509SvidError::UnknownIssuer
    );
    assert_eq!(cache.stats().hits, 0);
    assert_eq!(cache.len(), 2);
}

#[test]
fn empty_chain_is_rejected() {
    let ca = ca("example.org");
    let cache = VerificationCache::new(ca.bundle()).unwrap();
    assert_eq!(
        cache.verify(&[], t(NOW)).unwrap_err(),
        X509SvidError::EmptyChain
    );
    assert!(cache.is_empty());
}

#[test]
fn shared_between_threads() {
    let ca = ca("example.org");
    let svids: Vec<IssuedSvid> = (0..4)
        .map(|i| issue(&ca, &format!("spiffe://example.org/w{i}")))
        .collect();
    let cache = Arc::new(
        VerificationCache::new(ca.bundle())
            .unwrap()
            .with_capacity(3),
    );
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let cache = Arc::clone(&cache);
            let svids = &svids;
            scope.spawn(move || {
                for round in 0..50 {
                    let svid = &svids[(thread + round) % svids.len()];
                    let verified = cache.verify(svid.chain(), t(NOW)).unwrap();
                    assert_eq!(verified.chain()[0], svid.chain()[0]);
                }
            });
        }
    });
    assert!(cache.len() <= 3);
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, 200);
}
