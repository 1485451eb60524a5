//! Helpers shared by the integration tests: fixed times and a few CAs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rustls_pki_types::UnixTime;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::{DevCa, SvidSpec};

/// Leaves are valid from T0 to T1 (inclusive); NOW is in between.
pub(crate) const T0: u64 = 1_700_000_000;
pub(crate) const T1: u64 = T0 + 3_600;
pub(crate) const NOW: u64 = T0 + 1_800;

pub(crate) fn t(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

pub(crate) fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub(crate) fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub(crate) fn ca(name: &str) -> DevCa {
    DevCa::new(td(name)).unwrap()
}

/// A spec-valid leaf spec for `spiffe://example.org/workload`.
pub(crate) fn leaf_spec() -> SvidSpec {
    SvidSpec::new(id("spiffe://example.org/workload"), t(T0), t(T1))
}
