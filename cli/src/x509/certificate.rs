//! What `x509 inspect` shows of each certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use spiffe_id::SpiffeId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::oid_registry;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED448, OID_SIG_ED25519,
};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::rfc3339::Timestamp;

/// The details of one certificate (`certificates[i]` in the JSON report).
#[derive(Debug, Serialize)]
pub(crate) struct CertificateDetails {
    pub(crate) index: usize,
    /// `leaf`, `intermediate` or `root` (self-issued, after the leaf).
    pub(crate) role: &'static str,
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// Hex bytes, colon-separated.
    pub(crate) serial: String,
    pub(crate) not_before: Timestamp,
    pub(crate) not_after: Timestamp,
    /// `valid`, `expired` or `not_yet_valid` at the report's `checked_at`.
    pub(crate) validity_status: &'static str,
    /// `ECDSA P-256`, `RSA 2048`, `Ed25519`, ...
    pub(crate) key_algorithm: String,
    pub(crate) signature_algorithm: String,
    pub(crate) ca: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path_len_constraint: Option<u32>,
    /// Key-usage bits by RFC 5280 name; empty when there is no extension.
    pub(crate) key_usage: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_usage_critical: Option<bool>,
    /// EKU purposes by name (`serverAuth`, ...) or dotted OID.
    pub(crate) extended_key_usage: Vec<String>,
    pub(crate) uri_sans: Vec<String>,
    pub(crate) dns_sans: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) ip_sans: Vec<String>,
    /// The URI SAN, when there is exactly one and it is a SPIFFE ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) spiffe_id: Option<String>,
    /// Extensions that could not be read (duplicated or malformed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) problems: Vec<String>,
}

/// Reads the details of `cert`, the `index`-th of its chain, for the time
/// `at` (Unix seconds).
pub(crate) fn describe(cert: &X509Certificate<'_>, index: usize, at: i64) -> CertificateDetails {
    let mut problems = Vec::new();
    let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
    let role = match (index, self_issued) {
        (0, _) => "leaf",
        (_, true) => "root",
        (_, false) => "intermediate",
    };
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let validity_status = if at < not_before {
        "not_yet_valid"
    } else if at > not_after {
        "expired"
    } else {
        "valid"
    };

    let (ca, path_len_constraint) = match cert.basic_constraints() {
        Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
        Ok(None) => (false, None),
        Err(e) => {
            problems.push(format!("basicConstraints: {e}"));
            (false, None)
        }
    };
    let (key_usage, key_usage_critical) = match cert.key_usage() {
        Ok(Some(ku)) => (key_usage_names(ku.value), Some(ku.critical)),
        Ok(None) => (Vec::new(), None),
        Err(e) => {
            problems.push(format!("keyUsage: {e}"));
            (Vec::new(), None)
        }
    };
    let extended_key_usage = match cert.extended_key_usage() {
        Ok(Some(eku)) => eku_names(eku.value),
        Ok(None) => Vec::new(),
        Err(e) => {
            problems.push(format!("extendedKeyUsage: {e}"));
            Vec::new()
        }
    };
    let (mut uri_sans, mut dns_sans, mut ip_sans) = (Vec::new(), Vec::new(), Vec::new());
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uri_sans.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => dns_sans.push((*dns).to_owned()),
                    GeneralName::IPAddress(ip) => ip_sans.push(ip_text(ip)),
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(format!("subjectAltName: {e}")),
    }
    let spiffe_id = match uri_sans.as_slice() {
        [one] => SpiffeId::parse(one).ok().map(|id| id.to_string()),
        _ => None,
    };

    CertificateDetails {
        index,
        role,
        subject: name_text(&cert.subject().to_string()),
        issuer: name_text(&cert.issuer().to_string()),
        serial: hex_colons(cert.raw_serial()),
        not_before: Timestamp(not_before),
        not_after: Timestamp(not_after),
        validity_status,
        key_algorithm: key_algorithm(cert.public_key()),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        ca,
        path_len_constraint,
        key_usage,
        key_usage_critical,
        extended_key_usage,
        uri_sans,
        dns_sans,
        ip_sans,
        spiffe_id,
        problems,
    }
}

/// An empty distinguished name prints as nothing; say so.
fn name_text(name: &str) -> String {
    if name.is_empty() {
        "(empty)".to_owned()
    } else {
        name.to_owned()
    }
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(bytes);
            IpAddr::V4(Ipv4Addr::from(a)).to_string()
        }
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(a)).to_string()
        }
        _ => format!("(malformed: {})", hex_colons(bytes)),
    }
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    oid_registry()
        .get(oid)
        .map_or_else(|| oid.to_id_string(), |entry| entry.sn().to_owned())
}

fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => "ECDSA P-256".to_owned(),
            Some(c) if c == OID_NIST_EC_P384 => "ECDSA P-384".to_owned(),
            Some(c) if c == OID_NIST_EC_P521 => "ECDSA P-521".to_owned(),
            Some(c) => format!("EC ({})", oid_name(&c)),
            None => "EC (no named curve)".to_owned(),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(key) => format!("RSA {}", key.key_size()),
            Err(_) => "RSA (malformed key)".to_owned(),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return "Ed25519".to_owned();
    }
    if *alg == OID_SIG_ED448 {
        return "Ed448".to_owned();
    }
    oid_name(alg)
}

fn key_usage_names(ku: &x509_parser::extensions::KeyUsage) -> Vec<&'static str> {
    [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn eku_names(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut names: Vec<String> = [
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
        (eku.any, "anyExtendedKeyUsage"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect();
    names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    names
}
