//! The identity part of the GraphQL schema. Resolvers are thin: read the
//! actor, open the transaction, call the service, map the output.

pub mod admin;
pub mod admin_types;
mod inputs;
mod loaders;
mod org_types;
mod organizations;
mod recovery;
mod types;
mod vault;

pub use admin::{AdminMutation, AdminQuery, AdminRootQuery};
pub use loaders::{PreferencesLoader, ProfileLoader, register_loaders};
pub use org_types::{Invitation, Member, Organization};
pub use organizations::{OrgMutation, OrgQuery};
pub use recovery::{RecoveryMutation, ResetPasswordInput};
pub use types::{ApiKey, AuthPayload, CreatedApiKey, User, UserPreferences, UserProfile};
pub use vault::{Credential, RevealedCredential, VaultMutation, VaultQuery};

use crate::Auth;
use crate::api_keys::CreateApiKey;
use crate::password::NewPassword;
use crate::sign_in::Register;
use crate::types::ClientInfo;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use inputs::{
    ChangePasswordInput, CreateApiKeyInput, LoginInput, RegisterInput, UpdatePreferencesInput,
    UpdateProfileInput,
};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;

fn auth<'a>(ctx: &Context<'a>) -> &'a Auth {
    ctx.data_unchecked::<Auth>()
}

fn client<'a>(ctx: &Context<'a>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}

/// Identity queries.
#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user, or null when the request carries no credentials.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(actor) = ctx.maybe_actor() else {
            return Ok(None);
        };
        let user = auth(ctx).me(ctx.db(), actor).await.gql()?;
        Ok(user.map(User::from))
    }

    /// The caller's active API keys, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, ApiKey>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .list_api_keys(ctx.db(), actor, window)
            .await
            .gql()?;
        Ok(page.into_connection(ApiKey::from))
    }
}

/// Identity mutations.
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in. The token is shown once.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let req = Register::parse(&input.email, input.password, input.name)
            .await
            .gql()?;
        let mut txn = ctx.begin().await?;
        let issued = auth(ctx).register(&txn, req, &client(ctx)).await.gql()?;
        txn.acting_user(issued.user.id);
        txn.subject("user", issued.user.id);
        txn.commit().await.gql()?;
        Ok(issued.into())
    }

    /// Signs in with email and password. After 5 failures within 15 minutes the
    /// email is locked out (`RATE_LIMITED` with `retryAfter`), even for the right password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let issued = auth(ctx)
            .login(ctx.db(), &input.email, input.password, &client(ctx))
            .await
            .gql()?;
        Ok(issued.into())
    }

    /// Revokes the session this request was made with.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut txn = ctx.begin().await?;
        auth(ctx).logout(&txn, actor).await.gql()?;
        txn.subject("session", actor.session_id().unwrap_or_default());
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Changes the caller's password and signs out every other session.
    async fn change_password(&self, ctx: &Context<'_>, input: ChangePasswordInput) -> Result<bool> {
        let actor = ctx.writer()?;
        let new = NewPassword::parse("newPassword", input.new_password).gql()?;
        let new = new.hash().await.gql()?;
        let mut txn = ctx.begin().await?;
        auth(ctx)
            .change_password(&txn, actor, input.current_password, new)
            .await
            .gql()?;
        txn.subject("user", actor.user_id);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Updates the caller's name and business profile. Omitted fields are kept; null clears.
    async fn update_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> Result<User> {
        let actor = ctx.writer()?;
        let update = input.parse().gql()?;
        let mut txn = ctx.begin().await?;
        txn.changes(None, serde_json::to_value(&update).ok());
        let user = auth(ctx).update_profile(&txn, actor, update).await.gql()?;
        txn.subject("user_profile", user.id);
        txn.commit().await.gql()?;
        Ok(user.into())
    }

    /// Updates the caller's preferences. Omitted fields are kept; null clears.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: UpdatePreferencesInput,
    ) -> Result<UserPreferences> {
        let actor = ctx.writer()?;
        let update = input.parse().gql()?;
        let txn = ctx.begin().await?;
        let prefs = auth(ctx)
            .update_preferences(&txn, actor, update)
            .await
            .gql()?;
        txn.commit().await.gql()?;
        Ok(prefs.into())
    }

    /// Creates an API key. The secret is returned this once and never again.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        let actor = ctx.writer()?;
        let permissions = input
            .permissions
            .map(|ps| ps.into_iter().map(Into::into).collect());
        let req =
            CreateApiKey::parse(auth(ctx), input.name, input.expires_at, permissions).gql()?;
        let mut txn = ctx.begin().await?;
        let (key, secret) = auth(ctx).create_api_key(&txn, actor, req).await.gql()?;
        txn.subject("api_key", key.id);
        txn.changes(None, Some(crate::api_keys::audit_view(&key)));
        txn.commit().await.gql()?;
        Ok(CreatedApiKey {
            api_key: key.into(),
            secret,
        })
    }

    /// Revokes one of the caller's API keys; it stops working at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        auth(ctx).revoke_api_key(&txn, actor, id).await.gql()?;
        txn.subject("api_key", id);
        txn.commit().await.gql()?;
        Ok(true)
    }
}
