//! Where verifiers get bundles from.

use std::sync::Arc;

use spiffe_id::TrustDomain;

use crate::set::Snapshot;
use crate::{BundleMap, BundleSet, JwtBundle, SpiffeBundle, X509Bundle};

/// Gives the X.509 bundle of a trust domain.
///
/// Implemented by [`X509Bundle`] (which answers only for its own trust
/// domain), [`SpiffeBundle`], [`BundleMap`], [`BundleSet`] and its
/// [`Snapshot`], and by references, `Arc`s and boxes of any source. Bundles
/// are cheap handles (one reference count), so returning one by value costs
/// no copy of its content.
pub trait X509BundleSource {
    /// The X.509 bundle of `trust_domain`, or `None` if this source has none
    /// (then no X509-SVID of that trust domain is trusted).
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle>;
}

/// Gives the JWT bundle of a trust domain. Implemented by the same types as
/// [`X509BundleSource`], with [`JwtBundle`] in place of [`X509Bundle`].
pub trait JwtBundleSource {
    /// The JWT bundle of `trust_domain`, or `None` if this source has none
    /// (then no JWT-SVID of that trust domain is trusted).
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle>;
}

impl X509BundleSource for X509Bundle {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        (self.trust_domain() == trust_domain).then(|| self.clone())
    }
}

impl JwtBundleSource for JwtBundle {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        (self.trust_domain() == trust_domain).then(|| self.clone())
    }
}

impl X509BundleSource for SpiffeBundle {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        (self.trust_domain() == trust_domain).then(|| self.x509_bundle().clone())
    }
}

impl JwtBundleSource for SpiffeBundle {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        (self.trust_domain() == trust_domain).then(|| self.jwt_bundle().clone())
    }
}

impl X509BundleSource for Snapshot {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.get(trust_domain).map(|b| b.x509_bundle().clone())
    }
}

impl JwtBundleSource for Snapshot {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.get(trust_domain).map(|b| b.jwt_bundle().clone())
    }
}

impl X509BundleSource for BundleSet {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.get(trust_domain).map(|b| b.x509_bundle().clone())
    }
}

impl JwtBundleSource for BundleSet {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.get(trust_domain).map(|b| b.jwt_bundle().clone())
    }
}

impl X509BundleSource for BundleMap {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.get(trust_domain.as_str())
            .map(|b| b.x509_bundle().clone())
    }
}

impl JwtBundleSource for BundleMap {
    fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
        self.get(trust_domain.as_str())
            .map(|b| b.jwt_bundle().clone())
    }
}

macro_rules! forward {
    ($($wrapper:ty),*) => {$(
        impl<T: X509BundleSource + ?Sized> X509BundleSource for $wrapper {
            fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
                (**self).x509_bundle_for(trust_domain)
            }
        }
        impl<T: JwtBundleSource + ?Sized> JwtBundleSource for $wrapper {
            fn jwt_bundle_for(&self, trust_domain: &TrustDomain) -> Option<JwtBundle> {
                (**self).jwt_bundle_for(trust_domain)
            }
        }
    )*};
}

forward!(&T, Arc<T>, Box<T>);
