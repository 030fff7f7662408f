//! Agent sessions: creating, listing, changing and deleting the caller's own.

use crate::entity::{agent_execution, agent_session};
use crate::status::{ExecutionStatus, SessionStatus};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::page::{self, Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// The default and largest iteration cap of a session.
pub const DEFAULT_MAX_ITERATIONS: i32 = 100;
/// The largest iteration cap a session may ask for.
pub const MAX_MAX_ITERATIONS: i32 = 10_000;

/// A new session, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    name: String,
    context: Option<Json>,
    max_iterations: i32,
}

impl NewSession {
    /// Parses a request.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `name` (empty or over 200 characters) or
    /// `maxIterations` (outside 1..=10,000).
    pub fn parse(
        name: String,
        context: Option<Json>,
        max_iterations: Option<i32>,
    ) -> Result<Self, Error> {
        Ok(Self {
            name: parse_name(name)?,
            context,
            max_iterations: parse_max_iterations(max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS))?,
        })
    }
}

fn parse_name(name: String) -> Result<String, Error> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_input("name", "must be 1 to 200 characters"));
    }
    Ok(name)
}

fn parse_max_iterations(max_iterations: i32) -> Result<i32, Error> {
    if !(1..=MAX_MAX_ITERATIONS).contains(&max_iterations) {
        return Err(Error::bad_input(
            "maxIterations",
            format!("must be between 1 and {MAX_MAX_ITERATIONS}"),
        ));
    }
    Ok(max_iterations)
}

/// A change to a session, parsed: `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionChange {
    id: Uuid,
    name: Option<String>,
    context: Option<Option<Json>>,
    max_iterations: Option<i32>,
}

impl SessionChange {
    /// Parses a request; `context: Some(None)` clears the context.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `name` or `maxIterations` as [`NewSession::parse`].
    pub fn parse(
        id: Uuid,
        name: Option<String>,
        context: Option<Option<Json>>,
        max_iterations: Option<i32>,
    ) -> Result<Self, Error> {
        Ok(Self {
            id,
            name: name.map(parse_name).transpose()?,
            context,
            max_iterations: max_iterations.map(parse_max_iterations).transpose()?,
        })
    }
}

/// Creates a session for the caller.
///
/// # Errors
/// Internal on database failure.
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    req: NewSession,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<agent_session::Model, Error> {
    Ok(agent_session::ActiveModel {
        id: Set(new_id()),
        user_id: Set(actor.user_id),
        name: Set(req.name),
        status: Set(SessionStatus::Idle.as_str().to_owned()),
        context: Set(req.context),
        current_phase: Set(None),
        iteration_count: Set(0),
        max_iterations: Set(req.max_iterations),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// The caller's session `id`.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or belongs to someone else.
pub async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<agent_session::Model, Error> {
    agent_session::Entity::find_by_id(id)
        .filter(agent_session::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("agent session"))
}

/// One page of the caller's sessions, newest first.
///
/// # Errors
/// Internal on database failure.
pub async fn page(
    db: &impl ConnectionTrait,
    actor: &Actor,
    window: Window,
) -> Result<Page<agent_session::Model>, Error> {
    let select =
        agent_session::Entity::find().filter(agent_session::Column::UserId.eq(actor.user_id));
    page::fetch(db, select, agent_session::Column::Id, |m| m.id, window).await
}

/// Changes the caller's session. The cap moves in one conditional UPDATE, so a
/// worker counting an iteration at the same moment can never be left above it.
///
/// # Errors
/// `NOT_FOUND` for another user's or an unknown session; `BAD_USER_INPUT` on
/// `maxIterations` below the iterations the session has already taken.
pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    req: SessionChange,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<agent_session::Model, Error> {
    use agent_session::Column as S;
    let mut update = agent_session::Entity::update_many()
        .col_expr(S::UpdatedAt, Expr::value(now))
        .filter(S::Id.eq(req.id))
        .filter(S::UserId.eq(actor.user_id));
    if let Some(name) = req.name {
        update = update.col_expr(S::Name, Expr::value(name));
    }
    if let Some(context) = req.context {
        update = update.col_expr(S::Context, Expr::value(context));
    }
    if let Some(max) = req.max_iterations {
        update = update
            .col_expr(S::MaxIterations, Expr::value(max))
            .filter(S::IterationCount.lte(max));
    }
    if update.exec(db).await?.rows_affected == 0 {
        let session = own(db, actor, req.id).await?;
        return Err(Error::bad_input(
            "maxIterations",
            format!(
                "the session has already taken {} iterations",
                session.iteration_count
            ),
        ));
    }
    own(db, actor, req.id).await
}

/// Deletes the caller's session with its executions and everything under
/// them (by cascade). The session row is locked first, so an execution being
/// started on it concurrently either commits before (and refuses the delete)
/// or fails on the missing session (and releases its reservation).
///
/// # Errors
/// `NOT_FOUND` for another user's or an unknown session; `INVALID_TRANSITION`
/// while one of its executions is pending, planning or executing.
pub async fn delete(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<(), Error> {
    agent_session::Entity::find_by_id(id)
        .filter(agent_session::Column::UserId.eq(actor.user_id))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(Error::NotFound("agent session"))?;
    let unfinished: Vec<&str> = ExecutionStatus::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| s.as_str())
        .collect();
    let running = agent_execution::Entity::find()
        .filter(agent_execution::Column::SessionId.eq(id))
        .filter(agent_execution::Column::Status.is_in(unfinished))
        .one(db)
        .await?;
    if let Some(run) = running {
        return Err(Error::InvalidTransition(format!(
            "the session cannot be deleted while execution {} is {}",
            run.id, run.status
        )));
    }
    agent_session::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
