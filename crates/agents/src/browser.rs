//! Browser sessions and browser contexts (seed 004).
//!
//! A browser session moves `active -> completed | failed | expired` through
//! [`BrowserSessionStatus::transition`]. Expiry is decided on read: an
//! `active` row whose `expires_at` has passed *is* expired for every read,
//! filter and transition, whether or not [`ExpiryJob`] has written that yet;
//! the job only makes the stored status catch up for reports and SQL users.
//!
//! A browser context's storage (cookies, local storage) is sealed with the
//! vault key ring under associated data naming its owner and row, so the
//! ciphertext opens nowhere else; lists never carry it, and
//! [`reveal_storage`] is the one way out. [`rotate`] re-seals it under the
//! ring's newest key, as the credential vault's rotation does for secrets.

use crate::entity::{browser_context, browser_session};
use chrono::{DateTime, Utc};
use core_auth::vault::Rotation;
use kernel::Error;
use kernel::actor::Actor;
use kernel::clock::SharedClock;
use kernel::crypto::{CryptoError, KeyRing, Sealed, SealedParts};
use kernel::error::is_unique_violation;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// Longest URL accepted, in bytes.
pub const MAX_URL: usize = 2048;
/// Largest metadata document, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Largest context storage document, in bytes of JSON.
pub const MAX_STORAGE_BYTES: usize = 256 * 1024;
/// Longest provider id (session, project, context, client reference).
pub const MAX_PROVIDER_ID: usize = 128;
/// Longest failure reason, in characters.
pub const MAX_ERROR: usize = 2000;

/// An absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Parses `text` for the input field `field`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field` when it is not an http(s) URL with a host,
    /// or longer than [`MAX_URL`].
    pub fn parse(field: &str, text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() > MAX_URL {
            return Err(Error::bad_input(
                field,
                format!("must be at most {MAX_URL} bytes"),
            ));
        }
        let url = url::Url::parse(text)
            .map_err(|_| Error::bad_input(field, "must be an absolute http(s) URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::bad_input(field, "must be an absolute http(s) URL"));
        }
        Ok(Self(url.into()))
    }

    /// [`HttpUrl::parse`] of an optional value.
    ///
    /// # Errors
    /// As [`HttpUrl::parse`].
    pub fn parse_opt(field: &str, text: Option<String>) -> Result<Option<Self>, Error> {
        text.map(|t| Self::parse(field, &t)).transpose()
    }

    /// The normalised URL.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Trimmed, not empty, at most `max` characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field`.
pub fn required_text(field: &str, value: String, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::bad_input(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A provider id: 1 to [`MAX_PROVIDER_ID`] characters, no whitespace or control characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field`.
pub fn provider_id(field: &str, value: String) -> Result<String, Error> {
    let value = required_text(field, value, MAX_PROVIDER_ID)?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::bad_input(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(value)
}

/// A JSON object of at most `max_bytes`; JSON null reads as absent.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` for another JSON type or a larger document.
pub fn json_object(
    field: &str,
    value: Option<Json>,
    max_bytes: usize,
) -> Result<Option<Json>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(v @ Json::Object(_)) => {
            if v.to_string().len() > max_bytes {
                return Err(Error::bad_input(
                    field,
                    format!("must be at most {max_bytes} bytes of JSON"),
                ));
            }
            Ok(Some(v))
        }
        Some(_) => Err(Error::bad_input(field, "must be a JSON object")),
    }
}

fn future(field: &str, at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), Error> {
    match at {
        Some(at) if at <= now => Err(Error::bad_input(field, "must be in the future")),
        _ => Ok(()),
    }
}

/// Where a browser session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrowserSessionStatus {
    /// Running at the provider.
    Active,
    /// Ended normally (final).
    Completed,
    /// Ended with an error (final).
    Failed,
    /// Passed its `expires_at` while active (final).
    Expired,
}

impl BrowserSessionStatus {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Active, Self::Completed, Self::Failed, Self::Expired];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
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
            .ok_or_else(|| {
                Error::Internal(format!("unknown browser session status {text:?}").into())
            })
    }

    /// The only way a status changes: once, out of `active`.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` for any other move.
    pub fn transition(self, to: Self) -> Result<Self, Error> {
        if self == Self::Active && to != Self::Active {
            Ok(to)
        } else {
            Err(Error::InvalidTransition(format!(
                "a browser session cannot move from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

/// The row as every reader sees it at `now`: an active session past its
/// deadline is expired, finished at its deadline.
pub fn observed(mut row: browser_session::Model, now: DateTime<Utc>) -> browser_session::Model {
    if row.status == BrowserSessionStatus::Active.as_str()
        && let Some(deadline) = row.expires_at.filter(|at| *at <= now)
    {
        row.status = BrowserSessionStatus::Expired.as_str().to_owned();
        row.completed_at = Some(deadline);
    }
    row
}

/// Rows that are active at `now` (stored `active`, deadline not passed).
fn live_at(now: DateTime<Utc>) -> Condition {
    use browser_session::Column as C;
    Condition::all()
        .add(C::Status.eq(BrowserSessionStatus::Active.as_str()))
        .add(
            Condition::any()
                .add(C::ExpiresAt.is_null())
                .add(C::ExpiresAt.gt(now)),
        )
}

fn status_at(status: BrowserSessionStatus, now: DateTime<Utc>) -> Condition {
    use browser_session::Column as C;
    match status {
        BrowserSessionStatus::Active => live_at(now),
        BrowserSessionStatus::Expired => Condition::any()
            .add(C::Status.eq(BrowserSessionStatus::Expired.as_str()))
            .add(
                Condition::all()
                    .add(C::Status.eq(BrowserSessionStatus::Active.as_str()))
                    .add(C::ExpiresAt.lte(now)),
            ),
        other => Condition::all().add(C::Status.eq(other.as_str())),
    }
}

/// A browser session to record, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBrowserSession {
    session_id: String,
    url: Option<HttpUrl>,
    project_id: Option<String>,
    debug_url: Option<HttpUrl>,
    recording_url: Option<HttpUrl>,
    metadata: Option<Json>,
    expires_at: Option<DateTime<Utc>>,
}

/// The raw fields of a browser session to record.
#[derive(Debug, Clone, Default)]
pub struct BrowserSessionFields {
    /// The provider's session id.
    pub session_id: String,
    /// The page it is on.
    pub url: Option<String>,
    /// The provider's project id.
    pub project_id: Option<String>,
    /// The live debugger URL.
    pub debug_url: Option<String>,
    /// The recording URL.
    pub recording_url: Option<String>,
    /// Free-form details, a JSON object.
    pub metadata: Option<Json>,
    /// When the provider ends it.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewBrowserSession {
    /// Parses a request received at `now`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `sessionId`, `url`, `projectId`, `debugUrl`,
    /// `recordingUrl`, `metadata` (an object of at most 16 KiB) or
    /// `expiresAt` (must be in the future).
    pub fn parse(raw: BrowserSessionFields, now: DateTime<Utc>) -> Result<Self, Error> {
        future("expiresAt", raw.expires_at, now)?;
        Ok(Self {
            session_id: provider_id("sessionId", raw.session_id)?,
            url: HttpUrl::parse_opt("url", raw.url)?,
            project_id: raw
                .project_id
                .map(|p| provider_id("projectId", p))
                .transpose()?,
            debug_url: HttpUrl::parse_opt("debugUrl", raw.debug_url)?,
            recording_url: HttpUrl::parse_opt("recordingUrl", raw.recording_url)?,
            metadata: json_object("metadata", raw.metadata, MAX_METADATA_BYTES)?,
            expires_at: raw.expires_at,
        })
    }
}

/// Records a session the provider started for the caller; it starts `active`.
///
/// # Errors
/// `CONFLICT` on `sessionId` when that provider session is recorded already by the caller.
#[tracing::instrument(name = "browser.record_session", skip_all, err(level = "debug"))]
pub async fn record_session(
    db: &impl ConnectionTrait,
    actor: &Actor,
    req: NewBrowserSession,
    now: DateTime<Utc>,
) -> Result<browser_session::Model, Error> {
    browser_session::ActiveModel {
        id: Set(new_id()),
        user_id: Set(actor.user_id),
        session_id: Set(req.session_id),
        status: Set(BrowserSessionStatus::Active.as_str().to_owned()),
        url: Set(req.url.map(HttpUrl::into_string)),
        project_id: Set(req.project_id),
        debug_url: Set(req.debug_url.map(HttpUrl::into_string)),
        recording_url: Set(req.recording_url.map(HttpUrl::into_string)),
        metadata: Set(req.metadata),
        error: Set(None),
        expires_at: Set(req.expires_at),
        created_at: Set(now),
        updated_at: Set(now),
        completed_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::conflict("sessionId", "this browser session is recorded already")
        } else {
            e.into()
        }
    })
}

/// The caller's session `id` as seen at `now`, or `None`.
///
/// # Errors
/// Internal on database failure.
pub async fn session(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<browser_session::Model>, Error> {
    Ok(browser_session::Entity::find_by_id(id)
        .filter(browser_session::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?
        .map(|row| observed(row, now)))
}

/// The caller's sessions, newest first, optionally of one status as seen at `now`.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "browser.list_sessions", skip_all, err(level = "debug"))]
pub async fn list_sessions(
    db: &impl ConnectionTrait,
    actor: &Actor,
    status: Option<BrowserSessionStatus>,
    window: Window,
    now: DateTime<Utc>,
) -> Result<Page<browser_session::Model>, Error> {
    let mut select =
        browser_session::Entity::find().filter(browser_session::Column::UserId.eq(actor.user_id));
    if let Some(status) = status {
        select = select.filter(status_at(status, now));
    }
    let mut page =
        kernel::page::fetch(db, select, browser_session::Column::Id, |s| s.id, window).await?;
    page.items = page
        .items
        .into_iter()
        .map(|(id, row)| (id, observed(row, now)))
        .collect();
    Ok(page)
}

/// How a session ends, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// It ended normally, on this page, with this recording.
    Completed {
        /// The last page.
        url: Option<HttpUrl>,
        /// The recording.
        recording_url: Option<HttpUrl>,
    },
    /// It ended with this error.
    Failed {
        /// What went wrong.
        error: Option<String>,
    },
}

impl Finish {
    /// A completion.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `url` or `recordingUrl`.
    pub fn completed(url: Option<String>, recording_url: Option<String>) -> Result<Self, Error> {
        Ok(Self::Completed {
            url: HttpUrl::parse_opt("url", url)?,
            recording_url: HttpUrl::parse_opt("recordingUrl", recording_url)?,
        })
    }

    /// A failure.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `error` (empty or over 2,000 characters).
    pub fn failed(error: Option<String>) -> Result<Self, Error> {
        Ok(Self::Failed {
            error: error
                .map(|e| required_text("error", e, MAX_ERROR))
                .transpose()?,
        })
    }

    fn status(&self) -> BrowserSessionStatus {
        match self {
            Self::Completed { .. } => BrowserSessionStatus::Completed,
            Self::Failed { .. } => BrowserSessionStatus::Failed,
        }
    }
}

/// Ends the caller's active session `id` at `now`, setting `completed_at`.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// not active at `now` (finished, or past its deadline); `CONFLICT` when it
/// changed between read and write.
#[tracing::instrument(name = "browser.finish_session", skip_all, err(level = "debug"))]
pub async fn finish_session(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    finish: Finish,
    now: DateTime<Utc>,
) -> Result<browser_session::Model, Error> {
    let current = session(db, actor, id, now)
        .await?
        .ok_or(Error::NotFound("browser session"))?;
    let to = BrowserSessionStatus::parse(&current.status)?.transition(finish.status())?;
    use browser_session::Column as C;
    let mut update = browser_session::Entity::update_many()
        .col_expr(C::Status, Expr::value(to.as_str()))
        .col_expr(C::CompletedAt, Expr::value(Some(now)))
        .col_expr(C::UpdatedAt, Expr::value(now));
    match finish {
        Finish::Completed { url, recording_url } => {
            if let Some(url) = url {
                update = update.col_expr(C::Url, Expr::value(url.into_string()));
            }
            if let Some(rec) = recording_url {
                update = update.col_expr(C::RecordingUrl, Expr::value(rec.into_string()));
            }
        }
        Finish::Failed { error } => {
            update = update.col_expr(C::Error, Expr::value(error));
        }
    }
    let done = update
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .filter(live_at(now))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(Error::Conflict {
            field: None,
            message: "the browser session changed meanwhile; read it again".into(),
        });
    }
    session(db, actor, id, now)
        .await?
        .ok_or(Error::NotFound("browser session"))
}

/// Writes `expired` on every active session whose deadline passed by `now`,
/// finished at its deadline. Returns how many rows moved. Idempotent, and
/// safe on several instances at once: the update is conditional on `active`.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "browser.expire_sessions", skip_all, err(level = "debug"))]
pub async fn expire_sessions(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, Error> {
    use browser_session::Column as C;
    let done = browser_session::Entity::update_many()
        .col_expr(
            C::Status,
            Expr::value(BrowserSessionStatus::Expired.as_str()),
        )
        .col_expr(C::CompletedAt, Expr::col(C::ExpiresAt))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Status.eq(BrowserSessionStatus::Active.as_str()))
        .filter(C::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// The periodic job that persists session expiry ([`expire_sessions`]).
pub struct ExpiryJob {
    /// The pool.
    pub db: DatabaseConnection,
    /// The time source.
    pub clock: SharedClock,
}

#[async_trait::async_trait]
impl kernel::jobs::Job for ExpiryJob {
    fn name(&self) -> &'static str {
        "agents.browser_session_expiry"
    }

    async fn run(&self) -> Result<(), Error> {
        let moved = expire_sessions(&self.db, self.clock.now()).await?;
        if moved > 0 {
            tracing::info!(moved, "browser sessions expired");
        }
        Ok(())
    }
}

/// How strictly a context is kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Serves one client only; never reused for another client's sessions.
    #[default]
    Strict,
    /// May be reused across the owner's clients.
    Shared,
}

impl IsolationLevel {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Strict, Self::Shared];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Shared => "shared",
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
            .ok_or_else(|| Error::Internal(format!("unknown isolation level {text:?}").into()))
    }
}

/// A context's storage in plaintext: a JSON object of cookies and local
/// storage. Its `Debug` prints `[redacted]`, so it cannot reach a log.
#[derive(Clone, PartialEq)]
pub struct Storage(Json);

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Storage {
    /// Parses storage: a JSON object of at most [`MAX_STORAGE_BYTES`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `storage`.
    pub fn parse(value: Json) -> Result<Self, Error> {
        json_object("storage", Some(value), MAX_STORAGE_BYTES)?
            .map(Self)
            .ok_or_else(|| Error::bad_input("storage", "must be a JSON object"))
    }

    /// The plaintext document.
    pub fn into_json(self) -> Json {
        self.0
    }
}

/// A browser context to create, parsed.
#[derive(Debug, Clone)]
pub struct NewBrowserContext {
    client_id: Option<String>,
    context_id: String,
    isolation: IsolationLevel,
    storage: Option<Storage>,
    metadata: Option<Json>,
    expires_at: Option<DateTime<Utc>>,
}

/// The raw fields of a browser context to create.
#[derive(Debug, Clone, Default)]
pub struct BrowserContextFields {
    /// The owner's reference for the client served.
    pub client_id: Option<String>,
    /// The provider's context id.
    pub context_id: String,
    /// Default `strict`.
    pub isolation: Option<IsolationLevel>,
    /// Cookies and local storage, a JSON object.
    pub storage: Option<Json>,
    /// Free-form details, a JSON object.
    pub metadata: Option<Json>,
    /// When the context stops being usable.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewBrowserContext {
    /// Parses a request received at `now`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `clientId`, `contextId`, `storage` (an object of at
    /// most 256 KiB), `metadata` or `expiresAt` (must be in the future).
    pub fn parse(raw: BrowserContextFields, now: DateTime<Utc>) -> Result<Self, Error> {
        future("expiresAt", raw.expires_at, now)?;
        Ok(Self {
            client_id: raw
                .client_id
                .map(|c| provider_id("clientId", c))
                .transpose()?,
            context_id: provider_id("contextId", raw.context_id)?,
            isolation: raw.isolation.unwrap_or_default(),
            storage: raw.storage.map(Storage::parse).transpose()?,
            metadata: json_object("metadata", raw.metadata, MAX_METADATA_BYTES)?,
            expires_at: raw.expires_at,
        })
    }
}

/// The associated data a context's storage is sealed with: owner and row.
fn aad(user_id: Uuid, id: Uuid) -> Vec<u8> {
    format!("browser_contexts/{user_id}/{id}").into_bytes()
}

/// The four storage columns of a row.
struct SealedStorage {
    ciphertext: Option<String>,
    iv: Option<String>,
    auth_tag: Option<String>,
    key_version: Option<i32>,
}

fn seal(
    keys: &KeyRing,
    user_id: Uuid,
    id: Uuid,
    storage: Option<&Storage>,
) -> Result<SealedStorage, Error> {
    let Some(storage) = storage else {
        return Ok(seal_nothing());
    };
    let plain = serde_json::to_vec(&storage.0).map_err(Error::internal)?;
    seal_bytes(keys, user_id, id, &plain)
}

fn seal_bytes(
    keys: &KeyRing,
    user_id: Uuid,
    id: Uuid,
    plain: &[u8],
) -> Result<SealedStorage, Error> {
    let sealed = keys
        .seal(plain, &aad(user_id, id))
        .map_err(Error::internal)?;
    let key_version = i32::try_from(sealed.key_version)
        .map_err(|_| Error::Internal("key version above 2^31".into()))?;
    let parts = sealed.to_parts();
    Ok(SealedStorage {
        ciphertext: Some(parts.ciphertext),
        iv: Some(parts.iv),
        auth_tag: Some(parts.auth_tag),
        key_version: Some(key_version),
    })
}

/// Opens a row's storage; `None` when it has none.
///
/// # Errors
/// Internal when the seal does not open: tampered, copied from another row or
/// user, or sealed under a key the ring no longer holds.
pub fn open_storage(
    keys: &KeyRing,
    row: &browser_context::Model,
) -> Result<Option<Storage>, Error> {
    let Some(plain) = open_bytes(keys, row).map_err(Error::internal)? else {
        return Ok(None);
    };
    let json = serde_json::from_slice(&plain).map_err(Error::internal)?;
    Ok(Some(Storage(json)))
}

/// The plaintext bytes of a row's storage; `None` when it has none.
fn open_bytes(
    keys: &KeyRing,
    row: &browser_context::Model,
) -> Result<Option<Vec<u8>>, CryptoError> {
    let (Some(ciphertext), Some(iv), Some(auth_tag), Some(version)) = (
        row.encrypted_storage.clone(),
        row.storage_iv.clone(),
        row.storage_auth_tag.clone(),
        row.storage_key_version,
    ) else {
        return Ok(None);
    };
    let version = u32::try_from(version).map_err(|_| CryptoError::DoesNotOpen)?;
    let parts = SealedParts {
        iv,
        ciphertext,
        auth_tag,
    };
    let sealed = Sealed::from_parts(version, &parts)?;
    keys.open(&sealed, &aad(row.user_id, row.id)).map(Some)
}

/// Whether a context can be used at `now`: not deactivated, not past its deadline.
pub fn context_usable(row: &browser_context::Model, now: DateTime<Utc>) -> bool {
    row.is_active && row.expires_at.is_none_or(|at| at > now)
}

fn usable_at(now: DateTime<Utc>) -> Condition {
    use browser_context::Column as C;
    Condition::all().add(C::IsActive.eq(true)).add(
        Condition::any()
            .add(C::ExpiresAt.is_null())
            .add(C::ExpiresAt.gt(now)),
    )
}

/// Creates a context for the caller, its storage sealed.
///
/// # Errors
/// `CONFLICT` on `contextId` when that provider context is recorded already by the caller.
#[tracing::instrument(name = "browser.create_context", skip_all, err(level = "debug"))]
pub async fn create_context(
    db: &impl ConnectionTrait,
    actor: &Actor,
    keys: &KeyRing,
    req: NewBrowserContext,
    now: DateTime<Utc>,
) -> Result<browser_context::Model, Error> {
    let id = new_id();
    let sealed = seal(keys, actor.user_id, id, req.storage.as_ref())?;
    browser_context::ActiveModel {
        id: Set(id),
        user_id: Set(actor.user_id),
        client_id: Set(req.client_id),
        context_id: Set(req.context_id),
        isolation_level: Set(req.isolation.as_str().to_owned()),
        encrypted_storage: Set(sealed.ciphertext),
        storage_iv: Set(sealed.iv),
        storage_auth_tag: Set(sealed.auth_tag),
        storage_key_version: Set(sealed.key_version),
        metadata: Set(req.metadata),
        last_used_at: Set(None),
        is_active: Set(true),
        expires_at: Set(req.expires_at),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::conflict("contextId", "this browser context is recorded already")
        } else {
            e.into()
        }
    })
}

/// The caller's context `id`, or `None`.
///
/// # Errors
/// Internal on database failure.
pub async fn context(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<Option<browser_context::Model>, Error> {
    Ok(browser_context::Entity::find_by_id(id)
        .filter(browser_context::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?)
}

async fn own_context(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<browser_context::Model, Error> {
    context(db, actor, id)
        .await?
        .ok_or(Error::NotFound("browser context"))
}

/// The caller's contexts, newest first; with `usable_only`, only those usable at `now`.
///
/// # Errors
/// Internal on database failure.
#[tracing::instrument(name = "browser.list_contexts", skip_all, err(level = "debug"))]
pub async fn list_contexts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    usable_only: bool,
    window: Window,
    now: DateTime<Utc>,
) -> Result<Page<browser_context::Model>, Error> {
    let mut select =
        browser_context::Entity::find().filter(browser_context::Column::UserId.eq(actor.user_id));
    if usable_only {
        select = select.filter(usable_at(now));
    }
    kernel::page::fetch(db, select, browser_context::Column::Id, |c| c.id, window).await
}

fn storage_columns(sealed: SealedStorage) -> [(browser_context::Column, SimpleExpr); 4] {
    use browser_context::Column as C;
    [
        (C::EncryptedStorage, Expr::value(sealed.ciphertext)),
        (C::StorageIv, Expr::value(sealed.iv)),
        (C::StorageAuthTag, Expr::value(sealed.auth_tag)),
        (C::StorageKeyVersion, Expr::value(sealed.key_version)),
    ]
}

/// Replaces a usable context's storage, sealed afresh under the newest key.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deactivated or expired; `CONFLICT` when it changed between read and write.
#[tracing::instrument(name = "browser.update_storage", skip_all, err(level = "debug"))]
pub async fn update_storage(
    db: &impl ConnectionTrait,
    actor: &Actor,
    keys: &KeyRing,
    id: Uuid,
    storage: Storage,
    now: DateTime<Utc>,
) -> Result<browser_context::Model, Error> {
    let current = own_context(db, actor, id).await?;
    if !context_usable(&current, now) {
        return Err(Error::InvalidTransition(
            "a deactivated or expired browser context keeps its storage as it is".into(),
        ));
    }
    let sealed = seal(keys, current.user_id, current.id, Some(&storage))?;
    write_storage(db, actor, id, sealed, None, now).await
}

/// Deactivates a context and drops its sealed storage: a retired context
/// holds no live cookies.
///
/// # Errors
/// `NOT_FOUND` when it is not the caller's; `INVALID_TRANSITION` when it is
/// deactivated already; `CONFLICT` when it changed between read and write.
#[tracing::instrument(name = "browser.deactivate_context", skip_all, err(level = "debug"))]
pub async fn deactivate_context(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<browser_context::Model, Error> {
    let current = own_context(db, actor, id).await?;
    if !current.is_active {
        return Err(Error::InvalidTransition(
            "the browser context is deactivated already".into(),
        ));
    }
    let none = seal_nothing();
    write_storage(db, actor, id, none, Some(false), now).await
}

fn seal_nothing() -> SealedStorage {
    SealedStorage {
        ciphertext: None,
        iv: None,
        auth_tag: None,
        key_version: None,
    }
}

/// Writes the storage columns (and `is_active` when given) of an active row.
async fn write_storage(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    sealed: SealedStorage,
    is_active: Option<bool>,
    now: DateTime<Utc>,
) -> Result<browser_context::Model, Error> {
    use browser_context::Column as C;
    let mut update =
        browser_context::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    for (col, value) in storage_columns(sealed) {
        update = update.col_expr(col, value);
    }
    if let Some(active) = is_active {
        update = update.col_expr(C::IsActive, Expr::value(active));
    }
    let done = update
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .filter(C::IsActive.eq(true))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(Error::Conflict {
            field: None,
            message: "the browser context changed meanwhile; read it again".into(),
        });
    }
    own_context(db, actor, id).await
}

/// Opens the caller's context storage and stamps `last_used_at`. `None` when
/// the context is not the caller's; the storage is `None` when it has none.
///
/// # Errors
/// Internal when the seal does not open (see [`open_storage`]).
#[tracing::instrument(name = "browser.reveal_storage", skip_all, err(level = "debug"))]
pub async fn reveal_storage(
    db: &impl ConnectionTrait,
    actor: &Actor,
    keys: &KeyRing,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(browser_context::Model, Option<Storage>)>, Error> {
    use browser_context::Column as C;
    // Stamp first: the update takes the row lock, so the read below sees the
    // storage as of this use and no concurrent writer interleaves.
    let done = browser_context::Entity::update_many()
        .col_expr(C::LastUsedAt, Expr::value(Some(now)))
        .filter(C::Id.eq(id))
        .filter(C::UserId.eq(actor.user_id))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Ok(None);
    }
    let row = own_context(db, actor, id).await?;
    let storage = open_storage(keys, &row)?;
    Ok(Some((row, storage)))
}

/// Re-seals the storage of every context whose key version is not the newest,
/// `batch_size` rows per transaction in id order, with the semantics of
/// [`core_auth::vault::rotate`]: deactivated and expired contexts are re-sealed
/// too, so old keys can be retired, and rows without storage have nothing to
/// re-seal.
///
/// Each write is conditional on the row still holding the key version and
/// nonce that were read, so the run is resumable after a crash, a second run
/// changes nothing, and a concurrent rotation or storage update is never
/// overwritten. Rows whose seal does not open are counted as failed and left
/// as they are. Batches are separate transactions so that a long rotation
/// holds no lock for long; that is why this takes the pool.
///
/// # Errors
/// Internal, when the database fails; rows of finished batches stay rotated.
#[tracing::instrument(name = "browser.rotate", skip_all, err(level = "debug"))]
pub async fn rotate(
    db: &DatabaseConnection,
    keys: &KeyRing,
    batch_size: u64,
) -> Result<Rotation, Error> {
    use browser_context::Column as C;
    let to_version = keys.current_version();
    let current =
        i32::try_from(to_version).map_err(|_| Error::Internal("key version above 2^31".into()))?;
    let mut report = Rotation {
        to_version,
        ..Default::default()
    };
    let mut after: Option<Uuid> = None;
    loop {
        let mut select = browser_context::Entity::find()
            .filter(C::StorageKeyVersion.is_not_null())
            .filter(C::StorageKeyVersion.ne(current))
            .order_by_asc(C::Id)
            .limit(Ord::max(batch_size, 1));
        if let Some(last) = after {
            select = select.filter(C::Id.gt(last));
        }
        let txn = db.begin().await?;
        let rows = select.all(&txn).await?;
        let Some(last) = rows.last() else {
            txn.commit().await?;
            break;
        };
        after = Some(last.id);
        for row in rows {
            // The CHECK constraint sets the four storage columns together, so
            // a row with a key version has a seal to open.
            let opened = open_bytes(keys, &row);
            let (Ok(Some(plain)), Some(version), Some(iv)) =
                (opened, row.storage_key_version, row.storage_iv.as_deref())
            else {
                tracing::warn!(browser_context_id = %row.id, key_version = row.storage_key_version, "browser context storage does not open; left as is");
                report.failed += 1;
                continue;
            };
            let sealed = seal_bytes(keys, row.user_id, row.id, &plain)?;
            let mut update = browser_context::Entity::update_many();
            for (col, value) in storage_columns(sealed) {
                update = update.col_expr(col, value);
            }
            let done = update
                .filter(C::Id.eq(row.id))
                .filter(C::StorageKeyVersion.eq(version))
                // A nonce is never reused, so an unchanged iv means an unchanged seal.
                .filter(C::StorageIv.eq(iv))
                .exec(&txn)
                .await?;
            if done.rows_affected == 1 {
                report.resealed += 1;
            } else {
                report.skipped += 1;
            }
        }
        txn.commit().await?;
    }
    Ok(report)
}
