//! `spiffe x509 verify` on certificates minted at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use spiffe_bundle::BundleMap;
use spiffe_svid::issuer::{CaSpec, Defect, DevCa};

fn ca(name: &str) -> DevCa {
    DevCa::new(td(name)).unwrap()
}

#[test]
fn valid_svid_exits_0_with_its_id_and_path() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let svid = ca.issue(&spec("spiffe://example.org/web")).unwrap();
    let chain = s.svid("web.pem", &svid, true);
    let bundle = s.bundle_pem("bundle.pem", &ca);
    let bundle_arg = format!("example.org={bundle}");

    let run = spiffe([
        "x509",
        "verify",
        "--bundle",
        &bundle_arg,
        "--at",
        DURING,
        &chain,
    ]);
    run.expect_code(0);
    assert!(
        run.stdout.starts_with("valid X509-SVID\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("spiffe://example.org/web"));

    let run = spiffe([
        "x509",
        "verify",
        "--bundle",
        &bundle_arg,
        "--at",
        DURING,
        &chain,
        "--output",
        "json",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["spiffe_id"], "spiffe://example.org/web");
    assert_eq!(json["trust_domain"], "example.org");
    assert_eq!(json["verified_at"], DURING);
    assert_eq!(json["expires_at"], "2025-01-02T00:00:00Z");
    assert_eq!(json["path"].as_array().unwrap().len(), 2);
    assert_eq!(json["path"][0]["role"], "leaf");
    assert_eq!(json["path"][1]["role"], "anchor");
    assert_eq!(json["bundles"][0]["trust_domain"], "example.org");
    assert_eq!(json["bundles"][0]["format"], "pem");
    assert_eq!(json["bundles"][0]["x509_authorities"], 1);
    assert!(json.get("error").is_none());
}

#[test]
fn intermediate_chain_and_trust_domain_flag() {
    let s = Scratch::new();
    let root = ca("example.org");
    let intermediate = root.intermediate(&CaSpec::new()).unwrap();
    let svid = intermediate
        .issue(&spec("spiffe://example.org/db"))
        .unwrap();
    let chain = s.svid("db.pem", &svid, false);
    let bundle = s.bundle_pem("bundle.pem", &root);

    let run = spiffe([
        "--output",
        "json",
        "x509",
        "verify",
        "--trust-domain",
        "example.org",
        "--bundle",
        &bundle,
        "--at",
        DURING,
        &chain,
    ]);
    run.expect_code(0);
    let path = run.json()["path"].as_array().unwrap().clone();
    let roles: Vec<&str> = path.iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["leaf", "intermediate", "anchor"]);
}

#[test]
fn time_window_is_checked_at_the_given_instant() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let svid = ca.issue(&spec("spiffe://example.org/web")).unwrap();
    let chain = s.svid("web.pem", &svid, false);
    let bundle = format!("example.org={}", s.bundle_pem("b.pem", &ca));

    // (--at, exit status, error kind)
    let cases = [
        (DURING, 0, None),
        ("2025-01-01T00:00:00Z", 0, None),
        ("2025-01-02T00:00:00Z", 0, None),
        ("2025-01-02T00:00:01Z", 1, Some("expired")),
        ("2025-01-02T01:00:01+01:00", 1, Some("expired")),
        (AFTER, 1, Some("expired")),
        (BEFORE, 1, Some("not_yet_valid")),
    ];
    for (at, code, kind) in cases {
        let run = spiffe([
            "x509", "verify", "--output", "json", "--bundle", &bundle, "--at", at, &chain,
        ]);
        run.expect_code(code);
        let json = run.json();
        assert_eq!(json["error"]["kind"].as_str(), kind, "--at {at}");
        if kind.is_some() {
            assert_eq!(json["error"]["rule"], "X-21");
            assert_eq!(json["spiffe_id"], "spiffe://example.org/web", "claimed ID");
        }
    }

    // The text says when it expired and when it was checked.
    let run = spiffe(["x509", "verify", "--bundle", &bundle, "--at", AFTER, &chain]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(
            "invalid X509-SVID: certificate expired at 2025-01-02T00:00:00Z (verification time \
             2025-01-03T00:00:00Z)"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("rule:         X-21"));
}

#[test]
fn default_time_is_now() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let live = ca
        .issue(&spiffe_svid::issuer::SvidSpec::new(
            id("spiffe://example.org/live"),
            t(now - 3600),
            t(now + 3600),
        ))
        .unwrap();
    let bundle = format!("example.org={}", s.bundle_pem("b.pem", &ca));
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &bundle,
        &s.svid("live.pem", &live, false),
    ])
    .expect_code(0);
    // The fixed-time SVID of the other tests expired long ago.
    let old = ca.issue(&spec("spiffe://example.org/old")).unwrap();
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &bundle,
        &s.svid("old.pem", &old, false),
    ])
    .expect_code(1);
}

#[test]
fn wrong_trust_domain_or_wrong_ca_is_rejected() {
    let s = Scratch::new();
    let a = ca("a.example");
    let b = ca("b.example");
    let other_a = ca("a.example");
    let svid = a.issue(&spec("spiffe://a.example/web")).unwrap();
    let chain = s.svid("web.pem", &svid, false);
    let b_bundle = format!("b.example={}", s.bundle_pem("b.pem", &b));
    // b's root filed as a's bundle: never tried for other trust domains.
    let b_as_a = format!("a.example={}", s.bundle_pem("b-as-a.pem", &b));
    let other = format!("a.example={}", s.bundle_pem("other-a.pem", &other_a));

    // (bundle, kind, rule)
    let cases = [
        (&b_bundle, "no_bundle", "W-12"),
        (&b_as_a, "unknown_issuer", "X-21"),
        (&other, "unknown_issuer", "X-21"),
    ];
    for (bundle, kind, rule) in cases {
        let run = spiffe([
            "x509", "verify", "--output", "json", "--bundle", bundle, "--at", DURING, &chain,
        ]);
        run.expect_code(1);
        let json = run.json();
        assert_eq!(json["valid"], false);
        assert_eq!(json["error"]["kind"], kind, "{bundle}");
        assert_eq!(json["error"]["rule"], rule, "{bundle}");
        assert_eq!(json["trust_domain"], "a.example");
    }

    let run = spiffe([
        "x509", "verify", "--bundle", &b_bundle, "--at", DURING, &chain,
    ]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("invalid X509-SVID: no X.509 bundle found for trust domain"),
        "{}",
        run.stdout
    );
}

#[test]
fn broken_leaf_profiles_fail_with_their_rule() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let bundle = format!("example.org={}", s.bundle_pem("b.pem", &ca));
    // (defect, exit status, kind, rule)
    let cases: Vec<(Defect, i32, Option<&str>, Option<&str>)> = vec![
        (Defect::LeafIsCa, 1, Some("leaf_is_ca"), Some("X-13")),
        (
            Defect::KeyCertSign,
            1,
            Some("leaf_with_key_cert_sign"),
            Some("X-14"),
        ),
        (Defect::CrlSign, 1, Some("leaf_with_crl_sign"), Some("X-14")),
        (
            Defect::NoDigitalSignature,
            1,
            Some("leaf_without_digital_signature"),
            Some("X-17"),
        ),
        (
            Defect::NoKeyUsage,
            1,
            Some("leaf_without_key_usage"),
            Some("X-15"),
        ),
        (Defect::NoUriSan, 1, Some("no_uri_san"), Some("X-01")),
        (
            Defect::ExtraUriSan("https://example.org/web".into()),
            1,
            Some("multiple_uri_sans"),
            Some("X-02"),
        ),
        (
            Defect::UriSan("spiffe://example.org".into()),
            1,
            Some("leaf_id_without_path"),
            Some("X-05"),
        ),
        (
            Defect::UriSan("SPIFFE://example.org/web".into()),
            1,
            Some("invalid_spiffe_id"),
            Some("X-22"),
        ),
        (
            Defect::ServerAuthOnly,
            1,
            Some("leaf_extended_key_usage"),
            Some("X-18"),
        ),
        (
            Defect::NonCriticalSanWithEmptySubject,
            1,
            Some("non_critical_san_with_empty_subject"),
            Some("X-06"),
        ),
        // Allowed variations.
        (Defect::NoBasicConstraints, 0, None, None),
        (Defect::NonCriticalKeyUsage, 0, None, None),
        (Defect::NoEku, 0, None, None),
    ];
    for (i, (defect, code, kind, rule)) in cases.into_iter().enumerate() {
        let svid = ca
            .issue(&spec("spiffe://example.org/web").defect(defect.clone()))
            .unwrap();
        let chain = s.svid(&format!("leaf-{i}.pem"), &svid, false);
        let run = spiffe([
            "x509", "verify", "--output", "json", "--bundle", &bundle, "--at", DURING, &chain,
        ]);
        run.expect_code(code);
        let json = run.json();
        assert_eq!(json["error"]["kind"].as_str(), kind, "{defect:?}");
        assert_eq!(json["error"]["rule"].as_str(), rule, "{defect:?}");
        if code == 1 {
            // The text names the rule too.
            let text = spiffe([
                "x509", "verify", "--bundle", &bundle, "--at", DURING, &chain,
            ]);
            text.expect_code(1);
            assert!(
                text.stdout
                    .contains(&format!("rule:         {}", rule.unwrap())),
                "{defect:?}: {}",
                text.stdout
            );
        }
    }
    // The ID rule under X-22 is reported too.
    let svid = ca
        .issue(
            &spec("spiffe://example.org/web")
                .defect(Defect::UriSan("SPIFFE://example.org/web".into())),
        )
        .unwrap();
    let run = spiffe([
        "x509",
        "verify",
        "--output",
        "json",
        "--bundle",
        &bundle,
        "--at",
        DURING,
        &s.svid("upper.pem", &svid, false),
    ]);
    assert_eq!(run.json()["error"]["id_rule"], "ID-01");
}

#[test]
fn federated_bundles_of_two_trust_domains() {
    let s = Scratch::new();
    let a = ca("a.example");
    let b = ca("b.example");
    let web = s.svid(
        "web.pem",
        &a.issue(&spec("spiffe://a.example/web")).unwrap(),
        false,
    );
    let api = s.svid(
        "api.pem",
        &b.issue(&spec("spiffe://b.example/api")).unwrap(),
        false,
    );

    // 1. Two files with prefixes, PEM and SPIFFE bundle JSON.
    let a_pem = format!("a.example={}", s.bundle_pem("a.pem", &a));
    let b_json = format!("b.example={}", s.bundle_json("b.json", &b));
    // 2. A directory named by trust domain.
    let dir = s.dir("bundles");
    s.bundle_pem("bundles/a.example.pem", &a);
    s.bundle_json("bundles/b.example.json", &b);
    s.write("bundles/.hidden", "ignored");
    let dir = dir.display().to_string();
    // 3. A bundle map, which names its trust domains.
    let map: BundleMap = [
        spiffe_bundle_of(a.bundle(), None),
        spiffe_bundle_of(b.bundle(), None),
    ]
    .into_iter()
    .collect();
    let map = s.write("federation.json", map.to_json());

    let sources: [Vec<&str>; 3] = [vec![&a_pem, &b_json], vec![&dir], vec![&map]];
    for bundles in &sources {
        for (chain, want_td) in [(&web, "a.example"), (&api, "b.example")] {
            let mut args = vec!["--output", "json", "x509", "verify", "--at", DURING];
            for b in bundles {
                args.extend(["--bundle", b]);
            }
            args.push(chain);
            let run = spiffe(&args);
            run.expect_code(0);
            let json = run.json();
            assert_eq!(json["trust_domain"], want_td, "{bundles:?}");
            let tds: Vec<&str> = json["bundles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["trust_domain"].as_str().unwrap())
                .collect();
            assert_eq!(tds, ["a.example", "b.example"], "{bundles:?}");
        }
    }
    // Only a's bundle: b's SVID has no bundle.
    let run = spiffe(["x509", "verify", "--bundle", &a_pem, "--at", DURING, &api]);
    run.expect_code(1);
    // A prefix picks one trust domain out of a bundle map.
    let only_a = format!("a.example={map}");
    spiffe(["x509", "verify", "--bundle", &only_a, "--at", DURING, &web]).expect_code(0);
    spiffe(["x509", "verify", "--bundle", &only_a, "--at", DURING, &api]).expect_code(1);
}

#[test]
fn bundles_of_one_trust_domain_are_merged() {
    let s = Scratch::new();
    let old = ca("example.org");
    let new = ca("example.org");
    let svid = new.issue(&spec("spiffe://example.org/web")).unwrap();
    let chain = s.svid("web.pem", &svid, false);
    let old_arg = format!("example.org={}", s.bundle_pem("old.pem", &old));
    let new_arg = format!("example.org={}", s.bundle_json("new.json", &new));
    spiffe([
        "x509", "verify", "--bundle", &old_arg, "--at", DURING, &chain,
    ])
    .expect_code(1);
    spiffe([
        "x509", "verify", "--bundle", &old_arg, "--bundle", &new_arg, "--at", DURING, &chain,
    ])
    .expect_code(0);
}

#[test]
fn usage_and_input_errors_exit_2() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let chain = s.svid(
        "web.pem",
        &ca.issue(&spec("spiffe://example.org/web")).unwrap(),
        false,
    );
    let pem = s.bundle_pem("bundle.pem", &ca);
    let json = s.bundle_json("bundle.json", &ca);
    let good = format!("example.org={pem}");
    let bad_dir = s.dir("bad");
    s.bundle_pem("bad/Not_A_TD!.pem", &ca);
    let bad_dir = bad_dir.display().to_string();
    let garbage = s.write("garbage.txt", "hello");
    let missing = s.path().join("missing.pem").display().to_string();
    let prefixed_dir = format!("example.org={bad_dir}");

    // (args, a piece of stderr)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["x509", "verify", "--bundle", &pem, &chain],
            "trust domain is unknown",
        ),
        (
            vec!["x509", "verify", "--bundle", &json, &chain],
            "trust domain is unknown",
        ),
        (
            vec![
                "x509",
                "verify",
                "--bundle",
                &good,
                "--at",
                "yesterday",
                &chain,
            ],
            "RFC 3339",
        ),
        (
            vec![
                "x509",
                "verify",
                "--bundle",
                &good,
                "--at",
                "2025-02-30T00:00:00Z",
                &chain,
            ],
            "day is out of range",
        ),
        (vec!["x509", "verify", &chain], "--bundle"),
        (
            vec!["x509", "verify", "--bundle", "Bad.TD=x.pem", &chain],
            "ID-07",
        ),
        (
            vec!["x509", "verify", "--bundle", &bad_dir, &chain],
            "not a valid trust domain",
        ),
        (
            vec!["x509", "verify", "--bundle", &prefixed_dir, &chain],
            "directory",
        ),
        (
            vec!["x509", "verify", "--bundle", &good, &garbage],
            "no certificate found",
        ),
        (
            vec!["x509", "verify", "--bundle", &good, &missing],
            "cannot read",
        ),
        (
            vec![
                "x509",
                "verify",
                "--trust-domain",
                "example.org",
                "--bundle",
                &garbage,
                &chain,
            ],
            "not a trust bundle",
        ),
        (
            vec![
                "x509",
                "verify",
                "--trust-domain",
                "UPPER",
                "--bundle",
                &pem,
                &chain,
            ],
            "ID-07",
        ),
        (
            vec![
                "x509", "verify", "--output", "yaml", "--bundle", &good, &chain,
            ],
            "yaml",
        ),
    ];
    for (args, needle) in cases {
        let run = spiffe(&args);
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn chain_from_standard_input_and_der() {
    let s = Scratch::new();
    let ca = ca("example.org");
    let svid = ca.issue(&spec("spiffe://example.org/web")).unwrap();
    let bundle = format!("example.org={}", s.bundle_pem("b.pem", &ca));
    let run = spiffe_stdin(
        ["x509", "verify", "--bundle", &bundle, "--at", DURING, "-"],
        svid.chain_pem(),
    );
    run.expect_code(0);
    let der = s.write("leaf.der", svid.leaf().as_ref());
    spiffe(["x509", "verify", "--bundle", &bundle, "--at", DURING, &der]).expect_code(0);
    // A DER bundle too.
    let der_bundle = format!("example.org={}", s.write("b.der", ca.bundle().to_der()));
    spiffe([
        "x509",
        "verify",
        "--bundle",
        &der_bundle,
        "--at",
        DURING,
        &der,
    ])
    .expect_code(0);
}
