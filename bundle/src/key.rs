//! Public keys as JWKs carry them: EC P-256/P-384/P-521 and RSA (and, for
//! X.509 authorities only, Ed25519), with their SubjectPublicKeyInfo DER.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::der;
use crate::json::{Json, ObjectWriter, write_str};

/// Smallest RSA modulus accepted for a JWT authority, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted for a JWT authority, in bits.
pub const MAX_RSA_BITS: usize = 16384;
/// Largest RSA public exponent accepted, in bytes (64 bits).
const MAX_RSA_EXPONENT_BYTES: usize = 8;

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A NIST curve allowed for JWT-SVID signatures (ES256, ES384, ES512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EcCurve {
    /// P-256 (secp256r1), used with ES256.
    P256,
    /// P-384 (secp384r1), used with ES384.
    P384,
    /// P-521 (secp521r1), used with ES512.
    P521,
}

impl EcCurve {
    /// The JWK `crv` name: `P-256`, `P-384` or `P-521`.
    pub fn jwk_name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// The exact length in bytes of each of the `x` and `y` coordinates:
    /// 32, 48 or 66.
    pub fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The curve named by a JWK `crv` value (case-sensitive).
    pub fn from_jwk_name(name: &str) -> Option<EcCurve> {
        match name {
            "P-256" => Some(EcCurve::P256),
            "P-384" => Some(EcCurve::P384),
            "P-521" => Some(EcCurve::P521),
            _ => None,
        }
    }

    fn oid(self) -> &'static [u8] {
        match self {
            EcCurve::P256 => OID_P256,
            EcCurve::P384 => OID_P384,
            EcCurve::P521 => OID_P521,
        }
    }

    fn from_oid(oid: &[u8]) -> Option<EcCurve> {
        [EcCurve::P256, EcCurve::P384, EcCurve::P521]
            .into_iter()
            .find(|c| c.oid() == oid)
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwk_name())
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Ec {
        curve: EcCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// A validated public key, as a JWK describes it.
///
/// JWT authorities hold EC (P-256, P-384, P-521) or RSA keys; the public key
/// of an X.509 authority may also be Ed25519. Values are checked when built:
/// EC coordinates have exactly the curve's length (on-curve checking is left
/// to the crypto provider, which does it when it verifies a signature), an
/// RSA modulus has 2048 to 16384 bits and its exponent is odd and greater
/// than one. Integers are kept without leading zero bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey(Repr);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Ec { curve, .. } => write!(f, "PublicKey(EC {curve})"),
            Repr::Rsa { n, .. } => write!(f, "PublicKey(RSA {} bits)", bit_len(n)),
            Repr::Ed25519 { .. } => f.write_str("PublicKey(Ed25519)"),
        }
    }
}

fn bit_len(magnitude: &[u8]) -> usize {
    let m = der::strip_leading_zeros(magnitude);
    match m.first() {
        None => 0,
        Some(&b) => (m.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

impl PublicKey {
    /// An EC key from its affine coordinates.
    ///
    /// # Errors
    ///
    /// A message saying which coordinate does not have exactly
    /// [`EcCurve::coordinate_len`] bytes.
    pub fn ec(curve: EcCurve, x: &[u8], y: &[u8]) -> Result<PublicKey, String> {
        let want = curve.coordinate_len();
        for (name, c) in [("x", x), ("y", y)] {
            if c.len() != want {
                return Err(format!(
                    "{curve} coordinate `{name}` has {} bytes, expected exactly {want}",
                    c.len()
                ));
            }
        }
        Ok(PublicKey(Repr::Ec {
            curve,
            x: x.to_vec(),
            y: y.to_vec(),
        }))
    }

    /// An RSA key from its big-endian modulus and public exponent (leading
    /// zero bytes are ignored).
    ///
    /// # Errors
    ///
    /// A message if the modulus is not 2048 to 16384 bits long, or the
    /// exponent is even, not greater than one, or longer than 64 bits.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
        let n = der::strip_leading_zeros(n);
        let e = der::strip_leading_zeros(e);
        let bits = bit_len(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(format!(
                "RSA modulus has {bits} bits, expected {MIN_RSA_BITS} to {MAX_RSA_BITS}"
            ));
        }
        if e.len() > MAX_RSA_EXPONENT_BYTES {
            return Err("RSA exponent is longer than 64 bits".to_owned());
        }
        if e.last().is_none_or(|&b| b & 1 == 0) {
            return Err("RSA exponent must be odd".to_owned());
        }
        if e == [1] {
            return Err("RSA exponent must be greater than 1".to_owned());
        }
        Ok(PublicKey(Repr::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        }))
    }

    /// The JWK `kty`: `EC`, `RSA` or `OKP`.
    pub fn kty(&self) -> &'static str {
        match self.0 {
            Repr::Ec { .. } => "EC",
            Repr::Rsa { .. } => "RSA",
            Repr::Ed25519 { .. } => "OKP",
        }
    }

    /// The curve of an EC key.
    pub fn ec_curve(&self) -> Option<EcCurve> {
        match self.0 {
            Repr::Ec { curve, .. } => Some(curve),
            _ => None,
        }
    }

    /// The `(x, y)` coordinates of an EC key, each exactly
    /// [`EcCurve::coordinate_len`] bytes.
    pub fn ec_coordinates(&self) -> Option<(&[u8], &[u8])> {
        match &self.0 {
            Repr::Ec { x, y, .. } => Some((x, y)),
            _ => None,
        }
    }

    /// The `(n, e)` of an RSA key, big-endian without leading zeros.
    pub fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        match &self.0 {
            Repr::Rsa { n, e } => Some((n, e)),
            _ => None,
        }
    }

    /// The size of an RSA modulus in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        self.rsa_components().map(|(n, _)| bit_len(n))
    }

    /// The 32-byte public key of an Ed25519 key.
    pub fn ed25519(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Ed25519 { x } => Some(x),
            _ => None,
        }
    }

    /// The DER SubjectPublicKeyInfo of this key, and the offset at which the
    /// `subjectPublicKey` bits (after the unused-bits octet) start in it.
    pub(crate) fn spki_der(&self) -> (Vec<u8>, usize) {
        let mut alg = Vec::new();
        let mut key = vec![0u8]; // no unused bits
        match &self.0 {
            Repr::Ec { curve, x, y } => {
                der::write_tlv(&mut alg, der::TAG_OID, OID_EC_PUBLIC_KEY);
                der::write_tlv(&mut alg, der::TAG_OID, curve.oid());
                key.push(0x04);
                key.extend_from_slice(x);
                key.extend_from_slice(y);
            }
            Repr::Rsa { n, e } => {
                der::write_tlv(&mut alg, der::TAG_OID, OID_RSA_ENCRYPTION);
                der::write_tlv(&mut alg, der::TAG_NULL, &[]);
                let mut ints = Vec::new();
                der::write_unsigned_integer(&mut ints, n);
                der::write_unsigned_integer(&mut ints, e);
                der::write_tlv(&mut key, der::TAG_SEQUENCE, &ints);
            }
            Repr::Ed25519 { x } => {
                der::write_tlv(&mut alg, der::TAG_OID, OID_ED25519);
                key.extend_from_slice(x);
            }
        }
        let mut body = Vec::new();
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &alg);
        let bits_header_at = body.len();
        der::write_tlv(&mut body, der::TAG_BIT_STRING, &key);
        let bits_header_len = body.len() - bits_header_at - key.len();
        let mut out = Vec::new();
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        let outer_header = out.len() - body.len();
        (out, outer_header + bits_header_at + bits_header_len + 1)
    }

    /// Reads the key of a DER SubjectPublicKeyInfo (with its outer SEQUENCE),
    /// if it is one this crate accepts and a JWK can express: RSA under the
    /// same rules as [`PublicKey::rsa`], EC on P-256/P-384/P-521 with an
    /// uncompressed point, or Ed25519.
    pub(crate) fn from_spki_der(spki: &[u8]) -> Option<PublicKey> {
        let der::Spki {
            algorithm,
            key_bits,
        } = der::spki(spki)?;
        let (&unused, key) = key_bits.split_first()?;
        if unused != 0 {
            return None;
        }
        let (oid, params) = der::read(der::contents(algorithm)?).ok()?;
        let oid = oid.contents;
        if oid == OID_RSA_ENCRYPTION {
            let (n, rest) = der::read(der::contents(key)?).ok()?;
            let e = der::contents(rest)?;
            PublicKey::rsa(n.contents, e).ok()
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = EcCurve::from_oid(der::contents(params)?)?;
            let len = curve.coordinate_len();
            let (&form, point) = key.split_first()?;
            if form != 0x04 || point.len() != 2 * len {
                return None;
            }
            let (x, y) = point.split_at(len);
            PublicKey::ec(curve, x, y).ok()
        } else if oid == OID_ED25519 && key.len() == 32 {
            Some(PublicKey(Repr::Ed25519 { x: key.to_vec() }))
        } else {
            None
        }
    }

    /// Writes the key members (`crv`, `e`, `kty`, `n`, `x`, `y`) into a JWK
    /// being written. `extra` is called at the right place for every other
    /// member name, in sorted order, so the whole object stays sorted.
    pub(crate) fn write_jwk(&self, obj: &mut ObjectWriter<'_>, extra: &[(&str, JwkValue<'_>)]) {
        let mut members: Vec<(&str, JwkValue<'_>)> = extra.to_vec();
        match &self.0 {
            Repr::Ec { curve, x, y } => {
                members.push(("crv", JwkValue::Str(curve.jwk_name())));
                members.push(("x", JwkValue::B64(x)));
                members.push(("y", JwkValue::B64(y)));
            }
            Repr::Rsa { n, e } => {
                members.push(("n", JwkValue::B64(n)));
                members.push(("e", JwkValue::B64(e)));
            }
            Repr::Ed25519 { x } => {
                members.push(("crv", JwkValue::Str("Ed25519")));
                members.push(("x", JwkValue::B64(x)));
            }
        }
        members.push(("kty", JwkValue::Str(self.kty())));
        members.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in members {
            let out = obj.member(name);
            match value {
                JwkValue::Str(s) => write_str(out, s),
                JwkValue::B64(bytes) => {
                    out.push('"');
                    URL_SAFE_NO_PAD.encode_string(bytes, out);
                    out.push('"');
                }
                JwkValue::StdB64Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push('"');
                        base64::engine::general_purpose::STANDARD.encode_string(item, out);
                        out.push('"');
                    }
                    out.push(']');
                }
            }
        }
    }
}

/// A member value when writing a JWK.
#[derive(Clone, Copy)]
pub(crate) enum JwkValue<'a> {
    Str(&'a str),
    /// base64url without padding.
    B64(&'a [u8]),
    /// An array of standard base64 strings (`x5c`).
    StdB64Array(&'a [&'a [u8]]),
}

/// What was wrong with the key members of one JWK.
#[derive(Debug)]
pub(crate) enum KeyProblem {
    /// A member is missing, has the wrong JSON type, or is not valid base64url.
    Member {
        member: &'static str,
        reason: String,
    },
    /// The key is well-formed but of a curve or size this crate does not use.
    Unsupported(String),
}

pub(crate) fn get_str<'a>(
    obj: &'a std::collections::BTreeMap<String, Json>,
    member: &'static str,
) -> Result<Option<&'a str>, KeyProblem> {
    match obj.get(member) {
        None => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s)),
        Some(other) => Err(KeyProblem::Member {
            member,
            reason: format!("expected a string, found {}", other.kind()),
        }),
    }
}

fn b64url_member(
    obj: &std::collections::BTreeMap<String, Json>,
    member: &'static str,
) -> Result<Vec<u8>, KeyProblem> {
    let s = get_str(obj, member)?.ok_or_else(|| KeyProblem::Member {
        member,
        reason: "missing".to_owned(),
    })?;
    URL_SAFE_NO_PAD.decode(s).map_err(|e| KeyProblem::Member {
        member,
        reason: format!("not base64url without padding: {e}"),
    })
}

/// Reads the key of a JWK whose `kty` is `EC` or `RSA`.
pub(crate) fn key_from_jwk(
    obj: &std::collections::BTreeMap<String, Json>,
    kty: &str,
) -> Result<PublicKey, KeyProblem> {
    match kty {
        "EC" => {
            let crv = get_str(obj, "crv")?.ok_or_else(|| KeyProblem::Member {
                member: "crv",
                reason: "missing".to_owned(),
            })?;
            let curve = EcCurve::from_jwk_name(crv)
                .ok_or_else(|| KeyProblem::Unsupported(format!("unsupported curve `{crv}`")))?;
            let x = b64url_member(obj, "x")?;
            let y = b64url_member(obj, "y")?;
            PublicKey::ec(curve, &x, &y).map_err(KeyProblem::Unsupported)
        }
        "RSA" => {
            let n = b64url_member(obj, "n")?;
            let e = b64url_member(obj, "e")?;
            PublicKey::rsa(&n, &e).map_err(KeyProblem::Unsupported)
        }
        other => Err(KeyProblem::Unsupported(format!(
            "unsupported key type `{other}`"
        ))),
    }
}

/// Whether the key members of an `x509-svid` JWK describe `key`, the key of
/// its `x5c` certificate: `kty` must be the key's type, and the key members
/// (`crv`/`x`/`y`, `n`/`e`) are either all absent or exactly the key's, with
/// none of another key type.
pub(crate) fn jwk_matches(
    obj: &std::collections::BTreeMap<String, Json>,
    kty: &str,
    key: &PublicKey,
) -> Result<bool, KeyProblem> {
    if kty != key.kty() {
        return Ok(false);
    }
    const MEMBERS: [&str; 5] = ["crv", "e", "n", "x", "y"];
    if !MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Ok(true);
    }
    let own: &[&str] = match &key.0 {
        Repr::Ec { .. } => &["crv", "x", "y"],
        Repr::Rsa { .. } => &["e", "n"],
        Repr::Ed25519 { .. } => &["crv", "x"],
    };
    if MEMBERS
        .iter()
        .any(|m| obj.contains_key(*m) != own.contains(m))
    {
        return Ok(false);
    }
    let equal = |member: &'static str, want: &[u8]| -> Result<bool, KeyProblem> {
        Ok(b64url_member(obj, member)? == want)
    };
    let crv = get_str(obj, "crv")?;
    Ok(match &key.0 {
        Repr::Ec { curve, x, y } => {
            crv == Some(curve.jwk_name()) && equal("x", x)? && equal("y", y)?
        }
        Repr::Rsa { n, e } => equal("n", n)? && equal("e", e)?,
        Repr::Ed25519 { x } => crv == Some("Ed25519") && equal("x", x)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_spki_round_trips() {
        let key = PublicKey::ec(EcCurve::P256, &[1; 32], &[2; 32]).unwrap();
        let (spki, off) = key.spki_der();
        assert_eq!(spki[off], 0x04);
        assert_eq!(spki.len() - off, 65);
        assert_eq!(PublicKey::from_spki_der(&spki).unwrap(), key);
    }

    #[test]
    fn rsa_spki_round_trips() {
        let mut n = vec![0xc5; 256];
        n[255] = 0x01;
        let key = PublicKey::rsa(&n, &[1, 0, 1]).unwrap();
        assert_eq!(key.rsa_bits(), Some(2048));
        let (spki, off) = key.spki_der();
        assert_eq!(spki[off], 0x30);
        assert_eq!(PublicKey::from_spki_der(&spki).unwrap(), key);
    }

    #[test]
    fn rsa_policy() {
        let n2048 = vec![0x80; 256];
        assert!(PublicKey::rsa(&vec![0xff; 255], &[3]).is_err()); // 2040 bits
        assert!(PublicKey::rsa(&n2048, &[1]).is_err());
        assert!(PublicKey::rsa(&n2048, &[0]).is_err());
        assert!(PublicKey::rsa(&n2048, &[]).is_err());
        assert!(PublicKey::rsa(&n2048, &[1, 0]).is_err());
        assert!(PublicKey::rsa(&n2048, &[3]).is_ok());
        assert!(PublicKey::rsa(&vec![0xff; 2048], &[3]).is_ok());
        assert!(PublicKey::rsa(&vec![0xff; 2049], &[3]).is_err());
    }
}
