//! Message types: what `#[signal]`, `#[query(output = T)]` and `#[update(output = T)]` implement,
//! and the marker traits `#[workflow(signals(..), queries(..), updates(..))]` implements, which
//! every send and every `ctx.signal_channel::<T>()` is checked against at compile time.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A durable, fire-and-forget message into a workflow. `#[signal]` implements it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a signal",
    label = "not declared with `#[signal]`",
    note = "annotate the type: `#[signal] #[derive(Serialize, Deserialize)] struct {Self} {{ .. }}`"
)]
pub trait Signal: Serialize + DeserializeOwned + Send + 'static {
    /// The registered name: the type's name unless `#[signal(name = "..")]`.
    const NAME: &'static str;
}

/// A read of a workflow's state that writes no history. `#[query(output = T)]` implements it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a query",
    label = "not declared with `#[query(output = ..)]`",
    note = "annotate the type: `#[query(output = MyAnswer)] #[derive(Serialize, Deserialize)] struct {Self};`"
)]
pub trait Query: Serialize + DeserializeOwned + Send + 'static {
    /// The registered name: the type's name unless `#[query(name = "..", output = ..)]`.
    const NAME: &'static str;
    /// The answer.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// A request that the workflow validates, applies and answers, durably. `#[update(output = T)]`
/// implements it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an update",
    label = "not declared with `#[update(output = ..)]`",
    note = "annotate the type: `#[update(output = MyAnswer)] #[derive(Serialize, Deserialize)] struct {Self} {{ .. }}`"
)]
pub trait Update: Serialize + DeserializeOwned + Send + 'static {
    /// The registered name: the type's name unless `#[update(name = "..", output = ..)]`.
    const NAME: &'static str;
    /// The answer.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// The workflow `Self` declares the signal `S`: `#[workflow(signals(S))]` implements it.
#[diagnostic::on_unimplemented(
    message = "workflow `{Self}` does not declare the signal `{S}`",
    label = "`{S}` is not in this workflow's `signals(..)`",
    note = "declare it on the workflow: `#[workflow(signals({S}))]`"
)]
pub trait AcceptsSignal<S: Signal> {}

/// The workflow `Self` declares the query `Q`: `#[workflow(queries(Q))]` implements it.
#[diagnostic::on_unimplemented(
    message = "workflow `{Self}` does not declare the query `{Q}`",
    label = "`{Q}` is not in this workflow's `queries(..)`",
    note = "declare it on the workflow: `#[workflow(queries({Q}))]`"
)]
pub trait AcceptsQuery<Q: Query> {}

/// The workflow `Self` declares the update `U`: `#[workflow(updates(U))]` implements it.
#[diagnostic::on_unimplemented(
    message = "workflow `{Self}` does not declare the update `{U}`",
    label = "`{U}` is not in this workflow's `updates(..)`",
    note = "declare it on the workflow: `#[workflow(updates({U}))]`"
)]
pub trait AcceptsUpdate<U: Update> {}

/// A message no workflow declares. Every `#[workflow]` accepts it (hidden), so that a workflow
/// never has exactly one accepted type of a kind: the compiler then takes a send's message type
/// from its argument and reports an undeclared one by name, instead of inferring the one declared.
#[doc(hidden)]
#[derive(Serialize, Deserialize)]
pub struct Undeclared;

impl Signal for Undeclared {
    const NAME: &'static str = "";
}
impl Query for Undeclared {
    const NAME: &'static str = "";
    type Output = ();
}
impl Update for Undeclared {
    const NAME: &'static str = "";
    type Output = ();
}

/// What a workflow's `ctx.signal_channel::<T>()` is checked with at compile time (the macro emits
/// one call per turbofish it sees in the body).
#[doc(hidden)]
pub const fn assert_accepts_signal<W: AcceptsSignal<S>, S: Signal>() {}

/// The kind of a declared message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// `#[signal]`
    Signal,
    /// `#[query(output = ..)]`
    Query,
    /// `#[update(output = ..)]`
    Update,
}

/// A message a workflow declares, in the registry's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageMeta {
    /// Signal, query or update.
    pub kind: MessageKind,
    /// The registered name.
    pub name: String,
    /// The message's Rust type.
    pub input_type: String,
    /// The answer's Rust type (`()` for a signal).
    pub output_type: String,
}

impl MessageMeta {
    /// The metadata of a signal type.
    pub fn signal<S: Signal>() -> Self {
        MessageMeta {
            kind: MessageKind::Signal,
            name: S::NAME.into(),
            input_type: std::any::type_name::<S>().into(),
            output_type: "()".into(),
        }
    }
    /// The metadata of a query type.
    pub fn query<Q: Query>() -> Self {
        MessageMeta {
            kind: MessageKind::Query,
            name: Q::NAME.into(),
            input_type: std::any::type_name::<Q>().into(),
            output_type: std::any::type_name::<Q::Output>().into(),
        }
    }
    /// The metadata of an update type.
    pub fn update<U: Update>() -> Self {
        MessageMeta {
            kind: MessageKind::Update,
            name: U::NAME.into(),
            input_type: std::any::type_name::<U>().into(),
            output_type: std::any::type_name::<U::Output>().into(),
        }
    }
}
