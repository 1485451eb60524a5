//! Property tests: parse, serialize, parse gives the same bundle and the same
//! bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use spiffe_bundle::{
    BundleMap, EcCurve, JwtAuthority, JwtBundle, ParseOptions, PublicKey, SpiffeBundle, X509Bundle,
};

fn curve() -> impl Strategy<Value = EcCurve> {
    prop_oneof![
        Just(EcCurve::P256),
        Just(EcCurve::P384),
        Just(EcCurve::P521)
    ]
}

/// Points need not be on their curve for a serialization round trip (this
/// crate does not check that; the crypto provider does when it verifies).
fn ec_key() -> impl Strategy<Value = PublicKey> {
    (curve(), any::<u64>()).prop_map(|(c, seed)| {
        let len = c.coordinate_len();
        let x: Vec<u8> = (0..len)
            .map(|i| (seed.rotate_left(i as u32) & 0xff) as u8)
            .collect();
        let y: Vec<u8> = x.iter().rev().copied().collect();
        PublicKey::ec(c, &x, &y).unwrap()
    })
}

fn rsa_key() -> impl Strategy<Value = PublicKey> {
    (
        256usize..=520,
        any::<u8>(),
        prop_oneof![
            Just(vec![1u8, 0, 1]),
            Just(vec![3u8]),
            Just(vec![0x01, 0x00, 0x00, 0x01])
        ],
    )
        .prop_map(|(len, fill, e)| {
            let mut n = vec![fill | 0x80; len];
            n[len - 1] |= 1;
            PublicKey::rsa(&n, &e).unwrap()
        })
}

fn authority() -> impl Strategy<Value = JwtAuthority> {
    (
        "[ -~\u{e9}\u{2028}\n\t\"\\\\]{1,12}",
        prop_oneof![ec_key(), rsa_key()],
        proptest::option::of(prop_oneof![
            Just("ES256".to_owned()),
            Just("RS256".to_owned()),
            Just("PS512".to_owned())
        ]),
    )
        .prop_map(|(kid, key, alg)| JwtAuthority::new(kid, key, alg).unwrap())
}

fn jwt_bundle() -> impl Strategy<Value = JwtBundle> {
    proptest::collection::vec(authority(), 0..5).prop_map(|mut auths| {
        auths.sort_by(|a, b| a.kid().cmp(b.kid()));
        auths.dedup_by(|a, b| a.kid() == b.kid());
        JwtBundle::new(td(), auths).unwrap()
    })
}

fn x509_bundle() -> impl Strategy<Value = X509Bundle> {
    proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=4).prop_map(|idx| {
        let pool = [ca_ec256(), ca_ec384(), ca_rsa(), ca_ed25519()];
        X509Bundle::from_der_certificates(td(), idx.into_iter().map(|i| pool[i].clone())).unwrap()
    })
}

fn spiffe_bundle() -> impl Strategy<Value = SpiffeBundle> {
    (
        x509_bundle(),
        jwt_bundle(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(x, j, s, h)| SpiffeBundle::new(x, j, s, h).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spiffe_bundle_round_trips(b in spiffe_bundle()) {
        let json = b.to_json();
        for opts in [ParseOptions::default(), ParseOptions::strict()] {
            let again = SpiffeBundle::parse_with(td(), json.as_bytes(), &opts).unwrap();
            prop_assert_eq!(&again, &b);
            prop_assert_eq!(again.to_json(), json.clone());
        }
        // The output is valid JSON for any other parser too.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert!(v["keys"].is_array());
    }

    #[test]
    fn jwks_round_trips(b in jwt_bundle()) {
        let json = b.to_jwks();
        let again = JwtBundle::parse_jwks(td(), json.as_bytes()).unwrap();
        prop_assert_eq!(&again, &b);
        prop_assert_eq!(again.to_jwks(), json);
    }

    #[test]
    fn x509_pem_and_der_round_trip(b in x509_bundle()) {
        let pem = X509Bundle::parse_pem(td(), b.to_pem().as_bytes()).unwrap();
        prop_assert_eq!(&pem, &b);
        let der = X509Bundle::parse_der(td(), &b.to_der()).unwrap();
        prop_assert_eq!(&der, &b);
    }

    #[test]
    fn bundle_map_round_trips(bs in proptest::collection::vec(spiffe_bundle(), 0..3), names in proptest::collection::vec("[a-z0-9]{1,8}\\.org", 3)) {
        let map: BundleMap = bs.into_iter().zip(names).map(|(b, n)| {
            let td = spiffe_id::TrustDomain::new(&n).unwrap();
            SpiffeBundle::new(
                X509Bundle::from_authorities(td.clone(), b.x509_bundle().authorities().iter().cloned()),
                JwtBundle::new(td, b.jwt_bundle().authorities().cloned()).unwrap(),
                b.sequence(),
                b.refresh_hint_seconds(),
            ).unwrap()
        }).collect();
        let json = map.to_json();
        let again = BundleMap::parse(json.as_bytes()).unwrap();
        prop_assert_eq!(&again, &map);
        prop_assert_eq!(again.to_json(), json);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SpiffeBundle::parse(td(), &bytes);
        let _ = SpiffeBundle::parse_with(td(), &bytes, &ParseOptions::strict());
        let _ = JwtBundle::parse_jwks(td(), &bytes);
        let _ = X509Bundle::parse_der(td(), &bytes);
        let _ = X509Bundle::parse_pem(td(), &bytes);
        let _ = BundleMap::parse(&bytes);
    }
}
