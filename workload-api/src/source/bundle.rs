//! `BundleSource`: X.509 bundles for workloads that only verify, following
//! `FetchX509Bundles`.

use std::sync::Arc;

use spiffe_bundle::{X509Bundle, X509BundleSource};
use spiffe_id::TrustDomain;

use super::follow::{Follower, Published};
use super::{SourceOptions, Subscription};
use crate::decode::decode_x509_bundles_response;
use crate::{ClientError, EndpointAddress, WorkloadApiClient, X509Bundles, proto};

/// The X.509 bundles the workload may use, kept current by following
/// `FetchX509Bundles`: for workloads that verify peers but have no SVID of
/// their own to present. It follows the stream as described on
/// [`X509Source`](crate::X509Source#how-a-source-follows-the-workload-api).
///
/// It is an [`X509BundleSource`] for [`spiffe_svid::verify_x509_svid`] and
/// the rustls verifiers. For JWT bundles use
/// [`JwtSource`](crate::JwtSource).
///
/// ```no_run
/// use spiffe_bundle::X509BundleSource;
/// use spiffe_id::TrustDomain;
/// use spiffe_workload_api::BundleSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bundles = BundleSource::from_env().await?;
/// let td = TrustDomain::new("example.org")?;
/// if let Some(bundle) = bundles.x509_bundle_for(&td) {
///     println!("{} authorities for {td}", bundle.len());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BundleSource {
    inner: Arc<Follower<X509Bundles>>,
}

impl BundleSource {
    /// Follows the Workload API at `address` with the default
    /// [`SourceOptions`]; returns once the first bundles have arrived.
    ///
    /// # Errors
    ///
    /// As [`BundleSource::with_options`], and [`ClientError::Connect`]
    /// outside a Tokio runtime.
    pub async fn new(address: &EndpointAddress) -> Result<Self, ClientError> {
        let client = WorkloadApiClient::connect_lazy(address)?;
        Self::with_options(client, SourceOptions::default()).await
    }

    /// Follows the Workload API named by `SPIFFE_ENDPOINT_SOCKET` (E-07).
    ///
    /// # Errors
    ///
    /// [`ClientError::Address`] when the variable is unset or invalid;
    /// otherwise as [`BundleSource::new`].
    pub async fn from_env() -> Result<Self, ClientError> {
        Self::new(&EndpointAddress::from_env()?).await
    }

    /// Follows the Workload API through `client`; returns once a message
    /// has decoded.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoInitialUpdate`] when no usable message came within
    /// the initial timeout, with the last error seen;
    /// [`ClientError::Status`] at once for a status that is not retried;
    /// [`ClientError::Connect`] outside a Tokio runtime.
    pub async fn with_options(
        client: WorkloadApiClient,
        options: SourceOptions,
    ) -> Result<Self, ClientError> {
        let decode = Box::new(|message: &proto::X509BundlesResponse| {
            Ok(Published {
                value: Arc::new(decode_x509_bundles_response(message)?),
                svid: None,
                problem: None,
            })
        });
        let inner = Follower::start(
            client,
            &options,
            |client| Box::pin(async move { client.open_x509_bundles().await }),
            decode,
        )
        .await?;
        Ok(BundleSource {
            inner: Arc::new(inner),
        })
    }

    /// The latest X.509 bundles.
    pub fn x509_bundles(&self) -> Arc<X509Bundles> {
        self.inner.value()
    }

    /// Notifications of each change of the bundles.
    pub fn subscribe(&self) -> Subscription<X509Bundles> {
        self.inner.subscribe()
    }

    /// The last error met while following the Workload API, or `None` if
    /// the last message was good.
    pub fn last_error(&self) -> Option<ClientError> {
        self.inner.last_error()
    }
}

impl X509BundleSource for BundleSource {
    fn x509_bundle_for(&self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.inner.value().x509_bundle_for(trust_domain)
    }
}
