//! A new run: its row, event #1 `WorkflowStarted` with the input, its first workflow task, and the
//! timer of its execution timeout.

use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use crate::history::EventKind;
use serde_json::Value;

/// A new workflow run to record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewWorkflow {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Value,
    pub execution_deadline_ms: Option<i64>,
}

/// Plans a new run. The store creates the workflow row (refusing an id that exists) and applies the
/// plan: its events are numbered from 1.
pub(crate) fn start(wf: &NewWorkflow, now: i64) -> Plan {
    let mut plan = Plan::new(
        &wf.workflow_id,
        Guard {
            next_event_seq: Some(1),
            wft_token: None,
            running: true,
        },
        now,
    );
    plan.append(EventKind::WorkflowStarted {
        workflow_type: wf.workflow_type.clone(),
        input: wf.input.clone(),
        task_queue: wf.task_queue.clone(),
        run_id: wf.run_id.clone(),
    });
    if let Some(deadline) = wf.execution_deadline_ms {
        plan.effects.push(Effect::UpsertTimer {
            timer_seq: super::timer::EXECUTION_TIMEOUT_TIMER,
            fire_at_ms: deadline,
        });
    }
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::NOW;

    #[test]
    fn a_run_starts_with_its_input_a_task_and_its_deadline() {
        let wf = NewWorkflow {
            workflow_id: "order-1".into(),
            run_id: "r1".into(),
            workflow_type: "order".into(),
            task_queue: "default".into(),
            input: serde_json::json!({"qty": 2}),
            execution_deadline_ms: Some(NOW + 1_000),
        };
        let plan = start(&wf, NOW);
        assert_eq!(plan.guard.next_event_seq, Some(1));
        assert_eq!(
            plan.events,
            vec![EventKind::WorkflowStarted {
                workflow_type: "order".into(),
                input: serde_json::json!({"qty": 2}),
                task_queue: "default".into(),
                run_id: "r1".into()
            }]
        );
        assert_eq!(
            plan.effects,
            vec![
                Effect::UpsertTimer {
                    timer_seq: 0,
                    fire_at_ms: NOW + 1_000
                },
                Effect::WorkflowTask(WorkflowTaskEffect::Enqueue { at_ms: NOW })
            ]
        );
    }
}
