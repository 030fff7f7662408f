//! Account recovery and verification: reset and verification links, their
//! tokens, the hourly limit, and mail that leaves only for committed work.

mod common;

use async_graphql::{EmptySubscription, Schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use common::*;
use core_auth::audit::AuditLogSink;
use core_auth::entity::{
    audit_log, email_verification_token as verification, password_reset_token as reset, user,
};
use core_auth::graphql::{AuthQuery, RecoveryMutation};
use core_auth::password::NewPassword;
use core_auth::recovery::{PublicUrl, RESET_MAIL, RecoverySettings, VERIFICATION_MAIL};
use core_auth::types::Email;
use core_auth::{Auth, AuthError, AuthSettings};
use kernel::audit::AuditSink;
use kernel::crypto::hash_token;
use kernel::error::Code;
use kernel::mail::{LocalMailer, MailError, Mailer, OutgoingMail, outbox};
use kernel::testing::TestDb;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

const NEW_PASSWORD: &str = "a brand new passphrase";

fn settings_with_url(url: &str) -> AuthSettings {
    AuthSettings {
        recovery: RecoverySettings {
            public_url: PublicUrl::parse(url).unwrap(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

/// Requests a reset in its own committed transaction.
async fn request_reset(auth: &Auth, db: &DatabaseConnection, address: &str) -> bool {
    let txn = db.begin().await.unwrap();
    let answer = auth
        .request_password_reset(&txn, &email(address))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    answer
}

/// Resets the password in its own transaction, committed only on success.
async fn reset_with(
    auth: &Auth,
    db: &DatabaseConnection,
    token: &str,
    password: &str,
) -> Result<Uuid, AuthError> {
    let hash = NewPassword::parse("newPassword", password.into())
        .unwrap()
        .hash()
        .await
        .unwrap();
    let txn = db.begin().await.unwrap();
    let done = auth.reset_password(&txn, token, hash).await?;
    txn.commit().await.unwrap();
    Ok(done)
}

async fn verify_with(auth: &Auth, db: &DatabaseConnection, token: &str) -> Result<Uuid, AuthError> {
    let txn = db.begin().await.unwrap();
    let done = auth.verify_email(&txn, token).await?;
    txn.commit().await.unwrap();
    Ok(done)
}

async fn request_verification(
    auth: &Auth,
    db: &DatabaseConnection,
    actor: &kernel::actor::Actor,
) -> Result<(), AuthError> {
    let txn = db.begin().await.unwrap();
    auth.request_email_verification(&txn, actor).await?;
    txn.commit().await.unwrap();
    Ok(())
}

/// Every outbox row of `kind`, oldest first.
async fn mails(db: &impl ConnectionTrait, kind: &str) -> Vec<outbox::Model> {
    outbox::Entity::find()
        .filter(outbox::Column::Kind.eq(kind))
        .order_by_asc(outbox::Column::CreatedAt)
        .all(db)
        .await
        .unwrap()
}

/// The link of the newest mail of `kind` to `to`.
async fn link_in_mail(db: &impl ConnectionTrait, kind: &str, to: &str) -> String {
    let mail = mails(db, kind)
        .await
        .into_iter()
        .rev()
        .find(|m| m.recipient == to)
        .unwrap_or_else(|| panic!("no {kind} mail to {to}"));
    mail.body
        .split_whitespace()
        .find(|w| w.contains("?token="))
        .expect("mail holds a link")
        .to_owned()
}

async fn token_in_mail(db: &impl ConnectionTrait, kind: &str, to: &str) -> String {
    let link = link_in_mail(db, kind, to).await;
    link.split_once("?token=").unwrap().1.to_owned()
}

async fn user_row(db: &impl ConnectionTrait, id: Uuid) -> user::Model {
    user::Entity::find_by_id(id).one(db).await.unwrap().unwrap()
}

#[tokio::test]
async fn reset_token_is_256_bit_and_only_its_hash_is_stored() {
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    assert!(request_reset(&auth, &t.db, "ada@x.com").await);

    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len() * 8, 256);
    let rows = reset::Entity::find().all(&t.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, ada.user.id);
    assert_eq!(rows[0].token_hash, hash_token(&token));
    assert!(!format!("{:?}", rows[0]).contains(&token));
    // Found by its hash through the unique index, and it works.
    reset_with(&auth, &t.db, &token, NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_link_uses_public_url() {
    let (t, auth, _clock) = setup_with(settings_with_url("https://app.example.com/")).await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let link = link_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    assert!(
        link.starts_with("https://app.example.com/reset-password?token="),
        "{link}"
    );
}

#[tokio::test]
async fn unknown_email_answers_true_and_writes_nothing() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    assert!(request_reset(&auth, &t.db, "nobody@x.com").await);
    assert_eq!(count::<outbox::Entity>(&t.db).await, 0);
    assert_eq!(count::<reset::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn suspended_account_gets_no_reset_mail() {
    let (t, auth, clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    suspend(
        &t.db,
        ada.user.id,
        kernel::clock::Clock::now(clock.as_ref()),
    )
    .await;
    assert!(request_reset(&auth, &t.db, "ada@x.com").await);
    assert_eq!(count::<outbox::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn rolled_back_reset_request_sends_no_mail() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    let txn = t.db.begin().await.unwrap();
    auth.request_password_reset(&txn, &email("ada@x.com"))
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(count::<outbox::Entity>(&t.db).await, 0);
    assert_eq!(count::<reset::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn reset_token_is_single_use() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;

    reset_with(&auth, &t.db, &token, NEW_PASSWORD)
        .await
        .unwrap();
    login(&auth, &t.db, "ada@x.com", NEW_PASSWORD)
        .await
        .unwrap();
    assert!(login(&auth, &t.db, "ada@x.com", PASSWORD).await.is_err());

    let err = reset_with(&auth, &t.db, &token, "yet another password")
        .await
        .refused();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(field(&err), Some("token"));
    login(&auth, &t.db, "ada@x.com", NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_consumes_every_open_reset_link_of_the_user() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let first = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let second = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    assert_ne!(first, second);
    reset_with(&auth, &t.db, &second, NEW_PASSWORD)
        .await
        .unwrap();
    let err = reset_with(&auth, &t.db, &first, "yet another password")
        .await
        .refused();
    assert_eq!(field(&err), Some("token"));
}

#[tokio::test]
async fn expired_reset_token_is_refused() {
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;

    clock.advance(Duration::minutes(61));
    let err = reset_with(&auth, &t.db, &token, NEW_PASSWORD).await;
    assert!(
        matches!(err, Err(AuthError::RecoveryTokenExpired)),
        "{err:?}"
    );
    let err = err.refused();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(field(&err), Some("token"));
    assert!(err.to_string().contains("expired"));
    login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn reset_ttl_is_configurable() {
    let settings = AuthSettings {
        recovery: RecoverySettings {
            reset_ttl: Duration::minutes(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, auth, clock) = setup_with(settings).await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    clock.advance(Duration::minutes(6));
    assert!(matches!(
        reset_with(&auth, &t.db, &token, NEW_PASSWORD).await,
        Err(AuthError::RecoveryTokenExpired)
    ));
}

#[tokio::test]
async fn reset_revokes_all_sessions_of_the_user() {
    let (t, auth, _clock) = setup().await;
    let first = user(&auth, &t.db, "ada@x.com").await;
    let second = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let bob = user(&auth, &t.db, "bob@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;

    reset_with(&auth, &t.db, &token, NEW_PASSWORD)
        .await
        .unwrap();
    for session in [&first, &second] {
        assert!(matches!(
            auth.authenticate(&t.db, &session.token).await,
            Err(AuthError::InvalidToken)
        ));
    }
    auth.authenticate(&t.db, &bob.token).await.unwrap();
}

#[tokio::test]
async fn reset_marks_the_email_verified_and_lifts_a_lockout() {
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    for _ in 0..6 {
        let _ = login(&auth, &t.db, "ada@x.com", WRONG).await;
    }
    assert!(login(&auth, &t.db, "ada@x.com", PASSWORD).await.is_err());
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    reset_with(&auth, &t.db, &token, NEW_PASSWORD)
        .await
        .unwrap();
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_some()
    );
    login(&auth, &t.db, "ada@x.com", NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_password_applies_the_password_policy_and_keeps_the_token() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    let res = schema(&t, &auth)
        .execute(format!(
            r#"mutation {{ resetPassword(input: {{token: "{token}", newPassword: "short"}}) }}"#
        ))
        .await;
    let ext = res.errors[0].extensions.as_ref().unwrap();
    assert_eq!(ext.get("code").unwrap().to_string(), "\"BAD_USER_INPUT\"");
    assert_eq!(ext.get("field").unwrap().to_string(), "\"newPassword\"");
    reset_with(&auth, &t.db, &token, NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_requests_are_limited_to_three_per_account_per_hour() {
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    for _ in 0..4 {
        assert!(request_reset(&auth, &t.db, "ada@x.com").await);
        clock.advance(Duration::minutes(1));
    }
    assert_eq!(count::<reset::Entity>(&t.db).await, 3);
    assert_eq!(mails(&t.db, RESET_MAIL).await.len(), 3);

    clock.advance(Duration::minutes(57));
    assert!(request_reset(&auth, &t.db, "ada@x.com").await);
    assert_eq!(count::<reset::Entity>(&t.db).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_request_limit_holds_under_concurrency() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    // On PostgreSQL all eight transactions are open before any counts, so
    // without the per-user lock each would see no earlier request. (SQLite's
    // test pool has one connection: the transactions run one after another.)
    let parties = if t.is_postgres() { 8 } else { 1 };
    let barrier = Arc::new(tokio::sync::Barrier::new(parties));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (auth, db, barrier) = (auth.clone(), t.db.clone(), barrier.clone());
        set.spawn(async move {
            let txn = db.begin().await.unwrap();
            barrier.wait().await;
            let answer = auth
                .request_password_reset(&txn, &email("ada@x.com"))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            answer
        });
    }
    while let Some(answer) = set.join_next().await {
        assert!(answer.unwrap());
    }
    assert_eq!(count::<reset::Entity>(&t.db).await, 3);
    assert_eq!(mails(&t.db, RESET_MAIL).await.len(), 3);
}

#[tokio::test]
async fn verification_flow_marks_the_address_verified() {
    let (t, auth, _clock) = setup_with(settings_with_url("https://app.example.com")).await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let actor = actor(&auth, &t.db, &ada).await;
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_none()
    );

    request_verification(&auth, &t.db, &actor).await.unwrap();
    let link = link_in_mail(&t.db, VERIFICATION_MAIL, "ada@x.com").await;
    assert!(
        link.starts_with("https://app.example.com/verify-email?token="),
        "{link}"
    );
    let token = token_in_mail(&t.db, VERIFICATION_MAIL, "ada@x.com").await;
    let row = verification::Entity::find()
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.token_hash, hash_token(&token));
    assert_eq!(row.email, "ada@x.com");

    assert_eq!(
        verify_with(&auth, &t.db, &token).await.unwrap(),
        ada.user.id
    );
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_some()
    );

    let again = verify_with(&auth, &t.db, &token).await.refused();
    assert_eq!(field(&again), Some("token"));
    let err = request_verification(&auth, &t.db, &actor).await.refused();
    assert_eq!(err.code(), Code::Conflict);
}

#[tokio::test]
async fn expired_verification_token_is_refused() {
    let (t, auth, clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let actor = actor(&auth, &t.db, &ada).await;
    request_verification(&auth, &t.db, &actor).await.unwrap();
    let token = token_in_mail(&t.db, VERIFICATION_MAIL, "ada@x.com").await;
    clock.advance(Duration::hours(23));
    clock.advance(Duration::minutes(61));
    assert!(matches!(
        verify_with(&auth, &t.db, &token).await,
        Err(AuthError::RecoveryTokenExpired)
    ));
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_none()
    );
}

#[tokio::test]
async fn verification_requests_are_limited_to_three_per_hour() {
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let actor = actor(&auth, &t.db, &ada).await;
    for _ in 0..3 {
        request_verification(&auth, &t.db, &actor).await.unwrap();
    }
    let err = request_verification(&auth, &t.db, &actor).await.refused();
    assert_eq!(err.code(), Code::RateLimited);
    assert!(retry_after(&err).is_some_and(|s| s > 0 && s <= 3600));
    assert_eq!(mails(&t.db, VERIFICATION_MAIL).await.len(), 3);
}

#[tokio::test]
async fn tokens_of_one_purpose_do_not_work_for_the_other() {
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let actor = actor(&auth, &t.db, &ada).await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    request_verification(&auth, &t.db, &actor).await.unwrap();
    let reset_token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    let verify_token = token_in_mail(&t.db, VERIFICATION_MAIL, "ada@x.com").await;

    let err = verify_with(&auth, &t.db, &reset_token).await.refused();
    assert_eq!(field(&err), Some("token"));
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_none()
    );
    let err = reset_with(&auth, &t.db, &verify_token, NEW_PASSWORD)
        .await
        .refused();
    assert_eq!(field(&err), Some("token"));
    login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();

    // Both still work for their own purpose.
    verify_with(&auth, &t.db, &verify_token).await.unwrap();
    reset_with(&auth, &t.db, &reset_token, NEW_PASSWORD)
        .await
        .unwrap();
}

/// The recovery mutations over a schema with the audit hook and the local mailer.
fn schema(t: &TestDb, auth: &Auth) -> Schema<AuthQuery, RecoveryMutation, EmptySubscription> {
    let sink: Arc<dyn AuditSink> = Arc::new(AuditLogSink {
        clock: auth.clock.clone(),
    });
    let mailer: Arc<dyn Mailer> = Arc::new(LocalMailer);
    Schema::build(AuthQuery, RecoveryMutation, EmptySubscription)
        .data(t.db.clone())
        .data(auth.clone())
        .data(sink)
        .data(mailer)
        .finish()
}

#[tokio::test]
async fn reset_request_answers_true_after_the_same_floor_for_known_and_unknown_emails() {
    let settings = AuthSettings {
        recovery: RecoverySettings {
            reset_answer_floor: std::time::Duration::from_millis(120),
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, auth, _clock) = setup_with(settings).await;
    user(&auth, &t.db, "ada@x.com").await;
    let schema = schema(&t, &auth);
    for address in ["ada@x.com", "nobody@x.com"] {
        let started = std::time::Instant::now();
        let res = schema
            .execute(format!(
                r#"mutation {{ requestPasswordReset(email: "{address}") }}"#
            ))
            .await;
        assert!(res.errors.is_empty(), "{:?}", res.errors);
        assert_eq!(
            res.data.into_json().unwrap()["requestPasswordReset"],
            serde_json::json!(true)
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(120));
    }
    assert_eq!(mails(&t.db, RESET_MAIL).await.len(), 1);
}

#[tokio::test]
async fn reset_is_audited_without_the_token_or_the_password() {
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let schema = schema(&t, &auth);
    let res = schema
        .execute(r#"mutation { requestPasswordReset(email: "ada@x.com") }"#)
        .await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let token = token_in_mail(&t.db, RESET_MAIL, "ada@x.com").await;
    let res = schema
        .execute(format!(
            r#"mutation {{ resetPassword(input: {{token: "{token}", newPassword: "{NEW_PASSWORD}"}}) }}"#
        ))
        .await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);

    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("resetPassword"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, Some(ada.user.id));
    let everything = format!("{:?}", audit_log::Entity::find().all(&t.db).await.unwrap());
    assert!(!everything.contains(&token));
    assert!(!everything.contains(NEW_PASSWORD));

    let res = schema
        .execute(format!(
            r#"mutation {{ resetPassword(input: {{token: "{token}", newPassword: "{NEW_PASSWORD}"}}) }}"#
        ))
        .await;
    assert_eq!(
        res.errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string()),
        Some("\"BAD_USER_INPUT\"".into())
    );
}

/// A transport that fails until told otherwise, standing in for SMTP.
#[derive(Default)]
struct FlakyTransport {
    up: AtomicBool,
}

#[async_trait::async_trait]
impl Mailer for FlakyTransport {
    async fn deliver(&self, _mail: &OutgoingMail) -> Result<(), MailError> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(MailError::Transport("connection refused".into()))
        }
    }
}

#[tokio::test]
async fn outbox_retries_failed_delivery_and_scrubs_the_body_once_sent() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    let transport = FlakyTransport::default();

    let sent = outbox::deliver_pending(&t.db, &transport, auth.clock.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(sent, 0);
    let row = &mails(&t.db, RESET_MAIL).await[0];
    assert_eq!(row.status, outbox::PENDING);
    assert_eq!(row.attempts, 1);
    assert!(row.body.contains("?token="));
    assert!(row.last_error.is_some());

    transport.up.store(true, Ordering::SeqCst);
    let sent = outbox::deliver_pending(&t.db, &transport, auth.clock.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let row = &mails(&t.db, RESET_MAIL).await[0];
    assert_eq!(row.status, outbox::SENT);
    assert!(row.sent_at.is_some());
    assert!(row.body.is_empty(), "a sent body may hold a live token");
    // Nothing is sent twice.
    let again = outbox::deliver_pending(&t.db, &transport, auth.clock.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(again, 0);
}

#[tokio::test]
async fn verification_token_verifies_only_the_address_it_was_sent_to() {
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
    let (t, auth, _clock) = setup().await;
    let ada = user(&auth, &t.db, "ada@x.com").await;
    let actor = actor(&auth, &t.db, &ada).await;
    request_verification(&auth, &t.db, &actor).await.unwrap();
    let token = token_in_mail(&t.db, VERIFICATION_MAIL, "ada@x.com").await;
    let mut changed = user_row(&t.db, ada.user.id).await.into_active_model();
    changed.email = Set("ada.new@x.com".into());
    changed.update(&t.db).await.unwrap();

    let err = verify_with(&auth, &t.db, &token).await.refused();
    assert_eq!(field(&err), Some("token"));
    assert!(
        user_row(&t.db, ada.user.id)
            .await
            .email_verified_at
            .is_none()
    );
}

#[tokio::test]
async fn email_verification_request_needs_a_signed_in_caller() {
    let (t, auth, _clock) = setup().await;
    let res = schema(&t, &auth)
        .execute("mutation { requestEmailVerification }")
        .await;
    let code = res.errors[0]
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .map(|v| v.to_string());
    assert_eq!(code.as_deref(), Some("\"UNAUTHENTICATED\""));
    assert_eq!(count::<outbox::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn recovery_migration_rolls_back_and_reapplies() {
    use migration::{Migrator, MigratorTrait};
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    let applied = Migrator::get_applied_migrations(&t.db).await.unwrap().len();
    let after_recovery = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261122_000004_recovery")
        .unwrap()
        + 1;
    Migrator::down(&t.db, Some((applied - after_recovery + 1) as u32))
        .await
        .unwrap();
    assert!(
        user::Entity::find().all(&t.db).await.is_err(),
        "users lost email_verified_at"
    );
    Migrator::up(&t.db, None).await.unwrap();
    assert!(request_reset(&auth, &t.db, "ada@x.com").await);
    assert_eq!(mails(&t.db, RESET_MAIL).await.len(), 1);
}

#[tokio::test]
async fn mail_abandoned_mid_delivery_is_claimed_again_after_the_claim_timeout() {
    use sea_orm::sea_query::Expr;
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    request_reset(&auth, &t.db, "ada@x.com").await;
    // A dispatcher claimed the row and died before recording the outcome.
    let claimed_at = auth.clock.now();
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(outbox::SENDING))
        .col_expr(outbox::Column::ClaimedAt, Expr::value(Some(claimed_at)))
        .exec(&t.db)
        .await
        .unwrap();

    // Within the timeout the claim stands: nobody sends it twice.
    clock.advance(outbox::CLAIM_TIMEOUT - chrono::Duration::seconds(1));
    let sent = outbox::deliver_pending(&t.db, &LocalMailer, auth.clock.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(sent, 0);
    assert_eq!(mails(&t.db, RESET_MAIL).await[0].status, outbox::SENDING);

    // Past it, the row is claimed again and delivered.
    clock.advance(chrono::Duration::seconds(2));
    let sent = outbox::deliver_pending(&t.db, &LocalMailer, auth.clock.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let row = &mails(&t.db, RESET_MAIL).await[0];
    assert_eq!(row.status, outbox::SENT);
    assert_eq!(row.claimed_at, Some(auth.clock.now()));
}
