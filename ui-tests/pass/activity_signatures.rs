//! Every signature form of `#[activity]`, called both through the definition and directly.
use duraflow::prelude::*;
use duraflow::ActivityDefinition;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub cents: u64,
}

/// No context, no inputs.
#[activity]
pub async fn ping() -> Result<String, ActivityError> {
    Ok("pong".into())
}

/// A context and no inputs; a private fn.
#[activity]
async fn whoami(ctx: ActivityContext) -> Result<String, ActivityError> {
    Ok(ctx.info().activity_type.clone())
}

/// Several inputs (carried as one tuple), a destructuring pattern, `mut` bindings, a tuple output.
#[activity]
pub(crate) async fn total(
    mut _ctx: ActivityContext,
    Order { id, cents }: Order,
    mut tax: u64,
    note: Option<String>,
) -> Result<(u64, u64), ActivityError> {
    tax += note.map_or(0, |n| n.len() as u64);
    Ok((id, cents + tax))
}

/// The context after the inputs.
#[activity]
pub async fn context_last(x: u64, ctx: ActivityContext) -> Result<u64, ActivityError> {
    Ok(x + u64::from(ctx.info().attempt))
}

/// Error types that convert into `ActivityError`: `std::io::Error`, `anyhow::Error`, result aliases.
#[activity]
pub async fn io_error(path: String) -> std::io::Result<u64> {
    if path.is_empty() {
        return Err(std::io::Error::other("empty path"));
    }
    Ok(path.len() as u64)
}

#[activity]
pub async fn anyhow_error(x: i64) -> anyhow::Result<i64> {
    anyhow::ensure!(x >= 0, "negative input");
    Ok(x)
}

#[activity]
pub async fn explicit_error(x: i64) -> Result<i64, std::io::Error> {
    Ok(x)
}

/// A raw identifier: registered as `type`.
#[activity]
pub async fn r#type(x: u8) -> Result<u8, ActivityError> {
    Ok(x)
}

/// Other attributes go on the body; `cfg` on every generated item.
#[activity]
#[allow(clippy::unused_async)]
#[cfg(not(any()))]
pub async fn attributed(x: u8) -> Result<u8, ActivityError> {
    Ok(x)
}

mod nested {
    use duraflow::prelude::*;

    /// Defined in a module, used by path.
    #[activity]
    pub async fn double(x: i64) -> Result<i64, ActivityError> {
        Ok(x * 2)
    }
}

/// A heartbeat timeout with the context passed on to a helper, by reference and as a clone.
#[activity(heartbeat_timeout = "10s")]
pub async fn delegates(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    beat(&ctx, n)?;
    let copy = ctx.clone();
    Ok(copy.info().attempt as u64 + n)
}

fn beat(ctx: &ActivityContext, n: u64) -> Result<(), ActivityError> {
    ctx.heartbeat(&n)
}

#[workflow]
pub async fn uses_them(ctx: WorkflowContext, order: Order) -> Result<u64, WorkflowError> {
    let _: String = ctx.activity(ping, ()).await?;
    let _: String = ctx.activity(whoami, ()).await?;
    let (_, sum) = ctx.activity(total, (order, 5, None)).await?;
    let _ = ctx.activity(context_last, 1).await?;
    let _ = ctx.activity(io_error, "x".to_string()).await?;
    let _ = ctx.activity(anyhow_error, 1).await?;
    let _ = ctx.activity(explicit_error, 1).await?;
    let _ = ctx.activity(r#type, 1).await?;
    let _ = ctx.activity(attributed, 1).await?;
    let _ = ctx.activity(nested::double, 2).await?;
    let _ = ctx.activity(delegates, 2).await?;
    Ok(sum)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        // The bodies, called directly.
        assert_eq!(ping::call().await.unwrap(), "pong");
        let (ctx, _probe) = ActivityContext::for_test("whoami");
        assert_eq!(whoami::call(ctx).await.unwrap(), "whoami");
        let (ctx, _probe) = ActivityContext::for_test("total");
        let out = total::call(ctx, Order { id: 7, cents: 100 }, 5, Some("ab".into())).await;
        assert_eq!(out.unwrap(), (7, 107));
        assert!(anyhow_error::call(-1).await.is_err());
        assert_eq!(nested::double::call(21).await.unwrap(), 42);
        let (ctx, probe) = ActivityContext::for_test("delegates");
        delegates::call(ctx, 3).await.unwrap();
        assert_eq!(probe.last_heartbeat::<u64>(), Some(3));

        // Through the definition: the input tuple is taken apart, and errors are converted.
        let (ctx, _probe) = ActivityContext::for_test("total");
        let out = total.execute(ctx, (Order { id: 1, cents: 1 }, 1, None)).await;
        assert_eq!(out.unwrap(), (1, 2));
        let (ctx, _probe) = ActivityContext::for_test("io_error");
        let err = io_error.execute(ctx, String::new()).await.unwrap_err();
        assert_eq!(err.error_type(), "io::Other");
    });

    // Names and type names.
    assert_eq!(ping.name(), "ping");
    assert_eq!(r#type.name(), "type");
    assert_eq!(nested::double.name(), "double");
    let meta = total.meta();
    assert_eq!(meta.input_type, "(Order, u64, Option<String>)");
    assert_eq!(meta.output_type, "(u64, u64)");
    assert_eq!(ping.meta().input_type, "()");
    assert_eq!(io_error.meta().output_type, "u64");
    assert!(!meta.cancellable);
    assert!(delegates.meta().cancellable);

    // Registration, explicit and all at once; a workflow brings the activities it calls.
    let registry = Registry::new().register(ping).register(total);
    assert_eq!(registry.activity_names(), vec!["ping", "total"]);
    let registry = registry.register(uses_them);
    assert_eq!(
        registry.activity_names(),
        vec![
            "anyhow_error",
            "attributed",
            "context_last",
            "delegates",
            "double",
            "explicit_error",
            "io_error",
            "ping",
            "total",
            "type",
            "whoami"
        ]
    );
    let all = Registry::all().activity_names();
    for name in ["ping", "whoami", "total", "context_last", "type", "attributed", "double"] {
        assert!(all.iter().any(|n| n == name), "{name} is registered");
    }
}
