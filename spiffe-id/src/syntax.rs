//! The SPIFFE ID grammar: character classes, limits and the single-pass
//! scanners every type of this crate is built on.

use crate::SpiffeIdError;

/// The scheme and authority marker every SPIFFE ID starts with.
pub const SCHEME_PREFIX: &str = "spiffe://";

/// The longest SPIFFE ID accepted, in bytes, counting the whole URI
/// (`spiffe://`, trust domain and path). The specification requires support
/// for IDs up to and including this length (rule ID-18) and tells issuers
/// not to generate longer ones (ID-19); this crate rejects longer ones, which
/// also bounds the work any input can cause.
pub const MAX_ID_LEN: usize = 2048;

/// The longest trust-domain name accepted, in bytes (rule ID-20).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

const TD: u8 = 1;
const PATH: u8 = 2;

/// Byte classes: `TD` for `[a-z0-9._-]`, `PATH` for `[a-zA-Z0-9._-]`.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-' || c == b'_' {
            t[b] = TD | PATH;
        } else if c.is_ascii_uppercase() {
            t[b] = PATH;
        }
        b += 1;
    }
    t
};

#[inline(always)]
fn is_td_byte(c: u8) -> bool {
    CLASS[c as usize] & TD != 0
}

#[inline(always)]
fn is_path_byte(c: u8) -> bool {
    CLASS[c as usize] & PATH != 0
}

/// Bit 7 of each byte set where the byte is `[a-z0-9._-]`.
#[inline(always)]
fn trust_domain_bytes(word: u64) -> u64 {
    let x = word & !HIGH;
    let punct = bytes_in_range(x, b'-', b'.');
    let digits = bytes_in_range(x, b'0', b'9');
    let lower = bytes_in_range(x, b'a', b'z');
    let underscore = bytes_in_range(x, b'_', b'_');
    (punct | digits | lower | underscore) & !word
}

/// Scans trust-domain bytes of `bytes` up to the first `/` (or the end) and
/// returns how many there are. `offset` is added to error indices.
///
/// Valid names are checked 8 bytes at a time; an invalid one is scanned again
/// byte by byte for the exact error.
#[inline]
pub(crate) fn scan_trust_domain(bytes: &[u8], offset: usize) -> Result<usize, SpiffeIdError> {
    let mut i = 0;
    loop {
        let word = load_word(bytes, i);
        let slashes = bytes_in_range(word & !HIGH, b'/', b'/') & !word;
        // Bytes of this word that belong to the name: up to the first slash
        // or the end of the input.
        let in_name = (slashes.trailing_zeros() / 8) as usize;
        let in_name = in_name.min(bytes.len() - i);
        let mask = if in_name >= 8 {
            u64::MAX
        } else {
            (1u64 << (in_name * 8)) - 1
        };
        if trust_domain_bytes(word) & mask != HIGH & mask {
            return Err(first_bad_trust_domain_byte(bytes, offset));
        }
        if in_name < 8 || i + 8 == bytes.len() {
            return Ok(i + in_name);
        }
        i += 8;
    }
}

#[cold]
fn first_bad_trust_domain_byte(bytes: &[u8], offset: usize) -> SpiffeIdError {
    let name = bytes.split(|&b| b == b'/').next().unwrap_or_default();
    match name.iter().position(|&c| !is_td_byte(c)) {
        Some(i) => SpiffeIdError::BadTrustDomainChar {
            byte: name[i],
            index: offset + i,
        },
        // Not reached: called only when the fast check found a bad byte.
        None => SpiffeIdError::MissingTrustDomain,
    }
}

/// Checks a bare trust-domain name: non-empty, at most
/// [`MAX_TRUST_DOMAIN_LEN`] bytes, only `[a-z0-9._-]`.
pub(crate) fn check_trust_domain_name(name: &str) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::MissingTrustDomain);
    }
    let bytes = name.as_bytes();
    if let Some(i) = bytes.iter().position(|&c| !is_td_byte(c)) {
        return Err(SpiffeIdError::BadTrustDomainChar {
            byte: bytes[i],
            index: i,
        });
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: name.len() });
    }
    Ok(())
}

/// Checks the segment that ends just before `end` and started at `start`
/// (indices into `path`, which begins with `/`).
#[inline(always)]
fn check_segment(
    path: &[u8],
    start: usize,
    end: usize,
    offset: usize,
) -> Result<(), SpiffeIdError> {
    match &path[start..end] {
        [] => Err(SpiffeIdError::EmptySegment {
            index: offset + start,
        }),
        [b'.'] | [b'.', b'.'] => Err(SpiffeIdError::DotSegment {
            index: offset + start,
        }),
        _ => Ok(()),
    }
}

/// Scans a path that is empty or starts with `/`.
///
/// Valid paths take a fast route: branch-free passes over the bytes that the
/// compiler vectorizes. Any path the fast route does not accept is scanned
/// again by [`scan_path_precisely`], which finds the exact error.
#[inline]
pub(crate) fn scan_path(path: &[u8], offset: usize) -> Result<(), SpiffeIdError> {
    match path.first() {
        None => Ok(()),
        Some(b'/') if path_is_valid_fast(path) => Ok(()),
        Some(b'/') => scan_path_precisely(path, offset),
        Some(_) => Err(SpiffeIdError::NoLeadingSlash),
    }
}

// SWAR ("SIMD within a register") helpers on 8 bytes at once. Each works on
// bytes below 0x80 and leaves bit 7 of a byte set when the condition holds;
// no borrow or carry crosses a byte boundary.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte set where `lo <= byte <= hi` (bytes of `x` < 0x80).
#[inline(always)]
fn bytes_in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let ge_lo = (x | HIGH) - ONES * u64::from(lo);
    let le_hi = ONES * (0x80 + u64::from(hi)) - x;
    ge_lo & le_hi & HIGH
}

/// Bit 7 of each byte set where the byte is `[a-zA-Z0-9._-]` or `/`.
#[inline(always)]
fn path_bytes_or_slashes(word: u64) -> u64 {
    let x = word & !HIGH;
    // "-./0123456789" is one contiguous range.
    let punct_digits = bytes_in_range(x, b'-', b'9');
    let letters = bytes_in_range(x | (ONES * 0x20), b'a', b'z');
    let underscore = bytes_in_range(x, b'_', b'_');
    (punct_digits | letters | underscore) & !word
}

/// Bytes `i..i + 8` of `p` as a little-endian word, padded with `a` (a
/// valid byte that completes no pattern) past the end.
#[inline(always)]
fn load_word(p: &[u8], i: usize) -> u64 {
    match p.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        Some(bytes) => u64::from_le_bytes(*bytes),
        None => {
            let mut bytes = [b'a'; 8];
            let rest = p.get(i..).unwrap_or_default();
            bytes[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(bytes)
        }
    }
}

/// The fast, all-or-nothing check of a path starting with `/`: every byte
/// allowed, no empty segment (`//`, trailing `/`), no `.` or `..` segment.
/// Bytes are checked 8 at a time; only the bytes after each `/` are looked
/// at one by one.
#[inline]
fn path_is_valid_fast(p: &[u8]) -> bool {
    let mut i = 0;
    while i < p.len() {
        let word = load_word(p, i);
        if path_bytes_or_slashes(word) != HIGH {
            return false;
        }
        let mut slashes = bytes_in_range(word & !HIGH, b'/', b'/');
        while slashes != 0 {
            let j = i + (slashes.trailing_zeros() / 8) as usize;
            slashes &= slashes - 1;
            // The segment after the slash must exist and not be `.`/`..`.
            let bad = matches!(
                (p.get(j + 1), p.get(j + 2), p.get(j + 3)),
                (None | Some(b'/'), _, _)
                    | (Some(b'.'), None | Some(b'/'), _)
                    | (Some(b'.'), Some(b'.'), None | Some(b'/'))
            );
            if bad {
                return false;
            }
        }
        i += 8;
    }
    true
}

/// Scans a path starting with `/` in one left-to-right pass and reports the
/// first error: a bad byte fails where it is seen, an empty or dot segment
/// fails when the `/` after it is reached, and the trailing-slash and
/// last-segment checks run at the end (go-spiffe's precedence).
#[cold]
fn scan_path_precisely(path: &[u8], offset: usize) -> Result<(), SpiffeIdError> {
    let mut seg_start = 1;
    for (i, &c) in path.iter().enumerate().skip(1) {
        if c == b'/' {
            check_segment(path, seg_start, i, offset)?;
            seg_start = i + 1;
        } else if !is_path_byte(c) {
            return Err(SpiffeIdError::BadPathSegmentChar {
                byte: c,
                index: offset + i,
            });
        }
    }
    if seg_start == path.len() {
        return Err(SpiffeIdError::TrailingSlash);
    }
    check_segment(path, seg_start, path.len(), offset)
}

/// Parses a whole SPIFFE ID and returns the index where its trust domain ends
/// (the length of `spiffe://<trust-domain>`).
#[inline]
pub(crate) fn parse_id(s: &str) -> Result<usize, SpiffeIdError> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(SpiffeIdError::Empty);
    }
    if bytes.first_chunk::<9>() != Some(b"spiffe://") {
        return Err(SpiffeIdError::WrongScheme);
    }
    let rest = &bytes[SCHEME_PREFIX.len()..];
    if bytes.len() > MAX_ID_LEN {
        return Err(SpiffeIdError::TooLong { len: bytes.len() });
    }
    let td_len = scan_trust_domain(rest, SCHEME_PREFIX.len())?;
    if td_len == 0 {
        return Err(SpiffeIdError::MissingTrustDomain);
    }
    if td_len > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: td_len });
    }
    let td_end = SCHEME_PREFIX.len() + td_len;
    scan_path(&bytes[td_end..], td_end)?;
    Ok(td_end)
}

/// Checks a SPIFFE ID path: either empty (the trust domain's own ID) or one or
/// more `/segment` parts, each segment valid under
/// [`validate_path_segment`]. Error indices count from the start of `path`.
///
/// # Errors
///
/// [`SpiffeIdError::NoLeadingSlash`] for a non-empty path without a leading
/// `/`, [`SpiffeIdError::TrailingSlash`] for `/` or `/a/`, and the segment
/// errors of [`validate_path_segment`].
///
/// ```
/// use spiffe_id::{validate_path, SpiffeIdError};
/// assert!(validate_path("").is_ok());
/// assert!(validate_path("/ns/default/sa/web").is_ok());
/// assert_eq!(validate_path("/a/"), Err(SpiffeIdError::TrailingSlash));
/// assert_eq!(validate_path("a"), Err(SpiffeIdError::NoLeadingSlash));
/// ```
pub fn validate_path(path: &str) -> Result<(), SpiffeIdError> {
    scan_path(path.as_bytes(), 0)
}

/// Checks one path segment: non-empty, not `.` or `..`, only bytes of
/// `[a-zA-Z0-9._-]` (so no `/`). Error indices count from the start of the
/// segment.
///
/// # Errors
///
/// [`SpiffeIdError::EmptySegment`], [`SpiffeIdError::DotSegment`] or
/// [`SpiffeIdError::BadPathSegmentChar`].
///
/// ```
/// use spiffe_id::{validate_path_segment, SpiffeIdError};
/// assert!(validate_path_segment("...").is_ok());
/// assert_eq!(validate_path_segment(".."), Err(SpiffeIdError::DotSegment { index: 0 }));
/// assert!(matches!(validate_path_segment("a/b"), Err(SpiffeIdError::BadPathSegmentChar { byte: b'/', index: 1 })));
/// ```
pub fn validate_path_segment(segment: &str) -> Result<(), SpiffeIdError> {
    let bytes = segment.as_bytes();
    if let Some(i) = bytes.iter().position(|&c| !is_path_byte(c)) {
        return Err(SpiffeIdError::BadPathSegmentChar {
            byte: bytes[i],
            index: i,
        });
    }
    check_segment(bytes, 0, bytes.len(), 0)
}

/// Writes the ASCII-lowercased scheme and trust domain of `s` into a new
/// string, leaving the path as it is. Used by the case-normalizing parser.
pub(crate) fn lowercase_authority(s: &str) -> alloc::string::String {
    // The authority ends at the first '/' after the "scheme://" marker.
    let authority_end = s
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| s[start..].find('/').map(|j| start + j))
        .unwrap_or(s.len());
    let mut out = alloc::string::String::with_capacity(s.len());
    out.push_str(&s[..authority_end].to_ascii_lowercase());
    out.push_str(&s[authority_end..]);
    out
}

/// A fixed-size stack buffer for building an ID of at most [`MAX_ID_LEN`]
/// bytes, so that builders make exactly one heap allocation: the final
/// `Arc<str>`.
pub(crate) struct UriBuf {
    buf: [u8; MAX_ID_LEN],
    len: usize,
}

impl UriBuf {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; MAX_ID_LEN],
            len: 0,
        }
    }

    /// Appends `s`, or fails with [`SpiffeIdError::TooLong`] (reporting the
    /// length the result would have had) when it does not fit.
    pub(crate) fn push_str(&mut self, s: &str) -> Result<(), SpiffeIdError> {
        let end = self.len + s.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(s.as_bytes());
                self.len = end;
                Ok(())
            }
            None => Err(SpiffeIdError::TooLong { len: end }),
        }
    }

    /// The text written so far, as one allocation.
    pub(crate) fn to_arc(&self) -> alloc::sync::Arc<str> {
        // Only whole `&str` values were appended, so this is valid UTF-8; the
        // fallback is never taken.
        alloc::sync::Arc::from(core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of up to 8 bytes over an alphabet that can form every
    /// kind of segment error: the fast route accepts exactly what the
    /// precise scanner accepts.
    #[test]
    fn fast_and_precise_path_checks_agree_exhaustively() {
        const ALPHABET: &[u8] = b"/.a%";
        let mut checked = 0;
        for len in 1..=8u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                let mut path = alloc::vec![b'/'];
                for _ in 1..len {
                    path.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                assert_eq!(
                    path_is_valid_fast(&path),
                    scan_path_precisely(&path, 0).is_ok(),
                    "{:?}",
                    core::str::from_utf8(&path)
                );
                checked += 1;
            }
        }
        assert!(checked > 20_000);
    }

    /// Every trust-domain part of up to 10 bytes (followed by nothing or by
    /// a path) over an alphabet with valid, invalid and separator bytes: the
    /// word-at-a-time scanner agrees with a byte-by-byte reference.
    #[test]
    fn trust_domain_scanner_agrees_with_reference_exhaustively() {
        const ALPHABET: &[u8] = b"a/A.";
        for len in 0..=10u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                let mut input = alloc::vec::Vec::new();
                for _ in 0..len {
                    input.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let name_len = input.iter().position(|&b| b == b'/').unwrap_or(input.len());
                let expected = match input[..name_len].iter().position(|&c| !is_td_byte(c)) {
                    Some(i) => Err(SpiffeIdError::BadTrustDomainChar {
                        byte: input[i],
                        index: 9 + i,
                    }),
                    None => Ok(name_len),
                };
                assert_eq!(
                    scan_trust_domain(&input, 9),
                    expected,
                    "{:?}",
                    core::str::from_utf8(&input)
                );
            }
        }
    }

    #[test]
    fn fast_byte_classes_match_the_table() {
        for b in 0..=255u8 {
            let td_word = u64::from_le_bytes([b, b'a', b'z', b'0', b'.', b'_', b'9', b'-']);
            let td_expected = if is_td_byte(b) { HIGH } else { HIGH & !0x80 };
            assert_eq!(trust_domain_bytes(td_word), td_expected, "{b:#x}");
            let word = u64::from_le_bytes([b, b'a', b'/', b'0', b'.', b'_', b'Z', b'-']);
            let expected = if is_path_byte(b) || b == b'/' {
                HIGH
            } else {
                HIGH & !0x80
            };
            assert_eq!(path_bytes_or_slashes(word), expected, "{b:#x}");
        }
    }
}
