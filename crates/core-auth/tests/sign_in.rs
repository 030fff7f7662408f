//! Registration, sign-in, lockout and the sign-in record.

mod common;

use chrono::Duration;
use common::*;
use core_auth::entity::{login_attempt, session, user};
use core_auth::password::NewPassword;
use core_auth::sign_in::Register;
use core_auth::types::ClientInfo;
use kernel::clock::Clock;
use kernel::error::Code;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

#[tokio::test]
async fn register_then_login_works_and_email_is_unique_regardless_of_case() {
    let (t, auth, _clock) = setup().await;
    let registered = user(&auth, &t.db, "ada@x.com").await;
    assert_eq!(registered.user.email, "ada@x.com");
    assert_eq!(
        auth.authenticate(&t.db, &registered.token)
            .await
            .unwrap()
            .user_id,
        registered.user.id
    );

    let signed_in = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    assert_eq!(signed_in.user.id, registered.user.id);
    assert_ne!(signed_in.token, registered.token);

    let taken = Register::parse("Ada@X.com", PASSWORD.into(), None)
        .await
        .unwrap();
    let err = auth.register(&t.db, taken, &client()).await.refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("email"));
    assert_eq!(count::<user::Entity>(&t.db).await, 1);

    let other_case = login(&auth, &t.db, "  ADA@x.COM ", PASSWORD).await.unwrap();
    assert_eq!(other_case.user.id, registered.user.id);
}

#[tokio::test]
async fn passwords_shorter_than_8_or_longer_than_128_are_refused() {
    let (t, auth, _clock) = setup().await;
    for bad in [
        "a".repeat(7),
        "a".repeat(129),
        "é".repeat(129),
        String::new(),
    ] {
        let err = Register::parse("ada@x.com", bad.clone(), None)
            .await
            .refused();
        assert_eq!(err.code(), Code::BadUserInput, "{} chars", bad.len());
        assert_eq!(field(&err), Some("password"));
    }
    for good in ["a".repeat(8), "a".repeat(128), "é".repeat(128)] {
        assert!(NewPassword::parse("password", good).is_ok());
    }
    // An over-long password is refused at sign-in too, before any hashing.
    user(&auth, &t.db, "ada@x.com").await;
    let err = login(&auth, &t.db, "ada@x.com", &"a".repeat(129))
        .await
        .refused();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(field(&err), Some("password"));
    assert_eq!(count::<user::Entity>(&t.db).await, 1);
}

#[tokio::test]
async fn stored_password_hash_is_argon2id_and_never_the_password() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let stored = user::Entity::find_by_id(session.user.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .expect("a password account has a hash");
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_ne!(stored, PASSWORD);
    assert!(!stored.contains(PASSWORD));
}

#[tokio::test]
async fn login_answers_the_same_for_unknown_email_wrong_password_and_suspended_user() {
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    let suspended = user(&auth, &t.db, "sus@x.com").await;
    suspend(&t.db, suspended.user.id, clock.now()).await;

    let unknown = login(&auth, &t.db, "nobody@x.com", PASSWORD)
        .await
        .refused();
    let wrong = login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
    let suspended = login(&auth, &t.db, "sus@x.com", PASSWORD).await.refused();

    for err in [&unknown, &wrong, &suspended] {
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.to_string(), unknown.to_string());
    }
}

#[tokio::test]
async fn lockout_after_5_failures_refuses_even_the_right_password_until_the_window_ends() {
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    for attempt in 1..=5 {
        let err = login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
        assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
        clock.advance(Duration::minutes(2));
    }

    let err = login(&auth, &t.db, "ada@x.com", PASSWORD).await.refused();
    assert_eq!(err.code(), Code::RateLimited);
    let wait = retry_after(&err).expect("retry_after");
    assert!(wait > 0 && wait <= 900, "retry_after = {wait}");

    clock.advance(Duration::minutes(15) + Duration::seconds(1));
    login(&auth, &t.db, "ada@x.com", PASSWORD)
        .await
        .expect("the window has ended");
}

#[tokio::test]
async fn unknown_emails_are_locked_out_the_same_way() {
    let (t, auth, clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    for attempt in 1..=5 {
        let known = login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
        let unknown = login(&auth, &t.db, "ghost@x.com", WRONG).await.refused();
        assert_eq!(known.code(), Code::Unauthenticated, "attempt {attempt}");
        assert_eq!(unknown.code(), Code::Unauthenticated, "attempt {attempt}");
        assert_eq!(known.to_string(), unknown.to_string());
    }

    let known = login(&auth, &t.db, "ada@x.com", PASSWORD).await.refused();
    let unknown = login(&auth, &t.db, "ghost@x.com", PASSWORD).await.refused();
    assert_eq!(unknown.code(), Code::RateLimited);
    assert_eq!(known.code(), Code::RateLimited);
    assert_eq!(known.to_string(), unknown.to_string());
    assert_eq!(retry_after(&known), retry_after(&unknown));

    clock.advance(Duration::minutes(15) + Duration::seconds(1));
    let unknown = login(&auth, &t.db, "ghost@x.com", WRONG).await.refused();
    assert_eq!(unknown.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_is_exact_under_concurrency() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;

    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let (auth, db) = (auth.clone(), t.db.clone());
            tokio::spawn(async move {
                auth.login(&db, "ada@x.com", WRONG.into(), &client())
                    .await
                    .map(|_| ())
                    .map_err(code)
            })
        })
        .collect();
    let mut codes = Vec::new();
    for attempt in attempts {
        codes.push(attempt.await.expect("task completes"));
    }

    let unauthenticated = codes
        .iter()
        .filter(|c| **c == Err(Code::Unauthenticated))
        .count();
    let rate_limited = codes
        .iter()
        .filter(|c| **c == Err(Code::RateLimited))
        .count();
    assert_eq!((unauthenticated, rate_limited), (5, 7), "{codes:?}");
}

#[tokio::test]
async fn every_attempt_writes_a_login_attempts_row() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    assert_eq!(count::<login_attempt::Entity>(&t.db).await, 0);

    let phone = ClientInfo {
        ip: "2001:db8::1".into(),
        user_agent: None,
    };
    login(&auth, &t.db, " ADA@X.com ", WRONG).await.refused();
    auth.login(&t.db, "Ada@x.com", PASSWORD.into(), &phone)
        .await
        .unwrap();
    login(&auth, &t.db, "Ghost@X.com", WRONG).await.refused();
    for _ in 0..5 {
        login(&auth, &t.db, "ghost@x.com", WRONG).await.refused();
    }
    assert_eq!(count::<login_attempt::Entity>(&t.db).await, 8);

    let ada = login_attempt::Entity::find()
        .filter(login_attempt::Column::Email.eq("ada@x.com"))
        .order_by_asc(login_attempt::Column::Id)
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(ada.len(), 2, "email is stored normalised");
    let (failed, succeeded) = (&ada[0], &ada[1]);
    assert!(!failed.success);
    assert!(
        failed
            .failure_reason
            .as_deref()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(failed.ip_address, "203.0.113.7");
    assert_eq!(failed.user_agent.as_deref(), Some("core-auth-tests/1.0"));
    assert!(succeeded.success);
    assert_eq!(succeeded.failure_reason, None);
    assert_eq!(succeeded.ip_address, "2001:db8::1");
    assert_eq!(succeeded.user_agent, None);

    let ghost = login_attempt::Entity::find()
        .filter(login_attempt::Column::Email.eq("ghost@x.com"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(
        ghost.len(),
        6,
        "refused and locked-out attempts are recorded"
    );
    for row in &ghost {
        assert!(!row.success);
        assert!(row.failure_reason.as_deref().is_some_and(|r| !r.is_empty()));
        assert_eq!(row.ip_address, "203.0.113.7");
    }
}

#[tokio::test]
async fn successful_login_clears_the_failure_counter() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    for _ in 0..4 {
        login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
    }
    login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();

    for attempt in 1..=5 {
        let err = login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
        assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    let err = login(&auth, &t.db, "ada@x.com", WRONG).await.refused();
    assert_eq!(err.code(), Code::RateLimited);
}

#[tokio::test]
async fn refused_registration_in_a_dropped_transaction_leaves_nothing_behind() {
    let (t, auth, _clock) = setup().await;
    user(&auth, &t.db, "ada@x.com").await;
    let users = count::<user::Entity>(&t.db).await;
    let sessions = count::<session::Entity>(&t.db).await;

    let taken = Register::parse("Ada@X.com", PASSWORD.into(), None)
        .await
        .unwrap();
    let txn = t.db.begin().await.unwrap();
    let err = auth.register(&txn, taken, &client()).await.refused();
    assert_eq!(err.code(), Code::Conflict);
    drop(txn);

    assert_eq!(count::<user::Entity>(&t.db).await, users);
    assert_eq!(count::<session::Entity>(&t.db).await, sessions);
    // And the account that owns the email is untouched.
    login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
}
