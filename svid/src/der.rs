//! A minimal, panic-free DER reader for the few fields the hot paths need
//! without a full x509-parser pass: splitting concatenated certificates, an
//! intermediate's `keyCertSign` bit and `notAfter`, and the public key a
//! PKCS#8 document carries.
//!
//! Everything here is strict DER (low-tag-number form, definite minimal
//! lengths of at most four octets) and returns `None` on anything else; the
//! callers then fall back to the full parsers, so that an input this reader
//! does not understand is judged exactly as before.

/// One DER element: its tag octet, its contents and the whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) contents: &'a [u8],
    pub(crate) raw: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        // High-tag-number form: never used by the structures read here.
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        // 0x80 is the indefinite form (not DER); more than four octets is
        // more than any certificate or key needs.
        if count == 0 || count > 4 {
            return None;
        }
        let octets = rest.get(..count)?;
        if octets.first() == Some(&0) {
            return None; // leading zero octet: not minimal
        }
        let len = octets.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        if len < 0x80 {
            return None; // fits the short form: not minimal
        }
        (len, rest.get(count..)?)
    };
    let contents = rest.get(..len)?;
    let after = rest.get(len..)?;
    let header = input.len().checked_sub(rest.len())?;
    let total = header.checked_add(len)?;
    let raw = input.get(..total)?;
    Some((Tlv { tag, contents, raw }, after))
}

/// Reads an element with tag `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (tlv, rest) = read(input)?;
    (tlv.tag == tag).then_some((tlv, rest))
}

/// Reads an element with tag `tag` if the next one has it.
fn optional(input: &[u8], tag: u8) -> Option<(Option<Tlv<'_>>, &[u8])> {
    match input.first() {
        Some(&t) if t == tag => {
            let (tlv, rest) = read(input)?;
            Some((Some(tlv), rest))
        }
        _ => Some((None, input)),
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The length of the first element of `input` (header and contents), if it
/// is a SEQUENCE: how concatenated DER certificates are split.
pub(crate) fn sequence_len(input: &[u8]) -> Option<usize> {
    let (tlv, _) = expect(input, SEQUENCE)?;
    Some(tlv.raw.len())
}

/// The contents of a BIT STRING with no unused bits.
fn whole_octets(bits: Tlv<'_>) -> Option<&[u8]> {
    match bits.contents.split_first()? {
        (0, octets) => Some(octets),
        _ => None,
    }
}

/// What the path check needs of an intermediate certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IssuerFacts {
    /// `Some(keyCertSign)` when a key-usage extension is present.
    pub(crate) key_cert_sign: Option<bool>,
    /// `notAfter` in seconds since the Unix epoch (0 for earlier dates).
    pub(crate) not_after: u64,
}

const KEY_USAGE_OID: &[u8] = &[0x55, 0x1d, 0x0f];

/// The key-usage `keyCertSign` bit and `notAfter` of a certificate, or
/// `None` if the certificate is not laid out as this reader expects.
pub(crate) fn issuer_facts(cert: &[u8]) -> Option<IssuerFacts> {
    let (cert, rest) = expect(cert, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, _) = expect(cert.contents, SEQUENCE)?;
    let body = tbs.contents;
    let (_version, body) = optional(body, 0xa0)?;
    let (_serial, body) = expect(body, INTEGER)?;
    let (_signature, body) = expect(body, SEQUENCE)?;
    let (_issuer, body) = expect(body, SEQUENCE)?;
    let (validity, body) = expect(body, SEQUENCE)?;
    let (_subject, body) = expect(body, SEQUENCE)?;
    let (_spki, body) = expect(body, SEQUENCE)?;
    let (_issuer_uid, body) = optional(body, 0x81)?;
    let (_subject_uid, body) = optional(body, 0x82)?;
    let (extensions, body) = optional(body, 0xa3)?;
    if !body.is_empty() {
        return None;
    }

    let (_not_before, times) = read(validity.contents)?;
    let (not_after, times) = read(times)?;
    if !times.is_empty() {
        return None;
    }
    let not_after = time_secs(not_after)?;

    let mut key_cert_sign = None;
    if let Some(extensions) = extensions {
        let (list, rest) = expect(extensions.contents, SEQUENCE)?;
        if !rest.is_empty() {
            return None;
        }
        let mut list = list.contents;
        while !list.is_empty() {
            let (ext, after) = expect(list, SEQUENCE)?;
            list = after;
            let (oid, fields) = expect(ext.contents, OID)?;
            if oid.contents != KEY_USAGE_OID {
                continue;
            }
            if key_cert_sign.is_some() {
                return None; // duplicate: leave it to the full parser
            }
            let (_critical, fields) = optional(fields, BOOLEAN)?;
            let (value, fields) = expect(fields, OCTET_STRING)?;
            if !fields.is_empty() {
                return None;
            }
            key_cert_sign = Some(key_cert_sign_bit(value.contents)?);
        }
    }
    Some(IssuerFacts {
        key_cert_sign,
        not_after,
    })
}

/// The `keyCertSign` bit (bit 5) of a KeyUsage BIT STRING that fills
/// `value` and is valid DER (unused bits zero, at most 7 of them, none when
/// empty).
fn key_cert_sign_bit(value: &[u8]) -> Option<bool> {
    let (bits, rest) = expect(value, BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    let (&unused, octets) = bits.contents.split_first()?;
    match octets.last() {
        None if unused == 0 => {}
        Some(last) if unused < 8 && last & ((1u8 << unused) - 1) == 0 => {}
        _ => return None,
    }
    Some(octets.first().is_some_and(|b| b & 0x04 != 0))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), in
/// seconds since the Unix epoch; 0 for earlier dates.
fn time_secs(time: Tlv<'_>) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match time.tag {
        UTC_TIME => {
            let yy = digits(time.contents.get(..2)?)?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                time.contents.get(2..)?,
            )
        }
        GENERALIZED_TIME => (digits(time.contents.get(..4)?)?, time.contents.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || rest.get(10) != Some(&b'Z') {
        return None;
    }
    let field = |at: usize| digits(rest.get(at..at + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(u64::try_from(secs).unwrap_or(0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm), for years 0..=9999.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The parts of a SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spki<'a> {
    /// The AlgorithmIdentifier, whole.
    pub(crate) algorithm: &'a [u8],
    /// The subjectPublicKey BIT STRING contents, unused-bits octet included.
    pub(crate) key_bits: &'a [u8],
}

/// Splits a SubjectPublicKeyInfo that fills `spki`.
pub(crate) fn spki(spki: &[u8]) -> Option<Spki<'_>> {
    let (seq, rest) = expect(spki, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (algorithm, body) = expect(seq.contents, SEQUENCE)?;
    let (key, body) = expect(body, BIT_STRING)?;
    body.is_empty().then_some(Spki {
        algorithm: algorithm.raw,
        key_bits: key.contents,
    })
}

/// AlgorithmIdentifiers (whole) that the fast key check understands.
const EC_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const EC_P384: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
const RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// The key algorithm of a PKCS#8 document the fast key check understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Ecdsa,
    Ed25519,
    Rsa,
}

/// What a PKCS#8 document says about its public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pkcs8Public<'a> {
    pub(crate) kind: KeyKind,
    /// The AlgorithmIdentifier, whole (as a SubjectPublicKeyInfo has it).
    pub(crate) algorithm: &'a [u8],
    /// The public key as a SubjectPublicKeyInfo's subjectPublicKey holds it:
    /// for EC and Ed25519 the BIT STRING contents (unused-bits octet
    /// included); for RSA the modulus and exponent INTEGER elements.
    pub(crate) key: PublicKey<'a>,
}

/// See [`Pkcs8Public::key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey<'a> {
    Bits(&'a [u8]),
    Rsa { n: &'a [u8], e: &'a [u8] },
}

/// The public key a PKCS#8 (v1 or v2) document carries: the ECPrivateKey's
/// `[1] publicKey` (P-256, P-384), the OneAsymmetricKey `[1] publicKey`
/// (Ed25519), or the modulus and exponent of an RSAPrivateKey (2048 to 4096
/// bits). `None` when the document carries none, is of another algorithm,
/// or is not laid out as expected.
pub(crate) fn pkcs8_public_key(doc: &[u8]) -> Option<Pkcs8Public<'_>> {
    let (seq, rest) = expect(doc, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (version, body) = expect(seq.contents, INTEGER)?;
    let v2 = match version.contents {
        [0] => false,
        [1] => true,
        _ => return None,
    };
    let (algorithm, body) = expect(body, SEQUENCE)?;
    let (private_key, body) = expect(body, OCTET_STRING)?;
    let (_attributes, body) = optional(body, 0xa0)?;
    let (outer_public, body) = optional(body, 0x81)?;
    if !body.is_empty() || (outer_public.is_some() && !v2) {
        return None;
    }
    let algorithm = algorithm.raw;
    let (kind, key) = match algorithm {
        EC_P256 | EC_P384 => {
            let (scalar_len, point_len) = if algorithm == EC_P256 {
                (32, 65)
            } else {
                (48, 97)
            };
            let (ec, rest) = expect(private_key.contents, SEQUENCE)?;
            if !rest.is_empty() {
                return None;
            }
            let (ec_version, body) = expect(ec.contents, INTEGER)?;
            if ec_version.contents != [1] {
                return None;
            }
            let (scalar, body) = expect(body, OCTET_STRING)?;
            if scalar.contents.len() != scalar_len {
                return None;
            }
            let (params, body) = optional(body, 0xa0)?;
            if let Some(params) = params {
                // Must name the same curve as the AlgorithmIdentifier.
                let curve = algorithm.get(11..)?;
                if params.contents != curve {
                    return None;
                }
            }
            let (public, body) = expect(body, 0xa1)?;
            if !body.is_empty() {
                return None;
            }
            let (bits, rest) = expect(public.contents, BIT_STRING)?;
            if !rest.is_empty() {
                return None;
            }
            let point = whole_octets(bits)?;
            if point.len() != point_len || point.first() != Some(&0x04) {
                return None;
            }
            (KeyKind::Ecdsa, PublicKey::Bits(bits.contents))
        }
        ED25519 => {
            let (seed, rest) = expect(private_key.contents, OCTET_STRING)?;
            if !rest.is_empty() || seed.contents.len() != 32 {
                return None;
            }
            let bits = outer_public?.contents;
            match bits.split_first() {
                Some((0, key)) if key.len() == 32 => {}
                _ => return None,
            }
            (KeyKind::Ed25519, PublicKey::Bits(bits))
        }
        RSA => {
            let (rsa, rest) = expect(private_key.contents, SEQUENCE)?;
            if !rest.is_empty() {
                return None;
            }
            let (rsa_version, body) = expect(rsa.contents, INTEGER)?;
            if rsa_version.contents != [0] {
                return None;
            }
            let (n, body) = expect(body, INTEGER)?;
            let (e, _) = expect(body, INTEGER)?;
            let modulus = positive_minimal(n.contents)?;
            if !(256..=512).contains(&modulus.len()) || positive_minimal(e.contents).is_none() {
                return None;
            }
            (KeyKind::Rsa, PublicKey::Rsa { n: n.raw, e: e.raw })
        }
        _ => return None,
    };
    Some(Pkcs8Public {
        kind,
        algorithm,
        key,
    })
}

/// The magnitude octets of a positive, minimally encoded INTEGER.
fn positive_minimal(contents: &[u8]) -> Option<&[u8]> {
    match contents {
        [0, next, ..] if next & 0x80 != 0 => contents.get(1..),
        [0, ..] => None,
        [first, ..] if first & 0x80 == 0 => Some(contents),
        _ => None,
    }
}

/// Whether the public key a PKCS#8 document carries is the one in the
/// subjectPublicKey BIT STRING contents `key_bits` of a certificate whose
/// AlgorithmIdentifier is `algorithm`.
pub(crate) fn same_public_key(public: &Pkcs8Public<'_>, spki: &Spki<'_>) -> bool {
    if public.algorithm != spki.algorithm {
        return false;
    }
    match public.key {
        PublicKey::Bits(bits) => bits == spki.key_bits,
        PublicKey::Rsa { n, e } => {
            let Some(octets) = whole_octets(Tlv {
                tag: BIT_STRING,
                contents: spki.key_bits,
                raw: &[],
            }) else {
                return false;
            };
            let Some((seq, rest)) = expect(octets, SEQUENCE) else {
                return false;
            };
            let Some((leaf_n, body)) = expect(seq.contents, INTEGER) else {
                return false;
            };
            let Some((leaf_e, body)) = expect(body, INTEGER) else {
                return false;
            };
            rest.is_empty() && body.is_empty() && leaf_n.raw == n && leaf_e.raw == e
        }
    }
}

/// Test builds: the DER walk must agree with x509-parser wherever it gives
/// an answer (run over every intermediate the tests and the conformance
/// corpora put on a candidate path).
#[cfg(test)]
pub(crate) fn cross_check(cert: &[u8], facts: IssuerFacts) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        // x509-parser rejects a certificate webpki took, and the walk too.
        return;
    };
    let key_cert_sign = match parsed.key_usage() {
        Ok(Some(ku)) => Some(ku.value.key_cert_sign()),
        _ => None,
    };
    assert_eq!(key_cert_sign, facts.key_cert_sign, "keyCertSign");
    assert_eq!(
        crate::profile::not_after_secs(&parsed),
        facts.not_after,
        "notAfter"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let (t, rest) = read(&[0x04, 0x01, 0xaa, 0xff]).unwrap();
        assert_eq!(
            (t.tag, t.contents, t.raw, rest),
            (4, &[0xaa][..], &[4, 1, 0xaa][..], &[0xff][..])
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7; 0x80]);
        let (t, rest) = read(&long).unwrap();
        assert_eq!((t.contents.len(), t.raw.len(), rest.len()), (0x80, 0x83, 0));
        let mut two = vec![0x30, 0x82, 0x01, 0x00];
        two.extend([0; 0x100]);
        assert_eq!(sequence_len(&two), Some(0x104));
    }

    #[test]
    fn rejects_truncated_overlong_and_non_minimal() {
        for bad in [
            &[][..],
            &[0x30],                               // no length
            &[0x30, 0x02, 0x00],                   // contents truncated
            &[0x30, 0x81],                         // length octets truncated
            &[0x30, 0x81, 0x05],                   // non-minimal: fits short form
            &[0x30, 0x82, 0x00, 0x90],             // non-minimal: leading zero
            &[0x30, 0x80, 0x00, 0x00],             // indefinite
            &[0x30, 0x85, 1, 0, 0, 0, 0],          // more than four length octets
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], // overlong: far past the end
            &[0x1f, 0x01, 0x00],                   // high tag number
        ] {
            assert_eq!(read(bad), None, "{bad:02x?}");
        }
        assert_eq!(sequence_len(&[0x04, 0x00]), None);
        assert_eq!(issuer_facts(&[0x30, 0x00]), None);
        assert_eq!(pkcs8_public_key(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn key_usage_bits() {
        // keyCertSign | cRLSign (0x06, 1 unused bit), digitalSignature only.
        assert_eq!(key_cert_sign_bit(&[0x03, 0x02, 0x01, 0x06]), Some(true));
        assert_eq!(key_cert_sign_bit(&[0x03, 0x02, 0x07, 0x80]), Some(false));
        assert_eq!(key_cert_sign_bit(&[0x03, 0x01, 0x00]), Some(false));
        // Non-zero unused bits, too many unused bits, trailing bytes.
        assert_eq!(key_cert_sign_bit(&[0x03, 0x02, 0x01, 0x07]), None);
        assert_eq!(key_cert_sign_bit(&[0x03, 0x02, 0x08, 0x00]), None);
        assert_eq!(key_cert_sign_bit(&[0x03, 0x01, 0x01]), None);
        assert_eq!(key_cert_sign_bit(&[0x03, 0x02, 0x01, 0x06, 0x00]), None);
    }

    #[test]
    fn times() {
        let t = |tag, s: &[u8]| {
            time_secs(Tlv {
                tag,
                contents: s,
                raw: &[],
            })
        };
        assert_eq!(t(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(t(UTC_TIME, b"270115080000Z"), Some(1_800_000_000));
        assert_eq!(t(GENERALIZED_TIME, b"20000229235959Z"), Some(951_868_799));
        assert_eq!(t(GENERALIZED_TIME, b"19691231235959Z"), Some(0));
        assert_eq!(t(UTC_TIME, b"490101000000Z"), Some(2_493_072_000));
        for bad in [
            &b"700101000000"[..],
            b"7001010000000Z",
            b"701301000000Z",
            b"700230000000Z",
            b"70010100000aZ",
            b"",
        ] {
            assert_eq!(t(UTC_TIME, bad), None);
        }
        assert_eq!(t(OCTET_STRING, b"700101000000Z"), None);
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        // A small certificate-shaped input, every prefix and every one-byte
        // change of it.
        let doc: Vec<u8> = vec![
            0x30, 0x0e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x02,
            0x04, 0x00,
        ];
        for end in 0..=doc.len() {
            let prefix = doc.get(..end).unwrap();
            let _ = (
                read(prefix),
                issuer_facts(prefix),
                pkcs8_public_key(prefix),
                spki(prefix),
            );
        }
        for i in 0..doc.len() {
            for v in [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff] {
                let mut m = doc.clone();
                m[i] = v;
                let _ = (read(&m), issuer_facts(&m), pkcs8_public_key(&m), spki(&m));
            }
        }
    }
}
