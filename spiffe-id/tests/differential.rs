//! Differential test against the `spiffe` crate (0.19) on generated inputs.
//!
//! Where the two parsers disagree, the disagreement must be one the SPIFFE ID
//! specification decides, and our side must follow the specification:
//!
//! | disagreement | rule that decides | `spiffe` 0.19 | this crate |
//! |---|---|---|---|
//! | uppercase letters in the scheme or trust domain | ID-07 (the trust domain MUST be lowercase; see the crate docs on case) | lowercases and accepts | rejects |
//! | an ID over 2048 bytes | ID-18/ID-19 (support up to 2048, do not generate more; the crate docs record the cap) | accepts | rejects |
//! | a trust domain taken from an ID with an invalid path (`spiffe://td/`) | ID-03, ID-04, ID-12 to ID-16: the input is not a SPIFFE ID (go-spiffe agrees with us) | ignores the path | rejects |
//!
//! Any other disagreement fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use spiffe_id::{SpiffeId, TrustDomain};

/// The spec rules under which the two parsers may disagree on `input`.
fn spec_rules_for_disagreement(input: &str) -> Vec<&'static str> {
    let mut rules = Vec::new();
    if input.len() > spiffe_id::MAX_ID_LEN {
        rules.push("ID-18");
    }
    // Uppercase in the scheme or the trust domain (the authority). Our error
    // for an uppercase scheme is the scheme rule, ID-01.
    if let Some((scheme, rest)) = input.split_once("://") {
        let td = rest.split('/').next().unwrap_or("");
        if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
            rules.push("ID-01");
        }
        if td.bytes().any(|b| b.is_ascii_uppercase()) {
            rules.push("ID-07");
        }
    }
    rules
}

fn compare(input: &str) -> Result<(), TestCaseError> {
    let ours = SpiffeId::parse(input);
    let theirs = spiffe::SpiffeId::new(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(a.trust_domain_name(), b.trust_domain().as_str());
            prop_assert_eq!(a.path(), b.path());
            prop_assert_eq!(a.to_string(), b.to_string());
        }
        (Err(_), Err(_)) => {}
        (Err(ours), Ok(_)) => {
            let rules = spec_rules_for_disagreement(input);
            prop_assert!(
                rules.contains(&ours.rule()),
                "we reject {:?} ({}, rule {}) and `spiffe` accepts it; the spec rules that may decide: {:?}",
                input,
                ours,
                ours.rule(),
                rules
            );
        }
        (Ok(_), Err(theirs)) => {
            prop_assert!(
                false,
                "we accept {:?} and `spiffe` rejects it: {:?}",
                input,
                theirs
            );
        }
    }
    // Trust domains: same verdicts, with the same exceptions, plus one: a
    // trust domain taken from an ID whose path is invalid. `spiffe` ignores
    // the path; go-spiffe and this crate reject the ID (ID-03, ID-04,
    // ID-12 to ID-16).
    let ours = TrustDomain::parse(input);
    let theirs = spiffe::TrustDomain::new(input);
    match (&ours, &theirs) {
        (Err(e), Ok(_)) => {
            let path_rule = input.contains("://")
                && matches!(
                    e.rule(),
                    "ID-03" | "ID-04" | "ID-12" | "ID-13" | "ID-14" | "ID-15" | "ID-16"
                );
            prop_assert!(
                path_rule
                    || !spec_rules_for_disagreement(input).is_empty()
                    || !spec_rules_for_disagreement(&format!("spiffe://{input}")).is_empty(),
                "trust domain {:?}: we reject ({}), `spiffe` accepts, no spec rule decides",
                input,
                e
            );
        }
        (Ok(_), Err(theirs)) => {
            prop_assert!(
                false,
                "trust domain {:?}: we accept, `spiffe` rejects: {:?}",
                input,
                theirs
            );
        }
        _ => {}
    }
    Ok(())
}

fn inputs() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        8 => Just("spiffe://".to_owned()),
        1 => Just("SPIFFE://".to_owned()),
        1 => Just("Spiffe://".to_owned()),
        1 => Just("spiffe:/".to_owned()),
        1 => Just("https://".to_owned()),
        1 => Just(String::new()),
    ];
    let td = prop_oneof![
        6 => "[a-z0-9._-]{1,20}",
        2 => "[a-zA-Z0-9._-]{1,20}",
        1 => "[a-z0-9:@%\\[\\]?#]{0,10}",
        1 => "[a-z]{250,260}",
    ];
    let segment = prop_oneof![
        8 => "[a-zA-Z0-9._-]{1,12}",
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => "[a-z%?#~:+ ]{1,4}",
        1 => any::<char>().prop_map(String::from),
    ];
    let path = prop_oneof![
        8 => prop::collection::vec(segment, 0..8).prop_map(|s| s.iter().map(|x| format!("/{x}")).collect::<String>()),
        1 => Just("/".to_owned()),
        1 => "/[a-z]{2040,2060}",
    ];
    (scheme, td, path).prop_map(|(s, t, p)| format!("{s}{t}{p}"))
}

#[test]
fn agrees_with_the_spiffe_crate_except_where_the_spec_decides() {
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        ..Config::default()
    });
    runner.run(&inputs(), |input| compare(&input)).unwrap();
}

#[test]
fn known_disagreements_are_the_documented_ones() {
    // ID-07: the crates differ on case, and we follow the MUST.
    for input in ["spiffe://Example.org/w", "SPIFFE://example.org/w"] {
        assert!(SpiffeId::parse(input).is_err());
        assert!(spiffe::SpiffeId::new(input).is_ok());
        assert!(!spec_rules_for_disagreement(input).is_empty());
    }
    // ID-18/19: over 2048 bytes.
    let long = format!("spiffe://example.org/{}", "a".repeat(2100));
    assert!(SpiffeId::parse(&long).is_err());
    assert!(spiffe::SpiffeId::new(&long).is_ok());
    // Everything in the checklist's main table otherwise agrees.
    for input in [
        "spiffe://example.org/a//b",
        "spiffe://example.org/",
        "spiffe://example.org:80/w",
        "spiffe://example.org/%41",
        "spiffe://example.org/ns/default/sa/web",
    ] {
        compare(input).unwrap();
    }
}
