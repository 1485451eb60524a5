//! Registration entries: which callers get which SPIFFE IDs, as in SPIRE,
//! and the entries file of `spiffe agent --entries`.
//!
//! # The file
//!
//! TOML (an array of `[[entry]]` tables) or JSON (`{"entry": [...]}`) with
//! the same keys; the format is told by the file name's extension (`.toml`,
//! `.json`). Unknown keys are errors, so a typo cannot silently drop a
//! selector. Keys of an entry:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `spiffe_id` | yes | a SPIFFE ID, or a template (below) |
//! | `selectors` | yes | `unix:uid:<n>`, `unix:gid:<n>`, `unix:user:<name>`, `unix:group:<name>`; a caller must match **every** one |
//! | `trust_domain` | no | the value of `{{ .TrustDomain }}` (default: the agent's own); the ID must then be in it |
//! | `namespace`, `service_account` | no | the values of `{{ .Namespace }}` and `{{ .ServiceAccount }}` |
//! | `dns_names` | no | DNS SANs of the X509-SVID |
//! | `ttl` | no | SVID lifetime: `"90s"`, `"5m"`, `"1h30m"`, `"2d"` or a number of seconds, from [`MIN_TTL`] to [`MAX_TTL`] |
//! | `hint` | no | the Workload API hint (at most [`MAX_HINT_LEN`] bytes) |
//! | `federates_with` | no | trust domains whose bundles this entry's workloads get; absent means none, as in SPIRE |
//! | `entry_id` | no | the entry's name; default `entry-0001`, `entry-0002`, ... by position. A caller gets its SVIDs in entry-ID order, the first being its default SVID (with default IDs only, that is the file order) |
//!
//! Templates: `{{ .TrustDomain }}`, `{{ .Namespace }}` and
//! `{{ .ServiceAccount }}` (spaces inside the braces optional) are replaced
//! in one pass; a value may not hold `/` (it fills one path segment) and is
//! never read as a template itself. `unix:user:` and `unix:group:` names are
//! looked up in `/etc/passwd` and `/etc/group` when the file is read.
//!
//! ```
//! use spiffe_cli::agent::entries::{self, Accounts, Format};
//! use spiffe_id::TrustDomain;
//!
//! struct Users;
//! impl Accounts for Users {
//!     fn uid_of(&self, user: &str) -> Option<u32> { (user == "web").then_some(1000) }
//!     fn gid_of(&self, group: &str) -> Option<u32> { (group == "mesh").then_some(2000) }
//! }
//!
//! let toml = r#"
//! [[entry]]
//! spiffe_id = "spiffe://{{ .TrustDomain }}/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}"
//! namespace = "prod"
//! service_account = "web"
//! selectors = ["unix:user:web", "unix:group:mesh"]
//! dns_names = ["web.prod.svc"]
//! ttl = "30m"
//! hint = "internal"
//! federates_with = ["partner.org"]
//!
//! [[entry]]
//! entry_id = "batch"
//! spiffe_id = "spiffe://example.org/batch"
//! selectors = ["unix:uid:1001"]
//! "#;
//! let td = TrustDomain::new("example.org")?;
//! let parsed = entries::parse(toml, Format::Toml, &td, &Users)?;
//! assert_eq!(parsed[0].spiffe_id().as_str(), "spiffe://example.org/ns/prod/sa/web");
//! assert_eq!(parsed[0].entry_id(), "entry-0001");
//! assert_eq!(parsed[1].entry_id(), "batch");
//!
//! let json = r#"{"entry": [
//!   {"spiffe_id": "spiffe://example.org/api", "selectors": ["unix:uid:1000"], "ttl": 120}
//! ]}"#;
//! let parsed = entries::parse(json, Format::Json, &td, &Users)?;
//! assert_eq!(parsed[0].ttl(), Some(std::time::Duration::from_secs(120)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use spiffe_id::{SpiffeId, TrustDomain};
pub use spiffe_workload_api::MAX_HINT_LEN;
pub use spiffe_workload_api::server::Selector;

/// The shortest SVID lifetime: renewal happens at half of it, and below a
/// second or so a renewal cannot reliably reach workloads in time.
pub const MIN_TTL: Duration = Duration::from_secs(2);

/// The longest SVID lifetime (30 days): far beyond what a development agent
/// needs, and well inside its CA's one-year lifetime.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The largest entries file read.
pub const MAX_ENTRIES_FILE_BYTES: usize = 1 << 20;

/// The most entries in one file: 9,999, so that the default IDs
/// `entry-0001` to `entry-9999` sort in file order.
pub const MAX_ENTRIES: usize = 9_999;

/// The longest entry ID.
const MAX_ENTRY_ID_LEN: usize = 255;

/// The largest `/etc/passwd` or `/etc/group` read.
const MAX_ACCOUNTS_FILE_BYTES: u64 = 4 << 20;

/// One registration entry: a SPIFFE ID and the callers entitled to it.
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

/// Why registration entries are invalid. Errors about a file's entry say
/// which one (its 1-based position) and which key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntriesError {
    /// The file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system reported.
        reason: String,
    },
    /// The file is larger than [`MAX_ENTRIES_FILE_BYTES`].
    #[error("{} is larger than {MAX_ENTRIES_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file name ends neither in `.toml` nor in `.json`.
    #[error("{}: name the file *.toml or *.json so that its format is known", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The document is not valid TOML or JSON of the expected shape (an
    /// unknown key, a wrong type, a missing required key).
    #[error("malformed entries document: {reason}")]
    Syntax {
        /// The parser's description.
        reason: String,
    },
    /// The document holds no entry.
    #[error("no entry: an agent with no registration entry serves nobody")]
    Empty,
    /// More than [`MAX_ENTRIES`] entries.
    #[error("{count} entries, more than the {MAX_ENTRIES} allowed")]
    TooMany {
        /// How many there are.
        count: usize,
    },
    /// One key of one entry is invalid.
    #[error("entry {position}{}: {key}: {reason}", entry_id.as_ref().map(|id| format!(" ({id})")).unwrap_or_default())]
    Invalid {
        /// The entry's 1-based position in the file (0 for an entry built in
        /// code).
        position: usize,
        /// Its ID, when known.
        entry_id: Option<String>,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> EntriesError {
    EntriesError::Invalid {
        position: 0,
        entry_id: None,
        key,
        reason: reason.into(),
    }
}

impl Entry {
    /// An entry named `entry_id` giving `spiffe_id` to callers with all of
    /// `selectors`.
    ///
    /// # Errors
    ///
    /// [`EntriesError::Invalid`] for an empty, over-long or non-printable
    /// entry ID (printable ASCII, no spaces), a trust-domain ID without a
    /// path, or no selector.
    pub fn new(
        entry_id: impl Into<String>,
        spiffe_id: SpiffeId,
        selectors: impl IntoIterator<Item = Selector>,
    ) -> Result<Self, EntriesError> {
        let entry_id = entry_id.into();
        check_entry_id(&entry_id)?;
        if spiffe_id.is_trust_domain_id() {
            return Err(invalid(
                "spiffe_id",
                format!(
                    "{spiffe_id} has no path: a workload ID names a workload, not a trust domain"
                ),
            ));
        }
        let selectors: BTreeSet<Selector> = selectors.into_iter().collect();
        if selectors.is_empty() {
            return Err(invalid(
                "selectors",
                "no selector: an entry without selectors matches nobody",
            ));
        }
        Ok(Entry {
            entry_id,
            spiffe_id,
            selectors,
            dns_names: Vec::new(),
            ttl: None,
            hint: None,
            federates_with: BTreeSet::new(),
        })
    }

    /// This entry with DNS names in its X509-SVIDs (duplicates dropped).
    ///
    /// # Errors
    ///
    /// [`EntriesError::Invalid`] for a name that is not a lowercase DNS
    /// name (LDH labels of at most 63 bytes, at most 253 in all, no trailing
    /// dot; a leading `*.` wildcard label is allowed).
    pub fn with_dns_names<I, S>(mut self, names: I) -> Result<Self, EntriesError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            check_dns_name(&name).map_err(|reason| invalid("dns_names", reason))?;
            if !out.contains(&name) {
                out.push(name);
            }
        }
        self.dns_names = out;
        Ok(self)
    }

    /// This entry with its own SVID lifetime.
    ///
    /// # Errors
    ///
    /// [`EntriesError::Invalid`] outside [`MIN_TTL`] to [`MAX_TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self, EntriesError> {
        check_ttl(ttl).map_err(|reason| invalid("ttl", reason))?;
        self.ttl = Some(ttl);
        Ok(self)
    }

    /// This entry with a Workload API hint (an empty hint means none).
    ///
    /// # Errors
    ///
    /// [`EntriesError::Invalid`] past [`MAX_HINT_LEN`] bytes.
    pub fn with_hint(mut self, hint: &str) -> Result<Self, EntriesError> {
        if hint.len() > MAX_HINT_LEN {
            return Err(invalid(
                "hint",
                format!("{} bytes, more than {MAX_HINT_LEN}", hint.len()),
            ));
        }
        self.hint = Some(hint.to_owned()).filter(|h| !h.is_empty());
        Ok(self)
    }

    /// This entry's workloads also get the bundles of `trust_domains`.
    #[must_use]
    pub fn with_federates_with(
        mut self,
        trust_domains: impl IntoIterator<Item = TrustDomain>,
    ) -> Self {
        self.federates_with = trust_domains.into_iter().collect();
        self
    }

    /// The entry's ID.
    pub fn entry_id(&self) -> &str {
        &self.entry_id
    }

    /// The SPIFFE ID it gives.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The selectors a caller must all match.
    pub fn selectors(&self) -> &BTreeSet<Selector> {
        &self.selectors
    }

    /// DNS names of its X509-SVIDs.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// Its SVID lifetime; `None` for the agent's default.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// Its hint.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The trust domains whose bundles its workloads get.
    pub fn federates_with(&self) -> &BTreeSet<TrustDomain> {
        &self.federates_with
    }
}

fn check_entry_id(id: &str) -> Result<(), EntriesError> {
    if id.is_empty() || id.len() > MAX_ENTRY_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "entry_id",
            format!("{id:?}: 1 to {MAX_ENTRY_ID_LEN} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

fn check_ttl(ttl: Duration) -> Result<(), String> {
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        Ok(())
    } else {
        Err(format!(
            "{} s is outside {} s to {} s",
            ttl.as_secs_f64(),
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs()
        ))
    }
}

fn check_dns_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{name:?} is not a DNS name: {why}"));
    if name.is_empty() || name.len() > 253 {
        return bad("1 to 253 characters");
    }
    let body = name.strip_prefix("*.").unwrap_or(name);
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("every label has 1 to 63 characters (no empty label, no trailing dot)");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("lowercase letters, digits and '-' only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label neither starts nor ends with '-'");
        }
    }
    Ok(())
}

/// Parses a duration: `"90s"`, `"5m"`, `"1h30m"`, `"2d"` (units `d`, `h`,
/// `m`, `s`, each at most once and in that order), or a plain number of
/// seconds.
///
/// # Errors
///
/// [`EntriesError::Invalid`] (key `ttl`) for anything else, zero, or an
/// overflow.
pub fn parse_duration(text: &str) -> Result<Duration, EntriesError> {
    let bad = |why: &str| invalid("ttl", format!("{text:?}: {why}"));
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| bad("too large"))?;
        return Ok(Duration::from_secs(secs));
    }
    const UNITS: [(u8, u64); 4] = [(b'd', 86_400), (b'h', 3600), (b'm', 60), (b's', 1)];
    let mut total: u64 = 0;
    let mut next_unit = 0;
    let mut digits = String::new();
    for b in text.bytes() {
        if b.is_ascii_digit() {
            digits.push(char::from(b));
            continue;
        }
        let Some(position) = UNITS.iter().position(|(u, _)| *u == b) else {
            return Err(bad(
                "use a number followed by d, h, m or s, like 90s or 1h30m",
            ));
        };
        if position < next_unit {
            return Err(bad("units in the order d, h, m, s, each at most once"));
        }
        if digits.is_empty() {
            return Err(bad("a unit without a number"));
        }
        let n: u64 = digits.parse().map_err(|_| bad("too large"))?;
        let (_, scale) = UNITS[position];
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too large"))?;
        digits.clear();
        next_unit = position + 1;
    }
    if !digits.is_empty() {
        return Err(bad("a number without a unit at the end"));
    }
    Ok(Duration::from_secs(total))
}

/// The format of an entries document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// TOML: `[[entry]]` tables.
    Toml,
    /// JSON: `{"entry": [...]}`.
    Json,
}

impl Format {
    /// The format a file's extension names (`.toml`, `.json`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Resolves the names of `unix:user:` and `unix:group:` selectors.
pub trait Accounts {
    /// The uid of a user name.
    fn uid_of(&self, user: &str) -> Option<u32>;
    /// The gid of a group name.
    fn gid_of(&self, group: &str) -> Option<u32>;
}

/// The local accounts of `/etc/passwd` and `/etc/group`. Names served only
/// through NSS (LDAP, say) are not found: give the number instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn uid_of(&self, user: &str) -> Option<u32> {
        read_small("/etc/passwd").and_then(|text| id_in_account_file(&text, user, 2))
    }

    fn gid_of(&self, group: &str) -> Option<u32> {
        read_small("/etc/group").and_then(|text| id_in_account_file(&text, group, 2))
    }
}

fn read_small(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_ACCOUNTS_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The number in field `field` (0-based) of the line of `/etc/passwd` or
/// `/etc/group` whose first field is `name`; malformed lines are skipped.
fn id_in_account_file(text: &str, name: &str, field: usize) -> Option<u32> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            fields.nth(field - 1)?.parse().ok()
        })
}

/// The whole document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    entry: Vec<RawEntry>,
}

/// A TTL as written: a number of seconds or a duration string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTtl {
    Seconds(u64),
    Text(String),
}

/// One entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    entry_id: Option<String>,
    spiffe_id: String,
    trust_domain: Option<String>,
    namespace: Option<String>,
    service_account: Option<String>,
    selectors: Vec<String>,
    #[serde(default)]
    dns_names: Vec<String>,
    ttl: Option<RawTtl>,
    hint: Option<String>,
    #[serde(default)]
    federates_with: Vec<String>,
}

/// Reads an entries file (at most [`MAX_ENTRIES_FILE_BYTES`], format from
/// its extension) and parses it with the [`SystemAccounts`].
///
/// # Errors
///
/// [`EntriesError::Read`], [`EntriesError::TooLarge`],
/// [`EntriesError::UnknownFormat`], and the errors of [`parse`].
pub fn load(path: &Path, trust_domain: &TrustDomain) -> Result<Vec<Entry>, EntriesError> {
    let format = Format::from_path(path).ok_or_else(|| EntriesError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let read_err = |e: std::io::Error| EntriesError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(u64::try_from(MAX_ENTRIES_FILE_BYTES).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_ENTRIES_FILE_BYTES {
        return Err(EntriesError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| EntriesError::Syntax {
        reason: "the file is not UTF-8".to_owned(),
    })?;
    parse(&text, format, trust_domain, &SystemAccounts)
}

/// `line L column C` (both from 1, columns in characters) of the byte
/// offset `at` of `text`, as serde_json reports positions.
fn line_column(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    format!("line {line} column {column}")
}

/// Parses an entries document. `trust_domain` is the agent's own (the
/// default of `{{ .TrustDomain }}`); `accounts` resolves user and group
/// names.
///
/// # Errors
///
/// [`EntriesError::Syntax`], [`EntriesError::Empty`],
/// [`EntriesError::TooMany`], and [`EntriesError::Invalid`] naming the
/// entry and key at fault.
pub fn parse(
    text: &str,
    format: Format,
    trust_domain: &TrustDomain,
    accounts: &dyn Accounts,
) -> Result<Vec<Entry>, EntriesError> {
    if text.len() > MAX_ENTRIES_FILE_BYTES {
        return Err(EntriesError::Syntax {
            reason: format!("more than {MAX_ENTRIES_FILE_BYTES} bytes"),
        });
    }
    let document: Document = match format {
        Format::Toml => toml::from_str(text).map_err(|e| EntriesError::Syntax {
            reason: match e.span() {
                Some(span) => format!("{} at {}", e.message(), line_column(text, span.start)),
                None => e.message().to_owned(),
            },
        })?,
        Format::Json => serde_json::from_str(text).map_err(|e| EntriesError::Syntax {
            reason: e.to_string(),
        })?,
    };
    if document.entry.is_empty() {
        return Err(EntriesError::Empty);
    }
    if document.entry.len() > MAX_ENTRIES {
        return Err(EntriesError::TooMany {
            count: document.entry.len(),
        });
    }
    // Explicit IDs first, so that a default one can be checked against them.
    let explicit: BTreeSet<&str> = document
        .entry
        .iter()
        .filter_map(|e| e.entry_id.as_deref())
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(document.entry.len());
    for (index, raw) in document.entry.iter().enumerate() {
        let position = index + 1;
        let entry_id = raw
            .entry_id
            .clone()
            .unwrap_or_else(|| format!("entry-{position:04}"));
        let at = |e: EntriesError| match e {
            EntriesError::Invalid { key, reason, .. } => EntriesError::Invalid {
                position,
                entry_id: Some(entry_id.clone()),
                key,
                reason,
            },
            other => other,
        };
        if raw.entry_id.is_none() && explicit.contains(entry_id.as_str()) {
            return Err(at(invalid(
                "entry_id",
                format!("the default ID {entry_id} is taken by another entry"),
            )));
        }
        if !seen.insert(entry_id.clone()) {
            return Err(at(invalid(
                "entry_id",
                format!("{entry_id:?} is used twice"),
            )));
        }
        out.push(entry(raw, &entry_id, trust_domain, accounts).map_err(at)?);
    }
    Ok(out)
}

/// Builds one entry; errors carry no position yet.
fn entry(
    raw: &RawEntry,
    entry_id: &str,
    own: &TrustDomain,
    accounts: &dyn Accounts,
) -> Result<Entry, EntriesError> {
    let entry_td =
        match &raw.trust_domain {
            Some(name) => Some(TrustDomain::new(name).map_err(|e| {
                invalid("trust_domain", format!("{name:?}: {e} (rule {})", e.rule()))
            })?),
            None => None,
        };
    let expanded = expand(&raw.spiffe_id, raw, entry_td.as_ref().unwrap_or(own))?;
    let spiffe_id = SpiffeId::parse(&expanded).map_err(|e| {
        invalid(
            "spiffe_id",
            format!("{expanded:?}: {e} (rule {})", e.rule()),
        )
    })?;
    if let Some(td) = &entry_td
        && &spiffe_id.trust_domain() != td
    {
        return Err(invalid(
            "spiffe_id",
            format!("{spiffe_id} is not in trust domain {td} (the entry's trust_domain)"),
        ));
    }
    let selectors = raw
        .selectors
        .iter()
        .map(|s| selector(s, accounts))
        .collect::<Result<Vec<_>, _>>()?;
    let mut entry = Entry::new(entry_id, spiffe_id, selectors)?
        .with_dns_names(raw.dns_names.iter().cloned())?;
    if let Some(ttl) = &raw.ttl {
        let ttl = match ttl {
            RawTtl::Seconds(secs) => Duration::from_secs(*secs),
            RawTtl::Text(text) => parse_duration(text)?,
        };
        entry = entry.with_ttl(ttl)?;
    }
    if let Some(hint) = &raw.hint {
        entry = entry.with_hint(hint)?;
    }
    let federates_with = raw
        .federates_with
        .iter()
        .map(|name| {
            TrustDomain::new(name).map_err(|e| {
                invalid(
                    "federates_with",
                    format!("{name:?}: {e} (rule {})", e.rule()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entry.with_federates_with(federates_with))
}

/// One selector.
fn selector(text: &str, accounts: &dyn Accounts) -> Result<Selector, EntriesError> {
    let bad = |why: String| invalid("selectors", format!("{text:?}: {why}"));
    let Some(rest) = text.strip_prefix("unix:") else {
        return Err(bad(
            "only unix:uid:, unix:gid:, unix:user: and unix:group: selectors are known here"
                .to_owned(),
        ));
    };
    let (kind, value) = rest
        .split_once(':')
        .ok_or_else(|| bad("expected unix:<kind>:<value>".to_owned()))?;
    let number = |value: &str| -> Result<u32, EntriesError> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a decimal number".to_owned()));
        }
        value
            .parse()
            .map_err(|_| bad("larger than a 32-bit id".to_owned()))
    };
    match kind {
        "uid" => number(value).map(Selector::Uid),
        "gid" => number(value).map(Selector::Gid),
        "user" if !value.is_empty() => accounts
            .uid_of(value)
            .map(Selector::Uid)
            .ok_or_else(|| bad(format!("no user {value:?} in /etc/passwd"))),
        "group" if !value.is_empty() => accounts
            .gid_of(value)
            .map(Selector::Gid)
            .ok_or_else(|| bad(format!("no group {value:?} in /etc/group"))),
        "user" | "group" => Err(bad("an empty name".to_owned())),
        other => Err(bad(format!(
            "unknown kind {other:?} (uid, gid, user, group)"
        ))),
    }
}

/// A template variable and where its value comes from.
#[derive(Clone, Copy)]
enum Variable {
    TrustDomain,
    Namespace,
    ServiceAccount,
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variable::TrustDomain => ".TrustDomain",
            Variable::Namespace => ".Namespace",
            Variable::ServiceAccount => ".ServiceAccount",
        })
    }
}

/// Expands the template variables of `template` in one pass.
fn expand(
    template: &str,
    raw: &RawEntry,
    trust_domain: &TrustDomain,
) -> Result<String, EntriesError> {
    let bad = |why: String| invalid("spiffe_id", format!("template {template:?}: {why}"));
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    loop {
        let stray = |at: usize| {
            bad(format!(
                "a stray \"}}}}\" at byte {}",
                template.len() - rest.len() + at
            ))
        };
        let close = rest.find("}}");
        let Some(at) = rest.find("{{") else {
            if let Some(c) = close {
                return Err(stray(c));
            }
            out.push_str(rest);
            return Ok(out);
        };
        if let Some(c) = close
            && c < at
        {
            return Err(stray(c));
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| bad("an unclosed \"{{\"".to_owned()))?;
        let name = after[..end].trim_matches(' ');
        let variable = match name {
            ".TrustDomain" => Variable::TrustDomain,
            ".Namespace" => Variable::Namespace,
            ".ServiceAccount" => Variable::ServiceAccount,
            other => {
                return Err(bad(format!(
                    "unknown variable {other:?} (.TrustDomain, .Namespace, .ServiceAccount)"
                )));
            }
        };
        let value = match variable {
            Variable::TrustDomain => trust_domain.as_str(),
            Variable::Namespace => raw
                .namespace
                .as_deref()
                .ok_or_else(|| bad(format!("{variable} is used but the entry has no namespace")))?,
            Variable::ServiceAccount => raw.service_account.as_deref().ok_or_else(|| {
                bad(format!(
                    "{variable} is used but the entry has no service_account"
                ))
            })?,
        };
        if value.is_empty() || value.contains('/') {
            return Err(bad(format!(
                "the value {value:?} of {variable} must be one non-empty path segment (no '/')"
            )));
        }
        out.push_str(value);
        rest = &after[end + 2..];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Fixed;
    impl Accounts for Fixed {
        fn uid_of(&self, user: &str) -> Option<u32> {
            (user == "web").then_some(1000)
        }
        fn gid_of(&self, group: &str) -> Option<u32> {
            (group == "mesh").then_some(2000)
        }
    }

    fn own() -> TrustDomain {
        TrustDomain::new("example.org").unwrap()
    }

    fn toml_entry(body: &str) -> Result<Vec<Entry>, EntriesError> {
        parse(
            &format!("[[entry]]\n{body}\n"),
            Format::Toml,
            &own(),
            &Fixed,
        )
    }

    /// The key and reason of an `Invalid` error.
    fn invalid_key(result: Result<Vec<Entry>, EntriesError>) -> (&'static str, String) {
        match result {
            Err(EntriesError::Invalid {
                key,
                reason,
                position,
                ..
            }) => {
                assert_eq!(position, 1);
                (key, reason)
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_full_entry_parses() {
        let entries = toml_entry(
            r#"spiffe_id = "spiffe://{{.TrustDomain}}/ns/{{ .Namespace }}/sa/{{ .ServiceAccount}}"
trust_domain = "other.org"
namespace = "prod"
service_account = "web"
selectors = ["unix:user:web", "unix:group:mesh", "unix:uid:7"]
dns_names = ["web.prod.svc", "*.web.local", "web.prod.svc"]
ttl = "1h30m"
hint = "internal"
federates_with = ["example.org", "partner.org"]"#,
        )
        .unwrap();
        let e = &entries[0];
        assert_eq!(e.spiffe_id().as_str(), "spiffe://other.org/ns/prod/sa/web");
        let selectors: Vec<Selector> = e.selectors().iter().copied().collect();
        assert_eq!(
            selectors,
            [Selector::Uid(7), Selector::Uid(1000), Selector::Gid(2000)]
        );
        assert_eq!(e.dns_names(), ["web.prod.svc", "*.web.local"]);
        assert_eq!(e.ttl(), Some(Duration::from_secs(5400)));
        assert_eq!(e.hint(), Some("internal"));
        assert_eq!(e.federates_with().len(), 2);
        assert_eq!(e.entry_id(), "entry-0001");
    }

    #[test]
    fn document_errors() {
        assert!(matches!(
            parse("", Format::Toml, &own(), &Fixed),
            Err(EntriesError::Syntax { .. })
        ));
        assert!(matches!(
            parse("entry = []", Format::Toml, &own(), &Fixed),
            Err(EntriesError::Empty)
        ));
        assert!(matches!(
            parse(r#"{"entry": []}"#, Format::Json, &own(), &Fixed),
            Err(EntriesError::Empty)
        ));
        // Unknown keys anywhere.
        assert!(matches!(
            parse(r#"{"entry": [], "extra": 1}"#, Format::Json, &own(), &Fixed),
            Err(EntriesError::Syntax { .. })
        ));
        let typo =
            toml_entry("spiffe_id = \"spiffe://example.org/a\"\nselector = [\"unix:uid:1\"]");
        match typo {
            Err(EntriesError::Syntax { reason }) => {
                assert!(reason.contains("selector"), "{reason}");
                assert!(reason.ends_with(" at line 3 column 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let many = format!(
            "{{\"entry\": [{}]}}",
            vec![
                r#"{"spiffe_id": "spiffe://example.org/a", "selectors": ["unix:uid:1"]}"#;
                MAX_ENTRIES + 1
            ]
            .join(",")
        );
        assert!(matches!(
            parse(&many, Format::Json, &own(), &Fixed),
            Err(EntriesError::TooMany { .. })
        ));
    }

    #[test]
    fn each_key_is_checked() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"spiffe_id = "spiffe://example.org"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "no path",
            ),
            (
                r#"spiffe_id = "spiffe://Example.org/a"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "rule",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = []"#,
                "selectors",
                "no selector",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["k8s:ns:prod"]"#,
                "selectors",
                "only unix:",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:-1"]"#,
                "selectors",
                "decimal",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:4294967296"]"#,
                "selectors",
                "32-bit",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:user:nobody-here"]"#,
                "selectors",
                "no user",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:pid:1"]"#,
                "selectors",
                "unknown kind",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
dns_names = ["Web.local"]"#,
                "dns_names",
                "lowercase",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
dns_names = ["web.local."]"#,
                "dns_names",
                "empty label",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
ttl = "1s""#,
                "ttl",
                "outside",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
ttl = "5m1h""#,
                "ttl",
                "order",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
ttl = "0""#,
                "ttl",
                "outside",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]
federates_with = ["bad domain"]"#,
                "federates_with",
                "rule",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a"
trust_domain = "other.org"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "not in trust domain other.org",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/{{ .Namespace }}"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "no namespace",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/{{ .Pod }}"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "unknown variable",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/{{ .Namespace"
namespace = "a"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "unclosed",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/a}}"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "stray",
            ),
            (
                r#"spiffe_id = "spiffe://example.org/ns/{{ .Namespace }}"
namespace = "a/b"
selectors = ["unix:uid:1"]"#,
                "spiffe_id",
                "one non-empty path segment",
            ),
            (
                r#"entry_id = "has space"
spiffe_id = "spiffe://example.org/a"
selectors = ["unix:uid:1"]"#,
                "entry_id",
                "printable",
            ),
        ];
        for (body, key, reason) in cases {
            let (got_key, got_reason) = invalid_key(toml_entry(body));
            assert_eq!(got_key, *key, "{body}: {got_reason}");
            assert!(got_reason.contains(reason), "{body}: {got_reason}");
        }
        let long_hint = format!(
            "spiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\nhint = \"{}\"",
            "h".repeat(MAX_HINT_LEN + 1)
        );
        assert_eq!(invalid_key(toml_entry(&long_hint)).0, "hint");
    }

    #[test]
    fn entry_ids_are_unique_and_default_ones_keep_the_file_order() {
        let doc = r#"{"entry": [
            {"spiffe_id": "spiffe://example.org/a", "selectors": ["unix:uid:1"]},
            {"entry_id": "entry-0001", "spiffe_id": "spiffe://example.org/b", "selectors": ["unix:uid:1"]}
        ]}"#;
        match parse(doc, Format::Json, &own(), &Fixed) {
            Err(EntriesError::Invalid {
                key: "entry_id",
                position: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let doc = r#"{"entry": [
            {"entry_id": "x", "spiffe_id": "spiffe://example.org/a", "selectors": ["unix:uid:1"]},
            {"entry_id": "x", "spiffe_id": "spiffe://example.org/b", "selectors": ["unix:uid:1"]}
        ]}"#;
        match parse(doc, Format::Json, &own(), &Fixed) {
            Err(EntriesError::Invalid {
                key: "entry_id",
                position: 2,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_are_never_expanded_again() {
        let (key, reason) = invalid_key(toml_entry(
            r#"spiffe_id = "spiffe://example.org/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}"
namespace = "{{ .ServiceAccount }}"
service_account = "web"
selectors = ["unix:uid:1"]"#,
        ));
        // The value is substituted literally; braces are not valid in a path.
        assert_eq!(key, "spiffe_id");
        assert!(reason.contains("{{ .ServiceAccount }}"), "{reason}");
    }

    #[test]
    fn account_files_are_read_by_name() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/sh\nbroken\nweb:x:1000:1000::/home/web:/bin/sh\n";
        assert_eq!(id_in_account_file(passwd, "web", 2), Some(1000));
        assert_eq!(id_in_account_file(passwd, "root", 2), Some(0));
        assert_eq!(id_in_account_file(passwd, "nobody", 2), None);
        assert_eq!(id_in_account_file(passwd, "broken", 2), None);
        let group = "mesh:x:2000:web,api\n";
        assert_eq!(id_in_account_file(group, "mesh", 2), Some(2000));
        // The running system has a root user.
        assert_eq!(SystemAccounts.uid_of("root"), Some(0));
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90", 90),
            ("90s", 90),
            ("5m", 300),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("1d1h1m1s", 90_061),
        ] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        for text in [
            "",
            "s",
            "1x",
            "1s1s",
            "1m1h",
            "-1s",
            "1.5h",
            " 1s",
            "1s ",
            "99999999999999999999s",
            "213503982334602d",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = parse(&text, Format::Toml, &own(), &Fixed);
            let _ = parse(&text, Format::Json, &own(), &Fixed);
        }

        #[test]
        fn durations_round_trip(d in 0u64..1000, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let mut text = String::new();
            for (n, unit) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
                if n > 0 {
                    text.push_str(&format!("{n}{unit}"));
                }
            }
            prop_assume!(!text.is_empty());
            prop_assert_eq!(
                parse_duration(&text).unwrap(),
                Duration::from_secs(d * 86_400 + h * 3600 + m * 60 + s)
            );
        }

        #[test]
        fn istio_templates_expand_to_the_istio_id(
            ns in "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?",
            sa in "[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?",
        ) {
            let doc = format!(
                "[[entry]]\nspiffe_id = \"spiffe://{{{{ .TrustDomain }}}}/ns/{{{{ .Namespace }}}}/sa/{{{{ .ServiceAccount }}}}\"\nnamespace = \"{ns}\"\nservice_account = \"{sa}\"\nselectors = [\"unix:uid:1\"]\n"
            );
            let entries = parse(&doc, Format::Toml, &own(), &Fixed).unwrap();
            let expected = format!("spiffe://example.org/ns/{ns}/sa/{sa}");
            prop_assert_eq!(entries[0].spiffe_id().as_str(), expected.as_str());
        }

        #[test]
        fn segment_values_with_a_slash_are_refused(a in "[a-z]{1,5}", b in "[a-z]{1,5}") {
            let doc = format!(
                "[[entry]]\nspiffe_id = \"spiffe://example.org/ns/{{{{ .Namespace }}}}\"\nnamespace = \"{a}/{b}\"\nselectors = [\"unix:uid:1\"]\n"
            );
            prop_assert!(parse(&doc, Format::Toml, &own(), &Fixed).is_err());
        }
    }
}
