//! The Postgres store: workers in many processes (and on many machines) share one database.
//!
//! Same tables and the same semantics as the SQLite store (see `store/sqlite/`): every transition
//! reads the facts, asks the engine (`crate::engine`) and applies its plan
//! ([`apply`](self::apply)); nothing here decides. What many writers need on top:
//!
//! - **Locking order.** Every transaction that touches a workflow's rows locks the `workflows` row
//!   first (`SELECT .. FOR UPDATE`), then reads the rest of its facts (each statement after the
//!   lock sees every change committed before it), then that workflow's task, activity and timer
//!   rows. The claim queries never wait: they lock the task row *and* its workflow row with
//!   `FOR UPDATE .. SKIP LOCKED`, so a task whose workflow is busy is simply left for the next
//!   poll. With this order no two store calls can deadlock.
//! - **Guards.** A plan's guard becomes one guarded `UPDATE` of the workflow row, which also
//!   allocates the numbers of the plan's events (under the row lock, so concurrent appends from
//!   many processes never collide). A guard that does not hold fails that statement: the
//!   transaction is aborted and the `COMMIT` pipelined after it rolls back.
//! - **Fencing.** A workflow task's token is `workflows.wft_token`, bumped at each claim and
//!   checked under the row lock at commit; an activity task's token is bumped at each attempt and
//!   by `claim_expired_activities`, and checked under the task's row lock at finish. A stale token
//!   writes nothing.
//! - **Wake-ups.** A plan that creates or makes due work (`Plan::wake`) ends with `pg_notify` on a
//!   channel of its schema (delivered at commit). One dedicated connection per store `LISTEN`s on
//!   it and forwards each notification from *another* store handle to a broadcast channel
//!   ([`external_wakeups`](super::StoreBackend::external_wakeups)); notifications a handle sent
//!   itself are skipped, since its own workers are woken in-process. The listener reconnects when
//!   its connection drops and then ticks once, as notifications may have been missed meanwhile.
//! - **Round trips.** Statements are prepared once per pooled connection (`prepare_cached`); a
//!   transaction's statements are pipelined, `BEGIN` sent with the first batch and `COMMIT` with
//!   the last: a transition is one round trip to lock and read its facts, one to apply its plan and
//!   commit.
//!
//! Durability is the server's: `synchronous_commit` is left at its default (`on`). Timestamps are
//! milliseconds since the epoch computed in Rust, as in SQLite.

use super::{corrupt_from, now_ms};
use crate::error::{Error, Result};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{AsyncMessage, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

mod apply;
mod ask;
mod backend;
mod finish;
mod liveness;
mod messages;
mod read;
mod schedules;
mod schema;
#[cfg(test)]
mod tests;
mod tls;

/// Connections in the pool of one store handle.
const POOL_SIZE: usize = 12;

/// A notification inside a transaction of its own (a query ask or reply).
const SQL_NOTIFY: &str = "SELECT pg_notify($1::TEXT, $2::TEXT)";

/// A wake-up sent in a transaction of its own, after the transaction whose work it announces has
/// committed (pipelined behind its `COMMIT`). Postgres serializes the commits of every transaction
/// that notifies, fsync included, under one database-wide lock; sent inside the plan's
/// transaction, a wake-up would make every such commit wait for the others, one fsync at a time.
/// A wake-up is not data (a lost one costs a poll interval, and a listener ticks on reconnect), so
/// its own tiny transaction commits with `synchronous_commit` off: it holds that lock for
/// microseconds. The data it announces was committed before, with the store's durability.
const SQL_NOTIFY_AFTER: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1::TEXT, $2::TEXT)";

// ---------------------------------------------------------------------------------------------
// Errors and conversions.

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            s
        }
        None => e.to_string(),
    }
}

fn db(context: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| {
        let message = format!("Postgres store, {context}: {}", pg_message(&e));
        Error::database_from(message, e)
    }
}

/// Whether `e` (a Postgres or pool error) may pass by itself, or `None` when it is neither: the
/// connection failed or was cut, the server is starting, restarting or shutting sessions down
/// (SQLSTATE classes 08, 57 and 53), a statement was cancelled or timed out (57014), a
/// serialization failure or deadlock (class 40), a lock was not available (55P03).
pub(crate) fn transient(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<bool> {
    fn pg(e: &tokio_postgres::Error) -> bool {
        match e.code() {
            // No SQLSTATE: a cut connection or a network error passes; a TLS certificate, a
            // protocol or a configuration error does not, and retrying it would only hide it.
            None => {
                e.is_closed()
                    || std::error::Error::source(e)
                        .and_then(|s| s.downcast_ref::<std::io::Error>())
                        .is_some_and(|io| {
                            use std::io::ErrorKind::*;
                            matches!(
                                io.kind(),
                                ConnectionRefused
                                    | ConnectionReset
                                    | ConnectionAborted
                                    | NotConnected
                                    | BrokenPipe
                                    | TimedOut
                                    | UnexpectedEof
                                    | Interrupted
                                    | AddrNotAvailable
                                    | HostUnreachable
                                    | NetworkUnreachable
                                    | NetworkDown
                            )
                        })
            }
            Some(code) => {
                let c = code.code();
                ["08", "57", "53", "58", "40"]
                    .iter()
                    .any(|k| c.starts_with(k))
                    || c == "55P03"
            }
        }
    }
    if let Some(e) = e.downcast_ref::<tokio_postgres::Error>() {
        return Some(pg(e));
    }
    if let Some(e) = e.downcast_ref::<deadpool_postgres::PoolError>() {
        return Some(match e {
            deadpool_postgres::PoolError::Backend(e) => pg(e),
            deadpool_postgres::PoolError::Timeout(_) => true,
            _ => false,
        });
    }
    None
}

/// Maps a statement's error; a failed guard (see `apply::SQL_GUARD`) is said as such.
fn pg_error(context: &str, e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&SqlState::DIVISION_BY_ZERO) {
        return Error::database(format!(
            "Postgres store, {context}: the workflow changed while a transition was being applied (its guard no longer held); nothing was written"
        ));
    }
    db(context)(e)
}

/// A column, with a type mismatch reported as an error (never a panic).
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| corrupt_from(format!("column {i} of a row: {e}"), e))
}

// ---------------------------------------------------------------------------------------------
// Statement batches: prepared first, then sent together (pipelined) and run in order.

type Param = Box<dyn ToSql + Sync + Send>;

#[derive(Default)]
struct Batch {
    items: Vec<(&'static str, Vec<Param>)>,
    /// The wake-up to send once the transaction this batch belongs to commits (see
    /// [`SQL_NOTIFY_AFTER`]): its channel and payload.
    wake: Option<(String, String)>,
    /// How many of the last items are best effort (a wake-up after the commit): their errors are
    /// logged, not returned, and their rows are not returned.
    best_effort: usize,
}

impl Batch {
    fn push(&mut self, sql: &'static str, params: Vec<Param>) -> usize {
        self.items.push((sql, params));
        self.items.len() - 1
    }

    /// Sends the pending wake-up, if any, after everything else, best effort: for a batch run
    /// outside a transaction (each statement commits by itself).
    fn wake_last(&mut self) {
        if let Some((channel, payload)) = self.wake.take() {
            self.push(SQL_NOTIFY_AFTER, vec![p(channel), p(payload)]);
            self.best_effort += 1;
        }
    }

    /// Runs every statement in order in one round trip (after the first use of each statement on
    /// this connection, which prepares it); returns each statement's rows, or the first error (a
    /// statement that fails aborts the transaction it is in: the ones after it fail too, and a
    /// `COMMIT` after it rolls back).
    async fn run_raw<C: GenericClient>(
        mut self,
        c: &C,
    ) -> std::result::Result<Vec<Vec<Row>>, tokio_postgres::Error> {
        self.wake_last();
        if self.items.is_empty() {
            return Ok(Vec::new());
        }
        let stmts: Vec<Statement> =
            futures::future::try_join_all(self.items.iter().map(|(sql, _)| c.prepare_cached(sql)))
                .await?;
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = self
            .items
            .iter()
            .map(|(_, ps)| ps.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect())
            .collect();
        // `query` sends its request when first polled, and `try_join_all` polls in order: the
        // statements reach the server in order, and run in order.
        if self.best_effort == 0 {
            return futures::future::try_join_all(
                stmts.iter().zip(refs.iter()).map(|(s, ps)| c.query(s, ps)),
            )
            .await;
        }
        // Every statement is awaited (each has its own sync point: a failed one does not skip the
        // ones after it), so a best-effort statement's error cannot hide the others'.
        let mut all =
            futures::future::join_all(stmts.iter().zip(refs.iter()).map(|(s, ps)| c.query(s, ps)))
                .await;
        for r in all.drain(all.len() - self.best_effort..) {
            if let Err(e) = r {
                tracing::debug!(error = %e, "Postgres wake-up after a commit failed");
            }
        }
        all.into_iter().collect()
    }

    /// [`Batch::run_raw`], its error said in `context`.
    async fn run<C: GenericClient>(self, c: &C, context: &str) -> Result<Vec<Vec<Row>>> {
        self.run_raw(c).await.map_err(|e| pg_error(context, e))
    }
}

fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Param {
    Box::new(v)
}

async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &str,
) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await.map_err(db(context))?;
    c.query(&st, params).await.map_err(db(context))
}

/// A transaction on one pooled connection, without round trips of its own: `BEGIN` is sent with
/// the first statements and `COMMIT` with the last ones (pipelined). Dropped while open (an early
/// return, an error, a cancelled future), it is rolled back before the connection is reused.
struct Tx {
    client: Option<deadpool_postgres::Object>,
    begin: &'static str,
    open: bool,
    begun: bool,
    /// When the transaction began, for the commit latency metric.
    began: std::time::Instant,
    /// The wake-up one of its batches asked for, sent after its `COMMIT` (see
    /// [`SQL_NOTIFY_AFTER`]); dropped with a rollback.
    wake: Option<(String, String)>,
}

impl Tx {
    fn new(client: deadpool_postgres::Object) -> Tx {
        Tx::with_begin(client, "BEGIN")
    }

    fn with_begin(client: deadpool_postgres::Object, begin: &'static str) -> Tx {
        Tx {
            client: Some(client),
            begin,
            open: false,
            begun: false,
            began: std::time::Instant::now(),
            wake: None,
        }
    }

    /// Runs `batch` in the transaction (beginning it on first use); with `commit`, commits after it
    /// in the same round trip. The inner error is the first statement's that failed (the
    /// transaction is then aborted, and is rolled back when the `Tx` is dropped).
    async fn try_run(
        &mut self,
        mut batch: Batch,
        commit: bool,
    ) -> Result<std::result::Result<Vec<Vec<Row>>, tokio_postgres::Error>> {
        let lead = !self.begun;
        if lead {
            batch.items.insert(0, (self.begin, Vec::new()));
            self.begun = true;
            self.open = true;
        }
        if let Some(w) = batch.wake.take() {
            self.wake = Some(w);
        }
        if commit {
            batch.push("COMMIT", Vec::new());
            batch.wake = self.wake.take();
            batch.wake_last();
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::database("Postgres store: transaction without a connection"))?;
        let mut res = match batch.run_raw(client).await {
            Ok(res) => res,
            Err(e) => return Ok(Err(e)),
        };
        if commit {
            res.pop();
            self.open = false;
            crate::telemetry::postgres_commit(self.began.elapsed());
        }
        if lead && !res.is_empty() {
            res.remove(0);
        }
        Ok(Ok(res))
    }

    /// [`Tx::try_run`], an error said in `context`.
    async fn run(&mut self, batch: Batch, commit: bool, context: &str) -> Result<Vec<Vec<Row>>> {
        self.try_run(batch, commit)
            .await?
            .map_err(|e| pg_error(context, e))
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Some(client) = self.client.take() {
            match tokio::runtime::Handle::try_current() {
                // The connection returns to the pool once the rollback is through.
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = client.batch_execute("ROLLBACK").await {
                            tracing::debug!(error = %e, "Postgres rollback failed");
                            let _ = deadpool_postgres::Object::take(client);
                        }
                    });
                }
                // No runtime to roll back on: close the connection instead (the server rolls back).
                Err(_) => drop(deadpool_postgres::Object::take(client)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The store.

pub(crate) struct PostgresStore {
    pool: Pool,
    /// The `NOTIFY` channel of this schema.
    channel: String,
    /// The payload of our own notifications, so the listener skips them.
    instance: String,
    wake_tx: broadcast::Sender<()>,
    /// The process-local hub of the `Store` this backend serves: the listener hands it the cancels
    /// other processes commit for attempts running here.
    hub: HubSlot,
    /// Attempt outcomes waiting to be recorded together (see [`finish`]).
    finishes: Arc<finish::Queue<finish::Item>>,
    /// Cancel requests waiting to be recorded together.
    cancels: Arc<finish::Queue<finish::CancelItem>>,
    listener: tokio::task::JoinHandle<()>,
    /// Queries across processes (see `ask.rs`).
    asks: std::sync::Arc<ask::Asks>,
}

/// Where the listener finds the hub (set once the `Store` wrapping this backend exists).
type HubSlot = Arc<std::sync::OnceLock<std::sync::Weak<crate::store::hub::LocalHub>>>;

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// `name` as a quoted SQL identifier (`"` doubled inside): the one way a name reaches SQL text in
/// this store; every value is a bind parameter.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema name we put into SQL and into the connection options: letters, digits and `_`.
fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "Postgres schema name `{schema}`: use 1 to 63 ASCII letters, digits and `_`, not starting with a digit"
        )))
    }
}

fn random_instance_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

impl PostgresStore {
    /// Connects, creates the schema if asked and missing, migrates, and starts the listener.
    pub(crate) async fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        let tls = tls::split(url)?;
        let mut cfg: tokio_postgres::Config = tls
            .url
            .parse()
            .map_err(|e| Error::InvalidOption(format!("Postgres URL `{}`: {e}", redact(url))))?;
        cfg.ssl_mode(tls.ssl_mode());
        let connector = tls.connector()?;
        if let Some(s) = schema {
            check_schema_name(s)?;
            let opts = format!(
                "{} -c search_path={}",
                cfg.get_options().unwrap_or_default(),
                quote_ident(s)
            );
            cfg.options(opts.trim_start());
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("duraflow");
        }
        let channel: String = match schema {
            Some(s) => format!("duraflow_{s}"),
            None => "duraflow".to_string(),
        }
        .chars()
        .take(63)
        .collect();

        let manager = Manager::from_config(
            cfg.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| {
                Error::database_from(format!("Postgres store: cannot build the pool: {e}"), e)
            })?;
        let store_pool = pool.clone();
        {
            let mut client = pool.get().await.map_err(|e| {
                Error::database_from(
                    format!("Postgres store: cannot connect to `{}`: {e}", redact(url)),
                    e,
                )
            })?;
            schema::migrate(&mut client, schema).await?;
        }

        let (wake_tx, _) = broadcast::channel(64);
        let hub = HubSlot::default();
        let instance = random_instance_id();
        let asks = ask::Asks::new(&channel);
        // The first LISTEN is in place before `connect` returns: no notification after it is missed.
        let first = listen(&cfg, &connector, &channel, &asks.channel).await?;
        let listener = tokio::spawn(listener_loop(
            cfg,
            connector,
            channel.clone(),
            instance.clone(),
            wake_tx.clone(),
            hub.clone(),
            first,
            asks.clone(),
        ));
        Ok(PostgresStore {
            pool: store_pool,
            channel,
            instance,
            wake_tx,
            hub,
            finishes: Default::default(),
            cancels: Default::default(),
            listener,
            asks,
        })
    }

    /// What a transaction recording attempt outcomes needs.
    fn finish_ctx(&self) -> finish::Ctx {
        finish::Ctx {
            pool: self.pool.clone(),
            channel: self.channel.clone(),
            instance: self.instance.clone(),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            Error::database_from(format!("Postgres store: cannot get a connection: {e}"), e)
        })
    }

    /// Asks for a wake-up of the other processes once the batch's transaction commits (a batch run
    /// outside a transaction: after its statements).
    fn notify(&self, batch: &mut Batch) {
        batch.wake = Some((self.channel.clone(), self.instance.clone()));
    }
}

/// The URL without its password, for messages: the password of a `postgres://user:pw@` URL, and
/// the value of a `password` parameter (in the query or in `key=value` form), become `***`.
fn redact(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    let mut from = 0;
    while let Some(k) = out[from..]
        .find("password=")
        .map(|k| from + k + "password=".len())
    {
        let end = out[k..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map_or(out.len(), |e| k + e);
        out.replace_range(k..end, "***");
        from = k + 3;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// LISTEN/NOTIFY.

type Listening = (
    tokio_postgres::Client,
    tokio_postgres::Connection<
        tokio_postgres::Socket,
        <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
    >,
);

/// Opens the dedicated connection and `LISTEN`s on the wake-up and the query channels (driving the
/// connection ourselves meanwhile).
async fn listen(
    cfg: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    channel: &str,
    query_channel: &str,
) -> Result<Listening> {
    let mut cfg = cfg.clone();
    cfg.keepalives_idle(Duration::from_secs(30));
    let (client, mut conn) = cfg
        .connect(tls.clone())
        .await
        .map_err(db("connecting the LISTEN connection"))?;
    // The wake-up channel last: the connection's last statement (what `pg_stat_activity` shows)
    // stays `LISTEN "<wake-up channel>"`.
    for ch in [query_channel, channel] {
        let sql = format!("LISTEN {}", quote_ident(ch));
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        loop {
            tokio::select! {
                r = &mut listen => {
                    r.map_err(db("LISTEN"))?;
                    break;
                }
                m = std::future::poll_fn(|cx| conn.poll_message(cx)) => match m {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(db("LISTEN")(e)),
                    None => return Err(Error::database("Postgres store: the LISTEN connection closed")),
                }
            }
        }
    }
    Ok((client, conn))
}

/// Forwards notifications of other store handles; reconnects (and ticks once) when the connection
/// drops. Ends when the store is dropped (the task is aborted).
#[allow(clippy::too_many_arguments)]
async fn listener_loop(
    cfg: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    channel: String,
    instance: String,
    tx: broadcast::Sender<()>,
    hub: HubSlot,
    first: Listening,
    asks: std::sync::Arc<ask::Asks>,
) {
    let mut current = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (client, mut conn) = match current.take() {
            Some(c) => c,
            None => match listen(&cfg, &tls, &channel, &asks.channel).await {
                Ok(c) => {
                    backoff = Duration::from_millis(100);
                    // Notifications may have been missed while disconnected.
                    let _ = tx.send(());
                    c
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "Postgres LISTEN connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == asks.channel => {
                    asks.on_notice(&instance, n.payload());
                }
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some((workflow_id, seq)) = apply::parse_cancel_payload(n.payload()) {
                        // A cancel committed for attempts that may run here (ours included: the
                        // flag is idempotent, and a close's cancel has no in-process path).
                        if let Some(hub) = hub.get().and_then(|h| h.upgrade()) {
                            hub.cancel_running_of(workflow_id, seq);
                        }
                    } else if n.payload() != instance {
                        let _ = tx.send(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Postgres LISTEN connection lost; reconnecting");
                    break;
                }
                None => {
                    tracing::warn!("Postgres LISTEN connection closed; reconnecting");
                    break;
                }
            }
        }
        drop(client);
    }
}
