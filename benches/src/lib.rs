//! Criterion benchmarks of the workspace live in `benches/`; this library is
//! empty. It also runs the README's Rust examples as doctests, since this
//! package depends on every crate they use.

/// The README's examples, compiled and run by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

/// The examples of `docs/agent.md`, compiled by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/agent.md")]
struct AgentGuideExamples;
