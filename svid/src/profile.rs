//! The SPIFFE X509-SVID certificate profile, checked on parsed certificates.
//!
//! These are the rules that RFC 5280 path validation does not cover (or that
//! rustls-webpki does not apply): exactly one URI SAN that is a SPIFFE ID with
//! a path, `cA=false`, and the leaf's key usage and extended key usage.

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

/// Checks the leaf rules in go-spiffe's order (URI SAN, ID, path, CA flag,
/// key usage), then the ones go-spiffe leaves out (critical SAN with an empty
/// subject, `digitalSignature`, EKU). Returns the leaf's SPIFFE ID.
pub(crate) fn check_leaf(cert: &X509Certificate<'_>) -> Result<SpiffeId, X509SvidError> {
    let malformed = |e: x509_parser::error::X509Error| X509SvidError::MalformedCertificate {
        index: 0,
        reason: e.to_string(),
    };

    let san = cert.subject_alternative_name().map_err(malformed)?;
    let mut uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let uri = uris.next().ok_or(X509SvidError::NoUriSan)?;
    let others = uris.count();
    if others > 0 {
        return Err(X509SvidError::MultipleUriSans { count: others + 1 });
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
    if cert.subject().iter().next().is_none() && san.is_some_and(|ext| !ext.critical) {
        return Err(X509SvidError::NonCriticalSanWithEmptySubject);
    }

    // A missing basicConstraints extension means "not a CA" (go-spiffe and
    // RFC 5280 agree), so only an explicit cA=true is rejected.
    if cert
        .basic_constraints()
        .map_err(malformed)?
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(X509SvidError::LeafIsCa);
    }

    let key_usage = cert
        .key_usage()
        .map_err(malformed)?
        .ok_or(X509SvidError::LeafWithoutKeyUsage)?;
    if key_usage.value.key_cert_sign() {
        return Err(X509SvidError::LeafWithKeyCertSign);
    }
    if key_usage.value.crl_sign() {
        return Err(X509SvidError::LeafWithCrlSign);
    }
    if !key_usage.value.digital_signature() {
        return Err(X509SvidError::LeafWithoutDigitalSignature);
    }

    if let Some(eku) = cert.extended_key_usage().map_err(malformed)? {
        let (server_auth, client_auth) = (eku.value.server_auth, eku.value.client_auth);
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
