//! What a command hands back: a report, in text for people or JSON for
//! machines, and the exit status that goes with it.

use std::process::ExitCode;

use serde::Serialize;

use crate::error::CliError;

/// The `--help` text on exit statuses, shared by every command.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success: the input is valid (or the command did what it was asked)
  1  the input was checked and is invalid, or verification failed; the reason is printed
  2  usage or input error: bad arguments, unreadable or malformed files";

/// `--output`: how the report is written to standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Readable text.
    #[default]
    Text,
    /// One pretty-printed JSON document (the shapes are documented in
    /// docs/cli.md).
    Json,
}

/// The verdict of a command that ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit status 0.
    Ok,
    /// Exit status 1: checked and found invalid.
    Invalid,
}

impl Status {
    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            Status::Ok => ExitCode::SUCCESS,
            Status::Invalid => ExitCode::from(1),
        }
    }

    /// [`Status::Ok`] when `ok`, else [`Status::Invalid`].
    pub(crate) fn from_ok(ok: bool) -> Status {
        if ok { Status::Ok } else { Status::Invalid }
    }
}

/// A report that can be written both ways. The JSON form is the
/// [`Serialize`] implementation; the text form ends with a newline.
pub(crate) trait Report: Serialize {
    /// The report for people.
    fn to_text(&self) -> String;
}

/// A finished command: its verdict and its report, already rendered in the
/// requested format.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) stdout: String,
    /// Notes for people, written to standard error in both formats.
    pub(crate) stderr: String,
}

impl Outcome {
    /// Renders `report` in `format`.
    ///
    /// # Errors
    ///
    /// [`CliError::Output`] if the report cannot be serialized (it always
    /// can: every report is built from strings, numbers and lists).
    pub(crate) fn new<R: Report>(
        status: Status,
        format: OutputFormat,
        report: &R,
    ) -> Result<Outcome, CliError> {
        let stdout = match format {
            OutputFormat::Text => report.to_text(),
            OutputFormat::Json => {
                let mut json = serde_json::to_string_pretty(report)
                    .map_err(|e| CliError::Output(e.to_string()))?;
                json.push('\n');
                json
            }
        };
        Ok(Outcome {
            status,
            stdout,
            stderr: String::new(),
        })
    }
}

/// A pass/fail/warn line of a check list (`x509 inspect`, `jwt inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// The rule of the project's SPIFFE checklist (`X-13`, `J-03`, ...).
    pub(crate) rule: &'static str,
    /// What the rule asks, in a few words.
    pub(crate) description: &'static str,
    /// The verdict.
    pub(crate) status: CheckStatus,
    /// What was found, when it says more than the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

impl Check {
    pub(crate) fn new(rule: &'static str, description: &'static str, status: CheckStatus) -> Self {
        Check {
            rule,
            description,
            status,
            detail: None,
        }
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// One aligned text line: `  [pass] X-13  leaf is not a CA (...)`.
    pub(crate) fn to_text_line(&self) -> String {
        let mut line = format!(
            "  [{}] {:<6} {}",
            self.status.label(),
            self.rule,
            self.description
        );
        if let Some(detail) = &self.detail {
            line.push_str(": ");
            line.push_str(detail);
        }
        line.push('\n');
        line
    }
}

/// The verdict of one [`Check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckStatus {
    /// The rule holds.
    Pass,
    /// The rule is broken: a verifier rejects this input.
    Fail,
    /// Not a rejection, but worth knowing (a SHOULD is not met).
    Warn,
    /// Not checked, because an earlier check failed.
    Skip,
}

impl CheckStatus {
    fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Warn => "warn",
            CheckStatus::Skip => "skip",
        }
    }

    /// [`CheckStatus::Pass`] when `ok`, else [`CheckStatus::Fail`].
    pub(crate) fn from_ok(ok: bool) -> Self {
        if ok {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        }
    }
}
