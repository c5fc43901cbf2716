//! A subscription started by a schedule. The schedule (`billing`) fires on a cron expression in
//! real life (`0 6 1 * *`: 06:00 on the 1st of each month, Paris time) and every second here; its
//! overlap policy is `Skip`, so while the subscription's run is going on the ticks start nothing,
//! and a run that ended is started again at the next tick. Each run charges the customer once per
//! billing period (a durable sleep between charges: a month in real life, 300 ms here).
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
    /// Billing periods per run.
    pub periods: u32,
    /// A billing period, in ms (a month in real life).
    pub period_ms: u64,
}

#[activity]
async fn charge(customer: String, cents: u64, period: u32) -> Result<String, ActivityError> {
    Ok(format!(
        "charged {customer} {cents} cents for period {period}"
    ))
}

#[workflow]
async fn subscription(ctx: WorkflowContext, plan: Plan) -> Result<Vec<String>, WorkflowError> {
    let mut receipts = Vec::new();
    for period in 1..=plan.periods {
        let receipt = ctx
            .activity(charge, (plan.customer.clone(), plan.cents, period))
            .await?;
        receipts.push(receipt);
        if period < plan.periods {
            ctx.sleep(Duration::from_millis(plan.period_ms)).await?;
        }
    }
    Ok(receipts)
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
        periods: 3,
        period_ms: 300,
    };
    client
        .create_schedule(
            "billing",
            Schedule::new(every_second).overlap(OverlapPolicy::Skip),
            subscription,
            plan,
        )
        .await?;

    // Let it fire a few times: a run takes ~600 ms, so some ticks find it running and skip.
    while client.describe_schedule("billing").await?.started < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .pause_schedule("billing", "customer asked for a pause")
        .await?;
    let d = client.describe_schedule("billing").await?;
    let first = &d.recent[0].workflow_id;
    let receipts: Vec<String> = client.handle(first.clone()).result().await?;
    println!("{first}: {receipts:?}");

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
