//! `spiffe x509 inspect` on certificates minted at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use spiffe_svid::issuer::{CaSpec, Defect, DevCa, KeyAlgorithm};

fn checks_with(json: &Value, status: &str) -> Vec<String> {
    json["profile_checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn valid_chain_with_key_shows_every_certificate() {
    let s = Scratch::new();
    let root = DevCa::new(td("example.org")).unwrap();
    let intermediate = root.intermediate(&CaSpec::new().path_len(0)).unwrap();
    let svid = intermediate
        .issue(&spec("spiffe://example.org/ns/prod/sa/web").dns_names(["web.prod.svc"]))
        .unwrap();
    let file = s.svid("svid.pem", &svid, true);

    let run = spiffe(["x509", "inspect", "--output", "json", "--at", DURING, &file]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["profile_valid"], true);
    assert_eq!(json["encoding"], "pem");
    assert_eq!(json["checked_at"], DURING);
    assert_eq!(json["spiffe_id"], "spiffe://example.org/ns/prod/sa/web");
    assert!(checks_with(&json, "fail").is_empty(), "{json:#}");
    assert_eq!(json["private_key"]["format"], "PKCS#8");
    assert_eq!(json["private_key"]["matches_leaf"], true);

    let certs = json["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let leaf = &certs[0];
    assert_eq!(leaf["role"], "leaf");
    assert_eq!(leaf["ca"], false);
    assert_eq!(leaf["key_algorithm"], "ECDSA P-256");
    assert_eq!(leaf["key_usage"], serde_json::json!(["digitalSignature"]));
    assert_eq!(
        leaf["extended_key_usage"],
        serde_json::json!(["serverAuth", "clientAuth"])
    );
    assert_eq!(
        leaf["uri_sans"],
        serde_json::json!(["spiffe://example.org/ns/prod/sa/web"])
    );
    assert_eq!(leaf["dns_sans"], serde_json::json!(["web.prod.svc"]));
    assert_eq!(leaf["not_before"], "2025-01-01T00:00:00Z");
    assert_eq!(leaf["not_after"], "2025-01-02T00:00:00Z");
    assert_eq!(leaf["validity_status"], "valid");
    assert!(leaf["serial"].as_str().unwrap().contains(':'));
    assert_eq!(leaf["subject"], "O=SPIFFE");
    let inter = &certs[1];
    assert_eq!(inter["role"], "intermediate");
    assert_eq!(inter["ca"], true);
    assert_eq!(inter["path_len_constraint"], 0);
    assert_eq!(
        inter["key_usage"],
        serde_json::json!(["keyCertSign", "cRLSign"])
    );
    assert_eq!(leaf["issuer"], inter["subject"]);
    let inter_checks: Vec<&str> = inter["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(inter_checks, ["pass", "pass", "pass"]);

    let text = spiffe(["x509", "inspect", "--at", AFTER, &file]);
    text.expect_code(0);
    for needle in [
        "SPIFFE ID:    spiffe://example.org/ns/prod/sa/web",
        "certificate [0] leaf",
        "certificate [1] intermediate",
        "validity:     2025-01-01T00:00:00Z .. 2025-01-02T00:00:00Z (expired)",
        "[pass] X-13",
        "verifier verdict: pass",
        "matches the leaf's public key",
    ] {
        assert!(text.stdout.contains(needle), "{needle}:\n{}", text.stdout);
    }
}

#[test]
fn key_algorithms_are_named() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    for (key, name) in [
        (KeyAlgorithm::EcdsaP256, "ECDSA P-256"),
        (KeyAlgorithm::EcdsaP384, "ECDSA P-384"),
        (KeyAlgorithm::Ed25519, "Ed25519"),
        (KeyAlgorithm::Rsa2048, "RSA 2048"),
    ] {
        let svid = ca
            .issue(&spec("spiffe://example.org/web").key(key))
            .unwrap();
        let file = s.svid(&format!("{name}.pem"), &svid, true);
        let run = spiffe(["--output", "json", "x509", "inspect", &file]);
        run.expect_code(0);
        let json = run.json();
        assert_eq!(json["certificates"][0]["key_algorithm"], name);
        assert_eq!(json["private_key"]["matches_leaf"], true, "{name}");
    }
}

#[test]
fn a_key_of_another_leaf_does_not_match() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    let a = ca.issue(&spec("spiffe://example.org/a")).unwrap();
    let b = ca.issue(&spec("spiffe://example.org/b")).unwrap();
    let file = s.write("mixed.pem", format!("{}{}", a.chain_pem(), b.key_pem()));
    let run = spiffe(["x509", "inspect", "--output", "json", &file]);
    run.expect_code(1);
    let json = run.json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["profile_valid"], true);
    assert_eq!(json["private_key"]["matches_leaf"], false);
    let text = spiffe(["x509", "inspect", &file]);
    assert!(text.stdout.contains("DOES NOT match"), "{}", text.stdout);
}

/// The per-rule list and the verifier agree on every defect the
/// development CA can mint.
#[test]
fn broken_leaf_profiles_fail_the_rule_the_verifier_names() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    // (defect, failed rules, warned rules)
    let cases: Vec<(Option<Defect>, Vec<&str>, Vec<&str>)> = vec![
        (None, vec![], vec![]),
        (Some(Defect::LeafIsCa), vec!["X-13"], vec![]),
        (Some(Defect::KeyCertSign), vec!["X-14"], vec![]),
        (Some(Defect::CrlSign), vec!["X-14"], vec![]),
        (Some(Defect::NoDigitalSignature), vec!["X-17"], vec![]),
        (Some(Defect::NoKeyUsage), vec!["X-15"], vec![]),
        (Some(Defect::NoUriSan), vec!["X-01"], vec![]),
        (
            Some(Defect::ExtraUriSan("spiffe://example.org/other".into())),
            vec!["X-02"],
            vec![],
        ),
        (
            Some(Defect::UriSan("spiffe://example.org".into())),
            vec!["X-05"],
            vec![],
        ),
        (
            Some(Defect::UriSan("spiffe://example.org/a/../b".into())),
            vec!["X-22"],
            vec![],
        ),
        (Some(Defect::ServerAuthOnly), vec!["X-18"], vec![]),
        (
            Some(Defect::NonCriticalSanWithEmptySubject),
            vec!["X-06"],
            vec![],
        ),
        (Some(Defect::NoBasicConstraints), vec![], vec![]),
        (Some(Defect::NonCriticalKeyUsage), vec![], vec!["X-15"]),
        (Some(Defect::NoEku), vec![], vec!["X-18"]),
    ];
    for (i, (defect, failed, warned)) in cases.into_iter().enumerate() {
        let mut leaf = spec("spiffe://example.org/web");
        if let Some(d) = &defect {
            leaf = leaf.defect(d.clone());
        }
        let svid = ca.issue(&leaf).unwrap();
        let file = s.svid(&format!("leaf-{i}.pem"), &svid, true);
        let run = spiffe(["x509", "inspect", "--output", "json", "--at", DURING, &file]);
        let json = run.json();
        assert_eq!(checks_with(&json, "fail"), failed, "{defect:?}");
        assert_eq!(checks_with(&json, "warn"), warned, "{defect:?}");
        if failed.is_empty() {
            run.expect_code(0);
            assert_eq!(json["profile_valid"], true, "{defect:?}");
        } else {
            run.expect_code(1);
            assert_eq!(json["valid"], false);
            assert_eq!(json["profile_valid"], false, "{defect:?}");
            assert_eq!(json["profile_error"]["rule"], failed[0], "{defect:?}");
        }
    }
}

#[test]
fn a_signing_certificate_that_is_not_a_ca_fails() {
    let s = Scratch::new();
    let root = DevCa::new(td("example.org")).unwrap();
    let bad = root.intermediate(&CaSpec::new().not_ca()).unwrap();
    let svid = bad.issue(&spec("spiffe://example.org/web")).unwrap();
    let file = s.svid("svid.pem", &svid, false);
    let run = spiffe(["x509", "inspect", "--output", "json", &file]);
    run.expect_code(1);
    let json = run.json();
    // The leaf itself is fine; its signer is not.
    assert_eq!(json["profile_valid"], true);
    assert_eq!(json["certificates"][1]["checks"][0]["rule"], "X-07");
    assert_eq!(json["certificates"][1]["checks"][0]["status"], "fail");
}

#[test]
fn der_input_and_unreadable_input() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    let svid = ca.issue(&spec("spiffe://example.org/web")).unwrap();
    let der: Vec<u8> = svid.chain().iter().flat_map(|c| c.to_vec()).collect();
    let file = s.write("chain.der", der);
    let run = spiffe(["x509", "inspect", "--output", "json", &file]);
    run.expect_code(0);
    assert_eq!(run.json()["encoding"], "der");
    assert!(run.json().get("private_key").is_none());

    let not_pem = s.write("key-only.pem", svid.key_pem());
    let run = spiffe(["x509", "inspect", &not_pem]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no certificate found"),
        "{}",
        run.stderr
    );
    let two_keys = s.write(
        "two-keys.pem",
        format!("{}{}{}", svid.chain_pem(), svid.key_pem(), svid.key_pem()),
    );
    let run = spiffe(["x509", "inspect", &two_keys]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("more than one private key"),
        "{}",
        run.stderr
    );
}
