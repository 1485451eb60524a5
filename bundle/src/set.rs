//! A federated set of bundles, one per trust domain, shared between threads.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use spiffe_id::TrustDomain;

use crate::{SpiffeBundle, next_generation};

/// An immutable view of a [`BundleSet`] at one [`version`](Snapshot::version).
///
/// Lookups are O(1) by [`TrustDomain`] or by bare name (`&str`, no
/// allocation); iteration is sorted by trust domain.
pub struct Snapshot {
    by_name: HashMap<TrustDomain, SpiffeBundle>,
    sorted: Vec<SpiffeBundle>,
    version: u64,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field(
                "trust_domains",
                &self
                    .sorted
                    .iter()
                    .map(|b| b.trust_domain())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Snapshot {
    fn from_sorted(sorted: Vec<SpiffeBundle>) -> Self {
        let by_name = sorted
            .iter()
            .map(|b| (b.trust_domain().clone(), b.clone()))
            .collect();
        Snapshot {
            by_name,
            sorted,
            version: next_generation(),
        }
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&SpiffeBundle> {
        self.by_name.get(trust_domain)
    }

    /// The bundle of the trust domain named `name` (bare, such as
    /// `example.org`), without allocating.
    pub fn get_by_name(&self, name: &str) -> Option<&SpiffeBundle> {
        self.by_name.get(name)
    }

    /// The bundles, sorted by trust domain.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &SpiffeBundle> + '_ {
        self.sorted.iter()
    }

    /// Number of trust domains.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The version of the set this snapshot shows. See
    /// [`BundleSet::version`].
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// What [`BundleSet::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// The trust domain had no bundle; now it has this one.
    Added,
    /// The previous bundle was replaced; here it is.
    Replaced(SpiffeBundle),
    /// The offered bundle equals the current one; nothing changed and the
    /// version did not move.
    Unchanged,
    /// The offered bundle's `spiffe_sequence` is lower than the current
    /// one's; it was not stored.
    Stale {
        /// The current bundle's sequence number.
        current: u64,
        /// The offered bundle's sequence number.
        offered: u64,
    },
}

/// One SPIFFE bundle per trust domain, for federation.
///
/// Readers never block: the set is an immutable [`Snapshot`] behind an
/// atomically swapped pointer (`arc-swap`), so a lookup is a few atomic
/// operations and a hash probe, whatever writers are doing. Writers copy the
/// snapshot, change the copy and swap it in; they are serialized among
/// themselves by a mutex that readers never touch. Writes are O(n) in the
/// number of trust domains, which suits federation (rare writes, many reads).
///
/// Every change gives the set a new [`version`](BundleSet::version), taken
/// from the same process-wide counter as bundle generations, so a version
/// is never reused, not even by another set.
pub struct BundleSet {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl fmt::Debug for BundleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BundleSet")
            .field(&self.current.load())
            .finish()
    }
}

impl Default for BundleSet {
    fn default() -> Self {
        Self::new()
    }
}

impl FromIterator<SpiffeBundle> for BundleSet {
    fn from_iter<I: IntoIterator<Item = SpiffeBundle>>(iter: I) -> Self {
        let set = BundleSet::new();
        set.replace_all(iter);
        set
    }
}

impl BundleSet {
    /// An empty set.
    pub fn new() -> Self {
        BundleSet {
            current: ArcSwap::from_pointee(Snapshot::from_sorted(Vec::new())),
            writer: Mutex::new(()),
        }
    }

    /// The current snapshot: a consistent view that later writes do not
    /// change.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The bundle of `trust_domain` (a clone of a cheap handle).
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<SpiffeBundle> {
        self.current.load().get(trust_domain).cloned()
    }

    /// The bundle of the trust domain named `name`, without allocating.
    pub fn get_by_name(&self, name: &str) -> Option<SpiffeBundle> {
        self.current.load().get_by_name(name).cloned()
    }

    /// The current version: it changes whenever a bundle is added, replaced
    /// or removed, and only then.
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Number of trust domains.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.current.load().is_empty()
    }

    fn write<R>(&self, f: impl FnOnce(&Snapshot) -> (Option<Vec<SpiffeBundle>>, R)) -> R {
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load();
        let (next, result) = f(&current);
        if let Some(sorted) = next {
            self.current.store(Arc::new(Snapshot::from_sorted(sorted)));
        }
        result
    }

    /// Stores `bundle` for its trust domain, unless the current bundle has a
    /// higher `spiffe_sequence` (rule B-04: the sequence increases with every
    /// change). When either bundle has no sequence number they cannot be
    /// ordered, and the new one is stored. Storing a bundle equal to the
    /// current one changes nothing.
    pub fn insert(&self, bundle: SpiffeBundle) -> InsertOutcome {
        self.insert_inner(bundle, false)
    }

    /// Stores `bundle` for its trust domain whatever its sequence number
    /// (for a trust domain that restarted its sequence, or a bundle set by
    /// an operator).
    pub fn insert_forced(&self, bundle: SpiffeBundle) -> InsertOutcome {
        self.insert_inner(bundle, true)
    }

    fn insert_inner(&self, bundle: SpiffeBundle, forced: bool) -> InsertOutcome {
        self.write(|snap| {
            let td = bundle.trust_domain();
            match snap.sorted.binary_search_by(|b| b.trust_domain().cmp(td)) {
                Err(at) => {
                    let mut next = snap.sorted.clone();
                    next.insert(at, bundle);
                    (Some(next), InsertOutcome::Added)
                }
                Ok(at) => {
                    let Some(old) = snap.sorted.get(at) else {
                        return (None, InsertOutcome::Unchanged);
                    };
                    if *old == bundle {
                        return (None, InsertOutcome::Unchanged);
                    }
                    if let (false, Some(current), Some(offered)) =
                        (forced, old.sequence(), bundle.sequence())
                    {
                        if offered < current {
                            return (None, InsertOutcome::Stale { current, offered });
                        }
                    }
                    let previous = old.clone();
                    let mut next = snap.sorted.clone();
                    if let Some(slot) = next.get_mut(at) {
                        *slot = bundle;
                    }
                    (Some(next), InsertOutcome::Replaced(previous))
                }
            }
        })
    }

    /// Removes the bundle of `trust_domain` and returns it.
    pub fn remove(&self, trust_domain: &TrustDomain) -> Option<SpiffeBundle> {
        self.write(|snap| {
            match snap
                .sorted
                .binary_search_by(|b| b.trust_domain().cmp(trust_domain))
            {
                Err(_) => (None, None),
                Ok(at) => {
                    let mut next = snap.sorted.clone();
                    let removed = next.remove(at);
                    (Some(next), Some(removed))
                }
            }
        })
    }

    /// Replaces the whole set at once with `bundles` (for example a bundle
    /// map loaded as the complete current state, rule B-17). With several
    /// bundles for one trust domain the last wins. Sequence numbers are not
    /// compared. The version changes only if the content does.
    pub fn replace_all(&self, bundles: impl IntoIterator<Item = SpiffeBundle>) {
        let mut by_td = std::collections::BTreeMap::new();
        for b in bundles {
            by_td.insert(b.trust_domain().clone(), b);
        }
        let sorted: Vec<SpiffeBundle> = by_td.into_values().collect();
        self.write(|snap| {
            if snap.sorted == sorted {
                (None, ())
            } else {
                (Some(sorted), ())
            }
        });
    }
}
