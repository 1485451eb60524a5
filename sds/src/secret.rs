//! Building Envoy `Secret` messages from SVIDs and bundles (S9 to S14).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType;
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, Node, TypedExtensionConfig, data_source,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, SpiffeCertValidatorConfig, TlsCertificate, secret,
    spiffe_cert_validator_config,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::util::pack_any;
use spiffe_bundle::X509Bundle;
use spiffe_svid::X509Svid;

use crate::error::SdsError;

/// The name of Envoy's SPIFFE certificate validator extension.
pub const SPIFFE_VALIDATOR_NAME: &str = "envoy.tls.cert_validator.spiffe";

/// The node metadata key that turns the SPIFFE validator off for one Envoy
/// (SPIRE's per-node override, S10).
pub const DISABLE_SPIFFE_VALIDATION_KEY: &str = "disable_spiffe_cert_validation";

/// How a validation context carries trust bundles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValidationForm {
    /// Envoy's SPIFFE certificate validator (`envoy.tls.cert_validator.spiffe`):
    /// one isolated entry per trust domain, the peer's CA chosen by the
    /// trust domain in its URI SAN (S12). Needs Envoy 1.18 or later.
    SpiffeValidator,
    /// A flat `trusted_ca` PEM (S11): for Envoys up to 1.17, or when the
    /// validator is turned off. Holds one trust domain only.
    TrustedCa,
}

/// Which [`ValidationForm`] to send to the Envoy described by `node` (S10).
///
/// `spiffe_validator` is the server-wide default. A node metadata value
/// `disable_spiffe_cert_validation` overrides it when it is a boolean, or a
/// string Go's `strconv.ParseBool` accepts (`1`, `t`, `T`, `true`, `TRUE`,
/// `True`, and the false forms); other values are ignored, as SPIRE does.
/// An Envoy that reports a build version of 1.17 or older always gets
/// [`ValidationForm::TrustedCa`]; an unknown version gets the validator.
///
/// ```
/// use spiffe_sds::{ValidationForm, validation_form};
/// assert_eq!(validation_form(None, true), ValidationForm::SpiffeValidator);
/// assert_eq!(validation_form(None, false), ValidationForm::TrustedCa);
/// ```
pub fn validation_form(node: Option<&Node>, spiffe_validator: bool) -> ValidationForm {
    let mut enabled = spiffe_validator;
    if let Some(node) = node {
        if let Some(disable) = node
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get(DISABLE_SPIFFE_VALIDATION_KEY))
            .and_then(|v| v.kind.as_ref())
            .and_then(|kind| match kind {
                Kind::BoolValue(b) => Some(*b),
                Kind::StringValue(s) => parse_go_bool(s),
                _ => None,
            })
        {
            enabled = !disable;
        }
        if let Some(UserAgentVersionType::UserAgentBuildVersion(build)) =
            &node.user_agent_version_type
            && let Some(v) = &build.version
            // The validator extension arrived in Envoy 1.18.
            && v.major_number == 1
            && v.minor_number <= 17
        {
            enabled = false;
        }
    }
    if enabled {
        ValidationForm::SpiffeValidator
    } else {
        ValidationForm::TrustedCa
    }
}

/// Go's `strconv.ParseBool`, which SPIRE applies to the metadata string.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A `Secret` named `name` holding `svid` as a TLS certificate (S9): the
/// chain as PEM, leaf first, and the key as PKCS#8 PEM (`PRIVATE KEY`),
/// both inline.
pub fn tls_certificate_secret(name: &str, svid: &X509Svid) -> Secret {
    let mut chain = String::new();
    for cert in svid.chain() {
        push_pem(&mut chain, "CERTIFICATE", cert);
    }
    let mut key = String::new();
    push_pem(&mut key, "PRIVATE KEY", svid.private_key().secret_der());
    Secret {
        name: name.to_owned(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(chain.into_bytes())),
            private_key: Some(inline(key.into_bytes())),
            ..Default::default()
        })),
    }
}

/// A `Secret` named `name` holding a validation context for `bundles`
/// (S11, S12).
///
/// With [`ValidationForm::SpiffeValidator`]: one `SPIFFECertValidatorConfig`
/// entry per trust domain, sorted by name, names without `spiffe://`,
/// `workload_trust_domain` left empty (S14); trust domains without X.509
/// authorities and repeated trust domains are dropped, because Envoy
/// rejects the whole secret for either (S12). With
/// [`ValidationForm::TrustedCa`]: the single bundle's authorities as
/// `trusted_ca` PEM.
///
/// # Errors
///
/// [`SdsError::NoAuthorities`] when no bundle has an X.509 authority;
/// [`SdsError::SpiffeValidatorRequired`] when the trusted-CA form is asked
/// to carry anything but exactly one trust domain, or `multi` is set (the
/// name stands for several trust domains even if only one exists now, so
/// its meaning does not change with the federation).
pub fn validation_context_secret<'a>(
    name: &str,
    bundles: impl IntoIterator<Item = &'a X509Bundle>,
    form: ValidationForm,
    multi: bool,
) -> Result<Secret, SdsError> {
    // Sorted by trust domain, first bundle of a trust domain wins, empty
    // bundles dropped.
    let mut by_td: BTreeMap<&str, &X509Bundle> = BTreeMap::new();
    for bundle in bundles {
        if !bundle.is_empty() {
            by_td
                .entry(bundle.trust_domain().as_str())
                .or_insert(bundle);
        }
    }
    let context = match form {
        ValidationForm::SpiffeValidator => {
            if by_td.is_empty() {
                return Err(SdsError::NoAuthorities {
                    name: name.to_owned(),
                });
            }
            let trust_domains = by_td
                .iter()
                .map(|(td, bundle)| spiffe_cert_validator_config::TrustDomain {
                    name: (*td).to_owned(),
                    trust_bundle: Some(inline(bundle_pem(bundle).into_bytes())),
                    ..Default::default()
                })
                .collect();
            let config = SpiffeCertValidatorConfig {
                trust_domains,
                ..Default::default()
            };
            CertificateValidationContext {
                custom_validator_config: Some(TypedExtensionConfig {
                    name: SPIFFE_VALIDATOR_NAME.to_owned(),
                    typed_config: Some(pack_any(config)),
                }),
                ..Default::default()
            }
        }
        ValidationForm::TrustedCa => {
            if multi || by_td.len() > 1 {
                return Err(SdsError::SpiffeValidatorRequired {
                    name: name.to_owned(),
                });
            }
            let Some(bundle) = by_td.values().next() else {
                return Err(SdsError::NoAuthorities {
                    name: name.to_owned(),
                });
            };
            CertificateValidationContext {
                trusted_ca: Some(inline(bundle_pem(bundle).into_bytes())),
                ..Default::default()
            }
        }
    };
    Ok(Secret {
        name: name.to_owned(),
        r#type: Some(secret::Type::ValidationContext(context)),
    })
}

fn bundle_pem(bundle: &X509Bundle) -> String {
    let mut pem = String::new();
    for authority in bundle.authorities() {
        push_pem(&mut pem, "CERTIFICATE", authority.der());
    }
    pem
}

fn inline(bytes: Vec<u8>) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes)),
        ..Default::default()
    }
}

/// Appends one PEM section (RFC 7468: 64-character lines, `\n` line ends).
fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let b64 = STANDARD.encode(der);
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        // Base64 is ASCII, so any byte index is a char boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::BuildVersion;
    use envoy_types::pb::envoy::r#type::v3::SemanticVersion;
    use envoy_types::pb::google::protobuf::{Struct, Value};

    fn node_with(meta: Option<Kind>, version: Option<(u32, u32)>) -> Node {
        let metadata = meta.map(|kind| Struct {
            fields: [(
                DISABLE_SPIFFE_VALIDATION_KEY.to_owned(),
                Value { kind: Some(kind) },
            )]
            .into_iter()
            .collect(),
        });
        Node {
            metadata,
            user_agent_version_type: version.map(|(major, minor)| {
                UserAgentVersionType::UserAgentBuildVersion(BuildVersion {
                    version: Some(SemanticVersion {
                        major_number: major,
                        minor_number: minor,
                        patch: 0,
                    }),
                    metadata: None,
                })
            }),
            ..Default::default()
        }
    }

    #[test]
    fn s10_node_metadata_overrides_the_default() {
        use ValidationForm::*;
        let cases = [
            (Some(Kind::BoolValue(true)), true, TrustedCa),
            (Some(Kind::BoolValue(false)), false, SpiffeValidator),
            (Some(Kind::StringValue("T".into())), true, TrustedCa),
            (Some(Kind::StringValue("1".into())), true, TrustedCa),
            (
                Some(Kind::StringValue("False".into())),
                false,
                SpiffeValidator,
            ),
            // Not a Go bool: ignored.
            (Some(Kind::StringValue("yes".into())), true, SpiffeValidator),
            (Some(Kind::NumberValue(1.0)), true, SpiffeValidator),
            (None, true, SpiffeValidator),
            (None, false, TrustedCa),
        ];
        for (meta, default, want) in cases {
            let node = node_with(meta.clone(), None);
            assert_eq!(
                validation_form(Some(&node), default),
                want,
                "{meta:?} {default}"
            );
        }
    }

    #[test]
    fn s10_envoy_1_17_and_older_get_trusted_ca() {
        use ValidationForm::*;
        for (version, want) in [
            ((1, 17), TrustedCa),
            ((1, 0), TrustedCa),
            ((1, 18), SpiffeValidator),
            ((1, 40), SpiffeValidator),
            ((2, 0), SpiffeValidator),
        ] {
            let node = node_with(None, Some(version));
            assert_eq!(validation_form(Some(&node), true), want, "{version:?}");
        }
        // Even metadata cannot turn the validator on for an old Envoy.
        let node = node_with(Some(Kind::BoolValue(false)), Some((1, 17)));
        assert_eq!(validation_form(Some(&node), true), TrustedCa);
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let mut out = String::new();
        push_pem(&mut out, "CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        // 100 bytes are 136 base64 characters: 64 + 64 + 8.
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 8);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
    }
}
