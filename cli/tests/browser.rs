//! The web UI in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver) by fantoccini. The seed scenario runs on a temporary SQLite store, the UI is served
//! on an ephemeral port, and the test checks the run's timeline (`cancellable_activity` cancelled
//! after its heartbeats), the list's filters, and that payloads are shown as text, never run.
//!
//! Needs `/usr/bin/chromedriver` and `/usr/bin/chromium` (packages `chromium-driver`, `chromium`;
//! `.ci/run` installs them). Under `CI=true` a missing chromedriver fails the test; elsewhere the
//! test is skipped with a message. The screenshot of the run's page is written to
//! `target/tmp/ui-screenshots/run-cancellation.png`.

mod support;

use duraflow::{Client, Store};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::seed::{echo_workflow, seed};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

/// The payload of the XSS check: markup that would run script if the page parsed it as HTML.
const XSS: &str = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">";

/// chromedriver, ended when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browser_available() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "{CHROMEDRIVER} or {CHROMIUM} is missing, and CI=true: the browser test must run in CI; \
         install them with `apt-get install -y chromium chromium-driver` (.ci/run does)"
    );
    eprintln!(
        "\n*** SKIPPED: the browser test needs {CHROMEDRIVER} and {CHROMIUM}; \
         `apt-get install -y chromium chromium-driver` to run it ***\n"
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_browser() -> (Driver, Browser) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1100"],
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    // chromedriver needs a moment to listen: try for up to 20 s.
    let mut last_error = String::new();
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(browser) => return (driver, browser),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot start a chromium session through chromedriver: {last_error}");
}

/// Waits until `script` (a function body returning a boolean) is true in the page.
async fn wait_until(b: &Browser, what: &str, script: &str) {
    for _ in 0..100 {
        if b.execute(script, vec![]).await.expect("execute") == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting until {what}: {script}");
}

async fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, vec![]).await.expect("execute")
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ui-screenshots")
        .join("run-cancellation.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_the_cancelled_activity_filters_and_never_runs_payloads() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::sqlite(dir.path().join("app.db")).expect("store");
    seed(&store).await;
    let client = Client::new(&store);
    // Two workflows no worker serves: they stay running (the status filter tells them apart).
    for id in ["waiting-1", "waiting-2"] {
        client
            .start_by_name("not_served", id, json!(null))
            .await
            .expect("start");
    }
    // The XSS run: markup in its id, its input and (echoed) its result. No worker runs it; the
    // history holds the input, the list the id.
    let xss_id = format!("xss-<b>bold</b>{XSS}");
    client
        .start(echo_workflow, xss_id.clone(), XSS.to_string())
        .await
        .expect("start the xss workflow");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(duraflow_cli::ui::serve(
        listener,
        client.clone(),
        duraflow_cli::ui::UiOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let (_driver, b) = start_browser().await;

    // 1. The run's page: the timeline shows cancellable_activity cancelled after its heartbeats.
    b.goto(&format!("{base}/run?id=cancellation-seed"))
        .await
        .expect("open the run");
    let row = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(
            "#timeline .tl-row[data-activity-type='cancellable_activity']",
        ))
        .await
        .expect("the timeline has a row for cancellable_activity");
    assert_eq!(
        row.attr("data-outcome").await.expect("attr").as_deref(),
        Some("cancelled")
    );
    let result = row
        .find(Locator::Css(".tl-result"))
        .await
        .expect("result line")
        .text()
        .await
        .expect("text");
    assert!(
        result.starts_with("cancelled after") && result.ends_with("1 attempt"),
        "{result}"
    );
    let at = |kind: &'static str| {
        let row = row.clone();
        async move {
            let m = row
                .find(Locator::Css(&format!(".tl-marker[data-kind='{kind}']")))
                .await
                .unwrap_or_else(|_| panic!("a `{kind}` marker on the activity's row"));
            let at: i64 = m
                .attr("data-at")
                .await
                .expect("attr")
                .expect("data-at")
                .parse()
                .expect("a time");
            (m, at)
        }
    };
    let (_, started) = at("activity_started").await;
    let (heartbeat, heartbeat_at) = at("heartbeat").await;
    let (_, cancel_requested) = at("activity_cancel_requested").await;
    let (_, cancelled) = at("activity_cancelled").await;
    assert_eq!(
        heartbeat
            .attr("data-details")
            .await
            .expect("attr")
            .as_deref(),
        Some("some details"),
        "the last heartbeat's details are on the timeline"
    );
    assert!(
        started < cancel_requested && cancel_requested <= cancelled,
        "started {started}, cancel requested {cancel_requested}, cancelled {cancelled}"
    );
    assert!(heartbeat_at <= cancelled && heartbeat_at > started);
    // The timer that led to the cancel, and run_activity after it.
    let timer = b
        .find(Locator::Css("#timeline .tl-row.kind-timer"))
        .await
        .expect("a timer row");
    assert_eq!(
        timer.attr("data-outcome").await.expect("attr").as_deref(),
        Some("fired")
    );
    let second = b
        .find(Locator::Css(
            "#timeline .tl-row[data-activity-type='run_activity']",
        ))
        .await
        .expect("run_activity's row");
    assert_eq!(
        second.attr("data-outcome").await.expect("attr").as_deref(),
        Some("completed")
    );
    assert_eq!(
        js(
            &b,
            "return document.querySelector('#run-status .badge').textContent"
        )
        .await,
        json!("completed")
    );
    let events = js(
        &b,
        "return document.querySelectorAll('#events tbody tr').length",
    )
    .await;
    assert_eq!(
        events,
        json!(client.history("cancellation-seed").await.unwrap().len())
    );
    let png = b.screenshot().await.expect("screenshot");
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).expect("screenshot dir");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot of the run's page: {}", path.display());

    // 2. The list: status counts, the status filter and the search by id.
    b.goto(&base).await.expect("open the list");
    let rows = "return [...document.querySelectorAll('#workflow-rows tr[data-workflow-id]')].map(r => r.dataset.workflowId).sort().join(',')";
    wait_until(
        &b,
        "the list shows the five workflows",
        "return document.querySelectorAll('#workflow-rows tr[data-workflow-id]').length === 5",
    )
    .await;
    assert_eq!(
        js(&b, "return document.querySelector(\"#counts [data-status-filter='running'] .n\").textContent").await,
        json!("3")
    );
    b.find(Locator::Css("#counts [data-status-filter='running']"))
        .await
        .expect("the running chip")
        .click()
        .await
        .expect("click");
    wait_until(
        &b,
        "only running workflows are listed",
        "const rows = [...document.querySelectorAll('#workflow-rows tr[data-workflow-id]')];
         return rows.length === 3 && rows.every(r => r.dataset.status === 'running');",
    )
    .await;
    assert!(location_has(&b, "status=running").await);
    b.find(Locator::Css("#filter-prefix"))
        .await
        .expect("the search box")
        .send_keys("waiting-")
        .await
        .expect("type");
    wait_until(
        &b,
        "the search by id applies",
        &format!("{rows} === 'waiting-1,waiting-2'"),
    )
    .await;
    b.find(Locator::Css("#counts [data-status-filter='completed']"))
        .await
        .expect("the completed chip")
        .click()
        .await
        .expect("click");
    wait_until(
        &b,
        "nothing matches completed + waiting-",
        "return document.querySelector('#workflow-rows tr.empty') !== null",
    )
    .await;
    // A link from the list opens the run.
    b.goto(&format!("{base}/?prefix=cancellation"))
        .await
        .expect("open the filtered list");
    wait_until(
        &b,
        "the filter from the URL applies",
        &format!("{rows} === 'cancellation-seed'"),
    )
    .await;
    b.find(Locator::Css("#workflow-rows a"))
        .await
        .expect("the run's link")
        .click()
        .await
        .expect("click");
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#timeline"))
        .await
        .expect("the run's page from the list");

    // 3. Payloads and ids are text: the markup shows literally, and nothing of it runs.
    b.goto(&base).await.expect("open the list");
    wait_until(
        &b,
        "the xss workflow is listed",
        "return [...document.querySelectorAll('#workflow-rows tr')].some(r => (r.dataset.workflowId || '').startsWith('xss-'))",
    )
    .await;
    let listed = js(
        &b,
        "return [...document.querySelectorAll('#workflow-rows a')].map(a => a.textContent)",
    )
    .await;
    assert!(
        listed.as_array().unwrap().contains(&json!(xss_id)),
        "the id is shown as text: {listed}"
    );
    b.goto(&format!("{base}/run?id={}", url_encode(&xss_id)))
        .await
        .expect("open the xss run");
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#events tbody tr"))
        .await
        .expect("the xss run's events");
    assert_eq!(
        js(&b, "return document.getElementById('run-id').textContent").await,
        json!(xss_id)
    );
    let shown = js(&b, "return document.getElementById('events').textContent").await;
    assert!(
        shown
            .as_str()
            .unwrap()
            .contains("<script>window.__xss = 1</script>"),
        "the input is shown as text: {shown}"
    );
    assert_eq!(
        js(
            &b,
            "return document.querySelectorAll('main img, main script, main b').length"
        )
        .await,
        json!(0),
        "no element was made from a payload"
    );
    assert_eq!(
        js(&b, "return window.__xss === undefined").await,
        json!(true)
    );

    b.close().await.expect("close the browser");
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}

async fn location_has(b: &Browser, part: &str) -> bool {
    b.current_url().await.expect("url").as_str().contains(part)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}
