//! Activities as user code sees them: the definition trait and the context (heartbeats,
//! cancellation, info).

pub(crate) mod context;
pub(crate) mod definition;
