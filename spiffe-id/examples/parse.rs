//! Parses the SPIFFE IDs given on the command line and prints what it found:
//! the trust domain, the path segments, the Istio view when the ID has that
//! shape, or the exact rule an invalid ID breaks.
//!
//! ```text
//! cargo run -p spiffe-id --example parse -- spiffe://cluster.local/ns/default/sa/web 'spiffe://example.org/a//b'
//! ```
//!
//! With no arguments it parses a few built-in samples, valid and invalid, to
//! show both kinds of output, and exits 0. With arguments, the exit status is
//! 0 when every ID given is valid and 1 otherwise.

use std::process::ExitCode;

use spiffe_id::{IstioIdentity, SpiffeIdRef};

const SAMPLES: &[&str] = &[
    "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    "spiffe://example.org/payments/api",
    "spiffe://example.org",
    "spiffe://Example.org/workload",
    "spiffe://example.org/a//b",
    "spiffe://example.org:8443/workload",
    "spiffe://example.org/workload?x=1",
];

fn describe(input: &str) -> bool {
    println!("{input}");
    let id = match SpiffeIdRef::parse(input) {
        Ok(id) => id,
        Err(err) => {
            println!("  invalid ({}): {err}", err.rule());
            return false;
        }
    };
    println!("  trust domain: {}", id.trust_domain_name());
    if id.is_trust_domain_id() {
        println!("  path:         (none: the trust domain's own ID)");
    } else {
        let segments: Vec<&str> = id.segments().collect();
        println!(
            "  path:         {} ({} segments)",
            id.path(),
            segments.len()
        );
    }
    match IstioIdentity::try_from(id) {
        Ok(istio) => {
            println!(
                "  istio:        namespace {}, service account {}",
                istio.namespace(),
                istio.service_account()
            );
            match istio.validate_kubernetes_names() {
                Ok(()) => println!("  kubernetes:   valid names"),
                Err(err) => println!("  kubernetes:   {err}"),
            }
        }
        Err(_) => println!("  istio:        not an Istio identity"),
    }
    true
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        println!("No IDs given; parsing built-in samples (some are invalid on purpose).\n");
        for input in SAMPLES {
            describe(input);
        }
        return ExitCode::SUCCESS;
    }
    let mut all_valid = true;
    for input in &args {
        all_valid &= describe(input);
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
