//! `spiffe jwt inspect|verify` on tokens minted at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use spiffe_bundle::X509Bundle;
use spiffe_svid::issuer::JwtIssuer;

/// An issuer, a token for `spiffe://example.org/web` and audience `api`
/// valid for an hour from now, and the issuer's bundle written as a SPIFFE
/// bundle (`bundle.json`) and as a plain JWKS (`jwks.json`).
struct Setup {
    s: Scratch,
    token: String,
    bundle: String,
    jwks: String,
    now: u64,
}

fn setup() -> Setup {
    let s = Scratch::new();
    let issuer = JwtIssuer::new(td("example.org")).unwrap();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let token = issuer
        .issue(&id("spiffe://example.org/web"), &["api", "other"], expires)
        .unwrap();
    let bundle = spiffe_bundle_of(X509Bundle::empty(td("example.org")), Some(issuer.bundle()));
    let bundle = format!("example.org={}", s.write("bundle.json", bundle.to_json()));
    let jwks = format!(
        "example.org={}",
        s.write("jwks.json", issuer.bundle().to_jwks())
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Setup {
        s,
        token,
        bundle,
        jwks,
        now,
    }
}

fn rfc3339(secs: u64) -> String {
    // Through the binary's own formatter would be circular; compute here.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (1970-based), H. Hinnant.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn valid_token_exits_0_with_its_claims() {
    let x = setup();
    for bundle in [&x.bundle, &x.jwks] {
        let run = spiffe([
            "jwt",
            "verify",
            "--output",
            "json",
            "--bundle",
            bundle,
            "--audience",
            "api",
            &x.token,
        ]);
        run.expect_code(0);
        let json = run.json();
        assert_eq!(json["valid"], true);
        assert_eq!(json["spiffe_id"], "spiffe://example.org/web");
        assert_eq!(json["trust_domain"], "example.org");
        assert_eq!(json["audience"], serde_json::json!(["api", "other"]));
        assert_eq!(json["expected_audiences"], serde_json::json!(["api"]));
        assert_eq!(json["algorithm"], "ES256");
        assert!(json["key_id"].is_string());
        assert_eq!(json["claims"]["sub"], "spiffe://example.org/web");
        assert_eq!(json["leeway_seconds"], 60);
        assert!(json.get("error").is_none());
    }
    let bundle_format = spiffe([
        "jwt",
        "verify",
        "--output",
        "json",
        "--bundle",
        &x.jwks,
        "--audience",
        "api",
        &x.token,
    ])
    .json()["bundles"][0]["format"]
        .clone();
    assert_eq!(bundle_format, "jwks");

    let run = spiffe([
        "jwt",
        "verify",
        "--bundle",
        &x.bundle,
        "--audience",
        "x",
        "--audience",
        "other",
        &x.token,
    ]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("valid JWT-SVID\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("SPIFFE ID:    spiffe://example.org/web")
    );
}

#[test]
fn token_from_a_file_or_standard_input() {
    let x = setup();
    let file = x.s.write("token.jwt", format!("{}\n", x.token));
    spiffe([
        "jwt",
        "verify",
        "--bundle",
        &x.bundle,
        "--audience",
        "api",
        &file,
    ])
    .expect_code(0);
    spiffe_stdin(
        [
            "jwt",
            "verify",
            "--bundle",
            &x.bundle,
            "--audience",
            "api",
            "-",
        ],
        &x.token,
    )
    .expect_code(0);
}

/// `jwt verify` arguments of a table row: bundle, audience, `--at`, token.
type Args<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

#[test]
fn invalid_tokens_exit_1_with_the_reason() {
    let x = setup();
    let later = rfc3339(x.now + 2 * 3600);
    let within_leeway = rfc3339(x.now + 3600 + 30);
    // Change the first signature character: all six of its bits are data.
    let sig_start = x.token.rfind('.').unwrap() + 1;
    let first = &x.token[sig_start..=sig_start];
    let tampered = format!(
        "{}{}{}",
        &x.token[..sig_start],
        if first == "A" { "B" } else { "A" },
        &x.token[sig_start + 1..]
    );
    let other_issuer = JwtIssuer::new(td("example.org")).unwrap();
    let other_bundle = spiffe_bundle_of(
        X509Bundle::empty(td("example.org")),
        Some(other_issuer.bundle()),
    );
    let other = format!(
        "example.org={}",
        x.s.write("other.json", other_bundle.to_json())
    );
    let foreign = format!(
        "other.org={}",
        x.s.write("foreign.json", other_bundle.to_json())
    );

    // (bundle, audience, --at, token) and the failure (kind, rule), if any.
    let ok = None;
    let cases: Vec<(Args<'_>, Option<(&str, &str)>)> = vec![
        ((&x.bundle, "api", None, &x.token), ok),
        (
            (&x.bundle, "nope", None, &x.token),
            Some(("audience_mismatch", "J-08")),
        ),
        (
            (&x.bundle, "api", Some(&later), &x.token),
            Some(("expired", "J-11")),
        ),
        ((&x.bundle, "api", Some(&within_leeway), &x.token), ok),
        (
            (&x.bundle, "api", None, &tampered),
            Some(("bad_signature", "J-12")),
        ),
        (
            (&other, "api", None, &x.token),
            Some(("unknown_key_id", "J-18")),
        ),
        (
            (&foreign, "api", None, &x.token),
            Some(("no_bundle", "J-18")),
        ),
    ];
    for ((bundle, aud, at, token), failure) in cases {
        let mut args = vec!["jwt", "verify", "--output", "json"];
        args.extend(["--bundle", bundle, "--audience", aud]);
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        args.push(token);
        let run = spiffe(&args);
        run.expect_code(if failure.is_some() { 1 } else { 0 });
        let json = run.json();
        assert_eq!(
            json["error"]["kind"].as_str(),
            failure.map(|f| f.0),
            "{args:?}"
        );
        assert_eq!(
            json["error"]["rule"].as_str(),
            failure.map(|f| f.1),
            "{args:?}"
        );
        if failure.is_some() {
            assert_eq!(json["valid"], false);
            // The subject the token claims, for context.
            assert_eq!(json["spiffe_id"], "spiffe://example.org/web");
        }
    }

    let run = spiffe([
        "jwt",
        "verify",
        "--bundle",
        &x.bundle,
        "--audience",
        "api",
        "--at",
        &later,
        &x.token,
    ]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("invalid JWT-SVID: token expired at"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("rule:         J-11"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("token claims: spiffe://example.org/web"),
        "{}",
        run.stdout
    );

    // A zero leeway makes the grace period go away.
    spiffe([
        "jwt",
        "verify",
        "--bundle",
        &x.bundle,
        "--audience",
        "api",
        "--leeway",
        "0",
        "--at",
        &within_leeway,
        &x.token,
    ])
    .expect_code(1);
}

#[test]
fn verify_usage_errors_exit_2() {
    let x = setup();
    for args in [
        vec!["jwt", "verify", "--bundle", &x.bundle, &x.token],
        vec![
            "jwt",
            "verify",
            "--bundle",
            &x.bundle,
            "--audience",
            "",
            &x.token,
        ],
        vec!["jwt", "verify", "--audience", "api", &x.token],
        vec![
            "jwt",
            "verify",
            "--bundle",
            &x.bundle,
            "--audience",
            "api",
            "--at",
            "now",
            &x.token,
        ],
    ] {
        let run = spiffe(&args);
        run.expect_code(2);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn inspect_shows_header_and_claims_without_verifying() {
    let x = setup();
    let run = spiffe(["jwt", "inspect", "--output", "json", &x.token]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["signature_verified"], false);
    assert_eq!(json["valid"], true);
    assert_eq!(json["header"]["alg"], "ES256");
    assert_eq!(json["header"]["typ"], "JWT");
    assert_eq!(json["claims"]["sub"], "spiffe://example.org/web");
    assert_eq!(json["claims"]["aud"], serde_json::json!(["api", "other"]));
    assert_eq!(json["spiffe_id"], "spiffe://example.org/web");
    assert_eq!(json["signature_bytes"], 64);
    assert_eq!(json["expired"], false);
    assert!(json["expires_at"].is_string());
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "pass"),
        "{json:#}"
    );

    let later = rfc3339(x.now + 2 * 3600);
    let run = spiffe([
        "jwt", "inspect", "--output", "json", "--at", &later, &x.token,
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["expired"], true);

    let text = spiffe(["jwt", "inspect", &x.token]);
    text.expect_code(0);
    assert!(
        text.stdout.starts_with("JWT (signature NOT verified"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("\"sub\": \"spiffe://example.org/web\""),
        "{}",
        text.stdout
    );
}

fn unsigned(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode([0u8; 64])
    )
}

/// header, claims, exit status, failed rules, warned rules.
type FormatCase<'a> = (&'a str, &'a str, i32, Vec<&'a str>, Vec<&'a str>);

#[test]
fn inspect_format_checks() {
    let good_claims = r#"{"sub":"spiffe://example.org/web","aud":"api","exp":1900000000}"#;
    let good_header = r#"{"alg":"ES256","kid":"k","typ":"JWT"}"#;
    // (header, claims, exit status, failed rules, warned rules)
    let cases: Vec<FormatCase<'_>> = vec![
        (good_header, good_claims, 0, vec![], vec![]),
        (
            r#"{"alg":"none"}"#,
            good_claims,
            1,
            vec!["J-03"],
            vec!["J-04"],
        ),
        (
            r#"{"alg":"HS256","kid":"k"}"#,
            good_claims,
            1,
            vec!["J-03"],
            vec![],
        ),
        (
            r#"{"alg":"ES256","kid":"k","jku":"x"}"#,
            good_claims,
            1,
            vec!["J-02"],
            vec![],
        ),
        (
            r#"{"alg":"ES256","kid":"k","typ":"at+jwt"}"#,
            good_claims,
            1,
            vec!["J-05"],
            vec![],
        ),
        (r#"{"alg":"ES256"}"#, good_claims, 0, vec![], vec!["J-04"]),
        (
            good_header,
            r#"{"sub":"spiffe://example.org/a//b","aud":"api","exp":1900000000}"#,
            1,
            vec!["J-06"],
            vec![],
        ),
        (
            good_header,
            r#"{"sub":"spiffe://example.org/web","exp":1900000000}"#,
            1,
            vec!["J-07"],
            vec![],
        ),
        (
            good_header,
            r#"{"sub":"spiffe://example.org/web","aud":"api"}"#,
            1,
            vec!["J-10"],
            vec![],
        ),
        (
            good_header,
            r#"{"sub":"spiffe://example.org/web","aud":"api","exp":"soon"}"#,
            1,
            vec!["J-10"],
            vec![],
        ),
    ];
    for (header, claims, code, failed, warned) in cases {
        let token = unsigned(header, claims);
        let run = spiffe(["jwt", "inspect", "--output", "json", &token]);
        run.expect_code(code);
        let json = run.json();
        let with = |status: &str| -> Vec<String> {
            json["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["status"] == status)
                .map(|c| c["rule"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(with("fail"), failed, "{header} {claims}");
        assert_eq!(with("warn"), warned, "{header} {claims}");
    }
}

#[test]
fn inspect_rejects_what_is_not_a_jwt() {
    for token in [
        "not-a-token",
        "a.b",
        "a.b.c.d.e",
        "!!!.e30.AA",
        "W10.e30.AA", // header `[]`
    ] {
        let run = spiffe(["jwt", "inspect", token]);
        run.expect_code(2);
        assert!(run.stderr.contains("not a JWT"), "{token}: {}", run.stderr);
    }
}
