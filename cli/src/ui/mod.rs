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
use std::sync::Arc;

/// What the UI allows.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UiOptions {
    /// Whether the page may cancel workflows (and send signals). Default: read-only.
    pub allow_writes: bool,
}

impl UiOptions {
    /// Read-only (the default).
    pub fn read_only() -> Self {
        Self::default()
    }

    /// Allows cancelling workflows from the page.
    pub fn allow_writes(mut self, allow: bool) -> Self {
        self.allow_writes = allow;
        self
    }
}

pub(crate) struct UiState {
    pub(crate) client: Client,
    pub(crate) options: UiOptions,
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The UI's routes: the pages (`/`, `/run?id=..`), their script and style, and the JSON API under
/// `/api/` (`workflows`, `workflow?id=`, `history?id=`, `config`, and `POST cancel?id=` when
/// writes are allowed).
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
        .fallback(not_found)
        .with_state(state)
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
                ", and can cancel workflows"
            } else {
                ""
            }
        );
    }
    println!(
        "duraflow ui: http://{addr}/ ({}); Ctrl-C stops it",
        if args.allow_writes {
            "cancel allowed"
        } else {
            "read-only; --allow-writes allows cancel"
        }
    );
    let options = UiOptions::default().allow_writes(args.allow_writes);
    serve(listener, client, options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| CliError::new(format!("the UI server stopped: {e}")))
}
