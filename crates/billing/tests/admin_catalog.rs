//! Admin tier, pack and add-on management through GraphQL: each test names
//! the rule it checks. Runs on SQLite, and on PostgreSQL when `DATABASE_URL`
//! is set.

#[allow(unused_imports)]
mod common_plans;

use async_graphql::{EmptySubscription, MergedObject, Schema};
use billing::entity::{agent_add_on, execution_pack, subscription_tier};
use billing::graphql::{CatalogMutation, PlansMutation, PlansQuery};
use billing::quote::Frequency;
use billing::subscriptions::Subscribe;
use common_plans::*;
use core_auth::entity::{audit_log, user};
use core_auth::types::ClientInfo;
use kernel::actor::{Actor, Role};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter,
};
use serde_json::Value;
use std::sync::Arc;

#[derive(MergedObject, Default)]
struct M(PlansMutation, CatalogMutation);

type S = Schema<PlansQuery, M, EmptySubscription>;

fn schema(fx: &Fx) -> S {
    let sink: Arc<dyn kernel::audit::AuditSink> = Arc::new(core_auth::audit::AuditLogSink {
        clock: fx.billing.clock.clone(),
    });
    Schema::build(PlansQuery, M::default(), EmptySubscription)
        .data(fx.t.db.clone())
        .data(fx.billing.clone())
        .data(sink)
        .finish()
}

async fn run(s: &S, actor: Option<&Actor>, query: &str) -> Value {
    let mut req = async_graphql::Request::new(query).data(ClientInfo {
        ip: "203.0.113.9".into(),
        user_agent: Some("catalog-tests/1.0".into()),
    });
    if let Some(a) = actor {
        req = req.data(a.clone());
    }
    serde_json::to_value(s.execute(req).await).expect("response serialises")
}

fn err_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

fn err_field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("<none>")
}

/// A user whose role in the database is `admin`, acting as one.
async fn admin(fx: &Fx, email: &str) -> Actor {
    let a = user(&fx.t.db, &fx.clock, email).await;
    let mut m = user::Entity::find_by_id(a.user_id)
        .one(&fx.t.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    m.role = Set("admin".into());
    m.update(&fx.t.db).await.unwrap();
    Actor {
        role: Role::Admin,
        ..a
    }
}

fn tier_input(slug: &str, extra: &str) -> String {
    format!(
        r#"{{ slug: "{slug}", name: "Scale", monthlyPriceCents: 10000, setupFeeCents: 2500,
             weeklyPremiumPercent: 10, sixMonthDiscountPercent: 5, annualDiscountPercent: 20,
             maxAgents: 10, maxConcurrentAgents: 3, monthlyExecutionLimit: 500 {extra} }}"#
    )
}

async fn count<E>(db: &impl ConnectionTrait) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(db).await.unwrap()
}

#[tokio::test]
async fn non_admin_is_forbidden_and_nothing_is_written() {
    let fx = setup().await;
    let s = schema(&fx);
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    let tiers = count::<subscription_tier::Entity>(&fx.t.db).await;
    let packs = count::<execution_pack::Entity>(&fx.t.db).await;
    let add_ons = count::<agent_add_on::Entity>(&fx.t.db).await;
    let audits = count::<audit_log::Entity>(&fx.t.db).await;
    let queries = [
        format!(
            "mutation {{ createTier(input: {}) {{ id }} }}",
            tier_input("scale", "")
        ),
        format!(
            "mutation {{ updateTier(id: \"{STARTER_ID}\", input: {}) {{ id }} }}",
            tier_input("starter", "")
        ),
        r#"mutation { createExecutionPack(input: { slug: "x", name: "X", priceCents: 100 }) { id } }"#
            .to_owned(),
        r#"mutation { createAgentAddOn(input: { slug: "y", name: "Y", additionalAgents: 1, monthlyPriceCents: 100 }) { id } }"#
            .to_owned(),
    ];
    for q in &queries {
        let body = run(&s, Some(&ada), q).await;
        assert_eq!(err_code(&body), "FORBIDDEN", "{q}: {body}");
        let anon = run(&s, None, q).await;
        assert_eq!(err_code(&anon), "UNAUTHENTICATED", "{q}: {anon}");
    }
    assert_eq!(count::<subscription_tier::Entity>(&fx.t.db).await, tiers);
    assert_eq!(count::<execution_pack::Entity>(&fx.t.db).await, packs);
    assert_eq!(count::<agent_add_on::Entity>(&fx.t.db).await, add_ons);
    assert_eq!(count::<audit_log::Entity>(&fx.t.db).await, audits);
    let starter = subscription_tier::Entity::find_by_id(STARTER_ID)
        .one(&fx.t.db)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(starter.monthly_price_cents, 10000);
}

#[tokio::test]
async fn admin_creates_a_tier_and_quote_prices_it_on_the_server() {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let body = run(
        &s,
        Some(&root),
        &format!(
            "mutation {{ createTier(input: {}) {{ id monthlyPriceCents }} }}",
            tier_input("scale", "")
        ),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let id = body["data"]["createTier"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = run(
        &s,
        None,
        &format!(
            "{{ quote(tierId: \"{id}\", frequency: ANNUAL) {{ periodPriceCents setupFeeCents totalCents }} }}"
        ),
    )
    .await;
    // 10_000 x 12 x 0.80 = 96_000, plus the 2_500 setup fee.
    assert_eq!(
        q["data"]["quote"],
        serde_json::json!({"periodPriceCents": 96_000, "setupFeeCents": 2_500, "totalCents": 98_500}),
        "{q}"
    );
}

#[tokio::test]
async fn a_tier_price_update_reprices_quotes_and_new_subscriptions_but_existing_ones_renew_at_their_price()
 {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    let bob = user(&fx.t.db, &fx.clock, "bob@example.com").await;
    let body = run(
        &s,
        Some(&root),
        &format!(
            "mutation {{ createTier(input: {}) {{ id }} }}",
            tier_input("scale", "")
        ),
    )
    .await;
    let id: uuid::Uuid = body["data"]["createTier"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let monthly = |tier_id| Subscribe {
        tier_id,
        frequency: Frequency::Monthly,
        trial: false,
    };
    fx.billing
        .subscribe(&fx.t.db, &ada, monthly(id))
        .await
        .unwrap();
    let body = run(
        &s,
        Some(&root),
        &format!(
            "mutation {{ updateTier(id: \"{id}\", input: {}) {{ monthlyPriceCents }} }}",
            tier_input("scale", "").replace("10000", "20000")
        ),
    )
    .await;
    assert_eq!(
        body["data"]["updateTier"]["monthlyPriceCents"], 20000,
        "{body}"
    );
    let q = fx
        .billing
        .quote(&fx.t.db, Some(&bob), id, Frequency::Monthly)
        .await
        .unwrap();
    assert_eq!((q.period_price_cents, q.setup_fee_cents), (20_000, 2_500));
    fx.billing
        .subscribe(&fx.t.db, &bob, monthly(id))
        .await
        .unwrap();
    assert_eq!(fx.gateway.amounts(), vec![12_500, 22_500]);
    // Renewals: Ada keeps the price she subscribed at, Bob pays the new one.
    fx.clock.advance(chrono::Duration::days(32));
    fx.billing.run_period_job(&fx.t.db).await.unwrap();
    let charges = fx.gateway.charges.lock().unwrap().clone();
    let renewal = |who: &Actor| {
        charges
            .iter()
            .filter(|c| c.user_id == who.user_id)
            .map(|c| c.amount_cents)
            .next_back()
            .unwrap()
    };
    assert_eq!((renewal(&ada), renewal(&bob)), (10_000, 20_000));
    assert_eq!(charges.len(), 4);
}

#[tokio::test]
async fn invalid_percentages_and_prices_are_bad_input_naming_the_field() {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let tiers = count::<subscription_tier::Entity>(&fx.t.db).await;
    let cases = [
        (
            "monthlyPriceCents: 10000",
            "monthlyPriceCents: 0",
            "monthlyPriceCents",
        ),
        (
            "weeklyPremiumPercent: 10",
            "weeklyPremiumPercent: 101",
            "weeklyPremiumPercent",
        ),
        (
            "sixMonthDiscountPercent: 5",
            "sixMonthDiscountPercent: -1",
            "sixMonthDiscountPercent",
        ),
        (
            "annualDiscountPercent: 20",
            "annualDiscountPercent: 150",
            "annualDiscountPercent",
        ),
        ("setupFeeCents: 2500", "setupFeeCents: -5", "setupFeeCents"),
        ("maxAgents: 10", "maxAgents: 0", "maxAgents"),
        (
            "monthlyExecutionLimit: 500",
            "monthlyExecutionLimit: 0",
            "monthlyExecutionLimit",
        ),
    ];
    for (from, to, field) in cases {
        let q = format!(
            "mutation {{ createTier(input: {}) {{ id }} }}",
            tier_input("scale", "").replace(from, to)
        );
        let body = run(&s, Some(&root), &q).await;
        assert_eq!(
            (err_code(&body), err_field(&body)),
            ("BAD_USER_INPUT", field),
            "{body}"
        );
    }
    for (extra, field) in [
        (", trialDays: 91", "trialDays"),
        (", overageEnabled: true", "overagePriceCents"),
        (
            ", overageEnabled: true, overagePriceCents: 0",
            "overagePriceCents",
        ),
    ] {
        let q = format!(
            "mutation {{ createTier(input: {}) {{ id }} }}",
            tier_input("scale", extra)
        );
        let body = run(&s, Some(&root), &q).await;
        assert_eq!(
            (err_code(&body), err_field(&body)),
            ("BAD_USER_INPUT", field),
            "{body}"
        );
    }
    let pack = run(
        &s,
        Some(&root),
        r#"mutation { createExecutionPack(input: { slug: "x", name: "X", priceCents: 0 }) { id } }"#,
    )
    .await;
    assert_eq!(
        (err_code(&pack), err_field(&pack)),
        ("BAD_USER_INPUT", "priceCents")
    );
    let pack = run(
        &s,
        Some(&root),
        r#"mutation { createExecutionPack(input: { slug: "x", name: "X", priceCents: 100, executionCount: 0 }) { id } }"#,
    )
    .await;
    assert_eq!(
        (err_code(&pack), err_field(&pack)),
        ("BAD_USER_INPUT", "executionCount")
    );
    let add_on = run(
        &s,
        Some(&root),
        r#"mutation { createAgentAddOn(input: { slug: "y", name: "Y", additionalAgents: 0, monthlyPriceCents: 100 }) { id } }"#,
    )
    .await;
    assert_eq!(
        (err_code(&add_on), err_field(&add_on)),
        ("BAD_USER_INPUT", "additionalAgents")
    );
    assert_eq!(count::<subscription_tier::Entity>(&fx.t.db).await, tiers);
}

#[tokio::test]
async fn updating_an_unknown_id_is_not_found() {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let ghost = kernel::id::new_id();
    for q in [
        format!(
            "mutation {{ updateTier(id: \"{ghost}\", input: {}) {{ id }} }}",
            tier_input("ghost", "")
        ),
        format!(
            r#"mutation {{ updateExecutionPack(id: "{ghost}", input: {{ slug: "x", name: "X", priceCents: 100 }}) {{ id }} }}"#
        ),
        format!(
            r#"mutation {{ updateAgentAddOn(id: "{ghost}", input: {{ slug: "y", name: "Y", additionalAgents: 1, monthlyPriceCents: 100 }}) {{ id }} }}"#
        ),
    ] {
        let body = run(&s, Some(&root), &q).await;
        assert_eq!(err_code(&body), "NOT_FOUND", "{q}: {body}");
    }
}

#[tokio::test]
async fn a_deactivated_tier_cannot_be_quoted_or_subscribed_but_existing_subscribers_keep_it() {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    let bob = user(&fx.t.db, &fx.clock, "bob@example.com").await;
    let starter = subscription_tier::Entity::find_by_id(STARTER_ID)
        .one(&fx.t.db)
        .await
        .unwrap()
        .unwrap();
    let sub = |tier_id| Subscribe {
        tier_id,
        frequency: Frequency::Monthly,
        trial: false,
    };
    fx.billing
        .subscribe(&fx.t.db, &ada, sub(STARTER_ID))
        .await
        .unwrap();
    let body = run(
        &s,
        Some(&root),
        &format!(
            r#"mutation {{ updateTier(id: "{STARTER_ID}", input: {{ slug: "{}", name: "{}",
                monthlyPriceCents: {}, maxAgents: {}, maxConcurrentAgents: {},
                monthlyExecutionLimit: {}, isActive: false }}) {{ id }} }}"#,
            starter.slug,
            starter.name,
            starter.monthly_price_cents,
            starter.max_agents,
            starter.max_concurrent_agents,
            starter.monthly_execution_limit
        ),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let err = fx
        .billing
        .subscribe(&fx.t.db, &bob, sub(STARTER_ID))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NOT_FOUND");
    let err = fx
        .billing
        .quote(&fx.t.db, None, STARTER_ID, Frequency::Monthly)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NOT_FOUND");
    // Retired, not deleted: Ada's subscription still points at it.
    let live = fx
        .billing
        .live_subscription(&fx.t.db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.tier_id, STARTER_ID);
    assert!(
        subscription_tier::Entity::find_by_id(STARTER_ID)
            .one(&fx.t.db)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn every_catalog_mutation_writes_one_audit_row_with_old_and_new_values() {
    let fx = setup().await;
    let s = schema(&fx);
    let root = admin(&fx, "root@example.com").await;
    let ok = |body: &Value| assert!(body["errors"].is_null(), "{body}");
    let tier = run(
        &s,
        Some(&root),
        &format!(
            "mutation {{ createTier(input: {}) {{ id }} }}",
            tier_input("scale", "")
        ),
    )
    .await;
    ok(&tier);
    let tier_id = tier["data"]["createTier"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&run(
        &s,
        Some(&root),
        &format!(
            "mutation {{ updateTier(id: \"{tier_id}\", input: {}) {{ id }} }}",
            tier_input("scale", ", isActive: false")
        ),
    )
    .await);
    let pack = run(
        &s,
        Some(&root),
        &format!(
            r#"mutation {{ createExecutionPack(input: {{ slug: "boost-1000", name: "Boost", priceCents: 9900, executionCount: 1000, minTierId: "{tier_id}", maxPerMonth: 2 }}) {{ id executionCount }} }}"#
        ),
    )
    .await;
    ok(&pack);
    let pack_id = pack["data"]["createExecutionPack"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&run(
        &s,
        Some(&root),
        &format!(
            r#"mutation {{ updateExecutionPack(id: "{pack_id}", input: {{ slug: "boost-unlimited", name: "Boost", priceCents: 19900 }}) {{ executionCount }} }}"#
        ),
    )
    .await);
    let add_on = run(
        &s,
        Some(&root),
        r#"mutation { createAgentAddOn(input: { slug: "agents-3", name: "3 agents", additionalAgents: 3, monthlyPriceCents: 3000 }) { id } }"#,
    )
    .await;
    ok(&add_on);
    let add_on_id = add_on["data"]["createAgentAddOn"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&run(
        &s,
        Some(&root),
        &format!(
            r#"mutation {{ updateAgentAddOn(id: "{add_on_id}", input: {{ slug: "agents-3", name: "3 agents", additionalAgents: 3, monthlyPriceCents: 3500, isActive: false }}) {{ id }} }}"#
        ),
    )
    .await);
    for (entity, id, field, old, new) in [("subscription_tier", &tier_id, "isActive", true, false)]
    {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::EntityType.eq(entity))
            .filter(audit_log::Column::EntityId.eq(id.as_str()))
            .all(&fx.t.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{entity}");
        let update = rows.iter().find(|r| r.old_values.is_some()).unwrap();
        assert_eq!(update.old_values.as_ref().unwrap()[field], old);
        assert_eq!(update.new_values.as_ref().unwrap()[field], new);
        assert_eq!(update.user_id, Some(root.user_id));
    }
    for (entity, id, field, old, new) in [
        ("execution_pack", &pack_id, "priceCents", 9900, 19900),
        ("agent_add_on", &add_on_id, "monthlyPriceCents", 3000, 3500),
    ] {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::EntityType.eq(entity))
            .filter(audit_log::Column::EntityId.eq(id.as_str()))
            .all(&fx.t.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{entity}");
        let update = rows.iter().find(|r| r.old_values.is_some()).unwrap();
        assert_eq!(update.old_values.as_ref().unwrap()[field], old);
        assert_eq!(update.new_values.as_ref().unwrap()[field], new);
    }
    let pack = execution_pack::Entity::find_by_id(pack_id.parse::<uuid::Uuid>().unwrap())
        .one(&fx.t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((pack.execution_count, pack.min_tier_id), (None, None));
}
