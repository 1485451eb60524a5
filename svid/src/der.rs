//! A minimal, panic-free DER reader for the few fields the hot paths need
//! without a full x509-parser pass: splitting concatenated certificates, an
//! intermediate's `keyCertSign` bit and `notAfter`, what the SPIFFE rules
//! read of a leaf, and the public key a PKCS#8 document carries.
//!
//! Everything here is strict DER (low-tag-number form, definite minimal
//! lengths of at most four octets; the element reader is `spiffe-bundle`'s)
//! and returns `None` on anything else; the callers then fall back to the
//! full parsers, so that an input this reader does not understand is judged
//! exactly as before.

use spiffe_bundle::__private::der::{self, Spki, Tlv, expect, optional, spki};

use crate::profile::{EkuFacts, KeyUsageFacts, LeafFacts, SanFacts};

/// Reads the element at the start of `input` (strict DER); returns it and
/// what follows.
fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    der::read(input).ok()
}

const SEQUENCE: u8 = der::TAG_SEQUENCE;
const INTEGER: u8 = der::TAG_INTEGER;
const BIT_STRING: u8 = der::TAG_BIT_STRING;
const OID: u8 = der::TAG_OID;
const OCTET_STRING: u8 = 0x04;
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

/// The fields of a certificate, split by their DER headers and tags only.
struct Certificate<'a> {
    /// What follows the TBSCertificate: signatureAlgorithm, signatureValue.
    signed: &'a [u8],
    version: Option<Tlv<'a>>,
    serial: Tlv<'a>,
    signature: Tlv<'a>,
    issuer: Tlv<'a>,
    not_before: Tlv<'a>,
    not_after: Tlv<'a>,
    subject: Tlv<'a>,
    spki: Tlv<'a>,
    /// Whether an issuerUniqueID or a subjectUniqueID is present.
    unique_ids: bool,
    /// The contents of the SEQUENCE OF Extension inside `[3]`.
    extensions: Option<&'a [u8]>,
}

/// Splits a certificate that fills `cert` into its fields.
fn split_certificate(cert: &[u8]) -> Option<Certificate<'_>> {
    let (cert, rest) = expect(cert, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, signed) = expect(cert.contents, SEQUENCE)?;
    let body = tbs.contents;
    let (version, body) = optional(body, 0xa0)?;
    let (serial, body) = expect(body, INTEGER)?;
    let (signature, body) = expect(body, SEQUENCE)?;
    let (issuer, body) = expect(body, SEQUENCE)?;
    let (validity, body) = expect(body, SEQUENCE)?;
    let (subject, body) = expect(body, SEQUENCE)?;
    let (spki, body) = expect(body, SEQUENCE)?;
    let (issuer_uid, body) = optional(body, 0x81)?;
    let (subject_uid, body) = optional(body, 0x82)?;
    let (extensions, body) = optional(body, 0xa3)?;
    if !body.is_empty() {
        return None;
    }
    let (not_before, times) = read(validity.contents)?;
    let (not_after, times) = read(times)?;
    if !times.is_empty() {
        return None;
    }
    let extensions = match extensions {
        Some(extensions) => {
            let (list, rest) = expect(extensions.contents, SEQUENCE)?;
            if !rest.is_empty() {
                return None;
            }
            Some(list.contents)
        }
        None => None,
    };
    Some(Certificate {
        signed,
        version,
        serial,
        signature,
        issuer,
        not_before,
        not_after,
        subject,
        spki,
        unique_ids: issuer_uid.is_some() || subject_uid.is_some(),
        extensions,
    })
}

/// The key-usage `keyCertSign` bit and `notAfter` of a certificate, or
/// `None` if the certificate is not laid out as this reader expects.
pub(crate) fn issuer_facts(cert: &[u8]) -> Option<IssuerFacts> {
    let cert = split_certificate(cert)?;
    let not_after = time_secs(cert.not_after)?;
    let mut key_cert_sign = None;
    let mut list = cert.extensions.unwrap_or_default();
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
        key_cert_sign = Some(key_usage_octet(value.contents)? & KEY_CERT_SIGN != 0);
    }
    Some(IssuerFacts {
        key_cert_sign,
        not_after,
    })
}

/// The first octet of a KeyUsage BIT STRING that fills `value` and is valid
/// DER (unused bits zero, at most 7 of them, none when empty); 0 when the
/// string is empty. Its bits, from the most significant: digitalSignature,
/// nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement,
/// keyCertSign, cRLSign, encipherOnly.
fn key_usage_octet(value: &[u8]) -> Option<u8> {
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
    Some(octets.first().copied().unwrap_or(0))
}

const DIGITAL_SIGNATURE: u8 = 0x80;
const KEY_CERT_SIGN: u8 = 0x04;
const CRL_SIGN: u8 = 0x02;

const SET: u8 = 0x31;
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];
const BASIC_CONSTRAINTS_OID: &[u8] = &[0x55, 0x1d, 0x13];
const EKU_OID: &[u8] = &[0x55, 0x1d, 0x25];
const SERVER_AUTH_OID: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 1];
const CLIENT_AUTH_OID: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 2];
/// Leaves with more extensions than this go to the full parser.
const MAX_EXTENSIONS: usize = 16;

/// Whether `tag` is one of the string types an attribute value of a name
/// may have here: UTF8String, NumericString, PrintableString,
/// TeletexString, IA5String, VisibleString, UniversalString, BMPString.
fn is_name_string(tag: u8) -> bool {
    matches!(tag, 0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x1a | 0x1c | 0x1e)
}

/// What the SPIFFE leaf rules read of a leaf certificate, by a strict walk
/// of its DER, or `None` when the certificate is not laid out as this
/// reader expects; the caller then parses it with x509-parser, which judges
/// as before. The walk answers only for a whole, well-formed v3 certificate
/// that x509-parser also reads, with the same facts (asserted in test
/// builds): names of string attributes, UTCTime or GeneralizedTime validity
/// to the second, no unique identifiers, at most [`MAX_EXTENSIONS`]
/// extensions with distinct OIDs, a critical flag only as DER `TRUE`, and
/// well-formed subjectAltName (e-mail, DNS, URI and IP names only),
/// basicConstraints, key usage and extended key usage. Anything else,
/// including every malformed extension the rules read, goes to the full
/// parser, so the leaf rules stay fail-closed.
pub(crate) fn leaf_facts(cert: &[u8]) -> Option<LeafFacts<'_>> {
    let cert = split_certificate(cert)?;
    let (signature_algorithm, signed) = read(cert.signed)?;
    algorithm_identifier(signature_algorithm)?;
    let (signature, signed) = expect(signed, BIT_STRING)?;
    whole_octets(signature)?;
    // Only v3 (v1 and v2 have no extensions), no unique identifiers.
    let version = cert.version?;
    if !signed.is_empty() || version.contents != [INTEGER, 1, 2] || cert.unique_ids {
        return None;
    }
    if cert.serial.contents.is_empty() {
        return None;
    }
    algorithm_identifier(cert.signature)?;
    name(cert.issuer)?;
    let subject_empty = name(cert.subject)?;
    time_secs(cert.not_before)?;
    let not_after = time_secs(cert.not_after)?;
    let key_info = spki(cert.spki.raw)?;
    algorithm_identifier(read(key_info.algorithm)?.0)?;
    if key_info.key_bits.first() != Some(&0) {
        return None;
    }
    let mut list = cert.extensions?;
    if list.is_empty() {
        return None;
    }

    let mut seen: [&[u8]; MAX_EXTENSIONS] = [&[]; MAX_EXTENSIONS];
    let mut count = 0;
    let (mut san, mut ca, mut key_usage, mut eku) = (None, false, None, None);
    while !list.is_empty() {
        let (extension, after) = expect(list, SEQUENCE)?;
        list = after;
        let (oid, fields) = expect(extension.contents, OID)?;
        valid_oid(oid.contents)?;
        if seen.get(..count)?.contains(&oid.contents) {
            return None; // a duplicate: the full parser reports it
        }
        *seen.get_mut(count)? = oid.contents;
        count += 1;
        let (critical, fields) = match optional(fields, BOOLEAN)? {
            (None, fields) => (false, fields),
            (Some(flag), fields) if flag.contents == [0xff] => (true, fields),
            _ => return None, // DER encodes neither FALSE nor other octets
        };
        let (value, fields) = expect(fields, OCTET_STRING)?;
        if !fields.is_empty() {
            return None;
        }
        match oid.contents {
            SAN_OID => san = Some(san_facts(value.contents, critical)?),
            BASIC_CONSTRAINTS_OID => ca = basic_constraints_ca(value.contents)?,
            KEY_USAGE_OID => {
                let octet = key_usage_octet(value.contents)?;
                key_usage = Some(KeyUsageFacts {
                    digital_signature: octet & DIGITAL_SIGNATURE != 0,
                    key_cert_sign: octet & KEY_CERT_SIGN != 0,
                    crl_sign: octet & CRL_SIGN != 0,
                });
            }
            EKU_OID => eku = Some(eku_facts(value.contents)?),
            _ => {}
        }
    }
    Some(LeafFacts {
        san: Ok(san),
        subject_empty,
        ca: Ok(ca),
        key_usage: Ok(key_usage),
        eku: Ok(eku),
        not_after,
    })
}

/// Checks an AlgorithmIdentifier: a SEQUENCE of an OID and at most one
/// parameter element.
fn algorithm_identifier(algorithm: Tlv<'_>) -> Option<()> {
    if algorithm.tag != SEQUENCE {
        return None;
    }
    let (oid, params) = expect(algorithm.contents, OID)?;
    valid_oid(oid.contents)?;
    match params {
        [] => Some(()),
        params => match read(params)? {
            (_, []) => Some(()),
            _ => None,
        },
    }
}

/// Checks the contents of an OBJECT IDENTIFIER: at least one octet, every
/// subidentifier minimal and terminated.
fn valid_oid(contents: &[u8]) -> Option<()> {
    let mut starts_subidentifier = true;
    for &b in contents {
        if starts_subidentifier && b == 0x80 {
            return None;
        }
        starts_subidentifier = b & 0x80 == 0;
    }
    (!contents.is_empty() && starts_subidentifier).then_some(())
}

/// Checks a Name (SEQUENCE OF non-empty SET OF SEQUENCE { OID, string });
/// returns whether it has no RDN.
fn name(name: Tlv<'_>) -> Option<bool> {
    if name.tag != SEQUENCE {
        return None;
    }
    let mut rdns = name.contents;
    while !rdns.is_empty() {
        let (set, after) = expect(rdns, SET)?;
        rdns = after;
        if set.contents.is_empty() {
            return None;
        }
        let mut attributes = set.contents;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, SEQUENCE)?;
            attributes = after;
            let (oid, value) = expect(attribute.contents, OID)?;
            valid_oid(oid.contents)?;
            let (value, end) = read(value)?;
            if !end.is_empty() || !is_name_string(value.tag) {
                return None;
            }
        }
    }
    Some(name.contents.is_empty())
}

/// A subjectAltName value: a non-empty SEQUENCE of e-mail, DNS and URI
/// names in UTF-8, and IP addresses.
fn san_facts(value: &[u8], critical: bool) -> Option<SanFacts<'_>> {
    let (names, rest) = expect(value, SEQUENCE)?;
    if !rest.is_empty() || names.contents.is_empty() {
        return None;
    }
    let (mut first_uri, mut uri_count) = (None, 0);
    let mut names = names.contents;
    while !names.is_empty() {
        let (name, after) = read(names)?;
        names = after;
        match name.tag {
            0x81 | 0x82 => {
                std::str::from_utf8(name.contents).ok()?;
            }
            0x86 => {
                let uri = std::str::from_utf8(name.contents).ok()?;
                first_uri = first_uri.or(Some(uri));
                uri_count += 1;
            }
            0x87 => {}
            _ => return None,
        }
    }
    Some(SanFacts {
        critical,
        first_uri,
        uri_count,
    })
}

/// The `cA` flag of a basicConstraints value: an empty SEQUENCE, or one
/// holding only the flag (a pathLenConstraint goes to the full parser). An
/// explicit `FALSE` is not DER, but common (rcgen writes it) and read alike
/// by x509-parser and rustls-webpki.
fn basic_constraints_ca(value: &[u8]) -> Option<bool> {
    match value {
        [SEQUENCE, 0] | [SEQUENCE, 3, BOOLEAN, 1, 0x00] => Some(false),
        [SEQUENCE, 3, BOOLEAN, 1, 0xff] => Some(true),
        _ => None,
    }
}

/// The TLS roles of an extended-key-usage value: a non-empty SEQUENCE of
/// OIDs.
fn eku_facts(value: &[u8]) -> Option<EkuFacts> {
    let (purposes, rest) = expect(value, SEQUENCE)?;
    if !rest.is_empty() || purposes.contents.is_empty() {
        return None;
    }
    let (mut server_auth, mut client_auth) = (false, false);
    let mut purposes = purposes.contents;
    while !purposes.is_empty() {
        let (oid, after) = expect(purposes, OID)?;
        purposes = after;
        valid_oid(oid.contents)?;
        server_auth |= oid.contents == SERVER_AUTH_OID;
        client_auth |= oid.contents == CLIENT_AUTH_OID;
    }
    Some(EkuFacts {
        server_auth,
        client_auth,
    })
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
    fn splits_sequences_and_refuses_what_is_not_laid_out_as_expected() {
        let mut two = vec![0x30, 0x82, 0x01, 0x00];
        two.extend([0; 0x100]);
        two.extend([0x30, 0x00]);
        assert_eq!(sequence_len(&two), Some(0x104));
        assert_eq!(sequence_len(&[0x04, 0x00]), None);
        assert_eq!(sequence_len(&[0x30, 0x81, 0x05]), None, "not DER");
        assert_eq!(issuer_facts(&[0x30, 0x00]), None);
        assert_eq!(leaf_facts(&[0x30, 0x00]), None);
        assert_eq!(pkcs8_public_key(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn object_identifiers() {
        assert_eq!(valid_oid(&[0x55, 0x1d, 0x11]), Some(()));
        assert_eq!(valid_oid(&[0x2b, 0x81, 0x04, 0x00]), Some(()));
        assert_eq!(valid_oid(&[]), None, "empty");
        assert_eq!(valid_oid(&[0x2b, 0x81]), None, "unterminated");
        assert_eq!(valid_oid(&[0x2b, 0x80, 0x01]), None, "not minimal");
        assert_eq!(valid_oid(&[0x80, 0x01]), None, "not minimal first");
    }

    #[test]
    fn key_usage_bits() {
        // keyCertSign | cRLSign (0x06, 1 unused bit), digitalSignature only.
        assert_eq!(key_usage_octet(&[0x03, 0x02, 0x01, 0x06]), Some(0x06));
        assert_eq!(key_usage_octet(&[0x03, 0x02, 0x07, 0x80]), Some(0x80));
        assert_eq!(key_usage_octet(&[0x03, 0x01, 0x00]), Some(0));
        assert_eq!(key_usage_octet(&[0x03, 0x03, 0x07, 0xa0, 0x80]), Some(0xa0));
        // Non-zero unused bits, too many unused bits, trailing bytes.
        assert_eq!(key_usage_octet(&[0x03, 0x02, 0x01, 0x07]), None);
        assert_eq!(key_usage_octet(&[0x03, 0x02, 0x08, 0x00]), None);
        assert_eq!(key_usage_octet(&[0x03, 0x01, 0x01]), None);
        assert_eq!(key_usage_octet(&[0x03, 0x02, 0x01, 0x06, 0x00]), None);
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
                leaf_facts(prefix),
                issuer_facts(prefix),
                pkcs8_public_key(prefix),
            );
        }
        for i in 0..doc.len() {
            for v in [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff] {
                let mut m = doc.clone();
                m[i] = v;
                let _ = (leaf_facts(&m), issuer_facts(&m), pkcs8_public_key(&m));
            }
        }
    }
}
