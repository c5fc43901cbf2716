//! An order that waits for a human: it answers `GetStatus` while it waits, accepts a new spending
//! limit through the `SetLimit` update (validated: zero is refused, and the refusal records
//! nothing), and goes on when an `Approve` signal arrives or its durable timeout passes (24 h for
//! the first order; 2 s for the second, which nobody approves). The worker is restarted between two steps: the signals, the update and
//! the timer survive it.
//!
//! Run: `cargo run --example approval`

use duraflow::prelude::*;
use duraflow::{Client, Error, Store, Worker};
use std::sync::{Arc, Mutex};

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve {
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderStatus {
    WaitingForApproval { limit: u32 },
    Approved { by: String },
    TimedOut,
}

#[query(output = OrderStatus)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetStatus;

/// Sets the order's spending limit; answers the previous one.
#[update(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetLimit {
    pub limit: u32,
}

/// An order, and how long it waits for an approval (24 h in real life).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub approval_timeout_s: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub order: u64,
    pub status: OrderStatus,
    pub limit: u32,
}

#[activity]
async fn ship(id: u64) -> Result<String, ActivityError> {
    Ok(format!("order {id} shipped"))
}

#[workflow(signals(Approve), queries(GetStatus), updates(SetLimit))]
async fn order(ctx: WorkflowContext, o: Order) -> Result<Receipt, WorkflowError> {
    // State shared with the handlers; they run between the workflow's steps, never at once.
    let limit = Arc::new(Mutex::new(100u32));
    let status = Arc::new(Mutex::new(OrderStatus::WaitingForApproval { limit: 100 }));

    let s = status.clone();
    ctx.on_query(move |_: GetStatus| s.lock().unwrap().clone());
    let (l, s) = (limit.clone(), status.clone());
    ctx.on_update(
        |u: &SetLimit| match u.limit {
            0 => Err("the limit must be positive".into()),
            _ => Ok(()),
        },
        move |u: SetLimit| {
            *s.lock().unwrap() = OrderStatus::WaitingForApproval { limit: u.limit };
            std::mem::replace(&mut *l.lock().unwrap(), u.limit)
        },
    );

    let mut approvals = ctx.signal_channel::<Approve>();
    let outcome = select! {
        a = approvals.recv() => OrderStatus::Approved { by: a?.by },
        t = ctx.sleep(Duration::from_secs(o.approval_timeout_s)) => { t?; OrderStatus::TimedOut }
    };
    *status.lock().unwrap() = outcome.clone();
    if matches!(outcome, OrderStatus::Approved { .. }) {
        ctx.activity(ship, o.id).await?;
    }
    let limit = *limit.lock().unwrap();
    Ok(Receipt {
        order: o.id,
        status: outcome,
        limit,
    })
}

fn worker(store: &Store) -> duraflow::WorkerHandle {
    Worker::new(store).register(order).register(ship).start()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("duraflow-approval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("approval.db");

    {
        let store = Store::sqlite(&path)?;
        let w = worker(&store);
        let client = Client::new(&store);
        let first = Order {
            id: 1,
            approval_timeout_s: 24 * 3600,
        };
        client.start(order, "order-1", first).await?;
        let second = Order {
            id: 2,
            approval_timeout_s: 2,
        };
        client.start(order, "order-2", second).await?;
        println!(
            "order-1: {:?}",
            client.query(order, "order-1", GetStatus).await?
        );
        match client.update(order, "order-1", SetLimit { limit: 0 }).await {
            Err(Error::UpdateRejected { reason, .. }) => println!("limit 0 refused: {reason}"),
            other => println!("unexpected: {other:?}"),
        }
        let old = client
            .update(order, "order-1", SetLimit { limit: 250 })
            .await?;
        println!("order-1: limit {old} -> 250");
        w.shutdown().await;
        println!("worker stopped; the orders wait in the database");
    }

    let store = Store::sqlite(&path)?;
    let client = Client::new(&store);
    // No worker runs: the client answers the query from the stored history.
    println!(
        "order-1 (no worker): {:?}",
        client.query(order, "order-1", GetStatus).await?
    );
    client
        .signal(order, "order-1", Approve { by: "ann".into() })
        .await?;
    let w = worker(&store);
    let one = client.handle::<Receipt>("order-1").result().await?;
    println!("order-1: {one:?}");
    let two = client.handle::<Receipt>("order-2").result().await?;
    println!("order-2 (nobody approved it): {two:?}");
    assert_eq!(one.status, OrderStatus::Approved { by: "ann".into() });
    assert_eq!(one.limit, 250);
    assert_eq!(two.status, OrderStatus::TimedOut);
    w.shutdown().await;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
