//! What users hold outside workflow code: the client and the registry.

pub(crate) mod client;
pub(crate) mod messages;
pub(crate) mod registry;
pub(crate) mod replica;
pub(crate) mod schedules;
pub(crate) mod waiting;
