//! PEM encoding of the DER the online commands write and print.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;

/// One PEM section: `-----BEGIN <label>-----`, base64 in 64-character
/// lines, `-----END <label>-----`, with `\n` line ends.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Certificates as consecutive `CERTIFICATE` sections.
pub(crate) fn certificates(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| encode("CERTIFICATE", c.as_ref()))
        .collect()
}
