//! `spiffe`: the command-line tool of the workspace.
//!
//! Everyday work with SPIFFE identities. Offline: parse IDs (`id parse`),
//! inspect and verify X509-SVIDs (`x509 inspect|verify`) and JWT-SVIDs
//! (`jwt inspect|verify`), convert trust bundles (`bundle convert`). Online:
//! a local identity agent (`agent`, the library `spiffe_cli::agent`), what a
//! workload gets from a Workload API (`fetch x509|jwt|bundles`) and what an
//! Envoy gets over SDS (`sds fetch`), and the whole project end to end
//! (`demo`). Every command writes readable text, or JSON with `--output
//! json`, and exits with 0 (valid), 1 (checked and invalid, or refused) or
//! 2 (usage or input error). The commands, flags and JSON shapes are
//! documented in `docs/cli.md` and `docs/agent.md`.
//!
//! Layout: one module per command group, each with a clap `Subcommand` enum
//! or `Args` struct and a `run` function returning an [`output::Outcome`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent_cmd;
mod args;
mod bundle;
mod demo;
mod error;
mod fetch;
mod id;
mod input;
mod jwt;
mod output;
mod pem;
mod rfc3339;
mod sds;
mod trust_bundles;
mod x509;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::output::{EXIT_STATUS_HELP, Outcome, OutputFormat};

/// SPIFFE identities on the command line: a local identity agent, fetch
/// SVIDs over the Workload API and SDS, parse IDs, inspect and verify
/// X509-SVIDs and JWT-SVIDs against federated trust bundles, convert
/// bundles, and a demo of it all (`spiffe demo`).
#[derive(Debug, Parser)]
#[command(
    name = "spiffe",
    version,
    after_help = EXIT_STATUS_HELP,
    arg_required_else_help = true,
    propagate_version = true
)]
struct Cli {
    /// Report format: `text` for people, `json` for machines (one JSON
    /// document on standard output; see docs/cli.md for the shapes).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Text, global = true)]
    output: OutputFormat,

    #[command(subcommand)]
    command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate SPIFFE IDs.
    #[command(subcommand)]
    Id(id::IdCommand),
    /// Inspect and verify X509-SVIDs.
    #[command(subcommand)]
    X509(x509::X509Command),
    /// Inspect and verify JWT-SVIDs.
    #[command(subcommand)]
    Jwt(jwt::JwtCommand),
    /// Convert trust bundles.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Run a local identity agent: in-memory CAs, the Workload API and SDS
    /// on one Unix socket.
    Agent(agent_cmd::AgentArgs),
    /// Fetch SVIDs and bundles from a Workload API.
    #[command(subcommand)]
    Fetch(fetch::FetchCommand),
    /// Fetch secrets from an SDS server as an Envoy would.
    #[command(subcommand)]
    Sds(sds::SdsCommand),
    /// Run the project end to end: an agent with two federated trust
    /// domains, two workloads over the Workload API and SDS, chain
    /// verification, mTLS, rotation.
    Demo(demo::DemoArgs),
}

fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Id(command) => id::run(command, cli.output),
        Command::X509(command) => x509::run(command, cli.output),
        Command::Jwt(command) => jwt::run(command, cli.output),
        Command::Bundle(command) => bundle::run(command, cli.output),
        Command::Agent(args) => agent_cmd::run(args, cli.output),
        Command::Demo(args) => demo::run(args, cli.output),
        Command::Fetch(command) => fetch::run(command, cli.output),
        Command::Sds(command) => sds::run(command, cli.output),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to
            // stderr with status 2, as clap prints them.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(outcome) => {
            if !outcome.stderr.is_empty() {
                let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
            }
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(outcome.stdout.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => outcome.status.exit_code(),
                // A closed pipe (`spiffe ... | head`) is the reader's choice,
                // not a failure of the command.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => outcome.status.exit_code(),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "spiffe: cannot write the output: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "spiffe: error: {e}");
            ExitCode::from(2)
        }
    }
}
