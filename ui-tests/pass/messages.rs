//! The "Messages" snippet of API.md, as written (the `...` filled in), plus handlers.
#![allow(unused_variables, dead_code)]
use duraflow::prelude::*;
use std::sync::{Arc, Mutex};

#[signal] // a durable, fire-and-forget message into a workflow
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve {
    pub by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OrderStatus {
    Waiting,
    Approved(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub approved_by: Option<String>,
}

#[query(output = OrderStatus)] // a read of the workflow's state; writes no history
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetStatus;

#[update(output = u32)] // a request the workflow validates, applies and answers
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetLimit {
    pub limit: u32,
}

#[workflow(signals(Approve), queries(GetStatus), updates(SetLimit))]
pub async fn order(ctx: WorkflowContext, id: u64) -> Result<Receipt, WorkflowError> {
    let status = Arc::new(Mutex::new(OrderStatus::Waiting));
    let s = status.clone();
    ctx.on_query(move |_: GetStatus| s.lock().unwrap().clone());
    let limit = Arc::new(Mutex::new(1u32));
    let l = limit.clone();
    ctx.on_update(
        |u: &SetLimit| if u.limit > 0 { Ok(()) } else { Err("must be positive".into()) },
        move |u: SetLimit| std::mem::replace(&mut *l.lock().unwrap(), u.limit),
    );
    let mut approvals = ctx.signal_channel::<Approve>(); // buffered, in order, replayed
    let approved = select! {
        a = approvals.recv() => Some(a?),
        _ = ctx.sleep(Duration::from_secs(24 * 3600)) => None,
    };
    let _ = approvals.try_recv();
    Ok(Receipt {
        approved_by: approved.map(|a| a.by),
    })
}

/// Signals can be renamed; the registry shows the name.
#[signal(name = "cancel-order")]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelOrder;

async fn client_side(client: Client) -> Result<(), duraflow::Error> {
    client.signal(order, "order-1", Approve { by: "ann".into() }).await?; // durable when it returns
    let status = client.query(order, "order-1", GetStatus).await?; // OrderStatus
    let limit = client.update(order, "order-1", SetLimit { limit: 5 }).await?; // u32, after it is applied
    let handle = client
        .signal_with_start(order, "order-2", 7, Approve { by: "bo".into() })
        .await?;
    handle.signal(Approve { by: "cy".into() }).await?;
    let status: OrderStatus = handle.query(GetStatus).await?;
    let old: u32 = handle.update(SetLimit { limit: 2 }).await?;
    let receipt: Receipt = handle.result().await?;
    Ok(())
}

fn main() {
    let _ = client_side;
}
