//! Trust domains.

use alloc::sync::Arc;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;

use crate::syntax::{self, SCHEME_PREFIX, UriBuf};
use crate::{SpiffeId, SpiffeIdError, SpiffeIdRef};

/// A SPIFFE trust domain: a non-empty name of at most 255 bytes of
/// `[a-z0-9._-]`.
///
/// No DNS or IP rules apply (rule ID-11): `example.org.` and `example.org` are
/// different trust domains, and `1.2.3.4`, `-a` or `..` are valid names.
///
/// The value holds `spiffe://<name>` in an `Arc<str>`, often shared with the
/// [`SpiffeId`] it came from, so cloning never allocates. Equality, ordering
/// and hashing are those of the bare name, and `TrustDomain` implements
/// `Borrow<str>`: a `HashMap<TrustDomain, _>` can be searched with
/// [`SpiffeIdRef::trust_domain_name`] without allocating.
///
/// ```
/// use spiffe_id::TrustDomain;
///
/// let td = TrustDomain::new("example.org")?;
/// assert_eq!(td.to_string(), "example.org");
/// assert_eq!(td.id().as_str(), "spiffe://example.org");
///
/// // `FromStr` also takes an ID and keeps its trust domain.
/// let from_id: TrustDomain = "spiffe://example.org/workload".parse()?;
/// assert_eq!(from_id, td);
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone)]
pub struct TrustDomain {
    /// Starts with `spiffe://<name>`; may go on with a path when shared with
    /// a `SpiffeId`.
    uri: Arc<str>,
    /// Where the name ends in `uri`.
    end: u16,
}

impl TrustDomain {
    /// Creates a trust domain from a bare name such as `example.org`.
    ///
    /// # Errors
    ///
    /// [`SpiffeIdError::MissingTrustDomain`] for an empty name,
    /// [`SpiffeIdError::BadTrustDomainChar`] for a byte outside `[a-z0-9._-]`
    /// (including `/`, `:` and uppercase letters), and
    /// [`SpiffeIdError::TrustDomainTooLong`] past 255 bytes.
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        syntax::check_trust_domain_name(name)?;
        let mut uri = UriBuf::new();
        uri.push_str(SCHEME_PREFIX)?;
        uri.push_str(name)?;
        Ok(Self::from_validated_uri(uri.to_arc()))
    }

    /// Creates a trust domain from a bare name (`example.org`) or from a
    /// SPIFFE ID (`spiffe://example.org` or `spiffe://example.org/a/b`, whose
    /// path is dropped). An input containing `:/` is read as an ID, as
    /// go-spiffe does. This is what [`FromStr`] does; it accepts the map keys
    /// of both bundle maps (bare names) and Workload API responses
    /// (`spiffe://td`).
    ///
    /// # Errors
    ///
    /// As [`TrustDomain::new`] for a bare name, or as
    /// [`SpiffeIdRef::parse`] for an ID.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        if s.contains(":/") {
            Ok(SpiffeIdRef::parse(s)?.trust_domain())
        } else {
            Self::new(s)
        }
    }

    /// `uri` is exactly `spiffe://<valid name>`.
    pub(crate) fn from_validated_uri(uri: Arc<str>) -> Self {
        let end = uri.len();
        Self::from_validated_parts(uri, end)
    }

    /// `uri` starts with `spiffe://<valid name>`, the name ending at `end`.
    pub(crate) fn from_validated_parts(uri: Arc<str>, end: usize) -> Self {
        debug_assert!(syntax::check_trust_domain_name(&uri[SCHEME_PREFIX.len()..end]).is_ok());
        Self {
            uri,
            // end <= 9 + MAX_TRUST_DOMAIN_LEN, which fits in u16.
            end: end as u16,
        }
    }

    /// The bare name, such as `example.org`.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.uri[SCHEME_PREFIX.len()..usize::from(self.end)]
    }

    /// The trust domain's own ID as a string: `spiffe://<name>`. This is the
    /// key the Workload API uses for federated bundles.
    #[inline]
    pub fn id_str(&self) -> &str {
        &self.uri[..usize::from(self.end)]
    }

    /// The trust domain's own ID, `spiffe://<name>` (no path). Does not
    /// allocate unless this value was taken from a longer ID.
    pub fn id(&self) -> SpiffeId {
        let end = usize::from(self.end);
        if self.uri.len() == end {
            SpiffeId::from_validated(Arc::clone(&self.uri), end)
        } else {
            SpiffeId::from_validated(Arc::from(self.id_str()), end)
        }
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for TrustDomain {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl From<&SpiffeId> for TrustDomain {
    fn from(id: &SpiffeId) -> Self {
        id.trust_domain()
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TrustDomain").field(&self.as_str()).finish()
    }
}

impl PartialEq for TrustDomain {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for TrustDomain {}

impl PartialOrd for TrustDomain {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TrustDomain {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Hashes like the bare name, consistent with `Borrow<str>`.
impl Hash for TrustDomain {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for TrustDomain {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TrustDomain {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for TrustDomain {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TrustDomain {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
