//! One test per bundle rule (checklist §1.2 X-23..X-28, §1.3 J-15..J-17,
//! §1.4 B-01..B-11) and per edge case of §5.2, in both modes where they
//! differ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use spiffe_bundle::{
    BundleError, IgnoreReason, IgnoredEntry, Mode, ParseOptions, SpiffeBundle, X509Authority,
};

fn lenient(json: &[u8]) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::parse(td(), json)
}

fn strict(json: &[u8]) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::parse_with(td(), json, &ParseOptions::strict())
}

fn report(json: &[u8]) -> Vec<IgnoredEntry> {
    SpiffeBundle::parse_with_report(td(), json, &ParseOptions::default())
        .unwrap()
        .1
}

/// A bundle in the shape SPIRE serves on a federation endpoint.
fn spire_shaped() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "keys": [
            x509_entry(&ca_ec256()),
            x509_entry(&ca_rsa()),
            jwt_entry("C6vs25welZOx6WksNYfbMfiw9l96pMnD", &jwt_key_p256()),
            jwt_entry("rsa-1", &jwt_key_rsa()),
        ],
        "spiffe_refresh_hint": 300,
        "spiffe_sequence": 12
    }))
    .unwrap()
}

// ---- B: SPIFFE_Trust_Domain_and_Bundle.md ---------------------------------

#[test]
fn b_01_bundle_carries_its_trust_domain() {
    let b = lenient(&spire_shaped()).unwrap();
    assert_eq!(b.trust_domain().as_str(), "example.org");
    assert_eq!(b.x509_bundle().trust_domain(), &td());
    assert_eq!(b.jwt_bundle().trust_domain(), &td());
}

#[test]
fn b_02_parses_a_jwk_set_in_spire_shape() {
    for parse in [lenient, strict] {
        let b = parse(&spire_shaped()).unwrap();
        assert_eq!(b.x509_bundle().len(), 2);
        assert_eq!(b.jwt_bundle().len(), 2);
        assert_eq!(b.sequence(), Some(12));
        assert_eq!(b.refresh_hint_seconds(), Some(300));
        assert_eq!(b.refresh_hint(), Some(std::time::Duration::from_secs(300)));
    }
}

#[test]
fn b_03_ignores_extra_top_level_members() {
    let json = serde_json::to_vec(&json!({
        "keys": [x509_entry(&ca_ec256())],
        "spiffe_extra": {"nested": [1, 2, 3]},
        "other": null
    }))
    .unwrap();
    for parse in [lenient, strict] {
        assert_eq!(parse(&json).unwrap().x509_bundle().len(), 1);
    }
}

#[test]
fn b_04_sequence_is_parsed_as_u64() {
    let json = br#"{"keys":[],"spiffe_sequence":4294967296}"#;
    assert_eq!(lenient(json).unwrap().sequence(), Some(4_294_967_296));
    assert_eq!(lenient(br#"{"keys":[]}"#).unwrap().sequence(), None);
}

#[test]
fn b_05_refresh_hint_is_integer_seconds() {
    assert_eq!(
        lenient(br#"{"keys":[],"spiffe_refresh_hint":60}"#)
            .unwrap()
            .refresh_hint(),
        Some(std::time::Duration::from_secs(60))
    );
    for bad in [r#"1.5"#, r#""60""#, r#"true"#, r#"9223372036854775808"#] {
        let json = format!(r#"{{"keys":[],"spiffe_refresh_hint":{bad}}}"#);
        assert!(
            matches!(
                lenient(json.as_bytes()),
                Err(BundleError::InvalidTopLevelMember {
                    member: "spiffe_refresh_hint",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn b_06_rejects_missing_keys() {
    for json in [
        &br#"{}"#[..],
        br#"{"spiffe_sequence":1,"spiffe_refresh_hint":60}"#,
    ] {
        for parse in [lenient, strict] {
            assert_eq!(parse(json), Err(BundleError::MissingKeys));
        }
    }
}

#[test]
fn b_06_rejects_keys_not_array() {
    for (json, found) in [
        (&br#"{"keys":{}}"#[..], "an object"),
        (br#"{"keys":"[]"}"#, "a string"),
        (br#"{"keys":1}"#, "a number"),
    ] {
        assert_eq!(lenient(json), Err(BundleError::KeysNotArray { found }));
    }
}

#[test]
fn b_07_unknown_kty_or_use_does_not_fail_the_bundle() {
    let json = doc(vec![
        json!({"kty": "foo", "use": "jwt-svid", "kid": "a"}),
        json!({"kty": "EC", "use": "foo"}),
        x509_entry(&ca_ec256()),
    ]);
    let b = lenient(&json).unwrap();
    assert_eq!(b.x509_bundle().len(), 1);
    assert!(b.jwt_bundle().is_empty());
}

#[test]
fn b_08_empty_keys_is_valid_and_revokes_everything() {
    for parse in [lenient, strict] {
        let b = parse(br#"{"keys":[]}"#).unwrap();
        assert!(b.is_empty());
    }
}

#[test]
fn b_09_no_usable_key_after_filtering_is_empty() {
    let json = doc(vec![
        json!({"kty": "EC", "use": "sig"}),
        json!({"use": "x509-svid", "kty": "RSA"}),
    ]);
    assert!(lenient(&json).unwrap().is_empty());
}

#[test]
fn b_10_missing_kty_ignored_lenient_rejected_strict() {
    let entry = without(x509_entry(&ca_ec256()), "kty");
    let json = doc(vec![entry.clone()]);
    assert!(lenient(&json).unwrap().is_empty());
    assert_eq!(
        report(&json),
        vec![IgnoredEntry {
            index: 0,
            reason: IgnoreReason::UnknownKty(None)
        }]
    );
    assert_eq!(
        strict(&json),
        Err(BundleError::UnknownKty {
            index: 0,
            kty: None
        })
    );
}

#[test]
fn b_11_use_is_case_sensitive_and_required() {
    let json = doc(vec![
        without(x509_entry(&ca_ec256()), "use"),
        with(x509_entry(&ca_ec256()), "use", json!("X509-SVID")),
        with(jwt_entry("k", &jwt_key_p256()), "use", json!("JWT-SVID")),
    ]);
    for parse in [lenient, strict] {
        assert!(parse(&json).unwrap().is_empty());
    }
    assert_eq!(
        report(&json)
            .into_iter()
            .map(|e| e.reason)
            .collect::<Vec<_>>(),
        vec![
            IgnoreReason::MissingUse,
            IgnoreReason::UnknownUse("X509-SVID".into()),
            IgnoreReason::UnknownUse("JWT-SVID".into()),
        ]
    );
}

// ---- X: X509-SVID.md §6 ---------------------------------------------------

#[test]
fn x_23_x509_svid_entry_is_an_authority() {
    let cert = ca_ec256();
    let b = lenient(&doc(vec![x509_entry(&cert)])).unwrap();
    assert_eq!(b.x509_bundle().authorities()[0].der().as_ref(), &cert[..]);
    assert!(b.jwt_bundle().is_empty());
}

#[test]
fn x_24_x509_entry_with_kid_is_accepted_and_kid_ignored() {
    let json = doc(vec![with(x509_entry(&ca_ec256()), "kid", json!("x"))]);
    for parse in [lenient, strict] {
        let b = parse(&json).unwrap();
        assert_eq!(b.x509_bundle().len(), 1);
        assert!(b.jwt_bundle().is_empty());
    }
}

#[test]
fn x_25_x5c_is_standard_base64() {
    let cert = ca_ec256();
    // URL-safe alphabet or missing padding is refused.
    let url = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &cert);
    let json = doc(vec![with(x509_entry(&cert), "x5c", json!([url]))]);
    match lenient(&json) {
        Err(BundleError::InvalidMember {
            index: 0, member, ..
        }) => assert_eq!(member, "x5c[0]"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn x_26_ignores_missing_or_empty_x5c() {
    for entry in [
        without(x509_entry(&ca_ec256()), "x5c"),
        with(x509_entry(&ca_ec256()), "x5c", json!([])),
        with(x509_entry(&ca_ec256()), "x5c", json!(null)),
    ] {
        let json = doc(vec![entry, x509_entry(&ca_rsa())]);
        let b = lenient(&json).unwrap();
        assert_eq!(b.x509_bundle().len(), 1, "the rest of the bundle is used");
        assert_eq!(report(&json)[0].reason, IgnoreReason::MissingX5c);
        assert_eq!(
            strict(&json),
            Err(BundleError::X5cCount { index: 0, count: 0 })
        );
    }
}

#[test]
fn x_27_uses_first_x5c() {
    let first = ca_ec256();
    // The second value is not even valid base64: it is never decoded.
    let json = doc(vec![with(
        x509_entry(&first),
        "x5c",
        json!([b64(&first), "!!not base64!!", b64(&ca_rsa())]),
    )]);
    let b = lenient(&json).unwrap();
    assert_eq!(b.x509_bundle().len(), 1);
    assert_eq!(b.x509_bundle().authorities()[0].der().as_ref(), &first[..]);
    assert_eq!(
        strict(&json),
        Err(BundleError::X5cCount { index: 0, count: 3 })
    );
}

#[test]
fn x_28_x509_authorities_are_the_union_of_entries() {
    let (a, b) = (ca_ec256(), ca_ec384());
    let json = doc(vec![
        x509_entry(&a),
        jwt_entry("k", &jwt_key_p256()),
        x509_entry(&b),
        x509_entry(&a),
    ]);
    let bundle = lenient(&json).unwrap();
    let ders: Vec<&[u8]> = bundle
        .x509_bundle()
        .authorities()
        .iter()
        .map(|x| x.der().as_ref())
        .collect();
    assert_eq!(ders, vec![&a[..], &b[..]], "repeats are kept once");
    let no_x509 = lenient(&doc(vec![jwt_entry("k", &jwt_key_p256())])).unwrap();
    assert!(no_x509.x509_bundle().is_empty());
}

// ---- J: JWT-SVID.md §6 ----------------------------------------------------

#[test]
fn j_15_jwt_svid_entries_are_jwt_authorities() {
    let key = jwt_key_p384();
    let b = lenient(&doc(vec![jwt_entry("k384", &key)])).unwrap();
    let a = b.jwt_bundle().get("k384").unwrap();
    assert_eq!(a.public_key(), &key);
    assert!(b.x509_bundle().is_empty());
}

#[test]
fn j_16_jwt_entry_without_kid_ignored_lenient_rejected_strict() {
    for entry in [
        without(jwt_entry("k", &jwt_key_p256()), "kid"),
        jwt_entry("", &jwt_key_p256()),
    ] {
        let json = doc(vec![x509_entry(&ca_ec256()), entry]);
        let b = lenient(&json).unwrap();
        assert!(b.jwt_bundle().is_empty());
        assert_eq!(b.x509_bundle().len(), 1);
        assert_eq!(report(&json)[0].reason, IgnoreReason::MissingKid);
        assert_eq!(strict(&json), Err(BundleError::MissingKid { index: 1 }));
    }
}

#[test]
fn j_17_only_jwt_svid_keys_are_extracted() {
    let json = doc(vec![
        jwt_entry("a", &jwt_key_p256()),
        with(jwt_entry("b", &jwt_key_p256()), "use", json!("sig")),
        without(jwt_entry("c", &jwt_key_p256()), "use"),
        with(jwt_entry("d", &jwt_key_p256()), "use", json!("wit-svid")),
    ]);
    let b = lenient(&json).unwrap();
    assert_eq!(
        b.jwt_bundle()
            .authorities()
            .map(|a| a.kid())
            .collect::<Vec<_>>(),
        ["a"]
    );
}

// ---- §5.2 edge cases ------------------------------------------------------

#[test]
fn edge_01_empty_keys_accepted() {
    assert!(lenient(br#"{"keys":[]}"#).unwrap().is_empty());
}

#[test]
fn edge_02_rejects_document_without_keys() {
    assert_eq!(
        lenient(br#"{"spiffe_sequence":1}"#),
        Err(BundleError::MissingKeys)
    );
}

#[test]
fn edge_03_rejects_null_keys() {
    for parse in [lenient, strict] {
        assert_eq!(
            parse(br#"{"keys":null}"#),
            Err(BundleError::KeysNotArray { found: "null" })
        );
    }
}

#[test]
fn edge_04_rejects_not_json_or_empty() {
    for input in [
        &b""[..],
        b"   ",
        b"not json",
        b"{\"keys\":[]",
        b"{\"keys\":[]} x",
        b"\xff",
    ] {
        assert!(
            matches!(lenient(input), Err(BundleError::Json { .. })),
            "{input:?}"
        );
    }
    for input in [&b"[]"[..], b"null", b"3", b"\"keys\""] {
        assert!(
            matches!(lenient(input), Err(BundleError::NotAnObject { .. })),
            "{input:?}"
        );
    }
}

#[test]
fn edge_05_one_x509_key_with_one_x5c() {
    for parse in [lenient, strict] {
        assert_eq!(
            parse(&doc(vec![x509_entry(&ca_rsa())]))
                .unwrap()
                .x509_bundle()
                .len(),
            1
        );
    }
}

#[test]
fn edge_06_two_x5c_first_used_lenient_rejected_strict() {
    let json = doc(vec![with(
        x509_entry(&ca_ec256()),
        "x5c",
        json!([b64(&ca_ec256()), b64(&ca_ec384())]),
    )]);
    assert_eq!(lenient(&json).unwrap().x509_bundle().len(), 1);
    assert_eq!(
        strict(&json),
        Err(BundleError::X5cCount { index: 0, count: 2 })
    );
}

#[test]
fn edge_07_no_x5c_ignored_lenient_rejected_strict() {
    let json = doc(vec![with(x509_entry(&ca_ec256()), "x5c", json!([]))]);
    assert!(lenient(&json).unwrap().is_empty());
    assert!(matches!(
        strict(&json),
        Err(BundleError::X5cCount { count: 0, .. })
    ));
}

#[test]
fn edge_08_x509_with_kid_accepted() {
    let json = doc(vec![with(x509_entry(&ca_rsa()), "kid", json!("k"))]);
    assert_eq!(strict(&json).unwrap().x509_bundle().len(), 1);
}

#[test]
fn edge_09_rejects_x5c_key_mismatch() {
    // Key members of one certificate, x5c of another.
    let entry = with(
        x509_entry(&ca_ec256()),
        "x5c",
        json!([b64(&ca_constrained())]),
    );
    for parse in [lenient, strict] {
        assert_eq!(
            parse(&doc(vec![entry.clone()])),
            Err(BundleError::KeyMismatch { index: 0 })
        );
    }
    // RSA members on an EC certificate.
    let mut rsa_members = jwk_key_members(&key_of(&ca_rsa()));
    rsa_members.insert("use".into(), json!("x509-svid"));
    rsa_members.insert("x5c".into(), json!([b64(&ca_ec256())]));
    assert_eq!(
        lenient(&doc(vec![serde_json::Value::Object(rsa_members)])),
        Err(BundleError::KeyMismatch { index: 0 })
    );
    // Without key members, nothing to compare: accepted.
    let bare = json!({"kty": "EC", "use": "x509-svid", "x5c": [b64(&ca_ec256())]});
    assert_eq!(lenient(&doc(vec![bare])).unwrap().x509_bundle().len(), 1);
}

#[test]
fn edge_10_non_ca_certificate_accepted() {
    for parse in [lenient, strict] {
        assert_eq!(
            parse(&doc(vec![x509_entry(&leaf_cert())]))
                .unwrap()
                .x509_bundle()
                .len(),
            1
        );
    }
}

#[test]
fn edge_11_jwt_without_kid_ignored_lenient_rejected_strict() {
    let json = doc(vec![without(jwt_entry("k", &jwt_key_rsa()), "kid")]);
    assert!(lenient(&json).unwrap().is_empty());
    assert_eq!(strict(&json), Err(BundleError::MissingKid { index: 0 }));
}

#[test]
fn edge_12_rejects_duplicate_kid() {
    let json = doc(vec![
        jwt_entry("same", &jwt_key_p256()),
        jwt_entry("same", &jwt_key_p384()),
    ]);
    for parse in [lenient, strict] {
        assert_eq!(
            parse(&json),
            Err(BundleError::DuplicateKid {
                index: 1,
                kid: "same".into()
            })
        );
    }
}

#[test]
fn edge_13_entry_without_use_ignored() {
    let json = doc(vec![without(jwt_entry("k", &jwt_key_p256()), "use")]);
    for parse in [lenient, strict] {
        assert!(parse(&json).unwrap().is_empty());
    }
}

#[test]
fn edge_14_wrong_case_use_ignored() {
    let json = doc(vec![with(
        x509_entry(&ca_ec256()),
        "use",
        json!("X509-SVID"),
    )]);
    for parse in [lenient, strict] {
        assert!(parse(&json).unwrap().is_empty());
    }
}

#[test]
fn edge_15_sig_and_enc_use_ignored() {
    for u in ["sig", "enc"] {
        let json = doc(vec![with(jwt_entry("k", &jwt_key_p256()), "use", json!(u))]);
        for parse in [lenient, strict] {
            assert!(parse(&json).unwrap().is_empty());
        }
    }
}

#[test]
fn edge_16_unknown_kty_ignored() {
    for u in ["jwt-svid", "x509-svid"] {
        let json = doc(vec![
            json!({"kty": "foo", "use": u, "kid": "k", "x5c": [b64(&ca_ec256())]}),
            jwt_entry("ok", &jwt_key_p256()),
        ]);
        let b = lenient(&json).unwrap();
        assert_eq!(b.jwt_bundle().len(), 1, "the rest of the bundle is used");
        assert_eq!(
            report(&json)[0].reason,
            IgnoreReason::UnknownKty(Some("foo".into()))
        );
    }
}

#[test]
fn edge_16_unknown_kty_rejected_strict() {
    let json = doc(vec![json!({"kty": "foo", "use": "jwt-svid", "kid": "k"})]);
    assert_eq!(
        strict(&json),
        Err(BundleError::UnknownKty {
            index: 0,
            kty: Some("foo".into())
        })
    );
}

#[test]
fn edge_17_oct_key_ignored_lenient_rejected_strict() {
    let json = doc(vec![
        json!({"kty": "oct", "use": "jwt-svid", "kid": "h", "k": "c2VjcmV0"}),
    ]);
    assert!(lenient(&json).unwrap().is_empty());
    assert!(matches!(
        strict(&json),
        Err(BundleError::UnknownKty { index: 0, .. })
    ));
}

#[test]
fn edge_18_rejects_bad_sequence() {
    for bad in [
        "-1",
        "1.5",
        "\"1\"",
        "18446744073709551616",
        "1e3",
        "true",
        "[]",
    ] {
        let json = format!(r#"{{"keys":[],"spiffe_sequence":{bad}}}"#);
        for parse in [lenient, strict] {
            assert!(
                matches!(
                    parse(json.as_bytes()),
                    Err(BundleError::InvalidTopLevelMember {
                        member: "spiffe_sequence",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}

#[test]
fn edge_19_accepts_max_u64_sequence() {
    let b = lenient(br#"{"keys":[],"spiffe_sequence":18446744073709551615}"#).unwrap();
    assert_eq!(b.sequence(), Some(u64::MAX));
    assert!(b.to_json().contains("18446744073709551615"));
}

#[test]
fn edge_20_zero_or_negative_refresh_hint_is_treated_as_absent() {
    for (raw, secs) in [("0", 0), ("-5", -5), ("-9223372036854775808", i64::MIN)] {
        let json = format!(r#"{{"keys":[],"spiffe_refresh_hint":{raw}}}"#);
        let b = lenient(json.as_bytes()).unwrap();
        assert_eq!(b.refresh_hint_seconds(), Some(secs));
        assert_eq!(b.refresh_hint(), None);
        // Kept as written on output.
        assert!(
            b.to_json()
                .contains(&format!("\"spiffe_refresh_hint\":{raw}"))
        );
    }
}

#[test]
fn edge_21_unknown_members_ignored() {
    let json = serde_json::to_vec(&json!({
        "keys": [with(with(jwt_entry("k", &jwt_key_p256()), "x5t", json!("abc")), "extra", json!({"a": 1}))],
        "top": [1, 2]
    }))
    .unwrap();
    for parse in [lenient, strict] {
        assert_eq!(parse(&json).unwrap().jwt_bundle().len(), 1);
    }
}

#[test]
fn edge_22_rejects_duplicate_keys_member() {
    let json = br#"{"keys":[],
"keys":[{"kty":"foo"}]}"#;
    for parse in [lenient, strict] {
        assert_eq!(
            parse(json),
            Err(BundleError::DuplicateMember {
                name: "keys".into(),
                line: 2,
                column: 6
            })
        );
    }
    // Also inside a JWK.
    let jwk = r#"{"keys":[{"use":"x509-svid","use":"jwt-svid"}]}"#;
    assert!(matches!(
        lenient(jwk.as_bytes()),
        Err(BundleError::DuplicateMember { name, .. }) if name == "use"
    ));
}

#[test]
fn edge_23_wit_svid_entry_ignored_and_dropped() {
    let wit = with(jwt_entry("wit", &jwt_key_p256()), "use", json!("wit-svid"));
    let json = doc(vec![wit, jwt_entry("jwt", &jwt_key_p256())]);
    let b = lenient(&json).unwrap();
    assert_eq!(b.jwt_bundle().len(), 1);
    assert_eq!(
        report(&json)[0].reason,
        IgnoreReason::UnknownUse("wit-svid".into())
    );
    assert!(!b.to_json().contains("wit-svid"), "dropped on output");
}

// ---- bad input: precise errors -------------------------------------------

#[test]
fn bad_input_entry_not_an_object() {
    let json = br#"{"keys":[{"use":"sig"}, 3]}"#;
    assert_eq!(
        lenient(json),
        Err(BundleError::EntryNotObject {
            index: 1,
            found: "a number"
        })
    );
}

#[test]
fn bad_input_certificate_does_not_parse() {
    let json = doc(vec![
        x509_entry(&ca_ec256()),
        json!({"kty": "EC", "use": "x509-svid", "x5c": [b64(b"not a certificate")]}),
    ]);
    for parse in [lenient, strict] {
        assert!(matches!(
            parse(&json),
            Err(BundleError::InvalidX5cCertificate { index: 1, .. })
        ));
    }
    let mut trailing = ca_ec256();
    trailing.push(0);
    let json = doc(vec![
        json!({"kty": "EC", "use": "x509-svid", "x5c": [b64(&trailing)]}),
    ]);
    assert!(matches!(
        lenient(&json),
        Err(BundleError::InvalidX5cCertificate { index: 0, .. })
    ));
}

#[test]
fn bad_input_wrong_member_types() {
    let cases = [
        (json!({"use": 1}), "use"),
        (json!({"use": "jwt-svid", "kty": "EC", "kid": 5}), "kid"),
        (json!({"use": "jwt-svid", "kty": ["EC"]}), "kty"),
        (
            json!({"use": "x509-svid", "kty": "EC", "x5c": "abc"}),
            "x5c",
        ),
        (
            json!({"use": "x509-svid", "kty": "EC", "x5c": [1]}),
            "x5c[0]",
        ),
        (
            with(jwt_entry("k", &jwt_key_p256()), "alg", json!(256)),
            "alg",
        ),
    ];
    for (entry, want) in cases {
        match lenient(&doc(vec![entry])) {
            Err(BundleError::InvalidMember {
                index: 0, member, ..
            }) => assert_eq!(member, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn bad_input_key_members_must_be_base64url_without_padding() {
    let key = jwt_key_p256();
    let (x, _) = key.ec_coordinates().unwrap();
    let url = b64u(x);
    let padded = format!("{url}=");
    // A character of the standard alphabet that base64url does not have.
    let standard_alphabet = format!("+{}", &url[1..]);
    for bad in [padded, standard_alphabet, "***".to_owned()] {
        let entry = with(jwt_entry("k", &key), "x", json!(bad));
        match lenient(&doc(vec![entry])) {
            Err(BundleError::InvalidMember {
                index: 0, member, ..
            }) => assert_eq!(member, "x"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn bad_input_ec_coordinates_must_have_exact_length() {
    let key = jwt_key_p256();
    let (x, y) = key.ec_coordinates().unwrap();
    let mut short = x.to_vec();
    short.remove(0);
    let mut long = vec![0u8];
    long.extend_from_slice(y);
    for (member, v) in [("x", short), ("y", long)] {
        let entry = with(jwt_entry("k", &key), member, json!(b64u(&v)));
        assert!(matches!(
            lenient(&doc(vec![entry])),
            Err(BundleError::UnsupportedKey { index: 0, .. })
        ));
    }
    // A P-256 point labelled P-384.
    let entry = with(jwt_entry("k", &key), "crv", json!("P-384"));
    assert!(matches!(
        lenient(&doc(vec![entry])),
        Err(BundleError::UnsupportedKey { .. })
    ));
    let entry = with(jwt_entry("k", &key), "crv", json!("secp256k1"));
    assert!(matches!(
        lenient(&doc(vec![entry])),
        Err(BundleError::UnsupportedKey { .. })
    ));
    let entry = without(jwt_entry("k", &key), "crv");
    assert!(matches!(
        lenient(&doc(vec![entry])),
        Err(BundleError::InvalidMember { .. })
    ));
}

#[test]
fn bad_input_rsa_size_and_exponent() {
    let n1024 = vec![0xc1u8; 128];
    let n2048 = vec![0xc1u8; 256];
    let cases = [
        (n1024.clone(), vec![1u8, 0, 1]),
        (n2048.clone(), vec![1]),
        (n2048.clone(), vec![2]),
        (vec![0xc1; 2049], vec![3]),
    ];
    for (n, e) in cases {
        let entry =
            json!({"use": "jwt-svid", "kty": "RSA", "kid": "r", "n": b64u(&n), "e": b64u(&e)});
        for parse in [lenient, strict] {
            assert!(matches!(
                parse(&doc(vec![entry.clone()])),
                Err(BundleError::UnsupportedKey { index: 0, .. })
            ));
        }
    }
    let ok = json!({"use": "jwt-svid", "kty": "RSA", "kid": "r", "n": b64u(&n2048), "e": "AQAB"});
    assert_eq!(lenient(&doc(vec![ok])).unwrap().jwt_bundle().len(), 1);
}

#[test]
fn bad_input_private_key_material_rejected() {
    let entry = with(jwt_entry("k", &jwt_key_p256()), "d", json!("AAAA"));
    for parse in [lenient, strict] {
        assert_eq!(
            parse(&doc(vec![entry.clone()])),
            Err(BundleError::PrivateKeyMaterial { index: 0 })
        );
    }
}

#[test]
fn bad_input_error_messages_name_the_entry() {
    let json = doc(vec![
        x509_entry(&ca_ec256()),
        json!({"kty": "EC", "use": "x509-svid", "x5c": ["%%%"]}),
    ]);
    let msg = lenient(&json).unwrap_err().to_string();
    assert!(
        msg.starts_with("keys[1].x5c[0]: not standard base64"),
        "{msg}"
    );
}

#[test]
fn limits_size_and_key_count() {
    let json = doc(vec![
        jwt_entry("a", &jwt_key_p256()),
        jwt_entry("b", &jwt_key_p256()),
    ]);
    let small = ParseOptions::default().with_max_bytes(json.len() - 1);
    assert_eq!(
        SpiffeBundle::parse_with(td(), &json, &small),
        Err(BundleError::TooLarge {
            len: json.len(),
            limit: json.len() - 1
        })
    );
    let few = ParseOptions::default().with_max_keys(1);
    assert_eq!(
        SpiffeBundle::parse_with(td(), &json, &few),
        Err(BundleError::TooManyKeys { count: 2, limit: 1 })
    );
    let big = vec![b' '; spiffe_bundle::DEFAULT_MAX_BYTES + 1];
    assert!(matches!(lenient(&big), Err(BundleError::TooLarge { .. })));
    let many: Vec<_> = (0..1001).map(|_| json!({})).collect();
    assert!(matches!(
        lenient(&doc(many)),
        Err(BundleError::TooManyKeys {
            count: 1001,
            limit: 1000
        })
    ));
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let mut s = String::from(r#"{"keys":[],"x":"#);
    s.push_str(&"[".repeat(100_000));
    assert!(matches!(
        lenient(s.as_bytes()),
        Err(BundleError::Json { .. })
    ));
}

// ---- output ----------------------------------------------------------------

#[test]
fn output_is_deterministic_and_canonical() {
    let a = lenient(&spire_shaped()).unwrap();
    // Same content, other entry order: same bytes for JWT keys (sorted by kid).
    let json = serde_json::to_vec(&json!({
        "spiffe_sequence": 12,
        "keys": [
            x509_entry(&ca_ec256()),
            jwt_entry("rsa-1", &jwt_key_rsa()),
            x509_entry(&ca_rsa()),
            jwt_entry("C6vs25welZOx6WksNYfbMfiw9l96pMnD", &jwt_key_p256()),
        ],
        "spiffe_refresh_hint": 300
    }))
    .unwrap();
    let b = lenient(&json).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_json(), b.to_json());
    let out = a.to_json();
    assert!(
        out.starts_with(r#"{"keys":[{"crv":"P-256","kty":"EC","use":"x509-svid","x":""#),
        "{out}"
    );
    assert!(
        out.ends_with(r#"],"spiffe_refresh_hint":300,"spiffe_sequence":12}"#),
        "{out}"
    );
    assert!(!out.contains(' ') && !out.contains('\n'));
    // x5c standard base64 (with padding where needed), coordinates base64url.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["keys"][0]["x5c"][0], json!(b64(&ca_ec256())));
    assert!(!v["keys"][2]["x"].as_str().unwrap().contains('='));
    assert_eq!(
        v["keys"][2]["kid"],
        json!("C6vs25welZOx6WksNYfbMfiw9l96pMnD")
    );
    assert_eq!(v["keys"][2]["use"], json!("jwt-svid"));
}

#[test]
fn round_trip_keeps_alg_and_all_key_types() {
    let json = doc(vec![
        x509_entry(&ca_ec256()),
        x509_entry(&ca_ec384()),
        x509_entry(&ca_rsa()),
        x509_entry(&ca_ed25519()),
        with(jwt_entry("e", &jwt_key_p384()), "alg", json!("ES384")),
        jwt_entry("r", &jwt_key_rsa()),
    ]);
    for mode in [Mode::Lenient, Mode::Strict] {
        let opts = ParseOptions::default().with_mode(mode);
        let b = SpiffeBundle::parse_with(td(), &json, &opts).unwrap();
        assert_eq!(b.x509_bundle().len(), 4);
        assert_eq!(b.jwt_bundle().get("e").unwrap().alg(), Some("ES384"));
        let again = SpiffeBundle::parse_with(td(), b.to_json().as_bytes(), &opts).unwrap();
        assert_eq!(again, b);
        assert_eq!(again.to_json(), b.to_json());
        assert_ne!(again.generation(), b.generation());
    }
}

#[test]
fn x_23_x509_authority_with_a_key_no_jwk_or_verifier_can_use_is_refused() {
    // A P-256 CA whose curve OID is rewritten to P-192 (same encoded
    // length): the certificate still parses, its key is unusable.
    let mut cert = ca_ec256();
    let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let at = cert.windows(p256.len()).position(|w| w == p256).unwrap();
    cert[at + p256.len() - 1] = 0x01;
    let err = X509Authority::from_der(cert.clone()).unwrap_err();
    assert!(
        matches!(&err, BundleError::InvalidCertificate { index: 0, reason } if reason.contains("unsupported public key")),
        "{err}"
    );
    let entry = json!({"use": "x509-svid", "kty": "EC", "x5c": [b64(&cert)]});
    for mode in [Mode::Lenient, Mode::Strict] {
        let opts = ParseOptions::default().with_mode(mode);
        assert!(matches!(
            SpiffeBundle::parse_with(td(), &doc(vec![entry.clone()]), &opts),
            Err(BundleError::InvalidX5cCertificate { index: 0, .. })
        ));
    }
}

#[test]
fn edge_09_x509_entry_kty_and_key_members_must_describe_the_certificate_key() {
    let cert = ca_ec256();
    let good = x509_entry(&cert);
    assert!(lenient(&doc(vec![good.clone()])).is_ok());
    // Members may be left out entirely...
    let bare = json!({"use": "x509-svid", "kty": "EC", "x5c": [b64(&cert)]});
    assert_eq!(lenient(&doc(vec![bare])).unwrap().x509_bundle().len(), 1);
    // ...but not contradict the certificate.
    let cases = [
        json!({"use": "x509-svid", "kty": "RSA", "x5c": [b64(&cert)]}),
        without(good.clone(), "y"),
        with(good.clone(), "n", json!("AQAB")),
        with(good.clone(), "crv", json!("P-384")),
    ];
    for entry in cases {
        assert!(
            matches!(
                lenient(&doc(vec![entry.clone()])),
                Err(BundleError::KeyMismatch { index: 0 })
            ),
            "{entry}"
        );
    }
}

#[test]
fn b_04_b_05_null_sequence_or_refresh_hint_is_not_an_integer() {
    for member in ["spiffe_sequence", "spiffe_refresh_hint"] {
        let json = format!(r#"{{"keys": [], "{member}": null}}"#);
        assert!(
            matches!(
                lenient(json.as_bytes()),
                Err(BundleError::InvalidTopLevelMember { .. })
            ),
            "{member}"
        );
    }
}
