//! Messages as workflow code sees them: signal channels, and the query and update handlers it
//! registers through its context. Everything here is driven by history events delivered in the
//! batches the workflow-task markers record, so it is the same on replay.

use super::context::WorkflowContext;
use super::state::WfState;
use crate::error::WorkflowError;
use crate::message::{Query, Signal, Update};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type QueryFn = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;
type ValidateFn = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;
type ApplyFn = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// The messages side of a run's state: signals delivered and not yet read, by name, and the
/// handlers the code registered.
#[derive(Default)]
pub(crate) struct MessageState {
    /// By name: (arrival number, request id, payload), in arrival order.
    signals: HashMap<String, VecDeque<(u64, String, Value)>>,
    /// Signals delivered so far (numbers their arrival across names).
    arrived: u64,
    queries: HashMap<String, QueryFn>,
    updates: HashMap<String, (ValidateFn, ApplyFn)>,
}

impl MessageState {
    /// A `SignalReceived` event reached the code: buffered until a channel reads it.
    pub(crate) fn push_signal(&mut self, name: &str, input: Value, request_id: &str) {
        self.arrived += 1;
        self.signals
            .entry(name.to_string())
            .or_default()
            .push_back((self.arrived, request_id.to_string(), input));
    }

    /// The buffered signals nobody read, in the order they arrived: what continue-as-new hands
    /// to the next run.
    pub(crate) fn unread_in_order(&self) -> Vec<crate::history::CarriedSignal> {
        let mut all: Vec<(u64, crate::history::CarriedSignal)> = self
            .signals
            .iter()
            .flat_map(|(name, q)| {
                q.iter().map(move |(n, req, v)| {
                    (
                        *n,
                        crate::history::CarriedSignal {
                            signal_name: name.clone(),
                            input: v.clone(),
                            request_id: req.clone(),
                        },
                    )
                })
            })
            .collect();
        all.sort_by_key(|(n, _)| *n);
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// How many signals are buffered and unread, all names together.
    pub(crate) fn unread_signals(&self) -> usize {
        self.signals.values().map(VecDeque::len).sum()
    }
}

/// Why a query or an update could not be answered by the workflow's code.
fn no_handler(kind: &str, name: &str) -> String {
    format!(
        "the workflow has no handler for the {kind} `{name}` (yet): register one with \
         `ctx.on_{kind}::<{name}>(..)` before the workflow's first await"
    )
}

/// A handler may read and change the workflow's own state, but not start work: what the
/// workflow's code starts is decided by its code, on every replay the same.
fn started_work(kind: &str) -> String {
    format!(
        "a {kind} handler cannot start activities, timers or other commands (it runs outside the \
         workflow's code); change the workflow's state in it and let the workflow's code react"
    )
}

/// Runs `f` outside the state's lock (handlers lock user state, and may call the context), with
/// the commands and seqs it would record rolled back: `Err` if it tried to record any.
fn isolated<R>(
    state: &std::sync::Mutex<WfState>,
    kind: &str,
    f: impl FnOnce() -> Result<R, String>,
) -> Result<R, String> {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let (seq, commands) = {
        let st = lock();
        (st.next_seq, st.commands.len())
    };
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        format!(
            "the {kind} handler panicked: {}",
            super::executor::panic_message(&*p)
        )
    });
    let mut st = lock();
    if st.next_seq != seq || st.commands.len() != commands {
        st.commands.truncate(commands);
        st.activities.retain(|s, _| *s < seq);
        st.timers.retain(|s, _| *s < seq);
        st.next_seq = seq;
        return Err(started_work(kind));
    }
    out?
}

/// Answers a query from the run's current state, writing nothing.
pub(crate) fn answer_query(
    state: &std::sync::Mutex<WfState>,
    name: &str,
    input: Value,
) -> Result<Value, String> {
    let handler = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .messages
        .queries
        .get(name)
        .cloned()
        .ok_or_else(|| no_handler("query", name))?;
    isolated(state, "query", || handler(input))
}

/// Validates an update against the run's current state (a rejection writes nothing).
pub(crate) fn validate_update(
    state: &std::sync::Mutex<WfState>,
    name: &str,
    input: &Value,
) -> Result<(), String> {
    let (validate, _) = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .messages
        .updates
        .get(name)
        .cloned()
        .ok_or_else(|| no_handler("update", name))?;
    isolated(state, "update validator", || validate(input))
}

/// Applies an accepted update when the workflow sees it: the validator runs again (the state may
/// have moved since the update was accepted), then the handler. The answer becomes the
/// `UpdateCompleted` command.
pub(crate) fn apply_update(
    state: &std::sync::Mutex<WfState>,
    name: &str,
    input: Value,
) -> Result<Value, String> {
    validate_update(state, name, &input)?;
    let (_, apply) = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .messages
        .updates
        .get(name)
        .cloned()
        .ok_or_else(|| no_handler("update", name))?;
    isolated(state, "update", || apply(input))
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, name: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| {
        format!(
            "the {what} `{name}` does not deserialize as `{}`: {e}",
            std::any::type_name::<T>()
        )
    })
}

fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| {
        format!(
            "the {what} does not serialize as `{}`: {e}",
            std::any::type_name::<T>()
        )
    })
}

impl WorkflowContext {
    /// The workflow's channel of signals of type `S`: every `S` a client sends, buffered in the
    /// order they were recorded until the code reads them, and the same on replay. Several
    /// channels of one type share one buffer.
    ///
    /// `S` must be declared in the workflow's attribute (`#[workflow(signals(S))]`); the macro
    /// checks `ctx.signal_channel::<S>()` at compile time.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[signal]
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// pub struct Approve { pub by: String }
    ///
    /// #[workflow(signals(Approve))]
    /// async fn order(ctx: WorkflowContext, id: u64) -> Result<Option<String>, WorkflowError> {
    ///     let mut approvals = ctx.signal_channel::<Approve>();
    ///     let approved = select! {
    ///         a = approvals.recv() => Some(a?.by),
    ///         _ = ctx.sleep(Duration::from_secs(24 * 3600)) => None,
    ///     };
    ///     Ok(approved)
    /// }
    /// # fn main() {}
    /// ```
    pub fn signal_channel<S: Signal>(&self) -> SignalChannel<S> {
        SignalChannel {
            ctx: self.clone(),
            _marker: PhantomData,
        }
    }

    /// Registers the handler that answers queries of type `Q` from the workflow's current state.
    /// It is synchronous and cannot start activities or timers (trying to answers the caller
    /// with an error, and records nothing); it usually reads state the workflow shares with it.
    /// Register handlers before the workflow's first `.await`, so every query finds them.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[query(output = String)]
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// pub struct GetStatus;
    ///
    /// #[workflow(queries(GetStatus))]
    /// async fn order(ctx: WorkflowContext, id: u64) -> Result<(), WorkflowError> {
    ///     let status = Arc::new(Mutex::new(String::from("waiting")));
    ///     let s = status.clone();
    ///     ctx.on_query(move |_: GetStatus| s.lock().unwrap().clone());
    ///     ctx.sleep(Duration::from_secs(60)).await?;
    ///     *status.lock().unwrap() = "done".into();
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn on_query<Q: Query>(&self, handler: impl Fn(Q) -> Q::Output + Send + Sync + 'static) {
        let f: QueryFn = Arc::new(move |v| {
            let q: Q = decode("query", Q::NAME, v)?;
            encode("query's answer", &handler(q))
        });
        self.lock().messages.queries.insert(Q::NAME.to_string(), f);
    }

    /// Registers the validator and the handler of updates of type `U`. The validator runs when a
    /// client requests the update, against the workflow's current state: an `Err` rejects it,
    /// records nothing, and is what the client's `update(..)` returns
    /// ([`crate::Error::UpdateRejected`]). An accepted update is recorded; when the workflow sees
    /// it, the validator runs again (the state may have changed meanwhile) and the handler applies
    /// it; its answer is recorded and returned to the client. Both are synchronous and cannot
    /// start activities or timers.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[update(output = u32)]
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// pub struct SetLimit { pub limit: u32 }
    ///
    /// #[workflow(updates(SetLimit))]
    /// async fn order(ctx: WorkflowContext, id: u64) -> Result<u32, WorkflowError> {
    ///     let limit = Arc::new(Mutex::new(10u32));
    ///     let l = limit.clone();
    ///     ctx.on_update(
    ///         |u: &SetLimit| if u.limit == 0 { Err("the limit must be positive".into()) } else { Ok(()) },
    ///         move |u: SetLimit| std::mem::replace(&mut *l.lock().unwrap(), u.limit), // the old limit
    ///     );
    ///     ctx.sleep(Duration::from_secs(60)).await?;
    ///     let l = *limit.lock().unwrap();
    ///     Ok(l)
    /// }
    /// # fn main() {}
    /// ```
    pub fn on_update<U: Update>(
        &self,
        validator: impl Fn(&U) -> Result<(), String> + Send + Sync + 'static,
        handler: impl Fn(U) -> U::Output + Send + Sync + 'static,
    ) {
        let validate: ValidateFn = Arc::new(move |v: &Value| {
            let u: U = decode("update", U::NAME, v.clone())?;
            validator(&u)
        });
        let apply: ApplyFn = Arc::new(move |v| {
            let u: U = decode("update", U::NAME, v)?;
            encode("update's answer", &handler(u))
        });
        self.lock()
            .messages
            .updates
            .insert(U::NAME.to_string(), (validate, apply));
    }

    /// Takes the next buffered signal named `name` that decodes as `S`. A payload that does not
    /// (sent by name with the wrong JSON) is dropped with a warning: it fails that signal, not the
    /// workflow, and the same on replay.
    fn take_signal<S: Signal>(&self) -> Option<S> {
        let mut st = self.lock();
        let queue = st.messages.signals.get_mut(S::NAME)?;
        while let Some((_, _, v)) = queue.pop_front() {
            match serde_json::from_value::<S>(v) {
                Ok(s) => return Some(s),
                Err(e) => tracing::warn!(
                    signal = S::NAME,
                    error = %e,
                    "a signal's payload does not deserialize as `{}`; it is dropped",
                    std::any::type_name::<S>()
                ),
            }
        }
        None
    }
}

/// The signals of type `S` a workflow receives, in order; from
/// [`WorkflowContext::signal_channel`].
pub struct SignalChannel<S> {
    ctx: WorkflowContext,
    _marker: PhantomData<fn() -> S>,
}

impl<S: Signal> SignalChannel<S> {
    /// The next signal: resolves at once when one is buffered, else when one arrives. Usable in
    /// `select!` beside timers and activities. In the main scope it resolves
    /// `Err(WorkflowError::Cancelled)` once the workflow was asked to cancel and nothing is
    /// buffered (write `.await?`), as a durable timer does.
    pub fn recv(&mut self) -> Recv<'_, S> {
        Recv { channel: self }
    }

    /// The next buffered signal, or `None` at once: never waits.
    pub fn try_recv(&mut self) -> Option<S> {
        self.ctx.take_signal::<S>()
    }
}

/// The future of [`SignalChannel::recv`].
pub struct Recv<'a, S> {
    channel: &'a mut SignalChannel<S>,
}

impl<S: Signal> Future for Recv<'_, S> {
    type Output = Result<S, WorkflowError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ctx = &self.channel.ctx;
        if let Some(s) = ctx.take_signal::<S>() {
            return Poll::Ready(Ok(s));
        }
        if ctx.lock().cancel_requested && !ctx.detached {
            return Poll::Ready(Err(WorkflowError::Cancelled));
        }
        Poll::Pending
    }
}
