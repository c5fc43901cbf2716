//! The plan applier against a live server (`DURAFLOW_TEST_PG_URL`; skipped outside CI when unset):
//! a guard that does not hold writes nothing, and one that holds applies the whole plan.

use super::{PostgresStore, Tx};
use crate::engine::plan::Guard;
use crate::engine::{Effect, Plan};
use crate::history::EventKind;
use crate::store::{now_ms, NewWorkflow, StoreBackend};

fn url() -> Option<String> {
    match std::env::var("DURAFLOW_TEST_PG_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but DURAFLOW_TEST_PG_URL is not: the Postgres tests must run in CI")
        }
        Err(_) => {
            eprintln!("skipping a Postgres test: DURAFLOW_TEST_PG_URL is not set");
            None
        }
    }
}

async fn count(store: &PostgresStore, sql: &str) -> i64 {
    let client = store.client().await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_that_does_not_hold_writes_nothing() {
    let Some(url) = url() else { return };
    let schema = format!("duraflow_apply_{}_{}", std::process::id(), now_ms());
    let store = PostgresStore::connect(&url, Some(&schema)).await.unwrap();
    store
        .create_workflow(NewWorkflow {
            workflow_id: "wf".into(),
            run_id: "run".into(),
            workflow_type: "t".into(),
            task_queue: "q".into(),
            input: serde_json::json!(null),
            execution_deadline_ms: None,
        })
        .await
        .unwrap();
    // Event #1 is taken: a plan numbered from 1 is stale.
    let mut plan = Plan::new(
        "wf",
        Guard {
            next_event_seq: Some(1),
            wft_token: None,
            running: true,
        },
        now_ms(),
    );
    plan.append(EventKind::TimerFired { timer_seq: 7 });
    plan.effects.push(Effect::UpsertTimer {
        timer_seq: 7,
        fire_at_ms: 1,
    });
    plan.effects.push(Effect::SetCancelRequested);
    let mut tx = Tx::new(store.client().await.unwrap());
    let err = store
        .commit_plan(&mut tx, &mut plan, "a test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("guard"), "{err}");
    drop(tx);
    assert_eq!(count(&store, "SELECT count(*) FROM history").await, 1);
    assert_eq!(count(&store, "SELECT count(*) FROM timers").await, 0);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM workflows WHERE cancel_requested OR next_event_seq <> 2"
        )
        .await,
        0
    );

    // Numbered from the right event, the same plan applies whole.
    plan.guard.next_event_seq = Some(2);
    let mut tx = Tx::new(store.client().await.unwrap());
    store
        .commit_plan(&mut tx, &mut plan, "a test")
        .await
        .unwrap();
    let history = store.read_history("wf", 1).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].seq, 2);
    assert_eq!(history[1].kind, EventKind::TimerFired { timer_seq: 7 });
    assert_eq!(count(&store, "SELECT count(*) FROM timers").await, 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM workflows WHERE cancel_requested AND next_event_seq = 3"
        )
        .await,
        1
    );

    let client = store.client().await.unwrap();
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[test]
fn redact_hides_every_form_of_password() {
    use super::redact;
    assert_eq!(
        redact("postgres://u:s3cr3t@h:5/db"),
        "postgres://u:***@h:5/db"
    );
    assert_eq!(
        redact("postgres://u@h/db?password=s3cr3t&sslmode=require"),
        "postgres://u@h/db?password=***&sslmode=require"
    );
    assert_eq!(
        redact("host=h password=s3cr3t user=u"),
        "host=h password=*** user=u"
    );
    assert_eq!(redact("postgres://h/db"), "postgres://h/db");
}

#[test]
fn cancel_payloads_round_trip_and_stay_under_the_limit() {
    use super::apply::{cancel_payload, parse_cancel_payload};
    let p = cancel_payload("wf\n1", Some(7)).unwrap();
    assert_eq!(parse_cancel_payload(&p), Some(("wf\n1", Some(7))));
    let p = cancel_payload("wf", None).unwrap();
    assert_eq!(parse_cancel_payload(&p), Some(("wf", None)));
    // A wake-up's payload (an instance id) is not a cancel.
    assert_eq!(parse_cancel_payload("0123456789abcdef"), None);
    assert_eq!(parse_cancel_payload("c\nx\nwf"), None);
    // Too long for Postgres: no payload (the cancel waits for the next stored heartbeat).
    assert!(cancel_payload(&"w".repeat(8_000), Some(1)).is_none());
}
