//! Password reset and email verification mutations.

use super::auth;
use crate::password::NewPassword;
use crate::recovery::AnswerFloor;
use crate::types::Email;
use async_graphql::{Context, InputObject, Object, Result};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::mail::{Mailer, outbox};
use std::sync::Arc;

/// A new password chosen through a reset link.
#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token from the reset link.
    pub token: String,
    /// The new password, 8 to 128 characters.
    pub new_password: String,
}

/// Hands mail queued by a committed mutation to the configured mailer, in the
/// background. Without a mailer in the schema the rows wait for the dispatcher.
pub(crate) fn deliver_committed_mail(ctx: &Context<'_>) {
    if let Some(mailer) = ctx.data_opt::<Arc<dyn Mailer>>() {
        outbox::deliver_soon(ctx.db().clone(), mailer.clone(), auth(ctx).clock.clone());
    }
}

/// Account recovery and verification mutations.
#[derive(Default)]
pub struct RecoveryMutation;

#[Object]
impl RecoveryMutation {
    /// Mails a password reset link (valid 1 hour by default, usable once) when the address
    /// belongs to an account. Always answers `true`, after the same delay,
    /// whether or not it does; at most 3 links per account per hour are sent.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let email = Email::parse(&email).gql()?;
        let floor = AnswerFloor::start(auth(ctx).settings.recovery.reset_answer_floor);
        let answer = async {
            let mut txn = ctx.begin().await?;
            let sent = auth(ctx).request_password_reset(&txn, &email).await.gql()?;
            txn.changes(None, Some(serde_json::json!({ "email": email.as_str() })));
            txn.commit().await.gql()?;
            deliver_committed_mail(ctx);
            Ok(sent)
        }
        .await;
        floor.wait().await;
        answer
    }

    /// Sets a new password with the token from a reset link, and signs out
    /// every session of the account. The token works once.
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> Result<bool> {
        let new = NewPassword::parse("newPassword", input.new_password).gql()?;
        let new = new.hash().await.gql()?;
        let mut txn = ctx.begin().await?;
        let user_id = auth(ctx)
            .reset_password(&txn, &input.token, new)
            .await
            .gql()?;
        txn.acting_user(user_id);
        txn.subject("user", user_id);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Mails the caller a link (valid 24 hours by default, usable once) that verifies
    /// their email address. `CONFLICT` when it is verified already.
    async fn request_email_verification(&self, ctx: &Context<'_>) -> Result<bool> {
        let actor = ctx.writer()?;
        let mut txn = ctx.begin().await?;
        auth(ctx)
            .request_email_verification(&txn, actor)
            .await
            .gql()?;
        txn.subject("user", actor.user_id);
        txn.commit().await.gql()?;
        deliver_committed_mail(ctx);
        Ok(true)
    }

    /// Verifies an email address with the token from a verification link.
    /// Works signed out; the token works once.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        let mut txn = ctx.begin().await?;
        let user_id = auth(ctx).verify_email(&txn, &token).await.gql()?;
        txn.acting_user(user_id);
        txn.subject("user", user_id);
        txn.commit().await.gql()?;
        Ok(true)
    }
}
