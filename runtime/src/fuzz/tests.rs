//! Each fuzz target as a bounded test, and the inputs that once broke something.

use super::*;

fn fuzz(name: &str) {
    let report = campaign(name);
    assert!(
        report.executions > report.seeds as u64,
        "fuzz target `{name}` ran no mutant"
    );
}

#[test]
fn fuzz_stored_event() {
    fuzz("stored_event");
}

#[test]
fn fuzz_activity_options() {
    fuzz("activity_options");
}

#[test]
fn fuzz_workflow_error() {
    fuzz("workflow_error");
}

#[test]
fn fuzz_payload() {
    fuzz("payload");
}

#[test]
fn fuzz_duration() {
    fuzz("duration");
}

#[test]
fn fuzz_sqlite_file() {
    fuzz("sqlite_file");
}

/// The mutations are seeded: the same seed gives the same mutants, so a campaign can be replayed.
#[test]
fn mutations_are_reproducible() {
    let corpus = load_corpus("stored_event");
    let run = |seed| {
        let mut rng = Rng::new(seed);
        (0..50)
            .map(|i| mutate(&mut rng, &corpus[i % corpus.len()], &corpus))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// A target that panics fails its campaign with the saved input.
#[test]
fn a_panicking_target_is_reported() {
    fn breaks(data: &[u8]) -> String {
        assert!(!data.contains(&b'}'), "found a brace");
        "ok".into()
    }
    let target = Target {
        name: "stored_event",
        run: breaks,
        ci_iterations: 10,
    };
    let err = std::panic::catch_unwind(|| run(&target, 10, 1, None)).expect_err("it panics");
    let message = crate::workflow::executor::panic_message(&*err);
    assert!(message.contains("found a brace"), "{message}");
    assert!(message.contains("duraflow-fuzz-crashes"), "{message}");
}
