//! Agent sessions: creating them and finding the caller's own.

use crate::entity::agent_session;
use crate::status::SessionStatus;
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
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
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::bad_input("name", "must be 1 to 200 characters"));
        }
        let max_iterations = max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
        if !(1..=MAX_MAX_ITERATIONS).contains(&max_iterations) {
            return Err(Error::bad_input(
                "maxIterations",
                format!("must be between 1 and {MAX_MAX_ITERATIONS}"),
            ));
        }
        Ok(Self {
            name,
            context,
            max_iterations,
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
