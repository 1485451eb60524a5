//! `JwtSource`: JWT bundles following `FetchJWTBundles`, and JWT-SVIDs
//! cached until half their lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spiffe_bundle::{JwtBundle, JwtBundleSource};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::JwtSvid;

use super::follow::{Follower, Published};
use super::{SourceOptions, Subscription};
use crate::decode::decode_jwt_bundles_response;
use crate::{ClientError, EndpointAddress, JwtBundles, WorkloadApiClient, proto};

/// At most this many (audience, ID) pairs keep a cached token.
const MAX_CACHED_TOKENS: usize = 64;

/// JWT bundles kept current by following `FetchJWTBundles`, and the
/// workload's JWT-SVIDs, fetched on demand and cached until half their
/// lifetime. It follows the stream as described on
/// [`X509Source`](crate::X509Source#how-a-source-follows-the-workload-api).
///
/// It is a [`JwtBundleSource`], so a received token is validated locally
/// with [`JwtSvid::parse_and_validate`].
///
/// ```no_run
/// use rustls_pki_types::UnixTime;
/// use spiffe_svid::JwtSvid;
/// use spiffe_workload_api::JwtSource;
///
/// # async fn run(received: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let source = JwtSource::from_env().await?;
///
/// // A token to send to a peer (cached until half its lifetime).
/// let mine = source.fetch_jwt_svid(&["backend"], None).await?;
/// println!("Authorization: Bearer {}", mine.token());
///
/// // A token received from a peer, validated against the bundles.
/// let peer = JwtSvid::parse_and_validate(received, &source, &["frontend"], UnixTime::now())?;
/// println!("peer is {}", peer.spiffe_id());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JwtSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bundles: Follower<JwtBundles>,
    client: WorkloadApiClient,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

/// Audiences (sorted, without repeats) and the requested ID.
type CacheKey = (Vec<String>, Option<SpiffeId>);

#[derive(Debug)]
struct Cached {
    svid: JwtSvid,
    refresh_at: SystemTime,
}

impl JwtSource {
    /// Follows the Workload API at `address` with the default
    /// [`SourceOptions`]; returns once the first JWT bundles have arrived.
    ///
    /// # Errors
    ///
    /// As [`JwtSource::with_options`], and [`ClientError::Connect`] outside
    /// a Tokio runtime.
    pub async fn new(address: &EndpointAddress) -> Result<Self, ClientError> {
        let client = WorkloadApiClient::connect_lazy(address)?;
        Self::with_options(client, SourceOptions::default()).await
    }

    /// Follows the Workload API named by `SPIFFE_ENDPOINT_SOCKET` (E-07).
    ///
    /// # Errors
    ///
    /// [`ClientError::Address`] when the variable is unset or invalid;
    /// otherwise as [`JwtSource::new`].
    pub async fn from_env() -> Result<Self, ClientError> {
        Self::new(&EndpointAddress::from_env()?).await
    }

    /// Follows the Workload API through `client`, whose timeout also bounds
    /// each [`JwtSource::fetch_jwt_svid`]; returns once a JWT bundles
    /// message has decoded.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoInitialUpdate`] when no usable message came within
    /// the initial timeout, with the last error seen;
    /// [`ClientError::Status`] at once for a status that is not retried;
    /// [`ClientError::Connect`] outside a Tokio runtime.
    pub async fn with_options(
        client: WorkloadApiClient,
        options: SourceOptions,
    ) -> Result<Self, ClientError> {
        let decode = Box::new(|message: &proto::JwtBundlesResponse| {
            Ok(Published {
                value: Arc::new(decode_jwt_bundles_response(message)?),
                svid: None,
                problem: None,
            })
        });
        let bundles = Follower::start(
            client.clone(),
            &options,
            |client| Box::pin(async move { client.open_jwt_bundles().await }),
            decode,
        )
        .await?;
        Ok(JwtSource {
            inner: Arc::new(Inner {
                bundles,
                client,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The latest JWT bundles.
    pub fn bundles(&self) -> Arc<JwtBundles> {
        self.inner.bundles.value()
    }

    /// Notifications of each change of the JWT bundles.
    pub fn subscribe(&self) -> Subscription<JwtBundles> {
        self.inner.bundles.subscribe()
    }

    /// The last error met while following `FetchJWTBundles`, or `None` if
    /// the last message was good.
    pub fn last_error(&self) -> Option<ClientError> {
        self.inner.bundles.last_error()
    }

    /// A JWT-SVID for `audience` (the default identity, or `spiffe_id`),
    /// as [`WorkloadApiClient::fetch_jwt_svid`] gives it. A token is reused
    /// until half its lifetime has passed (from `iat`, or from when it was
    /// fetched); if fetching a new one then fails, the cached one is
    /// returned for as long as it has not expired.
    ///
    /// # Errors
    ///
    /// As [`WorkloadApiClient::fetch_jwt_svid`], when there is no unexpired
    /// cached token to fall back on.
    pub async fn fetch_jwt_svid(
        &self,
        audience: &[&str],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<JwtSvid, ClientError> {
        let key = cache_key(audience, spiffe_id);
        let now = SystemTime::now();
        if let Some(cached) = self.cache().get(&key) {
            if now < cached.refresh_at {
                return Ok(cached.svid.clone());
            }
        }
        match self.inner.client.fetch_jwt_svid(audience, spiffe_id).await {
            Ok(svid) => {
                let refresh_at = refresh_time(&svid, now);
                let mut cache = self.cache();
                make_room(&mut cache, now);
                cache.insert(
                    key,
                    Cached {
                        svid: svid.clone(),
                        refresh_at,
                    },
                );
                Ok(svid)
            }
            Err(error) => match self.cache().get(&key) {
                Some(cached) if SystemTime::now() < cached.svid.expiry() => Ok(cached.svid.clone()),
                _ => Err(error),
            },
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Cached>> {
        // A cache is valid whatever a panicking holder left in it.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl JwtBundleSource for JwtSource {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.inner.bundles.value().jwt_bundle_for(trust_domain)
    }
}

fn cache_key(audience: &[&str], spiffe_id: Option<&SpiffeId>) -> CacheKey {
    let mut audience: Vec<String> = audience.iter().map(|a| (*a).to_owned()).collect();
    audience.sort_unstable();
    audience.dedup();
    (audience, spiffe_id.cloned())
}

/// Half-way between issue (`iat`, if it is not in the future, else `now`)
/// and expiry.
fn refresh_time(svid: &JwtSvid, now: SystemTime) -> SystemTime {
    let issued = svid
        .claims()
        .get("iat")
        .and_then(serde_json::Value::as_u64)
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .filter(|iat| *iat <= now)
        .unwrap_or(now);
    let lifetime = svid.expiry().duration_since(issued).unwrap_or_default();
    issued.checked_add(lifetime / 2).unwrap_or(issued)
}

/// Drops expired tokens, then the one due soonest while the cache is full.
fn make_room(cache: &mut HashMap<CacheKey, Cached>, now: SystemTime) {
    cache.retain(|_, cached| now < cached.svid.expiry());
    while cache.len() >= MAX_CACHED_TOKENS {
        let Some(oldest) = cache
            .iter()
            .min_by_key(|(_, cached)| cached.refresh_at)
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        cache.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_half_way_through_their_life() {
        let td = TrustDomain::new("example.org").unwrap();
        let issuer = spiffe_svid::issuer::JwtIssuer::new(td).unwrap();
        let id = SpiffeId::parse("spiffe://example.org/a").unwrap();
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let now = SystemTime::now();
        let token = issuer
            .issue(&id, &["a"], now + Duration::from_secs(600))
            .unwrap();
        let svid = JwtSvid::parse_insecure(&token, &["a"], crate::decode::unix_time(now)).unwrap();
        // The issuer sets `iat` to its clock, so half-way is 300 s after it.
        let iat = svid.claims()["iat"].as_u64().unwrap();
        assert_eq!(
            secs(refresh_time(&svid, now)),
            iat + (secs(svid.expiry()) - iat) / 2
        );
        // An `iat` in the future is not trusted: half-way from now.
        let early = now - Duration::from_secs(100);
        let half = svid.expiry().duration_since(early).unwrap() / 2;
        assert_eq!(refresh_time(&svid, early), early + half);
    }

    #[test]
    fn cache_key_ignores_audience_order_and_repeats() {
        assert_eq!(
            cache_key(&["b", "a", "b"], None),
            cache_key(&["a", "b"], None)
        );
        let id = SpiffeId::parse("spiffe://example.org/a").unwrap();
        assert_ne!(cache_key(&["a"], Some(&id)), cache_key(&["a"], None));
    }
}
