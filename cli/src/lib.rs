//! The library side of the `spiffe` command.
//!
//! [`agent`] is the local identity agent behind `spiffe agent` and
//! `spiffe demo`: in-memory certificate authorities for one or more trust
//! domains, registration entries selected by Unix peer credentials, and the
//! Workload API and Envoy SDS served on one Unix socket. It is a library so
//! that the integration tests of proxies and sidecars can start one
//! in-process, with no file on disk but its socket.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
