//! The SPIFFE X509-SVID profile, one rule at a time, for `x509 inspect`.
//!
//! `spiffe_svid::verify_x509_svid` stops at the first broken rule, which is
//! right for a verifier; a person inspecting a certificate wants to see every
//! rule. So each rule is evaluated here on its own, with the same meaning as
//! the verifier's (a `fail` here is a rejection there), and the inspect
//! command also reports the verifier's own verdict next to this list.

use spiffe_id::SpiffeId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::output::{Check, CheckStatus};

/// The leaf rules, in the verifier's order.
pub(crate) fn leaf_checks(cert: &X509Certificate<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let san = cert.subject_alternative_name();
    let uris: Vec<&str> = match &san {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };

    const X01: &str = "has a URI SAN (the SPIFFE ID)";
    const X02: &str = "has exactly one URI SAN";
    const X22: &str = "URI SAN is a SPIFFE ID (scheme spiffe, ID rules)";
    const X05: &str = "SPIFFE ID has a path (a workload, not the trust domain)";
    if let Err(e) = &san {
        checks.push(Check::new("X-01", X01, CheckStatus::Fail).detail(format!("malformed: {e}")));
    } else {
        checks.push(Check::new(
            "X-01",
            X01,
            CheckStatus::from_ok(!uris.is_empty()),
        ));
    }
    let id = match uris.as_slice() {
        [] => {
            for (rule, what) in [("X-02", X02), ("X-22", X22), ("X-05", X05)] {
                checks.push(Check::new(rule, what, CheckStatus::Skip));
            }
            None
        }
        [uri] => {
            checks.push(Check::new("X-02", X02, CheckStatus::Pass));
            match SpiffeId::parse(uri) {
                Ok(id) => {
                    checks.push(Check::new("X-22", X22, CheckStatus::Pass).detail(id.as_str()));
                    Some(id)
                }
                Err(e) => {
                    checks.push(
                        Check::new("X-22", X22, CheckStatus::Fail)
                            .detail(format!("{uri:?}: {e} (rule {})", e.rule())),
                    );
                    checks.push(Check::new("X-05", X05, CheckStatus::Skip));
                    None
                }
            }
        }
        many => {
            checks.push(Check::new("X-02", X02, CheckStatus::Fail).detail(format!(
                "{} URI SANs: {}",
                many.len(),
                many.join(", ")
            )));
            for (rule, what) in [("X-22", X22), ("X-05", X05)] {
                checks.push(Check::new(rule, what, CheckStatus::Skip));
            }
            None
        }
    };
    if let Some(id) = &id {
        checks.push(Check::new(
            "X-05",
            X05,
            CheckStatus::from_ok(!id.is_trust_domain_id()),
        ));
    }

    const X06: &str = "SAN extension is critical when the subject is empty";
    let subject_empty = cert.subject().iter().next().is_none();
    checks.push(match &san {
        Ok(Some(ext)) if subject_empty && !ext.critical => {
            Check::new("X-06", X06, CheckStatus::Fail).detail("empty subject, non-critical SAN")
        }
        _ if subject_empty => Check::new("X-06", X06, CheckStatus::Pass).detail("empty subject"),
        _ => Check::new("X-06", X06, CheckStatus::Pass).detail("subject is not empty"),
    });

    const X13: &str = "is not a CA (cA=false)";
    checks.push(match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Check::new("X-13", X13, CheckStatus::Fail).detail("cA=true"),
        Ok(Some(_)) => Check::new("X-13", X13, CheckStatus::Pass),
        Ok(None) => Check::new("X-13", X13, CheckStatus::Pass)
            .detail("no basicConstraints extension (not a CA)"),
        Err(e) => Check::new("X-13", X13, CheckStatus::Fail).detail(format!("malformed: {e}")),
    });

    const X15: &str = "has a key-usage extension";
    const X17: &str = "key usage has digitalSignature";
    const X14_KCS: &str = "key usage lacks keyCertSign";
    const X14_CRL: &str = "key usage lacks cRLSign";
    match cert.key_usage() {
        Ok(Some(ku)) => {
            checks.push(if ku.critical {
                Check::new("X-15", X15, CheckStatus::Pass)
            } else {
                // Edge case 17: an issuer rule; verifiers accept it.
                Check::new("X-15", X15, CheckStatus::Warn)
                    .detail("present but not marked critical (accepted by verifiers)")
            });
            let ku = ku.value;
            checks.push(Check::new(
                "X-17",
                X17,
                CheckStatus::from_ok(ku.digital_signature()),
            ));
            checks.push(Check::new(
                "X-14",
                X14_KCS,
                CheckStatus::from_ok(!ku.key_cert_sign()),
            ));
            checks.push(Check::new(
                "X-14",
                X14_CRL,
                CheckStatus::from_ok(!ku.crl_sign()),
            ));
        }
        Ok(None) => {
            checks.push(Check::new("X-15", X15, CheckStatus::Fail).detail("missing"));
            for (rule, what) in [("X-17", X17), ("X-14", X14_KCS), ("X-14", X14_CRL)] {
                checks.push(Check::new(rule, what, CheckStatus::Skip));
            }
        }
        Err(e) => checks
            .push(Check::new("X-15", X15, CheckStatus::Fail).detail(format!("malformed: {e}"))),
    }

    const X18: &str = "extended key usage, if present, has serverAuth and clientAuth";
    checks.push(match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let (server, client) = (eku.value.server_auth, eku.value.client_auth);
            let status = CheckStatus::from_ok(server && client);
            Check::new("X-18", X18, status)
                .detail(format!("serverAuth: {server}, clientAuth: {client}"))
        }
        // X-18 is a SHOULD for issuers; verifiers accept a leaf without EKU.
        Ok(None) => Check::new("X-18", X18, CheckStatus::Warn)
            .detail("no EKU extension (allowed, but SHOULD be present)"),
        Err(e) => Check::new("X-18", X18, CheckStatus::Fail).detail(format!("malformed: {e}")),
    });
    checks
}

/// The rules for a certificate after the leaf, which signs the one before
/// it: a CA, with `keyCertSign` when it has a key usage; its SPIFFE ID, if
/// any, without a path.
pub(crate) fn signing_checks(cert: &X509Certificate<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    const X07: &str = "signing certificate is a CA (cA=true)";
    checks.push(match cert.basic_constraints() {
        Ok(Some(bc)) => Check::new("X-07", X07, CheckStatus::from_ok(bc.value.ca)),
        Ok(None) => Check::new("X-07", X07, CheckStatus::Fail).detail("no basicConstraints"),
        Err(e) => Check::new("X-07", X07, CheckStatus::Fail).detail(format!("malformed: {e}")),
    });
    const X16: &str = "signing certificate's key usage has keyCertSign";
    checks.push(match cert.key_usage() {
        Ok(Some(ku)) => Check::new("X-16", X16, CheckStatus::from_ok(ku.value.key_cert_sign())),
        // RFC 5280 §6.1.4(n) only binds a key usage that is present.
        Ok(None) => Check::new("X-16", X16, CheckStatus::Warn)
            .detail("no key-usage extension (X-15 requires one; verifiers accept it)"),
        Err(e) => Check::new("X-16", X16, CheckStatus::Fail).detail(format!("malformed: {e}")),
    });
    const X09: &str = "signing certificate's SPIFFE ID, if any, has no path";
    let ids: Vec<SpiffeId> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => SpiffeId::parse(uri).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    checks.push(match ids.iter().find(|id| !id.is_trust_domain_id()) {
        // An issuer rule: verifiers do not reject it.
        Some(id) => Check::new("X-09", X09, CheckStatus::Warn).detail(id.as_str()),
        None if ids.is_empty() => Check::new("X-09", X09, CheckStatus::Pass).detail("no SPIFFE ID"),
        None => Check::new("X-09", X09, CheckStatus::Pass),
    });
    checks
}
