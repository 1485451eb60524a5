//! Reading what the commands are given: files (or standard input),
//! certificate chains with an optional key, and tokens.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::error::CliError;

/// The largest file a command reads: far above any real chain, bundle or
/// token, and small enough that a wrong path (a disk image, a log) fails
/// fast instead of filling memory.
pub(crate) const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads `path`, or standard input when it is `-`.
///
/// # Errors
///
/// [`CliError::Read`], or [`CliError::TooLarge`] past [`MAX_INPUT_BYTES`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let mut data = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut data)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut data))
    };
    read.map_err(CliError::read(path))?;
    if data.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::TooLarge {
            path: path.to_owned(),
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(data)
}

/// A token given on the command line: `-` reads standard input, an existing
/// file is read, anything else is the token itself. Surrounding whitespace
/// (a trailing newline in a file) is removed.
///
/// # Errors
///
/// As [`read_file`].
pub(crate) fn read_token(arg: &str) -> Result<String, CliError> {
    let path = Path::new(arg);
    if arg == "-" || path.is_file() {
        let data = read_file(path)?;
        let text = String::from_utf8(data).map_err(|_| CliError::Token {
            reason: format!("{arg} is not UTF-8 text"),
        })?;
        return Ok(text.trim().to_owned());
    }
    Ok(arg.trim().to_owned())
}

/// The format a file was read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertificateEncoding {
    Pem,
    Der,
}

/// A private key found next to a chain.
#[derive(Debug)]
pub(crate) struct FoundKey {
    pub(crate) key: PrivateKeyDer<'static>,
    /// `PKCS#8`, `SEC1` or `PKCS#1`.
    pub(crate) format: &'static str,
}

/// Certificates in file order, and the private key if the file has one.
#[derive(Debug)]
pub(crate) struct ChainFile {
    pub(crate) certificates: Vec<CertificateDer<'static>>,
    pub(crate) key: Option<FoundKey>,
    pub(crate) encoding: CertificateEncoding,
}

/// Reads a certificate chain: PEM `CERTIFICATE` sections (leaf first), with
/// at most one private key section (`PRIVATE KEY`, `EC PRIVATE KEY` or
/// `RSA PRIVATE KEY`) anywhere; or concatenated DER certificates when the
/// file holds no PEM at all. Other PEM sections are skipped.
///
/// # Errors
///
/// [`CliError::Certificates`] for malformed PEM, more than one key, DER
/// that does not split into certificates, or no certificate at all.
pub(crate) fn read_chain(path: &Path) -> Result<ChainFile, CliError> {
    let data = read_file(path)?;
    let bad = |reason: String| CliError::Certificates {
        path: PathBuf::from(path),
        reason,
    };
    // ASCII '0' is 0x30 too, so DER is only assumed when no PEM is there.
    if data.first() == Some(&0x30) && !contains(&data, b"-----BEGIN ") {
        let certificates = split_der(&data).map_err(bad)?;
        return Ok(ChainFile {
            certificates,
            key: None,
            encoding: CertificateEncoding::Der,
        });
    }
    let mut certificates = Vec::new();
    let mut key = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(&data) {
        let (kind, der) = item.map_err(|e| bad(format!("malformed PEM: {e}")))?;
        let found = match kind {
            SectionKind::Certificate => {
                certificates.push(CertificateDer::from(der));
                continue;
            }
            SectionKind::PrivateKey => FoundKey {
                key: PrivatePkcs8KeyDer::from(der).into(),
                format: "PKCS#8",
            },
            SectionKind::EcPrivateKey => FoundKey {
                key: PrivateSec1KeyDer::from(der).into(),
                format: "SEC1",
            },
            SectionKind::RsaPrivateKey => FoundKey {
                key: PrivatePkcs1KeyDer::from(der).into(),
                format: "PKCS#1",
            },
            _ => continue,
        };
        if key.replace(found).is_some() {
            return Err(bad("more than one private key".to_owned()));
        }
    }
    if certificates.is_empty() {
        return Err(bad(
            "no certificate found (expected PEM CERTIFICATE sections or DER)".to_owned(),
        ));
    }
    Ok(ChainFile {
        certificates,
        key,
        encoding: CertificateEncoding::Pem,
    })
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Splits concatenated DER certificates by parsing each in turn.
fn split_der(mut data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (rest, _) = x509_parser::parse_x509_certificate(data)
            .map_err(|e| format!("DER certificate {} does not parse: {e}", out.len()))?;
        let len = data.len() - rest.len();
        out.push(CertificateDer::from(
            data.get(..len).unwrap_or_default().to_vec(),
        ));
        data = rest;
    }
    Ok(out)
}
