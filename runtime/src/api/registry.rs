//! The registry: the definitions a worker runs, by name, with their metadata as JSON.

use crate::activity::definition::DynActivity;
use crate::definition::DefinitionMeta;
use crate::workflow::definition::DynWorkflow;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
    /// The definitions registered only because a registered workflow calls them (`a:name`,
    /// `w:name`): registering one by hand afterwards replaces it without a warning.
    implied: BTreeSet<String>,
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

    /// Adds a definition. A workflow brings the activities and child workflows its body calls by
    /// name (`ctx.activity(charge_card, ..)`, `ctx.local_activity(..)`,
    /// `ctx.child_workflow(..)`), and theirs in turn: `register(order)` registers `order` and
    /// everything it calls. What the body calls through a variable is not seen: register it too.
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[activity]
    /// async fn charge_card(cents: u64) -> Result<String, ActivityError> { Ok(format!("{cents}")) }
    ///
    /// #[activity]
    /// async fn refund(cents: u64) -> Result<(), ActivityError> { Ok(()) }
    ///
    /// #[workflow]
    /// async fn order(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    ///     let receipt = ctx.activity(charge_card, cents).await?;
    ///     let undo = refund; // called through a variable: not seen
    ///     if receipt.is_empty() {
    ///         ctx.activity(undo, cents).await?;
    ///     }
    ///     Ok(receipt)
    /// }
    ///
    /// let registry = Registry::new().register(order);
    /// assert_eq!(registry.activity_names(), ["charge_card"]);
    /// assert_eq!(registry.to_json()["workflows"][0]["callees"][0]["name"], "charge_card");
    /// let registry = registry.register(refund); // by hand
    /// assert_eq!(registry.activity_names(), ["charge_card", "refund"]);
    /// ```
    pub fn register(self, def: impl Register) -> Self {
        self.insert(def.into_definition())
    }

    /// Adds a definition alone: a workflow without the activities and child workflows its body
    /// calls (for a worker that runs workflows while other workers run their activities).
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[activity]
    /// async fn charge_card(cents: u64) -> Result<u64, ActivityError> { Ok(cents) }
    ///
    /// #[workflow]
    /// async fn order(ctx: WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
    ///     Ok(ctx.activity(charge_card, cents).await?)
    /// }
    ///
    /// let registry = Registry::new().register_alone(order);
    /// assert!(registry.activity_names().is_empty());
    /// ```
    pub fn register_alone(mut self, def: impl Register) -> Self {
        match def.into_definition() {
            AnyDefinition::Workflow(w) => {
                let name = w.name().to_string();
                let was_implied = self.implied.remove(&format!("w:{name}"));
                if self.workflows.insert(name.clone(), w).is_some() && !was_implied {
                    tracing::warn!(%name, "workflow registered twice; the later definition wins");
                }
            }
            activity => self.add(activity, false),
        }
        self
    }

    fn insert(mut self, def: AnyDefinition) -> Self {
        self.add(def, false);
        self
    }

    /// Adds `def`, by hand or (`implied`) because a registered workflow calls it; then what it
    /// calls. An implied definition never replaces one already there, so a cycle (a workflow that
    /// starts itself as a child) ends.
    fn add(&mut self, def: AnyDefinition, implied: bool) {
        match def {
            AnyDefinition::Activity(a) => {
                let name = a.meta().name;
                let key = format!("a:{name}");
                if implied {
                    if !self.activities.contains_key(&name) {
                        self.implied.insert(key);
                        self.activities.insert(name, a);
                    }
                    return;
                }
                let was_implied = self.implied.remove(&key);
                if self.activities.insert(name.clone(), a).is_some() && !was_implied {
                    tracing::warn!(%name, "activity registered twice; the later definition wins");
                }
            }
            AnyDefinition::Workflow(w) => {
                let name = w.name().to_string();
                let key = format!("w:{name}");
                if implied {
                    if self.workflows.contains_key(&name) {
                        return;
                    }
                    self.implied.insert(key);
                } else {
                    let was_implied = self.implied.remove(&key);
                    if self.workflows.contains_key(&name) && !was_implied {
                        tracing::warn!(%name, "workflow registered twice; the later definition wins");
                    }
                }
                let callees = w.callees();
                self.workflows.insert(name, w);
                for c in callees {
                    self.add(c, true);
                }
            }
        }
    }

    /// Puts `activity` under its name, replacing what was there (a test's mock).
    pub(crate) fn replace_activity(mut self, activity: DynActivity) -> Self {
        self.activities.insert(activity.meta().name, activity);
        self
    }

    /// Adds every definition of `other`.
    pub fn merge(mut self, other: Registry) -> Self {
        let theirs_by_hand = other
            .activities
            .keys()
            .map(|n| format!("a:{n}"))
            .chain(other.workflows.keys().map(|n| format!("w:{n}")))
            .filter(|k| !other.implied.contains(k));
        for k in theirs_by_hand.collect::<Vec<_>>() {
            self.implied.remove(&k);
        }
        for k in &other.implied {
            let (kind, name) = k.split_at(2);
            let ours = match kind {
                "a:" => self.activities.contains_key(name),
                _ => self.workflows.contains_key(name),
            };
            if !ours {
                self.implied.insert(k.clone());
            }
        }
        for (name, a) in other.activities {
            if !(other.implied.contains(&format!("a:{name}"))
                && self.activities.contains_key(&name))
            {
                self.activities.insert(name, a);
            }
        }
        for (name, w) in other.workflows {
            if !(other.implied.contains(&format!("w:{name}")) && self.workflows.contains_key(&name))
            {
                self.workflows.insert(name, w);
            }
        }
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
    /// and type names; a workflow also with its `callees` (`[{"kind": "activity", "name": ..}]`:
    /// what its body calls by name, see [`Registry::register`]).
    pub fn to_json(&self) -> Value {
        let workflows: Vec<Value> = self
            .workflows
            .values()
            .map(|w| {
                let mut meta = serde_json::to_value(w.meta()).unwrap_or(Value::Null);
                let callees: Vec<Value> = w
                    .callees()
                    .iter()
                    .map(|c| match c {
                        AnyDefinition::Activity(a) => {
                            serde_json::json!({"kind": "activity", "name": a.meta().name})
                        }
                        AnyDefinition::Workflow(w) => {
                            serde_json::json!({"kind": "workflow", "name": w.name()})
                        }
                    })
                    .collect();
                if let Value::Object(m) = &mut meta {
                    m.insert("callees".into(), Value::Array(callees));
                }
                meta
            })
            .collect();
        serde_json::json!({
            "activities": self.activities.values().map(|a| a.meta()).collect::<Vec<_>>(),
            "workflows": workflows,
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
