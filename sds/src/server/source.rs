//! Following a caller's identities and bundles through the
//! [`IdentityProvider`]'s subscriptions.

use std::sync::Arc;

use spiffe_id::TrustDomain;
use spiffe_workload_api::server::{Caller, IdentityProvider, ProviderError, Updates};
use spiffe_workload_api::{X509Bundles, X509Context};
use tonic::Status;

use crate::material::WorkloadSecrets;

/// The two subscriptions SDS reads for one caller: the X.509 context (SVIDs
/// and the bundles that go with them) and the X.509 bundles (for a caller
/// without an identity, which SDS still serves bundle names to, as SPIRE
/// does).
pub(crate) struct WorkloadWatch {
    trust_domain: TrustDomain,
    context: Option<Updates<X509Context>>,
    bundles: Option<Updates<X509Bundles>>,
}

impl WorkloadWatch {
    /// Attests `caller` through the provider: one call per subscription,
    /// once per RPC (S4). `NoIdentity` is not an error for SDS: bundle names
    /// are still served.
    pub(crate) async fn attest<P: IdentityProvider>(
        provider: &P,
        caller: &Caller,
        trust_domain: TrustDomain,
    ) -> Result<Self, Status> {
        let context = match provider.x509_context(caller).await {
            Ok(updates) => Some(updates),
            Err(ProviderError::NoIdentity) => None,
            Err(e) => return Err(e.to_status()),
        };
        let bundles = match provider.x509_bundles(caller).await {
            Ok(updates) => Some(updates),
            Err(ProviderError::NoIdentity) => None,
            Err(e) => return Err(e.to_status()),
        };
        Ok(WorkloadWatch {
            trust_domain,
            context,
            bundles,
        })
    }

    /// The current secrets, marking both subscriptions as seen.
    ///
    /// The context's bundles are used when the caller has an identity; the
    /// bundle subscription only when it has none.
    pub(crate) fn current(&mut self) -> Result<Arc<WorkloadSecrets>, Status> {
        let context = match &mut self.context {
            Some(rx) => match &*rx.borrow_and_update() {
                Ok(context) => Some(Arc::clone(context)),
                Err(ProviderError::NoIdentity) => None,
                Err(e) => return Err(e.to_status()),
            },
            None => None,
        };
        let bundles = match &mut self.bundles {
            Some(rx) => match &*rx.borrow_and_update() {
                Ok(bundles) => Some(Arc::clone(bundles)),
                Err(ProviderError::NoIdentity) => None,
                // Only fatal when there is nothing else to serve from.
                Err(e) if context.is_none() => return Err(e.to_status()),
                Err(_) => None,
            },
            None => None,
        };
        let td = self.trust_domain.clone();
        Ok(Arc::new(match (context, bundles) {
            (Some(context), _) => WorkloadSecrets::from_context(td, &context),
            (None, Some(bundles)) => WorkloadSecrets::bundles_only(td, (*bundles).clone()),
            (None, None) => WorkloadSecrets::bundles_only(td, X509Bundles::new()),
        }))
    }

    /// Waits until either subscription has a new value, then returns the
    /// new secrets.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the provider dropped a subscription (the client
    /// reconnects and attests again), or the status of a provider error.
    pub(crate) async fn changed(&mut self) -> Result<Arc<WorkloadSecrets>, Status> {
        let stopped = || Status::unavailable("identity provider stopped");
        match (&mut self.context, &mut self.bundles) {
            (Some(a), Some(b)) => {
                tokio::select! {
                    r = a.changed() => r.map_err(|_| stopped())?,
                    r = b.changed() => r.map_err(|_| stopped())?,
                }
            }
            (Some(a), None) => a.changed().await.map_err(|_| stopped())?,
            (None, Some(b)) => b.changed().await.map_err(|_| stopped())?,
            (None, None) => std::future::pending::<()>().await,
        }
        self.current()
    }
}
