//! Queries across processes on Postgres ([`crate::store::ask`]): asks and replies travel as
//! `NOTIFY` payloads (JSON) on a second channel of the schema, beside the wake-up channel; nothing
//! is written to any table. A payload over Postgres' limit is not sent: the asker replays.

use super::{p, Batch, PostgresStore, SQL_NOTIFY};
use crate::error::Result;
use crate::store::ask::{QueryAsk, QueryReply};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, oneshot};

/// Postgres refuses a `NOTIFY` payload of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// What travels on the query channel.
#[derive(Debug, Serialize, Deserialize)]
enum Notice {
    Ask(QueryAsk),
    Reply {
        to: String,
        id: String,
        reply: QueryReply,
    },
}

/// A store handle's side of cross-process queries: the asks it forwards to its workers, and the
/// replies its clients wait for.
pub(super) struct Asks {
    /// The query channel of this schema.
    pub(super) channel: String,
    pub(super) tx: broadcast::Sender<QueryAsk>,
    pending: Mutex<HashMap<String, oneshot::Sender<QueryReply>>>,
    next: AtomicU64,
}

impl Asks {
    pub(super) fn new(wake_channel: &str) -> Arc<Asks> {
        let channel: String = wake_channel.chars().take(61).collect::<String>() + "_q";
        Arc::new(Asks {
            channel,
            tx: broadcast::channel(64).0,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// A notification on the query channel: an ask of another handle goes to this handle's
    /// workers; a reply to one of this handle's asks goes to its waiting client. Anything else
    /// (a payload this version does not read) is ignored.
    pub(super) fn on_notice(&self, instance: &str, payload: &str) {
        match serde_json::from_str::<Notice>(payload) {
            Ok(Notice::Ask(ask)) if ask.from != instance => {
                let _ = self.tx.send(ask);
            }
            Ok(Notice::Reply { to, id, reply }) if to == instance => {
                let waiter = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(reply);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a query notification this version does not read")
            }
        }
    }
}

impl PostgresStore {
    async fn notify_query(&self, notice: &Notice) -> Result<bool> {
        let payload = serde_json::to_string(notice).unwrap_or_default();
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Ok(false);
        }
        let client = self.client().await?;
        let mut batch = Batch::default();
        batch.push(SQL_NOTIFY, vec![p(self.asks.channel.clone()), p(payload)]);
        batch.run(&client, "sending a query notification").await?;
        Ok(true)
    }

    pub(super) fn query_asks_impl(&self) -> broadcast::Receiver<QueryAsk> {
        self.asks.tx.subscribe()
    }

    pub(super) async fn ask_query_impl(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
        wait: std::time::Duration,
    ) -> Result<Option<QueryReply>> {
        let id = self.asks.next.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        self.asks
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), tx);
        let ask = Notice::Ask(QueryAsk {
            id: id.clone(),
            from: self.instance.clone(),
            workflow_id: workflow_id.to_string(),
            name: name.to_string(),
            input: input.clone(),
        });
        let sent = self.notify_query(&ask).await;
        let reply = match sent {
            Ok(true) => tokio::time::timeout(wait, rx)
                .await
                .ok()
                .and_then(|r| r.ok()),
            Ok(false) => None,
            Err(e) => {
                self.forget(&id);
                return Err(e);
            }
        };
        self.forget(&id);
        Ok(reply)
    }

    fn forget(&self, id: &str) {
        self.asks
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub(super) async fn reply_query_impl(&self, to: &QueryAsk, reply: QueryReply) -> Result<()> {
        let notice = |reply| Notice::Reply {
            to: to.from.clone(),
            id: to.id.clone(),
            reply,
        };
        if !self.notify_query(&notice(reply)).await? {
            // Too large for a notification: the asker replays at once instead of waiting.
            self.notify_query(&notice(QueryReply::Declined)).await?;
        }
        Ok(())
    }
}
