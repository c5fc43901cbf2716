//! Changing code under running workflows, and small non-deterministic values: `ctx.patched`,
//! `ctx.deprecate_patch` and `ctx.side_effect`, which record markers in the history.

use super::check::{ReplayMismatch, PATCH_FIX};
use super::context::WorkflowContext;
use crate::history::EventKind;
use serde::de::DeserializeOwned;
use serde::Serialize;

impl WorkflowContext {
    /// Versioning: `true` where the run takes the new branch of a change, `false` where it must
    /// keep the old one to replay its history.
    ///
    /// The first time new code passes `ctx.patched(id)` in a run, it records a `patch_marker`
    /// event and answers `true`. Replaying a workflow task recorded before the patch existed (no
    /// marker there), it answers `false`, so that run keeps the old branch, and keeps answering
    /// `false` for that id in that run. A run that reaches the call only after the new code is
    /// deployed takes the new branch. The answer for an id never changes within a run.
    ///
    /// The life of a patch: (1) ship `if ctx.patched("id") { new } else { old }`; (2) once no run
    /// from before the patch is left, ship `ctx.deprecate_patch("id"); new`; (3) once no run
    /// that recorded the marker is left, remove the call. A patch takes no command number, so
    /// the commands after it keep theirs. The crate docs' "Changing workflow code" section
    /// tells the whole story.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    /// #[activity] async fn old_price(cents: u64) -> Result<u64, ActivityError> { Ok(cents) }
    /// #[activity] async fn new_price(cents: u64) -> Result<u64, ActivityError> { Ok(cents * 9 / 10) }
    ///
    /// #[workflow]
    /// async fn checkout(ctx: WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
    ///     let price = if ctx.patched("new-pricing") {
    ///         ctx.activity(new_price, cents).await?
    ///     } else {
    ///         ctx.activity(old_price, cents).await?
    ///     };
    ///     Ok(price)
    /// }
    /// # fn main() {}
    /// ```
    pub fn patched(&self, patch_id: &str) -> bool {
        self.patch(patch_id, false)
    }

    /// The cleanup step of a patch: the code keeps only the new branch and says so. It records
    /// the marker (flagged deprecated) in new runs, so that code which still has
    /// `ctx.patched(id)` replays them on the new branch, and it replays runs that recorded the
    /// marker as well as runs that did not (a deprecated marker the code no longer produces is
    /// skipped by the replay check). Once no run from before the patch is left, replace
    /// `if ctx.patched(id) { new } else { old }` with `ctx.deprecate_patch(id); new`.
    ///
    /// ```
    /// use duraflow::prelude::*;
    /// #[activity] async fn new_price(cents: u64) -> Result<u64, ActivityError> { Ok(cents * 9 / 10) }
    ///
    /// #[workflow]
    /// async fn checkout(ctx: WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
    ///     ctx.deprecate_patch("new-pricing");
    ///     Ok(ctx.activity(new_price, cents).await?)
    /// }
    /// # fn main() {}
    /// ```
    pub fn deprecate_patch(&self, patch_id: &str) {
        self.patch(patch_id, true);
    }

    fn patch(&self, patch_id: &str, deprecated: bool) -> bool {
        let mut st = self.lock();
        if let Some(&answer) = st.patches.get(patch_id) {
            return answer;
        }
        let recorded = |c: &EventKind| matches!(c, EventKind::PatchMarker { patch_id: p, .. } if p == patch_id);
        // Live, the new code runs; replaying, the recorded task says which branch it took.
        let marker = !st.replaying || st.replay_commands.iter().any(|e| recorded(&e.kind));
        if marker {
            st.commands.push(EventKind::PatchMarker {
                patch_id: patch_id.to_string(),
                deprecated,
            });
        }
        // Deprecated: the code only has the new branch, whatever the history.
        let answer = marker || deprecated;
        st.patches.insert(patch_id.to_string(), answer);
        answer
    }

    /// A small non-deterministic value (a random token, a wall-clock reading, a value read from
    /// the environment) without an activity: `f` runs once, the first time the run reaches this
    /// call, and its value is recorded in the history (`side_effect_marker`); every replay
    /// returns the recorded value and does not run `f`. `f` must not fail, block or have effects
    /// that matter: use an activity for those.
    ///
    /// The value goes through serde. Replaying a history whose recorded value does not
    /// deserialize as `T` (the code changed the type) is a replay mismatch that names the side
    /// effect and both types, and the workflow is held like any other. A side effect takes a
    /// command number, as activities and timers do.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[workflow]
    /// async fn tagged(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    ///     let host: String = ctx.side_effect(|| {
    ///         std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
    ///     });
    ///     Ok(format!("started on {host}"))
    /// }
    /// # fn main() {}
    /// ```
    pub fn side_effect<T, F>(&self, f: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let mut st = self.lock();
        let seq = st.alloc_seq();
        let recorded = st.replaying.then(|| {
            st.replay_commands.iter().find_map(|e| match &e.kind {
                EventKind::SideEffectMarker {
                    side_effect_seq,
                    value,
                } if *side_effect_seq == seq => Some((e.seq, value.clone())),
                _ => None,
            })
        });
        if let Some(Some((event_seq, value))) = recorded {
            match serde_json::from_value::<T>(value.clone()) {
                Ok(v) => {
                    st.commands.push(EventKind::SideEffectMarker {
                        side_effect_seq: seq,
                        value,
                    });
                    return v;
                }
                Err(e) => {
                    let mismatch = ReplayMismatch {
                        workflow_id: st.info.workflow_id.clone(),
                        workflow_type: st.info.workflow_type.clone(),
                        event_seq,
                        recorded: Some(format!("side effect #{seq} = {value}")),
                        produced: Some(format!(
                            "side effect #{seq} of type `{}` ({e})",
                            std::any::type_name::<T>()
                        )),
                        fix: format!(
                            "the type of side effect #{seq} changed; keep the recorded type, or \
                             {PATCH_FIX}"
                        ),
                    };
                    drop(st);
                    // Caught by the executor (not a panic of the user's code; no hook runs).
                    std::panic::resume_unwind(Box::new(mismatch));
                }
            }
        }
        // Live (or a side effect the recorded task does not have: the check reports it).
        drop(st);
        let v = f();
        let value = serde_json::to_value(&v).unwrap_or_else(|e| {
            panic!(
                "ctx.side_effect: the value of type `{}` does not serialize to JSON: {e}",
                std::any::type_name::<T>()
            )
        });
        self.lock().commands.push(EventKind::SideEffectMarker {
            side_effect_seq: seq,
            value,
        });
        v
    }
}
