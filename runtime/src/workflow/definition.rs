//! The workflow definition trait (what `#[workflow]` implements) and its type-erased form.

use crate::api::registry::AnyDefinition;
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
    /// The activities and child workflows the body calls by name (`ctx.activity(charge_card, ..)`,
    /// `ctx.local_activity(..)`, `ctx.child_workflow(..)`), which registering this workflow
    /// registers too. `#[workflow]` lists what it sees in the body; none by default.
    fn callees(&self) -> Vec<AnyDefinition> {
        Vec::new()
    }
}

trait ErasedWorkflow: Send + Sync {
    fn name(&self) -> &'static str;
    fn callees(&self) -> Vec<AnyDefinition>;
    fn options(&self) -> WorkflowOptions;
    fn meta(&self) -> DefinitionMeta;
    fn execute_json(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>>;
}

impl<W: WorkflowDefinition> ErasedWorkflow for W {
    fn name(&self) -> &'static str {
        WorkflowDefinition::name(self)
    }
    fn callees(&self) -> Vec<AnyDefinition> {
        WorkflowDefinition::callees(self)
    }
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
    pub(crate) fn name(&self) -> &'static str {
        self.0.name()
    }
    pub(crate) fn callees(&self) -> Vec<AnyDefinition> {
        self.0.callees()
    }
    pub(crate) fn execute_json(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        self.0.execute_json(ctx, input)
    }
}

/// What `#[workflow]` generates for each callee it sees: `(&Callee(path)).activity_callee()`
/// gives the definition when `path` is an activity definition, and nothing otherwise (a method of
/// the same name on another receiver), without a compile error. Not public API.
#[doc(hidden)]
pub struct Callee<T>(pub T);

#[doc(hidden)]
pub trait ActivityCallee {
    fn activity_callee(&self) -> Option<AnyDefinition>;
}

impl<T: crate::activity::definition::ActivityDefinition> ActivityCallee for Callee<T> {
    fn activity_callee(&self) -> Option<AnyDefinition> {
        Some(AnyDefinition::Activity(
            crate::activity::definition::DynActivity::new(self.0),
        ))
    }
}

#[doc(hidden)]
pub trait NotActivityCallee {
    fn activity_callee(&self) -> Option<AnyDefinition> {
        None
    }
}

impl<T> NotActivityCallee for &Callee<T> {}

#[doc(hidden)]
pub trait WorkflowCallee {
    fn workflow_callee(&self) -> Option<AnyDefinition>;
}

impl<T: WorkflowDefinition> WorkflowCallee for Callee<T> {
    fn workflow_callee(&self) -> Option<AnyDefinition> {
        Some(AnyDefinition::Workflow(DynWorkflow::new(self.0)))
    }
}

#[doc(hidden)]
pub trait NotWorkflowCallee {
    fn workflow_callee(&self) -> Option<AnyDefinition> {
        None
    }
}

impl<T> NotWorkflowCallee for &Callee<T> {}
