//! Plans and subscriptions through the GraphQL endpoint: public catalogue and
//! quotes, caller-scoped subscription, and the API error codes.

mod common;

use common::{code, spawn_app};
use migration::m20261128_000008_billing_plans::{GROWTH_ID, STARTER_ID};

#[actix_web::test]
async fn tiers_and_quotes_are_public_and_computed_in_cents() {
    let app = spawn_app().await;
    let body = app
        .gql(
            "{ tiers { slug monthlyPriceCents maxAgents monthlyExecutionLimit } }",
            None,
        )
        .await;
    assert_eq!(body["data"]["tiers"][3]["slug"], "enterprise");
    assert_eq!(body["data"]["tiers"][3]["monthlyPriceCents"], 499_700);
    let q = format!(
        r#"{{ quote(tierId: "{STARTER_ID}", frequency: ANNUAL) {{ periodPriceCents setupFeeCents totalCents }} }}"#
    );
    let body = app.gql(&q, None).await;
    assert_eq!(body["data"]["quote"]["periodPriceCents"], 1_076_760);
    assert_eq!(body["data"]["quote"]["totalCents"], 1_076_760 + 49_700);
    let body = app
        .gql(
            r#"{ quote(tierId: "nope", frequency: WEEKLY) { totalCents } }"#,
            None,
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[actix_web::test]
async fn subscription_queries_and_mutations_need_a_signed_in_caller() {
    let app = spawn_app().await;
    let body = app.gql("{ subscription { id } }", None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let q = format!(
        r#"mutation {{ subscribe(input: {{tierId: "{STARTER_ID}", frequency: MONTHLY}}) {{ id }} }}"#
    );
    let body = app.gql(&q, None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

#[actix_web::test]
async fn subscribe_then_change_tier_with_the_shown_quote_over_the_api() {
    let app = spawn_app().await;
    let token = app.register("buyer@example.com").await;
    let q = format!(
        r#"mutation {{ subscribe(input: {{tierId: "{STARTER_ID}", frequency: MONTHLY}}) {{ status tier {{ slug }} }} }}"#
    );
    let body = app.gql(&q, Some(&token)).await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    let body = app.gql(&q, Some(&token)).await;
    assert_eq!(code(&body), "CONFLICT");
    let q = format!(
        r#"{{ prorationQuote(tierId: "{GROWTH_ID}") {{ amountDueCents creditCents chargeCents }} }}"#
    );
    let body = app.gql(&q, Some(&token)).await;
    let due = body["data"]["prorationQuote"]["amountDueCents"]
        .as_i64()
        .unwrap();
    // A stale amount is refused, the shown one applied.
    let q = format!(
        r#"mutation {{ changeTier(input: {{tierId: "{GROWTH_ID}", expectedAmountCents: {}}}) {{ subscription {{ tier {{ slug }} }} }} }}"#,
        due + 1
    );
    assert_eq!(code(&app.gql(&q, Some(&token)).await), "CONFLICT");
    let q = format!(
        r#"mutation {{ changeTier(input: {{tierId: "{GROWTH_ID}", expectedAmountCents: {due}}}) {{ subscription {{ tier {{ slug }} }} proration {{ amountDueCents }} }} }}"#
    );
    let body = app.gql(&q, Some(&token)).await;
    // The quote holds within its minute; across a minute boundary re-quote once.
    let body = if body["errors"].is_null() {
        body
    } else {
        let fresh = app
            .gql(
                &format!(r#"{{ prorationQuote(tierId: "{GROWTH_ID}") {{ amountDueCents }} }}"#),
                Some(&token),
            )
            .await;
        let due = fresh["data"]["prorationQuote"]["amountDueCents"]
            .as_i64()
            .unwrap();
        app.gql(&format!(r#"mutation {{ changeTier(input: {{tierId: "{GROWTH_ID}", expectedAmountCents: {due}}}) {{ subscription {{ tier {{ slug }} }} proration {{ amountDueCents }} }} }}"#), Some(&token)).await
    };
    assert_eq!(
        body["data"]["changeTier"]["subscription"]["tier"]["slug"], "growth",
        "{body}"
    );
    let body = app
        .gql(
            "mutation { cancelSubscription(atPeriodEnd: true) { cancelAtPeriodEnd status } }",
            Some(&token),
        )
        .await;
    assert_eq!(
        body["data"]["cancelSubscription"]["cancelAtPeriodEnd"],
        true
    );
    let other = app.register("other@example.com").await;
    let body = app.gql("{ subscription { id } }", Some(&other)).await;
    assert!(body["data"]["subscription"].is_null());
    let body = app
        .gql(
            &format!(r#"{{ prorationQuote(tierId: "{GROWTH_ID}") {{ amountDueCents }} }}"#),
            Some(&other),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
}
