//! Registration entries: which callers get which SPIFFE IDs.
