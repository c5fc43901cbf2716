//! The commands that read or change workflows: list, describe, history, start, cancel.

use crate::args::ListArgs;
use crate::error::CliError;
use crate::output::{self, print_json, print_table, table};
use crate::progress;
use duraflow::{Client, ListFilter, StartOptions, WorkflowDescription, WorkflowStatus};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many characters of a payload a table shows.
const PAYLOAD_CHARS: usize = 48;

/// `duraflow list`.
pub(crate) async fn list(client: &Client, args: &ListArgs, as_json: bool) -> Result<(), CliError> {
    let mut filter = ListFilter::all().limit(args.limit).offset(args.offset);
    if let Some(s) = args.status {
        filter = filter.status(s.into());
    }
    if let Some(t) = &args.workflow_type {
        filter = filter.workflow_type(t);
    }
    if let Some(p) = &args.prefix {
        filter = filter.id_prefix(p);
    }
    if let Some(t) = &args.after {
        filter = filter.started_after_ms(parse_time("--after", t)?);
    }
    if let Some(t) = &args.before {
        filter = filter.started_before_ms(parse_time("--before", t)?);
    }
    let workflows = client
        .list(filter.clone())
        .await
        .map_err(|e| CliError::store("cannot list the workflows", e))?;
    let counts = client
        .count(filter)
        .await
        .map_err(|e| CliError::store("cannot count the workflows", e))?;
    let matching = match args.status.map(WorkflowStatus::from) {
        None => counts.total(),
        Some(WorkflowStatus::Running) => counts.running,
        Some(WorkflowStatus::Completed) => counts.completed,
        Some(WorkflowStatus::Failed) => counts.failed,
        Some(_) => counts.cancelled,
    };
    let next_offset = (args.offset as u64 + (workflows.len() as u64) < matching)
        .then_some(args.offset + workflows.len());
    if as_json {
        print_json(&json!({
            "workflows": workflows,
            "counts": counts,
            "matching": matching,
            "offset": args.offset,
            "next_offset": next_offset,
        }));
        return Ok(());
    }
    if workflows.is_empty() {
        println!(
            "No workflows match ({matching} matching, offset {}).",
            args.offset
        );
        return Ok(());
    }
    let mut t = table(&[
        "WORKFLOW ID",
        "TYPE",
        "STATUS",
        "STARTED",
        "DURATION",
        "RUN ID",
    ]);
    let now = now_ms();
    for w in &workflows {
        let took = w.closed_ms.unwrap_or(now) - w.started_ms;
        t.add_row(vec![
            w.workflow_id.clone(),
            w.workflow_type.clone(),
            w.status.as_str().to_string(),
            output::time(w.started_ms),
            output::duration(took),
            w.run_id.clone(),
        ]);
    }
    print_table(&t);
    println!();
    println!(
        "{}-{} of {matching} matching (running {}, completed {}, failed {}, cancelled {}){}",
        args.offset + 1,
        args.offset + workflows.len(),
        counts.running,
        counts.completed,
        counts.failed,
        counts.cancelled,
        match next_offset {
            Some(n) => format!("; next page: --offset {n}"),
            None => String::new(),
        }
    );
    Ok(())
}

/// `duraflow describe`.
pub(crate) async fn describe(
    client: &Client,
    id: &str,
    run_id: Option<&str>,
    as_json: bool,
) -> Result<(), CliError> {
    if let Some(run_id) = run_id {
        let d = client.describe(id).await;
        if !matches!(&d, Ok(d) if d.run_id == run_id) {
            let run = client
                .describe_run(id, run_id)
                .await
                .map_err(|e| CliError::store("cannot describe the run", e))?;
            if as_json {
                print_json(&run);
            } else {
                print_run(&run);
            }
            return Ok(());
        }
    }
    let d = client
        .describe(id)
        .await
        .map_err(|e| CliError::store("cannot describe the workflow", e))?;
    if as_json {
        print_json(&d);
        return Ok(());
    }
    print_description(&d);
    Ok(())
}

/// `duraflow describe ID --run-id RUN` of an earlier run.
fn print_run(r: &duraflow::RunSummary) {
    let mut t = table(&["FIELD", "VALUE"]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row("workflow id", r.workflow_id.clone());
    row("run id", r.run_id.clone());
    row("type", r.workflow_type.clone());
    row("task queue", r.task_queue.clone());
    row("status", r.status.as_str().to_string());
    row("started", output::time(r.started_ms));
    if let Some(c) = r.closed_ms {
        row("closed", output::time(c));
    }
    row("history length", r.history_length.to_string());
    if let Some(v) = &r.result {
        row("result", v.to_string());
    }
    if let Some(e) = &r.error {
        row("error", e.to_string());
    }
    if let Some(n) = &r.next_run_id {
        row("next run", n.clone());
    }
    print_table(&t);
}

/// `duraflow describe ID --runs`.
pub(crate) async fn runs(client: &Client, id: &str, as_json: bool) -> Result<(), CliError> {
    let runs = client
        .runs(id)
        .await
        .map_err(|e| CliError::store("cannot list the runs", e))?;
    if as_json {
        print_json(&runs);
        return Ok(());
    }
    let mut t = table(&[
        "RUN ID", "STATUS", "STARTED", "CLOSED", "EVENTS", "NEXT RUN",
    ]);
    for r in &runs {
        t.add_row(vec![
            r.run_id.clone(),
            r.status.as_str().to_string(),
            output::time(r.started_ms),
            r.closed_ms.map(output::time).unwrap_or_default(),
            r.history_length.to_string(),
            r.next_run_id.clone().unwrap_or_default(),
        ]);
    }
    print_table(&t);
    Ok(())
}

fn print_description(d: &WorkflowDescription) {
    let mut t = table(&["FIELD", "VALUE"]);
    let now = now_ms();
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row("workflow id", d.workflow_id.clone());
    row("run id", d.run_id.clone());
    row("type", d.workflow_type.clone());
    row("task queue", d.task_queue.clone());
    row("status", d.status.as_str().to_string());
    row("started", output::time(d.started_ms));
    match d.closed_ms {
        Some(c) => row(
            "closed",
            format!(
                "{} (after {})",
                output::time(c),
                output::duration(c.saturating_sub(d.started_ms))
            ),
        ),
        None => row(
            "running for",
            output::duration(now.saturating_sub(d.started_ms)),
        ),
    }
    row("history length", d.history_length.to_string());
    if d.cancel_requested {
        row("cancel requested", "yes".into());
    }
    if let Some(r) = &d.result {
        row("result", output::short_json(r, Some(200)));
    }
    if let Some(e) = &d.error {
        row("error", output::shorten(&e.to_string(), 200));
    }
    if let Some(h) = &d.held_reason {
        row("held", output::shorten(h, 200));
    }
    if let Some(task) = &d.pending_task {
        let age = output::duration(now - task.due_ms);
        row(
            "workflow task",
            match &task.worker {
                Some(w) => format!("{} on {w} (due {age} ago)", task.state),
                None => format!("{} for {age}", task.state),
            },
        );
    }
    for note in &d.notes {
        row("note", note.clone());
    }
    print_table(&t);
    if !d.pending_activities.is_empty() {
        println!();
        println!("Pending activities:");
        let mut t = table(&[
            "SEQ",
            "ACTIVITY",
            "STATE",
            "ATTEMPT",
            "CANCEL",
            "HEARTBEAT",
            "LAST FAILURE",
        ]);
        for a in &d.pending_activities {
            let state = if a.state == "pending" && a.due_ms > now {
                format!("retry in {}", output::duration(a.due_ms - now))
            } else {
                a.state.clone()
            };
            t.add_row(vec![
                a.activity_seq.to_string(),
                a.activity_type.clone(),
                state,
                a.attempt.to_string(),
                if a.cancel_requested { "requested" } else { "" }.to_string(),
                a.heartbeat_details
                    .as_ref()
                    .map(|h| output::short_json(h, Some(PAYLOAD_CHARS)))
                    .unwrap_or_default(),
                a.last_failure
                    .as_ref()
                    .map(|f| output::shorten(&f.to_string(), 60))
                    .unwrap_or_default(),
            ]);
        }
        print_table(&t);
    }
}

/// `duraflow history`.
pub(crate) async fn history(
    client: &Client,
    id: &str,
    run_id: Option<&str>,
    full: bool,
    as_json: bool,
) -> Result<(), CliError> {
    let events = match run_id {
        Some(run_id) => client.run_history_json(id, run_id).await,
        None => client.history_json(id).await,
    }
    .map_err(|e| CliError::store("cannot read the history", e))?;
    if as_json {
        print_json(&events);
        return Ok(());
    }
    let events = events.as_array().cloned().unwrap_or_default();
    let start = events
        .first()
        .and_then(|e| e["time_ms"].as_i64())
        .unwrap_or(0);
    let mut t = table(&["SEQ", "TIME", "+", "EVENT", "DETAILS"]);
    let max = (!full).then_some(PAYLOAD_CHARS);
    for e in &events {
        let at = e["time_ms"].as_i64().unwrap_or(0);
        t.add_row(vec![
            e["seq"].to_string(),
            output::time_ms(at),
            output::duration(at.saturating_sub(start)),
            e["event"].as_str().unwrap_or("?").to_string(),
            output::event_details(e, max),
        ]);
    }
    print_table(&t);
    Ok(())
}

/// `duraflow start`.
pub(crate) async fn start(
    client: &Client,
    workflow_type: &str,
    id: &str,
    input: Option<&str>,
    task_queue: Option<String>,
    wait: bool,
    as_json: bool,
) -> Result<(), CliError> {
    let input: Value = match input {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CliError::usage(format!(
                "the input is not JSON ({e}); quote it for your shell, e.g. '{{\"arg1\": 1}}' or '\"text\"'"
            ))
        })?,
    };
    let mut options = StartOptions::default();
    options.task_queue = task_queue;
    client
        .start_by_name_with(workflow_type, id, input, options)
        .await
        .map_err(|e| CliError::store("cannot start the workflow", e))?;
    if !wait {
        if as_json {
            print_json(&json!({ "workflow_id": id, "workflow_type": workflow_type }));
        } else {
            println!(
                "Started `{id}` ({workflow_type}); a worker that serves `{workflow_type}` runs it. \
                 Follow it with: duraflow describe {id}"
            );
        }
        return Ok(());
    }
    wait_for_end(client, id, as_json).await
}

/// `duraflow signal`.
pub(crate) async fn signal(
    client: &Client,
    id: &str,
    name: &str,
    input: Option<&str>,
    request_id: Option<&str>,
    as_json: bool,
) -> Result<(), CliError> {
    let input = parse_input(input)?;
    let recorded = client
        .signal_by_name(id, name, input, request_id)
        .await
        .map_err(|e| CliError::store("cannot signal the workflow", e))?;
    if as_json {
        print_json(&json!({ "workflow_id": id, "signal": name, "recorded": recorded }));
    } else if recorded {
        println!("Signal `{name}` is in `{id}`'s history.");
    } else {
        println!("Signal `{name}` with this request id was already recorded in `{id}`; not again.");
    }
    Ok(())
}

/// A command's JSON input (none: null).
fn parse_input(input: Option<&str>) -> Result<Value, CliError> {
    match input {
        None => Ok(Value::Null),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CliError::usage(format!(
                "the input is not JSON ({e}); quote it for your shell, e.g. '{{\"arg1\": 1}}' or '\"text\"'"
            ))
        }),
    }
}

/// `duraflow cancel`.
pub(crate) async fn cancel(
    client: &Client,
    id: &str,
    wait: bool,
    as_json: bool,
) -> Result<(), CliError> {
    let accepted = client
        .cancel(id)
        .await
        .map_err(|e| CliError::store("cannot cancel the workflow", e))?;
    if !accepted {
        let status = client
            .describe(id)
            .await
            .map(|d| d.status.as_str())
            .unwrap_or("ended");
        return Err(CliError::new(format!(
            "workflow `{id}` has already ended ({status}); there is nothing to cancel"
        )));
    }
    if !wait {
        if as_json {
            print_json(&json!({ "workflow_id": id, "cancel_requested": true }));
        } else {
            println!("Asked `{id}` to cancel; it ends once its code returns the cancellation.");
        }
        return Ok(());
    }
    wait_for_end(client, id, as_json).await
}

/// `duraflow terminate`.
pub(crate) async fn terminate(
    client: &Client,
    id: &str,
    reason: &str,
    as_json: bool,
) -> Result<(), CliError> {
    let ended = client
        .terminate(id, reason)
        .await
        .map_err(|e| CliError::store("cannot terminate the workflow", e))?;
    if !ended {
        let status = client
            .describe(id)
            .await
            .map(|d| d.status.as_str())
            .unwrap_or("ended");
        return Err(CliError::new(format!(
            "workflow `{id}` has already ended ({status}); there is nothing to terminate"
        )));
    }
    if as_json {
        print_json(&json!({ "workflow_id": id, "terminated": true, "reason": reason }));
    } else {
        println!("Terminated `{id}`: {reason}");
    }
    Ok(())
}

/// `duraflow reset`.
pub(crate) async fn reset(
    client: &Client,
    id: &str,
    to_task: u64,
    reason: &str,
    as_json: bool,
) -> Result<(), CliError> {
    let run_id = client
        .reset(id, to_task, reason)
        .await
        .map_err(|e| CliError::store("cannot reset the workflow", e))?;
    if as_json {
        print_json(&json!({ "workflow_id": id, "run_id": run_id, "workflow_task": to_task }));
    } else {
        println!(
            "Reset `{id}` to workflow task {to_task}: new run {run_id} (`duraflow describe {id} --runs` lists its runs)"
        );
    }
    Ok(())
}

/// Waits until `id` ends, with a spinner; prints how it ended. A failed or cancelled workflow is not
/// an error of the command.
async fn wait_for_end(client: &Client, id: &str, as_json: bool) -> Result<(), CliError> {
    let spinner = progress::spinner(format!("waiting for `{id}` to end"));
    let d = client.wait(id).await;
    spinner.finish_and_clear();
    let d = d.map_err(|e| CliError::store("cannot follow the workflow", e))?;
    if as_json {
        print_json(&d);
    } else {
        print_description(&d);
    }
    Ok(())
}

/// A time for `--after` / `--before`: RFC 3339 (`2026-12-01T14:00:00Z`, or without the `Z`, as
/// UTC), or an age (`2h`: that long ago).
pub(crate) fn parse_time(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(ms_since_epoch(t));
    }
    if let Ok(age) = humantime::parse_duration(text) {
        return Ok(now_ms() - age.as_millis().min(i64::MAX as u128) as i64);
    }
    Err(CliError::usage(format!(
        "`{flag} {text}`: write a time like 2026-12-01T14:00:00Z (UTC) or an age like 2h, 30m, 1d"
    )))
}

fn ms_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_ms() -> i64 {
    ms_since_epoch(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        assert_eq!(
            parse_time("--after", "2026-12-01T14:00:00Z").unwrap(),
            1_796_133_600_000
        );
        let two_hours_ago = parse_time("--after", "2h").unwrap();
        let expected = now_ms() - 7_200_000;
        assert!((two_hours_ago - expected).abs() < 60_000);
        let e = parse_time("--before", "yesterday").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message().contains("2026-12-01T14:00:00Z"),
            "{}",
            e.message()
        );
    }
}
