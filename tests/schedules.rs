//! Schedules through the public API: a daily cron schedule on `TestEnv`'s virtual clock (days in
//! milliseconds), a restart of a SQLite file store with ticks missed while down (each made up
//! once, or dropped outside the catch-up window, never doubled), and two worker processes on one
//! Postgres schema firing one schedule: each tick starts once.
//!
//! The child of the Postgres test is this test binary itself, running `sched_child_worker_entry`
//! with `DURAFLOW_SCHED_CHILD_URL` set; without it that test passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::testing::TestEnv;
use duraflow::{
    ListFilter, OverlapPolicy, Schedule, ScheduleDescription, ScheduleSpec, Store, Triggered,
    WorkflowStatus,
};
use std::time::Instant;

const ENV_URL: &str = "DURAFLOW_SCHED_CHILD_URL";
const ENV_SCHEMA: &str = "DURAFLOW_SCHED_CHILD_SCHEMA";

#[workflow]
pub async fn tick(_ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n + 1)
}

/// Waits (real time, bounded) until `cond` holds on the schedule's description.
async fn wait_for(
    client: &Client,
    id: &str,
    what: &str,
    cond: impl Fn(&ScheduleDescription) -> bool,
) -> ScheduleDescription {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let d = client
            .describe_schedule(id)
            .await
            .expect("describe_schedule");
        if cond(&d) {
            return d;
        }
        assert!(
            Instant::now() < give_up,
            "timed out waiting for {what}: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ticks (ms) named by the ids of the workflows a schedule started, in order.
async fn started_ticks(client: &Client, schedule_id: &str) -> Vec<i64> {
    let prefix = format!("{schedule_id}-");
    let mut ticks: Vec<i64> = client
        .list(ListFilter::all().id_prefix(prefix.clone()).limit(100_000))
        .await
        .expect("list")
        .iter()
        .map(|w| {
            let t = &w.workflow_id[prefix.len()..];
            chrono_like_parse(t).unwrap_or_else(|| panic!("`{}` names no tick", w.workflow_id))
        })
        .collect();
    ticks.sort();
    ticks
}

/// `2026-01-01T03:00:00Z` or `...00.250Z` to ms since the epoch (UTC), without a date crate.
fn chrono_like_parse(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// No tick between the first and the last is missing, none is there twice.
fn assert_consecutive(ticks: &[i64], every_ms: i64) {
    for w in ticks.windows(2) {
        assert_eq!(w[1] - w[0], every_ms, "ticks not consecutive: {ticks:?}");
    }
}

#[tokio::test]
async fn a_daily_schedule_runs_in_milliseconds_on_the_virtual_clock() {
    // 2026-01-01T00:00:00Z
    let env = TestEnv::builder()
        .register(tick)
        .start_at(1_767_225_600_000)
        .start()
        .unwrap();
    let client = env.client();
    let spec = ScheduleSpec::cron("0 3 * * *")
        .unwrap()
        .in_time_zone("Europe/Paris")
        .unwrap();
    client
        .create_schedule("daily", Schedule::new(spec), tick, 41)
        .await
        .unwrap();
    let d = wait_for(client, "daily", "three days of ticks", |d| d.started >= 3).await;
    let ids: Vec<&str> = d
        .recent
        .iter()
        .take(3)
        .map(|r| r.workflow_id.as_str())
        .collect();
    // 03:00 in Paris in winter is 02:00 UTC.
    assert_eq!(
        ids,
        [
            "daily-2026-01-01T02:00:00Z",
            "daily-2026-01-02T02:00:00Z",
            "daily-2026-01-03T02:00:00Z"
        ]
    );
    let out: u32 = client.handle(ids[0]).result().await.unwrap();
    assert_eq!(out, 42);
    // Paused: the clock runs on, nothing more starts; a trigger still does.
    client.pause_schedule("daily", "holidays").await.unwrap();
    let before = client.describe_schedule("daily").await.unwrap().started;
    env.sleep(Duration::from_secs(5 * 86_400)).await;
    assert_eq!(
        client.describe_schedule("daily").await.unwrap().started,
        before
    );
    let Triggered::Started { workflow_id } = client.trigger_schedule("daily").await.unwrap() else {
        panic!("nothing runs: a trigger starts")
    };
    assert_eq!(
        client.handle::<u32>(workflow_id).result().await.unwrap(),
        42
    );
    client.delete_schedule("daily").await.unwrap();
    assert!(matches!(
        client.describe_schedule("daily").await,
        Err(duraflow::Error::ScheduleNotFound(_))
    ));
    env.shutdown().await;
}

/// Down for a while, then back: every tick in the catch-up window is made up once, the older
/// ones are counted missed, none starts twice. The "restart" is a new store handle and a new
/// worker on the same database, after the first worker stopped.
async fn restart_makes_up_each_missed_tick_once(db: &support::TestDb) {
    const EVERY: i64 = 100;
    let store = db.reopen().await;
    let client = Client::new(&store);
    let schedule = Schedule::new(ScheduleSpec::every(Duration::from_millis(EVERY as u64)).unwrap())
        .overlap(OverlapPolicy::AllowAll)
        .catchup_window(Duration::from_millis(400));
    client
        .create_schedule("restart", schedule, tick, 1)
        .await
        .unwrap();
    let worker = Worker::new(&store).register(tick).start();
    wait_for(&client, "restart", "a few ticks", |d| d.started >= 3).await;
    worker.shutdown().await;
    drop(client);
    drop(store);
    // Down for about ten ticks: the last four fit the window.
    tokio::time::sleep(Duration::from_millis(10 * EVERY as u64)).await;

    let store = db.reopen().await;
    let client = Client::new(&store);
    let down = client.describe_schedule("restart").await.unwrap();
    let worker = Worker::new(&store).register(tick).start();
    let d = wait_for(&client, "restart", "ticks after the restart", |d| {
        d.started >= down.started + 6
    })
    .await;
    client.pause_schedule("restart", "test over").await.unwrap();
    worker.shutdown().await;
    let d = client.describe_schedule("restart").await.unwrap_or(d);
    assert!(
        d.missed >= 1,
        "the ticks outside the window are dropped: {d:#?}"
    );
    let ticks = started_ticks(&client, "restart").await;
    assert_eq!(ticks.len() as u64, d.started, "each start made once");
    // Every tick from the first to the last acted on was started or missed, and none twice.
    let span = (ticks[ticks.len() - 1] - ticks[0]) / EVERY + 1;
    assert_eq!(span as u64, d.started + d.missed, "no tick lost: {ticks:?}");
    let mut unique = ticks.clone();
    unique.dedup();
    assert_eq!(unique, ticks);
    // Before the restart and after it the ticks are consecutive; the gap is the missed ones.
    let gaps: Vec<i64> = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g != EVERY)
        .collect();
    assert_eq!(
        gaps.len(),
        1,
        "one gap, the downtime past the window: {ticks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_a_sqlite_file_makes_up_missed_ticks_once() {
    let db = support::TestDb::sqlite();
    restart_makes_up_each_missed_tick_once(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_postgres_makes_up_missed_ticks_once() {
    let Some(db) = support::TestDb::postgres("sched_restart").await else {
        return;
    };
    restart_makes_up_each_missed_tick_once(&db).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_on_memory_starts_nothing_while_the_last_run_runs() {
    #[workflow]
    pub async fn slow(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(n)
    }
    let store = Store::memory().unwrap();
    let client = Client::new(&store);
    let worker = Worker::new(&store).register(slow).start();
    client
        .create_schedule(
            "skip",
            Schedule::new(ScheduleSpec::every(Duration::from_millis(50)).unwrap()),
            slow,
            1,
        )
        .await
        .unwrap();
    let d = wait_for(&client, "skip", "skipped ticks", |d| d.skipped >= 3).await;
    assert_eq!(d.started, 1, "one run, the others skipped while it runs");
    let only = d.last_workflow_id.clone().unwrap();
    assert_eq!(
        client.describe(&only).await.unwrap().status,
        WorkflowStatus::Running
    );
    assert_eq!(
        client.trigger_schedule("skip").await.unwrap(),
        Triggered::Skipped
    );
    worker.shutdown().await;
}

#[test]
fn sched_child_worker_entry() {
    let Ok(url) = std::env::var(ENV_URL) else {
        return;
    };
    let schema = std::env::var(ENV_SCHEMA).expect("the child needs its schema");
    let rt = support::crash::two_thread_runtime();
    rt.block_on(async move {
        let store = Store::postgres_in_schema(&url, &schema)
            .await
            .expect("the child opens the store");
        let _worker = Worker::new(&store).register(tick).start();
        // Killed by the parent; ends itself if the parent died.
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_on_postgres_start_each_tick_once() {
    const EVERY: i64 = 50;
    let Some(db) = support::TestDb::postgres("sched_two_procs").await else {
        return;
    };
    let (url, schema) = db
        .pg_url_schema()
        .map(|(u, s)| (u.to_string(), s.to_string()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|k| {
            support::crash::child_command(
                dir.path(),
                &format!("child-{k}"),
                "sched_child_worker_entry",
            )
            .env(ENV_URL, &url)
            .env(ENV_SCHEMA, &schema)
            .spawn()
            .expect("spawn a child worker")
        })
        .collect();
    let client = Client::new(&db.store);
    client
        .create_schedule(
            "pair",
            Schedule::new(ScheduleSpec::every(Duration::from_millis(EVERY as u64)).unwrap())
                .overlap(OverlapPolicy::AllowAll),
            tick,
            7,
        )
        .await
        .unwrap();
    let d = wait_for(&client, "pair", "40 ticks", |d| d.started >= 40).await;
    client.pause_schedule("pair", "test over").await.unwrap();
    let d = client.describe_schedule("pair").await.unwrap_or(d);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let ticks = started_ticks(&client, "pair").await;
    assert_eq!(
        ticks.len() as u64,
        d.started,
        "each start recorded once, each made once"
    );
    assert_consecutive(&ticks, EVERY);
    assert_eq!(d.missed, 0);
    db.cleanup().await;
}

/// Temporal's `schedule/pause` feature: created paused with a note, re-paused with another,
/// resumed with the default note, re-resumed with a custom one, paused with the default.
#[tokio::test]
async fn pause_and_resume_notes_as_temporal() {
    let store = Store::memory().unwrap();
    let client = Client::new(&store);
    let spec = ScheduleSpec::every(Duration::from_secs(60)).unwrap();
    client
        .create_schedule("notes", Schedule::new(spec).paused("initial note"), tick, 1)
        .await
        .unwrap();
    let state = async |paused: bool, note: &str| {
        let d = client.describe_schedule("notes").await.unwrap();
        assert_eq!((d.paused, d.note.as_deref()), (paused, Some(note)));
    };
    state(true, "initial note").await;
    client
        .pause_schedule("notes", "custom note1")
        .await
        .unwrap();
    state(true, "custom note1").await;
    client.resume_schedule("notes", "").await.unwrap();
    state(false, "resumed").await;
    client
        .resume_schedule("notes", "custom note2")
        .await
        .unwrap();
    state(false, "custom note2").await;
    client.pause_schedule("notes", "").await.unwrap();
    state(true, "paused").await;
    // Temporal's `schedule/duplicate_error`: the same id again is refused.
    let again = client
        .create_schedule(
            "notes",
            Schedule::new(ScheduleSpec::every(Duration::from_secs(1)).unwrap()),
            tick,
            2,
        )
        .await;
    assert!(matches!(again, Err(duraflow::Error::DuplicateScheduleId(id)) if id == "notes"));
    // Temporal's `schedule/trigger`: a paused schedule triggered twice runs twice.
    let worker = Worker::new(&store).register(tick).start();
    for _ in 0..2 {
        let Triggered::Started { workflow_id } = client.trigger_schedule("notes").await.unwrap()
        else {
            panic!("nothing runs: a trigger starts")
        };
        assert_eq!(client.handle::<u32>(workflow_id).result().await.unwrap(), 2);
        // Each trigger has its own id (its time): wait for the next millisecond.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.describe_schedule("notes").await.unwrap().started, 2);
    worker.shutdown().await;
}
