//! Chain verification of arbitrary chains against a fixed bundle: never
//! panic, and never accept a chain that is not the genuine one.
//!
//! The input mutates a genuine leaf + intermediate chain (pairs of position
//! and byte), so the fuzzer reaches the deep checks instead of stopping at
//! the first malformed byte; with no mutation the chain must verify.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe_bundle::X509Bundle;
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::{CaSpec, DevCa, SvidSpec};
use spiffe_svid::verify_x509_svid;

const NOW: u64 = 1_800_000_000;

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

struct Fixture {
    bundle: X509Bundle,
    chain: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let td = TrustDomain::new("example.org").expect("valid name");
        let spec = CaSpec::new().validity(at(NOW - 3600), at(NOW + 86_400));
        let root = DevCa::root(td, &spec).expect("root");
        let intermediate = root.intermediate(&spec).expect("intermediate");
        let id = SpiffeId::parse("spiffe://example.org/w").expect("valid ID");
        let leaf = intermediate
            .issue(&SvidSpec::new(id, at(NOW - 60), at(NOW + 3600)))
            .expect("leaf");
        Fixture {
            bundle: root.bundle(),
            chain: leaf.chain().iter().map(|c| c.to_vec()).collect(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut chain = fixture.chain.clone();
    let total: usize = chain.iter().map(Vec::len).sum();
    let mut changed = false;
    for pair in data.chunks_exact(3) {
        let position = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % total;
        let (cert, offset) = if position < chain[0].len() {
            (0, position)
        } else {
            (1, position - chain[0].len())
        };
        let byte = &mut chain[cert][offset];
        changed |= *byte != pair[2];
        *byte = pair[2];
    }
    // A trailing odd byte drops the intermediate.
    let drop_intermediate = data.len() % 3 == 1;
    let presented: Vec<CertificateDer<'_>> = chain
        .iter()
        .take(if drop_intermediate { 1 } else { 2 })
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let result = verify_x509_svid(&presented, &fixture.bundle, at(NOW));
    if !changed && !drop_intermediate {
        assert!(result.is_ok(), "the genuine chain must verify: {result:?}");
    }
    if drop_intermediate {
        assert!(result.is_err(), "a leaf alone never chains to the root");
    }
    if let Ok(verified) = result {
        // Any accepted chain carries the genuine leaf's identity.
        assert_eq!(verified.spiffe_id().as_str(), "spiffe://example.org/w");
    }
});
