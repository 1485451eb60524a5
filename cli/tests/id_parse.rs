//! `spiffe id parse`: every kind of failure, with its rule and position.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn valid_ids_print_their_parts() {
    let run = spiffe(["id", "parse", "spiffe://example.org/ns/prod/sa/web"]);
    run.expect_code(0);
    for needle in [
        "valid SPIFFE ID",
        "trust domain:    example.org",
        "path:            /ns/prod/sa/web",
        "segments (4):    ns, prod, sa, web",
    ] {
        assert!(run.stdout.contains(needle), "{needle}:\n{}", run.stdout);
    }

    let run = spiffe([
        "id",
        "parse",
        "--output",
        "json",
        "spiffe://example.org/a/b",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["input"], "spiffe://example.org/a/b");
    assert_eq!(json["spiffe_id"]["trust_domain"], "example.org");
    assert_eq!(json["spiffe_id"]["path"], "/a/b");
    assert_eq!(json["spiffe_id"]["segments"], serde_json::json!(["a", "b"]));
    assert_eq!(json["spiffe_id"]["trust_domain_id"], false);
    assert!(json.get("error").is_none());
    assert!(json.get("istio").is_none());

    let run = spiffe(["id", "parse", "--output", "json", "spiffe://example.org"]);
    run.expect_code(0);
    assert_eq!(run.json()["spiffe_id"]["trust_domain_id"], true);
    assert_eq!(run.json()["spiffe_id"]["segments"], serde_json::json!([]));
}

#[test]
fn each_broken_rule_is_named_with_its_position() {
    let long_td = format!("spiffe://{}/a", "a".repeat(256));
    let long_id = format!("spiffe://example.org/{}", "a".repeat(2048));
    // (input, rule, byte index)
    let cases: Vec<(&str, &str, Option<u64>)> = vec![
        ("", "ID-01", None),
        ("http://example.org/a", "ID-01", None),
        ("SPIFFE://example.org/a", "ID-01", None),
        ("spiffe:/example.org/a", "ID-01", None),
        ("spiffe://", "ID-02", None),
        ("spiffe:///a", "ID-02", None),
        ("spiffe://user@example.org/a", "ID-05", Some(13)),
        ("spiffe://example.org:8080/a", "ID-06", Some(20)),
        ("spiffe://Example.org/a", "ID-07", Some(9)),
        ("spiffe://exa$mple.org/a", "ID-08", Some(12)),
        ("spiffe://ex%41mple.org/a", "ID-09", Some(11)),
        ("spiffe://example.org/a?x=1", "ID-03", Some(22)),
        ("spiffe://example.org/a#frag", "ID-04", Some(22)),
        ("spiffe://example.org/a%20b", "ID-12", Some(22)),
        ("spiffe://example.org/a//b", "ID-13", Some(23)),
        ("spiffe://example.org/a/./b", "ID-14", Some(23)),
        ("spiffe://example.org/a/../b", "ID-14", Some(23)),
        ("spiffe://example.org/a/", "ID-15", Some(22)),
        ("spiffe://example.org/", "ID-15", Some(20)),
        ("spiffe://example.org/a b", "ID-16", Some(22)),
        ("spiffe://example.org/caf\u{e9}", "ID-16", Some(24)),
        (&long_id, "ID-18", None),
        (&long_td, "ID-20", None),
    ];
    for (input, rule, index) in cases {
        let run = spiffe(["id", "parse", "--output", "json", "--", input]);
        run.expect_code(1);
        let json = run.json();
        assert_eq!(json["valid"], false, "{input}");
        assert_eq!(json["input"], input);
        assert_eq!(json["error"]["rule"], rule, "{input}");
        assert_eq!(json["error"]["index"].as_u64(), index, "{input}");
        assert!(!json["error"]["message"].as_str().unwrap().is_empty());
        assert!(json.get("spiffe_id").is_none(), "{input}");

        let text = spiffe(["id", "parse", "--", input]);
        text.expect_code(1);
        assert!(
            text.stdout.starts_with("invalid SPIFFE ID: "),
            "{}",
            text.stdout
        );
        assert!(
            text.stdout.contains(&format!("rule:   {rule}")),
            "{}",
            text.stdout
        );
    }
}

#[test]
fn text_points_at_the_offending_byte() {
    let run = spiffe(["id", "parse", "spiffe://example.org/a//b"]);
    run.expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let input_line = lines.iter().find(|l| l.contains("input:")).unwrap();
    let caret_line = lines.iter().find(|l| l.contains("^ byte 23")).unwrap();
    let caret_col = caret_line.find('^').unwrap();
    let id_col = input_line.find("spiffe://").unwrap();
    assert_eq!(caret_col - id_col, 23);
}

#[test]
fn istio_identities() {
    let run = spiffe([
        "id",
        "parse",
        "--istio",
        "--output",
        "json",
        "spiffe://cluster.local/ns/istio-system/sa/istiod",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["istio"]["namespace"], "istio-system");
    assert_eq!(json["istio"]["service_account"], "istiod");
    assert_eq!(
        json["istio"]["principal"],
        "cluster.local/ns/istio-system/sa/istiod"
    );
    assert_eq!(json["istio"]["kubernetes_names_valid"], true);

    let text = spiffe([
        "id",
        "parse",
        "--istio",
        "spiffe://cluster.local/ns/prod/sa/web",
    ]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("namespace:       prod"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("service account: web"),
        "{}",
        text.stdout
    );

    // Valid for Istio, not a Kubernetes name: a warning, still exit 0.
    let run = spiffe([
        "id",
        "parse",
        "--istio",
        "--output",
        "json",
        "spiffe://cluster.local/ns/Prod/sa/web",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["istio"]["kubernetes_names_valid"], false);
    assert_eq!(json["istio"]["kubernetes_names_error"]["rule"], "K8S");

    // (input, rule): the SPIFFE rule first, then the Istio shape.
    for (input, rule) in [
        ("spiffe://cluster.local/ns/prod/sa", "ISTIO"),
        ("spiffe://cluster.local/ns/prod/sa/web/extra", "ISTIO"),
        ("spiffe://cluster.local/namespace/prod/sa/web", "ISTIO"),
        ("spiffe://cluster.local", "ISTIO"),
        ("spiffe://cluster.local/ns//sa/web", "ID-13"),
    ] {
        let run = spiffe(["id", "parse", "--istio", "--output", "json", input]);
        run.expect_code(1);
        let json = run.json();
        assert_eq!(json["error"]["rule"], rule, "{input}");
        // A valid SPIFFE ID of another shape still shows its parts.
        assert_eq!(json.get("spiffe_id").is_some(), rule == "ISTIO", "{input}");
    }
    let text = spiffe(["id", "parse", "--istio", "spiffe://cluster.local/a"]);
    text.expect_code(1);
    assert!(
        text.stdout.starts_with("not an Istio identity: "),
        "{}",
        text.stdout
    );
}

#[test]
fn help_documents_exit_statuses() {
    for args in [
        vec!["--help"],
        vec!["id", "parse", "--help"],
        vec!["x509", "inspect", "--help"],
        vec!["x509", "verify", "--help"],
        vec!["jwt", "inspect", "--help"],
        vec!["jwt", "verify", "--help"],
        vec!["bundle", "convert", "--help"],
    ] {
        let run = spiffe(&args);
        run.expect_code(0);
        assert!(run.stdout.contains("Exit status:"), "{args:?}");
        assert!(run.stdout.contains("2  usage or input error"), "{args:?}");
    }
    let run = spiffe(["id", "parse"]);
    run.expect_code(2);
    let run = spiffe::<[&str; 0], &str>([]);
    run.expect_code(2);
}
