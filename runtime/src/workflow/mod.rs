//! Workflows as user code sees them: the definition trait, the context (activities, timers, clock,
//! randomness, cancel state), and the executor that polls the code deterministically and replays it
//! from a history.

pub(crate) mod calls;
pub(crate) mod check;
pub(crate) mod child;
pub(crate) mod context;
pub(crate) mod definition;
pub(crate) mod executor;
mod markers;
pub(crate) mod messages;
mod state;
