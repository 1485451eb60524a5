//! SPIFFE bundle parsing and serialization, and BundleSet lookups; X.509
//! bundle, JWKS and set lookups side by side with the `spiffe` crate 0.19 in
//! the same run. Figures and the command are in `docs/performance.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use spiffe_bundle::{BundleSet, JwtAuthority, JwtBundle, SpiffeBundle, X509Bundle};
use spiffe_id::TrustDomain;

fn ca(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn sample_bundle(td: &TrustDomain) -> SpiffeBundle {
    let certs = [
        ca(&rcgen::PKCS_ECDSA_P256_SHA256),
        ca(&rcgen::PKCS_ECDSA_P384_SHA384),
        ca(&rcgen::PKCS_RSA_SHA256),
    ];
    let x509 = X509Bundle::from_der_certificates(td.clone(), certs).unwrap();
    let jwt_keys = [
        ca(&rcgen::PKCS_ECDSA_P256_SHA256),
        ca(&rcgen::PKCS_ECDSA_P384_SHA384),
        ca(&rcgen::PKCS_RSA_SHA256),
    ];
    let auths = jwt_keys.iter().enumerate().map(|(i, der)| {
        let b = X509Bundle::from_der_certificates(td.clone(), [der.clone()]).unwrap();
        let key = b.authorities()[0].public_key().clone();
        JwtAuthority::new(format!("key-{i}"), key, None).unwrap()
    });
    let jwt = JwtBundle::new(td.clone(), auths).unwrap();
    SpiffeBundle::new(x509, jwt, Some(42), Some(300)).unwrap()
}

fn bench(c: &mut Criterion) {
    let td = TrustDomain::new("example.org").unwrap();
    let bundle = sample_bundle(&td);
    let json = bundle.to_json();
    // Check the fixture is what we think (3 + 3 authorities).
    assert_eq!(bundle.x509_bundle().len(), 3);
    assert_eq!(bundle.jwt_bundle().len(), 3);

    let mut g = c.benchmark_group("spiffe_bundle");
    g.bench_function("parse_3x509_3jwt", |b| {
        b.iter(|| SpiffeBundle::parse(td.clone(), black_box(json.as_bytes())).unwrap())
    });
    g.bench_function("serialize_3x509_3jwt", |b| {
        b.iter(|| black_box(&bundle).to_json())
    });
    g.finish();

    // The parts the `spiffe` crate also parses: concatenated DER (the
    // Workload API's X.509 bundle encoding) and a plain JWKS.
    let der = bundle.x509_bundle().to_der();
    let jwks = bundle.jwt_bundle().to_jwks();
    let their_td = spiffe::TrustDomain::new("example.org").unwrap();
    assert_eq!(
        spiffe::X509Bundle::parse_from_der(their_td.clone(), &der)
            .unwrap()
            .authorities()
            .len(),
        3
    );
    assert_eq!(
        spiffe::JwtBundle::from_jwt_authorities(their_td.clone(), jwks.as_bytes())
            .unwrap()
            .jwt_authorities()
            .count(),
        3
    );
    let mut g = c.benchmark_group("x509_bundle_der_3");
    g.bench_function("spiffe-bundle X509Bundle::parse_der", |b| {
        b.iter(|| X509Bundle::parse_der(td.clone(), black_box(&der)).unwrap())
    });
    g.bench_function("spiffe 0.19 X509Bundle::parse_from_der", |b| {
        b.iter(|| spiffe::X509Bundle::parse_from_der(their_td.clone(), black_box(&der)).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group("jwks_3");
    g.bench_function("spiffe-bundle JwtBundle::parse_jwks", |b| {
        b.iter(|| JwtBundle::parse_jwks(td.clone(), black_box(jwks.as_bytes())).unwrap())
    });
    g.bench_function("spiffe 0.19 JwtBundle::from_jwt_authorities", |b| {
        b.iter(|| {
            spiffe::JwtBundle::from_jwt_authorities(their_td.clone(), black_box(jwks.as_bytes()))
                .unwrap()
        })
    });
    g.finish();

    let set = BundleSet::new();
    let names: Vec<String> = (0..1000)
        .map(|i| format!("td-{i:04}.example.org"))
        .collect();
    for n in &names {
        let t = TrustDomain::new(n).unwrap();
        set.insert(SpiffeBundle::empty(t));
    }
    let probe_td = TrustDomain::new("td-0500.example.org").unwrap();
    let probe_name = "td-0777.example.org";
    let mut g = c.benchmark_group("bundle_set_1000");
    g.bench_function("get_by_trust_domain", |b| {
        b.iter(|| set.get(black_box(&probe_td)).unwrap())
    });
    g.bench_function("get_by_name", |b| {
        b.iter(|| set.get_by_name(black_box(probe_name)).unwrap())
    });
    let theirs: spiffe::X509BundleSet = names
        .iter()
        .map(|n| spiffe::X509Bundle::new(spiffe::TrustDomain::new(n).unwrap()))
        .collect();
    let their_probe = spiffe::TrustDomain::new("td-0500.example.org").unwrap();
    g.bench_function("spiffe 0.19 X509BundleSet::get", |b| {
        b.iter(|| theirs.get(black_box(&their_probe)).unwrap())
    });
    let snap = set.snapshot();
    g.bench_function("snapshot_get_by_name", |b| {
        b.iter(|| {
            snap.get_by_name(black_box(probe_name))
                .unwrap()
                .generation()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
