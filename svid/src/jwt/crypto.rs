//! The JWS algorithms JWT-SVID allows, key/algorithm matching, and signature
//! verification through a rustls `CryptoProvider`.

use std::fmt;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::AlgorithmIdentifier;
use rustls_pki_types::alg_id;
use spiffe_bundle::{EcCurve, JwtAuthority, PublicKey};

use super::error::{JwtSvidError, truncate};

/// A JWS algorithm allowed for JWT-SVIDs (JWT-SVID §2.1, rule J-03).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt).
    PS256,
    /// RSASSA-PSS with SHA-384 (MGF1 SHA-384, 48-byte salt).
    PS384,
    /// RSASSA-PSS with SHA-512 (MGF1 SHA-512, 64-byte salt).
    PS512,
}

impl JwsAlgorithm {
    /// The algorithm named by a header `alg` (exact, case-sensitive match).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            _ => return None,
        })
    }

    /// The `alg` name, e.g. `ES256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }

    /// The curve an ECDSA algorithm needs; `None` for RSA algorithms.
    fn curve(self) -> Option<EcCurve> {
        match self {
            Self::ES256 => Some(EcCurve::P256),
            Self::ES384 => Some(EcCurve::P384),
            Self::ES512 => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// The (public key, signature) algorithm identifiers of the rustls
    /// verifier for this algorithm.
    fn webpki_ids(self) -> (AlgorithmIdentifier, AlgorithmIdentifier) {
        match self {
            Self::RS256 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA256),
            Self::RS384 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA384),
            Self::RS512 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA512),
            Self::PS256 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA256),
            Self::PS384 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA384),
            Self::PS512 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA512),
            Self::ES256 => (alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
            Self::ES384 => (alg_id::ECDSA_P384, alg_id::ECDSA_SHA384),
            Self::ES512 => (alg_id::ECDSA_P521, alg_id::ECDSA_SHA512),
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Largest RSA modulus the rustls verifiers accept, in bits.
const MAX_VERIFIABLE_RSA_BITS: usize = 8192;

/// Checks that `authority` may verify `alg`: key type and curve, the JWK
/// `alg` if present, and an RSA size the verifiers support.
pub(crate) fn check_key(alg: JwsAlgorithm, authority: &JwtAuthority) -> Result<(), JwtSvidError> {
    let key = authority.public_key();
    let fits = match alg.curve() {
        Some(curve) => key.ec_curve() == Some(curve),
        None => key.kty() == "RSA" && key.rsa_bits().is_some_and(|b| b <= MAX_VERIFIABLE_RSA_BITS),
    };
    if !fits {
        let key = match (key.ec_curve(), key.rsa_bits()) {
            (Some(curve), _) => format!("EC {curve}"),
            (None, Some(bits)) => format!("RSA {bits}-bit"),
            _ => key.kty().to_owned(),
        };
        return Err(JwtSvidError::KeyAlgorithmMismatch {
            alg: alg.name(),
            key,
        });
    }
    if let Some(key_alg) = authority.alg() {
        if key_alg != alg.name() {
            return Err(JwtSvidError::JwkAlgorithmMismatch {
                alg: alg.name(),
                key_alg: truncate(key_alg, 64),
            });
        }
    }
    Ok(())
}

/// Verifies a JWS signature over `message` with `authority` (already checked
/// with [`check_key`]) using the provider's verifier for `alg`.
pub(crate) fn verify(
    provider: &CryptoProvider,
    alg: JwsAlgorithm,
    authority: &JwtAuthority,
    message: &[u8],
    signature: &[u8],
) -> Result<(), JwtSvidError> {
    let (pk_id, sig_id) = alg.webpki_ids();
    let verifier = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|v| v.public_key_alg_id() == pk_id && v.signature_alg_id() == sig_id)
        .ok_or(JwtSvidError::AlgorithmUnavailable { alg: alg.name() })?;
    let der;
    let signature = match alg.curve() {
        Some(curve) => {
            let expected = 2 * curve.coordinate_len();
            if signature.len() != expected {
                return Err(JwtSvidError::SignatureLength {
                    alg: alg.name(),
                    expected,
                    actual: signature.len(),
                });
            }
            der = raw_ecdsa_to_der(signature);
            der.as_slice()
        }
        None => signature,
    };
    verifier
        .verify_signature(authority.subject_public_key(), message, signature)
        .map_err(|_| JwtSvidError::BadSignature)
}

/// Test hook, not a stable API: checks that `key` (as a JWT authority with
/// no JWK `alg`) fits `alg` and verifies `signature` over `signing_input`
/// with `provider`, through the same [`check_key`] and [`verify`] calls the
/// JWT-SVID validator makes for the authority a token's `kid` selects.
///
/// # Errors
///
/// [`JwtSvidError::KeyAlgorithmMismatch`] for a key that cannot verify
/// `alg` (including Ed25519 keys, which cannot be JWT authorities), and the
/// errors of signature verification.
#[doc(hidden)]
pub fn __verify_jws_signature(
    alg: JwsAlgorithm,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
    provider: &CryptoProvider,
) -> Result<(), JwtSvidError> {
    let authority =
        JwtAuthority::new("__verify_jws_signature", key.clone(), None).map_err(|_| {
            JwtSvidError::KeyAlgorithmMismatch {
                alg: alg.name(),
                key: key.kty().to_owned(),
            }
        })?;
    check_key(alg, &authority)?;
    verify(provider, alg, &authority, signing_input, signature)
}

/// Converts a JWS ECDSA signature `r || s` (two big-endian halves of equal
/// length) into the DER `ECDSA-Sig-Value` the verifiers take, with minimal
/// INTEGER encodings.
pub(crate) fn raw_ecdsa_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_unsigned_integer(&mut body, r);
    der_unsigned_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let m = magnitude.get(start..).unwrap_or_default();
    let pad = m.first().is_none_or(|&b| b & 0x80 != 0);
    out.push(0x02);
    der_length(out, m.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_of_raw_signatures_is_minimal() {
        // r = 0 (all zero) and s with the high bit set.
        let mut raw = vec![0u8; 64];
        raw[32] = 0x80;
        let der = raw_ecdsa_to_der(&raw);
        assert_eq!(&der[..7], &[0x30, 0x26, 0x02, 0x01, 0x00, 0x02, 0x21]);
        assert_eq!(der[7], 0x00);
        assert_eq!(der[8], 0x80);
        assert_eq!(der.len(), 2 + 3 + 35);
        // Leading zero bytes are stripped.
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 0x7f;
        assert_eq!(
            raw_ecdsa_to_der(&raw),
            vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x7f]
        );
        // P-521: long-form sequence length.
        let raw = vec![0xffu8; 132];
        let der = raw_ecdsa_to_der(&raw);
        assert_eq!(&der[..3], &[0x30, 0x81, 2 * (2 + 67)]);
    }

    #[test]
    fn names_round_trip() {
        for alg in [
            JwsAlgorithm::RS256,
            JwsAlgorithm::RS384,
            JwsAlgorithm::RS512,
            JwsAlgorithm::ES256,
            JwsAlgorithm::ES384,
            JwsAlgorithm::ES512,
            JwsAlgorithm::PS256,
            JwsAlgorithm::PS384,
            JwsAlgorithm::PS512,
        ] {
            assert_eq!(JwsAlgorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(JwsAlgorithm::from_name("es256"), None);
        assert_eq!(JwsAlgorithm::from_name("none"), None);
    }
}
