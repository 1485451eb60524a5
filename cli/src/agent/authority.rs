//! The in-memory certificate authority of one trust domain: a root, an
//! intermediate that signs the X509-SVIDs, and an ES256 JWT-SVID key.

use std::time::{Duration, SystemTime};

use rustls_pki_types::UnixTime;
use spiffe_bundle::{JwtBundle, X509Bundle};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::X509Svid;
use spiffe_svid::issuer::{CaSpec, DevCa, JwtIssuer, SvidSpec};

use super::AgentError;
use super::entries::MIN_TTL;

/// How long the in-memory CAs are valid: longer than any SVID they sign
/// ([`super::entries::MAX_TTL`] is 30 days) and than any agent runs.
const CA_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// X509-SVIDs start this long before they are issued, so that a peer whose
/// clock reads a second earlier still accepts them.
pub(super) const BACKDATE: Duration = Duration::from_secs(5);

pub(super) struct Authority {
    root: DevCa,
    signing: DevCa,
    jwt: JwtIssuer,
    /// The CAs' `notAfter`: no SVID outlives it.
    ca_not_after: u64,
}

impl Authority {
    pub(super) fn new(
        trust_domain: &TrustDomain,
        jwt_issuer: Option<&str>,
    ) -> Result<Self, AgentError> {
        Self::with_lifetime(trust_domain, jwt_issuer, CA_LIFETIME)
    }

    fn with_lifetime(
        trust_domain: &TrustDomain,
        jwt_issuer: Option<&str>,
        lifetime: Duration,
    ) -> Result<Self, AgentError> {
        let failed = |e: &dyn std::fmt::Display| AgentError::Authority {
            trust_domain: trust_domain.to_string(),
            reason: e.to_string(),
        };
        let now = UnixTime::now().as_secs();
        let ca_not_after = now.saturating_add(lifetime.as_secs());
        let spec = CaSpec::new().validity(secs(now.saturating_sub(3600)), secs(ca_not_after));
        let root = DevCa::root(trust_domain.clone(), &spec).map_err(|e| failed(&e))?;
        let signing = root.intermediate(&spec).map_err(|e| failed(&e))?;
        let mut jwt = JwtIssuer::new(trust_domain.clone()).map_err(|e| failed(&e))?;
        if let Some(iss) = jwt_issuer {
            jwt = jwt.with_issuer(iss);
        }
        Ok(Authority {
            root,
            signing,
            jwt,
            ca_not_after,
        })
    }

    /// The X.509 bundle: the root certificate.
    pub(super) fn x509_bundle(&self) -> X509Bundle {
        self.root.bundle()
    }

    /// The JWT bundle: the JWT-SVID key.
    pub(super) fn jwt_bundle(&self) -> JwtBundle {
        self.jwt.bundle()
    }

    /// An X509-SVID for `id` valid for `ttl` from now (backdated by
    /// [`BACKDATE`], and never past the CAs' own expiry); its chain is the
    /// leaf and the intermediate.
    pub(super) fn issue_x509(
        &self,
        id: &SpiffeId,
        dns_names: &[String],
        ttl: Duration,
    ) -> Result<X509Svid, String> {
        let now = UnixTime::now().as_secs();
        // Near the CAs' expiry SVIDs are shortened to it; below the shortest
        // lifetime allowed, renewing could only spin.
        let ca_left = self.ca_not_after.saturating_sub(now);
        if ca_left < MIN_TTL.as_secs() {
            return Err(format!(
                "the in-memory CA expires in {ca_left} s, too soon to issue an SVID; \
                 restart the agent for new CAs"
            ));
        }
        let spec = SvidSpec::new(
            id.clone(),
            secs(now.saturating_sub(BACKDATE.as_secs())),
            secs(now.saturating_add(ttl.as_secs()).min(self.ca_not_after)),
        )
        .dns_names(dns_names.iter().cloned());
        let issued = self.signing.issue(&spec).map_err(|e| e.to_string())?;
        issued.to_x509_svid().map_err(|e| e.to_string())
    }

    /// A JWT-SVID for `id` and `audience`, valid for `ttl`.
    pub(super) fn issue_jwt(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String, String> {
        let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
        self.jwt
            .issue(id, &audience, SystemTime::now() + ttl)
            .map_err(|e| e.to_string())
    }
}

fn secs(s: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SpiffeId {
        SpiffeId::parse("spiffe://example.org/w").unwrap()
    }

    #[test]
    fn svids_never_outlive_the_ca_and_stop_when_it_is_about_to_expire() {
        let td = TrustDomain::new("example.org").unwrap();
        let hour = Duration::from_secs(3600);
        let short = Authority::with_lifetime(&td, None, Duration::from_secs(60)).unwrap();
        let svid = short.issue_x509(&id(), &[], hour).unwrap();
        assert_eq!(svid.expires_at().as_secs(), short.ca_not_after);
        let ending = Authority::with_lifetime(&td, None, Duration::from_secs(1)).unwrap();
        let refused = ending.issue_x509(&id(), &[], hour).unwrap_err();
        assert!(refused.contains("restart the agent"), "{refused}");
        // A CA with a year left issues the full lifetime.
        let year = Authority::new(&td, None).unwrap();
        let svid = year.issue_x509(&id(), &[], hour).unwrap();
        let lifetime = svid.expires_at().as_secs() - UnixTime::now().as_secs();
        assert!((3599..=3600).contains(&lifetime), "{lifetime}");
    }
}
