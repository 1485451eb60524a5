//! Server settings: the own trust domain, names, validator default and
//! limits.

use spiffe_id::TrustDomain;

use crate::names::SecretNames;

/// Bounds on what one client may make the server hold or do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most distinct resource names one stream may subscribe to at once.
    /// Envoy asks for one name per stream (S26); Istio's proxies ask for a
    /// handful. Default 256.
    pub max_names_per_request: usize,
    /// Longest resource name accepted, in bytes. A SPIFFE ID is at most
    /// 2048 bytes. Default 2048.
    pub max_name_len: usize,
    /// Most SDS streams (StreamSecrets and DeltaSecrets together) open at
    /// once across the server; further streams are refused with
    /// `RESOURCE_EXHAUSTED`. Default 16,384.
    pub max_streams: usize,
    /// Largest gRPC message decoded or encoded, in bytes. Requests are small;
    /// responses carry certificate chains and bundles. Default 4 MiB.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_names_per_request: 256,
            max_name_len: 2048,
            max_streams: 16_384,
            max_message_bytes: 4 * 1024 * 1024,
        }
    }
}

/// How the SDS server names and builds secrets.
///
/// ```
/// use spiffe_id::TrustDomain;
/// use spiffe_sds::{Limits, SdsConfig, SecretNames};
///
/// let config = SdsConfig::new(TrustDomain::new("example.org")?)
///     .with_names(SecretNames::istio_federation())
///     .with_spiffe_validator(true)
///     .with_limits(Limits::default());
/// assert_eq!(config.trust_domain().as_str(), "example.org");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SdsConfig {
    trust_domain: TrustDomain,
    names: SecretNames,
    spiffe_validator: bool,
    limits: Limits,
}

impl SdsConfig {
    /// SPIRE's defaults for a server of `trust_domain`: names `default`,
    /// `ROOTCA`, `ALL`; the SPIFFE validator on; default [`Limits`].
    pub fn new(trust_domain: TrustDomain) -> Self {
        SdsConfig {
            trust_domain,
            names: SecretNames::spire(),
            spiffe_validator: true,
            limits: Limits::default(),
        }
    }

    /// Uses other resource names.
    pub fn with_names(mut self, names: SecretNames) -> Self {
        self.names = names;
        self
    }

    /// Sends Envoy's SPIFFE certificate validator (`true`, the default) or
    /// plain `trusted_ca` PEM (`false`, SPIRE's
    /// `disable_spiffe_cert_validation`). Each Envoy may override this with
    /// node metadata (S10).
    pub fn with_spiffe_validator(mut self, on: bool) -> Self {
        self.spiffe_validator = on;
        self
    }

    /// Uses other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The server's own trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The resource names.
    pub fn names(&self) -> &SecretNames {
        &self.names
    }

    /// Whether the SPIFFE validator is the default.
    pub fn spiffe_validator(&self) -> bool {
        self.spiffe_validator
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
