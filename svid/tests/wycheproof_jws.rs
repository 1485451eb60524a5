//! Wycheproof JOSE vectors (`json_web_signature_test.json`,
//! `json_web_key_test.json`) against the JWS layer of the JWT-SVID validator.
//!
//! The vectors sign short byte payloads, not JWT claim sets, so they drive
//! the hidden `JwtValidationOptions::verify_jws_with_bundle` (serialization,
//! header, key selection by `kid`, signature) with a bundle built from the
//! group's JWK(s). The files are read at run time from the workspace's
//! sibling `shared/conformance/wycheproof/`; the test fails if they are
//! missing.
//!
//! Keys become bundle entries as `../shared/conformance/wycheproof/README.md`
//! says: `use: sig` (or no `use` and no `key_ops`, or `key_ops` containing
//! `verify`) becomes `use: jwt-svid`; any other `use` is kept, and a key
//! whose `key_ops` lacks `verify` gets no `use`, so the SPIFFE bundle parser
//! ignores both kinds (the token is then rejected for lack of a key).
//! Symmetric (`oct`) keys cannot be SPIFFE JWT authorities and are left out.
//! A key set the bundle parser refuses (bad key) counts as a rejection.
//!
//! Deviations from Wycheproof's `result` (all fail closed), besides the
//! README's "must reject" list:
//! - JWS tcId 346 and 350 (RFC 7520 figure 20: key `alg: PS256`, token
//!   PS384) and 347 and 351 (figure 27: P-521 key `alg: ES521`, token
//!   ES512): Wycheproof says valid; a JWK `alg` that differs from the header
//!   `alg` is rejected here, consistently with the `WrongPrimitive` cases.
//! - JWK tcId 7 (a 2048-bit RSA key vulnerable to ROCA): Wycheproof says
//!   invalid; it is accepted here, because neither the bundle parser nor the
//!   validator fingerprints ROCA keys (the README makes this optional). The
//!   signature itself is valid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use spiffe_bundle::{JwtBundle, SpiffeBundle};
use spiffe_id::TrustDomain;
use spiffe_svid::JwtValidationOptions;

/// JWS tcIds where this validator deliberately disagrees with Wycheproof.
const JWS_DEVIATIONS: [u64; 4] = [346, 347, 350, 351];
/// JWK tcIds where this validator knowingly disagrees with Wycheproof.
const JWK_DEVIATIONS: [u64; 1] = [7];

fn wycheproof_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/wycheproof");
    assert!(
        dir.join("json_web_signature_test.json").is_file()
            && dir.join("json_web_key_test.json").is_file(),
        "Wycheproof JOSE vectors not found in {} (expected the workspace's sibling \
         shared/conformance/wycheproof/; CI always provides it)",
        dir.display()
    );
    dir
}

fn load(name: &str) -> Value {
    let path = wycheproof_dir().join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One JWK as a SPIFFE bundle entry, per the rules in the module docs;
/// `None` for keys that cannot be JWT authorities at all.
fn to_bundle_entry(jwk: &Map<String, Value>) -> Option<Value> {
    match jwk.get("kty").and_then(Value::as_str) {
        Some("EC" | "RSA") => {}
        _ => return None,
    }
    let mut entry = jwk.clone();
    let key_ops = entry.remove("key_ops");
    let verify_allowed = match &key_ops {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|o| o == "verify"),
        Some(_) => false,
    };
    match entry.get("use").and_then(Value::as_str) {
        Some("sig") => {
            entry.insert("use".into(), json!("jwt-svid"));
        }
        Some(_) => {} // e.g. `enc`: ignored by the bundle parser.
        None if verify_allowed => {
            entry.insert("use".into(), json!("jwt-svid"));
        }
        None => {} // no `use`: ignored by the bundle parser.
    }
    if !entry.contains_key("kid") {
        entry.insert("kid".into(), json!("wycheproof"));
    }
    Some(Value::Object(entry))
}

/// The JWT bundle for a group's key (JWS file) or key set (JWK file), or
/// the bundle parser's refusal.
fn group_bundle(keys: &Value) -> Result<JwtBundle, String> {
    let list: Vec<&Map<String, Value>> = match keys.get("keys") {
        Some(Value::Array(ks)) => ks.iter().filter_map(Value::as_object).collect(),
        _ => keys.as_object().into_iter().collect(),
    };
    let entries: Vec<Value> = list.into_iter().filter_map(to_bundle_entry).collect();
    let doc = json!({ "keys": entries }).to_string();
    let td = TrustDomain::new("wycheproof.test").unwrap();
    SpiffeBundle::parse(td, doc.as_bytes())
        .map(|b| b.jwt_bundle().clone())
        .map_err(|e| e.to_string())
}

struct Case {
    tc_id: u64,
    comment: String,
    jws: String,
    valid: bool,
}

fn cases(group: &Value) -> Vec<Case> {
    group["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Case {
            tc_id: t["tcId"].as_u64().unwrap(),
            comment: t["comment"].as_str().unwrap_or_default().to_owned(),
            jws: t["jws"].as_str().unwrap().to_owned(),
            valid: match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("unexpected result {other:?}"),
            },
        })
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    total: usize,
    accepted: usize,
    rejected: usize,
    must_reject_rejected: usize,
    agreeing: usize,
    deviations: Vec<u64>,
}

/// Runs every test of a file. `must_reject(group_index, tc_id)` says which
/// tests the README requires a JWT-SVID validator to reject.
fn run(file: &str, must_reject: impl Fn(usize, u64) -> bool, deviations: &[u64]) -> Tally {
    let doc = load(file);
    let opts = JwtValidationOptions::new();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (gi, group) in doc["testGroups"].as_array().unwrap().iter().enumerate() {
        let keys = group.get("public").unwrap_or(&group["private"]);
        let bundle = group_bundle(keys);
        for case in cases(group) {
            tally.total += 1;
            let outcome = match &bundle {
                Ok(b) => opts
                    .verify_jws_with_bundle(&case.jws, b)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("key set refused: {e}")),
            };
            let accepted = outcome.is_ok();
            if accepted {
                tally.accepted += 1;
            } else {
                tally.rejected += 1;
            }
            let describe = || {
                format!(
                    "{file} group {gi} tcId {} ({}): wycheproof {}, ours {:?}",
                    case.tc_id,
                    case.comment,
                    if case.valid { "valid" } else { "invalid" },
                    outcome
                )
            };
            if must_reject(gi, case.tc_id) {
                if accepted {
                    failures.push(format!("MUST REJECT: {}", describe()));
                } else {
                    tally.must_reject_rejected += 1;
                }
            } else if accepted == case.valid {
                tally.agreeing += 1;
            } else if deviations.contains(&case.tc_id) {
                tally.deviations.push(case.tc_id);
            } else {
                failures.push(format!("DISAGREES: {}", describe()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{file}: {tally:?}");
    tally
}

#[test]
fn wycheproof_json_web_signature() {
    let hs_groups: BTreeSet<usize> = [0, 12, 16, 21].into();
    let enc_key_groups: BTreeSet<usize> = [17, 18, 19, 20].into();
    let tc_ids: BTreeSet<u64> = [
        31, // HS256 with the EC public key as HMAC secret
        16, 341, 342, 343, 344, // alg none / NONE
        32,  // jwk header with the attacker's key
        17,  // JSON serialization
        332, 334, 336, 338, 340, // header alg differs from the key's alg
    ]
    .into();
    let tally = run(
        "json_web_signature_test.json",
        |gi, tc| hs_groups.contains(&gi) || enc_key_groups.contains(&gi) || tc_ids.contains(&tc),
        &JWS_DEVIATIONS,
    );
    assert_eq!(tally.total, 401);
    // 46 valid, minus 10 HS256, minus the 4 JWK-alg deviations.
    assert_eq!(tally.accepted, 32, "{tally:?}");
    assert_eq!(tally.deviations, JWS_DEVIATIONS.to_vec());
    println!(
        "JWS: {} tests, {} accepted, {} rejected ({} required rejections), {} agree with \
         Wycheproof, deviations {:?}",
        tally.total,
        tally.accepted,
        tally.rejected,
        tally.must_reject_rejected,
        tally.agreeing,
        tally.deviations
    );
}

#[test]
fn wycheproof_json_web_key() {
    let must: BTreeSet<usize> = [0, 1, 2, 8, 9, 10, 11, 12, 13, 14, 15, 16, 4, 19, 23, 24].into();
    let tally = run(
        "json_web_key_test.json",
        |gi, _| must.contains(&gi),
        &JWK_DEVIATIONS,
    );
    assert_eq!(tally.total, 26);
    // tcId 5 (RS256), plus the ROCA key of tcId 7 (deviation).
    assert_eq!(tally.accepted, 2, "{tally:?}");
    assert_eq!(tally.deviations, JWK_DEVIATIONS.to_vec());
    println!(
        "JWK: {} tests, {} accepted, {} rejected ({} required rejections), {} agree with \
         Wycheproof, deviations {:?}",
        tally.total,
        tally.accepted,
        tally.rejected,
        tally.must_reject_rejected,
        tally.agreeing,
        tally.deviations
    );
}
