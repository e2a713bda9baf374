//! `GET /v1/audit-logs` (filters, cursor) and `GET /v1/audit-logs/export` (CSV for a range).

use crate::auth::Principal;
use crate::csv;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_query};
use crate::http::parse::parse_query;
use crate::http::reply::json_response;
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::audit_logs::{self, Export};
use bytes::Bytes;
use jiff::tz::TimeZone;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tooken_contract::ErrorBody;
use tooken_contract::audit::{AuditEvent, AuditEventList, ExportAuditParams, ListAuditParams};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_export_audit_logs>(Reach::Workspace, |at| {
            serve!(export_audit_logs, at.plain(), caller(), raw_query())
        }),
        Endpoint::api::<__path_list_audit_logs>(Reach::Workspace, |at| {
            serve!(list_audit_logs, at.plain(), caller(), raw_query())
        }),
    ]
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
    principal.pass(audit_logs::GATE)?;
    let params: ListAuditParams = parse_query(&query)?;
    let list = audit_logs::list(&state.store, &principal, params).await?;
    Ok(json_response(StatusCode::OK, &list))
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
    principal.pass(audit_logs::GATE)?;
    let params: ExportAuditParams = parse_query(&query)?;
    let export = audit_logs::export(&state.store, &principal, params).await?;
    let filename = format!(
        "tooken-audit-{}-{}-{}.csv",
        export.workspace.slug,
        export.params.since.strftime("%Y%m%d"),
        export.params.until.strftime("%Y%m%d")
    );
    // A producer task fills a small channel, so a slow reader holds back the database reads
    // and the log is never buffered whole.
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(produce_csv(export, sender));
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
            .map_err(crate::service::Error::internal)?,
    );
    Ok(response)
}

type Chunk = Result<Bytes, std::io::Error>;

async fn produce_csv(mut export: Export, sender: mpsc::Sender<Chunk>) {
    let tz = TimeZone::get(&export.workspace.timezone).unwrap_or(TimeZone::UTC);
    // The BOM makes spreadsheets read the file as UTF-8.
    let header = format!("\u{feff}{}", csv::line(&CSV_HEADER));
    if sender.send(Ok(Bytes::from(header))).await.is_err() {
        return;
    }
    loop {
        let rows = match export.next_page().await {
            Ok(Some(rows)) => rows,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(error = %err, "audit export failed part-way");
                // Ending the body with an error tells the client the file is incomplete.
                let _ = sender
                    .send(Err(std::io::Error::other("audit export failed")))
                    .await;
                return;
            }
        };
        let chunk: String = rows.iter().map(|event| csv_row(event, &tz)).collect();
        if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
            return; // the client went away
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
