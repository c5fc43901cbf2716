//! Registration follows the call graph: registering a workflow registers every activity, local
//! activity and child workflow its body calls by name, transitively and through cycles; what it
//! calls through a variable is registered by hand. The registry's JSON lists each workflow's
//! callees.

use duraflow::prelude::*;
use duraflow::testing::TestEnv;

#[activity]
async fn charge_card(cents: u64) -> Result<String, ActivityError> {
    Ok(format!("charged {cents}"))
}

#[activity]
async fn reserve_stock(sku: String) -> Result<u32, ActivityError> {
    Ok(sku.len() as u32)
}

#[activity]
async fn send_receipt(to: String) -> Result<(), ActivityError> {
    let _ = to;
    Ok(())
}

#[activity]
async fn audit(line: String) -> Result<(), ActivityError> {
    let _ = line;
    Ok(())
}

mod shipping {
    use duraflow::prelude::*;

    #[activity]
    pub async fn book_courier(parcels: u32) -> Result<String, ActivityError> {
        Ok(format!("courier for {parcels}"))
    }
}

/// Calls an activity, a local activity, one by a path, two inside `join!`, and one through a
/// variable (which the macro cannot see).
#[workflow]
async fn order(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let receipt = ctx.activity(charge_card, cents).await?;
    let parcels = ctx
        .local_activity(reserve_stock, "sku-1".to_string())
        .await?;
    let (courier, sent) = duraflow::join!(
        ctx.activity(shipping::book_courier, parcels),
        ctx.activity(send_receipt, "me@example.com".to_string())
    );
    sent?;
    let log = audit;
    ctx.activity(log, receipt.clone()).await?;
    Ok(format!("{receipt}, {}", courier?))
}

#[test]
fn registering_a_workflow_registers_what_it_calls_by_name() {
    let registry = Registry::new().register(order);
    assert_eq!(registry.workflow_names(), ["order"]);
    assert_eq!(
        registry.activity_names(),
        [
            "book_courier",
            "charge_card",
            "reserve_stock",
            "send_receipt"
        ],
        "everything but `audit`, called through a variable"
    );
    let json = registry.to_json();
    let callees: Vec<(String, String)> = json["workflows"][0]["callees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = |k: &str, n: &str| (k.to_string(), n.to_string());
    assert_eq!(
        callees,
        [
            want("activity", "charge_card"),
            want("activity", "reserve_stock"),
            want("activity", "book_courier"),
            want("activity", "send_receipt"),
        ],
        "in the order the body calls them"
    );
    // By hand, afterwards: no warning, one definition.
    let registry = registry.register(audit).register(charge_card);
    assert_eq!(registry.activity_names().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_given_the_workflow_runs_its_activities_and_the_hand_registered_one() {
    let env = TestEnv::builder()
        .register(order)
        .register(audit)
        .start()
        .unwrap();
    let h = env.client().start(order, "order-1", 250).await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), h.result())
        .await
        .expect("the order completes")
        .unwrap();
    assert_eq!(out, "charged 250, courier for 5");
    env.shutdown().await;
}

/// Stands in for the child workflow API in these bodies (the macro collects by method name, on
/// any receiver); never called.
struct Children;

impl Children {
    fn child_workflow<W: duraflow::WorkflowDefinition>(&self, _def: W, _input: W::Input) {}
}

const NOT_A_DEFINITION: u32 = 7;

struct Other;

impl Other {
    fn activity(&self, _n: u32, _m: u32) {}
}

/// `ping` starts `pong` and `pong` starts `ping` and itself: a cycle.
#[workflow]
async fn ping(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _ = ctx;
    if false {
        Children.child_workflow(pong, ());
        // A method of the same name on another receiver, with a path that names no definition:
        // nothing is registered for it, and it compiles.
        Other.activity(NOT_A_DEFINITION, 1);
    }
    Ok(())
}

#[workflow]
async fn pong(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    if false {
        Children.child_workflow(ping, ());
        Children.child_workflow(pong, ());
    }
    Ok(ctx.activity(send_receipt, "x".to_string()).await?)
}

#[test]
fn cycles_of_child_workflows_register_each_once() {
    let registry = Registry::new().register(ping);
    assert_eq!(registry.workflow_names(), ["ping", "pong"]);
    assert_eq!(registry.activity_names(), ["send_receipt"]);
    let json = registry.to_json();
    let pong_json = &json["workflows"][1];
    assert_eq!(pong_json["name"], "pong");
    assert_eq!(
        pong_json["callees"],
        serde_json::json!([
            {"kind": "workflow", "name": "ping"},
            {"kind": "workflow", "name": "pong"},
            {"kind": "activity", "name": "send_receipt"},
        ])
    );
    assert_eq!(
        json["workflows"][0]["callees"],
        serde_json::json!([{"kind": "workflow", "name": "pong"}]),
        "`Other.activity(NOT_A_DEFINITION, ..)` is not a callee"
    );
}
