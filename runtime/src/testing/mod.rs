//! Testing workflow code: the [`Replayer`] (recorded histories against the current code, for CI
//! before a deploy) and the [`ReplayMismatch`] it reports.

mod replayer;

pub use crate::workflow::check::ReplayMismatch;
pub use replayer::{HistoryReport, ReplayOutcome, ReplayReport, Replayer};
