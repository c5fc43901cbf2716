//! The `duraflow` command-line tool and web UI.
//!
//! The generic binary (`cargo install --path cli`, or `cargo run -p duraflow-cli -- ...`) does
//! everything that needs no workflow code: `list`, `describe`, `history`, `start` (by registered
//! name, with JSON input: a worker that serves the name runs it), `cancel`, and `ui`, on a SQLite
//! file (`--db app.db`) or Postgres (`--postgres URL`, or `DURAFLOW_POSTGRES_URL`).
//!
//! ```text
//! duraflow --db app.db list --status running --after 2h
//! duraflow --db app.db describe order-17
//! duraflow --db app.db history order-17 --json > order-17.json
//! duraflow --db app.db start greeting_workflow hello-1 '{"arg1": 1, "arg2": 2}'
//! duraflow --db app.db ui            # http://127.0.0.1:8233
//! my-duraflow replay histories/      # your own binary: see below
//! ```
//!
//! # Your own `duraflow` binary
//!
//! Commands that need your definitions (`replay`: exported histories against your current code,
//! for CI before a deploy; and `start`, which then checks names against them) run in a binary of
//! your own that links them in and hands them to [`run`]. Add `duraflow-cli` to your
//! dependencies and write:
//!
//! ```no_run
//! // src/bin/duraflow.rs
//! fn main() -> std::process::ExitCode {
//!     duraflow_cli::run(duraflow::Registry::all()) // every #[activity] and #[workflow] linked in
//! }
//! ```
//!
//! The web UI can also be served from inside your own program: [`ui::router`] is an axum
//! [`Router`](axum::Router) on a [`Client`].
#![warn(missing_docs)]

mod args;
mod commands;
mod connect;
mod error;
mod output;
mod progress;
mod replay;
mod schedules;
pub mod ui;

pub use error::CliError;

use args::{Cli, Command};
use clap::Parser;
use duraflow::{Client, Registry};
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the command line of this process (`std::env::args`) with `registry`'s definitions, on a
/// tokio runtime of its own; prints errors as one line and returns the exit code (0 on success, 1
/// on failure, 2 for a bad command line). Call it from `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     duraflow_cli::run(duraflow::Registry::all())
/// }
/// ```
pub fn run(registry: Registry) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_with(std::env::args_os(), registry)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command line (the first item is the program name), inside a tokio runtime you already
/// have. `--help` and `--version` print and return `Ok`.
///
/// ```no_run
/// # async fn demo() -> Result<(), duraflow_cli::CliError> {
/// duraflow_cli::run_with(["duraflow", "--db", "app.db", "list"], duraflow::Registry::all()).await?;
/// # Ok(()) }
/// ```
pub async fn run_with<I, T>(args: I, registry: Registry) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return Ok(());
            }
            // clap's message is several lines (what is wrong, a tip, the usage): keep what comes
            // before the usage, on one line, and point at the help.
            let rendered = e.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let what = what.join(" ");
            let what = what.strip_prefix("error: ").unwrap_or(&what);
            return Err(CliError::usage(format!(
                "{what}; see `duraflow --help` or `duraflow <command> --help`"
            )));
        }
    };
    if let Command::Replay { paths } = &cli.command {
        return replay::replay(&registry, paths, cli.json);
    }
    let store = connect::open(&cli.store).await?;
    let mut client = Client::new(&store);
    if !registry.workflow_names().is_empty() {
        client = client.with_registry(registry.clone());
    }
    let json = cli.json;
    match cli.command {
        Command::List(a) => commands::list(&client, &a, json).await,
        Command::Describe { id, run_id, runs } => {
            if runs {
                commands::runs(&client, &id, json).await
            } else {
                commands::describe(&client, &id, run_id.as_deref(), json).await
            }
        }
        Command::History { id, full, run_id } => {
            commands::history(&client, &id, run_id.as_deref(), full, json).await
        }
        Command::Start {
            workflow_type,
            id,
            input,
            task_queue,
            wait,
        } => {
            commands::start(
                &client,
                &workflow_type,
                &id,
                input.as_deref(),
                task_queue,
                wait,
                json,
            )
            .await
        }
        Command::Cancel { id, wait } => commands::cancel(&client, &id, wait, json).await,
        Command::Terminate { id, reason } => commands::terminate(&client, &id, &reason, json).await,
        Command::Reset {
            id,
            to_task,
            reason,
        } => commands::reset(&client, &id, to_task, &reason, json).await,
        Command::Signal {
            id,
            name,
            input,
            request_id,
        } => {
            commands::signal(
                &client,
                &id,
                &name,
                input.as_deref(),
                request_id.as_deref(),
                json,
            )
            .await
        }
        Command::Ui(a) => ui::serve_cli(client, &a).await,
        Command::Schedule(c) => schedules::run(&client, c, json).await,
        Command::Replay { .. } => Ok(()), // handled above: it needs no store
    }
}
