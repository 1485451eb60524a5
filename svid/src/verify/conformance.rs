//! Conformance of the chain-validation layer ([`super::verify_chain`])
//! against external corpora, run as unit tests so that the layer needs no
//! public entry point:
//!
//! - `limbo`: x509-limbo (with its BetterTLS cases), vendored in the shared
//!   folder next to the workspace (`../shared/conformance/x509-limbo`);
//! - `pkits`: NIST PKITS 4.13.34–4.13.37 (URI name constraints), from the
//!   `cryptography-vectors` PyPI package, in the folder named by `PKITS_DIR`.
//!
//! A missing corpus skips its test with a message, unless
//! `SPIFFE_CONFORMANCE_REQUIRED=1` is set (as in CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod limbo;
mod pkits;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// Whether a missing corpus must fail the test instead of skipping it.
fn required() -> bool {
    std::env::var_os("SPIFFE_CONFORMANCE_REQUIRED").is_some_and(|v| v == "1")
}

/// Fails (corpus required) or prints a skip line; the caller then returns.
fn missing(what: &str) {
    assert!(
        !required(),
        "{what}, and SPIFFE_CONFORMANCE_REQUIRED=1 makes this corpus mandatory"
    );
    println!("SKIPPED: {what} (set SPIFFE_CONFORMANCE_REQUIRED=1 to make this a failure)");
}

/// The shared folder, a sibling of the workspace root.
fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The crate's default provider; `None` (with a skip line, or a failure when
/// required) in a build without a built-in provider.
fn provider() -> Option<Arc<CryptoProvider>> {
    let provider = crate::default_crypto_provider();
    if provider.is_none() {
        missing("no rustls CryptoProvider in this build (features aws-lc-rs / ring off)");
    }
    provider
}
