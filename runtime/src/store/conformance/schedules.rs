//! Schedules: `create_schedule` (refused for an existing id), `read_schedule`, `list_schedules`,
//! `fire_due_schedules` (each due tick starts once: its workflow id names the tick, an existing id
//! is left alone, two concurrent firings act once), the overlap policies, pause / resume /
//! trigger / delete through `change_schedule`, and `next_schedule_due_ms`.

use super::support::*;
use crate::engine::schedule::{self as engine, ScheduleAction, ScheduleChange, ScheduleWrite};
use crate::schedule::{
    workflow_id_for, OverlapPolicy, Schedule, ScheduleDescription, ScheduleSpec, Triggered,
};

const HOUR: i64 = 3_600_000;

/// A creation time `hours` ticks of an hourly schedule before now: its ticks since are exactly
/// the last `hours` full hours (the last at or before now).
fn hours_ago(hours: i64) -> i64 {
    let base = now_ms().div_euclid(HOUR) * HOUR;
    base - (hours - 1) * HOUR - HOUR + 1
}

fn hourly() -> Schedule {
    Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap())
}

/// A schedule created as if at `created_ms` (in the past: its ticks since are due now).
async fn create_at(
    s: &dyn StoreBackend,
    id: &str,
    schedule: &Schedule,
    created_ms: i64,
) -> ScheduleDescription {
    let action = ScheduleAction {
        workflow_type: WT.into(),
        task_queue: Q.into(),
        input: json!({ "schedule": id }),
        execution_timeout_ms: None,
    };
    let plan = engine::create(id, schedule, action, created_ms).unwrap();
    let ScheduleWrite::Insert { record, .. } = &plan.write else {
        panic!("a create inserts")
    };
    let record = record.clone();
    s.create_schedule(plan).await.expect("create_schedule");
    record
}

async fn read(s: &dyn StoreBackend, id: &str) -> ScheduleDescription {
    s.read_schedule(id)
        .await
        .expect("read_schedule")
        .expect("the schedule exists")
}

/// The ticks of an hourly schedule created at `created` that are due by `now`.
fn ticks(created: i64, now: i64) -> Vec<i64> {
    let spec = ScheduleSpec::every(Duration::from_secs(3600)).unwrap();
    let mut out = Vec::new();
    let mut t = created;
    while let Some(next) = spec.next_after(t).unwrap() {
        if next > now {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

pub(super) async fn check_schedule_create_read_list(s: &dyn StoreBackend) {
    assert_eq!(s.next_schedule_due_ms().await.unwrap(), None, "no schedule");
    let now = now_ms();
    let created = create_at(s, "hourly", &hourly(), now).await;
    assert_eq!(read(s, "hourly").await, created, "read back as written");
    assert_eq!(
        s.next_schedule_due_ms().await.unwrap(),
        created.next_fire_ms,
        "due at its first tick"
    );
    // The same id again: refused, the first one unchanged.
    let other = hourly().overlap(OverlapPolicy::AllowAll);
    let action = ScheduleAction {
        workflow_type: WT2.into(),
        task_queue: Q.into(),
        input: json!(null),
        execution_timeout_ms: None,
    };
    match s
        .create_schedule(engine::create("hourly", &other, action, now).unwrap())
        .await
    {
        Err(Error::DuplicateScheduleId(id)) => assert_eq!(id, "hourly"),
        other => panic!("a second create must be DuplicateScheduleId, got {other:?}"),
    }
    assert_eq!(read(s, "hourly").await, created);
    // A paused one is never due.
    create_at(s, "a-paused", &hourly().paused("later"), now).await;
    let list = s.list_schedules().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|d| d.schedule_id.as_str()).collect();
    assert_eq!(ids, ["a-paused", "hourly"], "by id");
    assert!(list[0].paused);
    assert_eq!(list[0].note.as_deref(), Some("later"));
    assert_eq!(
        s.next_schedule_due_ms().await.unwrap(),
        created.next_fire_ms,
        "the paused one is not due"
    );
    assert!(s.read_schedule("nobody").await.unwrap().is_none());
    assert_eq!(
        s.fire_due_schedules(10).await.unwrap(),
        0,
        "nothing due yet"
    );
}

pub(super) async fn check_schedule_fire_starts_each_tick_once(s: &dyn StoreBackend) {
    let now = now_ms();
    let created = hours_ago(3);
    create_at(
        s,
        "catchup",
        &hourly()
            .overlap(OverlapPolicy::AllowAll)
            .catchup_window(Duration::from_secs(2 * 3600)),
        created,
    )
    .await;
    let due = ticks(created, now);
    assert_eq!(due.len(), 3);
    // The third tick's workflow exists already (a start by hand with that id): left alone.
    let taken = workflow_id_for("catchup", due[2]);
    s.create_workflow(new_wf(&taken, WT2, Q, None))
        .await
        .unwrap();

    assert_eq!(
        s.fire_due_schedules(10).await.unwrap(),
        1,
        "one schedule acted on"
    );
    let r = read(s, "catchup").await;
    // The first tick is older than the 2 h window: missed. The others start, in order.
    assert_eq!((r.missed, r.started, r.skipped), (1, 2, 0));
    let started: Vec<String> = r.recent.iter().map(|x| x.workflow_id.clone()).collect();
    assert_eq!(
        started,
        [workflow_id_for("catchup", due[1]), taken.clone()],
        "ids name the ticks"
    );
    let d = describe(s, &started[0]).await;
    assert_eq!(
        (d.workflow_type.as_str(), d.status),
        (WT, WorkflowStatus::Running)
    );
    assert_eq!(
        kinds(s, &started[0]).await[0],
        EventKind::WorkflowStarted {
            workflow_type: WT.into(),
            input: json!({ "schedule": "catchup" }),
            task_queue: Q.into(),
            run_id: d.run_id.clone(),
        }
    );
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.workflow_id.clone())
            .collect::<Vec<_>>(),
        [started[0].clone()],
        "the new run has its first workflow task; the existing one was not replaced"
    );
    assert_eq!(describe(s, &taken).await.workflow_type, WT2);
    // Acted on: not due until the next tick, and firing again starts nothing.
    assert_eq!(r.next_fire_ms, Some(due[2] + HOUR));
    assert_eq!(s.next_schedule_due_ms().await.unwrap(), Some(due[2] + HOUR));
    assert_eq!(s.fire_due_schedules(10).await.unwrap(), 0);
    assert_eq!(read(s, "catchup").await.started, 2);
}

pub(super) async fn check_schedule_concurrent_fires_act_once(s: &dyn StoreBackend) {
    let created = hours_ago(5);
    for k in 0..4 {
        create_at(
            s,
            &format!("race-{k}"),
            &hourly().overlap(OverlapPolicy::AllowAll),
            created,
        )
        .await;
    }
    let (a, b) = tokio::join!(s.fire_due_schedules(10), s.fire_due_schedules(10));
    let acted = a.unwrap() + b.unwrap();
    // Whatever the interleaving, each schedule's five ticks started once.
    let mut more = 0;
    while s.fire_due_schedules(10).await.unwrap() > 0 {
        more += 1;
        assert!(more < 10);
    }
    assert!((1..=4).contains(&acted), "{acted}");
    for k in 0..4 {
        let r = read(s, &format!("race-{k}")).await;
        assert_eq!(r.started, 5, "race-{k}: each tick once");
    }
    let all = s.list(&ListFilter::all().id_prefix("race-")).await.unwrap();
    assert_eq!(all.len(), 20, "4 schedules x 5 ticks, no duplicate");
}

pub(super) async fn check_schedule_overlap_policies(s: &dyn StoreBackend) {
    let now = now_ms();
    let created = hours_ago(2);
    // Skip: the first due tick starts, the second is dropped while it runs.
    create_at(s, "skip", &hourly(), created).await;
    // BufferOne: the second waits for the first.
    create_at(
        s,
        "buffer",
        &hourly().overlap(OverlapPolicy::BufferOne),
        created,
    )
    .await;
    assert_eq!(s.fire_due_schedules(10).await.unwrap(), 2);
    let skip = read(s, "skip").await;
    assert_eq!((skip.started, skip.skipped), (1, 1));
    let buffer = read(s, "buffer").await;
    assert_eq!((buffer.started, buffer.skipped), (1, 0));
    let due = ticks(created, now);
    assert_eq!(buffer.buffered_ms, Some(due[1]));
    // A trigger while the run runs: skipped, or buffered behind the waiting one (dropped).
    assert_eq!(
        s.change_schedule("skip", ScheduleChange::Trigger)
            .await
            .unwrap(),
        Some(Triggered::Skipped)
    );
    assert_eq!(
        s.change_schedule("buffer", ScheduleChange::Trigger)
            .await
            .unwrap(),
        Some(Triggered::Buffered)
    );
    assert_eq!(read(s, "buffer").await.skipped, 1);

    // The buffered one's run ends: the buffered tick starts at the next look.
    let first = workflow_id_for("buffer", due[0]);
    s.terminate_workflow(&first, "done").await.unwrap();
    let t = s.next_schedule_due_ms().await.unwrap().unwrap();
    assert!(t <= now_ms() + engine::BUFFER_RECHECK_MS);
    sleep_past(t).await;
    assert!(s.fire_due_schedules(10).await.unwrap() >= 1);
    let buffer = read(s, "buffer").await;
    assert_eq!(buffer.buffered_ms, None);
    assert_eq!(buffer.started, 2);
    assert_eq!(
        buffer.last_workflow_id,
        Some(workflow_id_for("buffer", due[1])),
        "the buffered tick's own id"
    );
    // The skipped one's run ends: a trigger starts now.
    s.terminate_workflow(&workflow_id_for("skip", due[0]), "done")
        .await
        .unwrap();
    match s
        .change_schedule("skip", ScheduleChange::Trigger)
        .await
        .unwrap()
    {
        Some(Triggered::Started { workflow_id }) => {
            assert_eq!(
                describe(s, &workflow_id).await.status,
                WorkflowStatus::Running
            )
        }
        other => panic!("a trigger with nothing running starts, got {other:?}"),
    }
}

pub(super) async fn check_schedule_pause_resume_trigger_delete(s: &dyn StoreBackend) {
    let created = hours_ago(2);
    create_at(s, "p", &hourly(), created).await;
    // Paused before any worker looked: its due ticks do not start, and it is never due.
    s.change_schedule("p", ScheduleChange::Pause(Some("maintenance".into())))
        .await
        .unwrap();
    let r = read(s, "p").await;
    assert!(r.paused);
    assert_eq!(r.note.as_deref(), Some("maintenance"));
    assert_eq!(s.next_schedule_due_ms().await.unwrap(), None);
    assert_eq!(s.fire_due_schedules(10).await.unwrap(), 0);
    // A trigger starts even while paused.
    let Some(Triggered::Started { workflow_id }) = s
        .change_schedule("p", ScheduleChange::Trigger)
        .await
        .unwrap()
    else {
        panic!("a trigger of a paused schedule with nothing running starts")
    };
    assert_eq!(
        describe(s, &workflow_id).await.status,
        WorkflowStatus::Running
    );
    assert!(read(s, "p").await.paused, "still paused");
    // Resumed: the ticks that passed while paused are not made up.
    s.change_schedule("p", ScheduleChange::Resume(None))
        .await
        .unwrap();
    let r = read(s, "p").await;
    assert!(!r.paused);
    assert_eq!(r.note, None);
    let next = r.next_fire_ms.unwrap();
    assert!(next > now_ms() - 1_000 && next <= now_ms() + HOUR, "{next}");
    assert_eq!(s.next_schedule_due_ms().await.unwrap(), Some(next));
    assert_eq!(s.fire_due_schedules(10).await.unwrap(), 0);
    assert_eq!(r.started, 1);
    // Deleted: gone; its workflow is left alone; every change now says so.
    s.change_schedule("p", ScheduleChange::Delete)
        .await
        .unwrap();
    assert!(s.read_schedule("p").await.unwrap().is_none());
    assert_eq!(s.next_schedule_due_ms().await.unwrap(), None);
    assert_eq!(
        describe(s, &workflow_id).await.status,
        WorkflowStatus::Running
    );
    for change in [
        ScheduleChange::Pause(None),
        ScheduleChange::Resume(None),
        ScheduleChange::Trigger,
        ScheduleChange::Delete,
    ] {
        match s.change_schedule("p", change).await {
            Err(Error::ScheduleNotFound(id)) => assert_eq!(id, "p"),
            other => {
                panic!("a change of a deleted schedule must be ScheduleNotFound, got {other:?}")
            }
        }
    }
}
