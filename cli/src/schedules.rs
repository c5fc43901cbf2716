//! `duraflow schedule create|list|describe|pause|resume|trigger|delete`.

use crate::args::{ScheduleCommand, ScheduleCreateArgs};
use crate::commands::now_ms;
use crate::error::CliError;
use crate::output::{print_json, print_table, table, time, time_ms};
use duraflow::{Client, Schedule, ScheduleDescription, ScheduleSpec, Triggered};
use serde_json::{json, Value};
use std::time::Duration;

fn duration(flag: &str, text: &str) -> Result<Duration, CliError> {
    duraflow::parse_duration(text).map_err(|e| {
        CliError::usage(format!(
            "{flag} {text}: {e}; write a duration such as 30s, 15m, 1h or 1d"
        ))
    })
}

fn invalid(e: duraflow::Error) -> CliError {
    CliError::usage(e.to_string())
}

fn spec(a: &ScheduleCreateArgs) -> Result<ScheduleSpec, CliError> {
    match (&a.cron, &a.every) {
        (Some(expr), _) => {
            let spec = ScheduleSpec::cron(expr).map_err(invalid)?;
            match &a.time_zone {
                Some(zone) => spec.in_time_zone(zone).map_err(invalid),
                None => Ok(spec),
            }
        }
        (None, Some(every)) => {
            let spec = ScheduleSpec::every(duration("--every", every)?).map_err(invalid)?;
            match &a.offset {
                Some(o) => spec.offset(duration("--offset", o)?).map_err(invalid),
                None => Ok(spec),
            }
        }
        (None, None) => Err(CliError::usage(
            "give --cron EXPR or --every DURATION; see `duraflow schedule create --help`",
        )),
    }
}

async fn create(client: &Client, a: ScheduleCreateArgs, as_json: bool) -> Result<(), CliError> {
    let input: Value = match &a.input {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CliError::usage(format!(
                "the input is not JSON ({e}); quote it for your shell, e.g. '{{\"arg1\": 1}}' or '\"text\"'"
            ))
        })?,
    };
    let mut schedule = Schedule::new(spec(&a)?).overlap(a.overlap.into());
    if let Some(w) = &a.catchup_window {
        schedule = schedule.catchup_window(duration("--catchup-window", w)?);
    }
    if let Some(note) = a.paused.clone() {
        schedule = schedule.paused(note);
    }
    if let Some(q) = a.task_queue.clone() {
        schedule = schedule.task_queue(q);
    }
    let d = client
        .create_schedule_by_name(&a.id, schedule, &a.workflow_type, input)
        .await
        .map_err(|e| CliError::store("cannot create the schedule", e))?;
    if as_json {
        print_json(&d);
    } else {
        let next = d.next_fire_ms.map_or("none".to_string(), time);
        println!(
            "Created schedule `{}` ({}): starts `{}`{}; next tick {next}. Workers on this store fire it.",
            d.schedule_id,
            d.spec,
            d.workflow_type,
            if d.paused { ", paused" } else { "" }
        );
    }
    Ok(())
}

fn state(d: &ScheduleDescription) -> &'static str {
    if d.paused {
        "paused"
    } else {
        "active"
    }
}

async fn list(client: &Client, as_json: bool) -> Result<(), CliError> {
    let all = client
        .list_schedules()
        .await
        .map_err(|e| CliError::store("cannot list schedules", e))?;
    if as_json {
        print_json(&all);
        return Ok(());
    }
    if all.is_empty() {
        println!(
            "No schedules. Create one with: duraflow schedule create ID TYPE --cron '0 3 * * *'"
        );
        return Ok(());
    }
    let mut t = table(&["SCHEDULE", "SPEC", "WORKFLOW", "STATE", "NEXT", "STARTED"]);
    for d in &all {
        t.add_row(vec![
            d.schedule_id.clone(),
            d.spec.to_string(),
            d.workflow_type.clone(),
            state(d).to_string(),
            if d.paused {
                "-".into()
            } else {
                d.next_fire_ms.map_or("none".into(), time)
            },
            d.started.to_string(),
        ]);
    }
    print_table(&t);
    Ok(())
}

async fn describe(client: &Client, id: &str, as_json: bool) -> Result<(), CliError> {
    let d = client
        .describe_schedule(id)
        .await
        .map_err(|e| CliError::store("cannot describe the schedule", e))?;
    let upcoming = d.upcoming(now_ms(), 5);
    if as_json {
        let mut v = serde_json::to_value(&d).unwrap_or(Value::Null);
        v["upcoming_ms"] = json!(upcoming);
        print_json(&v);
        return Ok(());
    }
    println!("Schedule   {}", d.schedule_id);
    println!("Spec       {}", d.spec);
    println!(
        "Workflow   {} (task queue {})",
        d.workflow_type, d.task_queue
    );
    println!("Input      {}", d.input);
    println!("State      {}", state(&d));
    if let Some(note) = &d.note {
        println!("Note       {note}");
    }
    println!("Overlap    {}", d.overlap.as_str());
    println!(
        "Catch-up   {}",
        humantime::format_duration(Duration::from_millis(d.catchup_window_ms))
    );
    println!(
        "Counts     started {}, skipped {}, missed {}",
        d.started, d.skipped, d.missed
    );
    if let Some(b) = d.buffered_ms {
        println!(
            "Buffered   the tick of {} waits for the running one",
            time_ms(b)
        );
    }
    println!("Created    {}", time(d.created_ms));
    if !d.paused {
        let next: Vec<String> = upcoming.iter().map(|t| time(*t)).collect();
        println!(
            "Next       {}",
            if next.is_empty() {
                "none".into()
            } else {
                next.join(", ")
            }
        );
    }
    if !d.recent.is_empty() {
        println!();
        let mut t = table(&["TICK", "STARTED", "WORKFLOW"]);
        for r in &d.recent {
            t.add_row(vec![
                time_ms(r.scheduled_ms),
                time_ms(r.started_ms),
                r.workflow_id.clone(),
            ]);
        }
        print_table(&t);
    }
    Ok(())
}

/// Runs one `duraflow schedule` command.
pub(crate) async fn run(
    client: &Client,
    c: ScheduleCommand,
    as_json: bool,
) -> Result<(), CliError> {
    let done = |what: &str, id: &str| {
        if as_json {
            print_json(&json!({ "schedule_id": id, "done": what }));
        } else {
            println!("Schedule `{id}` {what}.");
        }
    };
    match c {
        ScheduleCommand::Create(a) => create(client, a, as_json).await,
        ScheduleCommand::List => list(client, as_json).await,
        ScheduleCommand::Describe { id } => describe(client, &id, as_json).await,
        ScheduleCommand::Pause { id, note } => {
            client
                .pause_schedule(&id, &note)
                .await
                .map_err(|e| CliError::store("cannot pause the schedule", e))?;
            done("paused", &id);
            Ok(())
        }
        ScheduleCommand::Resume { id, note } => {
            client
                .resume_schedule(&id, &note)
                .await
                .map_err(|e| CliError::store("cannot resume the schedule", e))?;
            done("resumed", &id);
            Ok(())
        }
        ScheduleCommand::Delete { id } => {
            client
                .delete_schedule(&id)
                .await
                .map_err(|e| CliError::store("cannot delete the schedule", e))?;
            done("deleted", &id);
            Ok(())
        }
        ScheduleCommand::Trigger { id } => {
            let t = client
                .trigger_schedule(&id)
                .await
                .map_err(|e| CliError::store("cannot trigger the schedule", e))?;
            if as_json {
                print_json(&t);
            } else {
                match t {
                    Triggered::Started { workflow_id } => println!(
                        "Started `{workflow_id}`. Follow it with: duraflow describe {workflow_id}"
                    ),
                    Triggered::Buffered => println!(
                        "The last run of `{id}` still runs; this start waits for it (overlap policy buffer_one)."
                    ),
                    Triggered::Skipped => println!(
                        "The last run of `{id}` still runs; nothing started (overlap policy skip)."
                    ),
                    _ => println!("Triggered `{id}`."),
                }
            }
            Ok(())
        }
    }
}
