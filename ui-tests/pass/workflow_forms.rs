//! Every option and signature form of `#[workflow]`, the deterministic stand-ins, and the escape hatch.
use duraflow::prelude::*;
use duraflow::WorkflowDefinition;

#[activity]
pub async fn add(a: i64, b: i64) -> Result<i64, ActivityError> {
    Ok(a + b)
}

#[workflow(name = "orders.place", task_queue = "orders", execution_timeout = "1h")]
pub async fn place(ctx: WorkflowContext, a: i64, b: i64) -> Result<i64, WorkflowError> {
    // Deterministic stand-ins.
    let _now = ctx.now();
    let _n = ctx.random_u64();
    let _id = ctx.uuid();
    ctx.sleep(Duration::from_millis(10)).await?;

    // Several calls at once, deterministically.
    let (x, y) = join!(ctx.activity(add, (a, b)), ctx.activity(add, (b, a)));
    let first = duraflow::select! {
        r = ctx.activity(add, (1, 2)) => r?,
        _ = ctx.sleep(Duration::from_secs(5)) => 0,
    };
    let second = tokio::select! {
        biased;
        r = ctx.activity(add, (3, 4)) => r?,
        _ = ctx.sleep(Duration::from_secs(5)) => 0,
    };

    // A reviewed statement.
    #[allow_nondeterminism(reason = "only logged; the value never reaches the history")]
    let wall = std::time::SystemTime::now();
    let _ = wall;

    Ok(x? + y? + first + second)
}

/// No context, no inputs; an `anyhow` result.
#[workflow]
pub async fn constant() -> anyhow::Result<u8> {
    Ok(7)
}

/// A context, no inputs.
#[workflow]
async fn info(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    Ok(ctx.info().workflow_type)
}

/// One input, an activity's error passed on with `?`.
#[workflow]
pub async fn one(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(add, (x, 1)).await?)
}

fn main() {
    assert_eq!(place.name(), "orders.place");
    let o = place.options();
    assert_eq!(o.task_queue.as_deref(), Some("orders"));
    assert_eq!(o.execution_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(place.meta().input_type, "(i64, i64)");
    assert_eq!(constant.meta().input_type, "()");
    assert_eq!(constant.meta().output_type, "u8");
    assert_eq!(one.meta().input_type, "i64");

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(constant::call()).unwrap(), 7);

    let json = Registry::new()
        .register(place)
        .register(constant)
        .register(info)
        .register(one)
        .to_json();
    let place_meta = json["workflows"]
        .as_array()
        .and_then(|w| w.iter().find(|m| m["name"] == "orders.place"))
        .expect("registered");
    assert_eq!(place_meta["name"], "orders.place");
    assert_eq!(place_meta["kind"], "workflow");
    assert_eq!(place_meta["options"]["execution_timeout"], 3_600_000);
    assert_eq!(place_meta["cancellable"], false);

    let all = Registry::all().workflow_names();
    for name in ["orders.place", "constant", "info", "one"] {
        assert!(all.iter().any(|n| n == name), "{name} is registered");
    }
}
