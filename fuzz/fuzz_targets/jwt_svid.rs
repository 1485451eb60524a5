//! JWT-SVID validation of arbitrary tokens against a fixed bundle: never
//! panic. Besides the raw input as a token, the input split at the first NUL
//! byte is used as header and claims JSON (base64url-encoded here, so the
//! fuzzer reaches the JSON and claim checks), followed by a signature made of
//! the remaining bytes.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::UnixTime;
use spiffe_bundle::{EcCurve, JwtAuthority, JwtBundle, PublicKey};
use spiffe_id::TrustDomain;
use spiffe_svid::{JwtSvid, JwtValidationOptions};

// The P-256 base point: a valid public key nobody uses for real.
const P256_X: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
const P256_Y: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];

fn bundle() -> Option<&'static JwtBundle> {
    static BUNDLE: OnceLock<Option<JwtBundle>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let td = TrustDomain::new("example.org").ok()?;
            let ec = PublicKey::ec(EcCurve::P256, &P256_X, &P256_Y).ok()?;
            let rsa = PublicKey::rsa(&[0xc5; 256], &[1, 0, 1]).ok()?;
            JwtBundle::new(
                td,
                [
                    JwtAuthority::new("ec", ec, None).ok()?,
                    JwtAuthority::new("rsa", rsa, Some("RS256".to_owned())).ok()?,
                ],
            )
            .ok()
        })
        .as_ref()
}

fn check(token: &str, bundle: &JwtBundle, at: UnixTime) {
    let lax = JwtValidationOptions::new().with_kid_optional(true);
    let _ = JwtSvid::parse_and_validate(token, bundle, &["svc"], at);
    let _ = lax.parse_and_validate(token, bundle, &["svc", "other"], at);
    if let Ok(svid) = JwtSvid::parse_insecure(token, &["svc"], at) {
        // Accepted claims are consistent with what was asked for.
        assert!(svid.audience().iter().any(|a| a == "svc"));
        assert_eq!(svid.token(), token);
        let _ = format!("{svid:?}");
    }
    let _ = lax.verify_jws_with_bundle(token, bundle);
}

fuzz_target!(|data: &[u8]| {
    let Some(bundle) = bundle() else {
        return;
    };
    let at = UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000));
    check(&String::from_utf8_lossy(data), bundle, at);

    let mut parts = data.splitn(3, |&b| b == 0);
    if let (Some(header), Some(claims)) = (parts.next(), parts.next()) {
        let signature = parts.next().unwrap_or_default();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(signature)
        );
        check(&token, bundle, at);
    }
});
