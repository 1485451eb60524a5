//! The little DER this crate needs: walking TLV headers (to split
//! concatenated certificates and to strip outer tags) and writing the few
//! structures of a SubjectPublicKeyInfo.

/// One TLV element found by [`read_tlv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv {
    pub(crate) tag: u8,
    /// Length of the tag and length octets.
    pub(crate) header_len: usize,
    /// Length of the contents.
    pub(crate) content_len: usize,
}

impl Tlv {
    pub(crate) fn total_len(&self) -> usize {
        self.header_len + self.content_len
    }
}

/// Reads the header of the TLV at the start of `input` and checks that its
/// contents fit. Only single-byte tags and definite lengths (as DER requires)
/// are accepted.
pub(crate) fn read_tlv(input: &[u8]) -> Result<Tlv, &'static str> {
    let (&tag, rest) = input.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not supported");
    }
    let (&first, rest) = rest.split_first().ok_or("missing length")?;
    let (content_len, len_octets) = if first < 0x80 {
        (usize::from(first), 0)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err("indefinite length is not DER");
        }
        if n > 4 {
            return Err("length is too large");
        }
        let bytes = rest.get(..n).ok_or("truncated length")?;
        if bytes.first() == Some(&0) {
            return Err("length is not minimally encoded");
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err("length is not minimally encoded");
        }
        (len, n)
    };
    let header_len = 2 + len_octets;
    if input.len() - header_len < content_len {
        return Err("contents are truncated");
    }
    Ok(Tlv {
        tag,
        header_len,
        content_len,
    })
}

/// The contents of the single TLV that makes up `input` (outer tag and length
/// removed), or `None` if `input` is not exactly one TLV.
pub(crate) fn contents(input: &[u8]) -> Option<&[u8]> {
    let tlv = read_tlv(input).ok()?;
    if tlv.total_len() != input.len() {
        return None;
    }
    input.get(tlv.header_len..)
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

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let mut out = Vec::new();
            write_tlv(&mut out, TAG_SEQUENCE, &vec![7u8; len]);
            let tlv = read_tlv(&out).unwrap();
            assert_eq!(tlv.content_len, len);
            assert_eq!(tlv.total_len(), out.len());
            assert_eq!(contents(&out).unwrap().len(), len);
        }
    }

    #[test]
    fn rejects_non_der_lengths() {
        assert!(read_tlv(&[0x30, 0x80]).is_err());
        assert!(read_tlv(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_err());
        assert!(read_tlv(&[0x30, 0x82, 0x00, 0x90]).is_err());
        assert!(read_tlv(&[0x30, 0x05, 0]).is_err());
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x30]).is_err());
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
