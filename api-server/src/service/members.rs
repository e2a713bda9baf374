//! Members and roles: list, invite, change a role, remove. A workspace always keeps an
//! active Owner.

use crate::audit::{Change, events};
use crate::auth::{Gate, Principal};
use crate::service::pagination::{Cursor, page};
use crate::service::unit_of_work::{UnitOfWork, Work};
use crate::service::{Error, validate};
use crate::store::members::{self, Member};
use crate::store::{Store, new_id, now, workspaces};
use serde_json::json;
use tooken_contract::members::{
    InviteMemberRequest, MemberList, MemberStatus, Role, UpdateMemberRequest,
};
use tooken_contract::page::PageParams;

/// What each operation asks of its caller before anything else (see `Gate`).
pub const READ: Gate = Gate::ApiKey;
pub const CHANGE: Gate = Gate::Settings;

pub async fn list(
    store: &Store,
    actor: &Principal,
    params: PageParams,
) -> Result<MemberList, Error> {
    actor.pass(READ)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let mut conn = store.connection().await?;
    let mut rows = members::list(
        &mut conn,
        &actor.workspace_id,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |m| &m.id);
    let data = rows.iter().map(Member::to_api).collect();
    Ok(MemberList { data, next_cursor })
}

pub async fn invite(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    request: InviteMemberRequest,
) -> Result<Member, Error> {
    actor.pass(CHANGE)?;
    let email = validate::email("email", &request.email)?;
    let member = Member {
        id: new_id(),
        workspace_id: actor.workspace_id.clone(),
        email: email.clone(),
        role: request.role,
        status: MemberStatus::Invited,
        user_id: None,
        created_at: now(),
    };
    uow.run_once(async |work| {
        members::insert(work, &member).await.map_err(|err| {
            if err.is_unique_violation() {
                Error::conflict(
                    "member_exists",
                    format!("{email} is already a member or invited"),
                )
            } else {
                err.into()
            }
        })?;
        work.record(Change {
            event: events::MEMBER_INVITED,
            target_type: "member",
            target_id: &member.id,
            data: json!({"email": email, "role": member.role}),
        })
        .await
    })
    .await?;
    Ok(member)
}

pub async fn update(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
    request: UpdateMemberRequest,
) -> Result<Member, Error> {
    actor.pass(CHANGE)?;
    uow.run_once(async |work| {
        lock_workspace(work, actor).await?;
        let mut member = members::get(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("member"))?;
        if member.role == request.role {
            return Ok(member);
        }
        keep_an_owner(work, &member, Some(request.role)).await?;
        // Personal keys and sessions act with the role: the store marks the change.
        members::set_role(work, &actor.workspace_id, id, request.role).await?;
        work.record(Change {
            event: events::MEMBER_ROLE_CHANGED,
            target_type: "member",
            target_id: id,
            data: json!({"email": member.email, "changes": {"role": {"from": member.role, "to": request.role}}}),
        })
        .await?;
        member.role = request.role;
        Ok(member)
    })
    .await
}

pub async fn remove(uow: UnitOfWork<'_>, actor: &Principal, id: &str) -> Result<(), Error> {
    actor.pass(CHANGE)?;
    uow.run_once(async |work| {
        lock_workspace(work, actor).await?;
        let member = members::get(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("member"))?;
        keep_an_owner(work, &member, None).await?;
        members::delete(work, &actor.workspace_id, id).await?;
        work.record(Change {
            event: events::MEMBER_REMOVED,
            target_type: "member",
            target_id: id,
            data: json!({"email": member.email, "role": member.role}),
        })
        .await
    })
    .await
}

/// Refuses a change that would leave the workspace without an active Owner.
async fn keep_an_owner(
    work: &mut Work,
    member: &Member,
    new_role: Option<Role>,
) -> Result<(), Error> {
    let loses_owner = member.role == Role::Owner
        && member.status == MemberStatus::Active
        && new_role != Some(Role::Owner);
    if loses_owner && members::count_owners(work, &member.workspace_id).await? <= 1 {
        return Err(Error::conflict(
            "last_owner",
            "the last Owner cannot be removed or demoted; make someone else Owner first",
        ));
    }
    Ok(())
}

/// Takes the workspace's row lock, so concurrent role changes cannot both pass `keep_an_owner`.
async fn lock_workspace(work: &mut Work, actor: &Principal) -> Result<(), Error> {
    workspaces::lock(work, &actor.workspace_id).await?;
    Ok(())
}
