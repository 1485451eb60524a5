//! JWT-SVID validation (JWT-SVID.md; checklist §1.3 and §4); see [`JwtSvid`].

mod crypto;
mod error;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::UnixTime;
use serde_json::{Map, Value};
use spiffe_bundle::{JwtAuthority, JwtBundle, JwtBundleSource};
use spiffe_id::SpiffeId;

pub use crypto::{__verify_jws_signature, JwsAlgorithm};
pub use error::{InvalidSubjectReason, JwtSvidError};

use error::truncate;
use spiffe_bundle::__private::json::{self, JsonError};

/// Default maximum token size in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Default clock-skew leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Largest NumericDate accepted: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// Options of JWT-SVID validation. The defaults follow go-spiffe: 60 s
/// leeway, `kid` required; tokens up to 16 KiB; the crate's default crypto
/// provider.
#[derive(Clone)]
pub struct JwtValidationOptions {
    leeway: Duration,
    require_kid: bool,
    max_token_bytes: usize,
    provider: Option<Arc<CryptoProvider>>,
}

impl fmt::Debug for JwtValidationOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidationOptions")
            .field("leeway", &self.leeway)
            .field("require_kid", &self.require_kid)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("explicit_provider", &self.provider.is_some())
            .finish()
    }
}

impl Default for JwtValidationOptions {
    fn default() -> Self {
        JwtValidationOptions {
            leeway: DEFAULT_LEEWAY,
            require_kid: true,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            provider: None,
        }
    }
}

impl JwtValidationOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// These options with another leeway for `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// These options with `kid` optional (`true`): a token without `kid` is
    /// then checked against every key of its trust domain's bundle that fits
    /// its `alg`. By default (`false`) such a token is rejected.
    pub fn with_kid_optional(mut self, optional: bool) -> Self {
        self.require_kid = !optional;
        self
    }

    /// These options with another maximum token size in bytes.
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// These options with an explicit rustls crypto provider for signature
    /// verification, instead of [`crate::default_crypto_provider`].
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The leeway for `exp`, `nbf` and `iat`.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Validates a JWT-SVID with these options; see
    /// [`JwtSvid::parse_and_validate`].
    ///
    /// # Errors
    ///
    /// See [`JwtSvid::parse_and_validate`].
    pub fn parse_and_validate<B>(
        &self,
        token: &str,
        bundles: &B,
        audiences: &[&str],
        at: UnixTime,
    ) -> Result<JwtSvid, JwtSvidError>
    where
        B: JwtBundleSource + ?Sized,
    {
        check_expected_audiences(audiences)?;
        let jws = self.decode_jws(token)?;
        let claims = Claims::parse(&jws.payload)?;
        let trust_domain = claims.spiffe_id.trust_domain();
        let bundle = bundles
            .jwt_bundle_for(&trust_domain)
            .ok_or(JwtSvidError::NoBundle { trust_domain })?;
        self.verify_with_bundle(&jws, &bundle)?;
        self.finish(token, jws, claims, audiences, at)
    }

    /// Parses and checks a JWT-SVID **without verifying its signature**;
    /// see [`JwtSvid::parse_insecure`].
    ///
    /// # Errors
    ///
    /// As [`JwtSvid::parse_and_validate`], minus the key and signature
    /// errors.
    pub fn parse_insecure(
        &self,
        token: &str,
        audiences: &[&str],
        at: UnixTime,
    ) -> Result<JwtSvid, JwtSvidError> {
        check_expected_audiences(audiences)?;
        let jws = self.decode_jws(token)?;
        let claims = Claims::parse(&jws.payload)?;
        self.finish(token, jws, claims, audiences, at)
    }

    /// The JWS layer only: serialization, header, key selection from
    /// `bundle` by `kid`, and signature (steps 1, 2, 4 and 5), returning the
    /// payload bytes. No claim is read. Exists for conformance tests with
    /// vectors whose payloads are not JWT claim sets; not a stable API.
    ///
    /// # Errors
    ///
    /// The serialization, header, key and signature variants of
    /// [`JwtSvidError`].
    #[doc(hidden)]
    pub fn verify_jws_with_bundle(
        &self,
        token: &str,
        bundle: &JwtBundle,
    ) -> Result<Vec<u8>, JwtSvidError> {
        let jws = self.decode_jws(token)?;
        self.verify_with_bundle(&jws, bundle)?;
        Ok(jws.payload)
    }

    /// Steps 1 and 2: size, structure, base64url, header.
    fn decode_jws<'t>(&self, token: &'t str) -> Result<Jws<'t>, JwtSvidError> {
        if token.len() > self.max_token_bytes {
            return Err(JwtSvidError::TooLarge {
                len: token.len(),
                max: self.max_token_bytes,
            });
        }
        if token.trim_start().starts_with('{') {
            return Err(JwtSvidError::JsonSerialization);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
            return Err(match parts.len() {
                5 => JwtSvidError::Jwe,
                n => JwtSvidError::Malformed {
                    reason: format!("{n} dot-separated parts, expected 3"),
                },
            });
        };
        let header_bytes = decode_part("header", header_b64)?;
        let header = Header::parse(&header_bytes, self.require_kid)?;
        let payload = decode_part("payload", payload_b64)?;
        let signature = decode_part("signature", signature_b64)?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        Ok(Jws {
            header,
            payload,
            signature,
            signing_input: token.get(..signing_input_len).unwrap_or_default(),
        })
    }

    /// Steps 4 and 5: key selection in `bundle` and signature verification.
    fn verify_with_bundle(&self, jws: &Jws<'_>, bundle: &JwtBundle) -> Result<(), JwtSvidError> {
        let provider = match &self.provider {
            Some(p) => Arc::clone(p),
            None => crate::default_crypto_provider().ok_or(JwtSvidError::NoCryptoProvider)?,
        };
        let trust_domain = bundle.trust_domain();
        if bundle.is_empty() {
            return Err(JwtSvidError::NoJwtAuthorities {
                trust_domain: trust_domain.clone(),
            });
        }
        let alg = jws.header.alg;
        let message = jws.signing_input.as_bytes();
        match &jws.header.kid {
            Some(kid) => {
                let authority = bundle.get(kid).ok_or_else(|| JwtSvidError::UnknownKeyId {
                    kid: truncate(kid, 256),
                    trust_domain: trust_domain.clone(),
                })?;
                crypto::check_key(alg, authority)?;
                crypto::verify(&provider, alg, authority, message, &jws.signature)
            }
            None => {
                // Only reachable with `kid` optional: try each fitting key.
                let candidates: Vec<&JwtAuthority> = bundle
                    .authorities()
                    .filter(|a| crypto::check_key(alg, a).is_ok())
                    .collect();
                if candidates.is_empty() {
                    return Err(JwtSvidError::NoUsableKey {
                        alg: alg.name(),
                        trust_domain: trust_domain.clone(),
                    });
                }
                let mut last = JwtSvidError::BadSignature;
                for authority in candidates {
                    match crypto::verify(&provider, alg, authority, message, &jws.signature) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    /// Step 6 and the result.
    fn finish(
        &self,
        token: &str,
        jws: Jws<'_>,
        claims: Claims,
        audiences: &[&str],
        at: UnixTime,
    ) -> Result<JwtSvid, JwtSvidError> {
        let now = at.as_secs() as f64;
        let leeway = self.leeway.as_secs_f64();
        if now > claims.exp + leeway {
            return Err(JwtSvidError::Expired {
                expired_at: to_system_time(claims.exp),
            });
        }
        if let Some(nbf) = claims.nbf {
            if now + leeway < nbf {
                return Err(JwtSvidError::NotYetValid {
                    not_before: to_system_time(nbf),
                });
            }
        }
        if let Some(iat) = claims.iat {
            if now + leeway < iat {
                return Err(JwtSvidError::IssuedInTheFuture {
                    issued_at: to_system_time(iat),
                });
            }
        }
        if !claims
            .audience
            .iter()
            .any(|a| audiences.contains(&a.as_str()))
        {
            return Err(JwtSvidError::AudienceMismatch {
                expected: audiences.iter().map(|a| truncate(a, 256)).collect(),
                actual: claims.audience.iter().map(|a| truncate(a, 256)).collect(),
            });
        }
        Ok(JwtSvid {
            spiffe_id: claims.spiffe_id,
            audience: claims.audience,
            expiry: to_system_time(claims.exp),
            claims: claims.all,
            alg: jws.header.alg,
            kid: jws.header.kid,
            token: token.to_owned(),
        })
    }
}

fn check_expected_audiences(audiences: &[&str]) -> Result<(), JwtSvidError> {
    if audiences.is_empty() {
        return Err(JwtSvidError::NoExpectedAudience);
    }
    if audiences.iter().any(|a| a.is_empty()) {
        return Err(JwtSvidError::EmptyExpectedAudience);
    }
    Ok(())
}

fn decode_part(part: &'static str, b64: &str) -> Result<Vec<u8>, JwtSvidError> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| JwtSvidError::Base64 {
            part,
            reason: e.to_string(),
        })
}

fn to_system_time(secs: f64) -> SystemTime {
    // `secs` was checked to be within 0 ..= MAX_NUMERIC_DATE.
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .unwrap_or(UNIX_EPOCH)
}

/// A decoded compact JWS whose header passed the checks.
struct Jws<'t> {
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
    signing_input: &'t str,
}

struct Header {
    alg: JwsAlgorithm,
    kid: Option<String>,
}

impl Header {
    fn parse(bytes: &[u8], require_kid: bool) -> Result<Header, JwtSvidError> {
        let map = parse_object(bytes).map_err(|reason| JwtSvidError::MalformedHeader { reason })?;
        // `alg` first (J-03).
        let alg = match map.get("alg") {
            None => return Err(JwtSvidError::MissingAlgorithm),
            Some(Value::String(name)) => {
                JwsAlgorithm::from_name(name).ok_or_else(|| JwtSvidError::UnsupportedAlgorithm {
                    alg: truncate(name, 64),
                })?
            }
            Some(_) => {
                return Err(JwtSvidError::MalformedHeader {
                    reason: "`alg` is not a string".to_owned(),
                });
            }
        };
        if let Some(name) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "alg" | "kid" | "typ"))
        {
            return Err(JwtSvidError::ForbiddenHeader {
                name: truncate(name, 64),
            });
        }
        match map.get("typ") {
            None => {}
            Some(Value::String(t)) if t == "JWT" || t == "JOSE" => {}
            Some(Value::String(t)) => {
                return Err(JwtSvidError::InvalidType {
                    typ: truncate(t, 64),
                });
            }
            Some(_) => {
                return Err(JwtSvidError::MalformedHeader {
                    reason: "`typ` is not a string".to_owned(),
                });
            }
        }
        let kid = match map.get("kid") {
            None => None,
            Some(Value::String(k)) if k.is_empty() => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => {
                return Err(JwtSvidError::MalformedHeader {
                    reason: "`kid` is not a string".to_owned(),
                });
            }
        };
        if kid.is_none() && require_kid {
            return Err(JwtSvidError::MissingKeyId);
        }
        Ok(Header { alg, kid })
    }
}

/// Parses a JOSE header or a claim set: one JSON object, with no duplicate
/// member names at any depth (two parsers reading two different `alg` or
/// `sub` values is a classic confusion). The error is the reason to report.
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match json::parse::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(JsonError::DuplicateMember { name, .. }) => Err(format!(
            "duplicate member {}",
            truncate(&format!("{name:?}"), 64)
        )),
        Err(e @ JsonError::Syntax { .. }) => Err(format!("invalid JSON: {e}")),
    }
}

/// The claims, structurally checked (step 3).
struct Claims {
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    all: Map<String, Value>,
}

impl Claims {
    fn parse(bytes: &[u8]) -> Result<Claims, JwtSvidError> {
        let all = parse_object(bytes).map_err(|reason| JwtSvidError::MalformedClaims { reason })?;
        let spiffe_id = match all.get("sub") {
            None => return Err(JwtSvidError::MissingSubject),
            Some(Value::String(s)) if s.is_empty() => return Err(JwtSvidError::MissingSubject),
            Some(Value::String(s)) => {
                SpiffeId::parse(s).map_err(|e| JwtSvidError::InvalidSubject {
                    subject: truncate(s, 256),
                    reason: InvalidSubjectReason::SpiffeId(e),
                })?
            }
            Some(_) => {
                return Err(JwtSvidError::InvalidSubject {
                    subject: String::new(),
                    reason: InvalidSubjectReason::NotAString,
                });
            }
        };
        let audience = match all.get("aud") {
            None => return Err(JwtSvidError::MissingAudience),
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(a) => Ok(a.clone()),
                    _ => Err(JwtSvidError::InvalidAudience {
                        reason: "array element is not a string".to_owned(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(JwtSvidError::InvalidAudience {
                    reason: "`aud` is neither a string nor an array".to_owned(),
                });
            }
        };
        if audience.iter().any(String::is_empty) {
            return Err(JwtSvidError::InvalidAudience {
                reason: "an audience is the empty string".to_owned(),
            });
        }
        let exp = numeric_date(&all, "exp")?.ok_or(JwtSvidError::MissingExpiry)?;
        let nbf = numeric_date(&all, "nbf")?;
        let iat = numeric_date(&all, "iat")?;
        Ok(Claims {
            spiffe_id,
            audience,
            exp,
            nbf,
            iat,
            all,
        })
    }
}

fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<f64>, JwtSvidError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if (0.0..=MAX_NUMERIC_DATE).contains(&v) => Ok(Some(v)),
            _ => Err(JwtSvidError::InvalidNumericDate { claim }),
        },
        Some(_) => Err(JwtSvidError::InvalidNumericDate { claim }),
    }
}

/// A validated JWT-SVID.
///
/// # Validation
///
/// [`JwtSvid::parse_and_validate`] checks, in this order:
///
/// 0. **Caller input**: at least one expected audience, none empty (J-07:
///    an empty list is an error, never "skip the check").
/// 1. **Serialization** (J-01): a size cap first (16 KiB by default), then
///    exactly three dot-separated parts of strict base64url without padding.
///    A JWS JSON serialization and a JWE (five parts) get errors of their own.
/// 2. **Header**: JSON object without duplicate members; `alg` first, from
///    the allow-list RS256/384/512, ES256/384/512, PS256/384/512 (J-03);
///    then no member other than `alg`, `kid` and `typ` (J-02: `jku`, `jwk`,
///    `x5u`, `x5c`, `crit`, `cty`, ... are rejected, so keys never come from
///    the token); `typ`, if present, exactly `JWT` or `JOSE` (J-05); a
///    non-empty `kid` (see *Decisions*).
/// 3. **Claims, structure**: JSON object without duplicate members; `sub` a
///    SPIFFE ID (J-06; `spiffe://td` without a path is accepted); `aud` a
///    non-empty string or an array of them (J-07, J-09); `exp` (J-10), and
///    `nbf`/`iat` when present, NumericDates (a JSON integer or float, never
///    a string).
/// 4. **Key**: the JWT bundle of `sub`'s trust domain and no other (J-18);
///    the authority with the token's `kid`; its key type and curve must fit
///    `alg` (ES256: P-256, ES384: P-384, ES512: P-521, RS*/PS*: RSA), and a
///    JWK `alg`, when the bundle has one, must equal the header `alg`.
/// 5. **Signature** (J-12) through the signature-verification algorithms of
///    a rustls [`CryptoProvider`]. ECDSA signatures must be exactly
///    `r || s` of the curve's size (64, 96 or 132 bytes).
/// 6. **Time and audience** (J-08, J-11): `exp`, `nbf`, `iat` with the
///    leeway, then the audience.
///
/// Time and audience are checked only after the signature, so a forged token
/// is reported as a bad signature, not as expired.
/// [`JwtSvid::parse_insecure`] runs every step except 4 and 5.
///
/// # Decisions
///
/// - **`kid` is required by default** (go-spiffe and SPIRE reject a token
///   without one; J-04 makes it optional).
///   [`JwtValidationOptions::with_kid_optional`] instead tries every key of
///   the trust domain's bundle that fits `alg` when `kid` is absent.
/// - **Leeway** defaults to 60 seconds, as in go-spiffe, and applies to
///   `exp` (rejected when `at > exp + leeway`), `nbf` and `iat` (rejected
///   when `at + leeway < nbf` or `< iat`). The spec is silent on `nbf` and
///   `iat`; they are checked, as go-spiffe does.
/// - **JWK `alg`**: a bundle key that declares an `alg` verifies only that
///   algorithm (fail closed). SPIRE's keys declare none.
/// - **Audience**: an `aud` of `[]` never matches; an empty string in `aud`
///   is rejected as an invalid claim (SPIRE refuses to issue it).
/// - **NumericDate** values must be within 0 ..= 253402300799 (year 9999);
///   anything else is an invalid claim.
/// - RSA keys above 8192 bits (the rustls verifiers' maximum) are reported as
///   a key/algorithm mismatch rather than as a bad signature.
///
/// # Debug
///
/// `Debug` shows the identity, audience, expiry, algorithm, key ID and the
/// claim names, never the token (a bearer credential) or claim values.
#[derive(Clone, PartialEq)]
pub struct JwtSvid {
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: SystemTime,
    claims: Map<String, Value>,
    alg: JwsAlgorithm,
    kid: Option<String>,
    token: String,
}

impl fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("audience", &self.audience)
            .field("expiry", &self.expiry)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .field(
                "token",
                &format_args!("<{} bytes, redacted>", self.token.len()),
            )
            .finish()
    }
}

impl JwtSvid {
    /// Parses and validates a JWT-SVID received from a peer: signature with
    /// the JWT bundle of its subject's trust domain from `bundles`, and the
    /// claims against the `audiences` this validator accepts (at least one)
    /// at time `at`, with the default [`JwtValidationOptions`] (60 s leeway,
    /// `kid` required). See [`JwtSvid`] for every check.
    ///
    /// # Errors
    ///
    /// The [`JwtSvidError`] variant of the first check that failed.
    ///
    /// # Example
    ///
    /// ```
    /// use spiffe_bundle::JwtBundle;
    /// use spiffe_id::TrustDomain;
    /// use spiffe_svid::{JwtSvid, JwtSvidError};
    /// use rustls_pki_types::UnixTime;
    ///
    /// let bundle = JwtBundle::empty(TrustDomain::new("example.org")?);
    /// // Header {"alg":"none"}: rejected before anything else is looked at.
    /// let token = "eyJhbGciOiJub25lIn0.e30.";
    /// let err = JwtSvid::parse_and_validate(token, &bundle, &["my-service"], UnixTime::now())
    ///     .unwrap_err();
    /// assert_eq!(err, JwtSvidError::UnsupportedAlgorithm { alg: "none".into() });
    ///
    /// // An empty list of expected audiences is an error, not a wildcard.
    /// let err = JwtSvid::parse_and_validate(token, &bundle, &[], UnixTime::now()).unwrap_err();
    /// assert_eq!(err, JwtSvidError::NoExpectedAudience);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse_and_validate<B>(
        token: &str,
        bundles: &B,
        audiences: &[&str],
        at: UnixTime,
    ) -> Result<JwtSvid, JwtSvidError>
    where
        B: JwtBundleSource + ?Sized,
    {
        JwtValidationOptions::default().parse_and_validate(token, bundles, audiences, at)
    }

    /// Parses a JWT-SVID and checks everything except the signature (and so
    /// the key): only for tokens obtained from a trusted source, such as the
    /// Workload API's `FetchJWTSVID` or after a successful
    /// `ValidateJWTSVID` call. Uses the default [`JwtValidationOptions`].
    ///
    /// # Errors
    ///
    /// As [`JwtSvid::parse_and_validate`], minus the key and signature
    /// errors.
    pub fn parse_insecure(
        token: &str,
        audiences: &[&str],
        at: UnixTime,
    ) -> Result<JwtSvid, JwtSvidError> {
        JwtValidationOptions::default().parse_insecure(token, audiences, at)
    }

    /// The SPIFFE ID of the subject (`sub`).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The token's audiences (`aud`, always as a list).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The expiry (`exp`).
    pub fn expiry(&self) -> SystemTime {
        self.expiry
    }

    /// All claims, including `sub`, `aud`, `exp` and any others (J-13).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The signature algorithm of the header.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The key ID of the header, if it had one.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The token as received. It is a bearer credential: do not log it.
    pub fn token(&self) -> &str {
        &self.token
    }
}
