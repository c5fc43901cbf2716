//! The activity definition trait (what `#[activity]` implements) and its type-erased form.

use crate::activity::context::ActivityContext;
use crate::definition::{ActivityOptions, BoxFuture, CancelCapability, DefinitionMeta};
use crate::error::ActivityError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// An activity definition. `#[activity]` implements it on a unit struct named after the fn.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an activity definition",
    label = "expected a fn annotated with `#[activity]`",
    note = "annotate the async fn with `#[activity]` and pass its name: `ctx.activity(my_activity, input)`"
)]
pub trait ActivityDefinition: Copy + Send + Sync + 'static {
    /// The input: one type, `()` for none, a tuple for several.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// [`Cancellable`](crate::Cancellable) when the activity declares `heartbeat_timeout`, else
    /// [`NotCancellable`](crate::NotCancellable).
    type Cancel: CancelCapability;
    /// The registered name.
    fn name(&self) -> &'static str;
    /// The declared options.
    fn options(&self) -> ActivityOptions;
    /// Metadata for the registry's JSON.
    fn meta(&self) -> DefinitionMeta;
    /// Runs the body.
    fn execute(
        &self,
        ctx: ActivityContext,
        input: Self::Input,
    ) -> BoxFuture<'static, Result<Self::Output, ActivityError>>;
}

trait ErasedActivity: Send + Sync {
    fn options(&self) -> ActivityOptions;
    fn meta(&self) -> DefinitionMeta;
    fn execute_json(
        &self,
        ctx: ActivityContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, ActivityError>>;
}

impl<A: ActivityDefinition> ErasedActivity for A {
    fn options(&self) -> ActivityOptions {
        ActivityDefinition::options(self)
    }
    fn meta(&self) -> DefinitionMeta {
        ActivityDefinition::meta(self)
    }
    fn execute_json(
        &self,
        ctx: ActivityContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, ActivityError>> {
        let name = self.name();
        let input: A::Input = match serde_json::from_value(input) {
            Ok(i) => i,
            Err(e) => {
                return Box::pin(std::future::ready(Err(ActivityError::non_retryable(
                    "PayloadError",
                    format!(
                        "the input of activity `{name}` does not deserialize as `{}`: {e}",
                        std::any::type_name::<A::Input>()
                    ),
                ))))
            }
        };
        let fut = self.execute(ctx, input);
        Box::pin(async move {
            let out = fut.await?;
            serde_json::to_value(out).map_err(|e| {
                ActivityError::non_retryable(
                    "PayloadError",
                    format!(
                        "the result of activity `{name}` does not serialize as `{}`: {e}",
                        std::any::type_name::<A::Output>()
                    ),
                )
            })
        })
    }
}

/// A stand-in for activity `A` in a test (`TestEnv`'s mocks): `A`'s name and options, the
/// closure's body.
pub(crate) struct MockActivity<A, F> {
    pub(crate) activity: A,
    pub(crate) body: F,
}

impl<A, F, Fut> ErasedActivity for MockActivity<A, F>
where
    A: ActivityDefinition,
    F: Fn(ActivityContext, A::Input) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
{
    fn options(&self) -> ActivityOptions {
        self.activity.options()
    }
    fn meta(&self) -> DefinitionMeta {
        self.activity.meta()
    }
    fn execute_json(
        &self,
        ctx: ActivityContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, ActivityError>> {
        let name = self.activity.name();
        let input: A::Input = match serde_json::from_value(input) {
            Ok(i) => i,
            Err(e) => {
                return Box::pin(std::future::ready(Err(ActivityError::non_retryable(
                    "PayloadError",
                    format!("the input of mocked activity `{name}` does not deserialize: {e}"),
                ))))
            }
        };
        let fut = (self.body)(ctx, input);
        Box::pin(async move {
            let out = fut.await?;
            serde_json::to_value(out).map_err(|e| {
                ActivityError::non_retryable(
                    "PayloadError",
                    format!("the result of mocked activity `{name}` does not serialize: {e}"),
                )
            })
        })
    }
}

/// A type-erased activity definition, as the registry holds it.
#[derive(Clone)]
pub struct DynActivity(Arc<dyn ErasedActivity>);

impl DynActivity {
    /// Erases a definition.
    pub fn new<A: ActivityDefinition>(a: A) -> Self {
        DynActivity(Arc::new(a))
    }
    /// Erases a mock (see [`MockActivity`]).
    pub(crate) fn mock<A, F, Fut>(activity: A, body: F) -> Self
    where
        A: ActivityDefinition,
        F: Fn(ActivityContext, A::Input) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        DynActivity(Arc::new(MockActivity { activity, body }))
    }
    pub(crate) fn options(&self) -> ActivityOptions {
        self.0.options()
    }
    pub(crate) fn meta(&self) -> DefinitionMeta {
        self.0.meta()
    }
    pub(crate) fn execute_json(
        &self,
        ctx: ActivityContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, ActivityError>> {
        self.0.execute_json(ctx, input)
    }
}
