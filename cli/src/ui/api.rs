//! The UI's JSON API. Every failure is a JSON `{"error": "..."}` with a 4xx or 5xx status.

use super::UiState;
use crate::commands::parse_time;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use duraflow::{ListFilter, WorkflowStatus};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<UiState>>;

/// The most workflows one page of the list returns.
const MAX_LIMIT: usize = 500;

/// A failed request: its status and a message that says what to send instead.
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

fn store_error(e: duraflow::Error) -> ApiError {
    match e {
        duraflow::Error::WorkflowNotFound(id) => error(
            StatusCode::NOT_FOUND,
            format!("no workflow with id `{id}` in this store"),
        ),
        e => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::with_causes(&e),
        ),
    }
}

pub(super) async fn config(State(state): Shared) -> Response {
    Json(json!({ "allow_writes": state.options.allow_writes, "signals": true })).into_response()
}

/// `GET /api/workflows?status=&type=&prefix=&after=&before=&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    #[serde(rename = "type")]
    workflow_type: Option<String>,
    prefix: Option<String>,
    after: Option<String>,
    before: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_count(name: &str, s: &Option<String>, default: usize) -> Result<usize, ApiError> {
    match non_empty(s) {
        None => Ok(default),
        Some(t) => t.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("`{name}` must be a whole number, got `{t}`"),
            )
        }),
    }
}

pub(super) async fn workflows(
    State(state): Shared,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let limit = parse_count("limit", &p.limit, 50)?.clamp(1, MAX_LIMIT);
    let offset = parse_count("offset", &p.offset, 0)?;
    let mut filter = ListFilter::all();
    if let Some(t) = non_empty(&p.workflow_type) {
        filter = filter.workflow_type(t);
    }
    if let Some(prefix) = non_empty(&p.prefix) {
        filter = filter.id_prefix(prefix);
    }
    for (name, value, after) in [("after", &p.after, true), ("before", &p.before, false)] {
        if let Some(t) = non_empty(value) {
            let ms = match t.parse::<i64>() {
                Ok(ms) => ms,
                Err(_) => {
                    parse_time(name, t).map_err(|e| error(StatusCode::BAD_REQUEST, e.message()))?
                }
            };
            filter = if after {
                filter.started_after_ms(ms)
            } else {
                filter.started_before_ms(ms)
            };
        }
    }
    let counts = state
        .client
        .count(filter.clone())
        .await
        .map_err(store_error)?;
    let status = match non_empty(&p.status) {
        None => None,
        Some("running") => Some(WorkflowStatus::Running),
        Some("completed") => Some(WorkflowStatus::Completed),
        Some("failed") => Some(WorkflowStatus::Failed),
        Some("cancelled") => Some(WorkflowStatus::Cancelled),
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("`status` must be running, completed, failed or cancelled, got `{other}`"),
            ))
        }
    };
    if let Some(s) = status {
        filter = filter.status(s);
    }
    let matching = match status {
        None => counts.total(),
        Some(WorkflowStatus::Running) => counts.running,
        Some(WorkflowStatus::Completed) => counts.completed,
        Some(WorkflowStatus::Failed) => counts.failed,
        Some(_) => counts.cancelled,
    };
    let workflows = state
        .client
        .list(filter.limit(limit).offset(offset))
        .await
        .map_err(store_error)?;
    Ok(Json(json!({
        "workflows": workflows,
        "counts": counts,
        "matching": matching,
        "limit": limit,
        "offset": offset,
    }))
    .into_response())
}

/// `?id=WORKFLOW_ID`.
#[derive(Debug, Deserialize)]
pub(super) struct IdParam {
    id: Option<String>,
}

fn id_of(p: &IdParam) -> Result<&str, ApiError> {
    non_empty(&p.id).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "say which workflow: `?id=WORKFLOW_ID`",
        )
    })
}

pub(super) async fn workflow(
    State(state): Shared,
    Query(p): Query<IdParam>,
) -> Result<Response, ApiError> {
    let d = state
        .client
        .describe(id_of(&p)?)
        .await
        .map_err(store_error)?;
    Ok(Json(d).into_response())
}

pub(super) async fn history(
    State(state): Shared,
    Query(p): Query<IdParam>,
) -> Result<Response, ApiError> {
    let h = state
        .client
        .history_json(id_of(&p)?)
        .await
        .map_err(store_error)?;
    Ok(Json(h).into_response())
}

/// `POST /api/cancel?id=..`: only when the UI was started with writes allowed.
pub(super) async fn cancel(
    State(state): Shared,
    Query(p): Query<IdParam>,
) -> Result<Response, ApiError> {
    if !state.options.allow_writes {
        return Err(error(
            StatusCode::FORBIDDEN,
            "this UI is read-only; start it with `duraflow ui --allow-writes` to cancel from the page",
        ));
    }
    let id = id_of(&p)?;
    if state.client.cancel(id).await.map_err(store_error)? {
        Ok(Json(json!({ "cancel_requested": true })).into_response())
    } else {
        Err(error(
            StatusCode::CONFLICT,
            format!("workflow `{id}` has already ended; there is nothing to cancel"),
        ))
    }
}

/// `GET /metrics`: the Prometheus text format, with the workflows by status read now.
pub(super) async fn metrics(State(state): Shared) -> Result<Response, ApiError> {
    let Some(handle) = &state.options.metrics else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "metrics are off; start the UI with `duraflow ui --metrics`",
        ));
    };
    let counts = state
        .client
        .count(ListFilter::all())
        .await
        .map_err(store_error)?;
    for (status, n) in [
        ("running", counts.running),
        ("completed", counts.completed),
        ("failed", counts.failed),
        ("cancelled", counts.cancelled),
    ] {
        metrics::gauge!(super::WORKFLOWS_GAUGE, "status" => status).set(n as f64);
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

/// `?id=WORKFLOW_ID&name=SIGNAL`, the input as the JSON body.
#[derive(Debug, Deserialize)]
pub(super) struct SignalParams {
    id: Option<String>,
    name: Option<String>,
}

/// `POST /api/signal?id=..&name=..` with the input as JSON: only when writes are allowed.
pub(super) async fn signal(
    State(state): Shared,
    Query(p): Query<SignalParams>,
    body: String,
) -> Result<Response, ApiError> {
    if !state.options.allow_writes {
        return Err(error(
            StatusCode::FORBIDDEN,
            "this UI is read-only; start it with `duraflow ui --allow-writes` to signal from the page",
        ));
    }
    let id = non_empty(&p.id).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "say which workflow: `?id=WORKFLOW_ID&name=SIGNAL`",
        )
    })?;
    let name = non_empty(&p.name).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "say which signal: `?id=WORKFLOW_ID&name=SIGNAL`",
        )
    })?;
    let input: serde_json::Value = if body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            )
        })?
    };
    match state.client.signal_by_name(id, name, input, None).await {
        Ok(recorded) => Ok(Json(json!({ "recorded": recorded })).into_response()),
        Err(duraflow::Error::WorkflowNotFound(id)) => Err(error(
            StatusCode::NOT_FOUND,
            format!("no workflow with id `{id}` in this store"),
        )),
        Err(e @ duraflow::Error::WorkflowClosed { .. }) => {
            Err(error(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e @ duraflow::Error::UnknownMessage { .. }) => {
            Err(error(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e) => Err(store_error(e)),
    }
}
