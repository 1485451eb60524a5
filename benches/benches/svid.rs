//! X509-SVID verification and parsing, each beside its reference in the same
//! run: chain verification against the raw cost of the signature checks it
//! needs (and, to measure the rest precisely, with those checks stubbed out),
//! and SVID parsing against the `spiffe` crate 0.19. Figures and the command
//! are in `docs/performance.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, UnixTime,
};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::{CaSpec, DevCa, KeyAlgorithm, SvidSpec};
use spiffe_svid::{X509Svid, verify_x509_svid_with_provider};

const NOW: u64 = 1_800_000_000;

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// What one signature check needs: the signed bytes, the signature and the
/// issuer's subjectPublicKey.
struct SignedCert {
    tbs: Vec<u8>,
    signature: Vec<u8>,
}

fn signed_parts(der: &[u8]) -> SignedCert {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    SignedCert {
        tbs: cert.tbs_certificate.as_ref().to_vec(),
        signature: cert.signature_value.data.to_vec(),
    }
}

fn subject_public_key(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec()
}

/// A signature "check" that accepts every signature of its algorithm: a
/// verification through it does all the work of a real one except the
/// cryptography, so its time is the overhead on top of the raw signature
/// checks, measured without their run-to-run noise.
#[derive(Debug)]
struct NoCrypto(&'static dyn SignatureVerificationAlgorithm);

impl SignatureVerificationAlgorithm for NoCrypto {
    fn verify_signature(
        &self,
        _public_key: &[u8],
        _message: &[u8],
        _signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.0.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.0.signature_alg_id()
    }
}

/// `provider` with only a [`NoCrypto`] stand-in for `algorithm`.
fn without_crypto(
    provider: &rustls::crypto::CryptoProvider,
    algorithm: &'static dyn SignatureVerificationAlgorithm,
) -> rustls::crypto::CryptoProvider {
    let stub: &'static NoCrypto = Box::leak(Box::new(NoCrypto(algorithm)));
    let all: &'static [&'static dyn SignatureVerificationAlgorithm] =
        Box::leak(Box::new([stub as _]));
    let mut provider = provider.clone();
    provider.signature_verification_algorithms =
        rustls::crypto::WebPkiSupportedAlgorithms { all, mapping: &[] };
    provider
}

/// A root and an intermediate of `key`'s algorithm, and a leaf under the
/// intermediate: the shape of a SPIRE deployment with an upstream CA.
fn fixture(key: KeyAlgorithm) -> (DevCa, spiffe_svid::issuer::IssuedSvid) {
    let td = TrustDomain::new("example.org").unwrap();
    let spec = CaSpec::new()
        .validity(at(NOW - 3600), at(NOW + 86_400))
        .key(key);
    let root = DevCa::root(td, &spec).unwrap();
    let intermediate = root.intermediate(&spec).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/ns/default/sa/web").unwrap();
    let leaf = intermediate
        .issue(&SvidSpec::new(id, at(NOW - 60), at(NOW + 3600)).key(key))
        .unwrap();
    (root, leaf)
}

fn verify(c: &mut Criterion) {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let cases: [(
        &str,
        KeyAlgorithm,
        &'static dyn SignatureVerificationAlgorithm,
    ); 3] = [
        (
            "P-256",
            KeyAlgorithm::EcdsaP256,
            webpki::aws_lc_rs::ECDSA_P256_SHA256,
        ),
        (
            "RSA-2048",
            KeyAlgorithm::Rsa2048,
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        ),
        ("Ed25519", KeyAlgorithm::Ed25519, webpki::aws_lc_rs::ED25519),
    ];
    for (name, key, algorithm) in cases {
        let (root, issued) = fixture(key);
        let bundle = root.bundle();
        let chain: Vec<CertificateDer<'static>> = issued.chain().to_vec();
        assert_eq!(chain.len(), 2, "leaf and intermediate");
        verify_x509_svid_with_provider(&chain, &bundle, at(NOW), &provider).unwrap();

        // The signatures the path needs: the leaf's (by the intermediate)
        // and the intermediate's (by the root).
        let leaf = signed_parts(&chain[0]);
        let intermediate = signed_parts(&chain[1]);
        let intermediate_key = subject_public_key(&chain[1]);
        let root_key = subject_public_key(root.root_certificate());
        algorithm
            .verify_signature(&intermediate_key, &leaf.tbs, &leaf.signature)
            .unwrap();
        algorithm
            .verify_signature(&root_key, &intermediate.tbs, &intermediate.signature)
            .unwrap();

        let mut g = c.benchmark_group(format!("verify/leaf+intermediate/{name}"));
        g.bench_function("spiffe-svid verify_x509_svid", |b| {
            b.iter(|| {
                verify_x509_svid_with_provider(black_box(&chain), &bundle, at(NOW), &provider)
                    .unwrap()
            })
        });
        let cache = spiffe_svid::cache::VerificationCache::with_provider(
            bundle.clone(),
            std::sync::Arc::new(provider.clone()),
        );
        cache.verify(&chain, at(NOW)).unwrap();
        g.bench_function("spiffe-svid VerificationCache::verify, warm", |b| {
            b.iter(|| cache.verify(black_box(&chain), at(NOW)).unwrap())
        });
        let stubbed = without_crypto(&provider, algorithm);
        verify_x509_svid_with_provider(&chain, &bundle, at(NOW), &stubbed).unwrap();
        g.bench_function(
            "spiffe-svid verify_x509_svid, signature checks stubbed",
            |b| {
                b.iter(|| {
                    verify_x509_svid_with_provider(black_box(&chain), &bundle, at(NOW), &stubbed)
                        .unwrap()
                })
            },
        );
        g.bench_function("raw: the 2 signature verifications", |b| {
            b.iter(|| {
                algorithm
                    .verify_signature(&intermediate_key, black_box(&leaf.tbs), &leaf.signature)
                    .unwrap();
                algorithm
                    .verify_signature(
                        &root_key,
                        black_box(&intermediate.tbs),
                        &intermediate.signature,
                    )
                    .unwrap();
            })
        });
        g.finish();
    }
}

fn parse(c: &mut Criterion) {
    let (_, issued) = fixture(KeyAlgorithm::EcdsaP256);
    let chain_der: Vec<u8> = issued.chain().iter().flat_map(|c| c.to_vec()).collect();
    let key = issued.key_der().to_vec();
    X509Svid::from_der(&chain_der, &key).unwrap();
    spiffe::X509Svid::parse_from_der(&chain_der, &key).unwrap();

    let mut g = c.benchmark_group("x509svid/parse-2-certs-and-key");
    g.bench_function("spiffe-svid X509Svid::from_der", |b| {
        b.iter(|| X509Svid::from_der(black_box(&chain_der), &key).unwrap())
    });
    g.bench_function("spiffe 0.19 X509Svid::parse_from_der", |b| {
        b.iter(|| spiffe::X509Svid::parse_from_der(black_box(&chain_der), &key).unwrap())
    });
    g.finish();
}

/// A JWT-SVID signed with ES256 by a key of the bundle, validated, beside
/// one raw ES256 verification of the same signing input.
fn jwt(c: &mut Criterion) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    };
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use spiffe_bundle::{EcCurve, JwtAuthority, JwtBundle, PublicKey};
    use spiffe_svid::JwtSvid;

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = key.public_key().as_ref().to_vec();
    let (x, y) = point[1..].split_at(32);
    let td = TrustDomain::new("example.org").unwrap();
    let authority =
        JwtAuthority::new("k1", PublicKey::ec(EcCurve::P256, x, y).unwrap(), None).unwrap();
    let bundle = JwtBundle::new(td, [authority]).unwrap();

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"spiffe://example.org/ns/default/sa/web","aud":["billing"],"exp":{},"iat":{}}}"#,
        NOW + 300,
        NOW - 10
    ));
    let signing_input = format!("{header}.{claims}");
    let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    JwtSvid::parse_and_validate(&token, &bundle, &["billing"], at(NOW)).unwrap();
    let raw = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.clone());
    raw.verify(signing_input.as_bytes(), signature.as_ref())
        .unwrap();

    let mut g = c.benchmark_group("jwt-svid/es256");
    g.bench_function("spiffe-svid JwtSvid::parse_and_validate", |b| {
        b.iter(|| {
            JwtSvid::parse_and_validate(black_box(&token), &bundle, &["billing"], at(NOW)).unwrap()
        })
    });
    g.bench_function("raw: one ES256 verification", |b| {
        b.iter(|| {
            raw.verify(black_box(signing_input.as_bytes()), signature.as_ref())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, verify, parse, jwt);
criterion_main!(benches);
