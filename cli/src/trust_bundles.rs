//! `--bundle [<trust-domain>=]<file-or-dir>`: loading the trust bundles of
//! several trust domains for `x509 verify` and `jwt verify`.
//!
//! Formats are told apart by content, not by file name:
//! - PEM (`-----BEGIN CERTIFICATE-----` sections) or concatenated DER: X.509
//!   authorities of one trust domain;
//! - a JSON object with `trust_domains`: a bundle map, which names its
//!   trust domains;
//! - a JSON object with `keys` where some key has a `use` member: a SPIFFE
//!   bundle (X.509 and JWT authorities) of one trust domain;
//! - a JSON object with a non-empty `keys` where no key has `use`: a plain
//!   JWKS of JWT authorities (the Workload API's form).
//!
//! Only a bundle map names its trust domains. For the other formats the
//! trust domain is, first to last: the `<trust-domain>=` prefix of the
//! argument; for a file found in a directory, its file name without a final
//! `.pem`, `.crt`, `.cer`, `.der`, `.json` or `.jwks`; the `--trust-domain`
//! flag. Bundles given twice for one trust domain are merged (the union of
//! their authorities).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use spiffe_bundle::{BundleMap, JwtBundle, SpiffeBundle, X509Bundle};
use spiffe_id::TrustDomain;

use crate::error::CliError;
use crate::input::{contains, read_file};

/// One `--bundle` argument.
#[derive(Clone, Debug)]
pub(crate) struct BundleArg {
    trust_domain: Option<TrustDomain>,
    path: PathBuf,
}

impl BundleArg {
    /// Parses `[<trust-domain>=]<path>`. Text before the first `=` is a
    /// trust domain unless it holds a `/` (then the whole text is a path:
    /// write `./a=b` for a file named `a=b`).
    ///
    /// # Errors
    ///
    /// A message for clap when the prefix is not a valid trust domain or the
    /// path is empty.
    pub(crate) fn parse(arg: &str) -> Result<BundleArg, String> {
        let (trust_domain, path) = match arg.split_once('=') {
            Some((td, path)) if !td.contains('/') => {
                let td = TrustDomain::new(td).map_err(|e| {
                    format!(
                        "{td:?} before `=` is not a valid trust domain: {e} (rule {}); \
                         write ./{arg} if this is a file name",
                        e.rule()
                    )
                })?;
                (Some(td), path)
            }
            _ => (None, arg),
        };
        if path.is_empty() {
            return Err("the bundle path is empty".to_owned());
        }
        Ok(BundleArg {
            trust_domain,
            path: PathBuf::from(path),
        })
    }
}

/// The format of a bundle document, as detected from its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BundleFormat {
    /// PEM certificates.
    Pem,
    /// Concatenated DER certificates.
    Der,
    /// A SPIFFE bundle (JWKS with `use` members).
    SpiffeBundle,
    /// A plain JWKS of JWT authorities.
    Jwks,
    /// `{"trust_domains": {...}}`.
    BundleMap,
}

impl Serialize for BundleFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl BundleFormat {
    /// The name used in reports: `pem`, `der`, `spiffe-bundle`, `jwks`,
    /// `bundle-map`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BundleFormat::Pem => "pem",
            BundleFormat::Der => "der",
            BundleFormat::SpiffeBundle => "spiffe-bundle",
            BundleFormat::Jwks => "jwks",
            BundleFormat::BundleMap => "bundle-map",
        }
    }

    /// Tells the format from the content.
    ///
    /// # Errors
    ///
    /// A reason when the content is none of the formats.
    pub(crate) fn detect(data: &[u8]) -> Result<BundleFormat, String> {
        let first = data.iter().copied().find(|b| !b.is_ascii_whitespace());
        if first == Some(b'{') {
            // The bundle parsers give the precise error for broken JSON;
            // here only the shape matters.
            let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(data) else {
                return Ok(BundleFormat::SpiffeBundle);
            };
            if doc.contains_key("trust_domains") {
                return Ok(BundleFormat::BundleMap);
            }
            let keys = doc.get("keys").and_then(Value::as_array);
            let any_use = keys.is_some_and(|k| k.iter().any(|e| e.get("use").is_some()));
            let non_empty = keys.is_some_and(|k| !k.is_empty());
            return Ok(if non_empty && !any_use {
                BundleFormat::Jwks
            } else {
                BundleFormat::SpiffeBundle
            });
        }
        if contains(data, b"-----BEGIN ") {
            return Ok(BundleFormat::Pem);
        }
        if data.first() == Some(&0x30) {
            return Ok(BundleFormat::Der);
        }
        Err(
            "not a trust bundle: expected PEM or DER certificates, a SPIFFE bundle, a JWKS or \
             a bundle map (JSON)"
                .to_owned(),
        )
    }

    /// Whether the document names its own trust domains.
    pub(crate) fn names_trust_domains(self) -> bool {
        self == BundleFormat::BundleMap
    }
}

/// Parses a document of a format other than a bundle map as the bundle of
/// `trust_domain`.
///
/// # Errors
///
/// [`CliError::Bundle`] with the parser's reason.
pub(crate) fn parse_single(
    format: BundleFormat,
    trust_domain: TrustDomain,
    data: &[u8],
    path: &Path,
) -> Result<SpiffeBundle, CliError> {
    let bundle_error = |source| CliError::Bundle {
        path: path.to_owned(),
        source,
    };
    let x509_only = |x509: X509Bundle| {
        let jwt = JwtBundle::empty(x509.trust_domain().clone());
        SpiffeBundle::new(x509, jwt, None, None)
    };
    match format {
        BundleFormat::Pem => X509Bundle::parse_pem(trust_domain, data).and_then(x509_only),
        BundleFormat::Der => X509Bundle::parse_der(trust_domain, data).and_then(x509_only),
        BundleFormat::Jwks => JwtBundle::parse_jwks(trust_domain.clone(), data)
            .and_then(|jwt| SpiffeBundle::new(X509Bundle::empty(trust_domain), jwt, None, None)),
        BundleFormat::SpiffeBundle | BundleFormat::BundleMap => {
            SpiffeBundle::parse(trust_domain, data)
        }
    }
    .map_err(bundle_error)
}

/// Where a trust domain's bundle came from (reported by the verify
/// commands).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LoadedBundle {
    pub(crate) trust_domain: String,
    pub(crate) path: String,
    pub(crate) format: BundleFormat,
    pub(crate) x509_authorities: usize,
    pub(crate) jwt_authorities: usize,
}

/// The bundles of every trust domain given, merged.
#[derive(Debug)]
pub(crate) struct TrustBundles {
    pub(crate) map: BundleMap,
    pub(crate) loaded: Vec<LoadedBundle>,
}

/// Loads every `--bundle`; `default_td` is `--trust-domain`.
///
/// # Errors
///
/// [`CliError`] for unreadable files, unknown formats, bundles that do not
/// parse, trust domains that cannot be told, a `<td>=` prefix on a
/// directory, and two bundles that disagree on a JWT key.
pub(crate) fn load(
    args: &[BundleArg],
    default_td: Option<&TrustDomain>,
) -> Result<TrustBundles, CliError> {
    let mut loader = Loader {
        default_td,
        bundles: BTreeMap::new(),
        loaded: Vec::new(),
    };
    for arg in args {
        if arg.path.is_dir() {
            if arg.trust_domain.is_some() {
                return Err(CliError::Usage(format!(
                    "--bundle {}: a directory's files are named after their trust domains; \
                     drop the `<trust-domain>=` prefix",
                    arg.path.display()
                )));
            }
            for file in directory_files(&arg.path)? {
                loader.load_file(&file, None, true)?;
            }
        } else {
            loader.load_file(&arg.path, arg.trust_domain.clone(), false)?;
        }
    }
    Ok(TrustBundles {
        map: loader.bundles.into_values().collect(),
        loaded: loader.loaded,
    })
}

/// The regular files of `dir`, by name, without hidden ones; not recursive.
fn directory_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(CliError::read(dir))? {
        let entry = entry.map_err(CliError::read(dir))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A directory file's trust domain: its name without a known extension.
fn trust_domain_from_file_name(path: &Path) -> Result<TrustDomain, CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".pem", ".crt", ".cer", ".der", ".json", ".jwks"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    TrustDomain::new(stem).map_err(|source| CliError::TrustDomain {
        what: "bundle file name",
        name: stem.to_owned(),
        source,
    })
}

struct Loader<'a> {
    default_td: Option<&'a TrustDomain>,
    bundles: BTreeMap<TrustDomain, SpiffeBundle>,
    loaded: Vec<LoadedBundle>,
}

impl Loader<'_> {
    fn load_file(
        &mut self,
        path: &Path,
        prefix_td: Option<TrustDomain>,
        in_directory: bool,
    ) -> Result<(), CliError> {
        let data = read_file(path)?;
        let format = BundleFormat::detect(&data).map_err(|reason| CliError::Certificates {
            path: path.to_owned(),
            reason,
        })?;
        if format.names_trust_domains() {
            let map = BundleMap::parse(&data).map_err(|source| CliError::Bundle {
                path: path.to_owned(),
                source,
            })?;
            for bundle in map.iter() {
                if prefix_td
                    .as_ref()
                    .is_some_and(|td| td != bundle.trust_domain())
                {
                    continue;
                }
                self.add(bundle.clone(), path, format)?;
            }
            if let Some(td) = prefix_td
                && map.get(td.as_str()).is_none()
            {
                return Err(CliError::Usage(format!(
                    "--bundle {td}={}: the bundle map has no trust domain {td}",
                    path.display()
                )));
            }
            return Ok(());
        }
        let trust_domain = match (prefix_td, in_directory, self.default_td) {
            (Some(td), _, _) => td,
            (None, true, _) => trust_domain_from_file_name(path)?,
            (None, false, Some(td)) => td.clone(),
            (None, false, None) => {
                return Err(CliError::BundleTrustDomainUnknown {
                    path: path.to_owned(),
                });
            }
        };
        let bundle = parse_single(format, trust_domain, &data, path)?;
        self.add(bundle, path, format)
    }

    fn add(
        &mut self,
        bundle: SpiffeBundle,
        path: &Path,
        format: BundleFormat,
    ) -> Result<(), CliError> {
        let td = bundle.trust_domain().clone();
        self.loaded.push(LoadedBundle {
            trust_domain: td.to_string(),
            path: path.display().to_string(),
            format,
            x509_authorities: bundle.x509_bundle().len(),
            jwt_authorities: bundle.jwt_bundle().len(),
        });
        let merged = match self.bundles.remove(&td) {
            None => bundle,
            Some(earlier) => merge(&earlier, &bundle, path)?,
        };
        self.bundles.insert(td, merged);
        Ok(())
    }
}

/// The union of two bundles of one trust domain. A JWT key ID present in
/// both must name the same key.
fn merge(a: &SpiffeBundle, b: &SpiffeBundle, path: &Path) -> Result<SpiffeBundle, CliError> {
    let td = a.trust_domain().clone();
    let x509 = X509Bundle::from_authorities(
        td.clone(),
        a.x509_bundle()
            .authorities()
            .iter()
            .chain(b.x509_bundle().authorities())
            .cloned(),
    );
    let mut keys = Vec::new();
    for key in a.jwt_bundle().authorities() {
        keys.push(key.clone());
    }
    for key in b.jwt_bundle().authorities() {
        match a.jwt_bundle().get(key.kid()) {
            None => keys.push(key.clone()),
            Some(same) if same == key => {}
            Some(_) => {
                return Err(CliError::ConflictingJwtKey {
                    trust_domain: td.to_string(),
                    kid: key.kid().to_owned(),
                    path: path.to_owned(),
                });
            }
        }
    }
    let jwt = JwtBundle::new(td, keys).map_err(|source| CliError::Bundle {
        path: path.to_owned(),
        source,
    })?;
    SpiffeBundle::new(x509, jwt, None, None).map_err(|source| CliError::Bundle {
        path: path.to_owned(),
        source,
    })
}
