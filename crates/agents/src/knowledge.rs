//! Knowledge entries: what agents learned about their owner's way of working
//! (workflows, brand voice, preferences, processes, technical facts).
//!
//! Confidence is exact: the seed's `decimal(3,2)` is kept as integer
//! hundredths (0..=100), parsed from a number in 0..=1 with at most two
//! decimals. A use bumps `usage_count` with one atomic
//! `UPDATE ... SET usage_count = usage_count + 1`, so concurrent uses are
//! all counted. A deactivated entry is retired: it takes no changes or uses.

use crate::browser::required_text;
use crate::entity::knowledge_entry;
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, Set,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// Longest context, in characters.
pub const MAX_CONTEXT: usize = 10_000;
/// Longest content, in characters.
pub const MAX_CONTENT: usize = 50_000;
/// Largest examples document, in bytes of JSON.
pub const MAX_EXAMPLES_BYTES: usize = 64 * 1024;

/// What a knowledge entry is about (the seed's closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// How a workflow is run.
    Workflow,
    /// How the owner's brand speaks.
    BrandVoice,
    /// A preference of the owner.
    Preference,
    /// A process the owner follows.
    Process,
    /// A technical fact.
    Technical,
}

impl Category {
    /// Every value.
    pub const ALL: &'static [Self] = &[
        Self::Workflow,
        Self::BrandVoice,
        Self::Preference,
        Self::Process,
        Self::Technical,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workflow => "workflow",
            Self::BrandVoice => "brand_voice",
            Self::Preference => "preference",
            Self::Process => "process",
            Self::Technical => "technical",
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
            .find(|c| c.as_str() == text)
            .ok_or_else(|| Error::Internal(format!("unknown knowledge category {text:?}").into()))
    }
}

/// A confidence in 0..=1, held exactly as hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Confidence(i32);

impl Confidence {
    /// Full confidence, the default.
    pub const FULL: Self = Self(100);

    /// Parses a number in 0..=1 with at most two decimals.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `confidence` otherwise.
    pub fn parse(value: f64) -> Result<Self, Error> {
        if !value.is_finite() || !(0.0..=1.0).contains(&value) {
            return Err(Error::bad_input("confidence", "must be between 0 and 1"));
        }
        let scaled = value * 100.0;
        let hundredths = scaled.round();
        if (scaled - hundredths).abs() > 1e-6 {
            return Err(Error::bad_input(
                "confidence",
                "must have at most two decimals",
            ));
        }
        Ok(Self(hundredths as i32))
    }

    /// Reads the stored hundredths.
    pub fn from_hundredths(hundredths: i32) -> Self {
        Self(hundredths.clamp(0, 100))
    }

    /// The stored hundredths.
    pub fn hundredths(self) -> i32 {
        self.0
    }

    /// The value in 0..=1, for display.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

fn examples(value: Json) -> Result<Json, Error> {
    if !value.is_array() {
        return Err(Error::bad_input("examples", "must be a JSON array"));
    }
    if value.to_string().len() > MAX_EXAMPLES_BYTES {
        return Err(Error::bad_input(
            "examples",
            format!("must be at most {MAX_EXAMPLES_BYTES} bytes of JSON"),
        ));
    }
    Ok(value)
}

fn optional_examples(value: Option<Json>) -> Result<Option<Json>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(v) => examples(v).map(Some),
    }
}

/// A knowledge entry to create, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    category: Category,
    context: String,
    content: String,
    examples: Option<Json>,
    confidence: Confidence,
}

impl NewEntry {
    /// Parses a request; confidence defaults to 1.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `context` (1 to 10,000 characters), `content` (1 to
    /// 50,000), `examples` (a JSON array of at most 64 KiB) or `confidence`.
    pub fn parse(
        category: Category,
        context: String,
        content: String,
        examples: Option<Json>,
        confidence: Option<f64>,
    ) -> Result<Self, Error> {
        Ok(Self {
            category,
            context: required_text("context", context, MAX_CONTEXT)?,
            content: required_text("content", content, MAX_CONTENT)?,
            examples: optional_examples(examples)?,
            confidence: confidence
                .map(Confidence::parse)
                .transpose()?
                .unwrap_or(Confidence::FULL),
        })
    }
}

/// Creates an active entry for the caller.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "knowledge.create", skip_all, err(level = "debug"))]
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    req: NewEntry,
    now: DateTime<Utc>,
) -> Result<knowledge_entry::Model, Error> {
    Ok(knowledge_entry::ActiveModel {
        id: Set(new_id()),
        user_id: Set(actor.user_id),
        category: Set(req.category.as_str().to_owned()),
        context: Set(req.context),
        content: Set(req.content),
        examples: Set(req.examples),
        confidence_hundredths: Set(req.confidence.hundredths()),
        usage_count: Set(0),
        is_active: Set(true),
        last_used_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// The caller's entry `id`, or `None`.
///
/// # Errors
/// Internal on database failure.
pub async fn entry(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<Option<knowledge_entry::Model>, Error> {
    Ok(knowledge_entry::Entity::find_by_id(id)
        .filter(knowledge_entry::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?)
}

async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<knowledge_entry::Model, Error> {
    entry(db, actor, id)
        .await?
        .ok_or(Error::NotFound("knowledge entry"))
}

/// The caller's entries, newest first, of one category if given, active ones only if asked.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "knowledge.list", skip_all, err(level = "debug"))]
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    category: Option<Category>,
    active_only: bool,
    window: Window,
) -> Result<Page<knowledge_entry::Model>, Error> {
    use knowledge_entry::Column as C;
    let mut select = knowledge_entry::Entity::find().filter(C::UserId.eq(actor.user_id));
    if let Some(category) = category {
        select = select.filter(C::Category.eq(category.as_str()));
    }
    if active_only {
        select = select.filter(C::IsActive.eq(true));
    }
    kernel::page::fetch(db, select, C::Id, |e| e.id, window).await
}

/// A parsed change to an entry. `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryChange {
    category: Option<Category>,
    context: Option<String>,
    content: Option<String>,
    examples: Option<Option<Json>>,
    confidence: Option<Confidence>,
}

impl EntryChange {
    /// Parses a change with the rules of [`NewEntry::parse`]; `examples`
    /// `Some(None)` clears them.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field.
    pub fn parse(
        category: Option<Category>,
        context: Option<String>,
        content: Option<String>,
        examples_patch: Option<Option<Json>>,
        confidence: Option<f64>,
    ) -> Result<Self, Error> {
        Ok(Self {
            category,
            context: context
                .map(|c| required_text("context", c, MAX_CONTEXT))
                .transpose()?,
            content: content
                .map(|c| required_text("content", c, MAX_CONTENT))
                .transpose()?,
            examples: examples_patch.map(optional_examples).transpose()?,
            confidence: confidence.map(Confidence::parse).transpose()?,
        })
    }
}

fn retired() -> Error {
    Error::InvalidTransition("a deactivated knowledge entry takes no changes or uses".into())
}

/// Changes an active entry.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deactivated.
#[tracing::instrument(name = "knowledge.update", skip_all, err(level = "debug"))]
pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    change: EntryChange,
    now: DateTime<Utc>,
) -> Result<knowledge_entry::Model, Error> {
    use knowledge_entry::Column as C;
    let mut update =
        knowledge_entry::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    if let Some(v) = change.category {
        update = update.col_expr(C::Category, Expr::value(v.as_str()));
    }
    if let Some(v) = change.context {
        update = update.col_expr(C::Context, Expr::value(v));
    }
    if let Some(v) = change.content {
        update = update.col_expr(C::Content, Expr::value(v));
    }
    if let Some(v) = change.examples {
        update = update.col_expr(C::Examples, Expr::value(v));
    }
    if let Some(v) = change.confidence {
        update = update.col_expr(C::ConfidenceHundredths, Expr::value(v.hundredths()));
    }
    write_active(db, actor, id, update).await
}

/// Deactivates an active entry.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deactivated already.
#[tracing::instrument(name = "knowledge.deactivate", skip_all, err(level = "debug"))]
pub async fn deactivate(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<knowledge_entry::Model, Error> {
    use knowledge_entry::Column as C;
    let update = knowledge_entry::Entity::update_many()
        .col_expr(C::IsActive, Expr::value(false))
        .col_expr(C::UpdatedAt, Expr::value(now));
    write_active(db, actor, id, update).await
}

/// Counts one use of an active entry: `usage_count + 1` in one atomic
/// statement, and `last_used_at`. Returns the entry with this use counted.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deactivated.
#[tracing::instrument(name = "knowledge.use_entry", skip_all, err(level = "debug"))]
pub async fn use_entry(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<knowledge_entry::Model, Error> {
    use knowledge_entry::Column as C;
    let update = knowledge_entry::Entity::update_many()
        .col_expr(C::UsageCount, Expr::col(C::UsageCount).add(1))
        .col_expr(C::LastUsedAt, Expr::value(Some(now)));
    write_active(db, actor, id, update).await
}

/// Runs `update` on the caller's entry `id` while it is active; the write
/// takes the row lock, so the read after it sees this change.
async fn write_active(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    update: sea_orm::UpdateMany<knowledge_entry::Entity>,
) -> Result<knowledge_entry::Model, Error> {
    use knowledge_entry::Column as C;
    let done = update
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .filter(C::IsActive.eq(true))
        .exec(db)
        .await?;
    let row = own(db, actor, id).await?;
    if done.rows_affected == 0 {
        return Err(retired());
    }
    Ok(row)
}
