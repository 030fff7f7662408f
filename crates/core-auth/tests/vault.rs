//! Credential vault: sealing, tenancy, reveal accounting, soft delete, audit
//! redaction and key rotation.

mod common;

use async_graphql::{EmptySubscription, Request, Schema, Variables};
use chrono::Duration;
use common::*;
use core_auth::Auth;
use core_auth::audit::AuditLogSink;
use core_auth::entity::{audit_log, credential, security_audit_log};
use core_auth::graphql::{VaultMutation, VaultQuery};
use core_auth::vault::{CredentialUpdate, NewCredential, Rotation, Secret, VaultError, rotate};
use kernel::actor::Actor;
use kernel::audit::AuditSink;
use kernel::clock::Clock;
use kernel::crypto::KeyRing;
use kernel::error::Code;
use kernel::page::PageArgs;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

const SECRET: &str = "sk-live-4f9c2b7e1d";

/// A key ring holding one fresh key per version, and its text form.
fn ring(versions: &[u32]) -> (KeyRing, String) {
    let text = versions
        .iter()
        .map(|v| KeyRing::generate_entry(*v).unwrap())
        .collect::<Vec<_>>()
        .join(",");
    (KeyRing::parse(&text).unwrap(), text)
}

fn new_credential(name: &str, secret: &str) -> NewCredential {
    NewCredential::parse(
        name.into(),
        "openai".into(),
        "api_key".into(),
        Some(json!({ "account": "acme" })),
        secret.into(),
    )
    .expect("valid credential")
}

async fn store(
    auth: &Auth,
    db: &impl ConnectionTrait,
    actor: &Actor,
    keys: &KeyRing,
    name: &str,
    secret: &str,
) -> credential::Model {
    auth.create_credential(db, actor, keys, new_credential(name, secret))
        .await
        .expect("credential is stored")
}

async fn row(db: &impl ConnectionTrait, id: Uuid) -> credential::Model {
    credential::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("row exists")
}

fn api_code<T: std::fmt::Debug>(result: Result<T, VaultError>) -> Code {
    kernel::Error::from(result.expect_err("the call should have been refused")).code()
}

/// Copies the sealed secret of `from` onto `to`, as an attacker with database access would.
async fn copy_ciphertext(db: &impl ConnectionTrait, from: &credential::Model, to: Uuid) {
    credential::Entity::update_many()
        .col_expr(
            credential::Column::EncryptedData,
            Expr::value(from.encrypted_data.clone()),
        )
        .col_expr(credential::Column::Iv, Expr::value(from.iv.clone()))
        .col_expr(
            credential::Column::AuthTag,
            Expr::value(from.auth_tag.clone()),
        )
        .col_expr(
            credential::Column::KeyVersion,
            Expr::value(from.key_version),
        )
        .filter(credential::Column::Id.eq(to))
        .exec(db)
        .await
        .unwrap();
}

/// The vault's part of the schema over `db`, auditing into `audit_logs`.
fn schema(
    db: &sea_orm::DatabaseConnection,
    auth: &Auth,
    keys: &KeyRing,
) -> Schema<VaultQuery, VaultMutation, EmptySubscription> {
    let sink: Arc<dyn AuditSink> = Arc::new(AuditLogSink {
        clock: auth.clock.clone(),
    });
    Schema::build(VaultQuery, VaultMutation, EmptySubscription)
        .data(db.clone())
        .data(sink)
        .data(auth.clone())
        .data(keys.clone())
        .finish()
}

async fn run(
    schema: &Schema<VaultQuery, VaultMutation, EmptySubscription>,
    actor: &Actor,
    query: &str,
    variables: Value,
) -> Value {
    let res = schema
        .execute(
            Request::new(query)
                .variables(Variables::from_json(variables))
                .data(actor.clone()),
        )
        .await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    res.data.into_json().unwrap()
}

#[tokio::test]
async fn two_seals_of_the_same_secret_use_different_nonces() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (keys, _) = ring(&[1]);

    let a = store(&auth, &t.db, &ada, &keys, "a", SECRET).await;
    let b = store(&auth, &t.db, &ada, &keys, "b", SECRET).await;

    let (a, b) = (row(&t.db, a.id).await, row(&t.db, b.id).await);
    assert_ne!(a.iv, b.iv, "a fresh 96-bit nonce per seal");
    assert_ne!(a.encrypted_data, b.encrypted_data);
    assert!(!a.encrypted_data.contains(SECRET) && !a.iv.contains(SECRET));
}

#[tokio::test]
async fn the_sealing_key_version_is_stored_with_the_row() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (old_keys, old_text) = ring(&[1, 3]);

    let stored = store(&auth, &t.db, &ada, &old_keys, "a", SECRET).await;
    assert_eq!(
        row(&t.db, stored.id).await.key_version,
        3,
        "the newest version seals"
    );

    let keys = KeyRing::parse(&format!(
        "{old_text},{}",
        KeyRing::generate_entry(4).unwrap()
    ))
    .unwrap();
    let update =
        CredentialUpdate::parse(None, None, None, None, Some("rotated-by-hand".into())).unwrap();
    auth.update_credential(&t.db, &ada, &keys, stored.id, update)
        .await
        .unwrap();
    assert_eq!(
        row(&t.db, stored.id).await.key_version,
        4,
        "a new secret uses the newest key"
    );
    let (_, secret) = auth
        .reveal_credential(&t.db, &ada, &keys, stored.id)
        .await
        .unwrap();
    assert_eq!(secret.expose(), "rotated-by-hand");
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_row_does_not_open() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    let (keys, _) = ring(&[1]);
    let source = store(&auth, &t.db, &ada, &keys, "source", SECRET).await;
    let target = store(&auth, &t.db, &ada, &keys, "target", "other").await;

    copy_ciphertext(&t.db, &row(&t.db, source.id).await, target.id).await;

    let refused = auth.reveal_credential(&t.db, &ada, &keys, target.id).await;
    assert!(matches!(refused, Err(VaultError::Crypto(_))), "{refused:?}");
    assert_eq!(api_code(refused), Code::InternalServerError);
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_users_row_does_not_open() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let bob = actor(&auth, &t.db, &user(&auth, &t.db, "bob@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let source = store(&auth, &t.db, &ada, &keys, "stripe", SECRET).await;
    let target = store(&auth, &t.db, &bob, &keys, "stripe", "bobs").await;

    copy_ciphertext(&t.db, &row(&t.db, source.id).await, target.id).await;
    let refused = auth.reveal_credential(&t.db, &bob, &keys, target.id).await;
    assert!(matches!(refused, Err(VaultError::Crypto(_))), "{refused:?}");

    // The owner is bound too: handing Ada's whole row to Bob does not open it either.
    credential::Entity::update_many()
        .col_expr(credential::Column::UserId, Expr::value(bob.user_id))
        .col_expr(credential::Column::Name, Expr::value("moved"))
        .filter(credential::Column::Id.eq(source.id))
        .exec(&t.db)
        .await
        .unwrap();
    let refused = auth.reveal_credential(&t.db, &bob, &keys, source.id).await;
    assert!(matches!(refused, Err(VaultError::Crypto(_))), "{refused:?}");
}

#[tokio::test]
async fn a_second_user_gets_not_found_for_every_operation_on_the_first_users_credential() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let bob = actor(&auth, &t.db, &user(&auth, &t.db, "bob@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let adas = store(&auth, &t.db, &ada, &keys, "stripe", SECRET).await;

    assert_eq!(
        api_code(auth.credential(&t.db, &bob, adas.id).await),
        Code::NotFound
    );
    assert_eq!(
        api_code(auth.reveal_credential(&t.db, &bob, &keys, adas.id).await),
        Code::NotFound
    );
    let update =
        CredentialUpdate::parse(Some("mine".into()), None, None, None, Some("x".into())).unwrap();
    assert_eq!(
        api_code(
            auth.update_credential(&t.db, &bob, &keys, adas.id, update)
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        api_code(auth.delete_credential(&t.db, &bob, adas.id).await),
        Code::NotFound
    );
    let window = PageArgs::default().parse().unwrap();
    assert!(
        auth.list_credentials(&t.db, &bob, window)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let after = row(&t.db, adas.id).await;
    assert_eq!(after, adas, "nothing of Ada's changed");
    let (_, secret) = auth
        .reveal_credential(&t.db, &ada, &keys, adas.id)
        .await
        .unwrap();
    assert_eq!(secret.expose(), SECRET);
}

#[tokio::test]
async fn reveal_returns_the_secret_and_bumps_use_count_and_last_used_at() {
    let (t, auth, clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let stored = store(&auth, &t.db, &ada, &keys, "stripe", SECRET).await;
    assert_eq!((stored.use_count, stored.last_used_at), (0, None));

    clock.advance(Duration::minutes(5));
    let (first, secret) = auth
        .reveal_credential(&t.db, &ada, &keys, stored.id)
        .await
        .unwrap();
    assert_eq!(secret.expose(), SECRET);
    assert_eq!(first.use_count, 1);
    assert_eq!(first.last_used_at, Some(clock.now()));

    clock.advance(Duration::minutes(5));
    auth.reveal_credential(&t.db, &ada, &keys, stored.id)
        .await
        .unwrap();
    let stored = row(&t.db, stored.id).await;
    assert_eq!(stored.use_count, 2);
    assert_eq!(stored.last_used_at, Some(clock.now()));
}

#[tokio::test]
async fn a_deleted_credential_cannot_be_revealed_read_or_changed() {
    let (t, auth, clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let stored = store(&auth, &t.db, &ada, &keys, "stripe", SECRET).await;

    auth.delete_credential(&t.db, &ada, stored.id)
        .await
        .unwrap();

    assert_eq!(
        row(&t.db, stored.id).await.deleted_at,
        Some(clock.now()),
        "soft delete"
    );
    assert_eq!(
        api_code(auth.reveal_credential(&t.db, &ada, &keys, stored.id).await),
        Code::NotFound
    );
    assert_eq!(
        api_code(auth.credential(&t.db, &ada, stored.id).await),
        Code::NotFound
    );
    assert_eq!(
        api_code(auth.delete_credential(&t.db, &ada, stored.id).await),
        Code::NotFound
    );
    let update = CredentialUpdate::parse(Some("back".into()), None, None, None, None).unwrap();
    assert_eq!(
        api_code(
            auth.update_credential(&t.db, &ada, &keys, stored.id, update)
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        row(&t.db, stored.id).await.use_count,
        0,
        "a refused reveal counts nothing"
    );
    let window = PageArgs::default().parse().unwrap();
    assert!(
        auth.list_credentials(&t.db, &ada, window)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The name is free again.
    store(&auth, &t.db, &ada, &keys, "stripe", "new").await;
}

#[tokio::test]
async fn a_name_is_unique_among_the_owners_live_credentials() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let bob = actor(&auth, &t.db, &user(&auth, &t.db, "bob@x.com").await).await;
    let (keys, _) = ring(&[1]);
    store(&auth, &t.db, &ada, &keys, "stripe", SECRET).await;
    let other = store(&auth, &t.db, &ada, &keys, "openai", SECRET).await;

    let taken = auth
        .create_credential(&t.db, &ada, &keys, new_credential("stripe", "x"))
        .await;
    let err = kernel::Error::from(taken.unwrap_err());
    assert_eq!((err.code(), field(&err)), (Code::Conflict, Some("name")));
    let rename = CredentialUpdate::parse(Some("stripe".into()), None, None, None, None).unwrap();
    assert_eq!(
        api_code(
            auth.update_credential(&t.db, &ada, &keys, other.id, rename)
                .await
        ),
        Code::Conflict
    );
    // Another owner may use the same name.
    store(&auth, &t.db, &bob, &keys, "stripe", SECRET).await;
}

#[tokio::test]
async fn invalid_credential_input_is_refused_with_the_field() {
    let cases = [
        (
            NewCredential::parse(" ".into(), "s".into(), "t".into(), None, "x".into()),
            "name",
        ),
        (
            NewCredential::parse("n".into(), "".into(), "t".into(), None, "x".into()),
            "service",
        ),
        (
            NewCredential::parse("n".into(), "s".into(), "t".repeat(51), None, "x".into()),
            "type",
        ),
        (
            NewCredential::parse(
                "n".into(),
                "s".into(),
                "t".into(),
                Some(json!([1])),
                "x".into(),
            ),
            "metadata",
        ),
        (
            NewCredential::parse("n".into(), "s".into(), "t".into(), None, String::new()),
            "secret",
        ),
        (
            NewCredential::parse(
                "n".into(),
                "s".into(),
                "t".into(),
                None,
                "x".repeat(16 * 1024 + 1),
            ),
            "secret",
        ),
    ];
    for (result, expected) in cases {
        let err = kernel::Error::from(result.unwrap_err());
        assert_eq!(
            (err.code(), field(&err)),
            (Code::BadUserInput, Some(expected))
        );
    }
}

#[tokio::test]
async fn secrets_print_as_redacted_in_debug_output() {
    let req = new_credential("stripe", SECRET);
    let update = CredentialUpdate::parse(None, None, None, None, Some(SECRET.into())).unwrap();
    for shown in [
        format!("{:?}", Secret::parse(SECRET.into()).unwrap()),
        format!("{req:?}"),
        format!("{update:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn reveal_is_recorded_as_a_sensitive_read_and_no_audit_row_contains_the_secret() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let schema = schema(&t.db, &auth, &keys);
    let new_secret = "sk-live-second-7a1e";

    let created = run(
        &schema,
        &ada,
        "mutation($s: String!) { createCredential(input: {name: \"stripe\", service: \"stripe\", type: \"api_key\", secret: $s}) { id } }",
        json!({ "s": SECRET }),
    )
    .await;
    let id = created["createCredential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    run(
        &schema,
        &ada,
        "mutation($id: ID!, $s: String!) { updateCredential(input: {id: $id, secret: $s}) { id } }",
        json!({ "id": id, "s": new_secret }),
    )
    .await;
    let revealed = run(
        &schema,
        &ada,
        "mutation($id: ID!) { revealCredential(id: $id) { secret credential { useCount } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(revealed["revealCredential"]["secret"], new_secret);
    run(
        &schema,
        &ada,
        "mutation($id: ID!) { deleteCredential(id: $id) }",
        json!({ "id": id }),
    )
    .await;

    let rows = audit_log::Entity::find().all(&t.db).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for action in [
        "createCredential",
        "updateCredential",
        "revealCredential",
        "deleteCredential",
    ] {
        assert!(
            actions.contains(&action),
            "{action} is audited: {actions:?}"
        );
    }
    let reveal = rows
        .iter()
        .find(|r| r.action == "revealCredential")
        .unwrap();
    assert_eq!(reveal.entity_type, "credential");
    assert_eq!(reveal.entity_id.as_deref(), Some(id.as_str()));
    assert_eq!(reveal.user_id, Some(ada.user_id));
    let sealed = row(&t.db, Uuid::parse_str(&id).unwrap()).await;
    let reads = security_audit_log::Entity::find().all(&t.db).await.unwrap();
    assert_eq!(reads.len(), 1, "one reveal, one security record: {reads:?}");
    assert_eq!(reads[0].action, "credential.reveal");
    assert_eq!(reads[0].resource_id.as_deref(), Some(id.as_str()));
    assert_eq!(reads[0].user_id, Some(ada.user_id));
    let texts = rows
        .iter()
        .map(|r| format!("{r:?}"))
        .chain(reads.iter().map(|r| format!("{r:?}")));
    for text in texts {
        for needle in [
            SECRET,
            new_secret,
            &sealed.encrypted_data,
            &sealed.iv,
            &sealed.auth_tag,
        ] {
            assert!(
                !text.contains(needle),
                "audit row holds secret material: {text}"
            );
        }
    }
}

#[tokio::test]
async fn the_credential_list_and_every_output_but_reveal_omit_the_secret() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (keys, _) = ring(&[1]);
    let schema = schema(&t.db, &auth, &keys);
    let fields = "id name service type metadata useCount lastUsedAt createdAt updatedAt";

    let created = run(
        &schema,
        &ada,
        &format!("mutation($s: String!) {{ createCredential(input: {{name: \"stripe\", service: \"stripe\", type: \"api_key\", metadata: {{account: \"acme\"}}, secret: $s}}) {{ {fields} }} }}"),
        json!({ "s": SECRET }),
    )
    .await;
    let id = created["createCredential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = run(
        &schema,
        &ada,
        &format!("{{ credentials(first: 10) {{ edges {{ cursor node {{ {fields} }} }} nodes {{ {fields} }} pageInfo {{ hasNextPage }} }} credential(id: \"{id}\") {{ {fields} }} }}"),
        json!({}),
    )
    .await;
    assert_eq!(listed["credentials"]["nodes"][0]["name"], "stripe");
    assert_eq!(
        listed["credentials"]["nodes"][0]["metadata"]["account"],
        "acme"
    );
    assert_eq!(listed["credential"]["type"], "api_key");
    let sealed = row(&t.db, Uuid::parse_str(&id).unwrap()).await;
    for output in [created.to_string(), listed.to_string()] {
        for needle in [SECRET, &sealed.encrypted_data, &sealed.iv, &sealed.auth_tag] {
            assert!(!output.contains(needle), "{output}");
        }
    }
}

#[tokio::test]
async fn rotation_reseals_every_row_under_the_newest_key_and_a_second_run_changes_nothing() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let bob = actor(&auth, &t.db, &user(&auth, &t.db, "bob@x.com").await).await;
    let (old_keys, old_text) = ring(&[1]);
    let mut stored = Vec::new();
    for (who, name) in [
        (&ada, "a"),
        (&ada, "b"),
        (&ada, "c"),
        (&bob, "a"),
        (&bob, "b"),
    ] {
        let secret = format!("{name}-{}", who.user_id);
        stored.push((
            who,
            store(&auth, &t.db, who, &old_keys, name, &secret).await,
            secret,
        ));
    }
    auth.delete_credential(&t.db, &ada, stored[2].1.id)
        .await
        .unwrap();
    let new_entry = KeyRing::generate_entry(2).unwrap();
    let keys = KeyRing::parse(&format!("{old_text},{new_entry}")).unwrap();

    // Before rotation, old rows open under the extended ring and stay on version 1.
    let (before, secret) = auth
        .reveal_credential(&t.db, &ada, &keys, stored[0].1.id)
        .await
        .unwrap();
    assert_eq!(
        (before.key_version, secret.expose()),
        (1, stored[0].2.as_str())
    );

    let first = rotate(&t.db, &keys, 2).await.unwrap();
    assert_eq!(
        first,
        Rotation {
            to_version: 2,
            resealed: 5,
            skipped: 0,
            failed: 0
        },
        "deleted rows are re-sealed too"
    );
    let versions: Vec<i32> = credential::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .iter()
        .map(|c| c.key_version)
        .collect();
    assert_eq!(versions, vec![2; 5]);

    // The old key can now be retired: the new key alone opens every live row.
    let only_new = KeyRing::parse(&new_entry).unwrap();
    for (who, model, secret) in stored.iter().filter(|(_, m, _)| m.id != stored[2].1.id) {
        let (_, opened) = auth
            .reveal_credential(&t.db, who, &only_new, model.id)
            .await
            .unwrap();
        assert_eq!(opened.expose(), secret);
    }

    let before_second = credential::Entity::find().all(&t.db).await.unwrap();
    let second = rotate(&t.db, &keys, 2).await.unwrap();
    assert_eq!(
        second,
        Rotation {
            to_version: 2,
            ..Default::default()
        }
    );
    assert_eq!(
        credential::Entity::find().all(&t.db).await.unwrap(),
        before_second
    );
}

#[tokio::test]
async fn rotation_counts_and_leaves_rows_that_do_not_open() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (old_keys, old_text) = ring(&[1]);
    let good = store(&auth, &t.db, &ada, &old_keys, "good", SECRET).await;
    let bad = store(&auth, &t.db, &ada, &old_keys, "bad", SECRET).await;
    copy_ciphertext(&t.db, &row(&t.db, good.id).await, bad.id).await;
    let keys = KeyRing::parse(&format!(
        "{old_text},{}",
        KeyRing::generate_entry(2).unwrap()
    ))
    .unwrap();

    let report = rotate(&t.db, &keys, 10).await.unwrap();
    assert_eq!((report.resealed, report.failed), (1, 1));
    assert_eq!(row(&t.db, good.id).await.key_version, 2);
    let bad_after = row(&t.db, bad.id).await;
    assert_eq!(bad_after.key_version, 1, "left as it was");

    let again = rotate(&t.db, &keys, 10).await.unwrap();
    assert_eq!((again.resealed, again.failed), (0, 1));
    assert_eq!(row(&t.db, bad.id).await, bad_after);
}

#[tokio::test]
async fn rotation_resumes_with_only_the_rows_still_under_old_keys() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (old_keys, old_text) = ring(&[1]);
    let a = store(&auth, &t.db, &ada, &old_keys, "a", "secret-a").await;
    let b = store(&auth, &t.db, &ada, &old_keys, "b", "secret-b").await;
    let keys = KeyRing::parse(&format!(
        "{old_text},{}",
        KeyRing::generate_entry(2).unwrap()
    ))
    .unwrap();
    // As if an interrupted run had re-sealed "a" already.
    let update = CredentialUpdate::parse(None, None, None, None, Some("secret-a".into())).unwrap();
    auth.update_credential(&t.db, &ada, &keys, a.id, update)
        .await
        .unwrap();
    let a_before = row(&t.db, a.id).await;

    let report = rotate(&t.db, &keys, 1).await.unwrap();
    assert_eq!((report.resealed, report.skipped), (1, 0), "only b was left");
    assert_eq!(row(&t.db, a.id).await, a_before, "a is not touched again");
    assert_eq!(row(&t.db, b.id).await.key_version, 2);
}

#[tokio::test]
async fn concurrent_rotations_reseal_each_row_exactly_once() {
    let (t, auth, _clock) = setup().await;
    let ada = actor(&auth, &t.db, &user(&auth, &t.db, "ada@x.com").await).await;
    let (old_keys, old_text) = ring(&[1]);
    let mut ids = Vec::new();
    for n in 0..12 {
        let name = format!("c{n}");
        ids.push(store(&auth, &t.db, &ada, &old_keys, &name, &name).await.id);
    }
    let keys = KeyRing::parse(&format!(
        "{old_text},{}",
        KeyRing::generate_entry(2).unwrap()
    ))
    .unwrap();

    let (one, two) = tokio::join!(rotate(&t.db, &keys, 3), rotate(&t.db, &keys, 3));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.resealed + two.resealed, 12, "{one:?} {two:?}");
    assert_eq!(one.failed + two.failed, 0);
    for (n, id) in ids.iter().enumerate() {
        let (opened, secret) = auth
            .reveal_credential(&t.db, &ada, &keys, *id)
            .await
            .unwrap();
        assert_eq!(
            (opened.key_version, secret.expose()),
            (2, format!("c{n}").as_str())
        );
    }
}
