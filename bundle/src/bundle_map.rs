//! Bundle maps: `{"trust_domains": {"example.com": {...bundle...}}}`.

use std::collections::BTreeMap;

use spiffe_id::TrustDomain;

use crate::json::{Json, ObjectWriter, write_str};
use crate::{BundleError, ParseOptions, SpiffeBundle};

/// A bundle map (SPIFFE bundle spec §5): one SPIFFE bundle per trust
/// domain, keyed by bare trust-domain name, sorted by name.
///
/// Per-bundle refresh hints are parsed and kept, but a map has no refresh
/// behaviour of its own here (rule B-16): schedule refreshes of the map by
/// other means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleMap {
    bundles: BTreeMap<TrustDomain, SpiffeBundle>,
}

impl BundleMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a bundle map with the default [`ParseOptions`].
    ///
    /// # Errors
    ///
    /// See [`BundleMap::parse_with`].
    pub fn parse(json: &[u8]) -> Result<Self, BundleError> {
        Self::parse_with(json, &ParseOptions::default())
    }

    /// Parses a bundle map. `options.max_bytes` bounds the whole document and
    /// `options.max_keys` each bundle; each bundle is parsed in
    /// `options.mode`.
    ///
    /// # Errors
    ///
    /// [`BundleError::TooLarge`], [`BundleError::Json`],
    /// [`BundleError::DuplicateMember`] (including the same trust domain
    /// twice, rules B-14 and B-15), [`BundleError::NotAnObject`],
    /// [`BundleError::MissingTrustDomains`],
    /// [`BundleError::InvalidTopLevelMember`] (`trust_domains` not an object),
    /// [`BundleError::InvalidTrustDomain`] for a key that is not a bare
    /// trust-domain name (`spiffe://example.com` and `Example.com` are
    /// refused), and [`BundleError::InBundleMap`] wrapping the error of the
    /// first bundle that fails.
    pub fn parse_with(json: &[u8], options: &ParseOptions) -> Result<Self, BundleError> {
        let doc = crate::parse_document(json, options)?;
        let Json::Obj(top) = &doc else {
            return Err(BundleError::NotAnObject { found: doc.kind() });
        };
        let tds = match top.get("trust_domains") {
            None => return Err(BundleError::MissingTrustDomains),
            Some(Json::Obj(tds)) => tds,
            Some(other) => {
                return Err(BundleError::InvalidTopLevelMember {
                    member: "trust_domains",
                    reason: format!("{}, expected an object", other.kind()),
                });
            }
        };
        let mut bundles = BTreeMap::new();
        for (name, value) in tds {
            let td = TrustDomain::new(name).map_err(|source| BundleError::InvalidTrustDomain {
                name: name.clone(),
                source,
            })?;
            let (bundle, _) =
                SpiffeBundle::from_document(td.clone(), value, options).map_err(|e| {
                    BundleError::InBundleMap {
                        trust_domain: name.clone(),
                        source: Box::new(e),
                    }
                })?;
            bundles.insert(td, bundle);
        }
        Ok(BundleMap { bundles })
    }

    /// Adds or replaces the bundle of its trust domain; returns the old one.
    pub fn insert(&mut self, bundle: SpiffeBundle) -> Option<SpiffeBundle> {
        self.bundles.insert(bundle.trust_domain().clone(), bundle)
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &str) -> Option<&SpiffeBundle> {
        self.bundles.get(trust_domain)
    }

    /// The bundles, sorted by trust domain.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &SpiffeBundle> + '_ {
        self.bundles.values()
    }

    /// Number of trust domains.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }

    /// The map as deterministic JSON (trust domains sorted, each bundle as
    /// [`SpiffeBundle::to_json`] writes it).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let mut obj = ObjectWriter::new(&mut out);
        let tds = obj.member("trust_domains");
        tds.push('{');
        for (i, (td, bundle)) in self.bundles.iter().enumerate() {
            if i > 0 {
                tds.push(',');
            }
            write_str(tds, td.as_str());
            tds.push(':');
            tds.push_str(&bundle.to_json());
        }
        tds.push('}');
        obj.finish();
        out
    }
}

impl FromIterator<SpiffeBundle> for BundleMap {
    fn from_iter<I: IntoIterator<Item = SpiffeBundle>>(iter: I) -> Self {
        let mut map = BundleMap::new();
        for b in iter {
            map.insert(b);
        }
        map
    }
}

impl IntoIterator for BundleMap {
    type Item = SpiffeBundle;
    type IntoIter = std::collections::btree_map::IntoValues<TrustDomain, SpiffeBundle>;

    fn into_iter(self) -> Self::IntoIter {
        self.bundles.into_values()
    }
}
