//! `spiffe bundle convert`: PEM <-> SPIFFE bundle JSON.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use spiffe_bundle::{BundleMap, SpiffeBundle};
use spiffe_id::TrustDomain;

use crate::args::parse_trust_domain;
use crate::error::CliError;
use crate::input::read_file;
use crate::output::{EXIT_STATUS_HELP, Outcome, OutputFormat, Report, Status};
use crate::trust_bundles::{BundleFormat, parse_single};

/// `spiffe bundle ...`
#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Convert a trust bundle: PEM or DER certificates, a SPIFFE bundle, a
    /// JWKS or a bundle map in; PEM certificates or a SPIFFE bundle (JSON)
    /// out. With the default text output the converted document is all that
    /// is written to standard output.
    #[command(after_help = EXIT_STATUS_HELP)]
    Convert(ConvertArgs),
}

/// `spiffe bundle convert`
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The bundle to convert (format told by content). `-` reads standard
    /// input.
    input: PathBuf,

    /// The format to write.
    #[arg(long, value_enum)]
    to: ConvertTo,

    /// The trust domain: picks one bundle out of a bundle map (required when
    /// the map has several). Other formats do not name their trust domain,
    /// and neither PEM nor SPIFFE bundle JSON writes it.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: Option<TrustDomain>,

    /// `spiffe_sequence` of the JSON written (default: the input's, if any).
    #[arg(long, value_name = "N")]
    sequence: Option<u64>,

    /// `spiffe_refresh_hint` of the JSON written, in seconds (default: the
    /// input's, if any).
    #[arg(long, value_name = "SECONDS")]
    refresh_hint: Option<i64>,

    /// Write the converted document to this file instead of standard
    /// output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `--to`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ConvertTo {
    /// PEM CERTIFICATE sections: the X.509 authorities only.
    Pem,
    /// A SPIFFE bundle document (JWKS with `x509-svid` and `jwt-svid` keys).
    Json,
}

/// The report of `bundle convert` (JSON shape in docs/cli.md).
#[derive(Debug, Serialize)]
struct ConvertReport {
    input: String,
    input_format: BundleFormat,
    /// `pem` or `json`.
    output_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domain: Option<String>,
    x509_authorities: usize,
    /// JWT authorities written (always 0 for PEM).
    jwt_authorities: usize,
    /// JWT authorities of the input that PEM cannot hold.
    dropped_jwt_authorities: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<String>,
    /// The converted document, when it was not written to `--out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<String>,
}

pub(crate) fn run(command: BundleCommand, format: OutputFormat) -> Result<Outcome, CliError> {
    match command {
        BundleCommand::Convert(args) => convert(&args, format),
    }
}

/// Stands in for the trust domain of a bundle whose format does not name
/// it: conversion between PEM and SPIFFE bundle JSON never writes it, and a
/// reserved `.invalid` name cannot be mistaken for a real one.
const UNNAMED: &str = "unnamed.invalid";

fn convert(args: &ConvertArgs, format: OutputFormat) -> Result<Outcome, CliError> {
    let data = read_file(&args.input)?;
    let input_format = BundleFormat::detect(&data).map_err(|reason| CliError::Certificates {
        path: args.input.clone(),
        reason,
    })?;
    let (bundle, named) = if input_format.names_trust_domains() {
        let map = BundleMap::parse(&data).map_err(|source| CliError::Bundle {
            path: args.input.clone(),
            source,
        })?;
        (pick(&map, args.trust_domain.as_ref())?, true)
    } else {
        let td = match &args.trust_domain {
            Some(td) => td.clone(),
            None => TrustDomain::new(UNNAMED).map_err(|source| CliError::TrustDomain {
                what: "placeholder",
                name: UNNAMED.to_owned(),
                source,
            })?,
        };
        let bundle = parse_single(input_format, td, &data, &args.input)?;
        (bundle, args.trust_domain.is_some())
    };
    let mut bundle = bundle;
    if let Some(n) = args.sequence {
        bundle = bundle.with_sequence(Some(n));
    }
    if let Some(s) = args.refresh_hint {
        bundle = bundle.with_refresh_hint_seconds(Some(s));
    }

    let x509 = bundle.x509_bundle().len();
    let jwt = bundle.jwt_bundle().len();
    let (document, output_format, jwt_written) = match args.to {
        ConvertTo::Pem => (bundle.x509_bundle().to_pem(), "pem", 0),
        ConvertTo::Json => {
            let mut json = bundle.to_json();
            json.push('\n');
            (json, "json", jwt)
        }
    };
    if let Some(out) = &args.out {
        std::fs::write(out, &document)
            .map_err(|e| CliError::Output(format!("cannot write {}: {e}", out.display())))?;
    }
    let report = ConvertReport {
        input: args.input.display().to_string(),
        input_format,
        output_format,
        trust_domain: named.then(|| bundle.trust_domain().to_string()),
        x509_authorities: x509,
        jwt_authorities: jwt_written,
        dropped_jwt_authorities: jwt - jwt_written,
        out: args.out.as_ref().map(|p| p.display().to_string()),
        document: args.out.is_none().then_some(document),
    };
    let mut outcome = Outcome::new(Status::Ok, format, &report)?;
    if report.dropped_jwt_authorities > 0 {
        let n = report.dropped_jwt_authorities;
        let noun = if n == 1 { "authority" } else { "authorities" };
        outcome.stderr =
            format!("spiffe: note: {n} JWT {noun} dropped: PEM holds X.509 authorities only\n");
    }
    Ok(outcome)
}

/// The one bundle of a map to convert.
fn pick(map: &BundleMap, td: Option<&TrustDomain>) -> Result<SpiffeBundle, CliError> {
    let names = || {
        map.iter()
            .map(|b| b.trust_domain().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match td {
        Some(td) => map.get(td.as_str()).cloned().ok_or_else(|| {
            CliError::Usage(format!(
                "the bundle map has no trust domain {td} (it has: {})",
                names()
            ))
        }),
        None => {
            let mut bundles = map.iter();
            match (bundles.next(), bundles.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(CliError::Usage("the bundle map is empty".to_owned())),
                (Some(_), Some(_)) => Err(CliError::Usage(format!(
                    "the bundle map has several trust domains ({}); pick one with --trust-domain",
                    names()
                ))),
            }
        }
    }
}

impl Report for ConvertReport {
    fn to_text(&self) -> String {
        match &self.document {
            // The document alone, so the output can be piped or redirected.
            Some(document) => document.clone(),
            None => format!(
                "wrote {} ({} X.509, {} JWT authorities) to {}\n",
                self.output_format.to_uppercase(),
                self.x509_authorities,
                self.jwt_authorities,
                self.out.as_deref().unwrap_or_default()
            ),
        }
    }
}
