//! Which resource names the server answers to, and what each one means
//! (S5 to S8).

use spiffe_id::{SpiffeId, SpiffeIdRef, TrustDomain};

use crate::error::NameConfigError;

/// SPIRE's name for the default X509-SVID (`default_svid_name`), also the
/// name Istio's Envoy configuration asks for.
pub const DEFAULT_SVID_NAME: &str = "default";
/// SPIRE's name for the own trust domain's bundle (`default_bundle_name`),
/// also the name Istio's Envoy configuration asks for.
pub const DEFAULT_BUNDLE_NAME: &str = "ROOTCA";
/// SPIRE's name for every bundle at once, own and federated
/// (`default_all_bundles_name`).
pub const DEFAULT_ALL_BUNDLES_NAME: &str = "ALL";

/// The configurable resource names, besides the SPIFFE IDs that always
/// work: `spiffe://<td>` for one trust domain's bundle, and an SVID's SPIFFE
/// ID for that SVID.
///
/// Every name is resolved on its own, so one request may ask for both
/// `ROOTCA` and `spiffe://<own td>`, or both `default` and the default
/// SVID's ID (SPIRE fails such requests, S6).
///
/// ```
/// use spiffe_sds::SecretNames;
///
/// // SPIRE's defaults: `default`, `ROOTCA` (own trust domain), `ALL`.
/// let spire = SecretNames::spire();
/// assert_eq!(spire.bundle(), Some("ROOTCA"));
///
/// // Istio with federation: `ROOTCA` lists every trust domain.
/// let istio = SecretNames::istio_federation();
/// assert_eq!(istio.bundle(), None);
/// assert_eq!(istio.all_bundles(), Some("ROOTCA"));
///
/// // Anything else, checked.
/// let custom = SecretNames::new("my-cert", Some("my-ca"), None)?;
/// assert_eq!(custom.svid(), "my-cert");
/// assert!(SecretNames::new("x", Some("x"), None).is_err());
/// # Ok::<(), spiffe_sds::NameConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretNames {
    svid: String,
    bundle: Option<String>,
    all_bundles: Option<String>,
}

impl Default for SecretNames {
    fn default() -> Self {
        SecretNames::spire()
    }
}

impl SecretNames {
    /// SPIRE's defaults: `default` for the default SVID, `ROOTCA` for the
    /// own trust domain's bundle, `ALL` for every bundle. This is also
    /// Istio's single-cluster setting (I6).
    pub fn spire() -> Self {
        SecretNames {
            svid: DEFAULT_SVID_NAME.to_owned(),
            bundle: Some(DEFAULT_BUNDLE_NAME.to_owned()),
            all_bundles: Some(DEFAULT_ALL_BUNDLES_NAME.to_owned()),
        }
    }

    /// Istio's federation setting (I6): no own-bundle name, and `ROOTCA`
    /// lists every trust domain (own and federated) as separate entries of
    /// Envoy's SPIFFE validator, so each peer is checked against its own
    /// trust domain's CAs. SPIRE spells this `default_bundle_name = "null"`,
    /// `default_all_bundles_name = "ROOTCA"`.
    pub fn istio_federation() -> Self {
        SecretNames {
            svid: DEFAULT_SVID_NAME.to_owned(),
            bundle: None,
            all_bundles: Some(DEFAULT_BUNDLE_NAME.to_owned()),
        }
    }

    /// Custom names; `None` turns a name off.
    ///
    /// # Errors
    ///
    /// [`NameConfigError::Empty`] for an empty name,
    /// [`NameConfigError::Duplicate`] when two settings share a name,
    /// [`NameConfigError::SpiffeScheme`] for a name starting with
    /// `spiffe://`, [`NameConfigError::Wildcard`] for `*`.
    pub fn new(
        svid: impl Into<String>,
        bundle: Option<&str>,
        all_bundles: Option<&str>,
    ) -> Result<Self, NameConfigError> {
        let names = SecretNames {
            svid: svid.into(),
            bundle: bundle.map(str::to_owned),
            all_bundles: all_bundles.map(str::to_owned),
        };
        let configured = [
            Some(names.svid.as_str()),
            names.bundle.as_deref(),
            names.all_bundles.as_deref(),
        ];
        let configured: Vec<&str> = configured.into_iter().flatten().collect();
        for (i, name) in configured.iter().enumerate() {
            if name.is_empty() {
                return Err(NameConfigError::Empty);
            }
            if *name == crate::WILDCARD {
                return Err(NameConfigError::Wildcard);
            }
            if name.starts_with(SCHEME) {
                return Err(NameConfigError::SpiffeScheme {
                    name: (*name).to_owned(),
                });
            }
            if configured[..i].contains(name) {
                return Err(NameConfigError::Duplicate {
                    name: (*name).to_owned(),
                });
            }
        }
        Ok(names)
    }

    /// The default SVID's name.
    pub fn svid(&self) -> &str {
        &self.svid
    }

    /// The own trust domain's bundle name, if on.
    pub fn bundle(&self) -> Option<&str> {
        self.bundle.as_deref()
    }

    /// The all-bundles name, if on.
    pub fn all_bundles(&self) -> Option<&str> {
        self.all_bundles.as_deref()
    }

    /// What `name` refers to, by its spelling alone; whether the workload
    /// has it is decided later, against its current secrets.
    ///
    /// ```
    /// use spiffe_sds::{ResourceRef, SecretNames};
    ///
    /// let names = SecretNames::spire();
    /// assert_eq!(names.classify("default"), Some(ResourceRef::DefaultSvid));
    /// assert_eq!(names.classify("ROOTCA"), Some(ResourceRef::OwnBundle));
    /// assert!(matches!(names.classify("spiffe://example.org"), Some(ResourceRef::Bundle(_))));
    /// assert!(matches!(names.classify("spiffe://example.org/web"), Some(ResourceRef::Svid(_))));
    /// assert_eq!(names.classify("file-root:system"), None);
    /// assert_eq!(names.classify("SPIFFE://example.org"), None);
    /// ```
    pub fn classify(&self, name: &str) -> Option<ResourceRef> {
        if name == self.svid {
            return Some(ResourceRef::DefaultSvid);
        }
        if self.bundle.as_deref() == Some(name) {
            return Some(ResourceRef::OwnBundle);
        }
        if self.all_bundles.as_deref() == Some(name) {
            return Some(ResourceRef::AllBundles);
        }
        // Strict parsing: Envoy echoes the name byte for byte (S8), so a
        // non-canonical spelling must not silently map to a canonical ID.
        let id = SpiffeIdRef::parse(name).ok()?;
        if id.is_trust_domain_id() {
            Some(ResourceRef::Bundle(id.trust_domain()))
        } else {
            Some(ResourceRef::Svid(id.to_owned()))
        }
    }
}

const SCHEME: &str = "spiffe://";

/// What a resource name refers to ([`SecretNames::classify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceRef {
    /// The default (first) SVID, as a TLS certificate.
    DefaultSvid,
    /// The SVID with this SPIFFE ID, as a TLS certificate.
    Svid(SpiffeId),
    /// The own trust domain's bundle, as a validation context.
    OwnBundle,
    /// Every bundle, own and federated, as one validation context.
    AllBundles,
    /// This trust domain's bundle, as a validation context.
    Bundle(TrustDomain),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s6_spire_defaults() {
        let names = SecretNames::spire();
        assert_eq!(names.classify("default"), Some(ResourceRef::DefaultSvid));
        assert_eq!(names.classify("ROOTCA"), Some(ResourceRef::OwnBundle));
        assert_eq!(names.classify("ALL"), Some(ResourceRef::AllBundles));
        assert_eq!(names.classify("rootca"), None);
        assert_eq!(names.classify(""), None);
        assert_eq!(names.classify("*"), None);
    }

    #[test]
    fn i6_istio_federation_rootca_is_all_bundles() {
        let names = SecretNames::istio_federation();
        assert_eq!(names.classify("ROOTCA"), Some(ResourceRef::AllBundles));
        assert_eq!(names.classify("ALL"), None);
    }

    #[test]
    fn s6_spiffe_ids_need_canonical_spelling() {
        let names = SecretNames::spire();
        assert_eq!(
            names.classify("spiffe://example.org"),
            Some(ResourceRef::Bundle(
                TrustDomain::new("example.org").unwrap()
            ))
        );
        assert_eq!(
            names.classify("spiffe://example.org/a/b"),
            Some(ResourceRef::Svid(
                SpiffeId::parse("spiffe://example.org/a/b").unwrap()
            ))
        );
        for bad in [
            "spiffe://Example.org",
            "spiffe://example.org/",
            "example.org",
            "spiffe:/example.org",
            "spiffe://example.org/a//b",
        ] {
            assert_eq!(names.classify(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_settings_are_checked() {
        assert_eq!(
            SecretNames::new("a", Some("a"), None),
            Err(NameConfigError::Duplicate { name: "a".into() })
        );
        assert_eq!(
            SecretNames::new("a", None, Some("a")),
            Err(NameConfigError::Duplicate { name: "a".into() })
        );
        assert_eq!(
            SecretNames::new("", None, None),
            Err(NameConfigError::Empty)
        );
        assert_eq!(
            SecretNames::new("a", Some("*"), None),
            Err(NameConfigError::Wildcard)
        );
        assert!(matches!(
            SecretNames::new("spiffe://x", None, None),
            Err(NameConfigError::SpiffeScheme { .. })
        ));
        assert_eq!(
            SecretNames::new("default", None, Some("ROOTCA")).unwrap(),
            SecretNames::istio_federation()
        );
    }
}
