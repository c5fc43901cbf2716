//! Unit tests of `activity.rs`, on canned facts.

use super::*;
use crate::engine::facts::LazyOptions;
use crate::engine::testkit::*;
use crate::retry::RetryPolicy;
use std::time::Duration;

fn attempt(cancel_requested: bool) -> AttemptFacts {
    AttemptFacts {
        task_id: 7,
        workflow_id: "wf".into(),
        activity_seq: 3,
        token: 2,
        scheduled_ms: 1_000,
        cancel_requested,
        heartbeat_details: Some(serde_json::json!({"at": 5})),
        options: LazyOptions::Parsed(ActivityOptions::default()),
    }
}

#[test]
fn a_stale_token_writes_nothing() {
    let f = finish(
        &attempt(false),
        1,
        ActivityResolution::Completed(1.into()),
        None,
        Some(&facts_running(5, 1)),
        true,
        NOW,
    )
    .unwrap();
    assert_eq!(f, Finish::Fenced);
}

#[test]
fn a_completed_attempt_appends_its_result_and_wakes_the_workflow() {
    let Finish::Recorded { plan, event } = finish(
        &attempt(false),
        2,
        ActivityResolution::Completed(41.into()),
        None,
        Some(&facts_running(5, 1)),
        true,
        NOW,
    )
    .unwrap() else {
        panic!("fenced")
    };
    let expected = EventKind::ActivityCompleted {
        activity_seq: 3,
        result: 41.into(),
    };
    assert_eq!(event, Some(expected.clone()));
    assert_eq!(plan.events, vec![expected]);
    assert_eq!(
        plan.effects,
        vec![
            Effect::EndActivityTask { task_id: 7 },
            Effect::WorkflowTask(crate::engine::WorkflowTaskEffect::Enqueue { at_ms: NOW }),
        ]
    );
}

#[test]
fn a_retry_after_a_cancel_request_becomes_the_cancellation() {
    let Finish::Recorded { plan, event } = finish(
        &attempt(true),
        2,
        ActivityResolution::Retry {
            retry_at_ms: NOW + 1_000,
            last_failure: None,
        },
        None,
        Some(&facts_running(5, 1)),
        true,
        NOW,
    )
    .unwrap() else {
        panic!("fenced")
    };
    assert_eq!(
        event,
        Some(EventKind::ActivityCancelled {
            activity_seq: 3,
            details: Some(serde_json::json!({"at": 5})),
        })
    );
    assert!(plan
        .effects
        .contains(&Effect::EndActivityTask { task_id: 7 }));
}

#[test]
fn a_retry_puts_the_task_back_with_the_latest_details_and_no_event() {
    let failure = ActivityError::application("Boom", "disk full");
    let Finish::Recorded { plan, event } = finish(
        &attempt(false),
        2,
        ActivityResolution::Retry {
            retry_at_ms: NOW + 1_000,
            last_failure: Some(failure.clone()),
        },
        Some(serde_json::json!("newer")),
        Some(&facts_running(5, 1)),
        true,
        NOW,
    )
    .unwrap() else {
        panic!("fenced")
    };
    assert_eq!(event, None);
    assert!(plan.events.is_empty());
    assert_eq!(
        plan.effects,
        vec![Effect::RetryActivityTask {
            task_id: 7,
            visible_at_ms: NOW + 1_000,
            heartbeat_details: Some(serde_json::json!("newer")),
            pending_deadline: None,
            last_failure: Some(failure),
        }]
    );
}

#[test]
fn an_outcome_after_the_workflow_ended_only_removes_the_task() {
    let Finish::Recorded { plan, event } = finish(
        &attempt(false),
        2,
        ActivityResolution::Completed(1.into()),
        None,
        None,
        true,
        NOW,
    )
    .unwrap() else {
        panic!("fenced")
    };
    assert_eq!(event, None);
    assert!(plan.events.is_empty());
    assert_eq!(plan.effects, vec![Effect::EndActivityTask { task_id: 7 }]);
}

#[test]
fn damaged_options_are_an_error_only_when_a_retry_needs_them() {
    let mut a = attempt(false);
    a.options = LazyOptions::Stored("{not json".into());
    assert!(finish(
        &a,
        2,
        ActivityResolution::Completed(1.into()),
        None,
        Some(&facts_running(5, 1)),
        true,
        NOW
    )
    .is_ok());
    let err = finish(
        &a,
        2,
        ActivityResolution::Retry {
            retry_at_ms: NOW,
            last_failure: None,
        },
        None,
        Some(&facts_running(5, 1)),
        true,
        NOW,
    )
    .unwrap_err();
    assert!(err.to_string().contains("options"), "{err}");
}

#[test]
fn the_retry_policy_decides_retry_or_failure() {
    let mut options = ActivityOptions {
        retry_policy: RetryPolicy {
            maximum_attempts: 2,
            ..RetryPolicy::default()
        },
        ..ActivityOptions::default()
    };
    let err = ActivityError::application("Boom", "x");
    assert_eq!(
        resolve_failure(&options, "a", 1, 0, err.clone(), None, NOW),
        ActivityResolution::Retry {
            retry_at_ms: NOW + 1_000,
            last_failure: Some(err.clone()),
        },
        "a retry keeps the attempt's error for `describe`"
    );
    assert!(matches!(
        resolve_failure(&options, "a", 2, 0, err.clone(), None, NOW),
        ActivityResolution::Failed(ActivityError::Failed { attempts: 2, .. })
    ));
    // Non-retryable errors fail at once.
    assert!(matches!(
        resolve_failure(
            &options,
            "a",
            1,
            0,
            ActivityError::non_retryable("Bad", "x"),
            None,
            NOW
        ),
        ActivityResolution::Failed(_)
    ));
    // A retry that would start past schedule-to-close is not made.
    options.retry_policy.maximum_attempts = 0;
    options.schedule_to_close_timeout = Some(Duration::from_millis(500));
    assert!(matches!(
        resolve_failure(&options, "a", 1, NOW, err, None, NOW),
        ActivityResolution::Failed(_)
    ));
}

#[test]
fn timeouts_before_start_or_past_schedule_to_close_are_final() {
    let mut task = claimed(3);
    task.attempt = 1;
    for (kind, final_) in [
        (TimeoutKind::ScheduleToStart, true),
        (TimeoutKind::ScheduleToClose, true),
        (TimeoutKind::StartToClose, false),
        (TimeoutKind::Heartbeat, false),
    ] {
        let r = resolve_timeout(
            &ExpiredActivity {
                task: task.clone(),
                kind,
            },
            NOW,
        );
        assert_eq!(
            matches!(r, ActivityResolution::TimedOut(_)),
            final_,
            "{kind:?}: {r:?}"
        );
    }
}

#[test]
fn a_returned_cancellation_keeps_the_last_heartbeat_details() {
    let r = resolve_result(
        &claimed(1),
        Err(ActivityError::cancelled()),
        Some(serde_json::json!(9)),
        NOW,
    );
    assert_eq!(
        r,
        ActivityResolution::Cancelled {
            details: Some(serde_json::json!(9))
        }
    );
}

#[test]
fn an_attempt_its_worker_shutdown_interrupted_is_retried_at_once_whatever_the_policy() {
    let mut task = claimed(1);
    task.attempt = 3;
    task.options.retry_policy = RetryPolicy {
        maximum_attempts: 1,
        ..RetryPolicy::default()
    };
    let r = resolve_result(&task, Err(ActivityError::WorkerShutdown), None, NOW);
    assert_eq!(
        r,
        ActivityResolution::Retry {
            retry_at_ms: NOW,
            last_failure: None,
        }
    );
}

#[test]
fn starting_an_attempt_bumps_attempt_and_token_and_appends_started() {
    let mut task = claimed(4);
    task.attempt = 1;
    task.token = 1;
    task.options.start_to_close_timeout = Some(Duration::from_secs(10));
    let (next, plan) = start_attempt(&task, "w1", NOW);
    assert_eq!((next.attempt, next.token), (2, 2));
    assert_eq!(next.deadline_ms, Some(NOW + 10_000));
    assert_eq!(
        plan.events,
        vec![EventKind::ActivityStarted {
            activity_seq: 4,
            attempt: 2,
            worker: "w1".into()
        }]
    );
}

#[test]
fn deadlines_take_the_earliest_timeout() {
    let options = ActivityOptions {
        start_to_close_timeout: Some(Duration::from_secs(10)),
        heartbeat_timeout: Some(Duration::from_secs(2)),
        schedule_to_close_timeout: Some(Duration::from_secs(60)),
        ..ActivityOptions::default()
    };
    assert_eq!(
        attempt_deadline(&options, 0, 1_000, 1_000),
        (3_000, TimeoutKind::Heartbeat)
    );
    assert_eq!(
        attempt_deadline(&options, 0, 55_000, 55_000 + 100_000),
        (60_000, TimeoutKind::ScheduleToClose)
    );
    // Without any timeout, the default start-to-close applies.
    assert_eq!(
        attempt_deadline(&ActivityOptions::default(), 0, 0, 0),
        (300_000, TimeoutKind::StartToClose)
    );
    let waiting = ActivityOptions {
        schedule_to_start_timeout: Some(Duration::from_secs(1)),
        ..ActivityOptions::default()
    };
    assert_eq!(
        pending_deadline(&waiting, 0, 0, true),
        Some((1_000, TimeoutKind::ScheduleToStart))
    );
    assert_eq!(pending_deadline(&waiting, 0, 0, false), None);
}
