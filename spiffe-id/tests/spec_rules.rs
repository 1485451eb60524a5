//! The SPIFFE ID rules, one named test per rule of the checklist's ID section
//! (ID-01 to ID-21), and the checklist's edge-case tables row by row:
//! §2.2 (`parse`), §2.3 (trust-domain parsing and path APIs) and §2.4 (Istio).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spiffe_id::{
    IstioIdentity, MAX_ID_LEN, SpiffeId, SpiffeIdError, SpiffeIdRef, TrustDomain, validate_path,
    validate_path_segment,
};

/// The variant name of an error, so tables can name the expected category.
fn kind(e: &SpiffeIdError) -> &'static str {
    match e {
        SpiffeIdError::Empty => "Empty",
        SpiffeIdError::WrongScheme => "WrongScheme",
        SpiffeIdError::MissingTrustDomain => "MissingTrustDomain",
        SpiffeIdError::BadTrustDomainChar { .. } => "BadTrustDomainChar",
        SpiffeIdError::TrustDomainTooLong { .. } => "TrustDomainTooLong",
        SpiffeIdError::TooLong { .. } => "TooLong",
        SpiffeIdError::BadPathSegmentChar { .. } => "BadPathSegmentChar",
        SpiffeIdError::EmptySegment { .. } => "EmptySegment",
        SpiffeIdError::DotSegment { .. } => "DotSegment",
        SpiffeIdError::TrailingSlash => "TrailingSlash",
        SpiffeIdError::NoLeadingSlash => "NoLeadingSlash",
        SpiffeIdError::NotIstioIdentity => "NotIstioIdentity",
        SpiffeIdError::BadKubernetesNamespace => "BadKubernetesNamespace",
        SpiffeIdError::BadKubernetesServiceAccount => "BadKubernetesServiceAccount",
        SpiffeIdError::BadPrincipal { .. } => "BadPrincipal",
        _ => "other",
    }
}

/// Parses with both the borrowed and the owned parser and checks they agree;
/// returns the owned result.
fn parse_both(input: &str) -> Result<SpiffeId, SpiffeIdError> {
    let borrowed = SpiffeIdRef::parse(input);
    let owned = SpiffeId::parse(input);
    match (&borrowed, &owned) {
        (Ok(b), Ok(o)) => {
            assert_eq!(b.as_str(), o.as_str());
            assert_eq!(b.trust_domain_name(), o.trust_domain_name());
            assert_eq!(b.path(), o.path());
        }
        (Err(b), Err(o)) => assert_eq!(b, o),
        _ => panic!("borrowed and owned parsers disagree on {input:?}: {borrowed:?} vs {owned:?}"),
    }
    owned
}

fn accepts(input: &str) -> SpiffeId {
    let id = parse_both(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
    assert_eq!(id.as_str(), input, "round trip");
    assert_eq!(id.to_string(), input, "Display round trip");
    assert_eq!(
        format!("{}{}", id.trust_domain().id_str(), id.path()),
        input,
        "structure: trust-domain ID + path == input"
    );
    id
}

fn rejects(input: &str, expected: &str) -> SpiffeIdError {
    let err = parse_both(input).expect_err(input);
    assert_eq!(kind(&err), expected, "{input:?}: {err}");
    err
}

// === One test per rule (SPIFFE-ID.md) ===

#[test]
fn id_01_scheme_must_be_spiffe() {
    for input in [
        "https://example.org/w",
        "spiffe:example.org/w",
        "spiffe:/example.org/w",
        "spiffe//example.org",
        "example.org/w",
        "SPIFFE://example.org/w",
    ] {
        rejects(input, "WrongScheme");
    }
    assert_eq!(rejects("", "Empty").rule(), "ID-01");
}

#[test]
fn id_02_trust_domain_must_not_be_empty() {
    for input in ["spiffe://", "spiffe:///", "spiffe:///x"] {
        assert_eq!(rejects(input, "MissingTrustDomain").rule(), "ID-02");
    }
}

#[test]
fn id_03_no_query() {
    for input in ["spiffe://td/p?", "spiffe://td/p?x=1"] {
        assert_eq!(rejects(input, "BadPathSegmentChar").rule(), "ID-03");
    }
    rejects("spiffe://td?x=1", "BadTrustDomainChar");
}

#[test]
fn id_04_no_fragment() {
    assert_eq!(
        rejects("spiffe://td/p#f", "BadPathSegmentChar").rule(),
        "ID-04"
    );
    rejects("spiffe://td#f", "BadTrustDomainChar");
}

#[test]
fn id_05_no_userinfo() {
    let err = rejects("spiffe://u@td/p", "BadTrustDomainChar");
    assert_eq!(err.rule(), "ID-05");
    assert_eq!(
        err,
        SpiffeIdError::BadTrustDomainChar {
            byte: b'@',
            index: 10
        }
    );
}

#[test]
fn id_06_no_port() {
    for input in ["spiffe://td:8080/p", "spiffe://td:/p"] {
        assert_eq!(rejects(input, "BadTrustDomainChar").rule(), "ID-06");
    }
}

#[test]
fn id_07_trust_domain_is_lowercase() {
    let err = rejects("spiffe://Td/p", "BadTrustDomainChar");
    assert_eq!(err.rule(), "ID-07");
    assert_eq!(TrustDomain::new("Example.org").unwrap_err().rule(), "ID-07");
}

#[test]
fn id_08_trust_domain_charset() {
    for b in 0u8..=255 {
        if b == b'/' {
            continue;
        }
        let mut input = b"spiffe://trustdomain".to_vec();
        input.push(b);
        input.extend_from_slice(b"/path");
        let Ok(input) = String::from_utf8(input) else {
            // Not UTF-8 on its own: check the byte inside a valid multi-byte
            // character is refused too (all bytes >= 0x80 are).
            continue;
        };
        let allowed = b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        assert_eq!(parse_both(&input).is_ok(), allowed, "byte 0x{b:02x}");
        if !allowed {
            assert_eq!(
                parse_both(&input).unwrap_err(),
                SpiffeIdError::BadTrustDomainChar { byte: b, index: 20 }
            );
        }
    }
    rejects("spiffe://exämple.org/w", "BadTrustDomainChar");
}

#[test]
fn id_09_no_percent_encoding_in_trust_domain() {
    let err = rejects("spiffe://%65xample.org/w", "BadTrustDomainChar");
    assert_eq!(err.rule(), "ID-09");
}

#[test]
fn id_10_ipv4_accepted_ipv6_rejected() {
    accepts("spiffe://1.2.3.4/workload");
    rejects("spiffe://[::1]/workload", "BadTrustDomainChar");
}

#[test]
fn id_11_no_dns_or_ip_semantics() {
    // Names that DNS would refuse or normalize are plain names here.
    for input in [
        "spiffe://-example.org/w",
        "spiffe://example.org./w",
        "spiffe://./w",
        "spiffe://../w",
        "spiffe://example_org/w",
        "spiffe://01.02.03.04/w",
    ] {
        accepts(input);
    }
    let dotted = SpiffeId::parse("spiffe://example.org./w").unwrap();
    let plain = SpiffeId::parse("spiffe://example.org/w").unwrap();
    assert_ne!(dotted.trust_domain(), plain.trust_domain());
}

#[test]
fn id_12_no_percent_encoding_in_path() {
    for input in ["spiffe://td/%41", "spiffe://td/a%2Fb"] {
        assert_eq!(rejects(input, "BadPathSegmentChar").rule(), "ID-12");
    }
}

#[test]
fn id_13_no_empty_segments() {
    assert_eq!(
        rejects("spiffe://td/a//b", "EmptySegment"),
        SpiffeIdError::EmptySegment { index: 14 }
    );
    rejects("spiffe://td//", "EmptySegment");
    rejects("spiffe://td//a", "EmptySegment");
}

#[test]
fn id_14_no_dot_segments() {
    for input in [
        "spiffe://td/.",
        "spiffe://td/..",
        "spiffe://td/./a",
        "spiffe://td/a/../b",
        "spiffe://td/a/.",
    ] {
        assert_eq!(rejects(input, "DotSegment").rule(), "ID-14");
    }
    for input in [
        "spiffe://td/.a",
        "spiffe://td/a..b",
        "spiffe://td/...",
        "spiffe://td/..a",
    ] {
        accepts(input);
    }
}

#[test]
fn id_15_no_trailing_slash() {
    for input in ["spiffe://td/", "spiffe://td/a/", "spiffe://td/a/b/"] {
        assert_eq!(rejects(input, "TrailingSlash").rule(), "ID-15");
    }
}

#[test]
fn id_16_path_charset_and_case() {
    for b in 0u8..=127 {
        if b == b'/' {
            continue;
        }
        let input = format!("spiffe://trustdomain/path{}", char::from(b));
        let allowed = b.is_ascii_alphanumeric() || b"._-".contains(&b);
        assert_eq!(parse_both(&input).is_ok(), allowed, "byte 0x{b:02x}");
        if !allowed {
            assert_eq!(
                parse_both(&input).unwrap_err(),
                SpiffeIdError::BadPathSegmentChar { byte: b, index: 25 }
            );
        }
    }
    // Every non-ASCII character is refused at its first byte.
    for c in ['ñ', 'é', '€', '😀', '\u{80}'] {
        let input = format!("spiffe://trustdomain/path{c}");
        let first = c.to_string().as_bytes()[0];
        assert_eq!(
            parse_both(&input).unwrap_err(),
            SpiffeIdError::BadPathSegmentChar {
                byte: first,
                index: 25
            }
        );
    }
    // The path is case-sensitive.
    let upper = accepts("spiffe://a/X");
    let lower = accepts("spiffe://a/x");
    assert_ne!(upper, lower);
}

#[test]
fn id_17_path_is_optional() {
    let id = accepts("spiffe://example.org");
    assert!(id.is_trust_domain_id());
    assert_eq!(id.path(), "");
    assert_eq!(id.segments().count(), 0);
}

#[test]
fn id_18_accepts_exactly_2048_bytes() {
    let prefix = "spiffe://example.org/";
    let id = format!("{prefix}{}", "a".repeat(MAX_ID_LEN - prefix.len()));
    assert_eq!(id.len(), 2048);
    accepts(&id);
}

#[test]
fn id_19_rejects_more_than_2048_bytes() {
    let prefix = "spiffe://example.org/";
    let id = format!("{prefix}{}", "a".repeat(MAX_ID_LEN + 1 - prefix.len()));
    assert_eq!(
        rejects(&id, "TooLong"),
        SpiffeIdError::TooLong { len: 2049 }
    );
    // A huge input is refused without being scanned for other errors.
    let huge = format!("spiffe://example.org/{}", "a/".repeat(50_000));
    rejects(&huge, "TooLong");
    // Builders refuse to generate longer IDs too.
    let td = TrustDomain::new("example.org").unwrap();
    let seg = "a".repeat(1000);
    assert!(matches!(
        SpiffeId::from_segments(&td, [&seg, &seg, &seg]),
        Err(SpiffeIdError::TooLong { .. })
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, &format!("/{}", "a".repeat(2040))),
        Err(SpiffeIdError::TooLong { .. })
    ));
}

#[test]
fn id_20_trust_domain_at_most_255_bytes() {
    accepts(&format!("spiffe://{}/p", "a".repeat(255)));
    assert_eq!(
        rejects(
            &format!("spiffe://{}/p", "a".repeat(256)),
            "TrustDomainTooLong"
        ),
        SpiffeIdError::TrustDomainTooLong { len: 256 }
    );
    assert!(TrustDomain::new(&"a".repeat(255)).is_ok());
    assert_eq!(
        TrustDomain::new(&"a".repeat(256)).unwrap_err(),
        SpiffeIdError::TrustDomainTooLong { len: 256 }
    );
}

#[test]
fn id_21_case_decision_uppercase_never_differs_from_lowercase() {
    // Strict parsing rejects uppercase scheme and trust domain (ID-07 wins
    // over ID-21); the normalizing parser yields the lowercase ID itself.
    for input in [
        "SPIFFE://example.org/Path",
        "Spiffe://example.org/Path",
        "spiffe://EXAMPLE.org/Path",
        "spiffe://Example.Org/Path",
    ] {
        assert!(SpiffeId::parse(input).is_err(), "{input}");
        let normalized = SpiffeId::parse_normalizing_case(input).unwrap();
        assert_eq!(
            normalized,
            SpiffeId::parse("spiffe://example.org/Path").unwrap()
        );
        assert_eq!(normalized.path(), "/Path", "the path keeps its case");
    }
    // The normalizing parser still applies every other rule.
    assert!(SpiffeId::parse_normalizing_case("SPIFFE://Ex:80/p").is_err());
    assert!(SpiffeId::parse_normalizing_case("http://example.org/p").is_err());
}

#[test]
fn membership() {
    let a = TrustDomain::new("a").unwrap();
    let b = TrustDomain::new("b").unwrap();
    assert!(accepts("spiffe://a/x").is_member_of(&a));
    assert!(accepts("spiffe://a").is_member_of(&a));
    assert!(!accepts("spiffe://b/x").is_member_of(&a));
    assert!(!accepts("spiffe://ab/x").is_member_of(&a));
    assert!(SpiffeIdRef::parse("spiffe://b/x").unwrap().is_member_of(&b));
}

// === §2.2: the main parse table, row by row ===

const MAIN_TABLE: &[(u32, &str, Option<&str>)] = &[
    (1, "spiffe://example.org", None),
    (2, "spiffe://example.org/workload", None),
    (3, "spiffe://example.org/a/b/c/d", None),
    (4, "spiffe://example.org/A/B_c-d.e", None),
    (5, "spiffe://example.org/123", None),
    (6, "spiffe://a/b", None),
    (7, "spiffe://1.2.3.4/workload", None),
    (8, "spiffe://example_org/workload", None),
    (9, "spiffe://-example.org/workload", None),
    (10, "spiffe://example.org./workload", None),
    (11, "spiffe://./workload", None),
    (12, "spiffe://../workload", None),
    (13, "spiffe://example.org/.path", None),
    (14, "spiffe://example.org/..path", None),
    (15, "spiffe://example.org/...", None),
    (16, "spiffe://example.org/a.b/c..d", None),
    (17, "spiffe://example.org/ns/default/sa/my-sa", None),
    (
        18,
        "spiffe://cluster.local/ns/istio-system/sa/istiod-service-account",
        None,
    ),
    (19, "", Some("Empty")),
    (20, "example.org/workload", Some("WrongScheme")),
    (21, "spiffe:example.org/workload", Some("WrongScheme")),
    (22, "spiffe:/example.org/workload", Some("WrongScheme")),
    (23, "spiffe//example.org", Some("WrongScheme")),
    (24, "https://example.org/workload", Some("WrongScheme")),
    (25, "SPIFFE://example.org/workload", Some("WrongScheme")),
    (26, "Spiffe://example.org/workload", Some("WrongScheme")),
    (27, " spiffe://example.org/workload", Some("WrongScheme")),
    (28, "spiffe://", Some("MissingTrustDomain")),
    (29, "spiffe:///", Some("MissingTrustDomain")),
    (30, "spiffe:///workload", Some("MissingTrustDomain")),
    (
        31,
        "spiffe://Example.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (32, "spiffe://EXAMPLE.ORG", Some("BadTrustDomainChar")),
    (
        33,
        "spiffe://example.org:8080/workload",
        Some("BadTrustDomainChar"),
    ),
    (
        34,
        "spiffe://example.org:/workload",
        Some("BadTrustDomainChar"),
    ),
    (
        35,
        "spiffe://user@example.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (
        36,
        "spiffe://user:pass@example.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (37, "spiffe://[::1]/workload", Some("BadTrustDomainChar")),
    (
        38,
        "spiffe://%65xample.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (39, "spiffe://%F0%9F%A4%AF/path", Some("BadTrustDomainChar")),
    (
        40,
        "spiffe://exa mple.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (
        41,
        "spiffe://exämple.org/workload",
        Some("BadTrustDomainChar"),
    ),
    (42, "spiffe://example.org?x=1", Some("BadTrustDomainChar")),
    (43, "spiffe://example.org#frag", Some("BadTrustDomainChar")),
    (44, "spiffe://exa$mple.org//", Some("BadTrustDomainChar")),
    (
        45,
        "spiffe://example.org\\workload",
        Some("BadTrustDomainChar"),
    ),
    (
        46,
        "spiffe://example.org/workload?x=1",
        Some("BadPathSegmentChar"),
    ),
    (
        47,
        "spiffe://example.org/workload?",
        Some("BadPathSegmentChar"),
    ),
    (
        48,
        "spiffe://example.org/workload#frag",
        Some("BadPathSegmentChar"),
    ),
    (49, "spiffe://example.org/", Some("TrailingSlash")),
    (50, "spiffe://example.org/workload/", Some("TrailingSlash")),
    (51, "spiffe://example.org//", Some("EmptySegment")),
    (52, "spiffe://example.org//workload", Some("EmptySegment")),
    (53, "spiffe://example.org/a//b", Some("EmptySegment")),
    (54, "spiffe://example.org/ns//sa/x", Some("EmptySegment")),
    (55, "spiffe://example.org/.", Some("DotSegment")),
    (56, "spiffe://example.org/..", Some("DotSegment")),
    (57, "spiffe://example.org/./workload", Some("DotSegment")),
    (58, "spiffe://example.org/a/../b", Some("DotSegment")),
    (59, "spiffe://example.org/a/.", Some("DotSegment")),
    (60, "spiffe://example.org/%41", Some("BadPathSegmentChar")),
    (61, "spiffe://example.org/a%2Fb", Some("BadPathSegmentChar")),
    (62, "spiffe://example.org/a b", Some("BadPathSegmentChar")),
    (63, "spiffe://example.org/a+b", Some("BadPathSegmentChar")),
    (64, "spiffe://example.org/a~b", Some("BadPathSegmentChar")),
    (65, "spiffe://example.org/a:b", Some("BadPathSegmentChar")),
    (66, "spiffe://example.org/a@b", Some("BadPathSegmentChar")),
    (67, "spiffe://example.org/a$b", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w!x", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w*", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w,x", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w;x", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w=x", Some("BadPathSegmentChar")),
    (68, "spiffe://example.org/w'x", Some("BadPathSegmentChar")),
    (69, "spiffe://example.org/ñ", Some("BadPathSegmentChar")),
    (70, "spiffe://example.org/a\\b", Some("BadPathSegmentChar")),
    (71, "spiffe://example.org/a\0b", Some("BadPathSegmentChar")),
    (
        72,
        "spiffe://example.org/workload\n",
        Some("BadPathSegmentChar"),
    ),
    (73, "spiffe://example.org/a$//b", Some("BadPathSegmentChar")),
    (74, "spiffe://example.org//a$", Some("EmptySegment")),
];

#[test]
fn checklist_2_2_main_table() {
    for &(row, input, expected) in MAIN_TABLE {
        match expected {
            None => {
                accepts(input);
            }
            Some(kind_name) => {
                let err = parse_both(input).expect_err(input);
                assert_eq!(kind(&err), kind_name, "row {row}: {input:?}: {err}");
            }
        }
    }
}

#[test]
fn checklist_2_2_rows_1_and_10_parts() {
    let id = accepts("spiffe://example.org");
    assert_eq!((id.trust_domain_name(), id.path()), ("example.org", ""));
    let id = accepts("spiffe://example.org./workload");
    assert_eq!(id.trust_domain().as_str(), "example.org.");
}

#[test]
fn checklist_2_2_rows_75_to_79_lengths() {
    // 75, 76: the trust-domain limit.
    accepts(&format!("spiffe://{}/p", "a".repeat(255)));
    rejects(
        &format!("spiffe://{}/p", "a".repeat(256)),
        "TrustDomainTooLong",
    );
    // 77, 78: the ID limit.
    let p = "spiffe://example.org/";
    accepts(&format!("{p}{}", "x".repeat(2048 - p.len())));
    rejects(&format!("{p}{}", "x".repeat(2049 - p.len())), "TooLong");
    // 79: a 100,000-byte path.
    rejects(&format!("{p}{}", "x".repeat(100_000)), "TooLong");
}

#[test]
fn errors_carry_precise_positions() {
    assert_eq!(
        SpiffeId::parse("spiffe://example.org/a b").unwrap_err(),
        SpiffeIdError::BadPathSegmentChar {
            byte: b' ',
            index: 22
        }
    );
    assert_eq!(
        SpiffeId::parse("spiffe://example.org/a/../b").unwrap_err(),
        SpiffeIdError::DotSegment { index: 23 }
    );
    let msg = SpiffeId::parse("spiffe://exa$mple.org//")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'$' (0x24) at byte 12"), "{msg}");
    let msg = SpiffeId::parse("spiffe://example.org/a\0b")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("byte 0x00 at byte 22"), "{msg}");
}

// === §2.3: trust-domain parsing and path APIs ===

#[test]
fn checklist_2_3_trust_domain_parsing() {
    let ok: &[(&str, &str)] = &[
        ("example.org", "example.org"),
        ("spiffe://example.org", "example.org"),
        ("spiffe://example.org/path", "example.org"),
        ("a", "a"),
        ("1.2.3.4", "1.2.3.4"),
    ];
    for &(input, name) in ok {
        let td: TrustDomain = input.parse().unwrap();
        assert_eq!(td.as_str(), name);
        assert_eq!(td.to_string(), name);
        assert_eq!(td.id().as_str(), format!("spiffe://{name}"));
    }
    let bad: &[(&str, &str)] = &[
        ("", "MissingTrustDomain"),
        ("Example.org", "BadTrustDomainChar"),
        ("example.org/", "BadTrustDomainChar"),
        ("example.org:80", "BadTrustDomainChar"),
        ("::1", "BadTrustDomainChar"),
        ("spiffe:/example.org", "WrongScheme"),
        ("spiffe://example.org/", "TrailingSlash"),
        ("spiffe://", "MissingTrustDomain"),
    ];
    for &(input, expected) in bad {
        let err = input.parse::<TrustDomain>().unwrap_err();
        assert_eq!(kind(&err), expected, "{input:?}: {err}");
    }
    // `new` takes bare names only.
    assert!(TrustDomain::new("spiffe://example.org").is_err());
}

#[test]
fn checklist_2_3_path_apis() {
    let paths: &[(&str, Option<&str>)] = &[
        ("", None),
        ("/", Some("TrailingSlash")),
        ("/foo/", Some("TrailingSlash")),
        ("foo", Some("NoLeadingSlash")),
        ("//foo", Some("EmptySegment")),
        ("/./x", Some("DotSegment")),
        ("/x/..", Some("DotSegment")),
        ("/a/b", None),
    ];
    for &(path, expected) in paths {
        assert_eq!(
            validate_path(path).err().as_ref().map(kind),
            expected,
            "{path:?}"
        );
    }
    let segments: &[(&str, Option<&str>)] = &[
        ("", Some("EmptySegment")),
        (".", Some("DotSegment")),
        ("..", Some("DotSegment")),
        ("/", Some("BadPathSegmentChar")),
        ("a/b", Some("BadPathSegmentChar")),
        ("...", None),
        ("a", None),
    ];
    for &(segment, expected) in segments {
        assert_eq!(
            validate_path_segment(segment).err().as_ref().map(kind),
            expected,
            "{segment:?}"
        );
    }
    let td = TrustDomain::new("td").unwrap();
    assert_eq!(
        SpiffeId::from_segments(&td, Vec::<&str>::new()).unwrap(),
        "spiffe://td"
    );
    assert_eq!(
        SpiffeId::from_segments(&td, ["foo", "bar"]).unwrap(),
        "spiffe://td/foo/bar"
    );
    assert_eq!(
        SpiffeId::from_segments(&td, ["foo", ""]).unwrap_err(),
        SpiffeIdError::EmptySegment { index: 0 }
    );
    assert_eq!(
        SpiffeId::from_path(&td, "/path/foo").unwrap(),
        "spiffe://td/path/foo"
    );
    assert_eq!(SpiffeId::from_path(&td, "").unwrap(), td.id());
    assert_eq!(
        SpiffeId::from_path(&td, "path").unwrap_err(),
        SpiffeIdError::NoLeadingSlash
    );
}

// === §2.4: the Istio convention ===

#[test]
fn checklist_2_4_istio_table() {
    // (input, valid SPIFFE ID, Istio identity, valid Kubernetes names)
    let rows: &[(&str, bool, bool, bool)] = &[
        (
            "spiffe://cluster.local/ns/default/sa/default",
            true,
            true,
            true,
        ),
        (
            "spiffe://td/ns/istio-system/sa/istiod-service-account",
            true,
            true,
            true,
        ),
        ("spiffe://td/ns/default/sa/my.sa", true, true, true),
        ("spiffe://td/ns/default/sa", true, false, false),
        ("spiffe://td/ns/default/sa/x/extra", true, false, false),
        ("spiffe://td/sa/x/ns/y", true, false, false),
        ("spiffe://td/NS/default/sa/x", true, false, false),
        ("spiffe://td/ns/Default/sa/x", true, true, false),
        ("spiffe://td/ns/a_b/sa/x", true, true, false),
        ("spiffe://td/ns//sa/x", false, false, false),
        ("spiffe://td/ns/./sa/x", false, false, false),
        ("spiffe://td/ns/default/sa/default/", false, false, false),
        ("spiffe://TD/ns/a/sa/b", false, false, false),
        ("spiffe://td/ns/default/sa/default?x", false, false, false),
    ];
    for &(input, valid, istio, k8s) in rows {
        assert_eq!(SpiffeId::parse(input).is_ok(), valid, "{input}");
        let parsed = IstioIdentity::parse(input);
        assert_eq!(parsed.is_ok(), istio, "{input}: {parsed:?}");
        if valid && !istio {
            assert_eq!(
                parsed.unwrap_err(),
                SpiffeIdError::NotIstioIdentity,
                "{input}"
            );
        }
        if let Ok(identity) = IstioIdentity::parse(input) {
            assert_eq!(identity.validate_kubernetes_names().is_ok(), k8s, "{input}");
        }
    }
}

#[test]
fn istio_identity_parts_and_conversions() {
    let id: IstioIdentity = "spiffe://cluster.local/ns/istio-system/sa/istiod"
        .parse()
        .unwrap();
    assert_eq!(id.trust_domain_name(), "cluster.local");
    assert_eq!(
        id.trust_domain(),
        TrustDomain::new("cluster.local").unwrap()
    );
    assert_eq!(id.namespace(), "istio-system");
    assert_eq!(id.service_account(), "istiod");
    assert_eq!(id.principal(), "cluster.local/ns/istio-system/sa/istiod");
    assert_eq!(
        id.to_string(),
        "spiffe://cluster.local/ns/istio-system/sa/istiod"
    );

    let td = TrustDomain::new("cluster.local").unwrap();
    let built = IstioIdentity::new(&td, "istio-system", "istiod").unwrap();
    assert_eq!(built, id);
    let spiffe: SpiffeId = built.clone().into();
    assert_eq!(IstioIdentity::try_from(&spiffe).unwrap(), id);
    assert_eq!(IstioIdentity::try_from(spiffe.as_id_ref()).unwrap(), id);
    assert_eq!(built.as_spiffe_id(), &spiffe);

    // Names must be non-empty, spec-valid segments.
    assert_eq!(
        IstioIdentity::new(&td, "", "sa").unwrap_err(),
        SpiffeIdError::EmptySegment { index: 0 }
    );
    assert!(IstioIdentity::new(&td, "ns", "a/b").is_err());
    assert!(IstioIdentity::new(&td, "..", "x").is_err());
}

#[test]
fn kubernetes_name_rules() {
    let td = TrustDomain::new("td").unwrap();
    let check = |ns: &str, sa: &str| {
        IstioIdentity::new(&td, ns, sa)
            .unwrap()
            .validate_kubernetes_names()
    };
    assert!(check("default", "web").is_ok());
    assert!(check(&"a".repeat(63), "web").is_ok());
    assert_eq!(
        check(&"a".repeat(64), "web"),
        Err(SpiffeIdError::BadKubernetesNamespace)
    );
    assert_eq!(
        check("-a", "web"),
        Err(SpiffeIdError::BadKubernetesNamespace)
    );
    assert_eq!(
        check("a-", "web"),
        Err(SpiffeIdError::BadKubernetesNamespace)
    );
    assert_eq!(
        check("a.b", "web"),
        Err(SpiffeIdError::BadKubernetesNamespace)
    );
    assert!(check("ns", "a.b-c.d").is_ok());
    assert_eq!(
        check("ns", "a..b"),
        Err(SpiffeIdError::BadKubernetesServiceAccount)
    );
    assert_eq!(
        check("ns", ".a"),
        Err(SpiffeIdError::BadKubernetesServiceAccount)
    );
    assert_eq!(
        check("ns", "a."),
        Err(SpiffeIdError::BadKubernetesServiceAccount)
    );
    assert_eq!(
        check("ns", "A"),
        Err(SpiffeIdError::BadKubernetesServiceAccount)
    );
    let long_sa = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long_sa.len(), 253);
    assert!(check("ns", &long_sa).is_ok());
    assert_eq!(
        check("ns", &format!("{long_sa}e")),
        Err(SpiffeIdError::BadKubernetesServiceAccount)
    );
}

// === Owned-type behaviour ===

#[test]
fn clone_and_trust_domain_share_the_allocation() {
    let id = SpiffeId::parse("spiffe://example.org/a/b").unwrap();
    let clone = id.clone();
    assert!(std::ptr::eq(id.as_str(), clone.as_str()));
    let td = id.trust_domain();
    assert!(std::ptr::eq(
        td.as_str().as_ptr(),
        id.trust_domain_name().as_ptr()
    ));
    // The trust domain's own ID is rebuilt only when the source had a path.
    let td_only = TrustDomain::new("example.org").unwrap();
    assert!(std::ptr::eq(td_only.id().as_str(), td_only.id_str()));
}

#[test]
fn maps_can_be_searched_by_str() {
    use std::collections::{BTreeSet, HashMap, HashSet};
    let mut by_td = HashMap::new();
    by_td.insert(TrustDomain::new("example.org").unwrap(), 1);
    let peer = SpiffeIdRef::parse("spiffe://example.org/w").unwrap();
    assert_eq!(by_td.get(peer.trust_domain_name()), Some(&1));
    let ids: HashSet<SpiffeId> = [SpiffeId::parse("spiffe://a/b").unwrap()].into();
    assert!(ids.contains("spiffe://a/b"));
    let sorted: BTreeSet<SpiffeId> = ["spiffe://b/x", "spiffe://a/y", "spiffe://a/x"]
        .iter()
        .map(|s| SpiffeId::parse(s).unwrap())
        .collect();
    let order: Vec<&str> = sorted.iter().map(SpiffeId::as_str).collect();
    assert_eq!(order, ["spiffe://a/x", "spiffe://a/y", "spiffe://b/x"]);
}

#[test]
fn segments_iterate_both_ways() {
    let id = SpiffeIdRef::parse("spiffe://td/a/b/c").unwrap();
    assert_eq!(id.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(id.segments().rev().collect::<Vec<_>>(), ["c", "b", "a"]);
}

#[test]
fn string_conversions() {
    let id = SpiffeId::try_from(String::from("spiffe://td/a")).unwrap();
    assert_eq!(String::from(id.clone()), "spiffe://td/a");
    assert!(SpiffeId::try_from(String::from("spiffe://td/")).is_err());
    assert_eq!(format!("{id:?}"), "SpiffeId(\"spiffe://td/a\")");
    assert_eq!(format!("{:?}", id.trust_domain()), "TrustDomain(\"td\")");
}
