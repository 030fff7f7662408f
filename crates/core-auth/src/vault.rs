//! The credential vault: secrets other domains call services with (API keys of
//! third parties, passwords, OAuth tokens), sealed with AES-256-GCM under the
//! versioned key ring.
//!
//! Each secret is sealed with associated data naming its owner and its row, so
//! a ciphertext copied to another row or user does not open. The plaintext
//! leaves the vault only through [`Auth::reveal_credential`], which counts the
//! use; [`rotate`] re-seals old rows under the newest key.

use crate::Auth;
use crate::entity::credential;
use crate::profile::Patch;
use kernel::actor::Actor;
use kernel::crypto::{CryptoError, KeyRing, Sealed, SealedParts};
use kernel::error::is_unique_violation;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    ExprTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// Largest secret accepted, in bytes: room for a service-account JSON file.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Largest metadata document accepted, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Refusals and failures of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// An input field failed to parse.
    #[error("{message}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The owner has a live credential with this name already.
    #[error("a credential with this name already exists")]
    NameTaken,
    /// No live credential with this id for this caller.
    #[error("credential not found")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Sealing or opening failed; never carries secret material.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl VaultError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<VaultError> for kernel::Error {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Invalid { field, message } => kernel::Error::bad_input(field, message),
            VaultError::NameTaken => {
                kernel::Error::conflict("name", VaultError::NameTaken.to_string())
            }
            VaultError::NotFound => kernel::Error::NotFound("credential"),
            VaultError::Db(e) => kernel::Error::internal(e),
            VaultError::Crypto(e) => kernel::Error::internal(e),
        }
    }
}

/// A plaintext secret. It has no `Display` and no `Serialize`, and its `Debug`
/// prints `[redacted]`, so it cannot reach a log or an audit row by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Secret {
    /// Parses a secret: not empty, at most [`MAX_SECRET_BYTES`]. Kept byte for
    /// byte (no trimming): a secret's whitespace may matter.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `secret`.
    pub fn parse(text: String) -> Result<Self, VaultError> {
        if text.is_empty() {
            return Err(VaultError::invalid("secret", "must not be empty"));
        }
        if text.len() > MAX_SECRET_BYTES {
            return Err(VaultError::invalid(
                "secret",
                format!("must be at most {MAX_SECRET_BYTES} bytes"),
            ));
        }
        Ok(Self(text))
    }

    /// The plaintext, for the one place that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the secret into its plaintext.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Trimmed, not empty, at most `max` characters.
fn required_text(field: &'static str, value: String, max: usize) -> Result<String, VaultError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(VaultError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(VaultError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn metadata(value: Option<Json>) -> Result<Option<Json>, VaultError> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(map)) => {
            if Json::Object(map.clone()).to_string().len() > MAX_METADATA_BYTES {
                return Err(VaultError::invalid(
                    "metadata",
                    format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
                ));
            }
            Ok(Some(Json::Object(map)))
        }
        Some(_) => Err(VaultError::invalid("metadata", "must be a JSON object")),
    }
}

/// A parsed request to store a secret.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// 1 to 255 characters, unique among the owner's live credentials.
    pub name: String,
    /// The service the secret is for (`openai`, `stripe`), 1 to 100 characters.
    pub service: String,
    /// What kind of secret (`api_key`, `password`, `oauth_token`), 1 to 50 characters.
    pub kind: String,
    /// Non-secret details (account id, scopes), a JSON object.
    pub metadata: Option<Json>,
    /// The plaintext to seal.
    pub secret: Secret,
}

impl NewCredential {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        name: String,
        service: String,
        kind: String,
        metadata_value: Option<Json>,
        secret: String,
    ) -> Result<Self, VaultError> {
        Ok(Self {
            name: required_text("name", name, 255)?,
            service: required_text("service", service, 100)?,
            kind: required_text("type", kind, 50)?,
            metadata: metadata(metadata_value)?,
            secret: Secret::parse(secret)?,
        })
    }
}

/// A parsed change to a credential. `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct CredentialUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new service.
    pub service: Option<String>,
    /// A new type.
    pub kind: Option<String>,
    /// New metadata; `Some(None)` clears it.
    pub metadata: Patch<Json>,
    /// A new secret, sealed under the newest key.
    pub secret: Option<Secret>,
}

impl CredentialUpdate {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        name: Option<String>,
        service: Option<String>,
        kind: Option<String>,
        metadata_value: Patch<Json>,
        secret: Option<String>,
    ) -> Result<Self, VaultError> {
        Ok(Self {
            name: name.map(|v| required_text("name", v, 255)).transpose()?,
            service: service
                .map(|v| required_text("service", v, 100))
                .transpose()?,
            kind: kind.map(|v| required_text("type", v, 50)).transpose()?,
            metadata: metadata_value.map(metadata).transpose()?,
            secret: secret.map(Secret::parse).transpose()?,
        })
    }
}

/// What the audit log records of a credential: never the sealed parts.
pub fn audit_view(c: &credential::Model) -> Json {
    serde_json::json!({
        "name": c.name,
        "service": c.service,
        "type": c.kind,
        "metadata": c.metadata,
        "keyVersion": c.key_version,
        "useCount": c.use_count,
    })
}

/// The associated data a row's secret is sealed with: owner and row.
fn aad(user_id: Uuid, id: Uuid) -> Vec<u8> {
    format!("credentials/{user_id}/{id}").into_bytes()
}

struct SealedRow {
    parts: SealedParts,
    key_version: i32,
}

fn seal(keys: &KeyRing, user_id: Uuid, id: Uuid, secret: &Secret) -> Result<SealedRow, VaultError> {
    let sealed = keys.seal(secret.expose().as_bytes(), &aad(user_id, id))?;
    let key_version = i32::try_from(sealed.key_version)
        .map_err(|_| CryptoError::BadKeyRing("key version above 2^31"))?;
    Ok(SealedRow {
        parts: sealed.to_parts(),
        key_version,
    })
}

fn open(keys: &KeyRing, row: &credential::Model) -> Result<Secret, VaultError> {
    let version = u32::try_from(row.key_version).map_err(|_| CryptoError::DoesNotOpen)?;
    let parts = SealedParts {
        iv: row.iv.clone(),
        ciphertext: row.encrypted_data.clone(),
        auth_tag: row.auth_tag.clone(),
    };
    let sealed = Sealed::from_parts(version, &parts)?;
    let plain = keys.open(&sealed, &aad(row.user_id, row.id))?;
    let text = String::from_utf8(plain).map_err(|_| CryptoError::DoesNotOpen)?;
    Ok(Secret(text))
}

fn name_taken(err: DbErr) -> VaultError {
    if is_unique_violation(&err) {
        VaultError::NameTaken
    } else {
        VaultError::Db(err)
    }
}

fn live(actor: &Actor, id: Uuid) -> sea_orm::Select<credential::Entity> {
    credential::Entity::find()
        .filter(credential::Column::Id.eq(id))
        .filter(credential::Column::UserId.eq(actor.user_id))
        .filter(credential::Column::DeletedAt.is_null())
}

impl Auth {
    /// Seals and stores a secret for the caller.
    ///
    /// # Errors
    /// `CONFLICT` on `name` when the caller has a live credential of that name.
    #[tracing::instrument(name = "vault.create_credential", skip_all, err(level = "debug"))]
    pub async fn create_credential(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        keys: &KeyRing,
        req: NewCredential,
    ) -> Result<credential::Model, VaultError> {
        let id = new_id();
        let sealed = seal(keys, actor.user_id, id, &req.secret)?;
        let now = self.clock.now();
        credential::ActiveModel {
            id: Set(id),
            user_id: Set(actor.user_id),
            name: Set(req.name),
            service: Set(req.service),
            kind: Set(req.kind),
            encrypted_data: Set(sealed.parts.ciphertext),
            iv: Set(sealed.parts.iv),
            auth_tag: Set(sealed.parts.auth_tag),
            key_version: Set(sealed.key_version),
            metadata: Set(req.metadata),
            last_used_at: Set(None),
            use_count: Set(0),
            deleted_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(name_taken)
    }

    /// One of the caller's live credentials, without its secret.
    ///
    /// # Errors
    /// `NOT_FOUND` when it is not the caller's or is deleted.
    #[tracing::instrument(name = "vault.credential", skip_all, err(level = "debug"))]
    pub async fn credential(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<credential::Model, VaultError> {
        live(actor, id).one(db).await?.ok_or(VaultError::NotFound)
    }

    /// The caller's live credentials, newest first, without secrets.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "vault.list_credentials", skip_all, err(level = "debug"))]
    pub async fn list_credentials(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        window: Window,
    ) -> Result<Page<credential::Model>, kernel::Error> {
        let select = credential::Entity::find()
            .filter(credential::Column::UserId.eq(actor.user_id))
            .filter(credential::Column::DeletedAt.is_null());
        kernel::page::fetch(db, select, credential::Column::Id, |c| c.id, window).await
    }

    /// Changes a credential; a new secret is sealed under the newest key.
    /// Returns the credential before and after.
    ///
    /// # Errors
    /// `NOT_FOUND` when it is not the caller's or is deleted; `CONFLICT` on `name`.
    #[tracing::instrument(name = "vault.update_credential", skip_all, err(level = "debug"))]
    pub async fn update_credential(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        keys: &KeyRing,
        id: Uuid,
        req: CredentialUpdate,
    ) -> Result<(credential::Model, credential::Model), VaultError> {
        let old = self.credential(db, actor, id).await?;
        let mut new = old.clone();
        new.updated_at = self.clock.now();
        // Only the changed columns are written, so a concurrent reveal's count survives.
        let mut change = credential::ActiveModel {
            updated_at: Set(new.updated_at),
            ..Default::default()
        };
        if let Some(name) = req.name {
            new.name = name.clone();
            change.name = Set(name);
        }
        if let Some(service) = req.service {
            new.service = service.clone();
            change.service = Set(service);
        }
        if let Some(kind) = req.kind {
            new.kind = kind.clone();
            change.kind = Set(kind);
        }
        if let Some(metadata) = req.metadata {
            new.metadata = metadata.clone();
            change.metadata = Set(metadata);
        }
        if let Some(secret) = &req.secret {
            let sealed = seal(keys, old.user_id, old.id, secret)?;
            new.encrypted_data = sealed.parts.ciphertext;
            new.iv = sealed.parts.iv;
            new.auth_tag = sealed.parts.auth_tag;
            new.key_version = sealed.key_version;
            change.encrypted_data = Set(new.encrypted_data.clone());
            change.iv = Set(new.iv.clone());
            change.auth_tag = Set(new.auth_tag.clone());
            change.key_version = Set(new.key_version);
        }
        let done = credential::Entity::update_many()
            .set(change)
            .filter(credential::Column::Id.eq(id))
            .filter(credential::Column::UserId.eq(actor.user_id))
            .filter(credential::Column::DeletedAt.is_null())
            .exec(db)
            .await
            .map_err(name_taken)?;
        if done.rows_affected == 0 {
            return Err(VaultError::NotFound);
        }
        Ok((old, new))
    }

    /// Soft-deletes a credential: it can no longer be read or revealed, and its name is free.
    ///
    /// # Errors
    /// `NOT_FOUND` when it is not the caller's or is deleted already.
    #[tracing::instrument(name = "vault.delete_credential", skip_all, err(level = "debug"))]
    pub async fn delete_credential(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<credential::Model, VaultError> {
        let old = self.credential(db, actor, id).await?;
        let now = self.clock.now();
        let done = credential::Entity::update_many()
            .col_expr(credential::Column::DeletedAt, Expr::value(now))
            .col_expr(credential::Column::UpdatedAt, Expr::value(now))
            .filter(credential::Column::Id.eq(id))
            .filter(credential::Column::UserId.eq(actor.user_id))
            .filter(credential::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        if done.rows_affected == 0 {
            return Err(VaultError::NotFound);
        }
        Ok(old)
    }

    /// Opens a credential's secret for the caller and counts the use, in the
    /// caller's transaction. Returns the counted credential and the plaintext.
    ///
    /// # Errors
    /// `NOT_FOUND` when it is not the caller's or is deleted; internal when
    /// the ciphertext does not open (tampered, moved, or its key is gone).
    #[tracing::instrument(name = "vault.reveal_credential", skip_all, err(level = "debug"))]
    pub async fn reveal_credential(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        keys: &KeyRing,
        id: Uuid,
    ) -> Result<(credential::Model, Secret), VaultError> {
        // Count first: the update takes the row lock, so the read below sees
        // the secret as of this use and no concurrent writer can interleave.
        let done = credential::Entity::update_many()
            .col_expr(
                credential::Column::UseCount,
                Expr::col(credential::Column::UseCount).add(1),
            )
            .col_expr(
                credential::Column::LastUsedAt,
                Expr::value(Some(self.clock.now())),
            )
            .filter(credential::Column::Id.eq(id))
            .filter(credential::Column::UserId.eq(actor.user_id))
            .filter(credential::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        if done.rows_affected == 0 {
            return Err(VaultError::NotFound);
        }
        let row = self.credential(db, actor, id).await?;
        let secret = open(keys, &row)?;
        Ok((row, secret))
    }
}

/// What one key-rotation run did to one sealed table: [`rotate`] here, and
/// every other table sealed with the key ring (browser context storage in
/// `agents`) reports the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// The key version rows were re-sealed under.
    pub to_version: u32,
    /// Rows re-sealed by this run.
    pub resealed: u64,
    /// Rows changed by someone else between read and write (a concurrent
    /// rotation or a new secret); they were left to that writer's seal.
    pub skipped: u64,
    /// Rows whose ciphertext did not open (unknown key version or tampered).
    pub failed: u64,
}

/// Re-seals every credential (deleted ones too, so old keys can be retired)
/// whose key version is not the newest, `batch_size` rows per transaction.
///
/// Each write is conditional on the row still holding the ciphertext that was
/// read, so the run is resumable after a crash, a second run changes nothing,
/// and concurrent runs or concurrent secret updates are never overwritten.
/// Batches are separate transactions so that a long rotation holds no lock for
/// long; that is why this takes the pool rather than a caller's transaction.
///
/// # Errors
/// Internal, when the database fails; rows of finished batches stay rotated.
#[tracing::instrument(name = "vault.rotate", skip_all, err(level = "debug"))]
pub async fn rotate(
    db: &DatabaseConnection,
    keys: &KeyRing,
    batch_size: u64,
) -> Result<Rotation, VaultError> {
    let to_version = keys.current_version();
    let current =
        i32::try_from(to_version).map_err(|_| CryptoError::BadKeyRing("key version above 2^31"))?;
    let mut report = Rotation {
        to_version,
        ..Default::default()
    };
    let mut after: Option<Uuid> = None;
    loop {
        let mut select = credential::Entity::find()
            .filter(credential::Column::KeyVersion.ne(current))
            .order_by_asc(credential::Column::Id)
            .limit(Ord::max(batch_size, 1));
        if let Some(last) = after {
            select = select.filter(credential::Column::Id.gt(last));
        }
        let txn = db.begin().await?;
        let rows = select.all(&txn).await?;
        let Some(last) = rows.last() else {
            txn.commit().await?;
            break;
        };
        after = Some(last.id);
        for row in rows {
            let secret = match open(keys, &row) {
                Ok(secret) => secret,
                Err(VaultError::Crypto(_)) => {
                    tracing::warn!(credential_id = %row.id, key_version = row.key_version, "credential does not open; left as is");
                    report.failed += 1;
                    continue;
                }
                Err(other) => return Err(other),
            };
            let sealed = seal(keys, row.user_id, row.id, &secret)?;
            let done = credential::Entity::update_many()
                .col_expr(
                    credential::Column::EncryptedData,
                    Expr::value(sealed.parts.ciphertext),
                )
                .col_expr(credential::Column::Iv, Expr::value(sealed.parts.iv))
                .col_expr(
                    credential::Column::AuthTag,
                    Expr::value(sealed.parts.auth_tag),
                )
                .col_expr(
                    credential::Column::KeyVersion,
                    Expr::value(sealed.key_version),
                )
                .filter(credential::Column::Id.eq(row.id))
                .filter(credential::Column::KeyVersion.eq(row.key_version))
                // A nonce is never reused, so an unchanged iv means an unchanged seal.
                .filter(credential::Column::Iv.eq(row.iv.as_str()))
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
