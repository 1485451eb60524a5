//! Registration entries: which callers get which SPIFFE IDs.
//!
//! (Placeholder of the entries API while the file format is written.)

use std::collections::BTreeSet;
use std::time::Duration;

use spiffe_id::{SpiffeId, TrustDomain};
pub use spiffe_workload_api::server::Selector;

/// One registration entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    entry_id: String,
    spiffe_id: SpiffeId,
    selectors: BTreeSet<Selector>,
    dns_names: Vec<String>,
    ttl: Option<Duration>,
    hint: Option<String>,
    federates_with: BTreeSet<TrustDomain>,
}

/// Why entries are invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntriesError {
    /// Placeholder.
    #[error("{0}")]
    Invalid(String),
}

impl Entry {
    /// An entry.
    ///
    /// # Errors
    ///
    /// Never in the placeholder.
    pub fn new(
        entry_id: impl Into<String>,
        spiffe_id: SpiffeId,
        selectors: impl IntoIterator<Item = Selector>,
    ) -> Result<Self, EntriesError> {
        Ok(Entry {
            entry_id: entry_id.into(),
            spiffe_id,
            selectors: selectors.into_iter().collect(),
            dns_names: Vec::new(),
            ttl: None,
            hint: None,
            federates_with: BTreeSet::new(),
        })
    }
    /// With DNS names.
    ///
    /// # Errors
    ///
    /// Never in the placeholder.
    pub fn with_dns_names<I, S>(mut self, names: I) -> Result<Self, EntriesError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dns_names = names.into_iter().map(Into::into).collect();
        Ok(self)
    }
    /// With a TTL.
    ///
    /// # Errors
    ///
    /// Never in the placeholder.
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self, EntriesError> {
        self.ttl = Some(ttl);
        Ok(self)
    }
    /// With a hint.
    ///
    /// # Errors
    ///
    /// Never in the placeholder.
    pub fn with_hint(mut self, hint: &str) -> Result<Self, EntriesError> {
        self.hint = Some(hint.to_owned()).filter(|h| !h.is_empty());
        Ok(self)
    }
    /// Federating with.
    #[must_use]
    pub fn with_federates_with(mut self, tds: impl IntoIterator<Item = TrustDomain>) -> Self {
        self.federates_with = tds.into_iter().collect();
        self
    }
    /// Entry ID.
    pub fn entry_id(&self) -> &str {
        &self.entry_id
    }
    /// SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    /// Selectors.
    pub fn selectors(&self) -> &BTreeSet<Selector> {
        &self.selectors
    }
    /// DNS names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }
    /// TTL.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
    /// Hint.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// Federates with.
    pub fn federates_with(&self) -> &BTreeSet<TrustDomain> {
        &self.federates_with
    }
}

/// Shortest lifetime.
pub const MIN_TTL: Duration = Duration::from_secs(2);
/// Longest lifetime.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Placeholder duration parser.
///
/// # Errors
///
/// Not a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, EntriesError> {
    let (n, mult) = if let Some(m) = s.strip_suffix('m') {
        (m, 60)
    } else if let Some(h) = s.strip_suffix('h') {
        (h, 3600)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1)
    };
    n.parse::<u64>()
        .map(|n| Duration::from_secs(n * mult))
        .map_err(|e| EntriesError::Invalid(e.to_string()))
}

/// Placeholder loader.
///
/// # Errors
///
/// Always.
pub fn load(_path: &std::path::Path, _td: &TrustDomain) -> Result<Vec<Entry>, EntriesError> {
    Err(EntriesError::Invalid("not yet".to_owned()))
}
