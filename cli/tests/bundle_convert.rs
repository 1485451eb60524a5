//! `spiffe bundle convert`: PEM <-> SPIFFE bundle JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use spiffe_bundle::{BundleMap, SpiffeBundle, X509Bundle};
use spiffe_svid::issuer::{DevCa, JwtIssuer};

#[test]
fn pem_to_json_and_back_round_trips() {
    let s = Scratch::new();
    let a = DevCa::new(td("example.org")).unwrap();
    let b = DevCa::new(td("example.org")).unwrap();
    let pem_in = format!("{}{}", a.certificate_pem(), b.certificate_pem());
    let pem_file = s.write("in.pem", &pem_in);

    let json = spiffe(["bundle", "convert", &pem_file, "--to", "json"]);
    json.expect_code(0);
    assert!(json.stderr.is_empty(), "{}", json.stderr);
    let doc = SpiffeBundle::parse(td("example.org"), json.stdout.as_bytes()).unwrap();
    assert_eq!(doc.x509_bundle().len(), 2);
    let json_file = s.write("out.json", &json.stdout);

    let pem = spiffe(["bundle", "convert", &json_file, "--to", "pem"]);
    pem.expect_code(0);
    // The same certificates, in the same order.
    let original = X509Bundle::parse_pem(td("example.org"), pem_in.as_bytes()).unwrap();
    let back = X509Bundle::parse_pem(td("example.org"), pem.stdout.as_bytes()).unwrap();
    assert_eq!(original.to_der(), back.to_der());
    // And the text is stable from there on.
    let pem_file2 = s.write("again.pem", &pem.stdout);
    let json2 = spiffe(["bundle", "convert", &pem_file2, "--to", "json"]);
    assert_eq!(json2.stdout, json.stdout);
    let pem2 = spiffe([
        "bundle",
        "convert",
        &s.write("again.json", &json2.stdout),
        "--to",
        "pem",
    ]);
    assert_eq!(pem2.stdout, pem.stdout);

    // Empty standard input is not a bundle; DER is one.
    let run = spiffe_stdin(["bundle", "convert", "-", "--to", "json"], "");
    run.expect_code(2);
    let der = s.write("in.der", original.to_der());
    let from_der = spiffe(["bundle", "convert", &der, "--to", "json"]);
    assert_eq!(from_der.stdout, json.stdout);
}

#[test]
fn json_report_and_out_file() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    let pem = s.write("in.pem", ca.certificate_pem());
    let out = s.path().join("out.json").display().to_string();
    let run = spiffe([
        "bundle",
        "convert",
        &pem,
        "--to",
        "json",
        "--trust-domain",
        "example.org",
        "--sequence",
        "7",
        "--refresh-hint",
        "300",
        "--out",
        &out,
        "--output",
        "json",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["input_format"], "pem");
    assert_eq!(json["output_format"], "json");
    assert_eq!(json["trust_domain"], "example.org");
    assert_eq!(json["x509_authorities"], 1);
    assert_eq!(json["jwt_authorities"], 0);
    assert_eq!(json["dropped_jwt_authorities"], 0);
    assert_eq!(json["out"], out.as_str());
    assert!(json.get("document").is_none());
    let written = std::fs::read(&out).unwrap();
    let bundle = SpiffeBundle::parse(td("example.org"), &written).unwrap();
    assert_eq!(bundle.sequence(), Some(7));
    assert_eq!(bundle.refresh_hint_seconds(), Some(300));

    // Without --out the document is in the report.
    let run = spiffe(["bundle", "convert", &pem, "--to", "pem", "--output", "json"]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["document"], ca.bundle().to_pem());
    assert!(json.get("trust_domain").is_none());
}

#[test]
fn jwt_authorities_are_dropped_from_pem_with_a_note() {
    let s = Scratch::new();
    let ca = DevCa::new(td("example.org")).unwrap();
    let issuer = JwtIssuer::new(td("example.org")).unwrap();
    let bundle = spiffe_bundle_of(ca.bundle(), Some(issuer.bundle()));
    let file = s.write("bundle.json", bundle.to_json());

    let run = spiffe(["bundle", "convert", &file, "--to", "pem"]);
    run.expect_code(0);
    assert_eq!(run.stdout, ca.bundle().to_pem());
    assert!(
        run.stderr.contains("1 JWT authority dropped"),
        "{}",
        run.stderr
    );

    let run = spiffe([
        "bundle", "convert", &file, "--to", "json", "--output", "json",
    ]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["jwt_authorities"], 1);
    assert_eq!(json["input_format"], "spiffe-bundle");
    assert_eq!(json["document"], format!("{}\n", bundle.to_json()));
}

#[test]
fn bundle_maps_need_a_trust_domain_when_they_have_several() {
    let s = Scratch::new();
    let a = DevCa::new(td("a.example")).unwrap();
    let b = DevCa::new(td("b.example")).unwrap();
    let map: BundleMap = [
        spiffe_bundle_of(a.bundle(), None),
        spiffe_bundle_of(b.bundle(), None),
    ]
    .into_iter()
    .collect();
    let file = s.write("map.json", map.to_json());

    let run = spiffe(["bundle", "convert", &file, "--to", "pem"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("a.example, b.example"),
        "{}",
        run.stderr
    );
    let run = spiffe([
        "bundle",
        "convert",
        &file,
        "--to",
        "pem",
        "--trust-domain",
        "b.example",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, b.bundle().to_pem());
    let run = spiffe([
        "bundle",
        "convert",
        &file,
        "--to",
        "pem",
        "--trust-domain",
        "c.example",
    ]);
    run.expect_code(2);
}

#[test]
fn unreadable_input_exits_2() {
    let s = Scratch::new();
    for (name, contents, needle) in [
        ("text.txt", "hello", "not a trust bundle"),
        ("broken.json", "{\"keys\": [", "malformed JSON"),
        ("keyless.json", "{}", "no `keys`"),
        (
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "certificate 0",
        ),
    ] {
        let file = s.write(name, contents);
        let run = spiffe(["bundle", "convert", &file, "--to", "json"]);
        run.expect_code(2);
        assert!(run.stderr.contains(needle), "{name}: {}", run.stderr);
    }
    spiffe(["bundle", "convert", "x.pem", "--to", "yaml"]).expect_code(2);
}
