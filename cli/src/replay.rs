//! `duraflow replay`: exported histories against the workflow code linked into this binary.

use crate::error::CliError;
use crate::output::print_json;
use crate::progress;
use duraflow::testing::{ReplayOutcome, ReplayReport, Replayer};
use duraflow::Registry;
use serde_json::json;
use std::path::PathBuf;

/// Replays each path (a file, or a folder's `*.json` files) with a progress bar; prints the report
/// and fails when a history does not replay.
pub(crate) fn replay(
    registry: &Registry,
    paths: &[PathBuf],
    as_json: bool,
) -> Result<(), CliError> {
    if registry.workflow_names().is_empty() {
        return Err(CliError::new(
            "this binary has no workflow code to replay against; build your own `duraflow` with \
             your workflows linked in: `fn main() -> std::process::ExitCode { \
             duraflow_cli::run(duraflow::Registry::all()) }`",
        ));
    }
    let replayer = Replayer::new(registry.clone());
    let bar = progress::bar(paths.len() as u64, "replaying");
    let mut report = ReplayReport::default();
    for path in paths {
        bar.set_message(path.display().to_string());
        let one = if path.is_dir() {
            replayer.replay_dir(path)
        } else {
            replayer.replay_file(path)
        };
        report.histories.extend(one.histories);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if as_json {
        let items: Vec<_> = report
            .histories
            .iter()
            .map(|h| {
                let (outcome, message) = match &h.outcome {
                    ReplayOutcome::Ok => ("ok", None),
                    ReplayOutcome::Mismatch(m) => ("mismatch", Some(m.to_string())),
                    ReplayOutcome::Failed(why) => ("failed", Some(why.clone())),
                    _ => ("unknown", Some(format!("{:?}", h.outcome))),
                };
                json!({
                    "source": h.source,
                    "workflow_id": h.workflow_id,
                    "workflow_type": h.workflow_type,
                    "events": h.events,
                    "outcome": outcome,
                    "message": message,
                })
            })
            .collect();
        print_json(&items);
    } else {
        print!("{report}");
    }
    if report.is_ok() {
        return Ok(());
    }
    let bad = report.failures().count();
    Err(CliError::new(if report.histories.is_empty() {
        "no history was replayed; give `history --json` files or folders of them".to_string()
    } else {
        format!(
            "{bad} of {} histories do not replay against this code (see above); deploy it only \
             once they do, e.g. behind `ctx.patched(..)`",
            report.histories.len()
        )
    }))
}
