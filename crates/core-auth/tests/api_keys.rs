//! API keys: secrets, permissions, expiry, revocation, tenancy and paging.

mod common;

use chrono::Duration;
use common::*;
use core_auth::api_keys::CreateApiKey;
use core_auth::entity::api_key;
use core_auth::password::NewPassword;
use core_auth::session::API_KEY_PREFIX;
use kernel::actor::{Credential, Permission};
use kernel::clock::Clock;
use kernel::crypto::hash_token;
use kernel::error::Code;
use kernel::page::{PageArgs, encode_cursor};
use sea_orm::EntityTrait;
use std::collections::HashSet;
use uuid::Uuid;

#[tokio::test]
async fn api_key_secret_is_shown_once_and_stored_only_as_its_hash() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;

    let (key, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;
    assert!(secret.starts_with(API_KEY_PREFIX), "{secret}");
    assert!(
        secret.len() >= API_KEY_PREFIX.len() + 22,
        "at least 128 bits"
    );
    assert_eq!(key.key_prefix, secret.chars().take(12).collect::<String>());
    assert_eq!(key.key_hash, hash_token(&secret));

    let stored = api_key::Entity::find_by_id(key.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, key);
    assert_ne!(stored.key_hash, secret);
    assert!(!stored.key_hash.contains(&secret[API_KEY_PREFIX.len()..]));
    assert!(!stored.key_prefix.contains(&secret[12..]));
    assert_eq!(stored.user_id, ada.user_id);
    assert!(stored.is_active);
}

#[tokio::test]
async fn api_key_secret_authenticates_as_an_api_key_credential() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (key, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;

    let by_key = auth.authenticate(&t.db, &secret).await.unwrap();
    assert_eq!(by_key.user_id, ada.user_id);
    assert_eq!(
        by_key.credential,
        Credential::ApiKey {
            key_id: key.id,
            permissions: vec![Permission::Read, Permission::Write],
        }
    );
    assert_eq!(by_key.session_id(), None);
    assert!(by_key.can_write());

    let last_used = api_key::Entity::find_by_id(key.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
        .last_used_at;
    assert!(last_used.is_some(), "use is recorded");
}

#[tokio::test]
async fn read_only_api_key_cannot_write() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (key, secret) = api_key(
        &auth,
        &t.db,
        &ada,
        "reader",
        None,
        Some(vec![Permission::Read]),
    )
    .await;

    let by_key = auth.authenticate(&t.db, &secret).await.unwrap();
    assert_eq!(
        by_key.credential,
        Credential::ApiKey {
            key_id: key.id,
            permissions: vec![Permission::Read],
        }
    );
    assert!(!by_key.can_write());
}

#[tokio::test]
async fn revoked_api_key_is_refused() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (key, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;
    let (_, kept) = api_key(&auth, &t.db, &ada, "kept", None, None).await;
    auth.authenticate(&t.db, &secret).await.unwrap();

    auth.revoke_api_key(&t.db, &ada, key.id).await.unwrap();

    let err = auth.authenticate(&t.db, &secret).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
    let stored = api_key::Entity::find_by_id(key.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_active);
    assert!(stored.revoked_at.is_some());
    // Revoking twice finds nothing to revoke.
    let err = auth.revoke_api_key(&t.db, &ada, key.id).await.refused();
    assert_eq!(err.code(), Code::NotFound);
    auth.authenticate(&t.db, &kept)
        .await
        .expect("other keys keep working");
}

#[tokio::test]
async fn expired_api_key_is_refused() {
    let (t, auth, clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let expires_at = clock.now() + Duration::hours(1);
    let (_, secret) = api_key(&auth, &t.db, &ada, "ci", Some(expires_at), None).await;

    clock.advance(Duration::minutes(59));
    auth.authenticate(&t.db, &secret)
        .await
        .expect("not yet expired");

    clock.advance(Duration::minutes(1) + Duration::seconds(1));
    assert!(clock.now() > expires_at);
    let err = auth.authenticate(&t.db, &secret).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn api_key_of_a_suspended_user_is_refused() {
    let (t, auth, clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (_, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;
    auth.authenticate(&t.db, &secret).await.unwrap();

    suspend(&t.db, ada.user_id, clock.now()).await;

    let err = auth.authenticate(&t.db, &secret).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = auth.authenticate(&t.db, &session.token).await.refused();
    assert_eq!(err.code(), Code::Unauthenticated, "sessions end too");
}

#[tokio::test]
async fn api_key_expiring_in_the_past_is_bad_user_input() {
    let (_t, auth, clock) = setup().await;
    for past in [clock.now() - Duration::seconds(1), clock.now()] {
        let err: kernel::Error = CreateApiKey::parse(&auth, "ci".into(), Some(past), None)
            .unwrap_err()
            .into();
        assert_eq!(err.code(), Code::BadUserInput);
        assert_eq!(field(&err), Some("expiresAt"));
    }
    CreateApiKey::parse(
        &auth,
        "ci".into(),
        Some(clock.now() + Duration::seconds(1)),
        None,
    )
    .expect("a future expiry is fine");
}

#[tokio::test]
async fn api_key_actor_cannot_create_or_revoke_keys_nor_logout() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (key, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;
    let by_key = auth.authenticate(&t.db, &secret).await.unwrap();

    let req = CreateApiKey::parse(&auth, "minted".into(), None, None).unwrap();
    let err = auth.create_api_key(&t.db, &by_key, req).await.refused();
    assert_eq!(err.code(), Code::Forbidden);

    let err = auth.revoke_api_key(&t.db, &by_key, key.id).await.refused();
    assert_eq!(err.code(), Code::Forbidden);

    let err = auth.logout(&t.db, &by_key).await.refused();
    assert_eq!(err.code(), Code::Forbidden);

    let new = NewPassword::parse("newPassword", "brand new secret".into())
        .unwrap()
        .hash()
        .await
        .unwrap();
    let err = auth
        .change_password(&t.db, &by_key, PASSWORD.into(), new)
        .await
        .refused();
    assert_eq!(err.code(), Code::Forbidden);

    assert_eq!(count::<api_key::Entity>(&t.db).await, 1);
    auth.authenticate(&t.db, &secret)
        .await
        .expect("the key still works");
    auth.authenticate(&t.db, &session.token)
        .await
        .expect("the session still works");
}

#[tokio::test]
async fn user_cannot_revoke_or_list_another_users_keys() {
    let (t, auth, _clock) = setup().await;
    let a_session = user(&auth, &t.db, "ada@x.com").await;
    let b_session = user(&auth, &t.db, "bob@x.com").await;
    let a = actor(&auth, &t.db, &a_session).await;
    let b = actor(&auth, &t.db, &b_session).await;
    let mut a_ids = HashSet::new();
    for n in 0..3 {
        a_ids.insert(
            api_key(&auth, &t.db, &a, &format!("ada {n}"), None, None)
                .await
                .0
                .id,
        );
    }
    let (a_key, a_secret) = api_key(&auth, &t.db, &a, "ada main", None, None).await;
    a_ids.insert(a_key.id);
    let (b_key, _) = api_key(&auth, &t.db, &b, "bob", None, None).await;

    let err = auth.revoke_api_key(&t.db, &b, a_key.id).await.refused();
    assert_eq!(err.code(), Code::NotFound);
    let err = auth
        .revoke_api_key(&t.db, &b, Uuid::now_v7())
        .await
        .refused();
    assert_eq!(err.code(), Code::NotFound, "same answer as an unknown id");
    auth.authenticate(&t.db, &a_secret)
        .await
        .expect("A's key still works");

    let window = PageArgs {
        first: Some(100),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let b_page = auth.list_api_keys(&t.db, &b, window).await.unwrap();
    let b_ids: Vec<Uuid> = b_page.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(b_ids, vec![b_key.id]);
    assert!(b_page.items.iter().all(|(_, k)| k.user_id == b.user_id));

    let a_page = auth.list_api_keys(&t.db, &a, window).await.unwrap();
    let listed: HashSet<Uuid> = a_page.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(listed, a_ids);
}

#[tokio::test]
async fn list_api_keys_pages_newest_first_by_cursor() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let mut created = Vec::new();
    for n in 0..25 {
        created.push(
            api_key(&auth, &t.db, &ada, &format!("key {n}"), None, None)
                .await
                .0
                .id,
        );
    }
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();

    let first = auth
        .list_api_keys(&t.db, &ada, PageArgs::default().parse().unwrap())
        .await
        .unwrap();
    let first_ids: Vec<Uuid> = first.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(first_ids, newest_first[..20]);
    assert!(first.has_next_page);
    assert!(!first.has_previous_page);

    let last_id = *first_ids.last().unwrap();
    let window = PageArgs {
        after: Some(encode_cursor(last_id)),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let second = auth.list_api_keys(&t.db, &ada, window).await.unwrap();
    let second_ids: Vec<Uuid> = second.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(second_ids, newest_first[20..]);
    assert!(!second.has_next_page);
    assert!(second.has_previous_page);
    assert!(second_ids.iter().all(|id| !first_ids.contains(id)));

    let err = PageArgs {
        first: Some(101),
        ..Default::default()
    }
    .parse()
    .refused();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(field(&err), Some("first"));
}
