//! An order as a parent workflow with two child workflows, payment and shipping, and a
//! compensation when shipping fails (a saga across workflows). Each child is a workflow of its
//! own, with its own id and history: it could run on another worker, in another process
//! (Postgres), on a task queue of its own. Two orders tell the story:
//!
//! - `order-1` ships: the parent starts `charge-order-1`, then `ship-order-1`, and completes;
//! - `order-2` has no courier: `ship-order-2` fails, the parent sees the child's typed error
//!   (`ChildWorkflowError::Failed`) and starts a third child, `refund-order-2`, to compensate,
//!   then fails with the shipping error.
//!
//! The run checks the parents' histories (each child's start and end is an event there) and
//! prints them.
//!
//! Run: `cargo run --example order` (embedded SQLite store, WAL + synchronous=FULL).

use duraflow::prelude::*;
use duraflow::{Client, Error, EventKind, Store, Worker};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub cents: u64,
    /// Whether a courier is there: without one, shipping fails.
    pub courier: bool,
}

#[activity]
pub async fn charge(ctx: ActivityContext, order: Order) -> Result<String, ActivityError> {
    println!(
        "  [{}] charge: {} cents",
        ctx.info().workflow_id,
        order.cents
    );
    Ok(format!("receipt-{}", order.id))
}

#[activity]
pub async fn refund(ctx: ActivityContext, receipt: String) -> Result<(), ActivityError> {
    println!("  [{}] refund: {receipt}", ctx.info().workflow_id);
    Ok(())
}

#[activity(retry(non_retryable = ["NoCourier"]))]
pub async fn dispatch(ctx: ActivityContext, order: Order) -> Result<String, ActivityError> {
    if !order.courier {
        println!("  [{}] dispatch: no courier", ctx.info().workflow_id);
        return Err(ActivityError::application("NoCourier", "no courier today"));
    }
    println!("  [{}] dispatch: shipped", ctx.info().workflow_id);
    Ok(format!("parcel-{}", order.id))
}

/// The payment child: charges the card, returns the receipt.
#[workflow]
pub async fn payment(ctx: WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    Ok(ctx.activity(charge, order).await?)
}

/// The shipping child: dispatches the parcel.
#[workflow]
pub async fn shipping(ctx: WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    Ok(ctx.activity(dispatch, order).await?)
}

/// The compensation child: refunds a receipt.
#[workflow]
pub async fn refund_payment(ctx: WorkflowContext, receipt: String) -> Result<(), WorkflowError> {
    Ok(ctx.activity(refund, receipt).await?)
}

/// Pays, then ships; if shipping fails, refunds the payment and fails with the shipping error.
#[workflow]
pub async fn place_order(ctx: WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    let receipt = ctx
        .child_workflow(payment, order.clone())
        .id(format!("charge-{}", order.id))
        .await?;
    let shipped = ctx
        .child_workflow(shipping, order.clone())
        .id(format!("ship-{}", order.id))
        .start();
    match shipped.await {
        Ok(parcel) => Ok(format!("{receipt}, {parcel}")),
        Err(e) => {
            // The compensation runs in the detached scope: a cancel of the order does not stop it.
            ctx.detached()
                .child_workflow(refund_payment, receipt)
                .id(format!("refund-{}", order.id))
                .await?;
            Err(e.into())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store(e.to_string()))?;
    let store = Store::sqlite(dir.path().join("order.db"))?;
    let worker = Worker::new(&store)
        .register(charge)
        .register(refund)
        .register(dispatch)
        .register(payment)
        .register(shipping)
        .register(refund_payment)
        .register(place_order)
        .start();
    let client = Client::new(&store);

    for (id, courier) in [("order-1", true), ("order-2", false)] {
        println!("{id}:");
        let order = Order {
            id: id.into(),
            cents: 1_250,
            courier,
        };
        let h = client.start(place_order, id, order).await?;
        let result = h.result().await;
        let history = client.history(id).await?;
        let children: Vec<String> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ChildWorkflowInitiated { workflow_id, .. } => {
                    Some(format!("#{} started {workflow_id}", e.seq))
                }
                EventKind::ChildWorkflowCompleted { child_seq, .. } => {
                    Some(format!("#{} child {child_seq} completed", e.seq))
                }
                EventKind::ChildWorkflowFailed { child_seq, .. } => {
                    Some(format!("#{} child {child_seq} failed", e.seq))
                }
                _ => None,
            })
            .collect();
        println!("  history: {}", children.join("; "));
        match (courier, result) {
            (true, Ok(out)) => {
                assert_eq!(out, "receipt-order-1, parcel-order-1");
                println!("  completed: {out}");
            }
            (false, Err(Error::WorkflowFailed(e))) => {
                assert!(e.to_string().contains("ship-order-2"), "{e}");
                assert_eq!(
                    client.describe("refund-order-2").await?.status,
                    duraflow::WorkflowStatus::Completed,
                    "the payment was refunded"
                );
                println!("  failed, payment refunded: {e}");
            }
            (_, other) => panic!("{id}: unexpected {other:?}"),
        }
    }
    worker.shutdown().await;
    Ok(())
}
