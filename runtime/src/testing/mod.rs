//! Testing workflow code: [`TestEnv`] (an in-memory store, a worker and a client on a virtual
//! clock that skips ahead while workflows wait, with activity mocks) and the [`Replayer`]
//! (recorded histories against the current code, for CI before a deploy).
//!
//! An activity's body is tested on its own with `ActivityContext::for_test` (see the crate docs).

mod env;
mod replayer;

pub use crate::workflow::check::ReplayMismatch;
pub use env::{TestEnv, TestEnvBuilder};
pub use replayer::{HistoryReport, ReplayOutcome, ReplayReport, Replayer};
