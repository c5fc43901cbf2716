//! Messages from the client: signals, queries and updates, typed (checked at compile time against
//! the workflow's `#[workflow(signals(..), queries(..), updates(..))]`) or by name with JSON
//! (checked against the registry).

use super::client::{new_workflow, rand_u64, Client, StartOptions, WorkflowHandle};
use crate::engine::signal::NewSignal;
use crate::engine::update::NewUpdate;
use crate::error::{Error, Result};
use crate::message::{
    AcceptsQuery, AcceptsSignal, AcceptsUpdate, MessageKind, Query, Signal, Update,
};
use crate::store::now_ms;
use crate::workflow::definition::{DynWorkflow, WorkflowDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::marker::PhantomData;

/// A fresh request or update id.
pub(crate) fn fresh_id() -> String {
    format!("{:012x}-{:016x}", now_ms(), rand_u64())
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Payload {
        type_name: std::any::type_name::<T>().to_string(),
        message: e.to_string(),
    })
}

fn from_value<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Payload {
        type_name: std::any::type_name::<T>().to_string(),
        message: e.to_string(),
    })
}

impl Client {
    /// Sends a signal: when this returns, the signal is in the workflow's history, and the
    /// workflow is woken to read it (`ctx.signal_channel::<S>()`). Signals are delivered in the
    /// order they were recorded, each once. The workflow must declare `S`
    /// (`#[workflow(signals(S))]`), or this does not compile.
    ///
    /// Each call is a new signal. To retry a call safely after an error (a lost connection),
    /// give it a request id with [`Client::signal_with_request_id`]: the signal is then recorded
    /// once, however often it is sent.
    ///
    /// [`Error::WorkflowNotFound`] for an unknown id, [`Error::WorkflowClosed`] once the workflow
    /// ended.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use duraflow::prelude::*;
    ///
    /// #[signal]
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// pub struct Approve { pub by: String }
    ///
    /// #[workflow(signals(Approve))]
    /// async fn order(ctx: WorkflowContext, id: u64) -> Result<String, WorkflowError> {
    ///     Ok(ctx.signal_channel::<Approve>().recv().await?.by)
    /// }
    ///
    /// # async fn demo(client: Client) -> Result<(), duraflow::Error> {
    /// client.signal(order, "order-1", Approve { by: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal<W, S>(&self, workflow: W, workflow_id: &str, signal: S) -> Result<()>
    where
        W: WorkflowDefinition + AcceptsSignal<S>,
        S: Signal,
    {
        self.signal_with_request_id(workflow, workflow_id, &fresh_id(), signal)
            .await
            .map(drop)
    }

    /// [`Client::signal`] with the caller's request id: however many times it is sent (a retry
    /// after a timeout, a crash of the caller), the workflow receives the signal once. Returns
    /// `true` when this call recorded it, `false` when an earlier call with this id had.
    pub async fn signal_with_request_id<W, S>(
        &self,
        _workflow: W,
        workflow_id: &str,
        request_id: &str,
        signal: S,
    ) -> Result<bool>
    where
        W: WorkflowDefinition + AcceptsSignal<S>,
        S: Signal,
    {
        self.signal_raw(workflow_id, S::NAME, to_value(&signal)?, request_id)
            .await
    }

    /// Sends a signal by name with JSON (tools, other languages). The name is checked against
    /// the workflow type's declared signals when the registry knows the type
    /// ([`Error::UnknownMessage`]); the JSON is checked by the workflow, which drops (with a
    /// warning) a payload that does not deserialize as the signal's type: a bad payload fails
    /// that signal, not the workflow. `request_id`: as in [`Client::signal_with_request_id`];
    /// `None` for a new one.
    pub async fn signal_by_name(
        &self,
        workflow_id: &str,
        name: &str,
        input: Value,
        request_id: Option<&str>,
    ) -> Result<bool> {
        let snap = self.snapshot(workflow_id).await?;
        self.declared(snap.workflow_type(), MessageKind::Signal, name)?;
        let id = request_id.map_or_else(fresh_id, str::to_string);
        self.signal_raw(workflow_id, name, input, &id).await
    }

    async fn signal_raw(
        &self,
        workflow_id: &str,
        name: &str,
        input: Value,
        request_id: &str,
    ) -> Result<bool> {
        let signal = NewSignal {
            name: name.to_string(),
            input,
            request_id: request_id.to_string(),
        };
        let store = self.store();
        // A worker of this process holding the workflow idle takes the task the signal's own
        // transaction claims for it: one commit, and the workflow runs at once.
        let holder = store.hub.holder_of(workflow_id);
        let direct = holder.as_ref().map(|(_, claim, _)| claim.clone());
        let out = store
            .backend
            .signal_workflow(workflow_id, signal, direct)
            .await?;
        match (out.claimed, holder) {
            (Some(token), Some((holder, _, task))) => {
                holder.run_claimed(crate::engine::ClaimedWorkflowTask { token, ..task })
            }
            _ => store.hub.wake_workers(),
        }
        Ok(out.recorded)
    }

    /// Starts the workflow unless a workflow with this id exists, and sends it the signal, in
    /// one transaction: two clients racing on one id start it once, and the workflow receives
    /// both signals. Returns the workflow's handle. A workflow with this id that ended refuses
    /// the signal ([`Error::WorkflowClosed`]).
    pub async fn signal_with_start<W, S>(
        &self,
        workflow: W,
        workflow_id: &str,
        input: W::Input,
        signal: S,
    ) -> Result<WorkflowHandle<W::Output, W>>
    where
        W: WorkflowDefinition + AcceptsSignal<S>,
        S: Signal,
    {
        let opts = workflow.options();
        let options = StartOptions {
            task_queue: opts.task_queue,
            execution_timeout: opts.execution_timeout,
            ..StartOptions::default()
        };
        let new = new_workflow(
            workflow.name(),
            workflow_id.to_string(),
            to_value(&input)?,
            options,
            self.store().clock.now_ms(),
        )?;
        let signal = NewSignal {
            name: S::NAME.to_string(),
            input: to_value(&signal)?,
            request_id: fresh_id(),
        };
        self.store().backend.signal_with_start(new, signal).await?;
        self.store().hub.wake_workers();
        Ok(self.handle::<W::Output>(workflow_id).typed())
    }

    /// Asks the workflow a query: answered by the handler it registered
    /// (`ctx.on_query::<Q>(..)`) from its current state, without writing anything. Works for a
    /// workflow a worker runs, one no worker holds (on any store, in any process: the client
    /// replays the history with the workflow's code, read-only), and one that ended. Waits for
    /// the workflow's first task (which registers its handlers) if it has not run yet.
    /// [`Error::QueryFailed`] when it cannot be answered (no handler, a handler that panicked
    /// or tried to start work, a history this code no longer replays).
    pub async fn query<W, Q>(&self, workflow: W, workflow_id: &str, query: Q) -> Result<Q::Output>
    where
        W: WorkflowDefinition + AcceptsQuery<Q>,
        Q: Query,
    {
        let answer = self
            .query_raw(
                &DynWorkflow::new(workflow),
                workflow_id,
                Q::NAME,
                to_value(&query)?,
            )
            .await?;
        from_value(answer)
    }

    /// A query by name with JSON, answered with JSON. The workflow's type must be in the
    /// registry (the client replays it with its code) and declare the query.
    pub async fn query_by_name(
        &self,
        workflow_id: &str,
        name: &str,
        input: Value,
    ) -> Result<Value> {
        let snap = self.snapshot(workflow_id).await?;
        let def = self.need_definition(snap.workflow_type(), MessageKind::Query, name)?;
        self.query_raw(&def, workflow_id, name, input).await
    }

    async fn query_raw(
        &self,
        def: &DynWorkflow,
        workflow_id: &str,
        name: &str,
        input: Value,
    ) -> Result<Value> {
        let failed = |reason: String| Error::QueryFailed {
            query: name.to_string(),
            reason,
        };
        if let Some(answer) = self.query_cached(workflow_id, name, &input).await? {
            return answer.map_err(failed);
        }
        let mut snap = self.snapshot_after_first_task(workflow_id).await?;
        // Across processes (Postgres): a worker of another process that holds the running
        // workflow answers; with no answer within `ASK_WAIT`, the client replays (a fresh read).
        if snap.closed().is_none() {
            let asked = self
                .store()
                .backend
                .ask_query(workflow_id, name, &input, crate::store::ask::ASK_WAIT)
                .await?;
            match asked {
                Some(crate::store::ask::QueryReply::Answer(answer)) => {
                    return answer.map_err(failed)
                }
                Some(crate::store::ask::QueryReply::Declined) => {}
                None if self.store().backend.query_asks().is_some() => {
                    snap = self.snapshot_after_first_task(workflow_id).await?;
                }
                None => {}
            }
        }
        let replica = snap.replica(def, workflow_id).map_err(failed)?;
        replica.query(name, input).map_err(failed)
    }

    /// The fast path of a query: a worker of this process holds the workflow's instance idle in
    /// its cache, and the history has no task after the one that instance committed (no other
    /// process moved the workflow on): its answer, without a replay. `None`: replay instead.
    async fn query_cached(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
    ) -> Result<Option<std::result::Result<Value, String>>> {
        for holder in self.store().hub.holders() {
            let Some((marker, answer)) = holder.query_cached(workflow_id, name, input) else {
                continue;
            };
            let after = self
                .store()
                .backend
                .read_history(workflow_id, marker + 1)
                .await?;
            if !crate::store::hub::moved_on(&after) {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }

    /// Sends an update and waits for its answer. The workflow's validator
    /// (`ctx.on_update::<U>(validator, handler)`) judges it against the workflow's current state
    /// first: a rejection records nothing and is returned as [`Error::UpdateRejected`]. An
    /// accepted update is recorded, applied by the handler when the workflow sees it, and its
    /// answer recorded: once this returns, the answer is durable. Each call is a new update; for
    /// a retry-safe call give an id ([`Client::update_with_id`]).
    pub async fn update<W, U>(&self, workflow: W, workflow_id: &str, update: U) -> Result<U::Output>
    where
        W: WorkflowDefinition + AcceptsUpdate<U>,
        U: Update,
    {
        self.update_with_id(workflow, workflow_id, &fresh_id(), update)
            .await
    }

    /// [`Client::update`] with the caller's update id: a repeated request with the same id (a
    /// retry) is not applied again, and returns the same answer.
    pub async fn update_with_id<W, U>(
        &self,
        workflow: W,
        workflow_id: &str,
        update_id: &str,
        update: U,
    ) -> Result<U::Output>
    where
        W: WorkflowDefinition + AcceptsUpdate<U>,
        U: Update,
    {
        self.start_update(workflow, workflow_id, update_id, update)
            .await?
            .result()
            .await
    }

    /// Sends an update and returns once it is accepted (validated and recorded), with a handle
    /// to wait for its answer; a rejection is returned at once, as [`Client::update`] does.
    pub async fn start_update<W, U>(
        &self,
        workflow: W,
        workflow_id: &str,
        update_id: &str,
        update: U,
    ) -> Result<UpdateHandle<U::Output>>
    where
        W: WorkflowDefinition + AcceptsUpdate<U>,
        U: Update,
    {
        let def = DynWorkflow::new(workflow);
        self.admit_update(&def, workflow_id, update_id, U::NAME, to_value(&update)?)
            .await
    }

    /// An update by name with JSON, answered with JSON. The workflow's type must be in the
    /// registry and declare the update; a payload that does not deserialize as the update's type
    /// is rejected (the workflow is untouched).
    pub async fn update_by_name(
        &self,
        workflow_id: &str,
        name: &str,
        update_id: Option<&str>,
        input: Value,
    ) -> Result<Value> {
        let snap = self.snapshot(workflow_id).await?;
        let def = self.need_definition(snap.workflow_type(), MessageKind::Update, name)?;
        let id = update_id.map_or_else(fresh_id, str::to_string);
        self.admit_update(&def, workflow_id, &id, name, input)
            .await?
            .result()
            .await
    }

    fn need_definition(
        &self,
        workflow_type: &str,
        kind: MessageKind,
        name: &str,
    ) -> Result<DynWorkflow> {
        self.declared(workflow_type, kind, name)?
            .ok_or_else(|| Error::UnknownWorkflowType {
                name: workflow_type.to_string(),
                known: self.registry().workflow_names().join(", "),
            })
    }

    /// Validates the update against a replica of the current history and records it, guarded by
    /// that history: when another event was appended meanwhile, it is validated again.
    async fn admit_update<O>(
        &self,
        def: &DynWorkflow,
        workflow_id: &str,
        update_id: &str,
        name: &str,
        input: Value,
    ) -> Result<UpdateHandle<O>> {
        let handle = |accepted_seq| UpdateHandle {
            client: self.clone(),
            workflow_id: workflow_id.to_string(),
            update_id: update_id.to_string(),
            name: name.to_string(),
            accepted_seq,
            _marker: PhantomData,
        };
        let rejected = |reason: String| Error::UpdateRejected {
            update: name.to_string(),
            reason,
        };
        loop {
            let snap = self.snapshot_after_first_task(workflow_id).await?;
            if let Some(seq) = snap.accepted(update_id) {
                return Ok(handle(seq));
            }
            if let Some(status) = snap.closed() {
                return Err(crate::Error::WorkflowClosed {
                    workflow_id: workflow_id.to_string(),
                    status: status.to_string(),
                });
            }
            let replica = snap.replica(def, workflow_id).map_err(rejected)?;
            replica.validate_update(name, &input).map_err(rejected)?;
            let update = NewUpdate {
                update_id: update_id.to_string(),
                name: name.to_string(),
                input: input.clone(),
                validated_at: snap.next_seq(),
            };
            if let Some(seq) = self
                .store()
                .backend
                .accept_update(workflow_id, update)
                .await?
            {
                self.store().hub.wake_workers();
                return Ok(handle(seq));
            }
        }
    }
}

/// An accepted update: wait for its answer with [`UpdateHandle::result`]. From
/// [`Client::start_update`].
pub struct UpdateHandle<O> {
    client: Client,
    workflow_id: String,
    update_id: String,
    name: String,
    accepted_seq: u64,
    _marker: PhantomData<fn() -> O>,
}

impl<O> UpdateHandle<O> {
    /// The update's id.
    pub fn id(&self) -> &str {
        &self.update_id
    }
}

impl<O: DeserializeOwned> UpdateHandle<O> {
    /// Waits for the workflow's answer (durable once returned). [`Error::UpdateRejected`] when the
    /// workflow refused the update when it saw it (its validator failed on the state then, or
    /// the payload did not deserialize).
    pub async fn result(&self) -> Result<O> {
        let store = self.client.store();
        loop {
            let waiter = store.hub.progress_waiter(&self.workflow_id);
            let step = self.step(&waiter).await;
            store.hub.forget_progress_waiter(&self.workflow_id, waiter);
            match step? {
                Some(Ok(v)) => return from_value(v),
                Some(Err(reason)) => {
                    return Err(Error::UpdateRejected {
                        update: self.name.clone(),
                        reason,
                    })
                }
                None => {}
            }
        }
    }

    /// Reads the answer; if there is none yet, waits for the workflow's next progress.
    async fn step(
        &self,
        waiter: &tokio::sync::Notify,
    ) -> Result<Option<std::result::Result<Value, String>>> {
        let notified = waiter.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let history = self
            .client
            .store()
            .backend
            .read_history(&self.workflow_id, self.accepted_seq)
            .await?;
        let snap = super::replica::Snapshot { history };
        let answer = snap.answer(&self.update_id);
        if answer.is_none() {
            if let Some(status) = snap.closed() {
                return Err(Error::WorkflowClosed {
                    workflow_id: self.workflow_id.clone(),
                    status: status.to_string(),
                });
            }
            self.client.wait_progress(&mut notified).await;
        }
        Ok(answer)
    }
}

impl<O, W> WorkflowHandle<O, W> {
    /// Sends the workflow a signal (see [`Client::signal`]).
    pub async fn signal<S>(&self, signal: S) -> Result<()>
    where
        W: WorkflowDefinition + AcceptsSignal<S> + Default,
        S: Signal,
    {
        self.client
            .signal(W::default(), &self.workflow_id, signal)
            .await
    }

    /// Asks the workflow a query (see [`Client::query`]).
    pub async fn query<Q>(&self, query: Q) -> Result<Q::Output>
    where
        W: WorkflowDefinition + AcceptsQuery<Q> + Default,
        Q: Query,
    {
        self.client
            .query(W::default(), &self.workflow_id, query)
            .await
    }

    /// Sends the workflow an update and waits for its answer (see [`Client::update`]).
    pub async fn update<U>(&self, update: U) -> Result<U::Output>
    where
        W: WorkflowDefinition + AcceptsUpdate<U> + Default,
        U: Update,
    {
        self.client
            .update(W::default(), &self.workflow_id, update)
            .await
    }
}
