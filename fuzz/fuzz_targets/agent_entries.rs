//! Registration entries files of `spiffe agent` (TOML and JSON): never
//! panic; what is accepted keeps the entries' invariants.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use spiffe_cli::agent::entries::{self, Accounts, Format, MAX_TTL, MIN_TTL};
use spiffe_id::TrustDomain;

struct Fixed;

impl Accounts for Fixed {
    fn uid_of(&self, user: &str) -> Option<u32> {
        (user == "web").then_some(1000)
    }
    fn gid_of(&self, group: &str) -> Option<u32> {
        (group == "mesh").then_some(2000)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(own) = TrustDomain::new("example.org") else {
        return;
    };
    for format in [Format::Toml, Format::Json] {
        let Ok(parsed) = entries::parse(text, format, &own, &Fixed) else {
            continue;
        };
        assert!(!parsed.is_empty());
        let mut ids = BTreeSet::new();
        for entry in &parsed {
            assert!(!entry.selectors().is_empty());
            assert!(!entry.spiffe_id().is_trust_domain_id());
            assert!(ids.insert(entry.entry_id().to_owned()), "duplicate entry ID");
            if let Some(ttl) = entry.ttl() {
                assert!((MIN_TTL..=MAX_TTL).contains(&ttl));
            }
        }
    }
});
