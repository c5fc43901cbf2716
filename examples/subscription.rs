//! A subscription started by a schedule. The schedule (`billing`) fires on a cron expression in
//! real life (`0 6 1 * *`: 06:00 on the 1st of each month, Paris time) and every second here; its
//! overlap policy is `Skip`, so while the subscription is going on the ticks start nothing, and a
//! subscription that ended is started again at the next tick. It charges the customer once per
//! billing period (a durable sleep between charges: a month in real life, 300 ms here) and, every
//! two periods, continues as new: the same workflow id goes on in a new run with a fresh history,
//! its receipts carried in its input (a subscription of years keeps a short history).
//!
//! The example creates the schedule, lets a worker fire it, pauses it, triggers it by hand, and
//! prints what `describe_schedule` says: started, skipped, the recent starts with their ids
//! (`billing-<tick time>`: a tick starts once, also across restarts and with several workers).
//!
//! Run: `cargo run --example subscription`

use duraflow::prelude::*;
use duraflow::{OverlapPolicy, Schedule, ScheduleSpec, Store, Triggered, Worker};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub customer: String,
    pub cents: u64,
    /// Billing periods in all.
    pub periods: u32,
    /// A billing period, in ms (a month in real life).
    pub period_ms: u64,
    /// The next period to charge, from 1.
    pub next: u32,
    /// The receipts of the earlier runs.
    pub receipts: Vec<String>,
}

/// Periods charged per run before it continues as new (hundreds in real life).
const PERIODS_PER_RUN: u32 = 2;

#[activity]
async fn charge(customer: String, cents: u64, period: u32) -> Result<String, ActivityError> {
    Ok(format!(
        "charged {customer} {cents} cents for period {period}"
    ))
}

#[workflow]
async fn subscription(ctx: WorkflowContext, plan: Plan) -> Result<Vec<String>, WorkflowError> {
    let mut plan = plan;
    for _ in 0..PERIODS_PER_RUN {
        let period = plan.next;
        let receipt = ctx
            .activity(charge, (plan.customer.clone(), plan.cents, period))
            .await?;
        plan.receipts.push(receipt);
        plan.next += 1;
        if period == plan.periods {
            return Ok(plan.receipts);
        }
        ctx.sleep(Duration::from_millis(plan.period_ms)).await?;
    }
    // This run's history ends here; the same workflow id goes on in a new run.
    ctx.continue_as_new(plan)
}

#[tokio::main]
async fn main() -> Result<(), duraflow::Error> {
    let dir = std::env::temp_dir().join(format!("duraflow-subscription-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| duraflow::Error::Store(e.to_string()))?;
    let store = Store::sqlite(dir.join("subscription.db"))?;
    let client = Client::new(&store);
    let worker = Worker::new(&store)
        .register(subscription)
        .register(charge)
        .start();

    // In production: ScheduleSpec::cron("0 6 1 * *")?.in_time_zone("Europe/Paris")?
    let every_second = ScheduleSpec::every(Duration::from_secs(1))?;
    let monthly = ScheduleSpec::cron("0 6 1 * *")?.in_time_zone("Europe/Paris")?;
    println!("in production the schedule would be: {monthly}");
    let plan = Plan {
        customer: "ann".into(),
        cents: 999,
        periods: 5,
        period_ms: 300,
        next: 1,
        receipts: Vec::new(),
    };
    client
        .create_schedule(
            "billing",
            Schedule::new(every_second).overlap(OverlapPolicy::Skip),
            subscription,
            plan,
        )
        .await?;

    // Let it fire a few times: a subscription takes ~1.2 s, so some ticks find it running and skip.
    while client.describe_schedule("billing").await?.started < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .pause_schedule("billing", "customer asked for a pause")
        .await?;
    let d = client.describe_schedule("billing").await?;
    let first = &d.recent[0].workflow_id;
    // `result()` follows the chain of runs to the last one.
    let receipts: Vec<String> = client.handle(first.clone()).result().await?;
    println!("{first}: {receipts:?}");
    println!(
        "{first} ran as {} runs (continue-as-new every {PERIODS_PER_RUN} periods)",
        client.runs(first).await?.len()
    );

    // Paused: ticks start nothing, but a trigger does (through the overlap policy).
    let last = d.last_workflow_id.clone().unwrap_or_default();
    let _: Vec<String> = client.handle(last).result().await?;
    match client.trigger_schedule("billing").await? {
        Triggered::Started { workflow_id } => {
            let receipts: Vec<String> = client.handle(workflow_id.clone()).result().await?;
            println!("triggered {workflow_id}: {} charges", receipts.len());
        }
        other => println!("trigger: {other:?}"),
    }
    let d = client.describe_schedule("billing").await?;
    println!(
        "schedule `{}` ({}): paused={} ({}), started {}, skipped {}",
        d.schedule_id,
        d.spec,
        d.paused,
        d.note.unwrap_or_default(),
        d.started,
        d.skipped
    );
    for s in &d.recent {
        println!("  tick {} -> {}", s.scheduled_ms, s.workflow_id);
    }
    client.delete_schedule("billing").await?;
    worker.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
