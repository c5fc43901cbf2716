//! Checks of `terminate_workflow`: a held workflow ends at once, recorded, its work withdrawn.

use super::support::*;
use crate::engine::terminate::terminated_error;
use crate::error::Error;
use crate::history::EventKind;
use crate::store::{StoreBackend, WorkflowStatus};

pub(super) async fn check_terminate_workflow(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let t = now_ms();
    commit_ok(s, commit(&c, 1, vec![sched(1, AT), timer(2, t + 30_000)])).await; // 2, 3, marker 4
                                                                                 // The workflow's next task is held: its code no longer replays.
    assert!(s.request_cancel_workflow("wf").await.unwrap()); // 5
    let held = claim_wft(s, "wf").await;
    s.hold_workflow_task("wf", held.token, "no longer replays", t + 600_000)
        .await
        .unwrap();
    assert!(describe(s, "wf").await.held_reason.is_some());

    assert!(s.terminate_workflow("wf", "stuck").await.unwrap());
    let error = terminated_error("stuck");
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![EventKind::WorkflowFailed {
            error: error.clone()
        }],
        "one event records it, and no task marker: no code ran"
    );
    let d = describe(s, "wf").await;
    assert_eq!(d.status, WorkflowStatus::Failed);
    assert_eq!(d.error, Some(error));
    assert_eq!(d.held_reason, None);
    assert!(
        d.pending_activities.is_empty(),
        "the pending activity is withdrawn"
    );
    assert_no_wft(s, "a terminated workflow has no task").await;
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        None,
        "the timer is gone"
    );

    assert!(
        !s.terminate_workflow("wf", "again").await.unwrap(),
        "already ended"
    );
    assert_eq!(history(s, "wf").await.len(), 6);
    assert!(matches!(
        s.terminate_workflow("nobody", "x").await,
        Err(Error::WorkflowNotFound(_))
    ));
}
