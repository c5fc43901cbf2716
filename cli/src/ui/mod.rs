//! The web UI: a page of workflows (status counts, filters, search by id, refreshed every two
//! seconds) and a page per run (a timeline of its activities and timers, and its events), served
//! by axum from files embedded in the binary. Read-only unless [`UiOptions::allow_writes`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = duraflow::Store::sqlite("app.db")?;
//! let client = duraflow::Client::new(&store);
//! let app = duraflow_cli::ui::router(client, duraflow_cli::ui::UiOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8233").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod api;

use crate::args::UiArgs;
use crate::error::CliError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use duraflow::Client;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;

/// What the UI allows and serves.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UiOptions {
    /// Whether the page may cancel workflows (and send signals). Default: read-only.
    pub allow_writes: bool,
    /// Serves `/metrics` in Prometheus' text format from this recorder's handle: the metrics of
    /// this process (a worker's, when the UI is served from inside a worker's process), and the
    /// gauge `duraflow_workflows{status}` read from the store at each scrape. Default: no
    /// `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Host names (besides IP addresses and `localhost`) the UI answers to. A request whose `Host`
    /// is another name is refused: a web page on another site that makes its own name resolve to
    /// this address (DNS rebinding) cannot read the UI. Default: none.
    pub allowed_hosts: Vec<String>,
}

impl UiOptions {
    /// Read-only (the default).
    pub fn read_only() -> Self {
        Self::default()
    }

    /// Allows cancelling workflows and sending signals from the page.
    pub fn allow_writes(mut self, allow: bool) -> Self {
        self.allow_writes = allow;
        self
    }

    /// Answers requests addressed to the host name `host` too (the UI behind a name of yours).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Serves `/metrics` from `handle`, the handle of the Prometheus recorder installed in this
    /// process:
    ///
    /// ```no_run
    /// let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
    ///     .install_recorder()
    ///     .expect("no other metrics recorder in this process");
    /// let options = duraflow_cli::ui::UiOptions::default().prometheus(handle);
    /// ```
    pub fn prometheus(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}

/// The gauge `/metrics` sets from the store at each scrape: workflows by `status`.
pub const WORKFLOWS_GAUGE: &str = "duraflow_workflows";

pub(crate) struct UiState {
    pub(crate) client: Client,
    pub(crate) options: UiOptions,
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The UI's routes: the pages (`/`, `/run?id=..`), their script and style, and the JSON API under
/// `/api/` (`workflows`, `workflow?id=`, `history?id=`, `config`, and `POST cancel?id=` when
/// writes are allowed), and `/metrics` when [`UiOptions::metrics`] is set.
pub fn router(client: Client, options: UiOptions) -> Router {
    let state = Arc::new(UiState { client, options });
    Router::new()
        .route("/", get(page))
        .route("/run", get(page))
        .route("/assets/app.js", get(script))
        .route("/assets/style.css", get(style))
        .route("/api/config", get(api::config))
        .route("/api/workflows", get(api::workflows))
        .route("/api/workflow", get(api::workflow))
        .route("/api/history", get(api::history))
        .route("/api/cancel", post(api::cancel))
        .route("/api/signal", post(api::signal))
        .route("/metrics", get(api::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The header the page sends with every write. A page of another site cannot send it without the
/// browser asking this server first (a CORS preflight, which is never granted), so a write cannot
/// be forged from another site (CSRF).
pub const WRITE_HEADER: &str = "x-duraflow-ui";

/// Refuses requests addressed to a host name the UI does not answer to (DNS rebinding), and writes
/// that do not come from the page itself (cross-site request forgery).
async fn guard(
    axum::extract::State(state): axum::extract::State<Arc<UiState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host.is_empty() && !host_allowed(host, &state.options.allowed_hosts) {
        return refuse(format!(
            "this UI does not answer to the host name in `Host: {host}` (a guard against DNS \
             rebinding); open it by IP address or localhost, or allow the name with --allow-host"
        ));
    }
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
        if headers.get(WRITE_HEADER).is_none() {
            return refuse(format!(
                "a write must carry the `{WRITE_HEADER}` header (the UI's page sends it); this \
                 guards against forged requests from other sites"
            ));
        }
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if let Some(origin) = origin {
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return refuse(format!(
                    "a write from the page of another site (`Origin: {origin}`) is refused"
                ));
            }
        }
    }
    next.run(req).await
}

fn refuse(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// Whether `host` (a `Host` header: a name or address, with an optional port) is one the UI
/// answers to: an IP address, `localhost`, or a name in `allowed`.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || allowed.contains(&name)
}

async fn page() -> Response {
    static_file("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    static_file("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> Response {
    static_file("text/css; charset=utf-8", STYLE_CSS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Everything the page needs is served from here; nothing inline, nothing elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no such page; the UI is at / (workflows) and /run?id=WORKFLOW_ID (a run)\n",
    )
        .into_response()
}

/// Serves the UI on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    client: Client,
    options: UiOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(client, options))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `duraflow ui`: binds, says where, serves until Ctrl-C.
pub(crate) async fn serve_cli(client: Client, args: &UiArgs) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(args.bind).await.map_err(|e| {
        CliError::new(format!(
            "cannot serve on {}: {e}; choose another address with --bind, e.g. --bind 127.0.0.1:8234",
            args.bind
        ))
    })?;
    let addr = listener.local_addr().unwrap_or(args.bind);
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: serving on {addr}, not a loopback address: anyone who can reach it reads every \
             workflow's inputs and results{}",
            if args.allow_writes {
                ", and can cancel and signal workflows"
            } else {
                ""
            }
        );
    }
    println!(
        "duraflow ui: http://{addr}/ ({}); Ctrl-C stops it",
        if args.allow_writes {
            "cancel and signal allowed"
        } else {
            "read-only; --allow-writes allows cancel and signal"
        }
    );
    let mut options = UiOptions::default().allow_writes(args.allow_writes);
    for host in &args.allow_host {
        options = options.allow_host(host.clone());
    }
    if args.metrics {
        let handle = PrometheusBuilder::new().install_recorder().map_err(|e| {
            CliError::new(format!(
                "cannot serve /metrics: {e}; run without --metrics, or serve the UI from a process \
                 without a metrics recorder"
            ))
        })?;
        options = options.prometheus(handle);
        println!("metrics: http://{addr}/metrics (Prometheus text format)");
    }
    serve(listener, client, options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| CliError::new(format!("the UI server stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn hosts_the_ui_answers_to() {
        let mine = vec!["ops.example".to_string()];
        for ok in [
            "127.0.0.1:8233",
            "127.0.0.1",
            "[::1]:8233",
            "localhost:8233",
            "LOCALHOST",
            "10.0.0.7:80",
            "ops.example:8233",
        ] {
            assert!(host_allowed(ok, &mine), "{ok}");
        }
        for bad in [
            "evil.example:8233",
            "evil.example",
            "localhost.evil.example",
            "[evil]:80",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(bad, &mine), "{bad}");
        }
    }
}
