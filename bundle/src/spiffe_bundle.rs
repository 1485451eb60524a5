//! The SPIFFE bundle document: a JWK Set with `x509-svid` and `jwt-svid`
//! keys, `spiffe_sequence` and `spiffe_refresh_hint`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use spiffe_id::TrustDomain;

use crate::json::{Json, ObjectWriter};
use crate::jwt::{self, Skip};
use crate::key::{self, JwkValue};
use crate::{
    BundleError, JwtBundle, Mode, ParseOptions, X509Authority, X509Bundle, next_generation,
};

/// Why an entry of a SPIFFE bundle was ignored in [`Mode::Lenient`], as
/// reported by [`SpiffeBundle::parse_with_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The entry has no `use` (rule B-11).
    MissingUse,
    /// The entry's `use` is neither `x509-svid` nor `jwt-svid` (rule B-11),
    /// for example `wit-svid`, `sig` or `X509-SVID`.
    UnknownUse(String),
    /// `kty` is missing or not one this crate uses (rules B-07, B-10).
    UnknownKty(Option<String>),
    /// An `x509-svid` entry without certificates in `x5c` (rule X-26).
    MissingX5c,
    /// A `jwt-svid` entry without `kid` (rule J-16 binds the publisher).
    MissingKid,
}

/// One ignored entry of a SPIFFE bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredEntry {
    /// Position in `keys`.
    pub index: usize,
    /// Why it was ignored.
    pub reason: IgnoreReason,
}

struct Inner {
    x509: X509Bundle,
    jwt: JwtBundle,
    sequence: Option<u64>,
    refresh_hint: Option<i64>,
    generation: u64,
}

/// The SPIFFE bundle of one trust domain: its X.509 and JWT authorities, and
/// the `spiffe_sequence` and `spiffe_refresh_hint` of the document.
///
/// Immutable and cheap to clone (one reference count); each value built gets
/// a process-unique [`generation`](SpiffeBundle::generation), shared by
/// clones. See the [crate docs](crate) for the parsing rules.
#[derive(Clone)]
pub struct SpiffeBundle(Arc<Inner>);

impl fmt::Debug for SpiffeBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeBundle")
            .field("trust_domain", self.trust_domain())
            .field("x509", &self.0.x509)
            .field("jwt", &self.0.jwt)
            .field("sequence", &self.0.sequence)
            .field("refresh_hint", &self.0.refresh_hint)
            .field("generation", &self.0.generation)
            .finish()
    }
}

/// Equal when the trust domain, authorities, sequence number and refresh
/// hint are equal; the generation is not compared.
impl PartialEq for SpiffeBundle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.x509 == other.0.x509
                && self.0.jwt == other.0.jwt
                && self.0.sequence == other.0.sequence
                && self.0.refresh_hint == other.0.refresh_hint)
    }
}

impl Eq for SpiffeBundle {}

impl SpiffeBundle {
    /// A bundle from its parts.
    ///
    /// # Errors
    ///
    /// [`BundleError::TrustDomainMismatch`] if the two bundles belong to
    /// different trust domains.
    pub fn new(
        x509: X509Bundle,
        jwt: JwtBundle,
        sequence: Option<u64>,
        refresh_hint_seconds: Option<i64>,
    ) -> Result<Self, BundleError> {
        if x509.trust_domain() != jwt.trust_domain() {
            return Err(BundleError::TrustDomainMismatch {
                expected: x509.trust_domain().to_string(),
                found: jwt.trust_domain().to_string(),
            });
        }
        Ok(Self::from_checked_parts(
            x509,
            jwt,
            sequence,
            refresh_hint_seconds,
        ))
    }

    fn from_checked_parts(
        x509: X509Bundle,
        jwt: JwtBundle,
        sequence: Option<u64>,
        refresh_hint: Option<i64>,
    ) -> Self {
        SpiffeBundle(Arc::new(Inner {
            x509,
            jwt,
            sequence,
            refresh_hint,
            generation: next_generation(),
        }))
    }

    /// An empty bundle (no authorities, no sequence, no hint).
    pub fn empty(trust_domain: TrustDomain) -> Self {
        Self::from_checked_parts(
            X509Bundle::empty(trust_domain.clone()),
            JwtBundle::empty(trust_domain),
            None,
            None,
        )
    }

    /// The same bundle with another sequence number (a new value, with a new
    /// generation).
    pub fn with_sequence(&self, sequence: Option<u64>) -> Self {
        Self::from_checked_parts(
            self.0.x509.clone(),
            self.0.jwt.clone(),
            sequence,
            self.0.refresh_hint,
        )
    }

    /// The same bundle with another refresh hint, in seconds.
    pub fn with_refresh_hint_seconds(&self, seconds: Option<i64>) -> Self {
        Self::from_checked_parts(
            self.0.x509.clone(),
            self.0.jwt.clone(),
            self.0.sequence,
            seconds,
        )
    }

    /// Parses a SPIFFE bundle document for `trust_domain` with the default
    /// [`ParseOptions`] (lenient, 1 MiB, 1,000 keys).
    ///
    /// # Errors
    ///
    /// See [`SpiffeBundle::parse_with_report`].
    pub fn parse(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        Self::parse_with(trust_domain, json, &ParseOptions::default())
    }

    /// Parses a SPIFFE bundle document with the given options.
    ///
    /// # Errors
    ///
    /// See [`SpiffeBundle::parse_with_report`].
    pub fn parse_with(
        trust_domain: TrustDomain,
        json: &[u8],
        options: &ParseOptions,
    ) -> Result<Self, BundleError> {
        Self::parse_with_report(trust_domain, json, options).map(|(b, _)| b)
    }

    /// Parses a SPIFFE bundle document and also returns the entries that
    /// were ignored, and why (always empty in [`Mode::Strict`], which refuses
    /// the cases lenient mode ignores, except a missing or unknown `use`).
    ///
    /// # Errors
    ///
    /// Document level: [`BundleError::TooLarge`], [`BundleError::Json`],
    /// [`BundleError::DuplicateMember`] (anywhere in the document),
    /// [`BundleError::NotAnObject`], [`BundleError::MissingKeys`],
    /// [`BundleError::KeysNotArray`], [`BundleError::TooManyKeys`],
    /// [`BundleError::InvalidTopLevelMember`] (`spiffe_sequence` not an
    /// unsigned 64-bit integer, `spiffe_refresh_hint` not a signed 64-bit
    /// integer).
    ///
    /// Per entry, in both modes: [`BundleError::EntryNotObject`],
    /// [`BundleError::InvalidMember`] (wrong JSON type, bad base64),
    /// [`BundleError::InvalidX5cCertificate`], [`BundleError::KeyMismatch`],
    /// [`BundleError::UnsupportedKey`], [`BundleError::PrivateKeyMaterial`],
    /// [`BundleError::DuplicateKid`]. In strict mode only:
    /// [`BundleError::X5cCount`], [`BundleError::MissingKid`],
    /// [`BundleError::UnknownKty`].
    pub fn parse_with_report(
        trust_domain: TrustDomain,
        json: &[u8],
        options: &ParseOptions,
    ) -> Result<(Self, Vec<IgnoredEntry>), BundleError> {
        let doc = crate::parse_document(json, options)?;
        Self::from_document(trust_domain, &doc, options)
    }

    pub(crate) fn from_document(
        trust_domain: TrustDomain,
        doc: &Json,
        options: &ParseOptions,
    ) -> Result<(Self, Vec<IgnoredEntry>), BundleError> {
        let keys = crate::keys_array(doc, options)?;
        let Json::Obj(top) = doc else {
            return Err(BundleError::NotAnObject { found: doc.kind() });
        };
        // B-04, B-05: when present, these are integers (`null` is not).
        let sequence = match top.get("spiffe_sequence") {
            None => None,
            Some(Json::Unsigned(n)) => Some(*n),
            Some(other) => {
                return Err(BundleError::InvalidTopLevelMember {
                    member: "spiffe_sequence",
                    reason: not_integer(other, "an unsigned 64-bit integer"),
                });
            }
        };
        let refresh_hint = match top.get("spiffe_refresh_hint") {
            None => None,
            Some(Json::Unsigned(n)) => {
                Some(
                    i64::try_from(*n).map_err(|_| BundleError::InvalidTopLevelMember {
                        member: "spiffe_refresh_hint",
                        reason: "larger than a signed 64-bit integer".to_owned(),
                    })?,
                )
            }
            Some(Json::Negative(n)) => Some(*n),
            Some(other) => {
                return Err(BundleError::InvalidTopLevelMember {
                    member: "spiffe_refresh_hint",
                    reason: not_integer(other, "an integer number of seconds"),
                });
            }
        };

        let mut ignored = Vec::new();
        let mut x509 = Vec::new();
        let mut jwts = BTreeMap::new();
        for (index, entry) in keys.iter().enumerate() {
            let obj = crate::entry_object(index, entry)?;
            let use_ = key::get_str(obj, "use").map_err(|p| jwt::key_problem(index, p))?;
            match use_ {
                Some("x509-svid") => match parse_x509_entry(index, obj, options.mode)? {
                    Ok(a) => x509.push(a),
                    Err(reason) => ignored.push(IgnoredEntry { index, reason }),
                },
                Some("jwt-svid") => {
                    match jwt::parse_jwt_entry_reason(index, obj, options.mode, false)? {
                        Ok(a) => jwt::insert_unique(&mut jwts, index, a)?,
                        Err(skip) => ignored.push(IgnoredEntry {
                            index,
                            reason: match skip {
                                Skip::UnknownKty(k) => IgnoreReason::UnknownKty(k),
                                Skip::MissingKid => IgnoreReason::MissingKid,
                            },
                        }),
                    }
                }
                Some(other) => ignored.push(IgnoredEntry {
                    index,
                    reason: IgnoreReason::UnknownUse(other.to_owned()),
                }),
                None => ignored.push(IgnoredEntry {
                    index,
                    reason: IgnoreReason::MissingUse,
                }),
            }
        }
        let bundle = Self::from_checked_parts(
            X509Bundle::from_authorities(trust_domain.clone(), x509),
            JwtBundle::from_map(trust_domain, jwts),
            sequence,
            refresh_hint,
        );
        Ok((bundle, ignored))
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        self.0.x509.trust_domain()
    }

    /// The X.509 authorities (the first `x5c` certificate of every usable
    /// `x509-svid` entry, rule X-28).
    pub fn x509_bundle(&self) -> &X509Bundle {
        &self.0.x509
    }

    /// The JWT authorities (the usable `jwt-svid` entries, rule J-17).
    pub fn jwt_bundle(&self) -> &JwtBundle {
        &self.0.jwt
    }

    /// Whether the bundle has no usable authority at all: then every SVID of
    /// the trust domain is invalid (rule B-09).
    pub fn is_empty(&self) -> bool {
        self.0.x509.is_empty() && self.0.jwt.is_empty()
    }

    /// `spiffe_sequence`, if the document had one.
    pub fn sequence(&self) -> Option<u64> {
        self.0.sequence
    }

    /// `spiffe_refresh_hint` as written, in seconds (may be zero or
    /// negative).
    pub fn refresh_hint_seconds(&self) -> Option<i64> {
        self.0.refresh_hint
    }

    /// The refresh hint as a duration, or `None` if there is none or it is
    /// zero or negative: such a hint is treated as absent, so the caller
    /// falls back to its default interval (about five minutes, rule B-18).
    /// Callers should also apply their own lower and upper bounds.
    pub fn refresh_hint(&self) -> Option<Duration> {
        match self.0.refresh_hint {
            Some(s) if s > 0 => Some(Duration::from_secs(s.unsigned_abs())),
            _ => None,
        }
    }

    /// The process-unique number given to this value when it was built.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The document as deterministic JSON: members sorted by name at every
    /// level (`keys`, then `spiffe_refresh_hint` and `spiffe_sequence` when
    /// set), the `x509-svid` entries first in bundle order, then the
    /// `jwt-svid` entries sorted by `kid`; `x5c` in standard base64, key
    /// members in base64url without padding; no whitespace.
    ///
    /// An `x509-svid` entry carries the certificate's key as `kty` and key
    /// members (RFC 7517 requires `kty`). A certificate whose key a JWK cannot
    /// express (not RSA, EC P-256/384/521 or Ed25519) is written with `x5c`
    /// and `use` only, and so is ignored when parsed back.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let mut obj = ObjectWriter::new(&mut out);
        let keys = obj.member("keys");
        keys.push('[');
        let mut first = true;
        for a in self.0.x509.authorities() {
            if !first {
                keys.push(',');
            }
            first = false;
            write_x509_entry(keys, a);
        }
        for a in self.0.jwt.authorities() {
            if !first {
                keys.push(',');
            }
            first = false;
            a.write_jwk(keys, true);
        }
        keys.push(']');
        if let Some(hint) = self.0.refresh_hint {
            obj.member("spiffe_refresh_hint")
                .push_str(&hint.to_string());
        }
        if let Some(seq) = self.0.sequence {
            obj.member("spiffe_sequence").push_str(&seq.to_string());
        }
        obj.finish();
        out
    }
}

fn not_integer(found: &Json, want: &str) -> String {
    match found {
        Json::Negative(_) => format!("a negative number, expected {want}"),
        Json::Float => format!("not an integer in range, expected {want}"),
        Json::Unsigned(_) => format!("out of range, expected {want}"),
        other => format!("{}, expected {want}", other.kind()),
    }
}

fn write_x509_entry(out: &mut String, a: &X509Authority) {
    let mut obj = ObjectWriter::new(out);
    let der: &[u8] = a.der().as_ref();
    let x5c = [der];
    let extra = [
        ("use", JwkValue::Str("x509-svid")),
        ("x5c", JwkValue::StdB64Array(&x5c)),
    ];
    a.public_key().write_jwk(&mut obj, &extra);
    obj.finish();
}

fn parse_x509_entry(
    index: usize,
    obj: &BTreeMap<String, Json>,
    mode: Mode,
) -> Result<Result<X509Authority, IgnoreReason>, BundleError> {
    if obj.contains_key("d") {
        return Err(BundleError::PrivateKeyMaterial { index });
    }
    let kty = key::get_str(obj, "kty").map_err(|p| jwt::key_problem(index, p))?;
    if !matches!(kty, Some("EC" | "RSA" | "OKP")) {
        let kty = kty.map(str::to_owned);
        return match mode {
            Mode::Lenient => Ok(Err(IgnoreReason::UnknownKty(kty))),
            Mode::Strict => Err(BundleError::UnknownKty { index, kty }),
        };
    }
    let x5c = match obj.get("x5c") {
        None | Some(Json::Null) => &[][..],
        Some(Json::Arr(items)) => items.as_slice(),
        Some(other) => {
            return Err(BundleError::InvalidMember {
                index,
                member: "x5c".to_owned(),
                reason: format!("expected an array, found {}", other.kind()),
            });
        }
    };
    if mode == Mode::Strict && x5c.len() != 1 {
        return Err(BundleError::X5cCount {
            index,
            count: x5c.len(),
        });
    }
    // no certificate means the entry is ignored; X-27: only the first
    // is used and the rest are not even decoded.
    let Some(first) = x5c.first() else {
        return Ok(Err(IgnoreReason::MissingX5c));
    };
    let Json::Str(b64) = first else {
        return Err(BundleError::InvalidMember {
            index,
            member: "x5c[0]".to_owned(),
            reason: format!("expected a string, found {}", first.kind()),
        });
    };
    let der = STANDARD
        .decode(b64)
        .map_err(|e| BundleError::InvalidMember {
            index,
            member: "x5c[0]".to_owned(),
            reason: format!("not standard base64: {e}"),
        })?;
    let authority = X509Authority::from_der_reason(CertificateDer::from(der))
        .map_err(|reason| BundleError::InvalidX5cCertificate { index, reason })?;
    let kty = kty.unwrap_or_default();
    if !key::jwk_matches(obj, kty, authority.public_key())
        .map_err(|p| jwt::key_problem(index, p))?
    {
        return Err(BundleError::KeyMismatch { index });
    }
    Ok(Ok(authority))
}
