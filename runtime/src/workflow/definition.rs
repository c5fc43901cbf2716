//! The workflow definition trait (what `#[workflow]` implements) and its type-erased form.

use crate::definition::{BoxFuture, DefinitionMeta, WorkflowOptions};
use crate::error::WorkflowError;
use crate::workflow::context::WorkflowContext;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// A workflow definition. `#[workflow]` implements it on a unit struct named after the fn.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow definition",
    label = "expected a fn annotated with `#[workflow]`",
    note = "annotate the async fn with `#[workflow]` and pass its name: `worker.register(my_workflow)`"
)]
pub trait WorkflowDefinition: Copy + Send + Sync + 'static {
    /// The input: one type, `()` for none, a tuple for several.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The registered name.
    fn name(&self) -> &'static str;
    /// The declared options.
    fn options(&self) -> WorkflowOptions;
    /// Metadata for the registry's JSON.
    fn meta(&self) -> DefinitionMeta;
    /// Runs the body.
    fn execute(
        &self,
        ctx: WorkflowContext,
        input: Self::Input,
    ) -> BoxFuture<'static, Result<Self::Output, WorkflowError>>;
}

trait ErasedWorkflow: Send + Sync {
    fn options(&self) -> WorkflowOptions;
    fn meta(&self) -> DefinitionMeta;
    fn execute_json(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>>;
}

impl<W: WorkflowDefinition> ErasedWorkflow for W {
    fn options(&self) -> WorkflowOptions {
        WorkflowDefinition::options(self)
    }
    fn meta(&self) -> DefinitionMeta {
        WorkflowDefinition::meta(self)
    }
    fn execute_json(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        let name = self.name();
        let input: W::Input = match serde_json::from_value(input) {
            Ok(i) => i,
            Err(e) => {
                return Box::pin(std::future::ready(Err(WorkflowError::application(
                    "PayloadError",
                    format!(
                        "the input of workflow `{name}` does not deserialize as `{}`: {e}",
                        std::any::type_name::<W::Input>()
                    ),
                ))))
            }
        };
        let fut = self.execute(ctx, input);
        Box::pin(async move {
            let out = fut.await?;
            serde_json::to_value(out).map_err(|e| {
                WorkflowError::application(
                    "PayloadError",
                    format!(
                        "the result of workflow `{name}` does not serialize as `{}`: {e}",
                        std::any::type_name::<W::Output>()
                    ),
                )
            })
        })
    }
}

/// A type-erased workflow definition, as the registry holds it.
#[derive(Clone)]
pub struct DynWorkflow(Arc<dyn ErasedWorkflow>);

impl DynWorkflow {
    /// Erases a definition.
    pub fn new<W: WorkflowDefinition>(w: W) -> Self {
        DynWorkflow(Arc::new(w))
    }
    pub(crate) fn options(&self) -> WorkflowOptions {
        self.0.options()
    }
    pub(crate) fn meta(&self) -> DefinitionMeta {
        self.0.meta()
    }
    pub(crate) fn execute_json(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        self.0.execute_json(ctx, input)
    }
}
