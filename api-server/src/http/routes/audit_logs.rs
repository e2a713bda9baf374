//! `GET /v1/audit-logs` (filters, cursor) and `GET /v1/audit-logs/export` (CSV for a range).

use super::{caller, json_response, parse_query, raw_query, respond, v1};
use crate::app::AppState;
use crate::auth::Principal;
use crate::csv;
use crate::http::error::ApiError;
use crate::pagination::{Cursor, page};
use crate::store::audit::{self, Filter as AuditFilter};
use crate::store::{Store, StoreError, workspaces};
use bytes::Bytes;
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tooken_contract::audit::{AuditEvent, AuditEventList, ExportAuditParams, ListAuditParams};
use tooken_contract::{ErrorBody, Scope};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: u32 = 500;
/// The longest range one export may cover.
const MAX_EXPORT_RANGE: SignedDuration = SignedDuration::from_hours(24 * 366);

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let list = v1()
        .and(warp::path!("audit-logs"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(list_audit_logs)
        .map(respond)
        .boxed();
    let export = v1()
        .and(warp::path!("audit-logs" / "export"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(export_audit_logs)
        .map(respond)
        .boxed();
    export.or(list).unify().boxed()
}

#[utoipa::path(
    get, path = "/v1/audit-logs", tag = "audit",
    params(ListAuditParams),
    responses(
        (status = 200, body = AuditEventList),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Needs `audit:read`; people need the Owner or Admin role", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit_logs(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.require(Scope::AuditRead)?;
    let params: ListAuditParams = parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let filter = AuditFilter {
        kind: params.kind.as_deref(),
        actor: params.actor.as_deref(),
        target: params.target.as_deref(),
        since: params.since,
        until: params.until,
    };
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut rows = audit::list(
        &mut conn,
        &principal.workspace_id,
        &filter,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |event| &event.id);
    Ok(json_response(
        StatusCode::OK,
        &AuditEventList {
            data: rows,
            next_cursor,
        },
    ))
}

pub const CSV_HEADER: [&str; 10] = [
    "time",
    "time_utc",
    "type",
    "actor_kind",
    "actor_id",
    "actor",
    "target_type",
    "target_id",
    "request_id",
    "details",
];

fn csv_row(event: &AuditEvent, tz: &TimeZone) -> String {
    let local = event
        .created_at
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S%:z")
        .to_string();
    let actor_kind = serde_json::to_value(event.actor.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    csv::line(&[
        local,
        event.created_at.to_string(),
        event.kind.clone(),
        actor_kind,
        event.actor.id.clone().unwrap_or_default(),
        event.actor.label.clone().unwrap_or_default(),
        event.target_type.clone(),
        event.target_id.clone(),
        event.request_id.clone().unwrap_or_default(),
        event.data.to_string(),
    ])
}

#[utoipa::path(
    get, path = "/v1/audit-logs/export", tag = "audit",
    params(ExportAuditParams),
    responses(
        (status = 200, description = "CSV (UTF-8 with BOM), streamed; times in the workspace time zone with offset", content_type = "text/csv"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn export_audit_logs(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.require(Scope::AuditRead)?;
    let params: ExportAuditParams = parse_query(&query)?;
    if params.until <= params.since {
        return Err(ApiError::validation("until", "until must be after since"));
    }
    if params.until.duration_since(params.since) > MAX_EXPORT_RANGE {
        return Err(ApiError::validation(
            "until",
            "an export covers at most 366 days",
        ));
    }
    let workspace = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        workspaces::get(&mut conn, &principal.workspace_id)
            .await?
            .ok_or(ApiError::NotFound("workspace"))?
    };
    let tz = TimeZone::get(&workspace.timezone).unwrap_or(TimeZone::UTC);
    // A producer task fills a small channel, so a slow reader holds back the database reads
    // and the log is never buffered whole.
    let filename = format!(
        "tooken-audit-{}-{}-{}.csv",
        workspace.slug,
        params.since.strftime("%Y%m%d"),
        params.until.strftime("%Y%m%d")
    );
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(produce_csv(
        state.store.clone(),
        principal.workspace_id.clone(),
        params,
        tz,
        sender,
    ));
    let mut response =
        warp::reply::Reply::into_response(warp::reply::stream(ChunkStream(receiver)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(|err| ApiError::Internal(err.into()))?,
    );
    Ok(response)
}

type Chunk = Result<Bytes, std::io::Error>;

async fn produce_csv(
    store: Store,
    workspace_id: String,
    params: ExportAuditParams,
    tz: TimeZone,
    sender: mpsc::Sender<Chunk>,
) {
    // The BOM makes spreadsheets read the file as UTF-8.
    let header = format!("\u{feff}{}", csv::line(&CSV_HEADER));
    if sender.send(Ok(Bytes::from(header))).await.is_err() {
        return;
    }
    let filter = AuditFilter {
        since: Some(params.since),
        until: Some(params.until),
        ..Default::default()
    };
    let mut after: Option<String> = None;
    loop {
        let page = async {
            let mut conn = store.pool().acquire().await?;
            audit::export_page(
                &mut conn,
                &workspace_id,
                &filter,
                after.as_deref(),
                EXPORT_PAGE,
            )
            .await
        }
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(err) => {
                tracing::error!(error = %err, "audit export failed part-way");
                // Ending the body with an error tells the client the file is incomplete.
                let _ = sender
                    .send(Err(std::io::Error::other("audit export failed")))
                    .await;
                return;
            }
        };
        let Some(last) = rows.last() else { return };
        after = Some(last.id.clone());
        let chunk: String = rows.iter().map(|event| csv_row(event, &tz)).collect();
        if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
            return; // the client went away
        }
        if rows.len() < EXPORT_PAGE as usize {
            return;
        }
    }
}

/// A `Send + Sync` stream over the producer's channel, as `warp::reply::stream` requires.
struct ChunkStream(mpsc::Receiver<Chunk>);

impl futures::Stream for ChunkStream {
    type Item = Chunk;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}
