//! SPIFFE ID parsing and cloning, side by side with the `spiffe` crate 0.19 in
//! the same run. Figures and the command are in `docs/performance.md`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const ISTIO: &str =
    "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
const TEN_SEGMENTS: &str = "spiffe://example.org/a1/b22/c333/d4444/e55555/f666666/g7777777/h88888888/i999999999/j0000000000";
/// Invalid: a trailing slash, found only at the very end.
const INVALID: &str =
    "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account/";

fn parse(c: &mut Criterion, group: &str, input: &str) {
    let mut g = c.benchmark_group(group);
    g.bench_function("spiffe-id SpiffeIdRef::parse", |b| {
        b.iter(|| spiffe_id::SpiffeIdRef::parse(black_box(input)))
    });
    g.bench_function("spiffe-id SpiffeId::parse", |b| {
        b.iter(|| spiffe_id::SpiffeId::parse(black_box(input)))
    });
    g.bench_function("spiffe 0.19 SpiffeId::new", |b| {
        b.iter(|| spiffe::SpiffeId::new(black_box(input)))
    });
    g.finish();
}

fn parse_istio(c: &mut Criterion) {
    parse(c, "parse/istio", ISTIO);
    let mut g = c.benchmark_group("parse/istio-view");
    g.bench_function("spiffe-id IstioIdentity::parse", |b| {
        b.iter(|| spiffe_id::IstioIdentity::parse(black_box(ISTIO)))
    });
    g.finish();
}

fn parse_ten_segments(c: &mut Criterion) {
    parse(c, "parse/10-segments", TEN_SEGMENTS);
}

fn reject_invalid(c: &mut Criterion) {
    assert!(spiffe_id::SpiffeIdRef::parse(INVALID).is_err());
    assert!(spiffe::SpiffeId::new(INVALID).is_err());
    parse(c, "parse/reject-trailing-slash", INVALID);
}

fn clone(c: &mut Criterion) {
    let ours = spiffe_id::SpiffeId::parse(ISTIO).unwrap();
    let theirs = spiffe::SpiffeId::new(ISTIO).unwrap();
    let mut g = c.benchmark_group("clone/istio");
    g.bench_function("spiffe-id SpiffeId::clone", |b| {
        b.iter(|| black_box(&ours).clone())
    });
    g.bench_function("spiffe 0.19 SpiffeId::clone", |b| {
        b.iter(|| black_box(&theirs).clone())
    });
    g.finish();

    let mut g = c.benchmark_group("trust-domain/from-id");
    g.bench_function("spiffe-id SpiffeId::trust_domain", |b| {
        b.iter(|| black_box(&ours).trust_domain())
    });
    g.bench_function("spiffe 0.19 SpiffeId::trust_domain", |b| {
        b.iter(|| black_box(&theirs).trust_domain().clone())
    });
    g.finish();
}

criterion_group!(
    benches,
    parse_istio,
    parse_ten_segments,
    reject_invalid,
    clone
);
criterion_main!(benches);
