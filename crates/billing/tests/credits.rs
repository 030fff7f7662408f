//! Credits: purchases through the gateway, atomic debits, refunds at most
//! once, and a ledger that always sums to the balance. Every test runs on
//! SQLite, and on PostgreSQL when `DATABASE_URL` is set.

mod common_credits;

use async_trait::async_trait;
use billing::credits::{CreditError, CreditType, Debit, MAX_CREDITS_PER_CALL};
use billing::entity::{credit_ledger, user_credit};
use billing::gateway::{Charge, GatewayError, Payment, PaymentGateway};
use common_credits::*;
use kernel::Error;
use kernel::error::Code;
use sea_orm::{ConnectionTrait, Statement};
use std::sync::Arc;
use uuid::Uuid;

fn package(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("package id")
}

fn field(err: &Error) -> Option<&str> {
    match err {
        Error::BadInput { field, .. } => Some(field),
        Error::Conflict { field, .. } => field.as_deref(),
        _ => None,
    }
}

#[tokio::test]
async fn one_thousand_concurrent_debits_of_one_against_one_hundred_succeed_exactly_one_hundred_times()
 {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "first-pack").await;

    // Spawned tasks on the pool: on PostgreSQL they race on several connections.
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let billing = env.billing.clone();
        let db = env.pool().clone();
        let actor = alice.clone();
        tasks.push(tokio::spawn(async move {
            debit_on(&billing, &db, &actor, CreditType::Enrichment, 1).await
        }));
    }
    let mut successes = 0;
    let mut balances_after = Vec::new();
    for task in tasks {
        match task.await.expect("task runs") {
            Ok(entry) => {
                successes += 1;
                balances_after.push(entry.balance_after);
            }
            Err(err) => assert_eq!(err.code(), Code::InsufficientCredits, "{err}"),
        }
    }
    assert_eq!(successes, 100);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(0)
    );

    let ledger = env.ledger(alice.user_id, CreditType::Enrichment).await;
    assert_eq!(ledger.len(), 101, "one purchase and 100 debits");
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), 0);
    // Each debit recorded the true balance after it: 99 down to 0, each once.
    balances_after.sort_unstable();
    assert_eq!(balances_after, (0..100).collect::<Vec<i64>>());
}

#[tokio::test]
async fn debit_records_the_balance_after_it_and_the_ledger_sums_to_the_balance() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let bought = env.purchase(&alice, ENRICHMENT_100, "k").await;
    assert_eq!((bought.amount, bought.balance_after), (100, 100));
    let a = env.debit(&alice, CreditType::Enrichment, 30).await.unwrap();
    let b = env.debit(&alice, CreditType::Enrichment, 70).await.unwrap();
    assert_eq!((a.amount, a.balance_after), (-30, 70));
    assert_eq!((b.amount, b.balance_after), (-70, 0));
    assert_eq!(a.reason, "debit");
    let ledger = env.ledger(alice.user_id, CreditType::Enrichment).await;
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), 0);
    let row = user_credit_row(&env, alice.user_id, CreditType::Enrichment).await;
    assert_eq!((row.total_purchased, row.total_used), (100, 100));
}

#[tokio::test]
async fn debit_beyond_the_balance_is_insufficient_credits_and_writes_nothing() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    // No balance row at all yet.
    let err = env.debit(&alice, CreditType::Calling, 1).await.unwrap_err();
    assert_eq!(err.code(), Code::InsufficientCredits);
    env.purchase(&alice, CALLING_100, "k").await;
    let err = env
        .debit(&alice, CreditType::Calling, 101)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CreditError::Insufficient {
                available: 100,
                requested: 101,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        env.balance(alice.user_id, CreditType::Calling).await,
        Some(100)
    );
    assert_eq!(
        env.ledger(alice.user_id, CreditType::Calling).await.len(),
        1
    );
    // Other types are separate balances.
    assert!(env.debit(&alice, CreditType::Scraping, 1).await.is_err());
}

#[tokio::test]
async fn non_positive_and_absurd_amounts_are_bad_user_input_and_write_nothing() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    for amount in [0, -1, -100, MAX_CREDITS_PER_CALL + 1, i64::MAX, i64::MIN] {
        let err = Debit::parse(CreditType::Enrichment, amount, None).unwrap_err();
        assert_eq!(err.code(), Code::BadUserInput, "{amount}");
        assert_eq!(field(&err), Some("amount"));
    }
    for amount in [
        0,
        MAX_CREDITS_PER_CALL + 1,
        -MAX_CREDITS_PER_CALL - 1,
        i64::MAX,
        i64::MIN,
    ] {
        let err = env
            .billing
            .adjust_credits(
                env.pool(),
                &admin(),
                alice.user_id,
                CreditType::Enrichment,
                amount,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::BadUserInput, "adjust {amount}");
    }
    assert!(Debit::parse(CreditType::Enrichment, MAX_CREDITS_PER_CALL, None).is_ok());
    // Through the API: refused before any SQL, nothing written.
    let schema = schema(&env);
    for amount in ["0", "-5", "1000001", "9007199254740991"] {
        let body = run_gql(
            &schema,
            Some(&alice),
            &format!(
                "mutation {{ debitCredits(input: {{creditType: ENRICHMENT, amount: {amount}}}) {{ id }} }}"
            ),
        )
        .await;
        assert_eq!(gql_code(&body), "BAD_USER_INPUT", "{amount}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "amount");
    }
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    assert_eq!(count::<credit_ledger::Entity>(env.pool()).await, 1);
}

#[tokio::test]
async fn overlong_references_are_bad_user_input() {
    let err = Debit::parse(CreditType::Enrichment, 1, Some("x".repeat(256))).unwrap_err();
    assert_eq!(field(&err), Some("reference"));
    let err = Debit::parse(CreditType::Enrichment, 1, Some("a\nb".into())).unwrap_err();
    assert_eq!(field(&err), Some("reference"));
}

#[tokio::test]
async fn check_constraint_rejects_a_direct_negative_balance() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let backend = env.pool().get_database_backend();
    let result = env
        .pool()
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE user_credits SET balance = balance - 101".to_owned(),
        ))
        .await;
    assert!(
        result.is_err(),
        "the database must refuse a negative balance"
    );
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    // The ledger refuses a negative balance after, too.
    let result = env
        .pool()
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE credit_ledger SET balance_after = -1".to_owned(),
        ))
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn refund_gives_a_debit_back_exactly_once() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let debit = env.debit(&alice, CreditType::Enrichment, 40).await.unwrap();
    let refund = in_tx(env.pool(), async |tx| {
        env.billing.refund_credit_entry(tx, &alice, debit.id).await
    })
    .await
    .unwrap();
    assert_eq!(
        (refund.amount, refund.balance_after, refund.reason.as_str()),
        (40, 100, "refund")
    );
    assert_eq!(refund.refund_of, Some(debit.id));
    let err = in_tx(env.pool(), async |tx| {
        env.billing.refund_credit_entry(tx, &alice, debit.id).await
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    let row = user_credit_row(&env, alice.user_id, CreditType::Enrichment).await;
    assert_eq!(row.total_used, 0, "a refunded debit is no longer used");
    let ledger = env.ledger(alice.user_id, CreditType::Enrichment).await;
    assert_eq!(ledger.len(), 3);
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), 100);
}

#[tokio::test]
async fn concurrent_refunds_of_one_entry_succeed_once_and_the_rest_conflict() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let debit = env.debit(&alice, CreditType::Enrichment, 25).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let billing = env.billing.clone();
        let db = env.pool().clone();
        let actor = alice.clone();
        tasks.push(tokio::spawn(async move {
            in_tx(&db, async |tx| {
                billing.refund_credit_entry(tx, &actor, debit.id).await
            })
            .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task runs") {
            Ok(_) => ok += 1,
            Err(err) => assert_eq!(err.code(), Code::Conflict, "{err}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    let ledger = env.ledger(alice.user_id, CreditType::Enrichment).await;
    assert_eq!(ledger.len(), 3);
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), 100);
}

#[tokio::test]
async fn only_debits_can_be_refunded() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let purchase = env.purchase(&alice, ENRICHMENT_100, "k").await;
    let err = env
        .billing
        .refund_credit_entry(env.pool(), &alice, purchase.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
}

#[tokio::test]
async fn another_users_ledger_entry_is_not_found() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let mallory = env.user("mallory@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let debit = env.debit(&alice, CreditType::Enrichment, 10).await.unwrap();
    let err = env
        .billing
        .refund_credit_entry(env.pool(), &mallory, debit.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let schema = schema(&env);
    let body = run_gql(
        &schema,
        Some(&mallory),
        &format!(
            "mutation {{ refundCreditEntry(id: \"{}\") {{ id }} }}",
            debit.id
        ),
    )
    .await;
    assert_eq!(gql_code(&body), "NOT_FOUND", "{body}");
    // Mallory's ledger does not show Alice's entries either.
    let body = run_gql(
        &schema,
        Some(&mallory),
        "{ creditLedger { edges { node { id } } } }",
    )
    .await;
    assert_eq!(body["data"]["creditLedger"]["edges"], serde_json::json!([]));
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(90)
    );
    assert_eq!(
        env.balance(mallory.user_id, CreditType::Enrichment).await,
        None
    );
}

#[tokio::test]
async fn purchase_credits_exactly_once_per_payment_reference() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let first = env.purchase(&alice, ENRICHMENT_100, "order-1").await;
    let retry = env.purchase(&alice, ENRICHMENT_100, "order-1").await;
    assert_eq!(first.id, retry.id, "a retry returns the original entry");
    assert!(
        first
            .reference
            .as_deref()
            .is_some_and(|r| r.starts_with("local_pay_"))
    );
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    assert_eq!(
        env.ledger(alice.user_id, CreditType::Enrichment)
            .await
            .len(),
        1
    );
    // The same key for another package is a different request.
    let err = in_tx(env.pool(), async |tx| {
        env.billing
            .purchase_credits(tx, &alice, package(CALLING_100), Some("order-1".into()))
            .await
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("idempotencyKey"));
    // A new key is a new purchase.
    env.purchase(&alice, ENRICHMENT_100, "order-2").await;
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(200)
    );
    // Another user's identical key is another payment.
    let bob = env.user("bob@example.com").await;
    env.purchase(&bob, ENRICHMENT_100, "order-1").await;
    assert_eq!(
        env.balance(bob.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    let row = user_credit_row(&env, alice.user_id, CreditType::Enrichment).await;
    assert_eq!(row.total_purchased, 200);
}

#[tokio::test]
async fn concurrent_purchases_with_one_key_credit_once() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let billing = env.billing.clone();
        let db = env.pool().clone();
        let actor = alice.clone();
        tasks.push(tokio::spawn(async move {
            in_tx(&db, async |tx| {
                billing
                    .purchase_credits(tx, &actor, package(ENRICHMENT_100), Some("same".into()))
                    .await
            })
            .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        match task.await.expect("task runs") {
            Ok(entry) => ids.push(entry.id),
            Err(err) => assert_eq!(err.code(), Code::Conflict, "{err}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every success returns the one entry");
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    assert_eq!(
        env.ledger(alice.user_id, CreditType::Enrichment)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn purchase_of_an_unknown_or_retired_package_is_not_found() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let err = env
        .billing
        .purchase_credits(env.pool(), &alice, Uuid::now_v7(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    {
        use billing::entity::credit_package;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let retired = credit_package::Entity::update_many()
            .col_expr(credit_package::Column::IsActive, Expr::value(false))
            .filter(credit_package::Column::Id.eq(package(ENRICHMENT_100)))
            .exec(env.pool())
            .await
            .unwrap();
        assert_eq!(retired.rows_affected, 1);
    }
    let err = env
        .billing
        .purchase_credits(env.pool(), &alice, package(ENRICHMENT_100), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(count::<user_credit::Entity>(env.pool()).await, 0);
}

/// A gateway that refuses every charge.
struct Declining;

#[async_trait]
impl PaymentGateway for Declining {
    async fn charge(&self, _charge: &Charge) -> Result<Payment, GatewayError> {
        Err(GatewayError::Declined("card declined".into()))
    }
}

#[tokio::test]
async fn a_declined_payment_credits_nothing() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let billing = env.with_gateway(Arc::new(Declining));
    let err = billing
        .purchase_credits(env.pool(), &alice, package(ENRICHMENT_100), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    assert_eq!(count::<credit_ledger::Entity>(env.pool()).await, 0);
    assert_eq!(count::<user_credit::Entity>(env.pool()).await, 0);
}

#[tokio::test]
async fn only_admins_adjust_credits_and_never_below_zero() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let err = env
        .billing
        .adjust_credits(
            env.pool(),
            &alice,
            alice.user_id,
            CreditType::Scraping,
            50,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Forbidden);
    let admin = admin();
    let grant = env
        .billing
        .adjust_credits(
            env.pool(),
            &admin,
            alice.user_id,
            CreditType::Scraping,
            50,
            Some("goodwill".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (grant.amount, grant.balance_after, grant.reason.as_str()),
        (50, 50, "adjustment")
    );
    let err = env
        .billing
        .adjust_credits(
            env.pool(),
            &admin,
            alice.user_id,
            CreditType::Scraping,
            -51,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InsufficientCredits);
    let take = env
        .billing
        .adjust_credits(
            env.pool(),
            &admin,
            alice.user_id,
            CreditType::Scraping,
            -50,
            None,
        )
        .await
        .unwrap();
    assert_eq!(take.balance_after, 0);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Scraping).await,
        Some(0)
    );
}

#[tokio::test]
async fn credit_packages_are_public_and_list_the_seeded_defaults_in_order() {
    let env = setup().await;
    let schema = schema(&env);
    let body = run_gql(
        &schema,
        None,
        "{ creditPackages { id name creditType creditAmount priceCents } }",
    )
    .await;
    let packages = body["data"]["creditPackages"].as_array().expect("list");
    assert_eq!(packages.len(), 6, "{body}");
    assert_eq!(packages[0]["id"], ENRICHMENT_100);
    assert_eq!(packages[0]["creditType"], "ENRICHMENT");
    assert_eq!(packages[0]["creditAmount"], 100);
    assert_eq!(packages[0]["priceCents"], 1000);
}

#[tokio::test]
async fn credits_and_ledger_need_a_caller() {
    let env = setup().await;
    let schema = schema(&env);
    let body = run_gql(&schema, None, "{ credits { balance } }").await;
    assert_eq!(gql_code(&body), "UNAUTHENTICATED");
    let body = run_gql(&schema, None, "{ creditLedger { edges { cursor } } }").await;
    assert_eq!(gql_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn graphql_purchase_debit_refund_round_trip_with_balances_ledger_and_audit() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let schema = schema(&env);
    let audits_before = count::<core_auth::entity::audit_log::Entity>(env.pool()).await;

    let body = run_gql(
        &schema,
        Some(&alice),
        &format!(
            "mutation {{ purchaseCredits(packageId: \"{ENRICHMENT_100}\", idempotencyKey: \"o1\") {{ amount balanceAfter reason }} }}"
        ),
    )
    .await;
    assert_eq!(
        body["data"]["purchaseCredits"],
        serde_json::json!({"amount": 100, "balanceAfter": 100, "reason": "PURCHASE"}),
        "{body}"
    );
    let body = run_gql(
        &schema,
        Some(&alice),
        "mutation { debitCredits(input: {creditType: ENRICHMENT, amount: 3, reference: \"job-7\"}) { id amount balanceAfter reference } }",
    )
    .await;
    let debit = &body["data"]["debitCredits"];
    assert_eq!(debit["balanceAfter"], 97, "{body}");
    assert_eq!(debit["reference"], "job-7");
    let debit_id = debit["id"].as_str().expect("id").to_owned();

    let body = run_gql(
        &schema,
        Some(&alice),
        "mutation { debitCredits(input: {creditType: ENRICHMENT, amount: 98}) { id } }",
    )
    .await;
    assert_eq!(gql_code(&body), "INSUFFICIENT_CREDITS", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["available"], 97);

    let body = run_gql(
        &schema,
        Some(&alice),
        &format!("mutation {{ refundCreditEntry(id: \"{debit_id}\") {{ amount balanceAfter refundOf }} }}"),
    )
    .await;
    assert_eq!(
        body["data"]["refundCreditEntry"]["balanceAfter"], 100,
        "{body}"
    );
    assert_eq!(
        body["data"]["refundCreditEntry"]["refundOf"],
        debit_id.as_str()
    );

    let body = run_gql(
        &schema,
        Some(&alice),
        "{ credits { creditType balance totalPurchased totalUsed } }",
    )
    .await;
    assert_eq!(
        body["data"]["credits"],
        serde_json::json!([
            {"creditType": "ENRICHMENT", "balance": 100, "totalPurchased": 100, "totalUsed": 0},
            {"creditType": "CALLING", "balance": 0, "totalPurchased": 0, "totalUsed": 0},
            {"creditType": "SCRAPING", "balance": 0, "totalPurchased": 0, "totalUsed": 0},
        ]),
        "{body}"
    );

    let body = run_gql(
        &schema,
        Some(&alice),
        "{ creditLedger(creditType: ENRICHMENT, first: 2) { edges { node { reason amount } } pageInfo { hasNextPage } } }",
    )
    .await;
    let ledger = &body["data"]["creditLedger"];
    assert_eq!(
        ledger["edges"],
        serde_json::json!([
            {"node": {"reason": "REFUND", "amount": 3}},
            {"node": {"reason": "DEBIT", "amount": -3}},
        ]),
        "newest first: {body}"
    );
    assert_eq!(ledger["pageInfo"]["hasNextPage"], true);
    let body = run_gql(
        &schema,
        Some(&alice),
        "{ creditLedger(creditType: CALLING) { edges { cursor } } }",
    )
    .await;
    assert_eq!(body["data"]["creditLedger"]["edges"], serde_json::json!([]));

    // Three successful mutations, three audit rows; the refused debit left none.
    let audits_after = count::<core_auth::entity::audit_log::Entity>(env.pool()).await;
    assert_eq!(audits_after - audits_before, 3);
}

#[tokio::test]
async fn read_only_api_keys_cannot_spend_buy_or_refund_credits() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let key = read_only(&alice);
    let schema = schema(&env);
    for mutation in [
        "mutation { debitCredits(input: {creditType: ENRICHMENT, amount: 1}) { id } }".to_owned(),
        format!("mutation {{ purchaseCredits(packageId: \"{ENRICHMENT_100}\") {{ id }} }}"),
        format!(
            "mutation {{ refundCreditEntry(id: \"{}\") {{ id }} }}",
            Uuid::now_v7()
        ),
    ] {
        let body = run_gql(&schema, Some(&key), &mutation).await;
        assert_eq!(gql_code(&body), "FORBIDDEN", "{body}");
    }
    // Reading works with the same key.
    let body = run_gql(&schema, Some(&key), "{ credits { balance } }").await;
    assert_eq!(body["data"]["credits"][0]["balance"], 100);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
}

async fn user_credit_row(env: &Env, user_id: Uuid, credit_type: CreditType) -> user_credit::Model {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    user_credit::Entity::find()
        .filter(user_credit::Column::UserId.eq(user_id))
        .filter(user_credit::Column::CreditType.eq(credit_type.as_str()))
        .one(env.pool())
        .await
        .expect("read balance row")
        .expect("balance row exists")
}

#[tokio::test]
async fn adjusting_an_unknown_users_credits_is_not_found() {
    let env = setup().await;
    let err = env
        .billing
        .adjust_credits(
            env.pool(),
            &admin(),
            Uuid::now_v7(),
            CreditType::Calling,
            10,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(count::<user_credit::Entity>(env.pool()).await, 0);
}

#[tokio::test]
async fn graphql_adjust_credits_is_for_admins_only() {
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let root = as_admin(&env.user("root@example.com").await);
    let schema = schema(&env);
    let mutation = format!(
        "mutation {{ adjustCredits(input: {{userId: \"{}\", creditType: CALLING, amount: 25, reference: \"ticket-1\"}}) {{ amount balanceAfter reason }} }}",
        alice.user_id
    );
    let body = run_gql(&schema, Some(&alice), &mutation).await;
    assert_eq!(gql_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(env.balance(alice.user_id, CreditType::Calling).await, None);
    let body = run_gql(&schema, Some(&root), &mutation).await;
    assert_eq!(
        body["data"]["adjustCredits"],
        serde_json::json!({"amount": 25, "balanceAfter": 25, "reason": "ADJUSTMENT"}),
        "{body}"
    );
    assert_eq!(
        env.balance(alice.user_id, CreditType::Calling).await,
        Some(25)
    );
}

#[tokio::test]
async fn a_refund_racing_an_uncommitted_refund_of_the_same_entry_conflicts() {
    use sea_orm::TransactionTrait;
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let debit = env.debit(&alice, CreditType::Enrichment, 10).await.unwrap();
    let first = env.pool().begin().await.unwrap();
    env.billing
        .refund_credit_entry(&first, &alice, debit.id)
        .await
        .unwrap();
    // The second refund starts before the first commits: on PostgreSQL it
    // passes the "already refunded?" read and waits on the balance row; on
    // SQLite it waits for the one connection.
    let second = {
        let billing = env.billing.clone();
        let db = env.pool().clone();
        let actor = alice.clone();
        tokio::spawn(async move {
            in_tx(&db, async |tx| {
                billing.refund_credit_entry(tx, &actor, debit.id).await
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second refund waits for the first"
    );
    first.commit().await.unwrap();
    let err = second.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    assert_eq!(
        env.ledger(alice.user_id, CreditType::Enrichment)
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn a_purchase_racing_an_uncommitted_purchase_with_the_same_key_credits_once() {
    use sea_orm::TransactionTrait;
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    let first = env.pool().begin().await.unwrap();
    let original = env
        .billing
        .purchase_credits(&first, &alice, package(ENRICHMENT_100), Some("race".into()))
        .await
        .unwrap();
    let second = {
        let billing = env.billing.clone();
        let db = env.pool().clone();
        let actor = alice.clone();
        tokio::spawn(async move {
            in_tx(&db, async |tx| {
                billing
                    .purchase_credits(tx, &actor, package(ENRICHMENT_100), Some("race".into()))
                    .await
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second purchase waits for the first"
    );
    first.commit().await.unwrap();
    let outcome = second.await.unwrap();
    if env.db.is_postgres() {
        // It missed the uncommitted entry; the unique payment reference refused its own.
        assert_eq!(outcome.unwrap_err().code(), Code::Conflict);
    } else {
        // One connection: it ran after the commit and found the recorded payment.
        assert_eq!(outcome.unwrap().id, original.id);
    }
    assert_eq!(
        env.balance(alice.user_id, CreditType::Enrichment).await,
        Some(100)
    );
    assert_eq!(
        env.ledger(alice.user_id, CreditType::Enrichment)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_database_refuses_a_second_refund_entry_for_one_debit() {
    use sea_orm::{ActiveModelTrait, Set};
    let env = setup().await;
    let alice = env.user("alice@example.com").await;
    env.purchase(&alice, ENRICHMENT_100, "k").await;
    let debit = env.debit(&alice, CreditType::Enrichment, 10).await.unwrap();
    let refund = |id: Uuid| credit_ledger::ActiveModel {
        id: Set(id),
        user_id: Set(alice.user_id),
        credit_type: Set("enrichment".into()),
        amount: Set(10),
        balance_after: Set(100),
        reason: Set("refund".into()),
        reference: Set(None),
        refund_of: Set(Some(debit.id)),
        created_at: Set(env.billing.clock.now()),
    };
    refund(Uuid::now_v7()).insert(env.pool()).await.unwrap();
    let err = refund(Uuid::now_v7()).insert(env.pool()).await.unwrap_err();
    assert!(kernel::error::is_unique_violation(&err), "{err}");
}
