//! x509-limbo (C2SP/x509-limbo, with its BetterTLS cases) against the chain
//! layer. See `shared/conformance/x509-limbo/README.md` for the format, the
//! relevance classes and the cases that need a peer-name check.
//!
//! Per case: the trust anchors are `trusted_certs`, the candidate
//! intermediates `untrusted_intermediates`, the leaf `peer_certificate`, the
//! time `validation_time` (or now), and the EKU requirement
//! `extended_key_usage` when set, else serverAuth for `SERVER` and
//! clientAuth for `CLIENT`. Peer names are never checked: SPIFFE
//! authenticates by ID. Every disagreement with `expected_result` must be in
//! [`ALLOWED`], and every case in [`ALLOWED`] must still disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use spiffe_bundle::X509Authority;

use super::{missing, provider, shared_dir};
use crate::verify::{ChainEku, verify_chain};

/// The classes of `limbo-spiffe-relevance.tsv` that are run, the native
/// name-constraint cases of class C included. The BetterTLS name-constraint
/// cases (not in the TSV) are run too, as [`BETTERTLS_NC`]. Every class is
/// run minus `name-dependent-ids.txt` (cases whose verdict needs the peer
/// name checked, which a SPIFFE verifier does not do).
const RUN: &[&str] = &[
    "A-core",
    "A-core-pathbuilding",
    "A-core-eku",
    "A-core-key/alg-policy",
    "C-dns-ip-name-constraints",
    "E-webpki-real-chains",
];

/// Reporting label of the `bettertls::nameconstraints::*` cases (class
/// `C-dns-ip-name-constraints` in the README, not listed in the TSV).
const BETTERTLS_NC: &str = "C-dns-ip-name-constraints (BetterTLS)";

/// Features whose cases are skipped: no revocation checking, no depth limit
/// in the API.
const SKIPPED_FEATURES: &[&str] = &["has-crl", "max-chain-depth"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Success,
    Failure,
}

/// A case where the chain layer's verdict differs from limbo's, on purpose
/// or as a known property of rustls-webpki 0.103.
struct Deviation {
    id: &'static str,
    /// Our verdict (the opposite of limbo's expected result).
    ours: Verdict,
    /// Why the deviation is accepted, and where (if anywhere) it is caught.
    reason: &'static str,
}

/// The accepted deviations: limbo expects the opposite of `ours`. Each one
/// matches the rustls-webpki 0.103 reference table of the corpus README.
const ALLOWED: &[Deviation] = &[
    Deviation {
        id: "rfc5280::validity::expired-root",
        ours: Verdict::Success,
        reason: "trust anchors are not checked: rustls-webpki reduces an anchor to its subject, key and name constraints, so an expired root still anchors a path (the bundle, not the root's validity, is the unit of trust; its intermediates and leaf are still checked)",
    },
    Deviation {
        id: "rfc5280::root-missing-basic-constraints",
        ours: Verdict::Success,
        reason: "trust anchors are not checked (subject, key and name constraints only): a bundle root without basicConstraints still anchors a path; a publisher-side rule, not re-checked by the consumer",
    },
    Deviation {
        id: "rfc5280::root-non-critical-basic-constraints",
        ours: Verdict::Success,
        reason: "trust anchors are not checked (subject, key and name constraints only): a non-critical basicConstraints in a bundle root is not looked at",
    },
    Deviation {
        id: "rfc5280::root-inconsistent-ca-extensions",
        ours: Verdict::Success,
        reason: "trust anchors are not checked (subject, key and name constraints only): a bundle root with cA=TRUE but no keyCertSign still anchors a path (our keyCertSign check covers intermediates, not anchors)",
    },
    Deviation {
        id: "rfc5280::unknown-critical-extension-root",
        ours: Verdict::Success,
        reason: "trust anchors are not checked (subject, key and name constraints only): an unknown critical extension in a bundle root is ignored; the same extension in an intermediate or leaf is rejected",
    },
    Deviation {
        id: "rfc5280::ca-empty-subject",
        ours: Verdict::Success,
        reason: "the CA with the empty subject is the trust anchor here, and anchors are not checked (subject, key and name constraints only); the empty subject still chains by exact name match",
    },
    Deviation {
        id: "rfc5280::leaf-ku-keycertsign",
        ours: Verdict::Success,
        reason: "the chain layer does not look at the leaf's key usage; the SVID layer rejects keyCertSign on the leaf before path validation (LeafWithKeyCertSign, rule X-14), so an X509-SVID verification fails as limbo expects",
    },
    Deviation {
        id: "rfc5280::san::noncritical-with-empty-subject",
        ours: Verdict::Success,
        reason: "the chain layer does not check SAN criticality; the SVID layer rejects an empty subject with a non-critical SAN (NonCriticalSanWithEmptySubject, rule X-06), so an X509-SVID verification fails as limbo expects",
    },
    Deviation {
        id: "rfc5280::pc::ica-noncritical-pc",
        ours: Verdict::Success,
        reason: "certificate policies are not processed: rustls-webpki ignores a non-critical policyConstraints extension, so its wrong criticality (a CA-side MUST) goes unnoticed; SPIFFE defines no certificate policies",
    },
    Deviation {
        id: "webpki::malformed-aia",
        ours: Verdict::Success,
        reason: "the non-critical Authority Information Access extension is not parsed by rustls-webpki (nor used: no AIA fetching), so its malformed contents do not matter; a CA/Browser Forum rule, not an RFC 5280 validation step",
    },
    Deviation {
        id: "rfc5280::ca-as-leaf",
        ours: Verdict::Failure,
        reason: "rustls-webpki refuses a CA certificate (cA=TRUE) as the end entity (CaUsedAsEndEntity); RFC 5280 allows it, the X509-SVID spec does not (leaf cA=false, rule X-13), so this is the SPIFFE verdict",
    },
    Deviation {
        id: "pathlen::validation-ignores-pathlen-in-leaf",
        ours: Verdict::Failure,
        reason: "the leaf is a CA (cA=TRUE, pathlen 0): rejected as CaUsedAsEndEntity before pathlen matters; the X509-SVID spec forbids a CA leaf (rule X-13), so this is the SPIFFE verdict",
    },
    Deviation {
        id: "pathlen::self-issued-certs-pathlen",
        ours: Verdict::Failure,
        reason: "the only valid path runs through the self-issued ICA', and rustls-webpki counts every intermediate against pathLenConstraint, self-issued ones included (RFC 5280 exempts them), so that path fails and the shorter alternative fails on its signature (the error reported); fails closed, and affects only CA key rollover through self-issued certificates inside a chain",
    },
    Deviation {
        id: "webpki::eku::ee-without-eku",
        ours: Verdict::Success,
        reason: "a leaf without EKU is accepted: EKU on an X509-SVID leaf is only a SHOULD (SPIFFE override: SUCCESS); limbo's FAILURE is a CA/Browser Forum rule",
    },
    Deviation {
        id: "webpki::eku::ee-critical-eku",
        ours: Verdict::Success,
        reason: "a critical EKU extension is accepted: the X509-SVID spec allows EKU to be critical (SPIFFE override: SUCCESS); limbo's FAILURE is a CA/Browser Forum rule",
    },
    Deviation {
        id: "webpki::eku::ee-anyeku",
        ours: Verdict::Success,
        reason: "a leaf EKU with serverAuth plus anyExtendedKeyUsage satisfies the required serverAuth; the SPIFFE spec is silent on anyExtendedKeyUsage (policy), and the SVID layer still requires both serverAuth and clientAuth in a leaf EKU (X-18)",
    },
    Deviation {
        id: "webpki::eku::root-has-eku",
        ours: Verdict::Success,
        reason: "the trust anchor's EKU is not checked (anchors are subject, key and name constraints only); SPIFFE allows EKU on signing certificates (policy); limbo's FAILURE is a CA/Browser Forum rule",
    },
    Deviation {
        id: "webpki::forbidden-p192-leaf",
        ours: Verdict::Success,
        reason: "no leaf key policy at the chain layer: the leaf's P-192 key is never used during path validation (only signatures made by CA keys are checked); a CA/Browser Forum subscriber-key rule, to be enforced (if wanted) by the SVID layer or by the TLS handshake, which cannot use such a key",
    },
    Deviation {
        id: "webpki::forbidden-dsa-leaf",
        ours: Verdict::Success,
        reason: "no leaf key policy at the chain layer: the leaf's DSA key is never used during path validation; a CA/Browser Forum subscriber-key rule; no rustls provider can verify a DSA handshake signature, so such a peer cannot authenticate",
    },
    Deviation {
        id: "webpki::forbidden-weak-rsa-in-leaf",
        ours: Verdict::Success,
        reason: "no leaf key policy at the chain layer: the leaf's RSA-1024 key is never used during path validation; a CA/Browser Forum subscriber-key rule (rustls providers refuse RSA keys under 2048 bits when the handshake signature is verified)",
    },
    Deviation {
        id: "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf",
        ours: Verdict::Success,
        reason: "no leaf key policy at the chain layer: a leaf RSA-2052 key (size not a multiple of 8) is never used during path validation; a CA/Browser Forum key-size rule",
    },
    Deviation {
        id: "webpki::forbidden-rsa-not-divisible-by-8-in-root",
        ours: Verdict::Success,
        reason: "the root's RSA-2052 key (above 2048 bits, size not a multiple of 8) is accepted by the bundle (X509Authority) and the crypto provider verifies the leaf's signature with it; the multiple-of-8 rule is a CA/Browser Forum key-size rule, not an RFC 5280 one",
    },
    // Class C, the native name-constraint cases (the README's rustls-webpki
    // 0.103 table: 13 of 56). None weakens a constraint a SPIFFE CA relies
    // on: each is a malformed or misplaced constraint that is accepted, or a
    // name type webpki does not match and so refuses (fail closed).
    Deviation {
        id: "rfc5280::nc::permitted-dns-match-noncritical",
        ours: Verdict::Success,
        reason: "the constraint sits in the trust anchor, which keeps only its subject, key and name constraints (not their criticality); the constraint is still applied and the leaf's name satisfies it",
    },
    Deviation {
        id: "rfc5280::nc::invalid-dnsname-leading-period",
        ours: Verdict::Success,
        reason: "rustls-webpki reads a dNSName constraint with a leading period (as OpenSSL does) as 'subdomains of', so the malformed constraint still restricts the leaf; limbo fails the certificate for the encoding",
    },
    Deviation {
        id: "rfc5280::nc::not-allowed-in-ee-noncritical",
        ours: Verdict::Success,
        reason: "name constraints only restrict names below a CA, so rustls-webpki ignores them in an end entity; they grant nothing there (a CA-side MUST NOT, not a path-validation step)",
    },
    Deviation {
        id: "rfc5280::nc::not-allowed-in-ee-critical",
        ours: Verdict::Success,
        reason: "as the non-critical case: a (known, hence not unknown-critical) name-constraints extension in an end entity restricts nothing and grants nothing",
    },
    Deviation {
        id: "webpki::nc::intermediate-permitted-excluded-subtrees-both-null",
        ours: Verdict::Success,
        reason: "a name-constraints extension whose subtrees are both NULL constrains nothing, so accepting it is accepting an unconstrained CA; forbidden by the CA/Browser Forum profile, not by RFC 5280 path validation",
    },
    Deviation {
        id: "webpki::nc::intermediate-permitted-excluded-subtrees-both-empty-sequences",
        ours: Verdict::Success,
        reason: "empty permitted and excluded subtrees constrain nothing, as the NULL case; a CA/Browser Forum profile rule",
    },
    Deviation {
        id: "rfc5280::nc::permitted-self-issued",
        ours: Verdict::Failure,
        reason: "rustls-webpki applies name constraints to a self-issued intermediate too (RFC 5280 exempts it), so the only path fails and the error reported is the alternative's bad signature; fails closed, as pathlen::self-issued-certs-pathlen",
    },
    Deviation {
        id: "rfc5280::nc::permitted-dn-match",
        ours: Verdict::Failure,
        reason: "rustls-webpki does not match directoryName constraints against directoryName SANs and refuses instead (NameConstraintViolation); fails closed, and SPIFFE CAs constrain URI names (X-20), not directory names",
    },
    Deviation {
        id: "rfc5280::nc::nc-permits-email-exact",
        ours: Verdict::Failure,
        reason: "rustls-webpki does not match rfc822Name constraints and refuses an e-mail SAN under one (NameConstraintViolation); fails closed, and an X509-SVID authenticates by its URI SAN, not by e-mail",
    },
    Deviation {
        id: "rfc5280::nc::nc-permits-email-domain",
        ours: Verdict::Failure,
        reason: "rfc822Name constraints are not matched, so an e-mail SAN under one is refused (fail closed), as nc-permits-email-exact",
    },
    Deviation {
        id: "rfc5280::nc::nc-permits-email-literal-asterisk-exact-match",
        ours: Verdict::Failure,
        reason: "rfc822Name constraints are not matched, so an e-mail SAN under one is refused (fail closed), as nc-permits-email-exact",
    },
    Deviation {
        id: "rfc5280::nc::nc-permits-email-literal-double-asterisk",
        ours: Verdict::Failure,
        reason: "rfc822Name constraints are not matched, so an e-mail SAN under one is refused (fail closed), as nc-permits-email-exact",
    },
    Deviation {
        id: "rfc5280::nc::nc-permits-email-literal-mid-asterisk",
        ours: Verdict::Failure,
        reason: "rfc822Name constraints are not matched, so an e-mail SAN under one is refused (fail closed), as nc-permits-email-exact",
    },
];

#[derive(Deserialize)]
struct Limbo {
    testcases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    #[serde(default)]
    features: Option<Vec<String>>,
    validation_kind: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    validation_time: Option<String>,
    #[serde(default)]
    extended_key_usage: Option<Vec<String>>,
    expected_result: String,
}

#[derive(Default)]
struct Counts {
    run: usize,
    agree: usize,
    allowed: usize,
    skipped: usize,
}

#[test]
fn x509_limbo_chain_layer() {
    let dir = shared_dir().join("conformance/x509-limbo");
    let corpus = dir.join("limbo.json.gz");
    if !corpus.is_file() {
        return missing(&format!(
            "x509-limbo corpus not found at {}",
            corpus.display()
        ));
    }
    let Some(provider) = provider() else { return };
    let started = Instant::now();

    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&corpus).unwrap())
        .read_to_end(&mut json)
        .unwrap();
    let limbo: Limbo = serde_json::from_slice(&json).unwrap();
    drop(json);
    let classes = read_classes(&dir.join("limbo-spiffe-relevance.tsv"));
    let name_dependent: BTreeSet<String> =
        std::fs::read_to_string(dir.join("name-dependent-ids.txt"))
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
    let loaded = started.elapsed();

    let allowed: BTreeMap<&str, &Deviation> = ALLOWED.iter().map(|d| (d.id, d)).collect();
    assert_eq!(allowed.len(), ALLOWED.len(), "duplicate id in ALLOWED");

    let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut run_allowed = BTreeSet::new();
    for case in &limbo.testcases {
        let class = match classes.get(case.id.as_str()) {
            Some(class) => class.as_str(),
            None if case.id.starts_with("bettertls::nameconstraints::") => BETTERTLS_NC,
            None => panic!("{}: not in limbo-spiffe-relevance.tsv", case.id),
        };
        let counts = counts.entry(class).or_default();
        let features = case.features.as_deref().unwrap_or_default();
        let skip = !(RUN.contains(&class) || class == BETTERTLS_NC)
            || name_dependent.contains(&case.id)
            || features
                .iter()
                .any(|f| SKIPPED_FEATURES.contains(&f.as_str()));
        if skip {
            counts.skipped += 1;
            continue;
        }
        counts.run += 1;

        let expected = match case.expected_result.as_str() {
            "SUCCESS" => Verdict::Success,
            "FAILURE" => Verdict::Failure,
            other => panic!("{}: expected_result {other:?}", case.id),
        };
        let (ours, detail) = run_case(case, &provider);
        let listed = allowed.get(case.id.as_str());
        if let Some(d) = listed {
            run_allowed.insert(d.id);
        }
        match (ours == expected, listed) {
            (true, None) => counts.agree += 1,
            (false, Some(d)) if d.ours == ours => {
                counts.allowed += 1;
                println!(
                    "allowed deviation {} ({ours:?}: {detail}): {}",
                    d.id, d.reason
                );
            }
            (false, _) => problems.push(format!(
                "{}: limbo expects {expected:?}, the chain layer says {ours:?} ({detail})",
                case.id
            )),
            (true, Some(_)) => problems.push(format!(
                "{}: in ALLOWED but now agrees with limbo ({expected:?}); remove it from the list",
                case.id
            )),
        }
    }
    for d in ALLOWED {
        if !run_allowed.contains(d.id) {
            problems.push(format!("{}: in ALLOWED but not run", d.id));
        }
    }

    println!(
        "x509-limbo: {} cases, loaded in {loaded:.2?}, run in {:.2?}",
        limbo.testcases.len(),
        started.elapsed() - loaded
    );
    println!(
        "{:<40} {:>6} {:>6} {:>8} {:>8}",
        "class", "run", "agree", "allowed", "skipped"
    );
    let mut total = Counts::default();
    for (class, c) in &counts {
        println!(
            "{class:<40} {:>6} {:>6} {:>8} {:>8}",
            c.run, c.agree, c.allowed, c.skipped
        );
        total.run += c.run;
        total.agree += c.agree;
        total.allowed += c.allowed;
        total.skipped += c.skipped;
    }
    println!(
        "{:<40} {:>6} {:>6} {:>8} {:>8}",
        "total", total.run, total.agree, total.allowed, total.skipped
    );
    assert!(
        problems.is_empty(),
        "{} unexpected result(s):\n{}",
        problems.len(),
        problems.join("\n")
    );

    leaf_walk_agrees_with_x509_parser(&limbo);
}

/// The SVID layer reads the leaf profile with its own DER walk, falling back
/// to x509-parser when the walk does not answer. Over every distinct
/// certificate of the corpus (leaves, intermediates and roots, many of them
/// odd on purpose): wherever the walk answers, x509-parser parses the
/// certificate and reads the same facts (asserted inside `check_leaf_der` in
/// test builds), and the verdict is the one x509-parser's route gives.
fn leaf_walk_agrees_with_x509_parser(limbo: &Limbo) {
    use crate::profile::{check_leaf, check_leaf_der, not_after_secs, parse_cert};

    let pems: BTreeSet<&str> = limbo
        .testcases
        .iter()
        .flat_map(|case| {
            case.trusted_certs
                .iter()
                .chain(&case.untrusted_intermediates)
                .chain([&case.peer_certificate])
        })
        .map(String::as_str)
        .collect();
    let mut walked = 0;
    for pem in &pems {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        walked += usize::from(crate::der::leaf_facts(&der).is_some());
        let parser_route =
            parse_cert(&der, 0).and_then(|cert| Ok((check_leaf(&cert)?, not_after_secs(&cert))));
        assert_eq!(check_leaf_der(&der), parser_route, "{pem}");
    }
    println!(
        "leaf profile: {} distinct certificates, {walked} read by the DER walk and the rest by x509-parser; every verdict agrees",
        pems.len()
    );
}

/// Runs one case through the chain layer: our verdict, and the error.
fn run_case(case: &Case, provider: &rustls::crypto::CryptoProvider) -> (Verdict, String) {
    let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let trusted: Vec<CertificateDer<'_>> = case.trusted_certs.iter().map(|p| der(p)).collect();
    let intermediates: Vec<CertificateDer<'_>> = case
        .untrusted_intermediates
        .iter()
        .map(|p| der(p))
        .collect();
    let leaf = der(&case.peer_certificate);

    // The anchors are built as production builds them, by the bundle's
    // X509Authority; a certificate it refuses makes the case fail.
    let authorities: Result<Vec<X509Authority>, _> = trusted
        .iter()
        .map(|c| X509Authority::from_der(c.clone().into_owned()))
        .collect();
    let anchors: Vec<TrustAnchor<'_>> = match authorities {
        Ok(authorities) => authorities
            .iter()
            .map(|a| a.trust_anchor().clone())
            .collect(),
        Err(e) => return (Verdict::Failure, format!("trust anchor refused: {e}")),
    };

    let at = match &case.validation_time {
        Some(t) => UnixTime::since_unix_epoch(Duration::from_secs(parse_rfc3339(t))),
        None => UnixTime::now(),
    };
    let oids: Vec<&[u8]> = case
        .extended_key_usage
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|name| eku_oid(name))
        .collect();
    let eku = match (oids.is_empty(), case.validation_kind.as_str()) {
        (false, _) => ChainEku::AllOf(&oids),
        (true, "SERVER") => ChainEku::ServerAuth,
        (true, "CLIENT") => ChainEku::ClientAuth,
        (true, other) => panic!("{}: validation_kind {other:?}", case.id),
    };

    match verify_chain(&leaf, &intermediates, &anchors, at, &eku, provider) {
        Ok(path) => (
            Verdict::Success,
            format!("path with {} intermediate(s)", path.intermediates.len()),
        ),
        Err(e) => (Verdict::Failure, e.to_string()),
    }
}

/// The DER contents of a limbo EKU name's OID.
fn eku_oid(name: &str) -> &'static [u8] {
    match name {
        "serverAuth" => &[0x2b, 6, 1, 5, 5, 7, 3, 1],
        "clientAuth" => &[0x2b, 6, 1, 5, 5, 7, 3, 2],
        "codeSigning" => &[0x2b, 6, 1, 5, 5, 7, 3, 3],
        "emailProtection" => &[0x2b, 6, 1, 5, 5, 7, 3, 4],
        "timeStamping" => &[0x2b, 6, 1, 5, 5, 7, 3, 8],
        "OCSPSigning" => &[0x2b, 6, 1, 5, 5, 7, 3, 9],
        "anyExtendedKeyUsage" => &[0x55, 0x1d, 0x25, 0x00],
        other => panic!("unknown extended key usage {other:?}"),
    }
}

/// id → relevance class, from the TSV (header row skipped).
fn read_classes(path: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let id = cols.next().unwrap().to_owned();
            let class = cols.next().unwrap().to_owned();
            (id, class)
        })
        .collect()
}

/// Seconds since the Unix epoch of an RFC 3339 date-time
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`); the fraction is dropped,
/// as `UnixTime` (and so webpki) counts whole seconds.
fn parse_rfc3339(s: &str) -> u64 {
    let num = |range: std::ops::Range<usize>| -> i64 {
        s.get(range)
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("time {s:?}"))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let zone = s
        .get(19..)
        .unwrap()
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => panic!("time {s:?}"),
            };
            let hours: i64 = zone.get(1..3).unwrap().parse().unwrap();
            let minutes: i64 = zone.get(4..6).unwrap().parse().unwrap();
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    // days_from_civil algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).unwrap()
}

#[test]
fn rfc3339_parsing() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
    assert_eq!(parse_rfc3339("2015-01-01T00:00:00+00:00"), 1_420_070_400);
    assert_eq!(
        parse_rfc3339("2024-03-01T00:00:00.999+00:00"),
        1_709_251_200
    );
    assert_eq!(parse_rfc3339("2024-02-29T23:00:00-01:00"), 1_709_251_200);
}
