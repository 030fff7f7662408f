//! Browser sessions (status lifecycle, URLs, expiry) and browser contexts
//! (storage sealed with the vault key ring, isolation level), through the
//! services and through the schema.

mod common;
mod resources_common;

use agents::browser::{
    self, BrowserContextFields, BrowserSessionFields, BrowserSessionStatus, ExpiryJob, Finish,
    NewBrowserContext, NewBrowserSession, Storage,
};
use agents::entity::{browser_context, browser_session};
use chrono::Duration;
use common::Fixture;
use core_auth::entity::security_audit_log;
use core_auth::vault::Rotation;
use kernel::actor::Actor;
use kernel::clock::Clock;
use kernel::crypto::KeyRing;
use kernel::error::Code;
use kernel::page::PageArgs;
use resources_common::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

const COOKIES: &str = "sid=s3cr3t-cookie-value";

async fn record(f: &Fixture, actor: &Actor, session_id: &str, ttl: Option<Duration>) -> Uuid {
    let now = f.clock.now();
    let req = NewBrowserSession::parse(
        BrowserSessionFields {
            session_id: session_id.into(),
            url: Some("https://example.com/start".into()),
            expires_at: ttl.map(|d| now + d),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    browser::record_session(&f.t.db, actor, req, now)
        .await
        .unwrap()
        .id
}

async fn stored_session(f: &Fixture, id: Uuid) -> browser_session::Model {
    browser_session::Entity::find_by_id(id)
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

fn storage() -> Value {
    json!({ "cookies": [{ "name": "sid", "value": COOKIES, "domain": "example.com" }],
            "localStorage": { "theme": "dark" } })
}

async fn context(f: &Fixture, actor: &Actor, keys: &KeyRing, context_id: &str) -> Uuid {
    let now = f.clock.now();
    let req = NewBrowserContext::parse(
        BrowserContextFields {
            client_id: Some("acme-corp".into()),
            context_id: context_id.into(),
            storage: Some(storage()),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    browser::create_context(&f.t.db, actor, keys, req, now)
        .await
        .unwrap()
        .id
}

async fn stored_context(f: &Fixture, id: Uuid) -> browser_context::Model {
    browser_context::Entity::find_by_id(id)
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

const RECORD: &str = "mutation($input: RecordBrowserSessionInput!) {
    recordBrowserSession(input: $input) { id sessionId status url debugUrl recordingUrl completedAt } }";

#[tokio::test]
async fn a_recorded_session_starts_active_with_its_urls_parsed() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": {
        "sessionId": "bb_sess_1", "url": "HTTPS://Example.com/a b",
        "debugUrl": "https://debug.browserbase.com/x", "metadata": { "viewport": 1280 },
        "expiresAt": (f.clock.now() + Duration::hours(1)).to_rfc3339() } });
    let out = data(run(&s, &alice, RECORD, input).await);
    let session = &out["recordBrowserSession"];
    assert_eq!(session["status"], "ACTIVE");
    assert_eq!(session["url"], "https://example.com/a%20b", "normalised");
    assert_eq!(session["debugUrl"], "https://debug.browserbase.com/x");
    assert_eq!(session["completedAt"], Value::Null);
}

#[tokio::test]
async fn urls_that_are_not_http_or_https_are_bad_user_input_naming_the_field() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    for (field, value) in [
        ("url", "javascript:alert(1)"),
        ("url", "not a url"),
        ("debugUrl", "ftp://files.example.com/x"),
        ("recordingUrl", "file:///etc/passwd"),
        ("recordingUrl", "https://"),
    ] {
        let input = json!({ "input": { "sessionId": "bb_1", field: value } });
        let res = run(&s, &alice, RECORD, input).await;
        assert_eq!(
            error(&res),
            ("BAD_USER_INPUT".into(), Some(field.into())),
            "{value}"
        );
    }
    let past = json!({ "input": { "sessionId": "bb_1",
        "expiresAt": (f.clock.now() - Duration::seconds(1)).to_rfc3339() } });
    let res = run(&s, &alice, RECORD, past).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("expiresAt".into()))
    );
    let list = json!({ "input": { "sessionId": "bb_1", "metadata": [1, 2] } });
    let res = run(&s, &alice, RECORD, list).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("metadata".into()))
    );
    let none = count(&f, "SELECT COUNT(*) AS n FROM browser_sessions", vec![]).await;
    assert_eq!(none, 0, "nothing was recorded");
}

#[tokio::test]
async fn a_provider_session_id_is_recorded_once_per_user_and_tells_another_user_nothing() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "sessionId": "bb_taken" } });
    data(run(&s, &alice, RECORD, input.clone()).await);
    let res = run(&s, &alice, RECORD, input.clone()).await;
    assert_eq!(error(&res), ("CONFLICT".into(), Some("sessionId".into())));
    // Another tenant's id neither conflicts nor reveals that it exists.
    data(run(&s, &bob, RECORD, input.clone()).await);
}

#[test]
fn a_browser_session_leaves_active_once_and_final_states_are_final() {
    use BrowserSessionStatus::*;
    for to in [Completed, Failed, Expired] {
        assert_eq!(Active.transition(to).unwrap(), to);
    }
    assert!(Active.transition(Active).is_err());
    for from in [Completed, Failed, Expired] {
        for to in BrowserSessionStatus::ALL {
            let err = from.transition(*to).unwrap_err();
            assert_eq!(err.code(), Code::InvalidTransition);
        }
    }
}

#[tokio::test]
async fn completing_sets_completed_at_and_a_second_finish_is_invalid_transition() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = record(&f, &alice, "bb_1", None).await;
    f.clock.advance(Duration::minutes(3));
    let finish = Finish::completed(
        Some("https://example.com/done".into()),
        Some("https://rec.example.com/1".into()),
    )
    .unwrap();
    let done = browser::finish_session(&f.t.db, &alice, id, finish, f.clock.now())
        .await
        .unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.completed_at, Some(f.clock.now()));
    assert_eq!(done.url.as_deref(), Some("https://example.com/done"));
    assert_eq!(
        done.recording_url.as_deref(),
        Some("https://rec.example.com/1")
    );
    let again = Finish::failed(Some("boom".into())).unwrap();
    let err = browser::finish_session(&f.t.db, &alice, id, again, f.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(stored_session(&f, id).await.status, "completed");
}

#[tokio::test]
async fn failing_records_the_error_through_graphql() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = record(&f, &alice, "bb_1", None).await;
    let s = schema(&f, keys());
    let q = "mutation($input: FailBrowserSessionInput!) {
        failBrowserSession(input: $input) { status error completedAt } }";
    let out = data(
        run(
            &s,
            &alice,
            q,
            json!({ "input": { "id": id, "error": "captcha" } }),
        )
        .await,
    );
    assert_eq!(out["failBrowserSession"]["status"], "FAILED");
    assert_eq!(out["failBrowserSession"]["error"], "captcha");
    assert_ne!(out["failBrowserSession"]["completedAt"], Value::Null);
    let res = run(&s, &alice, q, json!({ "input": { "id": id } })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION");
}

#[tokio::test]
async fn an_active_session_past_its_deadline_reads_expired_and_cannot_be_completed() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let short = record(&f, &alice, "bb_short", Some(Duration::minutes(5))).await;
    let open = record(&f, &alice, "bb_open", None).await;
    f.clock.advance(Duration::minutes(5));
    let now = f.clock.now();
    let seen = browser::session(&f.t.db, &alice, short, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.status, "expired");
    assert_eq!(seen.completed_at, seen.expires_at, "ended at its deadline");
    assert_eq!(
        stored_session(&f, short).await.status,
        "active",
        "read-time rule"
    );
    let ids = |status| {
        let db = f.t.db.clone();
        let alice = alice.clone();
        async move {
            let window = PageArgs::default().parse().unwrap();
            browser::list_sessions(&db, &alice, Some(status), window, now)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|(id, row)| (id, row.status))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(BrowserSessionStatus::Active).await,
        vec![(open, "active".to_owned())]
    );
    assert_eq!(
        ids(BrowserSessionStatus::Expired).await,
        vec![(short, "expired".to_owned())]
    );
    let finish = Finish::completed(None, None).unwrap();
    let err = browser::finish_session(&f.t.db, &alice, short, finish, now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
}

#[tokio::test]
async fn the_expiry_job_writes_expired_at_the_deadline_and_runs_idempotently() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let short = record(&f, &alice, "bb_short", Some(Duration::minutes(5))).await;
    let long = record(&f, &alice, "bb_long", Some(Duration::hours(5))).await;
    let deadline = stored_session(&f, short).await.expires_at;
    f.clock.advance(Duration::minutes(10));
    let job = ExpiryJob {
        db: f.t.db.clone(),
        clock: f.clock.clone(),
    };
    kernel::jobs::run_once(&job).await.unwrap();
    let row = stored_session(&f, short).await;
    assert_eq!(row.status, "expired");
    assert_eq!(row.completed_at, deadline);
    assert_eq!(stored_session(&f, long).await.status, "active");
    let moved = browser::expire_sessions(&f.t.db, f.clock.now())
        .await
        .unwrap();
    assert_eq!(moved, 0, "a second run changes nothing");
}

#[tokio::test]
async fn another_users_session_reads_null_and_is_not_found_to_finish() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let mallory = f.user("mallory@example.com").await;
    let id = record(&f, &alice, "bb_1", None).await;
    let s = schema(&f, keys());
    let read = data(
        run(
            &s,
            &mallory,
            "query($id: ID!) { browserSession(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await,
    );
    assert_eq!(read["browserSession"], Value::Null);
    let q = "mutation($input: CompleteBrowserSessionInput!) {
        completeBrowserSession(input: $input) { status } }";
    let res = run(&s, &mallory, q, json!({ "input": { "id": id } })).await;
    assert_eq!(error(&res).0, "NOT_FOUND");
    assert_eq!(stored_session(&f, id).await.status, "active");
    let listed = data(
        run(
            &s,
            &mallory,
            "{ browserSessions { nodes { id } } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(listed["browserSessions"]["nodes"], json!([]));
}

#[tokio::test]
async fn the_session_list_is_the_callers_own_newest_first_in_pages() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let a1 = record(&f, &alice, "bb_a1", None).await;
    record(&f, &bob, "bb_b1", None).await;
    let a2 = record(&f, &alice, "bb_a2", None).await;
    let a3 = record(&f, &alice, "bb_a3", None).await;
    let s = schema(&f, keys());
    let q = "query($after: String) { browserSessions(first: 2, after: $after) {
        nodes { id } pageInfo { hasNextPage endCursor } } }";
    let first = data(run(&s, &alice, q, json!({})).await);
    let page = &first["browserSessions"];
    assert_eq!(page["nodes"], json!([{ "id": a3 }, { "id": a2 }]));
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].clone();
    let second = data(run(&s, &alice, q, json!({ "after": cursor })).await);
    assert_eq!(second["browserSessions"]["nodes"], json!([{ "id": a1 }]));
    assert_eq!(second["browserSessions"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn context_storage_is_stored_sealed_never_as_plaintext() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let keys = keys();
    let id = context(&f, &alice, &keys, "ctx_1").await;
    let row = stored_context(&f, id).await;
    let stored = format!(
        "{:?}{:?}{:?}",
        row.encrypted_storage, row.storage_iv, row.storage_auth_tag
    );
    assert!(
        !stored.contains(COOKIES),
        "the cookie is not stored in clear"
    );
    assert!(!stored.contains("localStorage"));
    assert_eq!(row.storage_key_version, Some(1));
    let opened = browser::open_storage(&keys, &row).unwrap().unwrap();
    assert_eq!(opened.into_json(), storage());
    assert_eq!(
        format!("{:?}", Storage::parse(storage()).unwrap()),
        "[redacted]"
    );
}

#[tokio::test]
async fn a_sealed_storage_moved_to_another_row_or_user_does_not_open() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let mallory = f.user("mallory@example.com").await;
    let keys = keys();
    let victim = context(&f, &alice, &keys, "ctx_victim").await;
    let alices_other = context(&f, &alice, &keys, "ctx_other").await;
    let mallorys = context(&f, &mallory, &keys, "ctx_mallory").await;
    let sealed = stored_context(&f, victim).await;
    for target in [alices_other, mallorys] {
        browser_context::Entity::update_many()
            .col_expr(
                browser_context::Column::EncryptedStorage,
                Expr::value(sealed.encrypted_storage.clone()),
            )
            .col_expr(
                browser_context::Column::StorageIv,
                Expr::value(sealed.storage_iv.clone()),
            )
            .col_expr(
                browser_context::Column::StorageAuthTag,
                Expr::value(sealed.storage_auth_tag.clone()),
            )
            .filter(browser_context::Column::Id.eq(target))
            .exec(&f.t.db)
            .await
            .unwrap();
        let moved = stored_context(&f, target).await;
        assert!(
            browser::open_storage(&keys, &moved).is_err(),
            "AAD binds owner and row"
        );
    }
    let err = browser::reveal_storage(&f.t.db, &mallory, &keys, mallorys, f.clock.now())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InternalServerError,
        "never the victim's cookies"
    );
    let still = browser::open_storage(&keys, &stored_context(&f, victim).await).unwrap();
    assert_eq!(still.unwrap().into_json(), storage());
}

#[tokio::test]
async fn a_context_id_is_recorded_once_per_user_and_tells_another_user_nothing() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let s = schema(&f, keys());
    let q = "mutation($input: CreateBrowserContextInput!) {
        createBrowserContext(input: $input) { id isolationLevel hasStorage usable clientId } }";
    let input =
        json!({ "input": { "contextId": "ctx_1", "clientId": "acme", "storage": storage() } });
    let out = data(run(&s, &alice, q, input.clone()).await);
    let created = &out["createBrowserContext"];
    assert_eq!(created["isolationLevel"], "STRICT", "the default");
    assert_eq!(created["hasStorage"], true);
    assert_eq!(created["usable"], true);
    let res = run(&s, &alice, q, input.clone()).await;
    assert_eq!(error(&res), ("CONFLICT".into(), Some("contextId".into())));
    data(run(&s, &bob, q, input).await);
    let shared = json!({ "input": { "contextId": "ctx_2", "isolationLevel": "SHARED" } });
    let out = data(run(&s, &alice, q, shared).await);
    assert_eq!(out["createBrowserContext"]["isolationLevel"], "SHARED");
    assert_eq!(out["createBrowserContext"]["hasStorage"], false);
    let bad = json!({ "input": { "contextId": "ctx 3", "storage": [1] } });
    let res = run(&s, &alice, q, bad).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("contextId".into()))
    );
    let bad = json!({ "input": { "contextId": "ctx_3", "storage": "cookies" } });
    let res = run(&s, &alice, q, bad).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("storage".into()))
    );
}

#[tokio::test]
async fn context_lists_never_carry_the_storage() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let keys = keys();
    context(&f, &alice, &keys, "ctx_1").await;
    let s = schema(&f, keys);
    let res = run(
        &s,
        &alice,
        "{ browserContexts { nodes { storage } } }",
        json!({}),
    )
    .await;
    assert!(
        !res.errors.is_empty(),
        "BrowserContext has no storage field"
    );
    let out = data(
        run(
            &s,
            &alice,
            "{ browserContexts { nodes { contextId hasStorage metadata } } }",
            json!({}),
        )
        .await,
    );
    let text = out.to_string();
    assert!(text.contains("ctx_1") && !text.contains(COOKIES));
}

const REVEAL: &str = "query($id: ID!) { browserContextStorage(id: $id) {
    storage context { contextId lastUsedAt } } }";

#[tokio::test]
async fn the_owner_reveals_the_storage_and_each_reveal_is_audited() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let mallory = f.user("mallory@example.com").await;
    let keys = keys();
    let id = context(&f, &alice, &keys, "ctx_1").await;
    let s = schema(&f, keys);
    let out = data(run(&s, &alice, REVEAL, json!({ "id": id })).await);
    assert_eq!(out["browserContextStorage"]["storage"], storage());
    assert_ne!(
        out["browserContextStorage"]["context"]["lastUsedAt"],
        Value::Null
    );
    let audited = security_audit_log::Entity::find()
        .filter(security_audit_log::Column::Action.eq("browser_context.reveal"))
        .all(&f.t.db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].user_id, Some(alice.user_id));
    assert_eq!(
        audited[0].resource_id.as_deref(),
        Some(id.to_string().as_str())
    );
    assert!(
        !audited[0]
            .details
            .as_ref()
            .unwrap()
            .to_string()
            .contains(COOKIES)
    );
    let other = data(run(&s, &mallory, REVEAL, json!({ "id": id })).await);
    assert_eq!(other["browserContextStorage"], Value::Null);
    let res = run(&s, &read_only(&alice), REVEAL, json!({ "id": id })).await;
    assert_eq!(
        error(&res).0,
        "FORBIDDEN",
        "a read-only key cannot take the cookies"
    );
    let n = count(
        &f,
        "SELECT COUNT(*) AS n FROM security_audit_log WHERE action = 'browser_context.reveal'",
        vec![],
    )
    .await;
    assert_eq!(n, 1, "refused reveals write nothing");
}

#[tokio::test]
async fn storage_updates_reseal_under_the_newest_key_and_deactivation_drops_it_for_good() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let v1_text = KeyRing::generate_entry(1).unwrap();
    let v1 = KeyRing::parse(&v1_text).unwrap();
    let id = context(&f, &alice, &v1, "ctx_1").await;
    let before = stored_context(&f, id).await;
    let entry2 = KeyRing::generate_entry(2).unwrap();
    let rotated = KeyRing::parse(&format!("{v1_text},{entry2}")).unwrap();
    assert!(
        browser::open_storage(&rotated, &before).unwrap().is_some(),
        "old seals open"
    );
    let fresh = Storage::parse(json!({ "cookies": [], "v": 2 })).unwrap();
    let after = browser::update_storage(&f.t.db, &alice, &rotated, id, fresh, f.clock.now())
        .await
        .unwrap();
    assert_eq!(after.storage_key_version, Some(2));
    assert_ne!(after.storage_iv, before.storage_iv, "a fresh nonce");
    let opened = browser::open_storage(&rotated, &after).unwrap().unwrap();
    assert_eq!(opened.into_json(), json!({ "cookies": [], "v": 2 }));

    let s = schema(&f, rotated.clone());
    let q =
        "mutation($id: ID!) { deactivateBrowserContext(id: $id) { isActive usable hasStorage } }";
    let out = data(run(&s, &alice, q, json!({ "id": id })).await);
    assert_eq!(
        out["deactivateBrowserContext"],
        json!({ "isActive": false, "usable": false, "hasStorage": false })
    );
    let row = stored_context(&f, id).await;
    assert!(row.encrypted_storage.is_none() && row.storage_key_version.is_none());
    let res = run(&s, &alice, q, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION", "deactivation is final");
    let update = "mutation($id: ID!) { updateBrowserContextStorage(input: { id: $id, storage: {} }) { id } }";
    let res = run(&s, &alice, update, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION");
}

#[tokio::test]
async fn an_expired_context_takes_no_new_storage_and_usable_lists_skip_it() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let mallory = f.user("mallory@example.com").await;
    let keys = keys();
    let now = f.clock.now();
    let req = NewBrowserContext::parse(
        BrowserContextFields {
            context_id: "ctx_short".into(),
            expires_at: Some(now + Duration::minutes(1)),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    let short = browser::create_context(&f.t.db, &alice, &keys, req, now)
        .await
        .unwrap()
        .id;
    let live = context(&f, &alice, &keys, "ctx_live").await;
    let retired = context(&f, &alice, &keys, "ctx_retired").await;
    browser::deactivate_context(&f.t.db, &alice, retired, now)
        .await
        .unwrap();
    f.clock.advance(Duration::minutes(2));
    let s = schema(&f, keys.clone());
    let q = "query($usable: Boolean!) { browserContexts(usableOnly: $usable) { nodes { id } } }";
    let usable = data(run(&s, &alice, q, json!({ "usable": true })).await);
    assert_eq!(usable["browserContexts"]["nodes"], json!([{ "id": live }]));
    let all = data(run(&s, &alice, q, json!({ "usable": false })).await);
    assert_eq!(
        all["browserContexts"]["nodes"],
        json!([{ "id": retired }, { "id": live }, { "id": short }])
    );
    let fresh = Storage::parse(json!({})).unwrap();
    let err = browser::update_storage(&f.t.db, &alice, &keys, short, fresh.clone(), f.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    let err = browser::update_storage(&f.t.db, &mallory, &keys, live, fresh, f.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another user's context");
}

/// A ring of fresh keys `1` and `2` as the operator holds them while
/// rotating: the old ring alone, the ring with both, and the new key alone.
fn rotation_rings() -> (KeyRing, KeyRing, KeyRing) {
    let (old, new) = (
        KeyRing::generate_entry(1).unwrap(),
        KeyRing::generate_entry(2).unwrap(),
    );
    (
        KeyRing::parse(&old).unwrap(),
        KeyRing::parse(&format!("{old},{new}")).unwrap(),
        KeyRing::parse(&new).unwrap(),
    )
}

/// A context of `actor`, with [`storage`] when `sealed`, usable until `ttl` passes.
async fn context_with(
    f: &Fixture,
    actor: &Actor,
    keys: &KeyRing,
    context_id: &str,
    sealed: bool,
    ttl: Option<Duration>,
) -> Uuid {
    let now = f.clock.now();
    let req = NewBrowserContext::parse(
        BrowserContextFields {
            context_id: context_id.into(),
            storage: sealed.then(storage),
            expires_at: ttl.map(|d| now + d),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    browser::create_context(&f.t.db, actor, keys, req, now)
        .await
        .unwrap()
        .id
}

async fn all_contexts(f: &Fixture) -> Vec<browser_context::Model> {
    browser_context::Entity::find().all(&f.t.db).await.unwrap()
}

#[tokio::test]
async fn rotation_reseals_context_storage_under_the_newest_key_and_a_second_run_changes_nothing() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let (old, both, only_new) = rotation_rings();
    let live = context(&f, &alice, &old, "ctx_live").await;
    let expiring = context_with(
        &f,
        &alice,
        &old,
        "ctx_expiring",
        true,
        Some(Duration::minutes(1)),
    )
    .await;
    let empty = context_with(&f, &alice, &old, "ctx_empty", false, None).await;
    let retired = context(&f, &alice, &old, "ctx_retired").await;
    browser::deactivate_context(&f.t.db, &alice, retired, f.clock.now())
        .await
        .unwrap();
    let bobs = context(&f, &bob, &old, "ctx_bob").await;
    f.clock.advance(Duration::minutes(2));
    let untouched = |rows: &[browser_context::Model]| -> Vec<browser_context::Model> {
        rows.iter()
            .filter(|r| r.id == empty || r.id == retired)
            .cloned()
            .collect()
    };
    let without_storage = untouched(&all_contexts(&f).await);

    let first = browser::rotate(&f.t.db, &both, 2).await.unwrap();
    assert_eq!(
        first,
        Rotation {
            to_version: 2,
            resealed: 3,
            skipped: 0,
            failed: 0
        },
        "the expired context is re-sealed too; contexts without storage have nothing to re-seal"
    );
    let after = all_contexts(&f).await;
    assert_eq!(untouched(&after), without_storage);
    for id in [live, expiring, bobs] {
        let row = after.iter().find(|r| r.id == id).unwrap();
        assert_eq!(row.storage_key_version, Some(2));
        // The old key can now be retired: the new key alone opens every row.
        let opened = browser::open_storage(&only_new, row).unwrap().unwrap();
        assert_eq!(opened.into_json(), storage());
    }
    let (_, revealed) = browser::reveal_storage(&f.t.db, &alice, &only_new, live, f.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revealed.unwrap().into_json(), storage());

    let before_second = all_contexts(&f).await;
    let second = browser::rotate(&f.t.db, &both, 2).await.unwrap();
    assert_eq!(
        second,
        Rotation {
            to_version: 2,
            ..Default::default()
        }
    );
    assert_eq!(all_contexts(&f).await, before_second);
}

#[tokio::test]
async fn rotation_counts_and_leaves_context_storage_that_does_not_open() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let (old, both, _) = rotation_rings();
    let good = context(&f, &alice, &old, "ctx_good").await;
    let unknown = context(&f, &alice, &old, "ctx_unknown").await;
    browser_context::Entity::update_many()
        .col_expr(browser_context::Column::StorageKeyVersion, Expr::value(7))
        .filter(browser_context::Column::Id.eq(unknown))
        .exec(&f.t.db)
        .await
        .unwrap();
    let unknown_before = stored_context(&f, unknown).await;

    let report = browser::rotate(&f.t.db, &both, 10).await.unwrap();
    assert_eq!((report.resealed, report.failed), (1, 1));
    assert_eq!(stored_context(&f, good).await.storage_key_version, Some(2));
    assert_eq!(
        stored_context(&f, unknown).await,
        unknown_before,
        "left as it was"
    );

    let again = browser::rotate(&f.t.db, &both, 10).await.unwrap();
    assert_eq!((again.resealed, again.failed), (0, 1));
    assert_eq!(stored_context(&f, unknown).await, unknown_before);
}

#[tokio::test]
async fn rotation_resumes_with_only_the_contexts_still_under_old_keys() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let (old, both, _) = rotation_rings();
    let a = context(&f, &alice, &old, "ctx_a").await;
    let b = context(&f, &alice, &old, "ctx_b").await;
    // As if an interrupted run had re-sealed "a" already.
    let same = Storage::parse(storage()).unwrap();
    browser::update_storage(&f.t.db, &alice, &both, a, same, f.clock.now())
        .await
        .unwrap();
    let a_before = stored_context(&f, a).await;

    let report = browser::rotate(&f.t.db, &both, 1).await.unwrap();
    assert_eq!((report.resealed, report.skipped), (1, 0), "only b was left");
    assert_eq!(
        stored_context(&f, a).await,
        a_before,
        "a is not touched again"
    );
    assert_eq!(stored_context(&f, b).await.storage_key_version, Some(2));
}

#[tokio::test]
async fn concurrent_rotations_reseal_each_context_exactly_once() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let (old, both, _) = rotation_rings();
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(context(&f, &alice, &old, &format!("ctx_{n}")).await);
    }

    let (one, two) = tokio::join!(
        browser::rotate(&f.t.db, &both, 3),
        browser::rotate(&f.t.db, &both, 3)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.resealed + two.resealed, 12, "{one:?} {two:?}");
    assert_eq!(one.failed + two.failed, 0);
    for id in ids {
        let row = stored_context(&f, id).await;
        assert_eq!(row.storage_key_version, Some(2));
        let opened = browser::open_storage(&both, &row).unwrap().unwrap();
        assert_eq!(opened.into_json(), storage());
    }
}

/// A storage update that commits between rotation's read and its write wins.
/// The writer is a server instance still on the old ring, so its new seal
/// keeps key version 1 and only the nonce tells the rotation the row changed.
/// PostgreSQL only: SQLite runs one writer at a time, so a write cannot land
/// between a transaction's read and its write there.
#[tokio::test]
async fn a_storage_update_between_rotations_read_and_write_is_not_overwritten() {
    let f = Fixture::new().await;
    if !f.t.is_postgres() {
        return;
    }
    let alice = f.user("alice@example.com").await;
    let (old, both, only_new) = rotation_rings();
    let id = context(&f, &alice, &old, "ctx_raced").await;
    let fresh = json!({ "cookies": [], "written": "meanwhile" });

    // The writer takes the row lock first and holds it.
    let writer = f.t.db.begin().await.unwrap();
    let pid: i32 = writer
        .query_one_raw(sea_orm::Statement::from_string(
            writer.get_database_backend(),
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "pid")
        .unwrap();
    let update = Storage::parse(fresh.clone()).unwrap();
    browser::update_storage(&writer, &alice, &old, id, update, f.clock.now())
        .await
        .unwrap();

    // The rotation reads the committed row, then its write waits for the lock.
    let rotation = tokio::spawn({
        let (db, keys) = (f.t.db.clone(), both.clone());
        async move { browser::rotate(&db, &keys, 10).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(
        &f,
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))",
        vec![pid.into()],
    )
    .await
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation never waited for the writer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writer.commit().await.unwrap();

    let report = rotation.await.unwrap().unwrap();
    assert_eq!((report.resealed, report.skipped), (0, 1), "{report:?}");
    let row = stored_context(&f, id).await;
    assert_eq!(row.storage_key_version, Some(1), "the writer's seal stands");
    let opened = browser::open_storage(&old, &row).unwrap().unwrap();
    assert_eq!(opened.into_json(), fresh, "the update is not overwritten");

    // The next run re-seals what the writer stored.
    let next = browser::rotate(&f.t.db, &both, 10).await.unwrap();
    assert_eq!(next.resealed, 1);
    let row = stored_context(&f, id).await;
    let opened = browser::open_storage(&only_new, &row).unwrap().unwrap();
    assert_eq!(opened.into_json(), fresh);
}
