//! The Istio identity convention,
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

use core::fmt;
use core::str::FromStr;

use crate::syntax::SCHEME_PREFIX;
use crate::{SpiffeId, SpiffeIdError, SpiffeIdRef, TrustDomain};

/// A validated Istio workload identity:
/// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
///
/// Unlike Istio's own parser, which only splits on `/`, this type first
/// requires a spec-valid SPIFFE ID, then exactly four path segments with the
/// literals `ns` and `sa` (case-sensitive). So `spiffe://td/ns//sa/x` (empty
/// namespace), `spiffe://td/ns/./sa/x` and `spiffe://TD/ns/a/sa/b` are
/// rejected. Kubernetes naming rules are not applied by default (Istio does
/// not apply them either); call
/// [`validate_kubernetes_names`](Self::validate_kubernetes_names) for them.
///
/// ```
/// use spiffe_id::IstioIdentity;
///
/// let id: IstioIdentity = "spiffe://cluster.local/ns/istio-system/sa/istiod".parse()?;
/// assert_eq!(id.trust_domain_name(), "cluster.local");
/// assert_eq!(id.namespace(), "istio-system");
/// assert_eq!(id.service_account(), "istiod");
/// assert_eq!(id.principal(), "cluster.local/ns/istio-system/sa/istiod");
/// id.validate_kubernetes_names()?;
/// # Ok::<(), spiffe_id::SpiffeIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstioIdentity {
    id: SpiffeId,
    // Byte ranges of the namespace and service account in `id`; every index
    // is at most MAX_ID_LEN, which fits in u16.
    ns_start: u16,
    ns_end: u16,
    sa_start: u16,
}

impl IstioIdentity {
    /// Builds the identity of `service_account` in `namespace`.
    ///
    /// # Errors
    ///
    /// The errors of [`validate_path_segment`](crate::validate_path_segment)
    /// when a name is empty, `.`/`..`, or has a byte outside
    /// `[a-zA-Z0-9._-]`; [`SpiffeIdError::TooLong`] past 2048 bytes.
    pub fn new(
        trust_domain: &TrustDomain,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        let id = SpiffeId::from_segments(trust_domain, ["ns", namespace, "sa", service_account])?;
        Self::try_from(id)
    }

    /// Parses `s` as a SPIFFE ID, then as an Istio identity.
    ///
    /// # Errors
    ///
    /// Any SPIFFE ID error of [`SpiffeIdRef::parse`], or
    /// [`SpiffeIdError::NotIstioIdentity`] for a valid ID of another shape.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        let id = SpiffeIdRef::parse(s)?;
        let (ns, sa) = check_shape(id)?;
        Ok(Self::from_shape(id.to_owned(), ns.len(), sa.len()))
    }

    /// `id` has the Istio shape, with names of these lengths.
    fn from_shape(id: SpiffeId, ns_len: usize, sa_len: usize) -> Self {
        let ns_start = id.as_str().len() - (ns_len + "/sa/".len() + sa_len);
        let ns_end = ns_start + ns_len;
        let sa_start = ns_end + "/sa/".len();
        // All indices are within the ID, whose length is at most MAX_ID_LEN,
        // which fits in u16.
        Self {
            ns_start: ns_start as u16,
            ns_end: ns_end as u16,
            sa_start: sa_start as u16,
            id,
        }
    }

    /// The whole SPIFFE ID.
    pub fn as_spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The whole ID as a string.
    pub fn as_str(&self) -> &str {
        self.id.as_str()
    }

    /// The trust domain (shares this identity's allocation).
    pub fn trust_domain(&self) -> TrustDomain {
        self.id.trust_domain()
    }

    /// The trust-domain name, borrowed.
    pub fn trust_domain_name(&self) -> &str {
        self.id.trust_domain_name()
    }

    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.id.as_str()[usize::from(self.ns_start)..usize::from(self.ns_end)]
    }

    /// The Kubernetes service account.
    pub fn service_account(&self) -> &str {
        &self.id.as_str()[usize::from(self.sa_start)..]
    }

    /// The identity as Istio authorization policies write principals:
    /// without the `spiffe://` scheme (`cluster.local/ns/default/sa/web`).
    pub fn principal(&self) -> &str {
        &self.id.as_str()[SCHEME_PREFIX.len()..]
    }

    /// Checks the Kubernetes naming rules Istio identities come from: the
    /// namespace is a DNS-1123 label (1 to 63 bytes of `[a-z0-9-]`, starting
    /// and ending with a letter or digit) and the service account a DNS-1123
    /// subdomain (at most 253 bytes of dot-separated labels of that shape).
    ///
    /// # Errors
    ///
    /// [`SpiffeIdError::BadKubernetesNamespace`] or
    /// [`SpiffeIdError::BadKubernetesServiceAccount`].
    pub fn validate_kubernetes_names(&self) -> Result<(), SpiffeIdError> {
        let ns = self.namespace();
        if ns.len() > 63 || !is_dns1123_label(ns) {
            return Err(SpiffeIdError::BadKubernetesNamespace);
        }
        let sa = self.service_account();
        if sa.len() > 253 || !sa.split('.').all(is_dns1123_label) {
            return Err(SpiffeIdError::BadKubernetesServiceAccount);
        }
        Ok(())
    }

    /// Gives back the SPIFFE ID.
    pub fn into_spiffe_id(self) -> SpiffeId {
        self.id
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, without the length limit.
fn is_dns1123_label(s: &str) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Checks the `ns/<ns>/sa/<sa>` shape of a valid ID and returns the segments.
fn check_shape(id: SpiffeIdRef<'_>) -> Result<(&str, &str), SpiffeIdError> {
    let mut segs = id.segments();
    match (
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
    ) {
        (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Ok((ns, sa)),
        _ => Err(SpiffeIdError::NotIstioIdentity),
    }
}

impl TryFrom<SpiffeId> for IstioIdentity {
    type Error = SpiffeIdError;
    /// Keeps the ID's allocation.
    fn try_from(id: SpiffeId) -> Result<Self, SpiffeIdError> {
        let (ns, sa) = check_shape(id.as_id_ref())?;
        let (ns_len, sa_len) = (ns.len(), sa.len());
        Ok(Self::from_shape(id, ns_len, sa_len))
    }
}

impl TryFrom<&SpiffeId> for IstioIdentity {
    type Error = SpiffeIdError;
    /// Shares the ID's allocation.
    fn try_from(id: &SpiffeId) -> Result<Self, SpiffeIdError> {
        Self::try_from(id.clone())
    }
}

impl TryFrom<SpiffeIdRef<'_>> for IstioIdentity {
    type Error = SpiffeIdError;
    fn try_from(id: SpiffeIdRef<'_>) -> Result<Self, SpiffeIdError> {
        let (ns, sa) = check_shape(id)?;
        Ok(Self::from_shape(id.to_owned(), ns.len(), sa.len()))
    }
}

impl FromStr for IstioIdentity {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(s)
    }
}

impl From<IstioIdentity> for SpiffeId {
    fn from(id: IstioIdentity) -> Self {
        id.id
    }
}

impl AsRef<SpiffeId> for IstioIdentity {
    fn as_ref(&self) -> &SpiffeId {
        &self.id
    }
}

impl fmt::Display for IstioIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id.as_str())
    }
}

impl fmt::Debug for IstioIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IstioIdentity")
            .field("trust_domain", &self.trust_domain_name())
            .field("namespace", &self.namespace())
            .field("service_account", &self.service_account())
            .finish()
    }
}
