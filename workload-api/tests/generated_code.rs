//! The protobuf and gRPC code in `src/proto/workload.rs` is generated from
//! `proto/workload.proto` and committed, so users need no `protoc`. This test
//! regenerates it (with protox, a protobuf compiler written in Rust, and
//! tonic-prost-build) and fails when the committed file differs.
//!
//! After editing the `.proto` file, run the test with
//! `SPIFFE_BLESS_PROTO=1` to write the new code, and commit it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

const GENERATED: &str = "src/proto/workload.rs";

fn regenerate() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("spiffe-wl-proto-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let descriptors =
        protox::compile([root.join("proto/workload.proto")], [root.join("proto")]).unwrap();
    tonic_prost_build::configure()
        .build_transport(false)
        // Map fields as BTreeMap: encoded in key order, so equal content
        // gives equal bytes (deterministic responses).
        .btree_map(".")
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)
        .unwrap();
    // A proto file without a package is written to `_.rs`.
    let code = std::fs::read_to_string(out.join("_.rs")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    code
}

#[test]
fn committed_protobuf_code_matches_the_proto_file() {
    let fresh = regenerate();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    if std::env::var_os("SPIFFE_BLESS_PROTO").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == fresh,
        "{GENERATED} is out of date with proto/workload.proto; \
         rerun this test with SPIFFE_BLESS_PROTO=1 and commit the result"
    );
}
