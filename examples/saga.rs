//! A booking saga: reserve a room, charge the card, ship the welcome pack. Each step that succeeded
//! registers its compensation; when a later step fails or the workflow is cancelled, the
//! compensations run newest first in `ctx.detached()`, the scope the workflow's cancel does not
//! reach. Four bookings tell the story:
//!
//! - `booking-early` is cancelled before any worker picks it up: nothing runs, nothing to undo;
//! - `booking-ok` completes;
//! - `booking-no-courier` fails at `ship`: the card is refunded and the room released;
//! - `booking-cancelled` is cancelled while `ship` waits for a courier: `ship` hears the cancel
//!   through its heartbeat, and the compensations run after the cancel request.
//!
//! The run checks each story against the history and prints it.
//!
//! Run: `cargo run --example saga` (embedded SQLite store, WAL + synchronous=FULL).

use duraflow::prelude::*;
use duraflow::{Client, Error, EventKind, HistoryEvent, Store, Worker};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Courier {
    /// Ships at once.
    Ready,
    /// No courier: `ship` fails, and is not retried.
    Missing,
    /// `ship` waits (heartbeating) until it is cancelled.
    Late,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Booking {
    pub guest: String,
    pub cents: u64,
    pub courier: Courier,
}

#[activity]
pub async fn reserve_room(ctx: ActivityContext, b: Booking) -> Result<u32, ActivityError> {
    println!(
        "  [{}] reserve_room: room 42 held for {}",
        wf(&ctx),
        b.guest
    );
    Ok(42)
}

#[activity]
pub async fn charge_card(ctx: ActivityContext, b: Booking) -> Result<(), ActivityError> {
    println!("  [{}] charge_card: charged {} cents", wf(&ctx), b.cents);
    Ok(())
}

#[activity(heartbeat_timeout = "5s", retry(non_retryable = ["NoCourier"]))]
pub async fn ship_pack(ctx: ActivityContext, b: Booking) -> Result<(), ActivityError> {
    match b.courier {
        Courier::Ready => {
            println!("  [{}] ship_pack: shipped", wf(&ctx));
            Ok(())
        }
        Courier::Missing => {
            println!("  [{}] ship_pack: no courier", wf(&ctx));
            Err(ActivityError::application("NoCourier", "no courier today"))
        }
        Courier::Late => {
            println!("  [{}] ship_pack: waiting for a courier", wf(&ctx));
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Err(cancelled) = ctx.heartbeat(&"waiting for a courier") {
                    println!("  [{}] ship_pack: cancelled while waiting", wf(&ctx));
                    return Err(cancelled);
                }
            }
        }
    }
}

#[activity]
pub async fn refund_card(ctx: ActivityContext, b: Booking) -> Result<(), ActivityError> {
    println!("  [{}] refund_card: refunded {} cents", wf(&ctx), b.cents);
    Ok(())
}

#[activity]
pub async fn release_room(ctx: ActivityContext, room: u32) -> Result<(), ActivityError> {
    println!("  [{}] release_room: room {room} released", wf(&ctx));
    Ok(())
}

fn wf(ctx: &ActivityContext) -> String {
    ctx.info().workflow_id.clone()
}

/// What undoes a step that succeeded.
enum Compensation {
    Release(u32),
    Refund,
}

/// Reserve, charge, ship. On a failure or a cancel, undo what was done, newest first, in the
/// detached scope, then end with the error (a cancellation ends the workflow `Cancelled`).
#[workflow]
pub async fn book(ctx: WorkflowContext, b: Booking) -> Result<(), WorkflowError> {
    let mut undo = Vec::new();
    let steps = async {
        let room = ctx.activity(reserve_room, b.clone()).await?;
        undo.push(Compensation::Release(room));
        ctx.activity(charge_card, b.clone()).await?;
        undo.push(Compensation::Refund);
        // Wait for `ship_pack` to stop before undoing anything: a cancel resolves it only once it
        // has returned (cancelled, or shipped if the cancel came too late).
        ctx.activity(ship_pack, b.clone())
            .cancellation_type(CancellationType::WaitCancellationCompleted)
            .await
    };
    if let Err(e) = steps.await {
        // After a cancel request the main scope schedules nothing more (its activities resolve
        // `Cancelled` at once); the detached scope runs the compensations to completion.
        let cleanup = ctx.detached();
        for step in undo.into_iter().rev() {
            match step {
                Compensation::Refund => cleanup.activity(refund_card, b.clone()).await?,
                Compensation::Release(room) => cleanup.activity(release_room, room).await?,
            }
        }
        return Err(e.into());
    }
    Ok(())
}

/// The activities scheduled before and after the workflow's cancel request, in order, and whether
/// there was a request.
fn scheduled(history: &[HistoryEvent]) -> (Vec<String>, Vec<String>, bool) {
    let (mut before, mut after, mut cancelled) = (Vec::new(), Vec::new(), false);
    for e in history {
        match &e.kind {
            EventKind::WorkflowCancelRequested {} => cancelled = true,
            EventKind::ActivityScheduled { activity_type, .. } if cancelled => {
                after.push(activity_type.clone())
            }
            EventKind::ActivityScheduled { activity_type, .. } => {
                before.push(activity_type.clone())
            }
            _ => {}
        }
    }
    (before, after, cancelled)
}

/// Prints how a booking ended and what its history scheduled; checks it against the story.
async fn report(
    client: &Client,
    id: &str,
    expect_end: &str,
    expect_before: &[&str],
    expect_after: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    let end = match client.handle::<()>(id).result().await {
        Ok(()) => "completed".to_string(),
        Err(Error::WorkflowCancelled) => "cancelled".to_string(),
        Err(Error::WorkflowFailed(e)) => format!("failed ({e})"),
        Err(e) => return Err(e.into()),
    };
    let (before, after, requested) = scheduled(&client.history(id).await?);
    println!("{id}: {end}");
    if requested {
        println!("  history: scheduled before the cancel request {before:?}, after it {after:?}");
    } else {
        println!("  history: scheduled {before:?}");
    }
    if !end.starts_with(expect_end) || before != expect_before || after != expect_after {
        return Err(format!(
            "{id}: expected {expect_end}, {expect_before:?} then {expect_after:?}; the history says otherwise"
        )
        .into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("duraflow-saga-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::sqlite(dir.join("saga.db"))?;
    let client = Client::new(&store);
    let booking = |courier| Booking {
        guest: "Ada".into(),
        cents: 12_000,
        courier,
    };

    // Cancelled before any worker runs it: its first step resolves `Cancelled` unscheduled.
    let early = client
        .start(book, "booking-early", booking(Courier::Ready))
        .await?;
    early.cancel().await?;

    let worker = Worker::new(&store)
        .register(reserve_room)
        .register(charge_card)
        .register(ship_pack)
        .register(refund_card)
        .register(release_room)
        .register(book)
        .start();
    report(&client, "booking-early", "cancelled", &[], &[]).await?;

    client
        .start(book, "booking-ok", booking(Courier::Ready))
        .await?;
    report(
        &client,
        "booking-ok",
        "completed",
        &["reserve_room", "charge_card", "ship_pack"],
        &[],
    )
    .await?;

    client
        .start(book, "booking-no-courier", booking(Courier::Missing))
        .await?;
    report(
        &client,
        "booking-no-courier",
        "failed",
        &[
            "reserve_room",
            "charge_card",
            "ship_pack",
            "refund_card",
            "release_room",
        ],
        &[],
    )
    .await?;

    let late = client
        .start(book, "booking-cancelled", booking(Courier::Late))
        .await?;
    // Cancel once `ship_pack` is running.
    while !late
        .describe()
        .await?
        .pending_activities
        .iter()
        .any(|a| a.activity_type == "ship_pack" && a.state == "running")
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  [booking-cancelled] client: cancel");
    late.cancel().await?;
    report(
        &client,
        "booking-cancelled",
        "cancelled",
        &["reserve_room", "charge_card", "ship_pack"],
        &["refund_card", "release_room"],
    )
    .await?;

    worker.shutdown().await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
