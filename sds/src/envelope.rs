//! The response envelope (S15) and resolving a whole subscription.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hasher};

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

use crate::error::SdsError;
use crate::material::WorkloadSecrets;
use crate::names::SecretNames;
use crate::secret::ValidationForm;

/// The type URL of every resource and response this server sends, and the
/// only one it accepts in requests (S15).
pub const SECRET_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The xDS wildcard resource name.
pub const WILDCARD: &str = "*";

/// What a stream subscribes to: everything (wildcard), named resources, or
/// both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub(crate) wildcard: bool,
    pub(crate) names: BTreeSet<String>,
}

impl Subscription {
    pub(crate) fn is_empty(&self) -> bool {
        !self.wildcard && self.names.is_empty()
    }
}

/// Resolves `subscription` to `Any(Secret)`s sorted by name, each name
/// once (S5 to S8, S15).
///
/// # Errors
///
/// [`SdsError::UnknownNames`] listing every unresolved explicit name,
/// sorted; otherwise the first other error of a name.
pub(crate) fn resolve(
    subscription: &Subscription,
    secrets: &WorkloadSecrets,
    names: &SecretNames,
    form: ValidationForm,
) -> Result<Vec<(String, Any)>, SdsError> {
    let mut out: BTreeMap<String, Secret> = if subscription.wildcard {
        secrets.wildcard_secrets(form)
    } else {
        BTreeMap::new()
    };
    let mut unknown = Vec::new();
    let mut other = None;
    for name in &subscription.names {
        if out.contains_key(name) {
            continue;
        }
        match secrets.secret_for(name, names, form) {
            Ok(secret) => {
                out.insert(name.clone(), secret);
            }
            Err(SdsError::UnknownNames { .. }) => unknown.push(name.clone()),
            Err(e) => {
                other.get_or_insert(e);
            }
        }
    }
    if !unknown.is_empty() {
        // `subscription.names` is a sorted set, so `unknown` is sorted.
        return Err(SdsError::UnknownNames { names: unknown });
    }
    if let Some(e) = other {
        return Err(e);
    }
    Ok(out
        .into_iter()
        .map(|(name, s)| (name, pack_any(s)))
        .collect())
}

/// A version string for `resources`: a 64-bit hash of their bytes, in hex.
/// Equal content gets an equal version, on every stream and after a
/// reconnect, and a change of content a new one (S15).
pub(crate) fn content_version<'a>(resources: impl IntoIterator<Item = &'a Any>) -> String {
    let mut hasher = DefaultHasher::new();
    for any in resources {
        hasher.write(any.type_url.as_bytes());
        hasher.write_usize(any.value.len());
        hasher.write(&any.value);
    }
    format!("{:016x}", hasher.finish())
}

/// Nonces of one stream: unique per response (S15), and across the streams
/// of a process thanks to the stream number.
#[derive(Clone, Debug)]
pub(crate) struct NonceSource {
    stream_id: u64,
    count: u64,
}

impl NonceSource {
    pub(crate) fn new(stream_id: u64) -> Self {
        NonceSource {
            stream_id,
            count: 0,
        }
    }

    pub(crate) fn next_nonce(&mut self) -> String {
        self.count = self.count.wrapping_add(1);
        format!("{:x}-{:x}", self.stream_id, self.count)
    }
}
