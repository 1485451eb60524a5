//! `FetchSecrets`: one request, one answer (S24).

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use crate::config::SdsConfig;
use crate::envelope::{SECRET_TYPE_URL, Subscription, WILDCARD, resolve};
use crate::error::SdsError;
use crate::material::WorkloadSecrets;
use crate::secret::validation_form;
use crate::stream::check_type_url;

/// Answers a unary `FetchSecrets` request from `secrets`: resolved exactly
/// as on a stream (no names, or `*`, mean everything), with
/// `version_info` empty and no nonce, as SPIRE answers (S24).
///
/// # Errors
///
/// [`SdsError::UnsupportedTypeUrl`], [`SdsError::TooManyNames`],
/// [`SdsError::NameTooLong`], and the errors of resolving the names.
pub fn fetch_secrets(
    config: &SdsConfig,
    secrets: &WorkloadSecrets,
    request: &DiscoveryRequest,
) -> Result<DiscoveryResponse, SdsError> {
    check_type_url(&request.type_url)?;
    let limits = config.limits();
    let mut subscription = Subscription::default();
    for name in &request.resource_names {
        if name.len() > limits.max_name_len {
            return Err(SdsError::NameTooLong {
                len: name.len(),
                max: limits.max_name_len,
            });
        }
        if name == WILDCARD {
            subscription.wildcard = true;
        } else if !name.is_empty() {
            subscription.names.insert(name.clone());
        }
    }
    if subscription.names.len() > limits.max_names_per_request {
        return Err(SdsError::TooManyNames {
            count: subscription.names.len(),
            max: limits.max_names_per_request,
        });
    }
    if subscription.is_empty() {
        subscription.wildcard = true;
    }
    let form = validation_form(request.node.as_ref(), config.spiffe_validator());
    let resources = resolve(&subscription, secrets, config.names(), form)?
        .into_iter()
        .map(|(_, any)| any)
        .collect();
    Ok(DiscoveryResponse {
        version_info: String::new(),
        resources,
        type_url: SECRET_TYPE_URL.to_owned(),
        nonce: String::new(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{Pki, names_of, request};

    #[test]
    fn s24_fetch_has_no_version_and_no_nonce() {
        let pki = Pki::new();
        let response = fetch_secrets(
            &pki.config(),
            &pki.secrets(),
            &request(&["default", "ROOTCA"]),
        )
        .unwrap();
        assert!(response.version_info.is_empty());
        assert!(response.nonce.is_empty());
        assert_eq!(names_of(&response), ["ROOTCA", "default"]);
        let all = fetch_secrets(&pki.config(), &pki.secrets(), &request(&[])).unwrap();
        assert_eq!(all.resources.len(), 4);
        assert!(matches!(
            fetch_secrets(&pki.config(), &pki.secrets(), &request(&["nope"])),
            Err(SdsError::UnknownNames { .. })
        ));
    }
}
