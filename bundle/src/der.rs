//! The little DER this crate needs: reading TLV elements strictly (to split
//! concatenated certificates, strip outer tags and take a
//! SubjectPublicKeyInfo apart) and writing the few structures of a
//! SubjectPublicKeyInfo.
//!
//! The reader is shared with `spiffe-svid` through
//! [`__private::der`](crate::__private::der).

/// One DER element: its tag octet, its contents and its whole encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag octet (low-tag-number form only).
    pub tag: u8,
    /// The contents octets.
    pub contents: &'a [u8],
    /// The whole element: tag, length and contents octets.
    pub raw: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows
/// it. Only strict DER is accepted: a single-octet tag and a definite length
/// in its shortest form, of at most four octets. The error says what is
/// wrong, for messages.
///
/// # Errors
///
/// A short description of the first problem found.
#[inline]
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not supported");
    }
    let (&first, rest) = rest.split_first().ok_or("missing length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err("indefinite length is not DER");
        }
        if n > 4 {
            return Err("length is too large");
        }
        let (octets, rest) = rest.split_at_checked(n).ok_or("truncated length")?;
        if octets.first() == Some(&0) {
            return Err("length is not minimally encoded");
        }
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err("length is not minimally encoded");
        }
        (len, rest)
    };
    let (contents, after) = rest.split_at_checked(len).ok_or("contents are truncated")?;
    let raw = input
        .get(..input.len() - after.len())
        .ok_or("contents are truncated")?;
    Ok((Tlv { tag, contents, raw }, after))
}

/// Reads an element with tag `tag` at the start of `input`; `None` if there
/// is none or it is not strict DER.
#[inline]
pub fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (tlv, rest) = read(input).ok()?;
    (tlv.tag == tag).then_some((tlv, rest))
}

/// Reads an element with tag `tag` if the next one has that tag; `None`
/// only if that element is not strict DER.
#[inline]
pub fn optional(input: &[u8], tag: u8) -> Option<(Option<Tlv<'_>>, &[u8])> {
    match input.first() {
        Some(&t) if t == tag => {
            let (tlv, rest) = read(input).ok()?;
            Some((Some(tlv), rest))
        }
        _ => Some((None, input)),
    }
}

/// The contents of the single TLV that makes up `input` (outer tag and length
/// removed), or `None` if `input` is not exactly one TLV.
pub(crate) fn contents(input: &[u8]) -> Option<&[u8]> {
    match read(input) {
        Ok((tlv, [])) => Some(tlv.contents),
        _ => None,
    }
}

/// The two parts of a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spki<'a> {
    /// The AlgorithmIdentifier SEQUENCE, whole (tag and length included).
    pub algorithm: &'a [u8],
    /// The subjectPublicKey BIT STRING contents, unused-bits octet included.
    pub key_bits: &'a [u8],
}

/// Splits a DER SubjectPublicKeyInfo (`SEQUENCE { SEQUENCE, BIT STRING }`)
/// that fills `spki` exactly; `None` otherwise.
pub fn spki(spki: &[u8]) -> Option<Spki<'_>> {
    let (seq, rest) = expect(spki, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (algorithm, body) = expect(seq.contents, TAG_SEQUENCE)?;
    let (key, body) = expect(body, TAG_BIT_STRING)?;
    body.is_empty().then_some(Spki {
        algorithm: algorithm.raw,
        key_bits: key.contents,
    })
}

/// Appends a TLV with the given contents.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(contents);
}

/// Appends a non-negative INTEGER whose big-endian magnitude is `magnitude`.
pub(crate) fn write_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = strip_leading_zeros(magnitude);
    let mut contents = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(trimmed);
    write_tlv(out, TAG_INTEGER, &contents);
}

/// `magnitude` without its leading zero bytes.
pub(crate) fn strip_leading_zeros(magnitude: &[u8]) -> &[u8] {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    magnitude.get(skip..).unwrap_or_default()
}

/// The INTEGER tag.
pub const TAG_INTEGER: u8 = 0x02;
/// The BIT STRING tag.
pub const TAG_BIT_STRING: u8 = 0x03;
/// The NULL tag.
pub const TAG_NULL: u8 = 0x05;
/// The OBJECT IDENTIFIER tag.
pub const TAG_OID: u8 = 0x06;
/// The SEQUENCE (constructed) tag.
pub const TAG_SEQUENCE: u8 = 0x30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let mut out = Vec::new();
            write_tlv(&mut out, TAG_SEQUENCE, &vec![7u8; len]);
            let (tlv, rest) = read(&out).unwrap();
            assert_eq!(tlv.contents.len(), len);
            assert_eq!(tlv.raw, &out[..]);
            assert!(rest.is_empty());
            assert_eq!(contents(&out).unwrap().len(), len);
        }
    }

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
        assert_eq!(contents(&[0x04, 0x01, 0xaa, 0xff]), None, "trailing octet");
    }

    #[test]
    fn rejects_non_der_lengths() {
        for (bad, reason) in [
            (&[][..], "unexpected end of data"),
            (&[0x30], "missing length"),
            (&[0x30, 0x02, 0x00], "contents are truncated"),
            (&[0x30, 0x05, 0], "contents are truncated"),
            (&[0x30, 0x81], "truncated length"),
            (
                &[0x30, 0x81, 0x05, 0, 0, 0, 0, 0],
                "length is not minimally encoded",
            ),
            (&[0x30, 0x82, 0x00, 0x90], "length is not minimally encoded"),
            (&[0x30, 0x80, 0x00, 0x00], "indefinite length is not DER"),
            (&[0x30, 0x85, 1, 0, 0, 0, 0], "length is too large"),
            (
                &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
                "contents are truncated",
            ),
            (&[0x1f, 0x01, 0x00], "multi-byte tags are not supported"),
        ] {
            assert_eq!(read(bad), Err(reason), "{bad:02x?}");
        }
    }

    #[test]
    fn expected_and_optional_tags() {
        let input = [0x02, 0x01, 0x05, 0x04, 0x00];
        assert_eq!(expect(&input, TAG_SEQUENCE), None);
        let (int, rest) = expect(&input, TAG_INTEGER).unwrap();
        assert_eq!((int.contents, rest), (&[5][..], &[4, 0][..]));
        assert_eq!(optional(&input, TAG_SEQUENCE), Some((None, &input[..])));
        assert_eq!(
            optional(&input, TAG_INTEGER).map(|(t, r)| (t.map(|t| t.contents), r)),
            Some((Some(&[5][..]), &[4, 0][..]))
        );
        assert_eq!(optional(&[0x02, 0x05], TAG_INTEGER), None, "truncated");
    }

    #[test]
    fn splits_spki() {
        // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused, 2) }
        let der = [
            0x30, 0x0b, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x02, 0x00, 0x07,
        ];
        assert_eq!(
            spki(&der),
            Some(Spki {
                algorithm: &der[2..9],
                key_bits: &[0x00, 0x07],
            })
        );
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert_eq!(spki(&trailing), None);
        let mut not_bits = der;
        not_bits[9] = 0x04;
        assert_eq!(spki(&not_bits), None);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        write_unsigned_integer(&mut out, &[0, 0, 0x80]);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        write_unsigned_integer(&mut out, &[0x01, 0x00, 0x01]);
        assert_eq!(out, [0x02, 0x03, 0x01, 0x00, 0x01]);
    }
}
