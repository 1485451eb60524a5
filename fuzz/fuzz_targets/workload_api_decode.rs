//! The Workload API client's decoding of every response message: arbitrary
//! bytes are decoded as protobuf (the first byte picks the message type),
//! then checked by `spiffe_workload_api::decode`. Never panic; whatever is
//! accepted must satisfy the invariants the decoders promise.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use spiffe_workload_api::decode;
use spiffe_workload_api::proto::{
    JwtBundlesResponse, JwtsvidResponse, ValidateJwtsvidResponse, X509BundlesResponse,
    X509svidResponse,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(message) = X509svidResponse::decode(bytes) {
                if let Ok(context) = decode::decode_x509_svid_response(&message) {
                    assert!(!context.svids().is_empty());
                    for svid in context.svids() {
                        let td = svid.svid().spiffe_id().trust_domain();
                        assert!(context.bundles().get(&td).is_some());
                    }
                }
            }
        }
        1 => {
            if let Ok(message) = X509BundlesResponse::decode(bytes) {
                if let Ok(bundles) = decode::decode_x509_bundles_response(&message) {
                    assert!(!bundles.is_empty());
                }
            }
        }
        2 => {
            if let Ok(message) = JwtBundlesResponse::decode(bytes) {
                let _ = decode::decode_jwt_bundles_response(&message);
            }
        }
        3 => {
            if let Ok(message) = JwtsvidResponse::decode(bytes) {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
                let _ = decode::decode_jwt_svid_response(&message, &["aud"], None, at);
            }
        }
        _ => {
            if let Ok(message) = ValidateJwtsvidResponse::decode(bytes) {
                let _ = decode::decode_validate_jwt_svid_response(&message);
            }
        }
    }
});
