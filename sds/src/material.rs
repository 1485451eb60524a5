//! What a workload may receive over SDS, and how requested names resolve to
//! `Secret`s (S5 to S8).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use spiffe_bundle::X509Bundle;
use spiffe_id::TrustDomain;
use spiffe_svid::X509Svid;
use spiffe_workload_api::{X509Bundles, X509Context};

use crate::error::SdsError;
use crate::names::{ResourceRef, SecretNames};
use crate::secret::{ValidationForm, tls_certificate_secret, validation_context_secret};

/// The identities and bundles one workload may receive over SDS: its
/// X509-SVIDs in order (the first is the default identity) and the X.509
/// bundles it trusts, keyed by trust domain, including the server's own
/// trust domain.
///
/// Unlike an [`X509Context`], it may hold no SVID at all: SDS still serves
/// bundle names to a workload without an identity (as SPIRE does), and only
/// SVID names fail.
#[derive(Clone, Debug)]
pub struct WorkloadSecrets {
    trust_domain: TrustDomain,
    svids: Vec<X509Svid>,
    bundles: X509Bundles,
}

impl WorkloadSecrets {
    /// Secrets of a workload in the server's trust domain `trust_domain`:
    /// `svids` in order (the first is the default), and `bundles`.
    pub fn new(trust_domain: TrustDomain, svids: Vec<X509Svid>, bundles: X509Bundles) -> Self {
        WorkloadSecrets {
            trust_domain,
            svids,
            bundles,
        }
    }

    /// The SVIDs and bundles of an X.509 context, hints dropped (SDS does
    /// not consider hints, S6).
    pub fn from_context(trust_domain: TrustDomain, context: &X509Context) -> Self {
        let svids = context.svids().iter().map(|s| s.svid().clone()).collect();
        WorkloadSecrets::new(trust_domain, svids, context.bundles().clone())
    }

    /// Bundles only, for a workload without an identity.
    pub fn bundles_only(trust_domain: TrustDomain, bundles: X509Bundles) -> Self {
        WorkloadSecrets::new(trust_domain, Vec::new(), bundles)
    }

    /// The server's own trust domain (`ROOTCA` in SPIRE's naming).
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The SVIDs, the default first.
    pub fn svids(&self) -> &[X509Svid] {
        &self.svids
    }

    /// The bundles.
    pub fn bundles(&self) -> &X509Bundles {
        &self.bundles
    }

    /// The `Secret` for one requested name, named exactly as requested (S8).
    ///
    /// # Errors
    ///
    /// [`SdsError::UnknownNames`] (naming `name` alone) when the name
    /// resolves to nothing this workload has, and the errors of
    /// [`validation_context_secret`].
    pub fn secret_for(
        &self,
        name: &str,
        names: &SecretNames,
        form: ValidationForm,
    ) -> Result<Secret, SdsError> {
        let unknown = || SdsError::UnknownNames {
            names: vec![name.to_owned()],
        };
        match names.classify(name).ok_or_else(unknown)? {
            ResourceRef::DefaultSvid => {
                let svid = self.svids.first().ok_or_else(unknown)?;
                Ok(tls_certificate_secret(name, svid))
            }
            ResourceRef::Svid(id) => {
                let svid = self
                    .svids
                    .iter()
                    .find(|s| *s.spiffe_id() == id)
                    .ok_or_else(unknown)?;
                Ok(tls_certificate_secret(name, svid))
            }
            ResourceRef::OwnBundle => {
                let bundle = self.bundles.get(&self.trust_domain).ok_or_else(unknown)?;
                validation_context_secret(name, [bundle], form, false)
            }
            ResourceRef::Bundle(td) => {
                let bundle = self.bundles.get(&td).ok_or_else(unknown)?;
                validation_context_secret(name, [bundle], form, false)
            }
            ResourceRef::AllBundles => {
                validation_context_secret(name, self.all_bundles(), form, true)
            }
        }
    }

    /// Own bundle first, then the federated ones; the validator sorts them
    /// anyway, this only makes a missing own bundle harmless.
    fn all_bundles(&self) -> impl Iterator<Item = &X509Bundle> + '_ {
        self.bundles.iter()
    }

    /// Everything the workload may have, for a wildcard request (S5): every
    /// bundle with X.509 authorities, named by its trust domain's ID, and
    /// every SVID, named by its SPIFFE ID (the first SVID of an ID wins).
    /// Keyed and so sorted by name.
    pub fn wildcard_secrets(&self, form: ValidationForm) -> BTreeMap<String, Secret> {
        let mut out = BTreeMap::new();
        for bundle in self.bundles.iter() {
            let name = bundle.trust_domain().id_str();
            // Bundles Envoy would reject are left out rather than failing
            // the whole wildcard answer.
            if let Ok(secret) = validation_context_secret(name, [bundle], form, false) {
                out.insert(name.to_owned(), secret);
            }
        }
        for svid in &self.svids {
            let name = svid.spiffe_id().as_str();
            if !out.contains_key(name) {
                out.insert(name.to_owned(), tls_certificate_secret(name, svid));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CertificateValidationContext, SpiffeCertValidatorConfig,
    };
    use prost::Message;

    use super::*;
    use crate::SPIFFE_VALIDATOR_NAME;
    use crate::fixtures::{Pki, td};

    fn spiffe_entries(secret: &Secret) -> Vec<(String, usize)> {
        let Some(Type::ValidationContext(ctx)) = &secret.r#type else {
            panic!("not a validation context: {secret:?}");
        };
        let custom = ctx.custom_validator_config.as_ref().unwrap();
        assert_eq!(custom.name, SPIFFE_VALIDATOR_NAME);
        assert!(ctx.trusted_ca.is_none());
        let any = custom.typed_config.as_ref().unwrap();
        assert_eq!(
            any.type_url,
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig"
        );
        let config = SpiffeCertValidatorConfig::decode(any.value.as_slice()).unwrap();
        config
            .trust_domains
            .iter()
            .map(|t| {
                assert!(t.workload_trust_domain.is_empty());
                let Some(
                    envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(
                        b,
                    ),
                ) = t.trust_bundle.as_ref().unwrap().specifier.as_ref()
                else {
                    panic!()
                };
                let pem = String::from_utf8(b.clone()).unwrap();
                (t.name.clone(), pem.matches("BEGIN CERTIFICATE").count())
            })
            .collect()
    }

    #[test]
    fn s9_tls_certificate_is_pem_chain_leaf_first_and_pkcs8_key() {
        let pki = Pki::new();
        let secrets = pki.secrets();
        let secret = secrets
            .secret_for(
                "default",
                &SecretNames::spire(),
                ValidationForm::SpiffeValidator,
            )
            .unwrap();
        assert_eq!(secret.name, "default");
        let Some(Type::TlsCertificate(tls)) = secret.r#type else {
            panic!()
        };
        let chain = match tls.certificate_chain.unwrap().specifier.unwrap() {
            envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(b) => b,
            _ => panic!(),
        };
        let key = match tls.private_key.unwrap().specifier.unwrap() {
            envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(b) => b,
            _ => panic!(),
        };
        assert!(String::from_utf8_lossy(&key).starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let loaded = X509Svid::from_pem(&chain, &key).unwrap();
        // The default SVID is the first one.
        assert_eq!(loaded.spiffe_id().as_str(), "spiffe://example.org/web");
        assert_eq!(loaded.leaf(), secrets.svids()[0].leaf());
    }

    #[test]
    fn s6_each_name_resolves_on_its_own() {
        let pki = Pki::new();
        let secrets = pki.secrets();
        let names = SecretNames::spire();
        let form = ValidationForm::SpiffeValidator;
        for name in [
            "default",
            "spiffe://example.org/web",
            "spiffe://example.org/db",
            "ROOTCA",
            "spiffe://example.org",
            "spiffe://federated.test",
            "ALL",
        ] {
            let secret = secrets.secret_for(name, &names, form).unwrap();
            assert_eq!(secret.name, name, "S8");
        }
        let rootca = secrets.secret_for("ROOTCA", &names, form).unwrap();
        assert_eq!(spiffe_entries(&rootca), [("example.org".to_owned(), 1)]);
        let fed = secrets
            .secret_for("spiffe://federated.test", &names, form)
            .unwrap();
        assert_eq!(spiffe_entries(&fed), [("federated.test".to_owned(), 1)]);
    }

    #[test]
    fn s12_all_bundles_sorted_without_empty_or_duplicate_trust_domains() {
        let pki = Pki::new();
        let secrets = pki.secrets();
        let all = secrets
            .secret_for(
                "ALL",
                &SecretNames::spire(),
                ValidationForm::SpiffeValidator,
            )
            .unwrap();
        // jwt-only.test has no X.509 authority and is dropped.
        assert_eq!(
            spiffe_entries(&all),
            [
                ("example.org".to_owned(), 1),
                ("federated.test".to_owned(), 1)
            ]
        );
        // Duplicates given to the builder directly are dropped too.
        let own = pki.own.bundle();
        let secret =
            validation_context_secret("x", [&own, &own], ValidationForm::SpiffeValidator, true)
                .unwrap();
        assert_eq!(spiffe_entries(&secret).len(), 1);
    }

    #[test]
    fn s12_bundle_without_authorities_is_refused() {
        let pki = Pki::new();
        let err = pki
            .secrets()
            .secret_for(
                "spiffe://jwt-only.test",
                &SecretNames::spire(),
                ValidationForm::SpiffeValidator,
            )
            .unwrap_err();
        assert_eq!(
            err,
            SdsError::NoAuthorities {
                name: "spiffe://jwt-only.test".into()
            }
        );
    }

    #[test]
    fn i6_istio_federation_rootca_lists_every_trust_domain() {
        let pki = Pki::new();
        let rootca = pki
            .secrets()
            .secret_for(
                "ROOTCA",
                &SecretNames::istio_federation(),
                ValidationForm::SpiffeValidator,
            )
            .unwrap();
        assert_eq!(spiffe_entries(&rootca).len(), 2);
    }

    #[test]
    fn s11_trusted_ca_form_holds_one_trust_domain_and_refuses_all() {
        let pki = Pki::new();
        let secrets = pki.secrets();
        let names = SecretNames::spire();
        let rootca = secrets
            .secret_for("ROOTCA", &names, ValidationForm::TrustedCa)
            .unwrap();
        let Some(Type::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(ca),
            custom_validator_config: None,
            ..
        })) = rootca.r#type
        else {
            panic!()
        };
        let Some(envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(
            pem,
        )) = ca.specifier
        else {
            panic!()
        };
        let parsed = X509Bundle::parse_pem(td("example.org"), &pem).unwrap();
        assert_eq!(parsed, pki.own.bundle());
        assert_eq!(
            secrets.secret_for("ALL", &names, ValidationForm::TrustedCa),
            Err(SdsError::SpiffeValidatorRequired { name: "ALL".into() })
        );
    }

    #[test]
    fn s5_wildcard_is_everything_named_by_id() {
        let pki = Pki::new();
        let all = pki
            .secrets()
            .wildcard_secrets(ValidationForm::SpiffeValidator);
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            [
                "spiffe://example.org",
                "spiffe://example.org/db",
                "spiffe://example.org/web",
                "spiffe://federated.test",
            ]
        );
        for (name, secret) in &all {
            assert_eq!(&secret.name, name);
        }
    }

    #[test]
    fn s6_svid_name_picks_the_first_svid_with_that_id() {
        let pki = Pki::new();
        let a = pki.svid("spiffe://example.org/same");
        let b = pki.svid("spiffe://example.org/same");
        let secrets = pki.secrets_with(vec![a.clone(), b]);
        let secret = secrets
            .secret_for(
                "spiffe://example.org/same",
                &SecretNames::spire(),
                ValidationForm::SpiffeValidator,
            )
            .unwrap();
        let Some(Type::TlsCertificate(tls)) = secret.r#type else {
            panic!()
        };
        let Some(envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(
            chain,
        )) = tls.certificate_chain.unwrap().specifier
        else {
            panic!()
        };
        let key = {
            let mut k = String::new();
            k.push_str("");
            k
        };
        let _ = key;
        let leaf = rustls_pki_types::CertificateDer::from_pem_slice(&chain);
        use rustls_pki_types::pem::PemObject;
        assert_eq!(leaf.unwrap().as_ref(), a.leaf().as_ref());
        // And the wildcard names it once.
        assert_eq!(
            secrets
                .wildcard_secrets(ValidationForm::SpiffeValidator)
                .len(),
            3
        );
    }
}
