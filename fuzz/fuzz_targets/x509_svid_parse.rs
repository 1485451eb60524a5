//! `X509Svid` loading from DER (chain and key) and from PEM: never panic; an
//! accepted SVID has a leaf whose SPIFFE ID has a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_svid::X509Svid;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the chain ends and the key begins.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * rest.len()) / 256;
    let (chain, key) = rest.split_at(at);
    for svid in [X509Svid::from_der(chain, key), X509Svid::from_pem(rest, b"")]
        .into_iter()
        .flatten()
    {
        assert!(!svid.spiffe_id().is_trust_domain_id());
        assert!(!svid.chain().is_empty());
    }
});
