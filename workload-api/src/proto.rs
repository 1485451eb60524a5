//! The Workload API's protobuf messages and gRPC stubs.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
include!("proto/workload.rs");
