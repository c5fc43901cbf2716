//! `duraflow schedule create|list|describe|pause|resume|trigger|delete`, run as a user runs it on a
//! SQLite file and on Postgres: what each prints, what it changes (read back through the client),
//! its errors (one line with the fix), and its help (compared with the snapshots in
//! `tests/snapshots/`; `UPDATE_SNAPSHOTS=1` rewrites them).

use duraflow::{Client, Store};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn duraflow<S: AsRef<str>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duraflow"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("DURAFLOW_POSTGRES_URL")
        .env_remove("DURAFLOW_POSTGRES_SCHEMA")
        .output()
        .expect("run duraflow")
}

fn line<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref())
        .collect::<Vec<_>>()
        .join(" ")
}

fn ok<S: AsRef<str>>(args: &[S]) -> String {
    let out = duraflow(args);
    assert!(
        out.status.success(),
        "`duraflow {}` failed: {}",
        line(args),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok_json<S: AsRef<str>>(args: &[S]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A command that must fail with `code` and one line on stderr containing each of `says`.
fn fails<S: AsRef<str>>(args: &[S], code: i32, says: &[&str]) {
    let out = duraflow(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "`duraflow {}`: {err}",
        line(args)
    );
    assert!(!err.contains("panicked"), "a panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for s in says {
        assert!(err.contains(s), "`{s}` in: {err}");
    }
}

#[test]
fn schedule_help_matches_the_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    for sub in [
        "", "create", "list", "describe", "pause", "resume", "trigger", "delete",
    ] {
        let args: Vec<&str> = ["schedule", sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = ok(&args);
        let name = if sub.is_empty() {
            "help-schedule.txt".to_string()
        } else {
            format!("help-schedule-{sub}.txt")
        };
        let file = dir.join(name);
        if update {
            std::fs::write(&file, &help).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "no snapshot {}; run with UPDATE_SNAPSHOTS=1 and review it",
                file.display()
            )
        });
        assert_eq!(
            help,
            expected,
            "`duraflow {}` changed; UPDATE_SNAPSHOTS=1 and review",
            line(&args)
        );
    }
}

/// The whole life of a schedule through the command line, on `store` (opened with `store_args`).
async fn schedule_commands(store: &Store, store_args: &[&str]) {
    let run = |rest: &[&str]| -> Vec<String> {
        store_args
            .iter()
            .chain(rest.iter())
            .map(|s| s.to_string())
            .collect()
    };

    let v = run(&[
        "schedule",
        "create",
        "nightly",
        "report",
        "\"eu\"",
        "--cron",
        "0 3 * * *",
        "--time-zone",
        "Europe/Paris",
        "--overlap",
        "buffer-one",
        "--catchup-window",
        "6h",
    ]);
    let out = ok(&v);
    assert!(out.contains("Created schedule `nightly`"), "{out}");
    assert!(out.contains("cron `0 3 * * *` (Europe/Paris)"), "{out}");
    let client = Client::new(store);
    let d = client.describe_schedule("nightly").await.unwrap();
    assert_eq!(d.workflow_type, "report");
    assert_eq!(d.input, serde_json::json!("eu"));
    assert_eq!(d.overlap, duraflow::OverlapPolicy::BufferOne);
    assert_eq!(d.catchup_window_ms, 6 * 3_600_000);
    assert!(!d.paused);

    let v = run(&[
        "schedule", "create", "sync", "sync_all", "--every", "15m", "--paused", "not yet",
    ]);
    ok(&v);
    let v = run(&["schedule", "list"]);
    let out = ok(&v);
    assert!(
        out.contains("nightly") && out.contains("sync") && out.contains("paused"),
        "{out}"
    );
    let v = run(&["--json", "schedule", "list"]);
    let listed = ok_json(&v);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    let v = run(&["schedule", "describe", "nightly"]);
    let out = ok(&v);
    assert!(out.contains("buffer_one") && out.contains("Next"), "{out}");
    let v = run(&["--json", "schedule", "describe", "nightly"]);
    let d = ok_json(&v);
    assert_eq!(d["upcoming_ms"].as_array().map(Vec::len), Some(5));

    let v = run(&["schedule", "pause", "nightly", "--note", "migration"]);
    ok(&v);
    let d = client.describe_schedule("nightly").await.unwrap();
    assert!(d.paused);
    assert_eq!(d.note.as_deref(), Some("migration"));
    let v = run(&["schedule", "resume", "nightly"]);
    ok(&v);
    assert!(!client.describe_schedule("nightly").await.unwrap().paused);

    // A trigger starts the workflow now (no worker runs it here: it waits, running).
    let v = run(&["--json", "schedule", "trigger", "sync"]);
    let t = ok_json(&v);
    assert_eq!(t["outcome"], "started");
    let id = t["workflow_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sync-"), "{id}");
    assert_eq!(
        client.describe(&id).await.unwrap().status,
        duraflow::WorkflowStatus::Running
    );
    // Skip (the default) while it runs: nothing more starts.
    let v = run(&["schedule", "trigger", "sync"]);
    assert!(ok(&v).contains("nothing started"));

    let v = run(&["schedule", "delete", "sync"]);
    ok(&v);
    assert!(client.describe_schedule("sync").await.is_err());
    let v = run(&["schedule", "describe", "sync"]);
    fails(
        &v,
        1,
        &["no schedule with id `sync`", "duraflow schedule list"],
    );
    let v = run(&["schedule", "create", "nightly", "report", "--every", "1h"]);
    fails(&v, 1, &["already exists"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_commands_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::sqlite(&path).unwrap();
    let db = path.to_str().unwrap().to_string();
    schedule_commands(&store, &["--db", &db]).await;

    // Bad input: a usage error (exit 2) that says what to write.
    fails(
        &[
            "--db",
            &db,
            "schedule",
            "create",
            "x",
            "w",
            "--cron",
            "every day",
        ],
        2,
        &["five fields"],
    );
    fails(
        &[
            "--db",
            &db,
            "schedule",
            "create",
            "x",
            "w",
            "--cron",
            "0 3 * * *",
            "--time-zone",
            "Mars/Olympus",
        ],
        2,
        &["IANA"],
    );
    fails(
        &[
            "--db", &db, "schedule", "create", "x", "w", "--every", "soon",
        ],
        2,
        &["--every soon", "15m"],
    );
    fails(
        &["--db", &db, "schedule", "create", "x", "w"],
        2,
        &["--cron"],
    );
    fails(
        &[
            "--db", &db, "schedule", "create", "x", "w", "--every", "1h", "{oops",
        ],
        2,
        &["not JSON"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_commands_on_postgres() {
    let url = match std::env::var("DURAFLOW_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("CI").is_ok() => panic!("CI needs DURAFLOW_TEST_PG_URL"),
        Err(_) => {
            eprintln!("SKIPPED: set DURAFLOW_TEST_PG_URL to run the CLI on Postgres");
            return;
        }
    };
    let schema = format!("cli_sched_{}", std::process::id());
    let store = Store::postgres_in_schema(&url, &schema)
        .await
        .expect("postgres store");
    schedule_commands(&store, &["--postgres", &url, "--postgres-schema", &schema]).await;
    drop(store);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
}
