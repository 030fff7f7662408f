//! Idempotency keys: a retried mutation is answered with its first response
//! instead of running twice.
//!
//! A client sends `Idempotency-Key: <1-255 printable ASCII>` with a mutation.
//! The first request with a key *claims* it by inserting an `in_progress` row
//! that either wins the unique index on `(scope, key)` or hits it; the claim
//! works the same on SQLite and PostgreSQL and takes no row locks. The winner
//! runs the work and then *completes* the row with the response it sent, which
//! is replayed byte for byte to every repeat for [`Idempotency::ttl`] (24 h).
//! A repeat whose request differs from the first one is a `CONFLICT`; a repeat
//! that arrives while the first is still running waits up to
//! [`Idempotency::wait`] for it and then replays, or is a `CONFLICT` saying the
//! first is still in progress.
//!
//! An `in_progress` row holds its key only for [`Idempotency::lease`] (60 s):
//! `expires_at` is the lease's end until completion and the replay window's end
//! after it. A key whose row has expired, for either reason, is deleted when it
//! is next claimed and treated as new, and [`Idempotency::purge_expired`]
//! deletes expired rows in the background.
//!
//! A stored body may hold a secret shown once (a new API key, a revealed
//! credential), so it is sealed with the vault key ring and bound to its row;
//! a body that does not open is neither replayed nor run again (see `body`).

mod body;
pub mod entity;

pub use body::SEALED_PREFIX;

use crate::clock::SharedClock;
use crate::crypto::{CryptoError, KeyRing};
use crate::error::{Code, Error};
use crate::id::new_id;
use async_graphql::ServerError;
use chrono::{DateTime, Duration, Utc};
use entity::{ActiveModel, Column, Entity};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TryInsertResult,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use uuid::Uuid;

/// The HTTP header that carries the key, also the `field` of its input errors.
pub const HEADER: &str = "Idempotency-Key";
/// The longest accepted key.
pub const MAX_KEY_LEN: usize = 255;
/// Status of a claimed key whose work has not finished.
pub const IN_PROGRESS: &str = "in_progress";
/// Status of a key whose response is stored.
pub const COMPLETED: &str = "completed";

/// A client's idempotency key: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on [`HEADER`] when empty, too long, or not printable ASCII.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let printable = text.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if text.is_empty() || text.len() > MAX_KEY_LEN || !printable {
            return Err(Error::bad_input(
                HEADER,
                "must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys a key is looked up among, so one caller's key never replays
/// another caller's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One user's keys, whichever of their sessions or API keys sent them.
    User(Uuid),
    /// Requests without credentials.
    Anonymous,
}

impl Scope {
    /// The scope of a caller, `None` being anonymous.
    pub fn of(user_id: Option<Uuid>) -> Self {
        user_id.map_or(Self::Anonymous, Self::User)
    }

    /// The stored form.
    pub fn as_stored(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Anonymous => "anonymous".to_owned(),
        }
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(*id),
            Self::Anonymous => None,
        }
    }
}

/// The fingerprint of a request: hex SHA-256 of its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash(String);

impl RequestHash {
    /// Hashes a request given as JSON; objects hash the same whatever the
    /// order of their keys.
    pub fn of(request: &Value) -> Self {
        let mut text = String::new();
        write_canonical(&mut text, request);
        Self(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// Hashes a GraphQL request: the document, the variables (absent or null
    /// counting as `{}`) and the operation name.
    pub fn of_graphql(
        query: &str,
        variables: Option<&Value>,
        operation_name: Option<&str>,
    ) -> Self {
        let variables = match variables {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v) => v.clone(),
        };
        Self::of(&serde_json::json!({
            "query": query,
            "variables": variables,
            "operationName": operation_name,
        }))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// JSON with object keys sorted and no whitespace.
fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", Value::String(key.clone()));
                write_canonical(out, item);
            }
            out.push('}');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// A response as sent to the client, stored for replay.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, byte for byte.
    pub body: String,
}

impl std::fmt::Debug for StoredResponse {
    // The body may hold a secret shown once.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Proof of a won claim: pass it to [`Idempotency::complete`] or
/// [`Idempotency::release`].
#[derive(Debug)]
#[must_use = "a claimed key blocks repeats until it is completed, released or its lease ends"]
pub struct Ticket {
    id: Uuid,
    scope: String,
    key: String,
    request_hash: String,
}

impl Ticket {
    /// The row the response is stored in, as its seal names it.
    fn row(&self, status_code: i32) -> body::Row<'_> {
        body::Row {
            id: self.id,
            scope: &self.scope,
            request_hash: &self.request_hash,
            status_code,
            key: &self.key,
        }
    }
}

/// A completed row whose stored body does not open: tampered with, moved from
/// another row, or sealed under a key the ring no longer holds. Never carries
/// the body.
#[derive(Debug, thiserror::Error)]
#[error("the response stored in idempotency row {row} does not open: {reason}")]
pub struct Unreadable {
    /// The row's id.
    pub row: Uuid,
    /// Why it does not open.
    pub reason: CryptoError,
}

/// What one claim attempt found.
#[derive(Debug)]
pub enum Claim {
    /// The key is ours: run the work.
    Won(Ticket),
    /// The key's first request finished: answer with its response.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// The key's first request is still running.
    InProgress,
}

/// What [`Idempotency::claim`] settled on.
#[derive(Debug)]
pub enum Claimed {
    /// The key is ours: run the work, then complete or release the ticket.
    Run(Ticket),
    /// Answer with the first request's response.
    Replay(StoredResponse),
}

/// The idempotency store's settings, clock and keys.
#[derive(Debug, Clone)]
pub struct Idempotency {
    clock: SharedClock,
    keys: KeyRing,
    /// How long a completed response is replayed. Default 24 h.
    pub ttl: Duration,
    /// How long an unfinished claim holds its key, so a crashed request cannot
    /// block it for ever. Default 60 s.
    pub lease: Duration,
    /// How long a repeat waits for an unfinished first request. Default 10 s.
    pub wait: std::time::Duration,
    /// How often a waiting repeat looks again. Default 50 ms.
    pub poll: std::time::Duration,
}

impl Idempotency {
    /// The store with its default windows; `keys` (the vault's key ring) seal
    /// the stored bodies. A key must stay in the ring for [`Idempotency::ttl`]
    /// after a newer one is added, or the bodies it sealed stop replaying.
    pub fn new(clock: SharedClock, keys: KeyRing) -> Self {
        Self {
            clock,
            keys,
            ttl: Duration::hours(24),
            lease: Duration::seconds(60),
            wait: std::time::Duration::from_secs(10),
            poll: std::time::Duration::from_millis(50),
        }
    }

    /// One attempt to claim `key` for a request hashing to `hash`.
    ///
    /// Run it on the pool, not inside the work's transaction: the claim must
    /// be visible to concurrent repeats at once.
    ///
    /// # Errors
    /// [`Unreadable`] as an internal error when the stored response does not
    /// open; database errors as internal ones.
    #[tracing::instrument(skip_all)]
    pub async fn try_claim(
        &self,
        db: &impl ConnectionTrait,
        scope: Scope,
        key: &IdempotencyKey,
        hash: &RequestHash,
    ) -> Result<Claim, Error> {
        let stored_scope = scope.as_stored();
        // An expired row is deleted and the insert tried again; a few rounds
        // settle any race with other claimants or the purge.
        for _ in 0..4 {
            let now = self.clock.now();
            let id = new_id();
            let inserted = Entity::insert(ActiveModel {
                id: Set(id),
                scope: Set(stored_scope.clone()),
                user_id: Set(scope.user_id()),
                key: Set(key.as_str().to_owned()),
                request_hash: Set(hash.as_str().to_owned()),
                status: Set(IN_PROGRESS.to_owned()),
                status_code: Set(None),
                response_body: Set(None),
                created_at: Set(now),
                expires_at: Set(now + self.lease),
            })
            .on_conflict_do_nothing_on([Column::Scope, Column::Key])
            .exec_without_returning(db)
            .await?;
            if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                return Ok(Claim::Won(Ticket {
                    id,
                    scope: stored_scope,
                    key: key.as_str().to_owned(),
                    request_hash: hash.as_str().to_owned(),
                }));
            }
            let Some(row) = Entity::find()
                .filter(Column::Scope.eq(stored_scope.as_str()))
                .filter(Column::Key.eq(key.as_str()))
                .one(db)
                .await?
            else {
                continue;
            };
            if row.expires_at <= now {
                Entity::delete_many()
                    .filter(Column::Id.eq(row.id))
                    .filter(Column::ExpiresAt.lte(now))
                    .exec(db)
                    .await?;
                continue;
            }
            if row.request_hash != hash.as_str() {
                return Ok(Claim::Mismatch);
            }
            return match (row.status.as_str(), row.status_code, &row.response_body) {
                (COMPLETED, Some(status), Some(stored)) => Ok(Claim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(200),
                    body: self.open(&row, status, stored)?,
                })),
                _ => Ok(Claim::InProgress),
            };
        }
        Ok(Claim::InProgress)
    }

    /// The body a completed row stores, opened for that row.
    fn open(&self, row: &entity::Model, status_code: i32, stored: &str) -> Result<String, Error> {
        let bound = body::Row {
            id: row.id,
            scope: &row.scope,
            request_hash: &row.request_hash,
            status_code,
            key: &row.key,
        };
        body::open(&self.keys, &bound, stored).map_err(|reason| {
            Error::internal(Unreadable {
                row: row.id,
                reason,
            })
        })
    }

    /// Claims `key`, waiting up to [`Idempotency::wait`] while its first
    /// request is still running.
    ///
    /// # Errors
    /// `CONFLICT` on [`HEADER`] when the key was used with a different request,
    /// or its first request is still running after the wait; an internal error
    /// ([`Unreadable`]) when its stored response does not open, so the work is
    /// neither replayed nor run again; database errors as internal ones.
    pub async fn claim(
        &self,
        db: &impl ConnectionTrait,
        scope: Scope,
        key: &IdempotencyKey,
        hash: &RequestHash,
    ) -> Result<Claimed, Error> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            match self.try_claim(db, scope, key, hash).await? {
                Claim::Won(ticket) => return Ok(Claimed::Run(ticket)),
                Claim::Replay(stored) => return Ok(Claimed::Replay(stored)),
                Claim::Mismatch => {
                    return Err(Error::conflict(
                        HEADER,
                        "this Idempotency-Key was already used with a different request",
                    ));
                }
                Claim::InProgress if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::conflict(
                        HEADER,
                        "a request with this Idempotency-Key is still in progress; retry later",
                    ));
                }
                Claim::InProgress => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// Stores the response of a won claim for replay, its body sealed for the
    /// claim's row. Returns false when the claim was lost meanwhile (its lease
    /// ended and the key was taken over or purged), in which case nothing is
    /// stored.
    ///
    /// # Errors
    /// Sealing and database errors, as internal ones.
    #[tracing::instrument(skip_all)]
    pub async fn complete(
        &self,
        db: &impl ConnectionTrait,
        ticket: Ticket,
        response: &StoredResponse,
    ) -> Result<bool, Error> {
        let status_code = i32::from(response.status);
        let sealed = body::seal(&self.keys, &ticket.row(status_code), &response.body)
            .map_err(Error::internal)?;
        let done = Entity::update_many()
            .col_expr(Column::Status, Expr::value(COMPLETED))
            .col_expr(Column::StatusCode, Expr::value(status_code))
            .col_expr(Column::ResponseBody, Expr::value(sealed))
            .col_expr(Column::ExpiresAt, Expr::value(self.clock.now() + self.ttl))
            .filter(Column::Id.eq(ticket.id))
            .filter(Column::Status.eq(IN_PROGRESS))
            .exec(db)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Gives a won claim up without storing anything, so the next request
    /// with the key runs the work again.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn release(&self, db: &impl ConnectionTrait, ticket: Ticket) -> Result<(), DbErr> {
        Entity::delete_many()
            .filter(Column::Id.eq(ticket.id))
            .filter(Column::Status.eq(IN_PROGRESS))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Deletes every expired row and returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn purge_expired(&self, db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let now: DateTime<Utc> = self.clock.now();
        let purged = Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(db)
            .await?;
        Ok(purged.rows_affected)
    }

    /// Purges expired rows every `every`, in the background.
    pub fn spawn_purger(
        self,
        db: DatabaseConnection,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(err) = self.purge_expired(&db).await {
                    tracing::warn!(error = %err, "idempotency key purge failed");
                }
            }
        })
    }
}

/// Whether a GraphQL response with these errors is stored for replay.
///
/// Following Stripe, the result of work that began is stored whatever it was,
/// refusals included, but not: a document refused before execution (parse,
/// validation and limit errors carry no path), an internal error, or a rate
/// limit. After those the key is released and a retry runs the work again.
pub fn is_replayable(errors: &[ServerError]) -> bool {
    errors.iter().all(|err| {
        let code = err
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .and_then(|v| match v {
                async_graphql::Value::String(s) => Some(s.as_str()),
                _ => None,
            });
        let transient = code == Some(Code::InternalServerError.as_str())
            || code == Some(Code::RateLimited.as_str());
        !err.path.is_empty() && !transient
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::PathSegment;
    use serde_json::json;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("order 42 / retry #1").is_ok());
        for bad in ["", &"k".repeat(256), "tab\there", "naïve", "nl\n"] {
            let err = IdempotencyKey::parse(bad).expect_err(bad);
            assert_eq!(err.code(), Code::BadUserInput);
        }
    }

    #[test]
    fn scopes_keep_users_and_anonymous_callers_apart() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(
            Scope::of(Some(a)).as_stored(),
            Scope::of(Some(b)).as_stored()
        );
        assert_ne!(Scope::of(Some(a)).as_stored(), Scope::of(None).as_stored());
        assert_eq!(Scope::of(None), Scope::Anonymous);
    }

    #[test]
    fn request_hash_ignores_key_order_but_not_values() {
        let a = RequestHash::of(&json!({"x": 1, "y": {"b": [1, 2], "a": "s"}}));
        let b = RequestHash::of(&json!({"y": {"a": "s", "b": [1, 2]}, "x": 1}));
        let c = RequestHash::of(&json!({"y": {"a": "s", "b": [2, 1]}, "x": 1}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
    }

    #[test]
    fn canonical_json_is_compact_and_sorted() {
        let mut out = String::new();
        write_canonical(&mut out, &json!({"b": [true, null, 1.5], "a": "q\""}));
        assert_eq!(out, r#"{"a":"q\"","b":[true,null,1.5]}"#);
    }

    #[test]
    fn graphql_hash_covers_document_variables_and_operation_name() {
        let base = RequestHash::of_graphql("mutation { x }", Some(&json!({"a": 1})), Some("M"));
        assert_eq!(
            base,
            RequestHash::of_graphql("mutation { x }", Some(&json!({"a": 1})), Some("M"))
        );
        assert_ne!(
            base,
            RequestHash::of_graphql("mutation { y }", Some(&json!({"a": 1})), Some("M"))
        );
        assert_ne!(
            base,
            RequestHash::of_graphql("mutation { x }", Some(&json!({"a": 2})), Some("M"))
        );
        assert_ne!(
            base,
            RequestHash::of_graphql("mutation { x }", Some(&json!({"a": 1})), None)
        );
        assert_eq!(
            RequestHash::of_graphql("q", None, None),
            RequestHash::of_graphql("q", Some(&Value::Null), None)
        );
        assert_eq!(
            RequestHash::of_graphql("q", None, None),
            RequestHash::of_graphql("q", Some(&json!({})), None)
        );
    }

    fn error(code: Code, at_path: bool) -> ServerError {
        let mut err = ServerError::new("x", None);
        if at_path {
            err.path = vec![PathSegment::Field("createThing".into())];
        }
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
        err
    }

    #[test]
    fn refusals_are_stored_but_internal_errors_rate_limits_and_unparsed_documents_are_not() {
        assert!(is_replayable(&[]));
        assert!(is_replayable(&[error(Code::NotFound, true)]));
        assert!(is_replayable(&[error(Code::BadUserInput, true)]));
        assert!(is_replayable(&[error(Code::InsufficientCredits, true)]));
        assert!(!is_replayable(&[error(Code::InternalServerError, true)]));
        assert!(!is_replayable(&[error(Code::RateLimited, true)]));
        assert!(!is_replayable(&[error(Code::BadUserInput, false)]));
        assert!(!is_replayable(&[
            error(Code::NotFound, true),
            error(Code::InternalServerError, true)
        ]));
    }
}
