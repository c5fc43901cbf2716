//! The fuzz target of the Replayer: arbitrary history JSON (mutants of the exported version-1
//! histories in `fuzz/corpus/history_json/`) replayed on the code that wrote them. Every input is
//! replayed or reported with a reason, per history; none panics. Run by `format_fixtures.rs`, which
//! has the definitions; the driver is `duraflow_runtime::fuzz` (`DURAFLOW_FUZZ_ITERATIONS` for a
//! long campaign).

use duraflow::testing::{ReplayOutcome, Replayer};
use duraflow::Registry;
use duraflow_runtime::fuzz::{campaign_of, Target};
use std::sync::OnceLock;

static REPLAYER: OnceLock<Replayer> = OnceLock::new();

fn history_json(data: &[u8]) -> String {
    let replayer = REPLAYER
        .get()
        .expect("the replayer is set before the campaign");
    let json = String::from_utf8_lossy(data);
    let report = replayer.replay_json(&json);
    let _ = report.to_string();
    let mut label = String::new();
    for h in &report.histories {
        match &h.outcome {
            ReplayOutcome::Ok => label.push_str("ok;"),
            ReplayOutcome::Mismatch(m) => {
                let text = m.to_string();
                assert!(!text.trim().is_empty(), "an empty mismatch for {json:.300}");
                assert!(!m.fix.trim().is_empty(), "a mismatch without a fix: {text}");
                label.push_str("mismatch;");
            }
            ReplayOutcome::Failed(why) => {
                assert!(
                    !why.trim().is_empty(),
                    "a failed replay without a reason for {json:.300}"
                );
                let kind: String = why
                    .split(['`', ':', '"', '#'])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
                    .take(40)
                    .collect();
                label.push_str(&format!("failed {kind};"));
            }
            other => label.push_str(&format!("{other:?};")),
        }
    }
    label.truncate(200);
    label
}

/// Runs the campaign on `registry`'s workflows.
pub fn campaign(registry: Registry) {
    let _ = REPLAYER.set(Replayer::new(registry));
    let report = campaign_of(&Target {
        name: "history_json",
        run: history_json,
        ci_iterations: 3_000,
    });
    assert!(report.executions > report.seeds as u64);
}
