//! The registry: the definitions a worker runs, by name, with their metadata as JSON.

use crate::activity::definition::DynActivity;
use crate::definition::DefinitionMeta;
use crate::workflow::definition::DynWorkflow;
use serde_json::Value;
use std::collections::BTreeMap;

/// What `inventory` collects for `Registry::all()`: one entry per annotated fn linked into the binary.
#[doc(hidden)]
pub enum Registration {
    Activity(fn() -> crate::activity::definition::DynActivity),
    Workflow(fn() -> crate::workflow::definition::DynWorkflow),
}

inventory::collect!(Registration);

/// Either kind of definition: what `register` takes. `#[activity]` and `#[workflow]` implement
/// [`Register`] for their definitions.
#[derive(Clone)]
pub enum AnyDefinition {
    /// An activity.
    Activity(DynActivity),
    /// A workflow.
    Workflow(DynWorkflow),
}

/// Something that can be registered with a worker: every `#[activity]` and `#[workflow]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be registered",
    label = "expected a fn annotated with `#[activity]` or `#[workflow]`",
    note = "register the name of an annotated fn: `.register(my_workflow)`"
)]
pub trait Register {
    /// The erased definition.
    fn into_definition(self) -> AnyDefinition;
}

/// The definitions a worker runs, by name.
///
/// ```
/// use duraflow::prelude::*;
///
/// #[activity]
/// async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
///
/// let registry = Registry::new().register(add_one);
/// let json = registry.to_json();
/// assert_eq!(json["activities"][0]["name"], "add_one");
/// assert_eq!(json["activities"][0]["input_type"], "i64");
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) activities: BTreeMap<String, DynActivity>,
    pub(crate) workflows: BTreeMap<String, DynWorkflow>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `#[activity]` and `#[workflow]` linked into this binary.
    ///
    /// It uses link-time collection (the `inventory` crate). Known limits: definitions in a library
    /// crate that the binary never references may be dropped by the linker (reference one item of that
    /// crate, or register explicitly); it needs a platform `inventory` supports (Linux, macOS, Windows,
    /// and the other usual targets; not every embedded or wasm target). Two definitions with the same
    /// name: the later one registered wins, and a warning is logged.
    pub fn all() -> Self {
        let mut r = Registry::new();
        for reg in inventory::iter::<Registration> {
            r = match reg {
                Registration::Activity(f) => r.insert(AnyDefinition::Activity(f())),
                Registration::Workflow(f) => r.insert(AnyDefinition::Workflow(f())),
            };
        }
        r
    }

    /// Adds a definition.
    pub fn register(self, def: impl Register) -> Self {
        self.insert(def.into_definition())
    }

    fn insert(mut self, def: AnyDefinition) -> Self {
        match def {
            AnyDefinition::Activity(a) => {
                let name = a.meta().name;
                if self.activities.insert(name.clone(), a).is_some() {
                    tracing::warn!(%name, "activity registered twice; the later definition wins");
                }
            }
            AnyDefinition::Workflow(w) => {
                let name = w.meta().name;
                if self.workflows.insert(name.clone(), w).is_some() {
                    tracing::warn!(%name, "workflow registered twice; the later definition wins");
                }
            }
        }
        self
    }

    /// Puts `activity` under its name, replacing what was there (a test's mock).
    pub(crate) fn replace_activity(mut self, activity: DynActivity) -> Self {
        self.activities.insert(activity.meta().name, activity);
        self
    }

    /// Adds every definition of `other`.
    pub fn merge(mut self, other: Registry) -> Self {
        self.activities.extend(other.activities);
        self.workflows.extend(other.workflows);
        self
    }

    /// The metadata of every definition.
    pub fn definitions(&self) -> Vec<DefinitionMeta> {
        self.activities
            .values()
            .map(|a| a.meta())
            .chain(self.workflows.values().map(|w| w.meta()))
            .collect()
    }

    /// The registry as JSON: `{"activities": [..], "workflows": [..]}`, each with name, kind, options
    /// and type names.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "activities": self.activities.values().map(|a| a.meta()).collect::<Vec<_>>(),
            "workflows": self.workflows.values().map(|w| w.meta()).collect::<Vec<_>>(),
        })
    }

    /// Registered activity names.
    pub fn activity_names(&self) -> Vec<String> {
        self.activities.keys().cloned().collect()
    }

    /// Registered workflow names.
    pub fn workflow_names(&self) -> Vec<String> {
        self.workflows.keys().cloned().collect()
    }

    pub(crate) fn activity(&self, name: &str) -> Option<&DynActivity> {
        self.activities.get(name)
    }

    pub(crate) fn workflow(&self, name: &str) -> Option<&DynWorkflow> {
        self.workflows.get(name)
    }
}
