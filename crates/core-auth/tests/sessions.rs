//! Session tokens: what is stored, how they end, and password changes.

mod common;

use chrono::Duration;
use common::*;
use core_auth::AuthSettings;
use core_auth::entity::{session, user};
use core_auth::password::NewPassword;
use core_auth::session::SESSION_PREFIX;
use kernel::actor::Credential;
use kernel::crypto::hash_token;
use kernel::error::Code;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

#[tokio::test]
async fn session_token_authenticates_as_its_user() {
    let (t, auth, _clock) = setup().await;
    let issued = user(&auth, &t.db, "ada@x.com").await;
    let actor = auth.authenticate(&t.db, &issued.token).await.unwrap();
    assert_eq!(actor.user_id, issued.user.id);
    assert!(actor.can_write());

    let row = session::Entity::find()
        .filter(session::Column::UserId.eq(issued.user.id))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actor.credential, Credential::Session { session_id: row.id });

    let err = auth.authenticate(&t.db, "sess_made-up").await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn session_token_is_stored_only_as_its_hash() {
    let (t, auth, _clock) = setup().await;
    let issued = user(&auth, &t.db, "ada@x.com").await;
    let row = session::Entity::find()
        .filter(session::Column::UserId.eq(issued.user.id))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(row.token_hash, issued.token);
    assert!(
        !row.token_hash
            .contains(&issued.token[SESSION_PREFIX.len()..])
    );
    assert_eq!(row.token_hash, hash_token(&issued.token));
    assert_eq!(row.ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(row.user_agent.as_deref(), Some("core-auth-tests/1.0"));
}

#[tokio::test]
async fn session_token_carries_at_least_128_bits() {
    let (t, auth, _clock) = setup().await;
    let a = user(&auth, &t.db, "ada@x.com").await;
    let b = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    for token in [&a.token, &b.token] {
        let random = token
            .strip_prefix(SESSION_PREFIX)
            .expect("session tokens carry their prefix");
        // URL-safe base64 carries 6 bits a character: 22 characters hold 128 bits.
        assert!(random.len() >= 22, "{token}");
        assert!(
            random
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
    }
    assert_ne!(a.token, b.token);
}

#[tokio::test]
async fn logged_out_session_is_refused() {
    let (t, auth, _clock) = setup().await;
    let first = user(&auth, &t.db, "ada@x.com").await;
    let second = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let actor = actor(&auth, &t.db, &first).await;

    auth.logout(&t.db, &actor).await.unwrap();

    let err = auth.authenticate(&t.db, &first.token).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Only the calling session ends.
    auth.authenticate(&t.db, &second.token)
        .await
        .expect("other sessions survive a logout");
}

#[tokio::test]
async fn session_unused_beyond_the_idle_timeout_is_refused() {
    let (t, auth, clock) = setup().await;
    let idle = auth.settings.session_idle_timeout;
    let issued = user(&auth, &t.db, "ada@x.com").await;

    // Each use restarts the idle timer.
    for _ in 0..2 {
        clock.advance(idle - Duration::hours(1));
        auth.authenticate(&t.db, &issued.token)
            .await
            .expect("used within the idle timeout");
    }

    clock.advance(idle + Duration::seconds(1));
    let err = auth.authenticate(&t.db, &issued.token).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn session_is_refused_after_the_absolute_timeout_however_active() {
    let settings = AuthSettings {
        session_idle_timeout: Duration::days(2),
        session_absolute_timeout: Duration::days(10),
        ..AuthSettings::default()
    };
    let (t, auth, clock) = setup_with(settings).await;
    let issued = user(&auth, &t.db, "ada@x.com").await;
    assert_eq!(
        issued.expires_at,
        issued.user.created_at + Duration::days(10)
    );

    for day in 1..10 {
        clock.advance(Duration::days(1));
        auth.authenticate(&t.db, &issued.token)
            .await
            .unwrap_or_else(|e| panic!("day {day}: {e}"));
    }

    clock.advance(Duration::days(1) + Duration::seconds(1));
    let err = auth.authenticate(&t.db, &issued.token).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn stored_hash(db: &sea_orm::DatabaseConnection, id: uuid::Uuid) -> Option<String> {
    user::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn new_password(text: &str) -> core_auth::password::PasswordHash {
    NewPassword::parse("newPassword", text.into())
        .unwrap()
        .hash()
        .await
        .unwrap()
}

#[tokio::test]
async fn change_password_with_wrong_current_password_changes_nothing() {
    let (t, auth, _clock) = setup().await;
    let caller = user(&auth, &t.db, "ada@x.com").await;
    let other = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let before = stored_hash(&t.db, caller.user.id).await;
    let actor = actor(&auth, &t.db, &caller).await;

    let err = auth
        .change_password(
            &t.db,
            &actor,
            WRONG.into(),
            new_password("brand new secret").await,
        )
        .await
        .refused();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(field(&err), Some("currentPassword"));

    assert_eq!(stored_hash(&t.db, caller.user.id).await, before);
    auth.authenticate(&t.db, &caller.token).await.unwrap();
    auth.authenticate(&t.db, &other.token).await.unwrap();
    login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let err = login(&auth, &t.db, "ada@x.com", "brand new secret")
        .await
        .refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn change_password_keeps_the_calling_session_and_signs_out_every_other() {
    let (t, auth, _clock) = setup().await;
    let caller = user(&auth, &t.db, "ada@x.com").await;
    let laptop = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let phone = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    let bystander = user(&auth, &t.db, "bob@x.com").await;
    let actor = actor(&auth, &t.db, &caller).await;

    auth.change_password(
        &t.db,
        &actor,
        PASSWORD.into(),
        new_password("brand new secret").await,
    )
    .await
    .unwrap();

    auth.authenticate(&t.db, &caller.token)
        .await
        .expect("the calling session survives");
    for other in [&laptop, &phone] {
        let err = auth.authenticate(&t.db, &other.token).await.refused();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    auth.authenticate(&t.db, &bystander.token)
        .await
        .expect("other users' sessions are untouched");

    login(&auth, &t.db, "ada@x.com", "brand new secret")
        .await
        .expect("the new password signs in");
    let err = login(&auth, &t.db, "ada@x.com", PASSWORD).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}
