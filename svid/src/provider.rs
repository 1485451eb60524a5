//! Which rustls `CryptoProvider` does the cryptography.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The provider this crate uses when the caller passes none: the process
/// default installed with [`CryptoProvider::install_default`] if there is
/// one (so an application that installs a FIPS provider gets it here too),
/// otherwise the built-in provider of the enabled feature (`aws-lc-rs` first,
/// then `ring`). `None` when neither exists.
pub fn default_crypto_provider() -> Option<Arc<CryptoProvider>> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Some(Arc::clone(provider));
    }
    builtin()
}

#[cfg(feature = "aws-lc-rs")]
fn builtin() -> Option<Arc<CryptoProvider>> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    Some(Arc::clone(PROVIDER.get_or_init(|| {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    })))
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn builtin() -> Option<Arc<CryptoProvider>> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    Some(Arc::clone(PROVIDER.get_or_init(|| {
        Arc::new(rustls::crypto::ring::default_provider())
    })))
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
fn builtin() -> Option<Arc<CryptoProvider>> {
    None
}
