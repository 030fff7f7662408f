//! The credential vault's part of the schema. Secrets go in through
//! `createCredential`/`updateCredential` and come out only through `revealCredential`.

use crate::Auth;
use crate::entity::credential;
use crate::vault::{CredentialUpdate, NewCredential, audit_view};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::crypto::KeyRing;
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;

fn auth<'a>(ctx: &Context<'a>) -> &'a Auth {
    ctx.data_unchecked::<Auth>()
}

fn keys<'a>(ctx: &Context<'a>) -> &'a KeyRing {
    // The server registers the key ring at start; without one it does not start.
    ctx.data_unchecked::<KeyRing>()
}

/// A stored secret's description. The secret itself is never part of it.
#[derive(SimpleObject, Clone)]
pub struct Credential {
    /// Opaque id.
    pub id: ID,
    /// The label, unique among the owner's credentials.
    pub name: String,
    /// The service the secret is for, e.g. `openai`.
    pub service: String,
    /// What kind of secret, e.g. `api_key`, `password`, `oauth_token`.
    #[graphql(name = "type")]
    pub kind: String,
    /// Non-secret details given by the owner.
    pub metadata: Option<Json<serde_json::Value>>,
    /// How many times the secret has been revealed.
    pub use_count: i32,
    /// The last time the secret was revealed.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the credential was stored.
    pub created_at: DateTime<Utc>,
    /// The last change to the credential.
    pub updated_at: DateTime<Utc>,
}

impl From<credential::Model> for Credential {
    fn from(m: credential::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            name: m.name,
            service: m.service,
            kind: m.kind,
            metadata: m.metadata.map(Json),
            use_count: m.use_count,
            last_used_at: m.last_used_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A credential with its plaintext secret.
#[derive(SimpleObject)]
pub struct RevealedCredential {
    /// The credential, with this use counted.
    pub credential: Credential,
    /// The plaintext secret. Every reveal is counted and audited.
    pub secret: String,
}

/// A secret to store.
#[derive(InputObject)]
pub struct CreateCredentialInput {
    /// A label, 1 to 255 characters, unique among your credentials.
    pub name: String,
    /// The service the secret is for, 1 to 100 characters.
    pub service: String,
    /// What kind of secret, 1 to 50 characters.
    #[graphql(name = "type")]
    pub kind: String,
    /// Non-secret details, a JSON object of at most 16 KiB.
    pub metadata: Option<Json<serde_json::Value>>,
    /// The secret, at most 16 KiB. It is sealed and shown again only by `revealCredential`.
    pub secret: String,
}

/// Changes to a credential. Omit a field to keep it.
#[derive(InputObject)]
pub struct UpdateCredentialInput {
    /// The credential.
    pub id: ID,
    /// A new label.
    pub name: Option<String>,
    /// A new service.
    pub service: Option<String>,
    /// A new kind.
    #[graphql(name = "type")]
    pub kind: Option<String>,
    /// New metadata; null clears it.
    pub metadata: MaybeUndefined<Json<serde_json::Value>>,
    /// A new secret, sealed under the newest key.
    pub secret: Option<String>,
}

/// Credential vault queries.
#[derive(Default)]
pub struct VaultQuery;

#[Object]
impl VaultQuery {
    /// The caller's credentials, newest first, without their secrets.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn credentials(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Credential>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .list_credentials(ctx.db(), actor, window)
            .await
            .gql()?;
        Ok(page.into_connection(Credential::from))
    }

    /// One of the caller's credentials, without its secret.
    async fn credential(&self, ctx: &Context<'_>, id: ID) -> Result<Credential> {
        let actor = ctx.actor()?;
        let id = parse_id(&id, "id").gql()?;
        let found = auth(ctx).credential(ctx.db(), actor, id).await.gql()?;
        Ok(found.into())
    }
}

/// Credential vault mutations.
#[derive(Default)]
pub struct VaultMutation;

#[Object]
impl VaultMutation {
    /// Seals and stores a secret.
    async fn create_credential(
        &self,
        ctx: &Context<'_>,
        input: CreateCredentialInput,
    ) -> Result<Credential> {
        let actor = ctx.writer()?;
        let req = NewCredential::parse(
            input.name,
            input.service,
            input.kind,
            input.metadata.map(|j| j.0),
            input.secret,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let created = auth(ctx)
            .create_credential(&txn, actor, keys(ctx), req)
            .await
            .gql()?;
        txn.subject("credential", created.id);
        txn.changes(None, Some(audit_view(&created)));
        txn.commit().await.gql()?;
        Ok(created.into())
    }

    /// Changes a credential's description, and its secret when one is given.
    async fn update_credential(
        &self,
        ctx: &Context<'_>,
        input: UpdateCredentialInput,
    ) -> Result<Credential> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.id, "id").gql()?;
        let metadata = match input.metadata {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(j) => Some(Some(j.0)),
        };
        let req = CredentialUpdate::parse(
            input.name,
            input.service,
            input.kind,
            metadata,
            input.secret,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx)
            .update_credential(&txn, actor, keys(ctx), id, req)
            .await
            .gql()?;
        txn.subject("credential", id);
        txn.changes(Some(audit_view(&old)), Some(audit_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Deletes a credential; it can no longer be read or revealed.
    async fn delete_credential(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).delete_credential(&txn, actor, id).await.gql()?;
        txn.subject("credential", id);
        txn.changes(Some(audit_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Returns a credential's plaintext secret. Each call is counted and audited.
    async fn reveal_credential(&self, ctx: &Context<'_>, id: ID) -> Result<RevealedCredential> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let (row, secret) = auth(ctx)
            .reveal_credential(&txn, actor, keys(ctx), id)
            .await
            .gql()?;
        // A reveal is the vault's one sensitive read: it also goes to the
        // security audit log, in the same transaction, naming no secret.
        crate::security::record_access(
            &txn,
            actor,
            "credential.reveal",
            "credential",
            Some(&id.to_string()),
            Some(serde_json::json!({ "name": row.name, "useCount": row.use_count })),
        )
        .await
        .gql()?;
        txn.subject("credential", id);
        txn.changes(None, Some(audit_view(&row)));
        txn.commit().await.gql()?;
        Ok(RevealedCredential {
            credential: row.into(),
            secret: secret.into_inner(),
        })
    }
}
