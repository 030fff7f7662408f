//! Generated projects: web projects an agent built for its owner.
//!
//! A project moves `active <-> archived -> deleted` through
//! [`ProjectStatus::transition`]: deleting needs an archived project (an
//! accidental delete of a live project takes two calls), `deleted` is final
//! and soft (the row stays, default lists hide it), and a deleted project
//! takes no more changes.

use crate::browser::{HttpUrl, json_object, required_text};
use crate::entity::generated_project;
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Longest project name, in characters.
pub const MAX_NAME: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Longest tech stack slug.
pub const MAX_TECH_STACK: usize = 50;
/// The tech stack when none is given.
pub const DEFAULT_TECH_STACK: &str = "react";
/// Largest features document, in bytes of JSON.
pub const MAX_FEATURES_BYTES: usize = 64 * 1024;
/// Largest files snapshot, in bytes of JSON.
pub const MAX_SNAPSHOT_BYTES: usize = 1024 * 1024;

/// A change to an optional field: `None` keeps it, `Some(None)` clears it.
pub type Patch<T> = Option<Option<T>>;

/// Where a project is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProjectStatus {
    /// In use.
    Active,
    /// Kept, out of the way; can be restored or deleted.
    Archived,
    /// Gone for its owner (final).
    Deleted,
}

impl ProjectStatus {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Active, Self::Archived, Self::Deleted];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// Internal, for text the CHECK constraint should have refused.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Error::Internal(format!("unknown project status {text:?}").into()))
    }

    /// The only way a status changes: archive, restore, delete an archived one.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` for any other move.
    pub fn transition(self, to: Self) -> Result<Self, Error> {
        use ProjectStatus::*;
        if matches!(
            (self, to),
            (Active, Archived) | (Archived, Active) | (Archived, Deleted)
        ) {
            Ok(to)
        } else {
            Err(Error::InvalidTransition(format!(
                "a generated project cannot move from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

/// A tech stack: a lowercase slug such as `react`, `nextjs` or `vue+vite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechStack(String);

impl TechStack {
    /// Parses a slug; `None` is [`DEFAULT_TECH_STACK`]. Letters are lowercased.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `techStack` unless 1 to 50 of `a-z 0-9 . _ + -`,
    /// starting with a letter or digit.
    pub fn parse(text: Option<String>) -> Result<Self, Error> {
        let Some(text) = text else {
            return Ok(Self(DEFAULT_TECH_STACK.to_owned()));
        };
        let slug = text.trim().to_ascii_lowercase();
        let valid = (1..=MAX_TECH_STACK).contains(&slug.len())
            && slug.starts_with(|c: char| c.is_ascii_alphanumeric())
            && slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
        if !valid {
            return Err(Error::bad_input(
                "techStack",
                "must be 1 to 50 of a-z, 0-9, '.', '_', '+', '-', starting with a letter or digit",
            ));
        }
        Ok(Self(slug))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn port(value: i32) -> Result<i32, Error> {
    if (1..=65535).contains(&value) {
        Ok(value)
    } else {
        Err(Error::bad_input(
            "devServerPort",
            "must be between 1 and 65535",
        ))
    }
}

fn description(value: String) -> Result<String, Error> {
    required_text("description", value, MAX_DESCRIPTION)
}

/// The raw fields of a project to create.
#[derive(Debug, Clone, Default)]
pub struct ProjectFields {
    /// The name.
    pub name: String,
    /// What it is.
    pub description: Option<String>,
    /// Its tech stack slug.
    pub tech_stack: Option<String>,
    /// Its features, a JSON object.
    pub features: Option<Json>,
    /// Its generated files, a JSON object.
    pub files_snapshot: Option<Json>,
    /// The execution that generated it.
    pub execution_id: Option<Uuid>,
    /// Its dev server's port.
    pub dev_server_port: Option<i32>,
    /// Its preview URL.
    pub preview_url: Option<String>,
    /// Its production URL.
    pub deployment_url: Option<String>,
}

/// A project to create, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProject {
    name: String,
    description: Option<String>,
    tech_stack: TechStack,
    features: Json,
    files_snapshot: Option<Json>,
    execution_id: Option<Uuid>,
    dev_server_port: Option<i32>,
    preview_url: Option<HttpUrl>,
    deployment_url: Option<HttpUrl>,
}

impl NewProject {
    /// Parses a request.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field: `name`, `description`, `techStack`,
    /// `features` (object, 64 KiB), `filesSnapshot` (object, 1 MiB),
    /// `devServerPort`, `previewUrl`, `deploymentUrl`.
    pub fn parse(raw: ProjectFields) -> Result<Self, Error> {
        Ok(Self {
            name: required_text("name", raw.name, MAX_NAME)?,
            description: raw.description.map(description).transpose()?,
            tech_stack: TechStack::parse(raw.tech_stack)?,
            features: json_object("features", raw.features, MAX_FEATURES_BYTES)?
                .unwrap_or_else(|| json!({})),
            files_snapshot: json_object("filesSnapshot", raw.files_snapshot, MAX_SNAPSHOT_BYTES)?,
            execution_id: raw.execution_id,
            dev_server_port: raw.dev_server_port.map(port).transpose()?,
            preview_url: HttpUrl::parse_opt("previewUrl", raw.preview_url)?,
            deployment_url: HttpUrl::parse_opt("deploymentUrl", raw.deployment_url)?,
        })
    }
}

/// Creates a project for the caller, `active`.
///
/// # Errors
/// `NOT_FOUND` when `execution_id` is not one of the caller's executions.
#[tracing::instrument(name = "projects.create", skip_all, err(level = "debug"))]
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    req: NewProject,
    now: DateTime<Utc>,
) -> Result<generated_project::Model, Error> {
    if let Some(execution) = req.execution_id {
        crate::executions::own(db, actor, execution).await?;
    }
    Ok(generated_project::ActiveModel {
        id: Set(new_id()),
        user_id: Set(actor.user_id),
        execution_id: Set(req.execution_id),
        name: Set(req.name),
        description: Set(req.description),
        tech_stack: Set(req.tech_stack.0),
        features: Set(req.features),
        files_snapshot: Set(req.files_snapshot),
        status: Set(ProjectStatus::Active.as_str().to_owned()),
        dev_server_port: Set(req.dev_server_port),
        preview_url: Set(req.preview_url.map(HttpUrl::into_string)),
        deployment_url: Set(req.deployment_url.map(HttpUrl::into_string)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// The caller's project `id` (deleted ones too), or `None`.
///
/// # Errors
/// Internal on database failure.
pub async fn project(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<Option<generated_project::Model>, Error> {
    Ok(generated_project::Entity::find_by_id(id)
        .filter(generated_project::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?)
}

async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<generated_project::Model, Error> {
    project(db, actor, id)
        .await?
        .ok_or(Error::NotFound("generated project"))
}

/// The caller's projects, newest first: of `status`, or all but deleted ones.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "projects.list", skip_all, err(level = "debug"))]
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    status: Option<ProjectStatus>,
    window: Window,
) -> Result<Page<generated_project::Model>, Error> {
    use generated_project::Column as C;
    let select = generated_project::Entity::find().filter(C::UserId.eq(actor.user_id));
    let select = match status {
        Some(s) => select.filter(C::Status.eq(s.as_str())),
        None => select.filter(C::Status.ne(ProjectStatus::Deleted.as_str())),
    };
    kernel::page::fetch(db, select, C::Id, |p| p.id, window).await
}

/// A parsed change to a project. `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectChange {
    name: Option<String>,
    description: Patch<String>,
    tech_stack: Option<TechStack>,
    features: Option<Json>,
    files_snapshot: Patch<Json>,
    dev_server_port: Patch<i32>,
    preview_url: Patch<HttpUrl>,
    deployment_url: Patch<HttpUrl>,
}

/// The raw fields of a project change.
#[derive(Debug, Clone, Default)]
pub struct ProjectChangeFields {
    /// A new name.
    pub name: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Patch<String>,
    /// A new tech stack.
    pub tech_stack: Option<String>,
    /// New features.
    pub features: Option<Json>,
    /// A new files snapshot; `Some(None)` clears it.
    pub files_snapshot: Patch<Json>,
    /// A new dev server port; `Some(None)` clears it.
    pub dev_server_port: Patch<i32>,
    /// A new preview URL; `Some(None)` clears it.
    pub preview_url: Patch<String>,
    /// A new production URL; `Some(None)` clears it.
    pub deployment_url: Patch<String>,
}

fn patch<T, U>(
    value: Patch<T>,
    parse: impl FnOnce(T) -> Result<U, Error>,
) -> Result<Patch<U>, Error> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(v)) => Ok(Some(Some(parse(v)?))),
    }
}

impl ProjectChange {
    /// Parses a change, with the rules of [`NewProject::parse`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field.
    pub fn parse(raw: ProjectChangeFields) -> Result<Self, Error> {
        let features = match raw.features {
            None => None,
            Some(v) => Some(
                json_object("features", Some(v), MAX_FEATURES_BYTES)?.unwrap_or_else(|| json!({})),
            ),
        };
        Ok(Self {
            name: raw
                .name
                .map(|n| required_text("name", n, MAX_NAME))
                .transpose()?,
            description: patch(raw.description, description)?,
            tech_stack: raw
                .tech_stack
                .map(|t| TechStack::parse(Some(t)))
                .transpose()?,
            features,
            files_snapshot: patch(raw.files_snapshot, |v| {
                json_object("filesSnapshot", Some(v), MAX_SNAPSHOT_BYTES)?
                    .ok_or_else(|| Error::bad_input("filesSnapshot", "must be a JSON object"))
            })?,
            dev_server_port: patch(raw.dev_server_port, port)?,
            preview_url: patch(raw.preview_url, |u| HttpUrl::parse("previewUrl", &u))?,
            deployment_url: patch(raw.deployment_url, |u| HttpUrl::parse("deploymentUrl", &u))?,
        })
    }
}

/// Changes a project that is not deleted.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deleted; `CONFLICT` when it was deleted between read and write.
#[tracing::instrument(name = "projects.update", skip_all, err(level = "debug"))]
pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    change: ProjectChange,
    now: DateTime<Utc>,
) -> Result<generated_project::Model, Error> {
    use generated_project::Column as C;
    let current = own(db, actor, id).await?;
    if ProjectStatus::parse(&current.status)? == ProjectStatus::Deleted {
        return Err(Error::InvalidTransition(
            "a deleted generated project takes no changes".into(),
        ));
    }
    let mut update =
        generated_project::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    if let Some(name) = change.name {
        update = update.col_expr(C::Name, Expr::value(name));
    }
    if let Some(v) = change.description {
        update = update.col_expr(C::Description, Expr::value(v));
    }
    if let Some(v) = change.tech_stack {
        update = update.col_expr(C::TechStack, Expr::value(v.0));
    }
    if let Some(v) = change.features {
        update = update.col_expr(C::Features, Expr::value(v));
    }
    if let Some(v) = change.files_snapshot {
        update = update.col_expr(C::FilesSnapshot, Expr::value(v));
    }
    if let Some(v) = change.dev_server_port {
        update = update.col_expr(C::DevServerPort, Expr::value(v));
    }
    if let Some(v) = change.preview_url {
        update = update.col_expr(C::PreviewUrl, Expr::value(v.map(HttpUrl::into_string)));
    }
    if let Some(v) = change.deployment_url {
        update = update.col_expr(C::DeploymentUrl, Expr::value(v.map(HttpUrl::into_string)));
    }
    let done = update
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .filter(C::Status.ne(ProjectStatus::Deleted.as_str()))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(stale());
    }
    own(db, actor, id).await
}

fn stale() -> Error {
    Error::Conflict {
        field: None,
        message: "the generated project changed meanwhile; read it again".into(),
    }
}

/// Moves a project to `to` (archive, restore, delete).
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when
/// [`ProjectStatus::transition`] refuses; `CONFLICT` when its status changed
/// between read and write.
#[tracing::instrument(name = "projects.move_to", skip_all, err(level = "debug"))]
pub async fn move_to(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    to: ProjectStatus,
    now: DateTime<Utc>,
) -> Result<generated_project::Model, Error> {
    use generated_project::Column as C;
    let current = own(db, actor, id).await?;
    let from = ProjectStatus::parse(&current.status)?;
    let to = from.transition(to)?;
    let done = generated_project::Entity::update_many()
        .col_expr(C::Status, Expr::value(to.as_str()))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .filter(C::Status.eq(from.as_str()))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(stale());
    }
    own(db, actor, id).await
}
