//! The web UI's HTTP surface, over real sockets: the pages and their headers, the JSON API, clear
//! 4xx answers to bad requests (never a panic, and the server keeps serving), read-only by
//! default, and `/metrics` in Prometheus' text format.

mod support;

use duraflow::{Client, Store};
use duraflow_cli::ui::{serve, UiOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use support::seed::seed;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

async fn raw(addr: SocketAddr, request: &str) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn req(addr: SocketAddr, method: &str, path: &str) -> Reply {
    raw(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}Content-Length: 0\r\n\r\n",
            // The page sends this header with its writes (cross-site request forgery guard).
            if method == "GET" { "" } else { "x-duraflow-ui: 1\r\n" }
        ),
    )
    .await
}

async fn start(
    client: Client,
    options: UiOptions,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, client, options, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_api_and_bad_requests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::sqlite(dir.path().join("app.db")).expect("store");
    seed(&store).await;
    let client = Client::new(&store);
    client
        .start_by_name("not_served", "waiting-1", json!(1))
        .await
        .unwrap();
    let (addr, _stop) = start(client.clone(), UiOptions::default()).await;

    let page = req(addr, "GET", "/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("content-type: text/html"));
    assert!(
        page.headers
            .contains("content-security-policy: default-src 'self'"),
        "{}",
        page.headers
    );
    assert!(
        page.body.contains("/assets/app.js") && !page.body.contains("http"),
        "everything is served from here"
    );
    assert_eq!(req(addr, "GET", "/run?id=anything").await.status, 200);
    let js = req(addr, "GET", "/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.body.contains("textContent") && !js.body.contains("innerHTML"),
        "payloads go in as text"
    );
    assert_eq!(req(addr, "GET", "/assets/style.css").await.status, 200);

    let list = req(addr, "GET", "/api/workflows?status=running").await;
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(
        list["counts"],
        json!({"running": 1, "completed": 2, "failed": 0, "cancelled": 0})
    );
    assert_eq!(list["workflows"][0]["workflow_id"], "waiting-1");
    assert_eq!(list["matching"], 1);
    let page2 = req(addr, "GET", "/api/workflows?limit=1&offset=1&prefix=&type=")
        .await
        .json();
    assert_eq!(page2["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(page2["matching"], 3);
    let d = req(addr, "GET", "/api/workflow?id=cancellation-seed")
        .await
        .json();
    assert_eq!(d["status"], "completed");
    let h = req(addr, "GET", "/api/history?id=cancellation-seed")
        .await
        .json();
    assert_eq!(h, client.history_json("cancellation-seed").await.unwrap());

    // Bad requests: a 4xx with a message that says what to send.
    for (path, status, says) in [
        (
            "/api/workflows?status=sleeping",
            400,
            "`status` must be running",
        ),
        (
            "/api/workflows?limit=lots",
            400,
            "`limit` must be a whole number",
        ),
        (
            "/api/workflows?offset=-1",
            400,
            "`offset` must be a whole number",
        ),
        (
            "/api/workflows?after=yesterday",
            400,
            "2026-12-01T14:00:00Z",
        ),
        ("/api/workflow", 400, "?id=WORKFLOW_ID"),
        ("/api/workflow?id=", 400, "?id=WORKFLOW_ID"),
        ("/api/workflow?id=nope", 404, "no workflow with id `nope`"),
        ("/api/history?id=nope", 404, "no workflow with id `nope`"),
        ("/api/history?id=%ZZ%", 404, "no workflow with id"),
    ] {
        let r = req(addr, "GET", path).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.error().contains(says), "{path}: {}", r.body);
    }
    let r = req(addr, "POST", "/api/cancel?id=waiting-1").await;
    assert_eq!(r.status, 403, "read-only by default");
    assert!(r.error().contains("--allow-writes"));
    assert!(!client.describe("waiting-1").await.unwrap().cancel_requested);
    assert_eq!(
        req(addr, "GET", "/api/cancel?id=waiting-1").await.status,
        405
    );
    let r = req(addr, "GET", "/no/such/page").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("/run?id="));
    let r = req(addr, "GET", "/metrics").await;
    assert_eq!(r.status, 404, "no /metrics unless asked");
    assert!(r.error().contains("--metrics"));
    // Not HTTP at all, then a request line too long: answered, and the server goes on.
    let r = raw(addr, "HELLO THERE\r\n\r\n").await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    let long = format!(
        "GET /api/workflow?id={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "x".repeat(200_000)
    );
    let r = raw(addr, &long).await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert_eq!(
        req(addr, "GET", "/api/workflow?id=cancellation-seed")
            .await
            .status,
        200
    );

    // With writes allowed, cancel works, and says so when there is nothing to cancel.
    let (rw, _stop_rw) = start(client.clone(), UiOptions::default().allow_writes(true)).await;
    assert_eq!(
        req(rw, "GET", "/api/config").await.json()["allow_writes"],
        true
    );
    let r = req(rw, "POST", "/api/cancel?id=waiting-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(client.describe("waiting-1").await.unwrap().cancel_requested);
    let r = req(rw, "POST", "/api/cancel?id=echo-1").await;
    assert_eq!(r.status, 409);
    assert!(r.error().contains("already ended"));
    assert_eq!(req(rw, "POST", "/api/cancel?id=nope").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_writes_and_foreign_host_names_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::sqlite(dir.path().join("app.db")).expect("store");
    let client = Client::new(&store);
    client
        .start_by_name("not_served", "waiting-1", json!(1))
        .await
        .unwrap();
    let (rw, _stop) = start(
        client.clone(),
        UiOptions::default()
            .allow_writes(true)
            .allow_host("ops.example"),
    )
    .await;
    let post = |extra: &str| {
        format!(
            "POST /api/cancel?id=waiting-1 HTTP/1.1\r\nHost: {rw}\r\nConnection: close\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    // A form or `no-cors` fetch from another site can send neither the header nor a same origin.
    let r = raw(rw, &post("")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.error().contains("x-duraflow-ui"), "{}", r.body);
    let r = raw(
        rw,
        &post("x-duraflow-ui: 1\r\nOrigin: http://evil.example\r\n"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.error().contains("evil.example"), "{}", r.body);
    assert!(
        !client.describe("waiting-1").await.unwrap().cancel_requested,
        "nothing was cancelled by a refused request"
    );
    // A name that resolves here by DNS rebinding reads nothing, even with GET.
    let r = raw(
        rw,
        "GET /api/workflows HTTP/1.1\r\nHost: evil.example:8233\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.error().contains("--allow-host"), "{}", r.body);
    // A name allowed by the operator, and the page's own origin, work.
    let r = raw(
        rw,
        "GET /api/workflows HTTP/1.1\r\nHost: ops.example:8233\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw(
        rw,
        &post(&format!("x-duraflow-ui: 1\r\nOrigin: http://{rw}\r\n")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(client.describe("waiting-1").await.unwrap().cancel_requested);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_format() {
    // The only test of this binary that installs the process's metrics recorder.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install the recorder");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::sqlite(dir.path().join("app.db")).expect("store");
    seed(&store).await; // a worker in this process runs the seed scenario
    let (addr, _stop) = start(Client::new(&store), UiOptions::default().prometheus(handle)).await;
    let r = req(addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .contains("content-type: text/plain; version=0.0.4"));
    for line in [
        "duraflow_workflows{status=\"completed\"} 2",
        "duraflow_workflows{status=\"running\"} 0",
        // (other tests of this binary run workers too: their attempts count as well)
        "duraflow_activity_attempts_total{outcome=\"cancelled\"}",
        "duraflow_activity_attempts_total{outcome=\"completed\"}",
        "duraflow_workflow_tasks_total{outcome=\"committed\"}",
        "duraflow_store_commit_seconds",
    ] {
        assert!(r.body.contains(line), "`{line}` in:\n{}", r.body);
    }
}

/// `POST /api/signal?id=..&name=..` with the signal as a JSON body: refused while read-only; with
/// writes allowed it records the signal once, and answers bad requests (no name, a body that is
/// not JSON, an unknown workflow, an ended one, a signal the workflow's type does not declare)
/// with a clear 4xx, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::sqlite(dir.path().join("app.db")).expect("store");
    seed(&store).await;
    // The registry knows `echo_workflow` (no signals); `not_served` is a type it does not know.
    let client = Client::new(&store)
        .with_registry(duraflow::Registry::new().register(support::seed::echo_workflow));
    Client::new(&store)
        .start_by_name("not_served", "waiting-s", json!(1))
        .await
        .unwrap();
    client
        .start_by_name("echo_workflow", "echo-waiting", json!("hi"))
        .await
        .unwrap();
    let post = |addr: SocketAddr, path: &str, body: &str| {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nx-duraflow-ui: 1\r\nOrigin: http://{addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        async move { raw(addr, &request).await }
    };
    let signals = |h: Vec<duraflow::HistoryEvent>| -> Vec<(String, Value)> {
        h.into_iter()
            .filter_map(|e| match e.kind {
                duraflow::EventKind::SignalReceived {
                    signal_name, input, ..
                } => Some((signal_name, input)),
                _ => None,
            })
            .collect()
    };

    let (ro, _stop_ro) = start(client.clone(), UiOptions::default()).await;
    let r = post(
        ro,
        "/api/signal?id=waiting-s&name=Approve",
        r#"{"by":"ann"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "read-only by default: {}", r.body);
    assert!(r.error().contains("--allow-writes"));
    assert!(signals(client.history("waiting-s").await.unwrap()).is_empty());

    let (rw, _stop_rw) = start(client.clone(), UiOptions::default().allow_writes(true)).await;
    let r = post(
        rw,
        "/api/signal?id=waiting-s&name=Approve",
        r#"{"by":"ann"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "recorded": true }));
    assert_eq!(
        signals(client.history("waiting-s").await.unwrap()),
        vec![("Approve".to_string(), json!({ "by": "ann" }))]
    );
    // An empty body is a signal without input (JSON null).
    let r = post(rw, "/api/signal?id=waiting-s&name=Ping", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (path, body, status, says) in [
        ("/api/signal?id=waiting-s", "{}", 400, "which signal"),
        ("/api/signal?name=Approve", "{}", 400, "which workflow"),
        (
            "/api/signal?id=waiting-s&name=Approve",
            "{not json",
            400,
            "not JSON",
        ),
        (
            "/api/signal?id=nope&name=Approve",
            "{}",
            404,
            "no workflow with id `nope`",
        ),
        (
            "/api/signal?id=cancellation-seed&name=Approve",
            "{}",
            409,
            "cancellation-seed",
        ),
        (
            "/api/signal?id=echo-waiting&name=Approve",
            "{}",
            400,
            "Approve",
        ),
    ] {
        let r = post(rw, path, body).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.error().contains(says), "{path}: {}", r.body);
    }
    assert_eq!(
        signals(client.history("waiting-s").await.unwrap()).len(),
        2,
        "the refused requests wrote nothing"
    );
    assert!(signals(client.history("echo-waiting").await.unwrap()).is_empty());
    assert_eq!(
        req(rw, "GET", "/api/signal?id=waiting-s&name=Approve")
            .await
            .status,
        405
    );
}
