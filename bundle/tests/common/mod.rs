//! Test fixtures: certificates and keys generated with rcgen, and JWK JSON
//! built from them. Nothing is checked in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, GeneralSubtree, IsCa, KeyPair, NameConstraints,
    SanType, SignatureAlgorithm,
};
use serde_json::{Value, json};
use spiffe_bundle::{PublicKey, X509Authority};
use spiffe_id::TrustDomain;

pub fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

/// A self-signed CA certificate for `spiffe://<td>` with a key of `alg`.
pub fn ca_cert(alg: &'static SignatureAlgorithm, cn: &str, name_constraints: bool) -> Vec<u8> {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())];
    if name_constraints {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".into())],
            excluded_subtrees: vec![],
        });
    }
    params.self_signed(&key).unwrap().der().to_vec()
}

/// A leaf (not CA) certificate.
pub fn leaf_cert() -> Vec<u8> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://example.org/workload".try_into().unwrap(),
    )];
    params.self_signed(&key).unwrap().der().to_vec()
}

struct Fixtures {
    ec256: Vec<u8>,
    ec384: Vec<u8>,
    rsa: Vec<u8>,
    ed25519: Vec<u8>,
    constrained: Vec<u8>,
    jwt256: Vec<u8>,
    jwt384: Vec<u8>,
    jwt_rsa: Vec<u8>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| Fixtures {
        ec256: ca_cert(&rcgen::PKCS_ECDSA_P256_SHA256, "ca ec256", false),
        ec384: ca_cert(&rcgen::PKCS_ECDSA_P384_SHA384, "ca ec384", false),
        rsa: ca_cert(&rcgen::PKCS_RSA_SHA256, "ca rsa", false),
        ed25519: ca_cert(&rcgen::PKCS_ED25519, "ca ed25519", false),
        constrained: ca_cert(&rcgen::PKCS_ECDSA_P256_SHA256, "ca constrained", true),
        jwt256: ca_cert(&rcgen::PKCS_ECDSA_P256_SHA256, "jwt 256", false),
        jwt384: ca_cert(&rcgen::PKCS_ECDSA_P384_SHA384, "jwt 384", false),
        jwt_rsa: ca_cert(&rcgen::PKCS_RSA_SHA256, "jwt rsa", false),
    })
}

pub fn ca_ec256() -> Vec<u8> {
    fixtures().ec256.clone()
}
pub fn ca_ec384() -> Vec<u8> {
    fixtures().ec384.clone()
}
pub fn ca_rsa() -> Vec<u8> {
    fixtures().rsa.clone()
}
pub fn ca_ed25519() -> Vec<u8> {
    fixtures().ed25519.clone()
}
pub fn ca_constrained() -> Vec<u8> {
    fixtures().constrained.clone()
}

pub fn key_of(cert: &[u8]) -> PublicKey {
    X509Authority::from_der(cert.to_vec())
        .unwrap()
        .public_key()
        .clone()
}

/// Real public keys for JWT authorities.
pub fn jwt_key_p256() -> PublicKey {
    key_of(&fixtures().jwt256)
}
pub fn jwt_key_p384() -> PublicKey {
    key_of(&fixtures().jwt384)
}
pub fn jwt_key_rsa() -> PublicKey {
    key_of(&fixtures().jwt_rsa)
}

pub fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The JWK key members of `key` (kty and params).
pub fn jwk_key_members(key: &PublicKey) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("kty".into(), json!(key.kty()));
    if let Some((x, y)) = key.ec_coordinates() {
        m.insert("crv".into(), json!(key.ec_curve().unwrap().jwk_name()));
        m.insert("x".into(), json!(b64u(x)));
        m.insert("y".into(), json!(b64u(y)));
    }
    if let Some((n, e)) = key.rsa_components() {
        m.insert("n".into(), json!(b64u(n)));
        m.insert("e".into(), json!(b64u(e)));
    }
    if let Some(x) = key.ed25519() {
        m.insert("crv".into(), json!("Ed25519"));
        m.insert("x".into(), json!(b64u(x)));
    }
    m
}

/// An `x509-svid` entry as SPIRE publishes it: key members, `use`, one `x5c`.
pub fn x509_entry(cert: &[u8]) -> Value {
    let mut m = jwk_key_members(&key_of(cert));
    m.insert("use".into(), json!("x509-svid"));
    m.insert("x5c".into(), json!([b64(cert)]));
    Value::Object(m)
}

/// A `jwt-svid` entry as SPIRE publishes it.
pub fn jwt_entry(kid: &str, key: &PublicKey) -> Value {
    let mut m = jwk_key_members(key);
    m.insert("use".into(), json!("jwt-svid"));
    m.insert("kid".into(), json!(kid));
    Value::Object(m)
}

/// A JWKS key as SPIRE's FetchJWTBundles sends it: no `use`.
pub fn jwks_key(kid: &str, key: &PublicKey) -> Value {
    let mut m = jwk_key_members(key);
    m.insert("kid".into(), json!(kid));
    Value::Object(m)
}

pub fn doc(keys: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

pub fn with(mut v: Value, member: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(member.into(), value);
    v
}

pub fn without(mut v: Value, member: &str) -> Value {
    v.as_object_mut().unwrap().remove(member);
    v
}
