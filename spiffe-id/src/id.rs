//! SPIFFE IDs: the owned [`SpiffeId`] and the borrowed [`SpiffeIdRef`].

use alloc::string::String;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;

use crate::syntax::{self, SCHEME_PREFIX, UriBuf};
use crate::{SpiffeIdError, TrustDomain};

/// A validated SPIFFE ID, borrowed from the string it was parsed from.
///
/// Parsing runs every check [`SpiffeId`] runs, in one pass, without
/// allocating. Use it on hot paths (a certificate's URI SAN, a JWT `sub`) and
/// call [`to_owned`](Self::to_owned) only when the ID must outlive the input.
///
/// ```
/// use spiffe_id::SpiffeIdRef;
///
/// let id = SpiffeIdRef::parse("spiffe://cluster.local/ns/prod/sa/web")?;
/// assert_eq!(id.trust_domain_name(), "cluster.local");
/// assert_eq!(id.path(), "/ns/prod/sa/web");
/// assert_eq!(id.segments().collect::<Vec<_>>(), ["ns", "prod", "sa", "web"]);
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone, Copy)]
pub struct SpiffeIdRef<'a> {
    uri: &'a str,
    td_end: usize,
}

impl<'a> SpiffeIdRef<'a> {
    /// Parses and validates `s` as a SPIFFE ID without copying it.
    ///
    /// # Errors
    ///
    /// Any [`SpiffeIdError`] variant for the SPIFFE ID rules (ID-01 to ID-20):
    /// an empty input, a scheme other than exactly `spiffe://`, a missing,
    /// malformed or over-long trust domain, a malformed path, or an ID longer
    /// than [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes. Uppercase in the scheme or trust domain is
    /// rejected; see the [crate documentation](crate#case) for why.
    #[inline]
    pub fn parse(s: &'a str) -> Result<Self, SpiffeIdError> {
        let td_end = syntax::parse_id(s)?;
        Ok(Self { uri: s, td_end })
    }

    /// The whole ID, exactly as it was parsed.
    #[inline]
    pub fn as_str(&self) -> &'a str {
        self.uri
    }

    /// The trust-domain name (`example.org` in `spiffe://example.org/a`).
    #[inline]
    pub fn trust_domain_name(&self) -> &'a str {
        &self.uri[SCHEME_PREFIX.len()..self.td_end]
    }

    /// The trust domain, as an owned value. This allocates; to look a trust
    /// domain up in a map keyed by [`TrustDomain`] without allocating, use
    /// [`trust_domain_name`](Self::trust_domain_name) (`TrustDomain`
    /// implements `Borrow<str>`).
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain::from_validated_uri(Arc::from(&self.uri[..self.td_end]))
    }

    /// The path: empty for a trust domain's own ID, otherwise starting with
    /// `/` (`/a/b` in `spiffe://example.org/a/b`).
    #[inline]
    pub fn path(&self) -> &'a str {
        &self.uri[self.td_end..]
    }

    /// The path segments, in order; none for a trust domain's own ID.
    #[inline]
    pub fn segments(&self) -> Segments<'a> {
        Segments::new(self.path())
    }

    /// Whether the ID belongs to `trust_domain` (its own ID included).
    #[inline]
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        self.trust_domain_name() == trust_domain.as_str()
    }

    /// Whether this is a trust domain's own ID (no path). Such an ID names
    /// the trust domain's signing authority and is never valid for an
    /// X.509-SVID leaf (rule X-05).
    #[inline]
    pub fn is_trust_domain_id(&self) -> bool {
        self.td_end == self.uri.len()
    }

    /// Copies the ID into an owned [`SpiffeId`] (one allocation).
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> SpiffeId {
        SpiffeId::from_validated(Arc::from(self.uri), self.td_end)
    }
}

/// A validated SPIFFE ID that owns its text.
///
/// The whole URI is stored once, in an `Arc<str>`, next to the position where
/// the trust domain ends: cloning is a reference-count increment, and
/// [`trust_domain`](Self::trust_domain) shares the same allocation.
/// [`Display`](fmt::Display) and [`as_str`](Self::as_str) give back exactly the
/// string that was parsed. Equality, ordering and hashing are those of that
/// string, so IDs are byte-exact and case-sensitive in the path.
///
/// ```
/// use spiffe_id::{SpiffeId, TrustDomain};
///
/// let id: SpiffeId = "spiffe://example.org/payments/api".parse()?;
/// let td: TrustDomain = "example.org".parse()?;
/// assert!(id.is_member_of(&td));
/// assert_eq!(id.to_string(), "spiffe://example.org/payments/api");
///
/// let built = SpiffeId::from_segments(&td, ["payments", "api"])?;
/// assert_eq!(built, id);
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone)]
pub struct SpiffeId {
    uri: Arc<str>,
    /// Length of `spiffe://<trust-domain>`; at most 9 + 255.
    td_end: u16,
}

impl SpiffeId {
    /// Parses and validates `s` as a SPIFFE ID. Same rules as
    /// [`SpiffeIdRef::parse`]; one allocation on success.
    ///
    /// # Errors
    ///
    /// As [`SpiffeIdRef::parse`].
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        SpiffeIdRef::parse(s).map(|r| r.to_owned())
    }

    /// Parses `s` after lowercasing (ASCII) its scheme and trust domain; the
    /// path keeps its case. The result prints in lowercase form, so it is
    /// equal to the ID parsed from the lowercase string.
    ///
    /// The specification says both that the trust domain "MUST be
    /// lowercase" and that scheme and trust domain are case-insensitive.
    /// [`parse`](Self::parse) rejects uppercase; use this only where a peer
    /// is known to send IDs that differ from the canonical form in case.
    ///
    /// ```
    /// use spiffe_id::SpiffeId;
    /// let id = SpiffeId::parse_normalizing_case("SPIFFE://Example.ORG/Path")?;
    /// assert_eq!(id.as_str(), "spiffe://example.org/Path");
    /// assert!(SpiffeId::parse("SPIFFE://Example.ORG/Path").is_err());
    /// # Ok::<(), spiffe_id::SpiffeIdError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SpiffeIdRef::parse`] on the lowercased string.
    pub fn parse_normalizing_case(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(&syntax::lowercase_authority(s))
    }

    /// Builds `spiffe://<trust_domain>/<seg1>/<seg2>...`. No segments gives
    /// the trust domain's own ID.
    ///
    /// # Errors
    ///
    /// The errors of [`validate_path_segment`](crate::validate_path_segment)
    /// for a bad segment (indices count from the start of that segment), or
    /// [`SpiffeIdError::TooLong`] when the result would exceed
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes.
    pub fn from_segments<I>(trust_domain: &TrustDomain, segments: I) -> Result<Self, SpiffeIdError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut uri = UriBuf::new();
        uri.push_str(trust_domain.id_str())?;
        for segment in segments {
            let segment = segment.as_ref();
            crate::validate_path_segment(segment)?;
            uri.push_str("/")?;
            uri.push_str(segment)?;
        }
        Ok(Self::from_validated(
            uri.to_arc(),
            trust_domain.id_str().len(),
        ))
    }

    /// Builds `spiffe://<trust_domain><path>`, where `path` is empty or
    /// starts with `/`.
    ///
    /// # Errors
    ///
    /// The errors of [`validate_path`](crate::validate_path) (indices count
    /// from the start of `path`), or [`SpiffeIdError::TooLong`].
    pub fn from_path(trust_domain: &TrustDomain, path: &str) -> Result<Self, SpiffeIdError> {
        crate::validate_path(path)?;
        let mut uri = UriBuf::new();
        uri.push_str(trust_domain.id_str())?;
        uri.push_str(path)?;
        Ok(Self::from_validated(
            uri.to_arc(),
            trust_domain.id_str().len(),
        ))
    }

    /// `uri` must be a valid ID whose trust domain ends at `td_end`.
    pub(crate) fn from_validated(uri: Arc<str>, td_end: usize) -> Self {
        debug_assert!(syntax::parse_id(&uri) == Ok(td_end));
        // td_end <= 9 + MAX_TRUST_DOMAIN_LEN, which fits in u16.
        Self {
            uri,
            td_end: td_end as u16,
        }
    }

    /// A borrowed view of this ID (no allocation).
    #[inline]
    pub fn as_id_ref(&self) -> SpiffeIdRef<'_> {
        SpiffeIdRef {
            uri: &self.uri,
            td_end: usize::from(self.td_end),
        }
    }

    /// The whole ID, exactly as it was parsed or built.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The trust domain. Shares this ID's allocation (no copy).
    #[inline]
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain::from_validated_parts(Arc::clone(&self.uri), usize::from(self.td_end))
    }

    /// The trust-domain name, borrowed.
    #[inline]
    pub fn trust_domain_name(&self) -> &str {
        self.as_id_ref().trust_domain_name()
    }

    /// The path: empty for a trust domain's own ID, otherwise starting with
    /// `/`.
    #[inline]
    pub fn path(&self) -> &str {
        self.as_id_ref().path()
    }

    /// The path segments, in order; none for a trust domain's own ID.
    #[inline]
    pub fn segments(&self) -> Segments<'_> {
        self.as_id_ref().segments()
    }

    /// Whether the ID belongs to `trust_domain` (its own ID included).
    #[inline]
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        self.as_id_ref().is_member_of(trust_domain)
    }

    /// Whether this is a trust domain's own ID (no path).
    #[inline]
    pub fn is_trust_domain_id(&self) -> bool {
        self.as_id_ref().is_trust_domain_id()
    }
}

/// The segments of a SPIFFE ID path, from [`SpiffeId::segments`] or
/// [`SpiffeIdRef::segments`].
#[derive(Clone, Debug)]
pub struct Segments<'a> {
    /// The path without its leading `/`; `None` once exhausted or for an
    /// empty path.
    rest: Option<core::str::Split<'a, char>>,
}

impl<'a> Segments<'a> {
    fn new(path: &'a str) -> Self {
        Self {
            rest: path.strip_prefix('/').map(|p| p.split('/')),
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        self.rest.as_mut()?.next()
    }
}

impl DoubleEndedIterator for Segments<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.rest.as_mut()?.next_back()
    }
}

impl core::iter::FusedIterator for Segments<'_> {}

// === impl SpiffeIdRef: conversions and comparisons ===

impl<'a> From<&'a SpiffeId> for SpiffeIdRef<'a> {
    fn from(id: &'a SpiffeId) -> Self {
        id.as_id_ref()
    }
}

impl<'a> TryFrom<&'a str> for SpiffeIdRef<'a> {
    type Error = SpiffeIdError;
    fn try_from(s: &'a str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl From<SpiffeIdRef<'_>> for SpiffeId {
    fn from(id: SpiffeIdRef<'_>) -> Self {
        id.to_owned()
    }
}

impl fmt::Display for SpiffeIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri)
    }
}

impl fmt::Debug for SpiffeIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SpiffeIdRef").field(&self.uri).finish()
    }
}

impl PartialEq for SpiffeIdRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.uri == other.uri
    }
}
impl Eq for SpiffeIdRef<'_> {}

impl PartialOrd for SpiffeIdRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SpiffeIdRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.uri.cmp(other.uri)
    }
}

impl Hash for SpiffeIdRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uri.hash(state);
    }
}

impl AsRef<str> for SpiffeIdRef<'_> {
    fn as_ref(&self) -> &str {
        self.uri
    }
}

// === impl SpiffeId: conversions and comparisons ===

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SpiffeId {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SpiffeId {
    type Error = SpiffeIdError;
    fn try_from(s: String) -> Result<Self, SpiffeIdError> {
        let td_end = syntax::parse_id(&s)?;
        Ok(Self::from_validated(Arc::from(s), td_end))
    }
}

impl From<SpiffeId> for String {
    fn from(id: SpiffeId) -> Self {
        String::from(id.as_str())
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SpiffeId").field(&&*self.uri).finish()
    }
}

impl PartialEq for SpiffeId {
    fn eq(&self, other: &Self) -> bool {
        self.uri == other.uri
    }
}
impl Eq for SpiffeId {}

impl PartialOrd for SpiffeId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SpiffeId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.uri.cmp(&other.uri)
    }
}

/// Hashes like the `str` it holds, so maps keyed by `SpiffeId` can be
/// searched with a `&str` (see the `Borrow<str>` impl).
impl Hash for SpiffeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for SpiffeId {
    fn borrow(&self) -> &str {
        &self.uri
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.uri
    }
}

impl PartialEq<SpiffeIdRef<'_>> for SpiffeId {
    fn eq(&self, other: &SpiffeIdRef<'_>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SpiffeId> for SpiffeIdRef<'_> {
    fn eq(&self, other: &SpiffeId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<str> for SpiffeId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SpiffeId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for SpiffeIdRef<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SpiffeIdRef<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
