//! Queries across processes (Postgres): a client whose process holds no worker with the workflow
//! asks the workers of the other processes ([`QueryAsk`], over `NOTIFY`); the one that holds the
//! workflow idle in its cache answers ([`QueryReply`]); with no answer within a short wait the
//! client replays the history itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a client waits for a worker of another process to answer a query before it replays
/// the history itself.
pub(crate) const ASK_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// A query asked of the workers of other processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueryAsk {
    /// This ask's id, unique to the asking store handle.
    pub id: String,
    /// The asking store handle (its replies are addressed to it).
    pub from: String,
    pub workflow_id: String,
    pub name: String,
    pub input: Value,
}

/// A worker's reply to a [`QueryAsk`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum QueryReply {
    /// The answer of the worker's cached instance (`Err`: the handler's failure).
    Answer(std::result::Result<Value, String>),
    /// The worker holds the workflow but cannot send the answer (too large for a notification):
    /// the client replays.
    Declined,
}
