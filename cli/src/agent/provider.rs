//! The agent's identity provider: the workspace's selector provider, with
//! a log line for each caller it attests or turns away.

use std::sync::Arc;

use spiffe_id::SpiffeId;
use spiffe_svid::JwtSvid;
use spiffe_workload_api::server::{
    Caller, IdentityProvider, ProviderError, SelectorIdentityProvider, Updates,
};
use spiffe_workload_api::{JwtBundles, JwtSvidToken, X509Bundles, X509Context};

pub(super) struct AgentProvider {
    pub(super) inner: Arc<SelectorIdentityProvider>,
}

/// `pid=.. uid=.. gid=..` of a caller, for log lines.
fn who(caller: &Caller) -> String {
    let field = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    match caller.tcp_peer_addr() {
        Some(addr) => format!("tcp={addr}"),
        None => format!(
            "pid={} uid={} gid={}",
            field(caller.pid()),
            field(caller.uid()),
            field(caller.gid())
        ),
    }
}

fn log_refusal(caller: &Caller, rpc: &str, e: &ProviderError) {
    match e {
        ProviderError::NoIdentity => tracing::info!(
            caller = %who(caller),
            rpc,
            "caller denied: no registration entry matches"
        ),
        // A token that does not validate is the caller's business.
        ProviderError::InvalidRequest { reason } => {
            tracing::info!(caller = %who(caller), rpc, reason, "request refused");
        }
        other => tracing::warn!(caller = %who(caller), rpc, error = %other, "request failed"),
    }
}

impl IdentityProvider for AgentProvider {
    async fn x509_context(&self, caller: &Caller) -> Result<Updates<X509Context>, ProviderError> {
        let updates = self.inner.x509_context(caller).await?;
        match &*updates.borrow() {
            Ok(context) => {
                let ids: Vec<&str> = context
                    .svids()
                    .iter()
                    .map(|s| s.svid().spiffe_id().as_str())
                    .collect();
                tracing::info!(caller = %who(caller), ids = ?ids, "caller attested");
            }
            Err(e) => log_refusal(caller, "X509-SVID", e),
        }
        Ok(updates)
    }

    async fn x509_bundles(&self, caller: &Caller) -> Result<Updates<X509Bundles>, ProviderError> {
        let updates = self.inner.x509_bundles(caller).await?;
        if let Err(e) = &*updates.borrow() {
            log_refusal(caller, "X.509 bundles", e);
        }
        Ok(updates)
    }

    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, ProviderError> {
        match self.inner.jwt_svids(caller, audience, spiffe_id).await {
            Ok(tokens) => {
                let ids: Vec<&str> = tokens.iter().map(|t| t.spiffe_id().as_str()).collect();
                tracing::info!(caller = %who(caller), ids = ?ids, audience = ?audience, "JWT-SVID served");
                Ok(tokens)
            }
            Err(e) => {
                log_refusal(caller, "JWT-SVID", &e);
                Err(e)
            }
        }
    }

    async fn jwt_bundles(&self, caller: &Caller) -> Result<Updates<JwtBundles>, ProviderError> {
        let updates = self.inner.jwt_bundles(caller).await?;
        if let Err(e) = &*updates.borrow() {
            log_refusal(caller, "JWT bundles", e);
        }
        Ok(updates)
    }

    async fn validate_jwt_svid(
        &self,
        caller: &Caller,
        token: &str,
        audience: &str,
    ) -> Result<JwtSvid, ProviderError> {
        self.inner
            .validate_jwt_svid(caller, token, audience)
            .await
            .inspect_err(|e| log_refusal(caller, "ValidateJWTSVID", e))
    }
}
