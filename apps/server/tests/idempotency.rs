//! The `Idempotency-Key` header over HTTP, and the kernel store beneath it.

mod common;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::test::TestRequest;
use actix_web::{App, test};
use chrono::{Duration, Utc};
use common::{TestApp, code, spawn_app};
use futures_util::future::join_all;
use kernel::clock::ManualClock;
use kernel::crypto::KeyRing;
use kernel::error::Code;
use kernel::idempotency::entity::{Column, Entity, Model};
use kernel::idempotency::{
    Claim, Claimed, Idempotency, IdempotencyKey, RequestHash, SEALED_PREFIX, Scope, StoredResponse,
};
use kernel::testing::TestDb;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

const CREATE_KEY: &str =
    r#"mutation { createApiKey(input: {name: "ci"}) { secret apiKey { id name } } }"#;

/// What one keyed request answered.
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
    /// The body as sent, byte for byte.
    raw: String,
}

async fn send(app: &TestApp, body: Value, token: Option<&str>, key: Option<HeaderValue>) -> Answer {
    let service = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(
                server::http::request_context,
            ))
            .configure(server::routes(app.state.clone())),
    )
    .await;
    let mut req = TestRequest::post().uri("/graphql").set_json(body);
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    if let Some(key) = key {
        req = req.insert_header(("idempotency-key", key));
    }
    let res = test::call_service(&service, req.to_request()).await;
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let bytes = test::read_body(res).await;
    Answer {
        status,
        replayed,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    }
}

async fn keyed(app: &TestApp, query: &str, token: Option<&str>, key: &'static str) -> Answer {
    send(
        app,
        json!({ "query": query }),
        token,
        Some(HeaderValue::from_static(key)),
    )
    .await
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let db = &app.db.db;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

fn secret(answer: &Answer) -> &str {
    answer.body["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no secret in {}", answer.body))
}

#[actix_web::test]
async fn a_repeated_key_replays_the_first_response_and_runs_the_mutation_once() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let first = keyed(&app, CREATE_KEY, Some(&token), "order-1").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.replayed);
    let again = keyed(&app, CREATE_KEY, Some(&token), "order-1").await;
    assert_eq!(again.status, first.status);
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    assert_eq!(secret(&again), secret(&first));
    assert_eq!(count(&app, "api_keys").await, 1);
    assert_eq!(count(&app, "idempotency_keys").await, 1);
}

#[actix_web::test]
async fn the_same_key_with_a_different_request_is_a_conflict() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    keyed(&app, CREATE_KEY, Some(&token), "k").await;
    let other = r#"mutation { createApiKey(input: {name: "other"}) { secret } }"#;
    let answer = keyed(&app, other, Some(&token), "k").await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(code(&answer.body), "CONFLICT");
    assert_eq!(
        answer.body["errors"][0]["extensions"]["field"],
        "Idempotency-Key"
    );
    assert!(
        answer.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("different request")),
        "{}",
        answer.body
    );
    // Other variables are another request too.
    let with_vars = |name: &str| {
        json!({
            "query": "mutation($n: String!) { createApiKey(input: {name: $n}) { secret } }",
            "variables": { "n": name },
        })
    };
    let key = || Some(HeaderValue::from_static("v"));
    assert_eq!(
        send(&app, with_vars("a"), Some(&token), key()).await.status,
        StatusCode::OK
    );
    let answer = send(&app, with_vars("b"), Some(&token), key()).await;
    assert_eq!(code(&answer.body), "CONFLICT");
    assert_eq!(count(&app, "api_keys").await, 2);
}

#[actix_web::test]
async fn fifty_concurrent_repeats_of_one_key_run_the_mutation_once() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let answers = join_all((0..50).map(|_| keyed(&app, CREATE_KEY, Some(&token), "burst"))).await;
    assert_eq!(count(&app, "api_keys").await, 1);
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body, first.body);
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
}

#[actix_web::test]
async fn keys_are_scoped_per_user_and_anonymous_callers_apart() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let a = keyed(&app, CREATE_KEY, Some(&ada), "shared").await;
    let b = keyed(&app, CREATE_KEY, Some(&bob), "shared").await;
    assert!(!b.replayed);
    assert_ne!(secret(&a), secret(&b));
    assert_eq!(count(&app, "api_keys").await, 2);
    let register = r#"mutation { register(input: {email: "cy@example.com", password: "correct horse"}) { user { email } } }"#;
    let anonymous = keyed(&app, register, None, "shared").await;
    assert!(!anonymous.replayed);
    assert_eq!(
        anonymous.body["data"]["register"]["user"]["email"],
        "cy@example.com"
    );
}

#[actix_web::test]
async fn queries_ignore_the_key() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let query = keyed(&app, "{ me { email } }", Some(&token), "q").await;
    assert_eq!(query.body["data"]["me"]["email"], "ada@example.com");
    assert_eq!(count(&app, "idempotency_keys").await, 0);
    // Not even a malformed key is read on a query.
    let bad = send(
        &app,
        json!({ "query": "{ me { email } }" }),
        Some(&token),
        Some(HeaderValue::from_static("")),
    )
    .await;
    assert_eq!(bad.status, StatusCode::OK);
    let created = keyed(&app, CREATE_KEY, Some(&token), "q").await;
    assert!(!created.replayed);
    let query = keyed(&app, "{ me { email } }", Some(&token), "q").await;
    assert!(!query.replayed);
    assert_eq!(query.body["data"]["me"]["email"], "ada@example.com");
}

#[actix_web::test]
async fn an_expired_key_runs_the_mutation_again() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let first = keyed(&app, CREATE_KEY, Some(&token), "old").await;
    Entity::update_many()
        .col_expr(
            Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .exec(&app.db.db)
        .await
        .expect("age the key");
    let again = keyed(&app, CREATE_KEY, Some(&token), "old").await;
    assert!(!again.replayed);
    assert_ne!(secret(&again), secret(&first));
    assert_eq!(count(&app, "api_keys").await, 2);
    assert_eq!(count(&app, "idempotency_keys").await, 1);
}

#[actix_web::test]
async fn invalid_keys_are_bad_user_input_and_run_nothing() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let long = HeaderValue::from_str(&"k".repeat(256)).expect("header");
    let non_ascii = HeaderValue::from_bytes("clé".as_bytes()).expect("header");
    for key in [HeaderValue::from_static(""), long, non_ascii] {
        let answer = send(
            &app,
            json!({ "query": CREATE_KEY }),
            Some(&token),
            Some(key),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&answer.body), "BAD_USER_INPUT");
        assert_eq!(
            answer.body["errors"][0]["extensions"]["field"],
            "Idempotency-Key"
        );
    }
    let max = HeaderValue::from_str(&"k".repeat(255)).expect("header");
    let answer = send(
        &app,
        json!({ "query": CREATE_KEY }),
        Some(&token),
        Some(max),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(count(&app, "api_keys").await, 1);
}

#[actix_web::test]
async fn a_batch_holding_a_mutation_cannot_carry_a_key() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let batch = json!([{ "query": "{ me { email } }" }, { "query": CREATE_KEY }]);
    let answer = send(
        &app,
        batch,
        Some(&token),
        Some(HeaderValue::from_static("b")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer.body), "BAD_USER_INPUT");
    assert_eq!(count(&app, "api_keys").await, 0);
}

#[actix_web::test]
async fn refusals_are_replayed_but_documents_refused_before_execution_are_not_stored() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let revoke = r#"mutation { revokeApiKey(id: "0190a000-0000-7000-8000-000000000000") }"#;
    let refused = keyed(&app, revoke, Some(&token), "r").await;
    assert_eq!(code(&refused.body), "NOT_FOUND");
    let again = keyed(&app, revoke, Some(&token), "r").await;
    assert!(again.replayed);
    assert_eq!(again.body, refused.body);
    let invalid = "mutation { createApiKey(input: {name: 1}) { secret } }";
    let answer = keyed(&app, invalid, Some(&token), "v").await;
    assert_eq!(code(&answer.body), "BAD_USER_INPUT");
    assert_eq!(count(&app, "idempotency_keys").await, 1);
    // The released key is free for a corrected request.
    let fixed = keyed(&app, CREATE_KEY, Some(&token), "v").await;
    assert!(
        fixed.body["data"]["createApiKey"]["secret"].is_string(),
        "{}",
        fixed.body
    );
}

// The store itself, against the same databases.

fn store(clock: Arc<ManualClock>) -> Idempotency {
    store_with(clock, KeyRing::single(1, [7; 32]))
}

fn store_with(clock: Arc<ManualClock>, keys: KeyRing) -> Idempotency {
    let mut store = Idempotency::new(clock, keys);
    store.wait = std::time::Duration::from_millis(100);
    store.poll = std::time::Duration::from_millis(10);
    store
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).expect("key")
}

fn hash(text: &str) -> RequestHash {
    RequestHash::of(&json!({ "query": text }))
}

fn reply(body: &str) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_key_have_exactly_one_winner() {
    let db = TestDb::new::<migration::Migrator>().await;
    let store = store(ManualClock::new());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (db, store) = (db.db.clone(), store.clone());
            tokio::spawn(async move {
                store
                    .try_claim(&db, Scope::Anonymous, &key("k"), &hash("q"))
                    .await
                    .expect("claim")
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Claim::Won(ticket) => {
                won += 1;
                assert!(
                    store
                        .complete(&db.db, ticket, &reply("{}"))
                        .await
                        .expect("complete")
                );
            }
            Claim::InProgress | Claim::Replay(_) => {}
            Claim::Mismatch => panic!("same request reported as different"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(Entity::find().count(&db.db).await.expect("count"), 1);
}

#[tokio::test]
async fn an_unfinished_claim_is_in_progress_until_its_lease_ends() {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let store = store(clock.clone());
    let Claimed::Run(lost) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("first claim must run");
    };
    let err = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect_err("still running");
    assert_eq!(err.code(), Code::Conflict);
    assert!(err.to_string().contains("in progress"), "{err}");
    clock.advance(Duration::seconds(61));
    let Claimed::Run(ticket) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("an expired lease frees the key");
    };
    // The crashed first claimant can no longer store a response.
    assert!(
        !store
            .complete(&db.db, lost, &reply("stale"))
            .await
            .expect("complete")
    );
    assert!(
        store
            .complete(&db.db, ticket, &reply("fresh"))
            .await
            .expect("complete")
    );
    let Claimed::Replay(stored) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("completed keys replay");
    };
    assert_eq!(stored.body, "fresh");
}

#[tokio::test]
async fn a_repeat_waits_for_the_first_request_and_replays_it() {
    let db = TestDb::new::<migration::Migrator>().await;
    let mut store = store(ManualClock::new());
    store.wait = std::time::Duration::from_secs(5);
    let Claimed::Run(ticket) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("first claim must run");
    };
    let waiter = {
        let (db, store) = (db.db.clone(), store.clone());
        tokio::spawn(async move {
            store
                .claim(&db, Scope::Anonymous, &key("k"), &hash("q"))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(
        store
            .complete(&db.db, ticket, &reply("done"))
            .await
            .expect("complete")
    );
    match waiter.await.expect("task").expect("claim") {
        Claimed::Replay(stored) => assert_eq!(stored.body, "done"),
        Claimed::Run(_) => panic!("the repeat ran the work again"),
    }
}

#[tokio::test]
async fn a_released_key_runs_again_and_the_replay_window_is_24_hours() {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let store = store(clock.clone());
    let Claimed::Run(ticket) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("first claim must run");
    };
    store.release(&db.db, ticket).await.expect("release");
    let Claimed::Run(ticket) = store
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("a released key is free");
    };
    assert!(
        store
            .complete(&db.db, ticket, &reply("one"))
            .await
            .expect("complete")
    );
    clock.advance(Duration::hours(23));
    assert!(matches!(
        store
            .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
            .await
            .expect("claim"),
        Claimed::Replay(_)
    ));
    clock.advance(Duration::hours(1));
    assert!(matches!(
        store
            .claim(&db.db, Scope::Anonymous, &key("k"), &hash("other"))
            .await
            .expect("claim"),
        Claimed::Run(_)
    ));
}

#[tokio::test]
async fn the_purge_deletes_only_expired_keys() {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let store = store(clock.clone());
    for (text, done) in [("old", true), ("crashed", false)] {
        let Claimed::Run(ticket) = store
            .claim(&db.db, Scope::Anonymous, &key(text), &hash("q"))
            .await
            .expect("claim")
        else {
            panic!("fresh keys run");
        };
        if done {
            assert!(
                store
                    .complete(&db.db, ticket, &reply("x"))
                    .await
                    .expect("complete")
            );
        } else {
            drop(ticket);
        }
    }
    clock.advance(Duration::hours(25));
    let Claimed::Run(ticket) = store
        .claim(&db.db, Scope::Anonymous, &key("new"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("fresh keys run");
    };
    assert!(
        store
            .complete(&db.db, ticket, &reply("y"))
            .await
            .expect("complete")
    );
    assert_eq!(store.purge_expired(&db.db).await.expect("purge"), 2);
    let left: Vec<String> = Entity::find()
        .all(&db.db)
        .await
        .expect("rows")
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert_eq!(left, vec!["new".to_owned()]);
}

#[tokio::test]
async fn idempotency_migration_rolls_back_and_reapplies() {
    use migration::{Migrator, MigratorTrait};
    let db = TestDb::new::<migration::Migrator>().await;
    let applied = Migrator::get_applied_migrations(&db.db)
        .await
        .expect("applied")
        .len();
    let through_ours = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261128_000011_idempotency")
        .expect("registered")
        + 1;
    Migrator::down(&db.db, Some((applied - through_ours + 1) as u32))
        .await
        .expect("down");
    assert!(
        Entity::find().all(&db.db).await.is_err(),
        "table left behind"
    );
    Migrator::up(&db.db, None).await.expect("up");
    let store = store(ManualClock::new());
    assert!(matches!(
        store
            .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
            .await
            .expect("claim"),
        Claimed::Run(_)
    ));
}

#[actix_web::test]
async fn a_read_only_api_key_never_gets_a_response_stored_for_its_user() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let read_only = app
        .gql(
            r#"mutation { createApiKey(input: {name: "ro", permissions: [READ]}) { secret } }"#,
            Some(&token),
        )
        .await;
    let read_only = read_only["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let first = keyed(&app, CREATE_KEY, Some(&token), "w").await;
    let answer = keyed(&app, CREATE_KEY, Some(&read_only), "w").await;
    assert!(!answer.replayed);
    assert_eq!(code(&answer.body), "FORBIDDEN", "{}", answer.body);
    assert!(!answer.body.to_string().contains(secret(&first)));
    assert_eq!(count(&app, "api_keys").await, 2);
}

/// Serves the app on a real port with two workers; returns its address.
async fn serve(app: &TestApp) -> std::net::SocketAddr {
    let state = app.state.clone();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                server::http::request_context,
            ))
            .configure(server::routes(state.clone()))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    addr
}

/// One HTTP/1.1 POST /graphql over a fresh TCP connection: status and body.
async fn post_over_tcp(
    addr: std::net::SocketAddr,
    body: &str,
    token: &str,
    key: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_http_repeats_on_several_threads_run_the_mutation_once() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let addr = serve(&app).await;
    let body = json!({ "query": CREATE_KEY }).to_string();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (body, token) = (body.clone(), token.clone());
            tokio::spawn(async move { post_over_tcp(addr, &body, &token, "parallel").await })
        })
        .collect();
    let mut bodies = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, 200, "{body}");
        bodies.push(serde_json::from_str::<Value>(&body).expect("json body"));
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert!(bodies[0]["data"]["createApiKey"]["secret"].is_string());
    assert_eq!(count(&app, "api_keys").await, 1);
}

/// Buys the enrichment credit package; returns the balance it leaves.
async fn buy_enrichment_credits(app: &TestApp, token: &str) -> i64 {
    let packages = app
        .gql(
            "{ creditPackages { id creditType creditAmount } }",
            Some(token),
        )
        .await;
    let package = packages["data"]["creditPackages"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["creditType"] == "ENRICHMENT"))
        .unwrap_or_else(|| panic!("an enrichment package: {packages}"))
        .clone();
    let bought = app
        .gql(
            &format!(
                r#"mutation {{ purchaseCredits(packageId: "{}") {{ balanceAfter }} }}"#,
                package["id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    let before = bought["data"]["purchaseCredits"]["balanceAfter"]
        .as_i64()
        .unwrap_or_else(|| panic!("{bought}"));
    assert_eq!(before, package["creditAmount"].as_i64().unwrap());
    before
}

async fn enrichment_balance(app: &TestApp, token: &str) -> Value {
    let balances = app
        .gql("{ credits { creditType balance } }", Some(token))
        .await;
    balances["data"]["credits"]
        .as_array()
        .unwrap_or_else(|| panic!("{balances}"))
        .iter()
        .find(|b| b["creditType"] == "ENRICHMENT")
        .unwrap_or_else(|| panic!("{balances}"))["balance"]
        .clone()
}

async fn debits(app: &TestApp) -> i64 {
    let db = &app.db.db;
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM credit_ledger WHERE reason = 'debit'".to_owned(),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

const DEBIT: &str = r#"mutation { debitCredits(input: {creditType: ENRICHMENT, amount: 7, reference: "job-1"}) { balanceAfter } }"#;

#[actix_web::test]
async fn fifty_concurrent_repeats_of_one_key_debit_credits_once() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let before = buy_enrichment_credits(&app, &token).await;
    let answers = join_all((0..50).map(|_| keyed(&app, DEBIT, Some(&token), "debit-job-1"))).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(
            answer.body["data"]["debitCredits"]["balanceAfter"],
            before - 7,
            "every repeat sees the one debit: {}",
            answer.body
        );
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert_eq!(enrichment_balance(&app, &token).await, before - 7);
    assert_eq!(debits(&app).await, 1);
}

// Stored responses are sealed with the vault's key ring.

/// The caller's row for `key`, exactly as the database holds it.
async fn stored_row(app: &TestApp, token: &str, key: &str) -> Model {
    let me = app.gql("{ me { id } }", Some(token)).await;
    let scope = format!("user:{}", me["data"]["me"]["id"].as_str().expect("id"));
    Entity::find()
        .filter(Column::Scope.eq(scope))
        .filter(Column::Key.eq(key))
        .one(&app.db.db)
        .await
        .expect("row")
        .expect("a row for the key")
}

fn stored_body(row: &Model) -> &str {
    row.response_body.as_deref().expect("a completed row")
}

/// Writes `body` into the row's `response_body` column as it is.
async fn set_body(app: &TestApp, id: Uuid, body: &str) {
    Entity::update_many()
        .col_expr(Column::ResponseBody, Expr::value(body))
        .filter(Column::Id.eq(id))
        .exec(&app.db.db)
        .await
        .expect("set body");
}

/// Flips one character of the ciphertext in
/// `sealed:v1:<version>:<iv>:<ciphertext>:<tag>`.
fn tamper(stored: &str) -> String {
    let mut fields: Vec<String> = stored.split(':').map(str::to_owned).collect();
    assert_eq!(fields.len(), 6, "{stored}");
    let flipped = if fields[4].starts_with('A') { "B" } else { "A" };
    fields[4].replace_range(0..1, flipped);
    fields.join(":")
}

fn assert_internal_error(answer: &Answer) {
    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.body
    );
    assert!(!answer.replayed);
    assert_eq!(code(&answer.body), "INTERNAL_SERVER_ERROR");
    assert_eq!(answer.body["errors"][0]["message"], "internal server error");
    assert!(answer.body["errors"][0]["extensions"]["requestId"].is_string());
    assert!(answer.body.get("data").is_none(), "{}", answer.body);
}

#[actix_web::test]
async fn the_stored_response_is_sealed_so_the_row_never_holds_the_new_api_key() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let first = keyed(&app, CREATE_KEY, Some(&token), "sealed").await;
    let row = stored_row(&app, &token, "sealed").await;
    let stored = stored_body(&row);
    assert!(stored.starts_with(SEALED_PREFIX), "{stored}");
    assert!(!stored.contains(secret(&first)));
    assert!(!stored.contains("createApiKey"));
    let again = keyed(&app, CREATE_KEY, Some(&token), "sealed").await;
    assert!(again.replayed);
    assert_eq!(again.raw, first.raw);
    assert_eq!(count(&app, "api_keys").await, 1);
}

#[actix_web::test]
async fn a_plaintext_row_stored_before_sealing_still_replays_and_runs_nothing() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let first = keyed(&app, CREATE_KEY, Some(&token), "legacy").await;
    // What the store wrote before sealing: the response as sent, in plain text.
    let row = stored_row(&app, &token, "legacy").await;
    set_body(&app, row.id, &first.raw).await;
    let again = keyed(&app, CREATE_KEY, Some(&token), "legacy").await;
    assert!(again.replayed, "{}", again.body);
    assert_eq!(again.raw, first.raw);
    assert_eq!(count(&app, "api_keys").await, 1);
}

#[actix_web::test]
async fn a_tampered_stored_response_is_an_internal_error_and_the_debit_is_not_run_again() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let before = buy_enrichment_credits(&app, &token).await;
    let first = keyed(&app, DEBIT, Some(&token), "debit-sealed").await;
    assert_eq!(
        first.body["data"]["debitCredits"]["balanceAfter"],
        before - 7,
        "{}",
        first.body
    );
    let row = stored_row(&app, &token, "debit-sealed").await;
    set_body(&app, row.id, &tamper(stored_body(&row))).await;
    for _ in 0..2 {
        let again = keyed(&app, DEBIT, Some(&token), "debit-sealed").await;
        assert_internal_error(&again);
    }
    assert_eq!(enrichment_balance(&app, &token).await, before - 7);
    assert_eq!(debits(&app).await, 1);
    assert_eq!(count(&app, "idempotency_keys").await, 1);
}

#[actix_web::test]
async fn a_sealed_response_copied_to_another_users_row_does_not_open() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let ada_first = keyed(&app, CREATE_KEY, Some(&ada), "shared").await;
    keyed(&app, CREATE_KEY, Some(&bob), "shared").await;
    let ada_row = stored_row(&app, &ada, "shared").await;
    let bob_row = stored_row(&app, &bob, "shared").await;
    set_body(&app, bob_row.id, stored_body(&ada_row)).await;
    let answer = keyed(&app, CREATE_KEY, Some(&bob), "shared").await;
    assert_internal_error(&answer);
    assert!(!answer.raw.contains(secret(&ada_first)));
    assert_eq!(count(&app, "api_keys").await, 2);
}

#[tokio::test]
async fn a_stored_response_replays_while_its_key_is_in_the_ring_and_is_refused_without_it() {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let v1 = KeyRing::generate_entry(1).expect("key");
    let v2 = KeyRing::generate_entry(2).expect("key");
    let ring = |text: &str| KeyRing::parse(text).expect("ring");
    let old = store_with(clock.clone(), ring(&v1));
    let Claimed::Run(ticket) = old
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    else {
        panic!("first claim must run");
    };
    let body = r#"{"data":{"secret":"s3cr3t"}}"#;
    assert!(
        old.complete(&db.db, ticket, &reply(body))
            .await
            .expect("complete")
    );
    let row = Entity::find().one(&db.db).await.expect("row").expect("row");
    let stored = row.response_body.expect("body");
    assert!(
        stored.starts_with(&format!("{SEALED_PREFIX}1:")),
        "{stored}"
    );
    assert!(!stored.contains("s3cr3t"));
    // After a rotation the old key opens what it sealed.
    let rotated = store_with(clock.clone(), ring(&format!("{v1},{v2}")));
    match rotated
        .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
        .await
        .expect("claim")
    {
        Claimed::Replay(stored) => assert_eq!(stored.body, body),
        Claimed::Run(_) => panic!("a stored response ran again"),
    }
    // Without it the response is refused, and never run again, for its window.
    let retired = store_with(clock.clone(), ring(&v2));
    for _ in 0..2 {
        let err = retired
            .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
            .await
            .expect_err("the sealing key is gone");
        assert_eq!(err.code(), Code::InternalServerError);
        assert!(err.to_string().contains("unknown key version 1"), "{err}");
    }
    clock.advance(Duration::hours(24));
    assert!(matches!(
        retired
            .claim(&db.db, Scope::Anonymous, &key("k"), &hash("q"))
            .await
            .expect("claim"),
        Claimed::Run(_)
    ));
}
