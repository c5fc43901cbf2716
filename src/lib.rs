//! duraflow: durable workflows for Rust, embedded.
#![warn(missing_docs)]

pub use duraflow_macros::{activity, workflow};
pub use duraflow_runtime::*;

/// Everything a workflow or activity author needs: `use duraflow::prelude::*;`.
pub mod prelude {
    pub use duraflow_macros::{activity, workflow};
    pub use duraflow_runtime::{
        join, select, ActivityContext, ActivityError, ActivityHandle, CancellationType, Registry,
        RetryPolicy, TimeoutKind, WorkflowContext, WorkflowError,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::time::Duration;
}
