//! X509-SVID verification: the SPIFFE profile on top of RFC 5280 path
//! validation by rustls-webpki.

use std::cell::Cell;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use spiffe_bundle::X509BundleSource;
use spiffe_id::SpiffeId;
use webpki::{ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::profile::{check_leaf_der, has_uri_name_constraints, not_after_secs};
use crate::{X509SvidError, default_crypto_provider};

/// An X509-SVID whose chain was verified against its trust domain's bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedX509Svid {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    expires_at: UnixTime,
    bundle_generation: u64,
}

impl VerifiedX509Svid {
    /// The leaf's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The verified path, leaf first: the leaf, the intermediates that the
    /// path validator used (in issuing order, which need not be the order
    /// they were presented in; unused presented certificates are left out),
    /// and last the bundle's CA certificate that anchors the path.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The earliest `notAfter` of the leaf and the intermediates of the
    /// verified path. The trust anchor's own validity is neither checked nor
    /// counted (rustls-webpki reduces an anchor to its name and key).
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The [`generation`](spiffe_bundle::X509Bundle::generation) of the
    /// bundle the chain was verified against, so a cache can tell when a
    /// verdict was reached with a bundle that has since been replaced.
    pub fn bundle_generation(&self) -> u64 {
        self.bundle_generation
    }
}

/// Verifies an X509-SVID chain at time `at`, with the crate's
/// [default crypto provider](crate::default_crypto_provider).
///
/// `chain[0]` is the leaf; `chain[1..]` are candidate intermediates, in any
/// order (unrelated extra certificates and the root itself are tolerated).
/// The bundle is the one `bundles` holds for the trust domain of the leaf's
/// SPIFFE ID, and only that one.
///
/// # Errors
///
/// In the order checked:
/// - [`X509SvidError::NoCryptoProvider`] if no provider is available;
/// - [`X509SvidError::EmptyChain`], [`X509SvidError::MalformedCertificate`];
/// - the leaf profile: [`NoUriSan`](X509SvidError::NoUriSan),
///   [`MultipleUriSans`](X509SvidError::MultipleUriSans),
///   [`InvalidSpiffeId`](X509SvidError::InvalidSpiffeId),
///   [`LeafIdWithoutPath`](X509SvidError::LeafIdWithoutPath),
///   [`NonCriticalSanWithEmptySubject`](X509SvidError::NonCriticalSanWithEmptySubject),
///   [`LeafIsCa`](X509SvidError::LeafIsCa),
///   [`LeafWithoutKeyUsage`](X509SvidError::LeafWithoutKeyUsage),
///   [`LeafWithKeyCertSign`](X509SvidError::LeafWithKeyCertSign),
///   [`LeafWithCrlSign`](X509SvidError::LeafWithCrlSign),
///   [`LeafWithoutDigitalSignature`](X509SvidError::LeafWithoutDigitalSignature),
///   [`LeafExtendedKeyUsage`](X509SvidError::LeafExtendedKeyUsage);
/// - [`X509SvidError::NoBundle`] if the source has no bundle for the leaf's
///   trust domain;
/// - path validation: [`Expired`](X509SvidError::Expired),
///   [`NotYetValid`](X509SvidError::NotYetValid),
///   [`UnknownIssuer`](X509SvidError::UnknownIssuer) (also for an empty
///   bundle), [`BadSignature`](X509SvidError::BadSignature),
///   [`IssuerNotCa`](X509SvidError::IssuerNotCa),
///   [`IssuerWithoutKeyCertSign`](X509SvidError::IssuerWithoutKeyCertSign),
///   [`PathLenConstraintViolated`](X509SvidError::PathLenConstraintViolated),
///   [`NameConstraintViolation`](X509SvidError::NameConstraintViolation),
///   [`UriNameConstraintsUnsupported`](X509SvidError::UriNameConstraintsUnsupported),
///   [`UnsupportedCriticalExtension`](X509SvidError::UnsupportedCriticalExtension),
///   [`UnsupportedSignatureAlgorithm`](X509SvidError::UnsupportedSignatureAlgorithm),
///   [`ExtendedKeyUsageNotAllowed`](X509SvidError::ExtendedKeyUsageNotAllowed),
///   and the other path-validation variants.
///
/// # Example
///
/// ```
/// use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
/// use spiffe_bundle::X509Bundle;
/// use spiffe_id::TrustDomain;
/// use spiffe_svid::{X509SvidError, verify_x509_svid};
///
/// let bundle = X509Bundle::empty(TrustDomain::new("example.org")?);
/// let chain: Vec<CertificateDer<'_>> = Vec::new();
/// let err = verify_x509_svid(&chain, &bundle, UnixTime::now()).unwrap_err();
/// assert_eq!(err, X509SvidError::EmptyChain);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_x509_svid<S>(
    chain: &[CertificateDer<'_>],
    bundles: &S,
    at: UnixTime,
) -> Result<VerifiedX509Svid, X509SvidError>
where
    S: X509BundleSource + ?Sized,
{
    let provider = default_crypto_provider().ok_or(X509SvidError::NoCryptoProvider)?;
    verify_x509_svid_with_provider(chain, bundles, at, &provider)
}

/// [`verify_x509_svid`] with the signature-verification algorithms of the
/// given rustls crypto provider
/// (`provider.signature_verification_algorithms.all`).
///
/// # Errors
///
/// As [`verify_x509_svid`], except [`X509SvidError::NoCryptoProvider`].
pub fn verify_x509_svid_with_provider<S>(
    chain: &[CertificateDer<'_>],
    bundles: &S,
    at: UnixTime,
    provider: &CryptoProvider,
) -> Result<VerifiedX509Svid, X509SvidError>
where
    S: X509BundleSource + ?Sized,
{
    let leaf = chain.first().ok_or(X509SvidError::EmptyChain)?;
    let (spiffe_id, leaf_not_after) = check_leaf_der(leaf)?;

    let trust_domain = spiffe_id.trust_domain();
    let bundle = bundles
        .x509_bundle_for(&trust_domain)
        .ok_or(X509SvidError::NoBundle { trust_domain })?;
    let anchors = bundle.trust_anchors();
    let intermediates = chain.get(1..).unwrap_or_default();

    let path = verify_chain(leaf, intermediates, anchors, at, &ChainEku::Svid, provider)?;

    let expires_at = leaf_not_after.min(path.intermediates_not_after);
    // verify_chain left room for the leaf and the anchor: no reallocation.
    let mut verified = path.intermediates;
    verified.insert(0, leaf.clone().into_owned());
    if let Some(authority) = path.anchor.and_then(|i| bundle.authorities().get(i)) {
        verified.push(authority.der().clone());
    }

    Ok(VerifiedX509Svid {
        spiffe_id,
        chain: verified,
        expires_at: UnixTime::since_unix_epoch(std::time::Duration::from_secs(expires_at)),
        bundle_generation: bundle.generation(),
    })
}

/// The extended-key-usage requirement of the chain layer, applied by
/// rustls-webpki to the leaf and to every intermediate of a candidate path
/// (never to the trust anchor). A certificate without an EKU extension
/// passes every choice; an empty EKU extension fails every choice.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChainEku<'a> {
    /// The SVID policy ([`SvidEku`]): both TLS roles, or
    /// `anyExtendedKeyUsage`. The leaf's stricter rule (X-18) is the SVID
    /// layer's.
    Svid,
    /// `id-kp-serverAuth` must be listed (rustls-webpki's own policy for
    /// server certificates; `anyExtendedKeyUsage` does not stand in for it).
    // This and the next two: only the conformance tests ask for them.
    #[cfg_attr(not(test), allow(dead_code))]
    ServerAuth,
    /// `id-kp-clientAuth` must be listed (as [`ChainEku::ServerAuth`]).
    #[cfg_attr(not(test), allow(dead_code))]
    ClientAuth,
    /// Every one of these key purposes (DER OID contents) must be listed.
    #[cfg_attr(not(test), allow(dead_code))]
    AllOf(&'a [&'a [u8]]),
}

impl ExtendedKeyUsageValidator for ChainEku<'_> {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match *self {
            Self::Svid => SvidEku.validate(iter),
            Self::ServerAuth => webpki::KeyUsage::server_auth().validate(iter),
            Self::ClientAuth => webpki::KeyUsage::client_auth().validate(iter),
            Self::AllOf(required) => {
                let mut seen = vec![false; required.len()];
                let mut present = false;
                for id in iter {
                    let id = id?;
                    present = true;
                    for (wanted, seen) in required.iter().zip(seen.iter_mut()) {
                        *seen |= id == KeyPurposeId::new(wanted);
                    }
                }
                if !present || seen.iter().all(|s| *s) {
                    Ok(())
                } else {
                    #[allow(deprecated)]
                    Err(webpki::Error::RequiredEkuNotFound)
                }
            }
        }
    }
}

/// A path found by [`verify_chain`].
#[derive(Clone, Debug)]
pub(crate) struct ChainPath {
    /// The intermediates of the path in issuing order (the leaf's issuer
    /// first); unused candidates are left out. The capacity has room for
    /// two more (the leaf and the anchor).
    pub(crate) intermediates: Vec<CertificateDer<'static>>,
    /// The index, in the `anchors` passed in, of the trust anchor that ends
    /// the path (always found: webpki returns one of the anchors it was
    /// given).
    pub(crate) anchor: Option<usize>,
    /// The earliest `notAfter` of the intermediates, in seconds since the
    /// Unix epoch (`u64::MAX` when there are none).
    pub(crate) intermediates_not_after: u64,
}

/// The chain-validation layer, without any SPIFFE leaf rule: RFC 5280 path
/// validation by rustls-webpki from `leaf` through candidates taken from
/// `intermediates` (any order, unrelated ones tolerated) to one of
/// `anchors`, at time `at`, with the EKU requirement `eku` and the
/// signature algorithms of `provider`. On each candidate path it also
/// requires `keyCertSign` on every intermediate that has a key-usage
/// extension (RFC 5280 §6.1.4(n)), which webpki does not check, so that
/// webpki goes on to look for another path when one fails that rule.
///
/// No peer name is checked, and the trust anchors are what webpki reduces
/// them to (subject, key, name constraints).
///
/// # Errors
///
/// The path-validation variants of [`X509SvidError`], as documented on
/// [`verify_x509_svid`]; [`X509SvidError::UriNameConstraintsUnsupported`]
/// stands for a name-constraint violation when a presented intermediate or
/// an anchor carries a URI subtree.
pub(crate) fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &[TrustAnchor<'_>],
    at: UnixTime,
    eku: &ChainEku<'_>,
    provider: &CryptoProvider,
) -> Result<ChainPath, X509SvidError> {
    // Only after a webpki failure: does a CA that could be on the path carry
    // URI name constraints?
    let uri_constraints = || {
        intermediates.iter().any(|c| has_uri_name_constraints(c))
            || anchors.iter().any(anchor_has_uri_name_constraints)
    };

    let end_entity =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| map_webpki_error(e, &uri_constraints))?;

    // rustls-webpki ignores key usage on CAs; RFC 5280 §6.1.4(n) requires
    // keyCertSign on an intermediate whose key usage is present. Checked on
    // each candidate path so that webpki keeps looking for another path.
    // The same parse gives the intermediates' earliest notAfter, kept for
    // the candidate path webpki accepts (the last one checked).
    let issuer_failure: Cell<Option<X509SvidError>> = Cell::new(None);
    let path_not_after = Cell::new(u64::MAX);
    let check_path = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let mut not_after = u64::MAX;
        for cert in path.intermediate_certificates() {
            let der = cert.der();
            // A DER walk of the two fields needed; anything it does not
            // understand goes to the full parser, which judges as before.
            let facts = match crate::der::issuer_facts(&der) {
                Some(facts) => {
                    #[cfg(test)]
                    crate::der::cross_check(&der, facts);
                    facts
                }
                None => {
                    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&der) else {
                        issuer_failure.set(Some(X509SvidError::PathValidation {
                            reason: "intermediate cannot be parsed".to_owned(),
                        }));
                        return Err(webpki::Error::BadDer);
                    };
                    crate::der::IssuerFacts {
                        key_cert_sign: match parsed.key_usage() {
                            Ok(Some(ku)) => Some(ku.value.key_cert_sign()),
                            _ => None,
                        },
                        not_after: not_after_secs(&parsed),
                    }
                }
            };
            if facts.key_cert_sign == Some(false) {
                issuer_failure.set(Some(X509SvidError::IssuerWithoutKeyCertSign));
                return Err(webpki::Error::ExtensionValueInvalid);
            }
            not_after = not_after.min(facts.not_after);
        }
        path_not_after.set(not_after);
        Ok(())
    };

    let path = end_entity
        .verify_for_usage(
            provider.signature_verification_algorithms.all,
            anchors,
            intermediates,
            at,
            eku,
            None,
            Some(&check_path),
        )
        .map_err(|e| match issuer_failure.take() {
            Some(ours) => ours,
            None => map_webpki_error(e, &uri_constraints),
        })?;

    let found = path.anchor();
    // Room for the leaf and the anchor, which verify_x509_svid adds.
    let mut path_intermediates = Vec::with_capacity(path.intermediate_certificates().count() + 2);
    path_intermediates.extend(
        path.intermediate_certificates()
            .map(|cert| cert.der().into_owned()),
    );
    Ok(ChainPath {
        intermediates: path_intermediates,
        anchor: anchors.iter().position(|a| std::ptr::eq(a, found)),
        intermediates_not_after: path_not_after.get(),
    })
}

/// Whether a trust anchor's name constraints (the contents of the
/// NameConstraints SEQUENCE, as webpki keeps them) have a URI subtree.
/// Unparseable constraints count as not.
fn anchor_has_uri_name_constraints(anchor: &TrustAnchor<'_>) -> bool {
    use x509_parser::extensions::{GeneralName, NameConstraints};
    use x509_parser::prelude::FromDer;

    let Some(contents) = anchor.name_constraints.as_deref() else {
        return false;
    };
    // Put the SEQUENCE tag and DER length back in front of the contents.
    let len = contents.len().to_be_bytes();
    let skip = len.iter().take_while(|b| **b == 0).count();
    let len = len.get(skip..).unwrap_or_default();
    let mut der = Vec::with_capacity(contents.len() + 10);
    der.push(0x30);
    match len {
        [] => der.push(0),
        [short] if *short < 0x80 => der.push(*short),
        // At most 8 length octets: 0x80 | 8 fits the first octet.
        long => {
            der.push(0x80 | u8::try_from(long.len()).unwrap_or(0x7f));
            der.extend_from_slice(long);
        }
    }
    der.extend_from_slice(contents);
    let Ok((_, nc)) = NameConstraints::from_der(&der) else {
        return false;
    };
    [&nc.permitted_subtrees, &nc.excluded_subtrees]
        .into_iter()
        .flatten()
        .flatten()
        .any(|subtree| matches!(subtree.base, GeneralName::URI(_)))
}

const SERVER_AUTH: KeyPurposeId<'static> = KeyPurposeId::new(&[0x2b, 6, 1, 5, 5, 7, 3, 1]);
const CLIENT_AUTH: KeyPurposeId<'static> = KeyPurposeId::new(&[0x2b, 6, 1, 5, 5, 7, 3, 2]);
const ANY_EKU: KeyPurposeId<'static> = KeyPurposeId::new(&[0x55, 0x1d, 0x25, 0x00]);

/// The EKU policy webpki applies to every certificate of the path (leaf and
/// intermediates; not the anchor): no EKU extension is fine; otherwise it
/// must allow both TLS roles (serverAuth and clientAuth) or be
/// anyExtendedKeyUsage. An SVID authenticates both clients and servers, so a
/// CA restricted to one role cannot vouch for it. The leaf's stricter rule
/// (both listed explicitly, X-18) is checked before path validation.
struct SvidEku;

impl ExtendedKeyUsageValidator for SvidEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let (mut present, mut server, mut client, mut any) = (false, false, false, false);
        for id in iter {
            let id = id?;
            present = true;
            server |= id == SERVER_AUTH;
            client |= id == CLIENT_AUTH;
            any |= id == ANY_EKU;
        }
        if !present || any || (server && client) {
            Ok(())
        } else {
            // The variant's context type cannot be built outside webpki in a
            // stable way; the variant itself is all that is mapped.
            #[allow(deprecated)]
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

fn map_webpki_error(error: webpki::Error, uri_constraints: &dyn Fn() -> bool) -> X509SvidError {
    use webpki::Error as E;
    #[allow(deprecated)]
    match error {
        E::CertExpired { time, not_after } => X509SvidError::Expired {
            at: time.as_secs(),
            not_after: not_after.as_secs(),
        },
        E::CertNotValidYet { time, not_before } => X509SvidError::NotYetValid {
            at: time.as_secs(),
            not_before: not_before.as_secs(),
        },
        E::InvalidCertValidity => X509SvidError::InvalidValidityPeriod,
        E::UnknownIssuer => X509SvidError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => X509SvidError::BadSignature,
        E::CaUsedAsEndEntity => X509SvidError::CaUsedAsEndEntity,
        E::EndEntityUsedAsCa => X509SvidError::IssuerNotCa,
        E::PathLenConstraintViolated => X509SvidError::PathLenConstraintViolated,
        E::NameConstraintViolation if uri_constraints() => {
            X509SvidError::UriNameConstraintsUnsupported
        }
        E::NameConstraintViolation => X509SvidError::NameConstraintViolation,
        E::UnsupportedCriticalExtension => X509SvidError::UnsupportedCriticalExtension,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            X509SvidError::ExtendedKeyUsageNotAllowed
        }
        e @ (E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch) => X509SvidError::UnsupportedSignatureAlgorithm {
            reason: e.to_string(),
        },
        e @ (E::MaximumPathDepthExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumNameConstraintComparisonsExceeded) => {
            X509SvidError::PathBuildingLimitExceeded {
                reason: e.to_string(),
            }
        }
        e => X509SvidError::PathValidation {
            reason: e.to_string(),
        },
    }
}

// The chain layer against external corpora: x509-limbo and NIST PKITS.
#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use rustls_pki_types::{Der, TrustAnchor};

    use super::anchor_has_uri_name_constraints;

    /// A trust anchor whose name constraints (SEQUENCE contents) are one
    /// subtree of `tag` with a `len`-byte base, under `[0]` or `[1]`.
    fn anchor(excluded: bool, tag: u8, len: usize) -> TrustAnchor<'static> {
        fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match contents.len() {
                n @ 0..0x80 => out.push(n as u8),
                n @ 0x80..0x100 => out.extend([0x81, n as u8]),
                n => out.extend([0x82, (n >> 8) as u8, n as u8]),
            }
            out.extend_from_slice(contents);
            out
        }
        let subtree = tlv(0x30, &tlv(tag, &vec![b'a'; len]));
        TrustAnchor {
            subject: Der::from_slice(&[]),
            subject_public_key_info: Der::from_slice(&[]),
            name_constraints: Some(Der::from(tlv(if excluded { 0xa1 } else { 0xa0 }, &subtree))),
        }
    }

    #[test]
    fn uri_subtrees_in_anchor_name_constraints() {
        // URI is GeneralName [6] (0x86); dNSName is [2] (0x82). Short,
        // one-byte and two-byte DER lengths of the re-wrapped SEQUENCE.
        for len in [10, 130, 300] {
            assert!(anchor_has_uri_name_constraints(&anchor(false, 0x86, len)));
            assert!(anchor_has_uri_name_constraints(&anchor(true, 0x86, len)));
            assert!(!anchor_has_uri_name_constraints(&anchor(false, 0x82, len)));
        }
        let mut none = anchor(false, 0x86, 10);
        none.name_constraints = None;
        assert!(!anchor_has_uri_name_constraints(&none));
    }
}
