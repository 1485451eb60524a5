//! Shared helpers of the CLI tests: run the built `spiffe` binary, mint
//! certificates and tokens with the development CA into a scratch directory.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rustls_pki_types::UnixTime;
use serde_json::Value;
use spiffe_bundle::{JwtBundle, SpiffeBundle, X509Bundle};
use spiffe_id::{SpiffeId, TrustDomain};
use spiffe_svid::issuer::{DevCa, IssuedSvid, SvidSpec};

/// 2025-01-01T00:00:00Z.
pub const T0: u64 = 1_735_689_600;
/// Inside the default leaf validity (T0 .. T0 + 1 day).
pub const DURING: &str = "2025-01-01T12:00:00Z";
/// After it.
pub const AFTER: &str = "2025-01-03T00:00:00Z";
/// Before it.
pub const BEFORE: &str = "2024-12-31T00:00:00Z";

pub fn t(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// A leaf spec valid for one day from [`T0`].
pub fn spec(s: &str) -> SvidSpec {
    SvidSpec::new(id(s), t(T0), t(T0 + 86_400))
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Asserts the exit status, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `spiffe` with `args`.
pub fn spiffe<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    spiffe_stdin(args, "")
}

/// Runs `spiffe` with `args` and `stdin` as its standard input.
pub fn spiffe_stdin<I, S>(args: I, stdin: &str) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_spiffe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A scratch directory for the files the binary reads.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` (subdirectories created) and returns the
    /// path as a string, ready to pass as an argument.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// A subdirectory, created.
    pub fn dir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Writes an SVID's chain (and with `with_key`, its key) as PEM.
    pub fn svid(&self, name: &str, svid: &IssuedSvid, with_key: bool) -> String {
        let mut pem = svid.chain_pem().to_owned();
        if with_key {
            pem.push_str(svid.key_pem());
        }
        self.write(name, pem)
    }

    /// Writes a CA's bundle as PEM.
    pub fn bundle_pem(&self, name: &str, ca: &DevCa) -> String {
        self.write(name, ca.bundle().to_pem())
    }

    /// Writes a CA's bundle as SPIFFE bundle JSON.
    pub fn bundle_json(&self, name: &str, ca: &DevCa) -> String {
        self.write(name, spiffe_bundle_of(ca.bundle(), None).to_json())
    }
}

/// A SPIFFE bundle of X.509 and (optionally) JWT authorities.
pub fn spiffe_bundle_of(x509: X509Bundle, jwt: Option<JwtBundle>) -> SpiffeBundle {
    let td = x509.trust_domain().clone();
    SpiffeBundle::new(
        x509,
        jwt.unwrap_or_else(|| JwtBundle::empty(td)),
        None,
        None,
    )
    .unwrap()
}
