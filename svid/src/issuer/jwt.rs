//! A development JWT-SVID issuer: an in-memory ES256 key, the JWT bundle
//! that verifies it, and tokens minted for any SPIFFE ID and audience.

use std::fmt;
use std::time::SystemTime;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use spiffe_bundle::{EcCurve, JwtAuthority, JwtBundle, PublicKey};
use spiffe_id::{SpiffeId, TrustDomain};

use super::IssueError;

/// Mints ES256 JWT-SVIDs for one trust domain, with a key generated in
/// memory (feature `issuer`; for tests and local development).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use spiffe_id::{SpiffeId, TrustDomain};
/// use spiffe_svid::issuer::JwtIssuer;
/// use rustls_pki_types::UnixTime;
/// use spiffe_svid::JwtSvid;
///
/// let issuer = JwtIssuer::new(TrustDomain::new("example.org")?)?;
/// let id = SpiffeId::parse("spiffe://example.org/web")?;
/// let expires = SystemTime::now() + Duration::from_secs(300);
/// let token = issuer.issue(&id, &["api"], expires)?;
/// let svid = JwtSvid::parse_and_validate(&token, &issuer.bundle(), &["api"], UnixTime::now())?;
/// assert_eq!(svid.spiffe_id(), &id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JwtIssuer {
    trust_domain: TrustDomain,
    key: EcdsaKeyPair,
    kid: String,
    bundle: JwtBundle,
    rng: SystemRandom,
    issuer: Option<String>,
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("trust_domain", &self.trust_domain)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    /// A new issuer for `trust_domain` with a fresh P-256 key and a random
    /// key ID.
    ///
    /// # Errors
    ///
    /// [`IssueError::Generation`] if the key cannot be generated.
    pub fn new(trust_domain: TrustDomain) -> Result<Self, IssueError> {
        let generation = |reason: &str| IssueError::Generation {
            reason: reason.to_owned(),
        };
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| generation("P-256 key generation failed"))?;
        let mut kid_bytes = [0u8; 16];
        rng.fill(&mut kid_bytes)
            .map_err(|_| generation("random key ID failed"))?;
        let kid = URL_SAFE_NO_PAD.encode(kid_bytes);
        // The public key is the uncompressed point 04 || x || y.
        let point = key.public_key().as_ref();
        let (x, y) = match point {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(generation("unexpected P-256 public key encoding")),
        };
        let public = PublicKey::ec(EcCurve::P256, x, y).map_err(|e| generation(&e))?;
        let authority =
            JwtAuthority::new(kid.clone(), public, None).map_err(|e| generation(&e.to_string()))?;
        let bundle = JwtBundle::new(trust_domain.clone(), [authority])
            .map_err(|e| generation(&e.to_string()))?;
        Ok(JwtIssuer {
            trust_domain,
            key,
            kid,
            bundle,
            rng,
            issuer: None,
        })
    }

    /// This issuer writing `iss` into every token (SPIRE's `jwt_issuer`,
    /// for relying parties that match tokens to an OIDC issuer). Without
    /// it, tokens carry no `iss` claim.
    #[must_use]
    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into()).filter(|i| !i.is_empty());
        self
    }

    /// The `iss` claim written into tokens, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The trust domain this issuer mints for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The key ID written into every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWT bundle that verifies this issuer's tokens.
    pub fn bundle(&self) -> JwtBundle {
        self.bundle.clone()
    }

    /// A JWT-SVID for `id`, for `audience`, valid until `expires_at`
    /// (claims `sub`, `aud`, `exp` and `iat`, and `iss` when
    /// [set](JwtIssuer::with_issuer); header `alg` ES256, `kid` and
    /// `typ` JWT).
    ///
    /// # Errors
    ///
    /// [`IssueError::InvalidName`] when `id` is of another trust domain or
    /// the audience is empty; [`IssueError::TimeOutOfRange`] when
    /// `expires_at` is before the Unix epoch; [`IssueError::Generation`] if
    /// signing fails.
    pub fn issue(
        &self,
        id: &SpiffeId,
        audience: &[&str],
        expires_at: SystemTime,
    ) -> Result<String, IssueError> {
        if id.trust_domain() != self.trust_domain {
            return Err(IssueError::InvalidName {
                name: id.to_string(),
            });
        }
        if audience.is_empty() || audience.iter().any(|a| a.is_empty()) {
            return Err(IssueError::InvalidName {
                name: "empty audience".to_owned(),
            });
        }
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .map_err(|_| IssueError::TimeOutOfRange { secs: 0 })
        };
        let exp = secs(expires_at)?;
        let iat = secs(SystemTime::now())?.min(exp);
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let mut claims = serde_json::json!({
            "sub": id.as_str(),
            "aud": audience,
            "exp": exp,
            "iat": iat,
        });
        if let (Some(iss), Some(object)) = (&self.issuer, claims.as_object_mut()) {
            object.insert("iss".to_owned(), iss.as_str().into());
        }
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature =
            self.key
                .sign(&self.rng, token.as_bytes())
                .map_err(|_| IssueError::Generation {
                    reason: "ES256 signing failed".to_owned(),
                })?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }
}
