//! An [`IdentityProvider`] that maps callers to registration entries by
//! their Unix user and group, with SVIDs and bundles updated at runtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rustls_pki_types::UnixTime;
use spiffe_bundle::{JwtBundle, X509Bundle};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::{JwtSvid, X509Svid};
use tokio::sync::watch;

use super::Caller;
use super::provider::{IdentityProvider, ProviderError, Published, Updates};
use crate::{
    ContextError, HintedX509Svid, JwtBundles, JwtSvidToken, MAX_HINT_LEN, X509Bundles, X509Context,
};

/// A property of a caller that a [`RegistrationEntry`] can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Selector {
    /// The Unix user ID the process connected with.
    Uid(u32),
    /// The Unix group ID the process connected with.
    Gid(u32),
}

impl Selector {
    fn matches(self, caller: CallerKey) -> bool {
        match self {
            Selector::Uid(uid) => caller.uid == Some(uid),
            Selector::Gid(gid) => caller.gid == Some(gid),
        }
    }
}

/// What the provider knows of a caller: all that selection looks at, and
/// the key under which callers share one set of subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CallerKey {
    uid: Option<u32>,
    gid: Option<u32>,
}

impl CallerKey {
    fn of(caller: &Caller) -> Self {
        CallerKey {
            uid: caller.uid(),
            gid: caller.gid(),
        }
    }
}

/// An identity and the callers entitled to it: a caller matches when it
/// has **every** selector of the entry (an entry without selectors matches
/// nobody), as SPIRE matches registration entries.
#[derive(Clone, Debug)]
pub struct RegistrationEntry {
    id: String,
    selectors: BTreeSet<Selector>,
    svid: X509Svid,
    hint: Option<String>,
    // `None`: every federated trust domain's bundles.
    federates_with: Option<BTreeSet<TrustDomain>>,
}

impl RegistrationEntry {
    /// An entry named `id` (entries are served in `id` order, so the
    /// default identity of a caller is its matching entry with the smallest
    /// `id`, as SPIRE orders by entry ID) that gives `svid` to callers with
    /// all of `selectors`.
    pub fn new(
        id: impl Into<String>,
        selectors: impl IntoIterator<Item = Selector>,
        svid: X509Svid,
    ) -> Self {
        RegistrationEntry {
            id: id.into(),
            selectors: selectors.into_iter().collect(),
            svid,
            hint: None,
            federates_with: None,
        }
    }

    /// This entry with the federated trust domains its callers get the
    /// bundles of, as SPIRE's `federates_with`: a caller is served the own
    /// trust domain's bundles, those of its SVIDs' trust domains, and those
    /// of the trust domains its matching entries federate with. An empty
    /// list means no federated bundle. Without this call an entry federates
    /// with every trust domain the provider holds a bundle of.
    #[must_use]
    pub fn with_federates_with(
        mut self,
        trust_domains: impl IntoIterator<Item = TrustDomain>,
    ) -> Self {
        self.federates_with = Some(trust_domains.into_iter().collect());
        self
    }

    /// The federated trust domains this entry's callers get the bundles
    /// of; `None` for all of them.
    pub fn federates_with(&self) -> Option<&BTreeSet<TrustDomain>> {
        self.federates_with.as_ref()
    }

    /// This entry with a hint (an empty hint means none).
    ///
    /// # Errors
    ///
    /// [`ContextError::HintTooLong`] past [`MAX_HINT_LEN`] bytes (W-32).
    pub fn with_hint(mut self, hint: &str) -> Result<Self, ContextError> {
        if hint.len() > MAX_HINT_LEN {
            return Err(ContextError::HintTooLong { len: hint.len() });
        }
        self.hint = Some(hint.to_owned()).filter(|h| !h.is_empty());
        Ok(self)
    }

    /// The entry's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The SPIFFE ID it gives.
    pub fn spiffe_id(&self) -> &SpiffeId {
        self.svid.spiffe_id()
    }

    /// Its current SVID.
    pub fn svid(&self) -> &X509Svid {
        &self.svid
    }

    /// Its hint.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    fn matches(&self, caller: CallerKey) -> bool {
        !self.selectors.is_empty() && self.selectors.iter().all(|s| s.matches(caller))
    }
}

/// Mints a JWT-SVID for a SPIFFE ID and audience: `(id, audience) -> token`.
/// The minter chooses the key, algorithm and lifetime.
pub type JwtMinter = dyn Fn(&SpiffeId, &[String]) -> Result<String, ProviderError> + Send + Sync;

/// A simple [`IdentityProvider`]: registration entries selected by the
/// caller's Unix uid and gid, each holding its current X.509-SVID, plus the
/// bundles of the own and federated trust domains. For tests, development
/// and a local agent.
///
/// Changes ([`SelectorIdentityProvider::update`] and the shortcuts built on
/// it) are pushed to every open stream at once: callers with the same uid
/// and gid share one [`watch`] channel per kind of stream, and a change is
/// published only to the callers it affects.
///
/// Serving rules:
///
/// - X.509 context: the matching entries' SVIDs, in entry-ID order; of two
///   entries with the same non-empty hint only the first is served (W-15);
///   entries whose trust domain has no X.509 bundle are left out. The
///   bundles are the own trust domain's, those of the served SVIDs' trust
///   domains, and the federated ones the matching entries
///   [federate with](RegistrationEntry::with_federates_with) (all of them
///   when an entry has no such list).
/// - Bundles (X.509 and JWT): the same trust domains to callers with an
///   identity. To
///   other callers, `PermissionDenied`, or only the own trust domain's with
///   [`SelectorIdentityProvider::allow_unauthenticated_verifiers`] (W6).
///   The own trust domain is always present (an empty JWT bundle until one
///   is set, W-23).
/// - JWT-SVIDs: minted by the [`JwtMinter`] given to
///   [`SelectorIdentityProvider::with_jwt_minter`]; without one, the call
///   fails with `Unavailable`. As the SPIRE agent does (W7), a minted token
///   is reused for the same SPIFFE ID and audience until half its lifetime
///   has passed, so a busy caller does not cost a signature per call; at
///   most [`JWT_CACHE_CAPACITY`] tokens are kept.
/// - Callers on TCP have no uid or gid, so they match no entry.
pub struct SelectorIdentityProvider {
    trust_domain: TrustDomain,
    minter: Option<Arc<JwtMinter>>,
    jwt_cache: Mutex<HashMap<(SpiffeId, Vec<String>), CachedToken>>,
    allow_unauthenticated_verifiers: bool,
    state: Mutex<State>,
}

impl fmt::Debug for SelectorIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SelectorIdentityProvider");
        out.field("trust_domain", &self.trust_domain);
        // `try_lock`: Debug may be called from inside `update`.
        if let Ok(state) = self.state.try_lock() {
            out.field("entries", &state.entries.keys().collect::<Vec<_>>())
                .field("x509_bundles", &state.x509_bundles.len())
                .field("jwt_bundles", &state.jwt_bundles.len())
                .field("subscribed_callers", &state.watchers.len());
        }
        out.finish_non_exhaustive()
    }
}

/// Most JWT-SVIDs a [`SelectorIdentityProvider`] keeps for reuse.
pub const JWT_CACHE_CAPACITY: usize = 4096;

/// A minted token and when to mint a new one instead.
struct CachedToken {
    token: Arc<str>,
    refresh_at: SystemTime,
}

struct State {
    // Entry ID -> entry and the version it was last changed at.
    entries: BTreeMap<String, (RegistrationEntry, u64)>,
    x509_bundles: X509Bundles,
    jwt_bundles: JwtBundles,
    // The version bundles were last changed at.
    bundles_version: u64,
    next_version: u64,
    watchers: HashMap<CallerKey, Watchers>,
}

/// The channels shared by all callers with one key, and what their values
/// were computed from.
struct Watchers {
    fingerprint: Fingerprint,
    x509: watch::Sender<Published<X509Context>>,
    x509_bundles: watch::Sender<Published<X509Bundles>>,
    jwt_bundles: watch::Sender<Published<JwtBundles>>,
}

impl Watchers {
    fn unused(&self) -> bool {
        self.x509.receiver_count() == 0
            && self.x509_bundles.receiver_count() == 0
            && self.jwt_bundles.receiver_count() == 0
    }
}

/// The bundles' version and the matching entries with their versions: the
/// values of a caller key change exactly when this does.
#[derive(Clone, PartialEq, Eq)]
struct Fingerprint {
    bundles_version: u64,
    entries: Vec<u64>,
}

/// The entries and bundles of a [`SelectorIdentityProvider`], changed
/// inside [`SelectorIdentityProvider::update`].
pub struct Registrations<'a> {
    own: &'a TrustDomain,
    state: &'a mut State,
}

impl fmt::Debug for Registrations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrations")
            .field("entries", &self.state.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Registrations<'_> {
    fn bump(&mut self) -> u64 {
        self.state.next_version += 1;
        self.state.next_version
    }

    /// Adds an entry, or replaces the one with the same ID (a rotation).
    pub fn set_entry(&mut self, entry: RegistrationEntry) {
        let version = self.bump();
        self.state
            .entries
            .insert(entry.id.clone(), (entry, version));
    }

    /// Removes the entry with this ID; whether there was one.
    pub fn remove_entry(&mut self, id: &str) -> bool {
        self.state.entries.remove(id).is_some()
    }

    /// The entry with this ID.
    pub fn entry(&self, id: &str) -> Option<&RegistrationEntry> {
        self.state.entries.get(id).map(|(e, _)| e)
    }

    /// The X.509 bundle of a trust domain.
    pub fn x509_bundle(&self, trust_domain: &TrustDomain) -> Option<&X509Bundle> {
        self.state.x509_bundles.get(trust_domain)
    }

    /// The JWT bundle of a trust domain.
    pub fn jwt_bundle(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        self.state.jwt_bundles.get(trust_domain)
    }

    /// Adds or replaces the X.509 bundle of its trust domain (own or
    /// federated).
    pub fn set_x509_bundle(&mut self, bundle: X509Bundle) {
        self.state.bundles_version = self.bump();
        self.state.x509_bundles.insert(bundle);
    }

    /// Adds or replaces the JWT bundle of its trust domain.
    pub fn set_jwt_bundle(&mut self, bundle: JwtBundle) {
        self.state.bundles_version = self.bump();
        self.state.jwt_bundles.insert(bundle);
    }

    /// Removes the X.509 and JWT bundles of a federated trust domain; the
    /// own trust domain's cannot be removed, only replaced. Whether
    /// anything was removed.
    pub fn remove_federated_bundles(&mut self, trust_domain: &TrustDomain) -> bool {
        if trust_domain == self.own {
            return false;
        }
        let keep_x509: X509Bundles = self
            .state
            .x509_bundles
            .iter()
            .filter(|b| b.trust_domain() != trust_domain)
            .cloned()
            .collect();
        let keep_jwt: JwtBundles = self
            .state
            .jwt_bundles
            .iter()
            .filter(|b| b.trust_domain() != trust_domain)
            .cloned()
            .collect();
        let removed = keep_x509.len() != self.state.x509_bundles.len()
            || keep_jwt.len() != self.state.jwt_bundles.len();
        if removed {
            self.state.x509_bundles = keep_x509;
            self.state.jwt_bundles = keep_jwt;
            self.state.bundles_version = self.bump();
        }
        removed
    }
}

impl SelectorIdentityProvider {
    /// A provider for the trust domain of `own_bundle`, with no entries.
    pub fn new(own_bundle: X509Bundle) -> Self {
        let trust_domain = own_bundle.trust_domain().clone();
        let mut x509_bundles = X509Bundles::new();
        x509_bundles.insert(own_bundle);
        SelectorIdentityProvider {
            trust_domain,
            minter: None,
            jwt_cache: Mutex::new(HashMap::new()),
            allow_unauthenticated_verifiers: false,
            state: Mutex::new(State {
                entries: BTreeMap::new(),
                x509_bundles,
                jwt_bundles: JwtBundles::new(),
                bundles_version: 0,
                next_version: 0,
                watchers: HashMap::new(),
            }),
        }
    }

    /// A cached token for `id` and `audience` younger than half its
    /// lifetime, or a newly minted one (then cached).
    fn cached_or_minted(
        &self,
        minter: &JwtMinter,
        id: &SpiffeId,
        audience: &[String],
    ) -> Result<Arc<str>, ProviderError> {
        let mut key_audience = audience.to_vec();
        key_audience.sort();
        key_audience.dedup();
        let key = (id.clone(), key_audience);
        let now = SystemTime::now();
        if let Some(hit) = lock_cache(&self.jwt_cache).get(&key) {
            if now < hit.refresh_at {
                return Ok(hit.token.clone());
            }
        }
        let token: Arc<str> = minter(id, audience)?.into();
        // The minter's own token is trusted; only its expiry is read.
        let audiences: Vec<&str> = audience.iter().map(String::as_str).collect();
        let refresh_at = JwtSvid::parse_insecure(&token, &audiences, UnixTime::now())
            .ok()
            .and_then(|svid| svid.expiry().duration_since(now).ok())
            .map(|lifetime| now + lifetime / 2);
        if let Some(refresh_at) = refresh_at {
            let mut cache = lock_cache(&self.jwt_cache);
            if cache.len() >= JWT_CACHE_CAPACITY {
                cache.retain(|_, cached| now < cached.refresh_at);
                if cache.len() >= JWT_CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                CachedToken {
                    token: token.clone(),
                    refresh_at,
                },
            );
        }
        Ok(token)
    }

    /// This provider minting JWT-SVIDs with `minter`.
    #[must_use]
    pub fn with_jwt_minter(
        mut self,
        minter: impl Fn(&SpiffeId, &[String]) -> Result<String, ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.minter = Some(Arc::new(minter));
        self
    }

    /// Whether callers without an identity get the own trust domain's
    /// bundles (SPIRE's `allow_unauthenticated_verifiers`, W6). Off by
    /// default: they get `PermissionDenied`.
    #[must_use]
    pub fn allow_unauthenticated_verifiers(mut self, allow: bool) -> Self {
        self.allow_unauthenticated_verifiers = allow;
        self
    }

    /// The own trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every change is a single insert or replace), so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies several changes at once, then publishes the result: each
    /// open stream whose caller is affected gets one new message, however
    /// many changes `change` made. Returns what `change` returns.
    pub fn update<R>(&self, change: impl FnOnce(&mut Registrations<'_>) -> R) -> R {
        let mut state = self.lock();
        let result = change(&mut Registrations {
            own: &self.trust_domain,
            state: &mut state,
        });
        // Forget callers nobody listens to any more, then refresh the rest.
        state.watchers.retain(|_, w| !w.unused());
        let keys: Vec<CallerKey> = state.watchers.keys().copied().collect();
        for key in keys {
            let fingerprint = state.fingerprint(key);
            if state
                .watchers
                .get(&key)
                .is_some_and(|w| w.fingerprint == fingerprint)
            {
                continue;
            }
            let values = self.values(&state, key);
            if let Some(w) = state.watchers.get_mut(&key) {
                w.fingerprint = fingerprint;
                // `send_replace` stores the value even when no receiver is
                // left, so a later subscriber sees it; the old value goes.
                drop(w.x509.send_replace(values.0));
                drop(w.x509_bundles.send_replace(values.1));
                drop(w.jwt_bundles.send_replace(values.2));
            }
        }
        result
    }

    /// Adds an entry or replaces the one with the same ID (a rotation), and
    /// publishes the change.
    pub fn set_entry(&self, entry: RegistrationEntry) {
        self.update(|r| r.set_entry(entry));
    }

    /// Removes an entry and publishes the change; whether it existed.
    pub fn remove_entry(&self, id: &str) -> bool {
        self.update(|r| r.remove_entry(id))
    }

    /// Adds or replaces an X.509 bundle and publishes the change.
    pub fn set_x509_bundle(&self, bundle: X509Bundle) {
        self.update(|r| r.set_x509_bundle(bundle));
    }

    /// Adds or replaces a JWT bundle and publishes the change.
    pub fn set_jwt_bundle(&self, bundle: JwtBundle) {
        self.update(|r| r.set_jwt_bundle(bundle));
    }

    /// The three values of a caller key.
    fn values(
        &self,
        state: &State,
        key: CallerKey,
    ) -> (
        Published<X509Context>,
        Published<X509Bundles>,
        Published<JwtBundles>,
    ) {
        let svids = state.served_entries(key);
        let has_identity = !svids.is_empty();
        let visible = Visible::of(&self.trust_domain, &svids);
        let x509_bundles: X509Bundles = state
            .x509_bundles
            .iter()
            .filter(|b| visible.shows(b.trust_domain()))
            .cloned()
            .collect();
        let jwt_bundles: JwtBundles = state
            .jwt_bundles
            .iter()
            .filter(|b| visible.shows(b.trust_domain()))
            .cloned()
            .collect();
        let x509 = if has_identity {
            let svids = svids
                .into_iter()
                .map(|e| HintedX509Svid::new(e.svid.clone(), e.hint.as_deref()))
                .collect();
            X509Context::new(svids, x509_bundles.clone())
                .map(Arc::new)
                .map_err(|e| ProviderError::Unavailable {
                    reason: format!("inconsistent registration: {e}"),
                })
        } else {
            Err(ProviderError::NoIdentity)
        };
        let (x509_bundles, jwt_bundles) = if has_identity {
            (
                Ok(Arc::new(x509_bundles)),
                Ok(Arc::new(self.jwt_bundles_with_own(&jwt_bundles))),
            )
        } else if self.allow_unauthenticated_verifiers {
            let own_x509: X509Bundles = state
                .x509_bundles
                .get(&self.trust_domain)
                .cloned()
                .into_iter()
                .collect();
            let own_jwt: JwtBundles = state
                .jwt_bundles
                .get(&self.trust_domain)
                .cloned()
                .into_iter()
                .collect();
            (
                Ok(Arc::new(own_x509)),
                Ok(Arc::new(self.jwt_bundles_with_own(&own_jwt))),
            )
        } else {
            (
                Err(ProviderError::NoIdentity),
                Err(ProviderError::NoIdentity),
            )
        };
        (x509, x509_bundles, jwt_bundles)
    }

    /// `bundles`, with an empty own-trust-domain bundle if it has none
    /// (W-23: the own trust domain is always listed).
    fn jwt_bundles_with_own(&self, bundles: &JwtBundles) -> JwtBundles {
        let mut bundles = bundles.clone();
        if bundles.get(&self.trust_domain).is_none() {
            bundles.insert(JwtBundle::empty(self.trust_domain.clone()));
        }
        bundles
    }

    /// The watchers of `caller`, created on first use.
    fn watchers<R>(&self, caller: &Caller, pick: impl FnOnce(&Watchers) -> R) -> R {
        let key = CallerKey::of(caller);
        let mut state = self.lock();
        if let Some(w) = state.watchers.get(&key) {
            return pick(w);
        }
        let fingerprint = state.fingerprint(key);
        let (x509, x509_bundles, jwt_bundles) = self.values(&state, key);
        let watchers = state.watchers.entry(key).or_insert(Watchers {
            fingerprint,
            x509: watch::Sender::new(x509),
            x509_bundles: watch::Sender::new(x509_bundles),
            jwt_bundles: watch::Sender::new(jwt_bundles),
        });
        pick(watchers)
    }
}

/// The trust domains whose bundles a caller is shown.
enum Visible {
    /// Every one (an entry without a `federates_with` list).
    All,
    /// These.
    Only(BTreeSet<TrustDomain>),
}

impl Visible {
    fn of(own: &TrustDomain, served: &[&RegistrationEntry]) -> Self {
        let mut only = BTreeSet::from([own.clone()]);
        for entry in served {
            let Some(federates_with) = &entry.federates_with else {
                return Visible::All;
            };
            only.insert(entry.spiffe_id().trust_domain());
            only.extend(federates_with.iter().cloned());
        }
        Visible::Only(only)
    }

    fn shows(&self, trust_domain: &TrustDomain) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(only) => only.contains(trust_domain),
        }
    }
}

impl State {
    /// The entries served to `key`: matching, with a bundle for their trust
    /// domain, and without a hint already taken by an earlier entry.
    fn served_entries(&self, key: CallerKey) -> Vec<&RegistrationEntry> {
        let mut hints: BTreeSet<&str> = BTreeSet::new();
        self.entries
            .values()
            .map(|(e, _)| e)
            .filter(|e| e.matches(key))
            .filter(|e| {
                self.x509_bundles
                    .get(&e.spiffe_id().trust_domain())
                    .is_some()
            })
            .filter(|e| e.hint.as_deref().is_none_or(|h| hints.insert(h)))
            .collect()
    }

    fn fingerprint(&self, key: CallerKey) -> Fingerprint {
        Fingerprint {
            bundles_version: self.bundles_version,
            entries: self
                .entries
                .values()
                .filter(|(e, _)| e.matches(key))
                .map(|(_, v)| *v)
                .collect(),
        }
    }
}

impl IdentityProvider for SelectorIdentityProvider {
    async fn x509_context(&self, caller: &Caller) -> Result<Updates<X509Context>, ProviderError> {
        Ok(self.watchers(caller, |w| w.x509.subscribe()))
    }

    async fn x509_bundles(&self, caller: &Caller) -> Result<Updates<X509Bundles>, ProviderError> {
        Ok(self.watchers(caller, |w| w.x509_bundles.subscribe()))
    }

    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, ProviderError> {
        let wanted: Vec<(SpiffeId, Option<String>)> = {
            let state = self.lock();
            state
                .served_entries(CallerKey::of(caller))
                .into_iter()
                .filter(|e| spiffe_id.is_none_or(|id| e.spiffe_id() == id))
                .map(|e| (e.spiffe_id().clone(), e.hint.clone()))
                .collect()
        };
        if wanted.is_empty() {
            return Err(ProviderError::NoIdentity);
        }
        let Some(minter) = &self.minter else {
            return Err(ProviderError::Unavailable {
                reason: "could not fetch JWT-SVID: no JWT-SVID issuer configured".to_owned(),
            });
        };
        wanted
            .into_iter()
            .map(|(id, hint)| {
                let token = self.cached_or_minted(minter.as_ref(), &id, audience)?;
                Ok(JwtSvidToken::new(id, token, hint.as_deref()))
            })
            .collect()
    }

    async fn jwt_bundles(&self, caller: &Caller) -> Result<Updates<JwtBundles>, ProviderError> {
        Ok(self.watchers(caller, |w| w.jwt_bundles.subscribe()))
    }
}

fn lock_cache(
    cache: &Mutex<HashMap<(SpiffeId, Vec<String>), CachedToken>>,
) -> std::sync::MutexGuard<'_, HashMap<(SpiffeId, Vec<String>), CachedToken>> {
    // A panic while holding the lock cannot leave the map inconsistent.
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}
