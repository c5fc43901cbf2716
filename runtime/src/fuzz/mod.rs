//! Fuzzing on stable Rust: the targets, the mutation engine and the driver that `cargo test` runs.
//!
//! Not public API: compiled for the crate's tests and with the `fuzzing` feature, which the
//! cargo-fuzz targets in `fuzz/` (nightly only, not part of CI) turn on to reach the same targets.
//!
//! Each target (see [`TARGETS`]) takes arbitrary bytes and panics only on a bug. The driver runs
//! every input of the target's committed corpus (`fuzz/corpus/<target>/`: real stored events,
//! options, errors, payloads, history JSON and SQLite files, and the inputs that once broke
//! something), then mutants of them (`mutate.rs`), keeping each mutant that reached an outcome not
//! seen before (a poor man's coverage: the outcome labels the targets return). A panic saves the
//! input under the system's temporary folder (`duraflow-fuzz-crashes/`) and fails the test with its
//! path; copy it into the corpus as `regression-<what>` with the fix.
//!
//! In `cargo test` each target runs a bounded number of executions (its `ci_iterations`) with a fixed
//! seed. A long campaign:
//!
//! ```text
//! DURAFLOW_FUZZ_ITERATIONS=1000000 DURAFLOW_FUZZ_SEED=7 \
//!   cargo test -p duraflow-runtime --release fuzz_ -- --nocapture
//! ```
//!
//! `DURAFLOW_FUZZ_ITERATIONS` sets the executions per target, `DURAFLOW_FUZZ_SEED` the seed (else a
//! fixed one), `DURAFLOW_FUZZ_SECONDS` a time limit per target (default 30 s when the iterations are
//! the CI default, none otherwise). Each test prints its executions and outcomes.

pub mod mutate;
mod sqlite_file;
mod targets;
#[cfg(test)]
mod tests;

pub use mutate::{mutate, Rng};
pub use sqlite_file::sqlite_file;
pub use targets::{
    activity_options, check_timing, duration, payload, stored_event, workflow_error,
};

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fuzz target: its name (also its corpus folder), its function, and its executions in CI.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name, and the folder of its corpus under `fuzz/corpus/`.
    pub name: &'static str,
    /// Runs one input; panics on a bug; returns a label of the outcome.
    pub run: fn(&[u8]) -> String,
    /// Executions per `cargo test` run.
    pub ci_iterations: u64,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "stored_event",
        run: stored_event,
        ci_iterations: 30_000,
    },
    Target {
        name: "activity_options",
        run: activity_options,
        ci_iterations: 20_000,
    },
    Target {
        name: "workflow_error",
        run: workflow_error,
        ci_iterations: 20_000,
    },
    Target {
        name: "payload",
        run: payload,
        ci_iterations: 20_000,
    },
    Target {
        name: "duration",
        run: duration,
        ci_iterations: 50_000,
    },
    Target {
        name: "sqlite_file",
        run: sqlite_file,
        ci_iterations: 1_500,
    },
];

/// The target of this name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The committed corpus folder of a target.
pub fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("corpus")
        .join(name)
}

/// A target's committed corpus, by file name.
pub fn load_corpus(name: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(name))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// What one campaign did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run, the corpus included.
    pub executions: u64,
    /// Distinct outcomes reached.
    pub outcomes: usize,
    /// Inputs in the corpus at the start.
    pub seeds: usize,
    /// Mutants kept because they reached a new outcome.
    pub kept: usize,
    /// The seed of the mutations.
    pub seed: u64,
}

/// Runs the corpus, then `iterations` mutants, stopping early at `limit`. Panics with the saved
/// input's path when the target panics.
pub fn run(target: &Target, iterations: u64, seed: u64, limit: Option<Duration>) -> Report {
    let mut corpus = load_corpus(target.name);
    assert!(
        !corpus.is_empty(),
        "the corpus of fuzz target `{}` is missing: {}",
        target.name,
        corpus_dir(target.name).display()
    );
    let seeds = corpus.len();
    let mut outcomes = HashSet::new();
    let mut executions = 0;
    for input in corpus.clone() {
        outcomes.insert(execute(target, &input));
        executions += 1;
    }
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    for i in 0..iterations {
        if i % 256 == 0 && limit.is_some_and(|l| started.elapsed() > l) {
            break;
        }
        let base = &corpus[rng.below(corpus.len())];
        let mutant = mutate(&mut rng, base, &corpus);
        let outcome = execute(target, &mutant);
        executions += 1;
        if outcomes.insert(outcome) && corpus.len() < seeds + 4096 {
            corpus.push(mutant);
        }
    }
    Report {
        target: target.name,
        executions,
        outcomes: outcomes.len(),
        seeds,
        kept: corpus.len() - seeds,
        seed,
    }
}

/// Runs one input; a panic saves it and fails with where it was saved.
fn execute(target: &Target, input: &[u8]) -> String {
    match std::panic::catch_unwind(|| (target.run)(input)) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = crate::workflow::executor::panic_message(&*payload);
            let dir = std::env::temp_dir().join("duraflow-fuzz-crashes");
            let _ = std::fs::create_dir_all(&dir);
            let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
            });
            let path = dir.join(format!("{}-{hash:016x}", target.name));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target `{}` panicked: {message}\n  input ({} bytes) saved at {}\n  as text: {:.400}",
                target.name,
                input.len(),
                path.display(),
                String::from_utf8_lossy(input)
            );
        }
    }
}

/// The campaign a test runs: the environment's iterations, seed and time limit, else the CI ones.
pub fn campaign(name: &str) -> Report {
    campaign_of(target(name).unwrap_or_else(|| panic!("no fuzz target `{name}`")))
}

/// [`campaign`] of a target defined elsewhere (another crate's tests: the CLI's).
pub fn campaign_of(target: &Target) -> Report {
    let name = target.name;
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    let iterations = env("DURAFLOW_FUZZ_ITERATIONS");
    let seed = env("DURAFLOW_FUZZ_SEED").unwrap_or(0x5eed_0000 + name.len() as u64);
    let limit = match (env("DURAFLOW_FUZZ_SECONDS"), iterations) {
        (Some(s), _) => Some(Duration::from_secs(s)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(30)),
    };
    let report = run(
        target,
        iterations.unwrap_or(target.ci_iterations),
        seed,
        limit,
    );
    eprintln!(
        "fuzz {}: {} executions, {} outcomes, {} seeds, {} mutants kept, seed {}",
        report.target, report.executions, report.outcomes, report.seeds, report.kept, report.seed
    );
    report
}
