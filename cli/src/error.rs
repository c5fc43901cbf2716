//! The CLI's one error type: one line that says what went wrong and what to do.

use std::fmt;

/// A command failed. Shown as one line (`error: ...`), with a non-zero exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failure; `message` says what happened and what to do (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: one_line(&message.into()),
            code: 1,
        }
    }

    /// A mistake in the command line (exit code 2, as for clap's own errors).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            ..CliError::new(message)
        }
    }

    /// The process exit code: 1 for a failure, 2 for a bad command line.
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The message, without the `error: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A store error, with what the CLI was doing and the error's underlying causes.
    pub fn store(doing: &str, e: duraflow::Error) -> Self {
        match &e {
            duraflow::Error::WorkflowNotFound(id) => CliError::new(format!(
                "no workflow with id `{id}` in this store; `duraflow list` shows the ids there are"
            )),
            duraflow::Error::ScheduleNotFound(id) => CliError::new(format!(
                "no schedule with id `{id}` in this store; `duraflow schedule list` shows the ids there are"
            )),
            _ => CliError::new(format!("{doing}: {}", with_causes(&e))),
        }
    }
}

/// An error and its sources, on one line: `a: b: c`, without repeating a cause the message already
/// contains.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)
    }
}

impl std::error::Error for CliError {}
