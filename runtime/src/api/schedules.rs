//! The client's schedule calls: create (typed or by name), list, describe, pause, resume, trigger
//! now, delete. Each is one store transition; the decisions are `engine::schedule`'s.

use crate::api::client::Client;
use crate::definition::DEFAULT_TASK_QUEUE;
use crate::engine::schedule::{self as schedule_engine, ScheduleAction, ScheduleChange};
use crate::error::{Error, Result};
use crate::schedule::{Schedule, ScheduleDescription, Triggered};
use crate::workflow::definition::WorkflowDefinition;
use serde_json::Value;

fn check_id(schedule_id: &str) -> Result<()> {
    if schedule_id.is_empty() {
        return Err(Error::InvalidOption(
            "the schedule id is empty; give each schedule a unique, non-empty id".into(),
        ));
    }
    Ok(())
}

impl Client {
    /// Creates a schedule that starts `workflow` with `input` at each tick of `schedule`'s spec.
    /// Each tick's workflow id is `{schedule_id}-{tick time}` (RFC 3339, UTC), so a tick starts
    /// once, also across restarts and with several workers. Workers fire the schedule: without a
    /// running worker on this store, ticks wait (and are made up, within the catch-up window,
    /// when one runs). [`Error::DuplicateScheduleId`] if the id exists.
    ///
    /// ```no_run
    /// use duraflow::prelude::*;
    /// use duraflow::{OverlapPolicy, Schedule, ScheduleSpec};
    ///
    /// #[workflow]
    /// async fn nightly_report(ctx: WorkflowContext, team: String) -> Result<u32, WorkflowError> {
    ///     Ok(0)
    /// }
    ///
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let spec = ScheduleSpec::cron("0 3 * * *")?.in_time_zone("Europe/Paris")?;
    /// client
    ///     .create_schedule(
    ///         "nightly-report",
    ///         Schedule::new(spec).overlap(OverlapPolicy::Skip),
    ///         nightly_report,
    ///         "payments".to_string(),
    ///     )
    ///     .await?;
    /// // At 03:00 Paris time: workflow `nightly-report-2026-12-02T02:00:00Z` starts.
    /// # Ok(()) }
    /// ```
    pub async fn create_schedule<W: WorkflowDefinition>(
        &self,
        schedule_id: &str,
        schedule: Schedule,
        workflow: W,
        input: W::Input,
    ) -> Result<ScheduleDescription> {
        let input = serde_json::to_value(&input).map_err(|e| Error::Payload {
            type_name: std::any::type_name::<W::Input>().to_string(),
            message: e.to_string(),
        })?;
        let opts = workflow.options();
        let schedule = Schedule {
            task_queue: schedule.task_queue.clone().or(opts.task_queue),
            execution_timeout: schedule.execution_timeout.or(opts.execution_timeout),
            ..schedule
        };
        self.create_schedule_raw(schedule_id, schedule, workflow.name(), input)
            .await
    }

    /// [`Client::create_schedule`] by the workflow's registered name, with JSON input (the
    /// command line's `duraflow schedule create`). The task queue and execution timeout default to
    /// the registered definition's when this client's registry knows the name.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// use duraflow::{Schedule, ScheduleSpec};
    /// let every_hour = Schedule::new(ScheduleSpec::every(std::time::Duration::from_secs(3600))?);
    /// client
    ///     .create_schedule_by_name("hourly-sync", every_hour, "sync", serde_json::json!({"full": false}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_schedule_by_name(
        &self,
        schedule_id: &str,
        mut schedule: Schedule,
        workflow_name: &str,
        input: Value,
    ) -> Result<ScheduleDescription> {
        if let Some(w) = self.registry().workflow(workflow_name) {
            let o = w.options();
            schedule.task_queue = schedule.task_queue.or(o.task_queue);
            schedule.execution_timeout = schedule.execution_timeout.or(o.execution_timeout);
        }
        self.create_schedule_raw(schedule_id, schedule, workflow_name, input)
            .await
    }

    async fn create_schedule_raw(
        &self,
        schedule_id: &str,
        schedule: Schedule,
        workflow_name: &str,
        input: Value,
    ) -> Result<ScheduleDescription> {
        check_id(schedule_id)?;
        if workflow_name.is_empty() {
            return Err(Error::InvalidOption(
                "the schedule's workflow name is empty; give a registered workflow name".into(),
            ));
        }
        let action = ScheduleAction {
            workflow_type: workflow_name.to_string(),
            task_queue: schedule
                .task_queue
                .clone()
                .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_string()),
            input,
            execution_timeout_ms: schedule
                .execution_timeout
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let store = self.store();
        let plan = schedule_engine::create(schedule_id, &schedule, action, store.clock.now_ms())?;
        let record = match &plan.write {
            schedule_engine::ScheduleWrite::Insert { record, .. } => record.clone(),
            _ => {
                return Err(Error::Store(
                    "internal error: a schedule's creation planned no insert".into(),
                ))
            }
        };
        store.backend.create_schedule(plan).await?;
        store.hub.wake_workers();
        Ok(record)
    }

    /// Every schedule in the store, by id.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// for s in client.list_schedules().await? {
    ///     println!("{} {} paused={} next={:?}", s.schedule_id, s.spec, s.paused, s.next_fire_ms);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleDescription>> {
        self.store().backend.list_schedules().await
    }

    /// One schedule: its spec, policies, state, counters and recent starts.
    /// [`Error::ScheduleNotFound`] if there is none.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let s = client.describe_schedule("nightly-report").await?;
    /// println!("started {} skipped {} missed {}", s.started, s.skipped, s.missed);
    /// # Ok(()) }
    /// ```
    pub async fn describe_schedule(&self, schedule_id: &str) -> Result<ScheduleDescription> {
        self.store()
            .backend
            .read_schedule(schedule_id)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(schedule_id.to_string()))
    }

    /// Pauses a schedule, with a note saying why: no tick starts anything until
    /// [`Client::resume_schedule`] (a trigger still does). Pausing a paused schedule only
    /// replaces its note; an empty note reads `paused`.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// client.pause_schedule("nightly-report", "the warehouse is migrating").await?;
    /// client.resume_schedule("nightly-report", "migration done").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause_schedule(&self, schedule_id: &str, note: &str) -> Result<()> {
        self.change(schedule_id, ScheduleChange::Pause(note_of(note, "paused")))
            .await
            .map(|_| ())
    }

    /// Resumes a paused schedule, with a note (empty: `resumed`). The ticks that passed while it
    /// was paused are not made up: the next start is the first tick after now. Resuming an active
    /// schedule only replaces its note.
    pub async fn resume_schedule(&self, schedule_id: &str, note: &str) -> Result<()> {
        self.change(
            schedule_id,
            ScheduleChange::Resume(note_of(note, "resumed")),
        )
        .await
        .map(|_| ())
    }

    /// Starts the schedule's workflow now, paused or not, through its overlap policy: with
    /// [`crate::OverlapPolicy::Skip`] and the last run still running, nothing starts
    /// ([`Triggered::Skipped`]). The workflow id is `{schedule_id}-{now}`.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// if let duraflow::Triggered::Started { workflow_id } =
    ///     client.trigger_schedule("nightly-report").await?
    /// {
    ///     let report: u32 = client.handle(workflow_id).result().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn trigger_schedule(&self, schedule_id: &str) -> Result<Triggered> {
        self.change(schedule_id, ScheduleChange::Trigger)
            .await?
            .ok_or_else(|| Error::Store("internal error: a trigger decided nothing".into()))
    }

    /// Deletes a schedule. The workflows it started are left as they are.
    pub async fn delete_schedule(&self, schedule_id: &str) -> Result<()> {
        self.change(schedule_id, ScheduleChange::Delete)
            .await
            .map(|_| ())
    }

    async fn change(&self, schedule_id: &str, change: ScheduleChange) -> Result<Option<Triggered>> {
        let store = self.store();
        let out = store.backend.change_schedule(schedule_id, change).await?;
        store.hub.wake_workers();
        Ok(out)
    }
}

/// The note, or `default` for an empty one (as Temporal's clients do).
fn note_of(note: &str, default: &str) -> Option<String> {
    Some(if note.is_empty() { default } else { note }.to_string())
}
