//! The SPIFFE X509-SVID certificate profile, checked on parsed certificates.
//!
//! These are the rules that RFC 5280 path validation does not cover (or that
//! rustls-webpki does not apply): exactly one URI SAN that is a SPIFFE ID with
//! a path, `cA=false`, and the leaf's key usage and extended key usage.
//!
//! The leaf rules judge [`LeafFacts`], which either reader produces: the
//! strict DER walk of [`crate::der::leaf_facts`] (the verification hot path)
//! or x509-parser ([`leaf_facts`]), which takes over whenever the walk does
//! not answer, so that an unusual or malformed leaf is judged as before.

use spiffe_id::SpiffeId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::X509SvidError;

/// Parses one DER certificate, which must fill `der` exactly.
pub(crate) fn parse_cert(der: &[u8], index: usize) -> Result<X509Certificate<'_>, X509SvidError> {
    let malformed = |reason: String| X509SvidError::MalformedCertificate { index, reason };
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// What the SPIFFE leaf rules look at, each field as read or with the error
/// reading it gave, so that [`check_leaf_facts`] reports errors in the same
/// order whichever reader produced the facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeafFacts<'a> {
    /// The subjectAltName extension, `None` when absent.
    pub(crate) san: Result<Option<SanFacts<'a>>, X509SvidError>,
    /// Whether the subject name has no RDN.
    pub(crate) subject_empty: bool,
    /// basicConstraints `cA` (`false` when the extension is absent).
    pub(crate) ca: Result<bool, X509SvidError>,
    /// The key-usage extension, `None` when absent.
    pub(crate) key_usage: Result<Option<KeyUsageFacts>, X509SvidError>,
    /// The extended-key-usage extension, `None` when absent.
    pub(crate) eku: Result<Option<EkuFacts>, X509SvidError>,
    /// `notAfter`, in seconds since the Unix epoch (0 for earlier dates).
    pub(crate) not_after: u64,
}

/// The part of a subjectAltName extension the rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SanFacts<'a> {
    /// Whether the extension is marked critical.
    pub(crate) critical: bool,
    /// The first URI name, if any.
    pub(crate) first_uri: Option<&'a str>,
    /// How many URI names there are.
    pub(crate) uri_count: usize,
}

/// The key-usage bits the rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyUsageFacts {
    pub(crate) digital_signature: bool,
    pub(crate) key_cert_sign: bool,
    pub(crate) crl_sign: bool,
}

/// The extended key usages the rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EkuFacts {
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
}

/// Checks the leaf of an X509-SVID given as DER: the SPIFFE rules of
/// [`check_leaf_facts`], on the facts the strict DER walk reads or, when the
/// walk does not answer, on x509-parser's parse ([`parse_cert`], so a
/// certificate it cannot parse is [`X509SvidError::MalformedCertificate`]).
/// Returns the SPIFFE ID and the leaf's `notAfter` (seconds since the Unix
/// epoch).
pub(crate) fn check_leaf_der(der: &[u8]) -> Result<(SpiffeId, u64), X509SvidError> {
    let facts = match crate::der::leaf_facts(der) {
        Some(facts) => {
            #[cfg(test)]
            cross_check_leaf(der, &facts);
            facts
        }
        None => leaf_facts(&parse_cert(der, 0)?),
    };
    let not_after = facts.not_after;
    Ok((check_leaf_facts(facts)?, not_after))
}

/// Test builds: wherever the DER walk answers, x509-parser must parse the
/// certificate too and read the same facts (run over every leaf the tests
/// and fuzz-like unit tests verify).
#[cfg(test)]
#[allow(clippy::panic)]
pub(crate) fn cross_check_leaf(der: &[u8], facts: &LeafFacts<'_>) {
    match parse_cert(der, 0) {
        Ok(parsed) => assert_eq!(&leaf_facts(&parsed), facts, "leaf facts"),
        Err(e) => panic!("the DER walk read a leaf that x509-parser refuses: {e}"),
    }
}

/// The facts of a leaf parsed by x509-parser; an extension it cannot read
/// is a [`X509SvidError::MalformedCertificate`] in its field.
pub(crate) fn leaf_facts<'a>(cert: &X509Certificate<'a>) -> LeafFacts<'a> {
    let malformed = |e: x509_parser::error::X509Error| X509SvidError::MalformedCertificate {
        index: 0,
        reason: e.to_string(),
    };
    let san = cert
        .subject_alternative_name()
        .map_err(malformed)
        .map(|san| {
            san.map(|ext| {
                let mut uris = ext
                    .value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::URI(uri) => Some(*uri),
                        _ => None,
                    });
                let first_uri = uris.next();
                SanFacts {
                    critical: ext.critical,
                    first_uri,
                    uri_count: usize::from(first_uri.is_some()) + uris.count(),
                }
            })
        });
    // A missing basicConstraints extension means "not a CA" (go-spiffe and
    // RFC 5280 agree).
    let ca = cert
        .basic_constraints()
        .map_err(malformed)
        .map(|bc| bc.is_some_and(|bc| bc.value.ca));
    let key_usage = cert.key_usage().map_err(malformed).map(|ku| {
        ku.map(|ku| KeyUsageFacts {
            digital_signature: ku.value.digital_signature(),
            key_cert_sign: ku.value.key_cert_sign(),
            crl_sign: ku.value.crl_sign(),
        })
    });
    let eku = cert.extended_key_usage().map_err(malformed).map(|eku| {
        eku.map(|eku| EkuFacts {
            server_auth: eku.value.server_auth,
            client_auth: eku.value.client_auth,
        })
    });
    LeafFacts {
        san,
        subject_empty: cert.subject().iter().next().is_none(),
        ca,
        key_usage,
        eku,
        not_after: not_after_secs(cert),
    }
}

/// Checks the leaf rules in go-spiffe's order (URI SAN, ID, path, CA flag,
/// key usage), then the ones go-spiffe leaves out (critical SAN with an empty
/// subject, `digitalSignature`, EKU). Returns the leaf's SPIFFE ID.
pub(crate) fn check_leaf(cert: &X509Certificate<'_>) -> Result<SpiffeId, X509SvidError> {
    check_leaf_facts(leaf_facts(cert))
}

/// The rules of [`check_leaf`], on facts from either reader. An error in a
/// field is reported when the rules reach that field.
pub(crate) fn check_leaf_facts(facts: LeafFacts<'_>) -> Result<SpiffeId, X509SvidError> {
    let san = facts.san?;
    let (uri, count) = match san {
        Some(SanFacts {
            first_uri: Some(uri),
            uri_count,
            ..
        }) => (uri, uri_count),
        _ => return Err(X509SvidError::NoUriSan),
    };
    if count > 1 {
        return Err(X509SvidError::MultipleUriSans { count });
    }
    let id = SpiffeId::parse(uri).map_err(|source| X509SvidError::InvalidSpiffeId {
        uri: uri.to_owned(),
        source,
    })?;
    if id.is_trust_domain_id() {
        return Err(X509SvidError::LeafIdWithoutPath {
            id: id.as_str().to_owned(),
        });
    }
    if facts.subject_empty && san.is_some_and(|ext| !ext.critical) {
        return Err(X509SvidError::NonCriticalSanWithEmptySubject);
    }

    if facts.ca? {
        return Err(X509SvidError::LeafIsCa);
    }

    let key_usage = facts.key_usage?.ok_or(X509SvidError::LeafWithoutKeyUsage)?;
    if key_usage.key_cert_sign {
        return Err(X509SvidError::LeafWithKeyCertSign);
    }
    if key_usage.crl_sign {
        return Err(X509SvidError::LeafWithCrlSign);
    }
    if !key_usage.digital_signature {
        return Err(X509SvidError::LeafWithoutDigitalSignature);
    }

    if let Some(EkuFacts {
        server_auth,
        client_auth,
    }) = facts.eku?
    {
        if !(server_auth && client_auth) {
            return Err(X509SvidError::LeafExtendedKeyUsage {
                server_auth,
                client_auth,
            });
        }
    }
    Ok(id)
}

/// Checks a certificate that signs others (an intermediate): `cA=true` and,
/// when `require_key_usage` is set, a key-usage extension with `keyCertSign`;
/// otherwise `keyCertSign` only when a key-usage extension is present
/// (RFC 5280 §6.1.4(n)).
pub(crate) fn check_signing_cert(
    cert: &X509Certificate<'_>,
    index: usize,
    require_key_usage: bool,
) -> Result<(), X509SvidError> {
    let malformed = |e: x509_parser::error::X509Error| X509SvidError::MalformedCertificate {
        index,
        reason: e.to_string(),
    };
    if !cert
        .basic_constraints()
        .map_err(malformed)?
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(X509SvidError::SigningCertNotCa { index });
    }
    match cert.key_usage().map_err(malformed)? {
        Some(ku) if ku.value.key_cert_sign() => Ok(()),
        None if !require_key_usage => Ok(()),
        _ => Err(X509SvidError::SigningCertWithoutKeyCertSign { index }),
    }
}

/// Whether the certificate has a name-constraints extension with a URI
/// subtree (permitted or excluded). Unparseable certificates count as not.
pub(crate) fn has_uri_name_constraints(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    cert.extensions()
        .iter()
        .any(|ext| match ext.parsed_extension() {
            ParsedExtension::NameConstraints(nc) => [&nc.permitted_subtrees, &nc.excluded_subtrees]
                .into_iter()
                .flatten()
                .flatten()
                .any(|subtree| matches!(subtree.base, GeneralName::URI(_))),
            _ => false,
        })
}

/// The certificate's `notAfter`, in seconds since the Unix epoch (0 for
/// dates before it).
pub(crate) fn not_after_secs(cert: &X509Certificate<'_>) -> u64 {
    u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0)
}

// The development CA's leaf template is the starting point.
#[cfg(all(test, feature = "issuer"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::net::{IpAddr, Ipv4Addr};

    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, OtherNameValue, SanType,
    };

    use super::*;

    /// What verification did before the DER walk: x509-parser, then the
    /// rules.
    fn parser_route(der: &[u8]) -> Result<(SpiffeId, u64), X509SvidError> {
        let cert = parse_cert(der, 0)?;
        Ok((check_leaf(&cert)?, not_after_secs(&cert)))
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }

    /// A self-signed leaf of the development CA's shape, changed by
    /// `change`.
    fn leaf(key: &KeyPair, change: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
        let mut params = crate::issuer::leaf_template();
        params.subject_alt_names = vec![uri("spiffe://example.org/workload")];
        change(&mut params);
        params.self_signed(key).unwrap().der().to_vec()
    }

    fn custom(oid: &[u64], content: &[u8], critical: bool) -> CustomExtension {
        let mut ext = CustomExtension::from_oid_content(oid, content.to_vec());
        ext.set_criticality(critical);
        ext
    }

    type Change = Box<dyn Fn(&mut CertificateParams)>;

    /// Replaces the extension id-ce-`id` that rcgen writes (17: SAN, 15: key
    /// usage, 37: EKU, 19: basicConstraints) with one holding `content`.
    fn replacing(id: u64, content: &'static [u8], critical: bool) -> Change {
        Box::new(move |p| {
            match id {
                17 => p.subject_alt_names.clear(),
                15 => p.key_usages.clear(),
                37 => p.extended_key_usages.clear(),
                19 => p.is_ca = IsCa::NoCa,
                _ => panic!("no generated extension id-ce-{id}"),
            }
            p.custom_extensions
                .push(custom(&[2, 5, 29, id], content, critical));
        })
    }

    /// Leaves the DER walk reads itself, each judged by the rules.
    fn walked_leaves() -> Vec<(&'static str, Change)> {
        vec![
            ("plain", Box::new(|_| {})),
            (
                "DNS, IP and e-mail SANs",
                Box::new(|p| {
                    p.subject_alt_names.push(dns("web.example.org"));
                    p.subject_alt_names
                        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                    p.subject_alt_names
                        .push(SanType::Rfc822Name("a@example.org".try_into().unwrap()));
                }),
            ),
            (
                "empty subject, critical SAN",
                Box::new(|p| p.distinguished_name = DistinguishedName::new()),
            ),
            (
                "empty subject, non-critical SAN",
                Box::new(|p| {
                    p.distinguished_name = DistinguishedName::new();
                    p.subject_alt_names.clear();
                    let name = [&[0x86, 29][..], b"spiffe://example.org/workload"].concat();
                    let san = [&[0x30, 31][..], &name].concat();
                    p.custom_extensions
                        .push(custom(&[2, 5, 29, 17], &san, false));
                }),
            ),
            (
                "every string type in the subject",
                Box::new(|p| {
                    let dn = &mut p.distinguished_name;
                    dn.push(DnType::CommonName, DnValue::Utf8String("w".into()));
                    dn.push(
                        DnType::CountryName,
                        DnValue::PrintableString("US".try_into().unwrap()),
                    );
                    dn.push(
                        DnType::LocalityName,
                        DnValue::Ia5String("x".try_into().unwrap()),
                    );
                    dn.push(
                        DnType::OrganizationalUnitName,
                        DnValue::TeletexString("t".try_into().unwrap()),
                    );
                    dn.push(
                        DnType::StateOrProvinceName,
                        DnValue::BmpString("b".try_into().unwrap()),
                    );
                    dn.push(
                        DnType::CustomDnType(vec![2, 5, 4, 9]),
                        DnValue::UniversalString("u".try_into().unwrap()),
                    );
                }),
            ),
            (
                "no URI SAN",
                Box::new(|p| p.subject_alt_names = vec![dns("a.test")]),
            ),
            (
                "two URI SANs",
                Box::new(|p| p.subject_alt_names.push(uri("https://example.org/"))),
            ),
            (
                "not a SPIFFE ID",
                Box::new(|p| p.subject_alt_names = vec![uri("SPIFFE://example.org/w")]),
            ),
            (
                "trust-domain ID",
                Box::new(|p| p.subject_alt_names = vec![uri("spiffe://example.org")]),
            ),
            ("no basicConstraints", Box::new(|p| p.is_ca = IsCa::NoCa)),
            (
                "cA true",
                Box::new(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)),
            ),
            ("no key usage", Box::new(|p| p.key_usages.clear())),
            (
                "keyCertSign",
                Box::new(|p| p.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            ),
            (
                "cRLSign",
                Box::new(|p| p.key_usages.push(KeyUsagePurpose::CrlSign)),
            ),
            (
                "no digitalSignature",
                Box::new(|p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]),
            ),
            (
                "two key-usage octets",
                Box::new(|p| p.key_usages.push(KeyUsagePurpose::DecipherOnly)),
            ),
            (
                "non-critical key usage",
                replacing(15, &[3, 2, 7, 0x80], false),
            ),
            ("no EKU", Box::new(|p| p.extended_key_usages.clear())),
            (
                "serverAuth only",
                Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]),
            ),
            (
                "clientAuth only",
                Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]),
            ),
            (
                "anyExtendedKeyUsage",
                Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any]),
            ),
            (
                "an unknown critical extension",
                Box::new(|p| {
                    p.custom_extensions
                        .push(custom(&[1, 3, 6, 1, 4, 1, 99999, 1], &[5, 0], true));
                }),
            ),
        ]
    }

    /// Leaves the DER walk leaves to x509-parser.
    fn parsed_leaves() -> Vec<(&'static str, Change)> {
        vec![
            (
                "pathLenConstraint",
                Box::new(|p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))),
            ),
            (
                "an otherName SAN",
                Box::new(|p| {
                    p.subject_alt_names.push(SanType::OtherName((
                        vec![1, 3, 6, 1, 4, 1, 99999, 2],
                        OtherNameValue::Utf8String("x".into()),
                    )));
                }),
            ),
            (
                "two SAN extensions",
                Box::new(|p| {
                    let name = [&[0x86, 10][..], b"spiffe://x"].concat();
                    let san = [&[0x30, 12][..], &name].concat();
                    p.custom_extensions
                        .push(custom(&[2, 5, 29, 17], &san, true));
                }),
            ),
            (
                "a URI that is not UTF-8",
                replacing(17, &[0x30, 4, 0x86, 2, 0xff, 0xfe], true),
            ),
            ("an empty SAN", replacing(17, &[0x30, 0], true)),
            (
                "key usage with non-zero unused bits",
                replacing(15, &[3, 2, 7, 0x81], true),
            ),
            (
                "key usage that is not a BIT STRING",
                replacing(15, &[4, 1, 0x80], true),
            ),
            ("an empty EKU", replacing(37, &[0x30, 0], false)),
            (
                "malformed basicConstraints",
                replacing(19, &[0x30, 3, 1, 1, 5], true),
            ),
        ]
    }

    #[test]
    fn der_walk_and_x509_parser_judge_every_leaf_alike() {
        let key = KeyPair::generate().unwrap();
        let mut verdicts = Vec::new();
        for (name, change) in walked_leaves() {
            let der = leaf(&key, change);
            assert!(crate::der::leaf_facts(&der).is_some(), "{name}: walked");
            // check_leaf_der cross-checks the facts in test builds.
            let got = check_leaf_der(&der);
            assert_eq!(got, parser_route(&der), "{name}");
            verdicts.push(got.map(|(id, _)| id.to_string()));
        }
        for (name, change) in parsed_leaves() {
            let der = leaf(&key, change);
            assert!(crate::der::leaf_facts(&der).is_none(), "{name}: not walked");
            assert_eq!(check_leaf_der(&der), parser_route(&der), "{name}");
        }
        // The rules really ran: the plain leaf passes, the defects fail with
        // their own errors.
        assert_eq!(
            verdicts.first(),
            Some(&Ok("spiffe://example.org/workload".to_owned()))
        );
        assert!(verdicts.contains(&Err(X509SvidError::NonCriticalSanWithEmptySubject)));
        assert!(verdicts.contains(&Err(X509SvidError::MultipleUriSans { count: 2 })));
        assert!(verdicts.contains(&Err(X509SvidError::LeafWithCrlSign)));
        assert!(verdicts.contains(&Err(X509SvidError::LeafExtendedKeyUsage {
            server_auth: false,
            client_auth: true
        })));
    }

    /// Every one-byte change and every truncation of two leaves: wherever the
    /// DER walk answers, x509-parser parses the certificate and reads the
    /// same facts (asserted inside `check_leaf_der`), and the verdict is the
    /// one x509-parser's route gives.
    #[test]
    fn der_walk_agrees_with_x509_parser_on_mutated_leaves() {
        let key = KeyPair::generate().unwrap();
        let leaves = [
            leaf(&key, |_| {}),
            leaf(&key, |p| {
                p.distinguished_name = DistinguishedName::new();
                p.subject_alt_names.push(dns("web.example.org"));
                p.is_ca = IsCa::NoCa;
                p.key_usages.push(KeyUsagePurpose::KeyAgreement);
            }),
        ];
        let (mut walked, mut total) = (0, 0);
        for der in &leaves {
            let mut mutants: Vec<Vec<u8>> = (0..der.len()).map(|n| der[..n].to_vec()).collect();
            for i in 0..der.len() {
                let b = der[i];
                for v in [0x00, 0x01, 0x7f, 0x80, 0x81, 0xff, b ^ 0x01, b ^ 0x80] {
                    if v != b {
                        let mut m = der.clone();
                        m[i] = v;
                        mutants.push(m);
                    }
                }
            }
            for m in &mutants {
                total += 1;
                walked += usize::from(crate::der::leaf_facts(m).is_some());
                assert_eq!(check_leaf_der(m), parser_route(m), "{m:02x?}");
            }
        }
        // Most changes of contents octets keep the certificate readable.
        assert!(walked > total / 4, "walked {walked} of {total}");
    }
}
