//! JWT authorities of one trust domain.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rustls_pki_types::SubjectPublicKeyInfoDer;
use spiffe_id::TrustDomain;

use crate::json::{Json, ObjectWriter};
use crate::key::{self, JwkValue, KeyProblem, PublicKey};
use crate::{BundleError, Mode, ParseOptions, next_generation};

/// One JWT authority: a public key, its key ID and its optional `alg`.
///
/// The SubjectPublicKeyInfo DER is computed once when the authority is
/// built, so a verifier can hand it (or just its
/// [`subject_public_key`](JwtAuthority::subject_public_key) bits) to a crypto
/// provider directly.
#[derive(Clone)]
pub struct JwtAuthority {
    kid: String,
    key: PublicKey,
    alg: Option<String>,
    spki: Vec<u8>,
    spk_offset: usize,
}

impl fmt::Debug for JwtAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthority")
            .field("kid", &self.kid)
            .field("key", &self.key)
            .field("alg", &self.alg)
            .finish()
    }
}

impl PartialEq for JwtAuthority {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.key == other.key && self.alg == other.alg
    }
}

impl Eq for JwtAuthority {}

impl JwtAuthority {
    /// An authority for `key` under the key ID `kid`, with an optional JWK
    /// `alg` (kept as given; the JWT-SVID verifier enforces it when present).
    ///
    /// # Errors
    ///
    /// [`BundleError::MissingKid`] (index 0) for an empty `kid`, and
    /// [`BundleError::InvalidKey`] for an Ed25519 key (JWT-SVID allows only
    /// RSA and ECDSA signatures).
    pub fn new(
        kid: impl Into<String>,
        key: PublicKey,
        alg: Option<String>,
    ) -> Result<Self, BundleError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(BundleError::MissingKid { index: 0 });
        }
        if key.ed25519().is_some() {
            return Err(BundleError::InvalidKey {
                reason: "Ed25519 is not a JWT-SVID algorithm".to_owned(),
            });
        }
        let (spki, spk_offset) = key.spki_der();
        Ok(JwtAuthority {
            kid,
            key,
            alg,
            spki,
            spk_offset,
        })
    }

    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The JWK `alg`, if the key had one.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// The DER SubjectPublicKeyInfo of the key.
    pub fn spki(&self) -> SubjectPublicKeyInfoDer<'_> {
        SubjectPublicKeyInfoDer::from(self.spki.as_slice())
    }

    /// The `subjectPublicKey` bits of the SPKI: the uncompressed point
    /// `04 || x || y` for EC, the PKCS#1 `RSAPublicKey` DER for RSA. This is
    /// the `public_key` argument of rustls' `SignatureVerificationAlgorithm`.
    pub fn subject_public_key(&self) -> &[u8] {
        self.spki.get(self.spk_offset..).unwrap_or_default()
    }

    pub(crate) fn write_jwk(&self, out: &mut String, with_use: bool) {
        let mut obj = ObjectWriter::new(out);
        let mut extra = vec![("kid", JwkValue::Str(&self.kid))];
        if let Some(alg) = &self.alg {
            extra.push(("alg", JwkValue::Str(alg)));
        }
        if with_use {
            extra.push(("use", JwkValue::Str("jwt-svid")));
        }
        self.key.write_jwk(&mut obj, &extra);
        obj.finish();
    }
}

struct Inner {
    trust_domain: TrustDomain,
    keys: BTreeMap<String, JwtAuthority>,
    generation: u64,
}

/// The JWT authorities of one trust domain, by key ID.
///
/// Immutable and cheap to clone (one reference count); each value built gets
/// a process-unique [`generation`](JwtBundle::generation), shared by clones.
/// Iteration and serialization are sorted by key ID.
#[derive(Clone)]
pub struct JwtBundle(Arc<Inner>);

impl fmt::Debug for JwtBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBundle")
            .field("trust_domain", &self.0.trust_domain)
            .field("kids", &self.0.keys.keys().collect::<Vec<_>>())
            .field("generation", &self.0.generation)
            .finish()
    }
}

/// Equal when the trust domain and the authorities are equal; the generation
/// is not compared.
impl PartialEq for JwtBundle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.trust_domain == other.0.trust_domain && self.0.keys == other.0.keys)
    }
}

impl Eq for JwtBundle {}

impl JwtBundle {
    /// A bundle of the given authorities.
    ///
    /// # Errors
    ///
    /// [`BundleError::DuplicateKid`] if two authorities share a key ID
    /// (`index` is the position of the second).
    pub fn new(
        trust_domain: TrustDomain,
        authorities: impl IntoIterator<Item = JwtAuthority>,
    ) -> Result<Self, BundleError> {
        let mut keys = BTreeMap::new();
        for (index, a) in authorities.into_iter().enumerate() {
            if keys.contains_key(&a.kid) {
                return Err(BundleError::DuplicateKid { index, kid: a.kid });
            }
            keys.insert(a.kid.clone(), a);
        }
        Ok(Self::from_map(trust_domain, keys))
    }

    pub(crate) fn from_map(
        trust_domain: TrustDomain,
        keys: BTreeMap<String, JwtAuthority>,
    ) -> Self {
        JwtBundle(Arc::new(Inner {
            trust_domain,
            keys,
            generation: next_generation(),
        }))
    }

    /// An empty bundle.
    pub fn empty(trust_domain: TrustDomain) -> Self {
        Self::from_map(trust_domain, BTreeMap::new())
    }

    /// Parses a plain JWKS (`{"keys": [...]}`) with the default
    /// [`ParseOptions`]. See [`JwtBundle::parse_jwks_with`].
    ///
    /// # Errors
    ///
    /// See [`JwtBundle::parse_jwks_with`].
    pub fn parse_jwks(trust_domain: TrustDomain, jwks: &[u8]) -> Result<Self, BundleError> {
        Self::parse_jwks_with(trust_domain, jwks, &ParseOptions::default())
    }

    /// Parses a plain JWKS, as the Workload API's `FetchJWTBundles` sends it.
    ///
    /// Every key is taken whatever its `use` (SPIRE leaves `use` out of these
    /// documents), and every key must have a `kid`. Other top-level members
    /// are ignored. A key whose `kty` is missing or not `EC`/`RSA` is skipped
    /// in [`Mode::Lenient`] and refused in [`Mode::Strict`]. To read a full
    /// SPIFFE bundle (whose `x509-svid` entries have no `kid`), use
    /// [`SpiffeBundle::parse`](crate::SpiffeBundle::parse).
    ///
    /// # Errors
    ///
    /// [`BundleError::TooLarge`], [`BundleError::Json`],
    /// [`BundleError::DuplicateMember`], [`BundleError::NotAnObject`],
    /// [`BundleError::MissingKeys`], [`BundleError::KeysNotArray`],
    /// [`BundleError::TooManyKeys`], and per entry
    /// [`BundleError::EntryNotObject`], [`BundleError::MissingKid`],
    /// [`BundleError::DuplicateKid`], [`BundleError::InvalidMember`],
    /// [`BundleError::UnsupportedKey`], [`BundleError::PrivateKeyMaterial`],
    /// and (strict) [`BundleError::UnknownKty`].
    pub fn parse_jwks_with(
        trust_domain: TrustDomain,
        jwks: &[u8],
        options: &ParseOptions,
    ) -> Result<Self, BundleError> {
        let doc = crate::parse_document(jwks, options)?;
        let keys = crate::keys_array(&doc, options)?;
        let mut map = BTreeMap::new();
        for (index, entry) in keys.iter().enumerate() {
            let obj = crate::entry_object(index, entry)?;
            if let Some(a) = parse_jwt_entry(index, obj, options.mode, true)? {
                insert_unique(&mut map, index, a)?;
            }
        }
        Ok(Self::from_map(trust_domain, map))
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.0.trust_domain
    }

    /// The authority with key ID `kid`.
    pub fn get(&self, kid: &str) -> Option<&JwtAuthority> {
        self.0.keys.get(kid)
    }

    /// The authorities, sorted by key ID.
    pub fn authorities(&self) -> impl ExactSizeIterator<Item = &JwtAuthority> + '_ {
        self.0.keys.values()
    }

    /// Number of authorities.
    pub fn len(&self) -> usize {
        self.0.keys.len()
    }

    /// Whether the bundle has no authority (then every JWT-SVID of the trust
    /// domain is invalid, rule B-09).
    pub fn is_empty(&self) -> bool {
        self.0.keys.is_empty()
    }

    /// The process-unique number given to this value when it was built.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The bundle as a plain JWKS, as SPIRE serves it on the Workload API:
    /// `{"keys":[...]}` with no `use` and no `spiffe_*` members. Keys are
    /// sorted by `kid`, members by name; key members are base64url without
    /// padding.
    pub fn to_jwks(&self) -> String {
        let mut out = String::new();
        let mut obj = ObjectWriter::new(&mut out);
        let keys = obj.member("keys");
        keys.push('[');
        for (i, a) in self.0.keys.values().enumerate() {
            if i > 0 {
                keys.push(',');
            }
            a.write_jwk(keys, false);
        }
        keys.push(']');
        obj.finish();
        out
    }
}

pub(crate) fn insert_unique(
    map: &mut BTreeMap<String, JwtAuthority>,
    index: usize,
    a: JwtAuthority,
) -> Result<(), BundleError> {
    if map.contains_key(&a.kid) {
        return Err(BundleError::DuplicateKid { index, kid: a.kid });
    }
    map.insert(a.kid.clone(), a);
    Ok(())
}

pub(crate) fn key_problem(index: usize, p: KeyProblem) -> BundleError {
    match p {
        KeyProblem::Member { member, reason } => BundleError::InvalidMember {
            index,
            member: member.to_owned(),
            reason,
        },
        KeyProblem::Unsupported(reason) => BundleError::UnsupportedKey { index, reason },
    }
}

/// Why an entry of a SPIFFE bundle was skipped in [`Mode::Lenient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    UnknownKty(Option<String>),
    MissingKid,
}

/// Reads one JWT key entry. `Ok(None)` means the entry is skipped (lenient
/// mode only); `kid_required` makes a missing `kid` an error in every mode.
pub(crate) fn parse_jwt_entry(
    index: usize,
    obj: &BTreeMap<String, Json>,
    mode: Mode,
    kid_required: bool,
) -> Result<Option<JwtAuthority>, BundleError> {
    parse_jwt_entry_reason(index, obj, mode, kid_required).map(|r| r.ok())
}

pub(crate) fn parse_jwt_entry_reason(
    index: usize,
    obj: &BTreeMap<String, Json>,
    mode: Mode,
    kid_required: bool,
) -> Result<Result<JwtAuthority, Skip>, BundleError> {
    if obj.contains_key("d") {
        return Err(BundleError::PrivateKeyMaterial { index });
    }
    let kty = key::get_str(obj, "kty").map_err(|p| key_problem(index, p))?;
    let kty = match kty {
        Some(k @ ("EC" | "RSA")) => k,
        other => {
            let kty = other.map(str::to_owned);
            return match mode {
                Mode::Lenient => Ok(Err(Skip::UnknownKty(kty))),
                Mode::Strict => Err(BundleError::UnknownKty { index, kty }),
            };
        }
    };
    let kid = key::get_str(obj, "kid").map_err(|p| key_problem(index, p))?;
    let kid = match kid {
        Some(k) if !k.is_empty() => k,
        _ => {
            return if kid_required || mode == Mode::Strict {
                Err(BundleError::MissingKid { index })
            } else {
                Ok(Err(Skip::MissingKid))
            };
        }
    };
    let alg = key::get_str(obj, "alg").map_err(|p| key_problem(index, p))?;
    let public_key = key::key_from_jwk(obj, kty).map_err(|p| key_problem(index, p))?;
    let (spki, spk_offset) = public_key.spki_der();
    Ok(Ok(JwtAuthority {
        kid: kid.to_owned(),
        key: public_key,
        alg: alg.map(str::to_owned),
        spki,
        spk_offset,
    }))
}
