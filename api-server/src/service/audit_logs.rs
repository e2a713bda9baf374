//! Reading the audit log: a filtered page, or every event of a range for an export.

use crate::auth::{Gate, Principal};
use crate::service::Error;
use crate::service::pagination::{Cursor, page};
use crate::store::Store;
use crate::store::audit::{self, Filter};
use crate::store::workspaces::{self, Workspace};
use jiff::SignedDuration;
use tooken_contract::Scope;
use tooken_contract::audit::{AuditEvent, AuditEventList, ExportAuditParams, ListAuditParams};

/// What reading the audit log asks of its caller before anything else (see `Gate`).
pub const GATE: Gate = Gate::Scope(Scope::AuditRead);

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: u32 = 500;
/// The longest range one export may cover.
const MAX_EXPORT_RANGE: SignedDuration = SignedDuration::from_hours(24 * 366);

pub async fn list(
    store: &Store,
    actor: &Principal,
    params: ListAuditParams,
) -> Result<AuditEventList, Error> {
    actor.pass(GATE)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let filter = Filter {
        kind: params.kind.as_deref(),
        actor: params.actor.as_deref(),
        target: params.target.as_deref(),
        since: params.since,
        until: params.until,
    };
    let mut conn = store.connection().await?;
    let mut rows = audit::list(
        &mut conn,
        &actor.workspace_id,
        &filter,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |event| &event.id);
    Ok(AuditEventList {
        data: rows,
        next_cursor,
    })
}

/// An export under way: the workspace (for its time zone and slug) and the next page.
pub struct Export {
    pub workspace: Workspace,
    pub params: ExportAuditParams,
    store: Store,
    after: Option<String>,
    done: bool,
}

/// Starts an export of `params`' range: checks the caller and the range first.
pub async fn export(
    store: &Store,
    actor: &Principal,
    params: ExportAuditParams,
) -> Result<Export, Error> {
    actor.pass(GATE)?;
    if params.until <= params.since {
        return Err(Error::validation("until", "until must be after since"));
    }
    if params.until.duration_since(params.since) > MAX_EXPORT_RANGE {
        return Err(Error::validation(
            "until",
            "an export covers at most 366 days",
        ));
    }
    let mut conn = store.connection().await?;
    let workspace = workspaces::get(&mut conn, &actor.workspace_id)
        .await?
        .ok_or(Error::NotFound("workspace"))?;
    Ok(Export {
        workspace,
        params,
        store: store.clone(),
        after: None,
        done: false,
    })
}

impl Export {
    /// The next events of the range, oldest first; `None` once all were read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<AuditEvent>>, Error> {
        if self.done {
            return Ok(None);
        }
        let filter = Filter {
            since: Some(self.params.since),
            until: Some(self.params.until),
            ..Default::default()
        };
        let mut conn = self.store.connection().await?;
        let rows = audit::export_page(
            &mut conn,
            &self.workspace.id,
            &filter,
            self.after.as_deref(),
            EXPORT_PAGE,
        )
        .await?;
        self.done = rows.len() < EXPORT_PAGE as usize;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = Some(last.id.clone());
        Ok(Some(rows))
    }
}
