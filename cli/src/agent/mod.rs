//! A local SPIFFE identity agent with in-memory certificate authorities.

pub mod entries;
