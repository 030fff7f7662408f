//! `POST /webhooks/billing` over real HTTP routing: the signature over the raw
//! body, the timestamp tolerance, and each event id applied once.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use billing::Billing;
use billing::entity::{billing_webhook_event, user_subscription};
use billing::quote::Frequency;
use billing::subscriptions::Subscribe;
use billing::webhook::{SIGNATURE_HEADER, TOLERANCE_SECS, WebhookSecret};
use common::{TestApp, spawn_app};
use kernel::actor::{Actor, Credential, Role};
use migration::m20261128_000008_billing_plans::STARTER_ID;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

const SECRET: &str = "whsec_test_secret";

async fn app_with_subscription() -> (TestApp, uuid::Uuid) {
    let mut app = spawn_app().await;
    #[allow(clippy::needless_update)]
    let settings = billing::BillingSettings {
        webhook_secret: WebhookSecret::new(SECRET),
        ..Default::default()
    };
    app.state.billing = Billing::new(
        settings,
        kernel::clock::system(),
        std::sync::Arc::new(billing::LocalGateway),
    );
    let token = app.register("payer@example.com").await;
    let me = app.gql("{ me { id } }", Some(&token)).await;
    let user_id = uuid::Uuid::parse_str(me["data"]["me"]["id"].as_str().unwrap()).unwrap();
    let actor = Actor {
        user_id,
        role: Role::User,
        credential: Credential::Session {
            session_id: uuid::Uuid::now_v7(),
        },
    };
    let req = Subscribe {
        tier_id: STARTER_ID,
        frequency: Frequency::Monthly,
        trial: false,
    };
    let s = app
        .state
        .billing
        .subscribe(&app.db.db, &actor, req)
        .await
        .unwrap();
    (app, s.id)
}

fn failed_event(event_id: &str, sub: uuid::Uuid) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id,
        "type": "invoice.payment_failed",
        "data": {"object": {"subscription": sub.to_string()}}
    }))
    .unwrap()
}

async fn post(app: &TestApp, body: &[u8], signature: Option<String>) -> StatusCode {
    let mut req = TestRequest::post()
        .uri("/webhooks/billing")
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_vec());
    if let Some(sig) = signature {
        req = req.insert_header((SIGNATURE_HEADER, sig));
    }
    app.send(req).await.0
}

async fn status_of(app: &TestApp, id: uuid::Uuid) -> String {
    user_subscription::Entity::find_by_id(id)
        .one(&app.db.db)
        .await
        .unwrap()
        .unwrap()
        .status
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[actix_web::test]
async fn a_validly_signed_event_is_applied_once_and_its_replay_is_a_no_op() {
    let (app, sub) = app_with_subscription().await;
    let secret = WebhookSecret::new(SECRET);
    let body = failed_event("evt_once", sub);
    assert_eq!(
        post(&app, &body, Some(secret.header(now(), &body))).await,
        StatusCode::OK
    );
    assert_eq!(status_of(&app, sub).await, "past_due");
    // Recover the subscription, then replay the same event freshly signed.
    user_subscription::Entity::update_many()
        .col_expr(
            user_subscription::Column::Status,
            sea_orm::sea_query::Expr::value("active"),
        )
        .exec(&app.db.db)
        .await
        .unwrap();
    let req = TestRequest::post()
        .uri("/webhooks/billing")
        .insert_header((SIGNATURE_HEADER, secret.header(now(), &body)))
        .set_payload(body.clone());
    let (status, json) = app.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["duplicate"], true);
    assert_eq!(status_of(&app, sub).await, "active");
    let events = billing_webhook_event::Entity::find()
        .count(&app.db.db)
        .await
        .unwrap();
    assert_eq!(events, 1);
}

#[actix_web::test]
async fn a_bad_or_missing_signature_is_refused_and_changes_nothing() {
    let (app, sub) = app_with_subscription().await;
    let body = failed_event("evt_forged", sub);
    let forged = WebhookSecret::new("not the secret").header(now(), &body);
    assert_eq!(
        post(&app, &body, Some(forged)).await,
        StatusCode::UNAUTHORIZED
    );
    // A signature of another body does not carry over.
    let other = WebhookSecret::new(SECRET).header(now(), b"{}");
    assert_eq!(
        post(&app, &body, Some(other)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(&app, &body, None).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&app, &body, Some("garbage".into())).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(status_of(&app, sub).await, "active");
    let events = billing_webhook_event::Entity::find()
        .count(&app.db.db)
        .await
        .unwrap();
    assert_eq!(events, 0);
}

#[actix_web::test]
async fn an_event_signed_outside_the_five_minute_tolerance_is_refused() {
    let (app, sub) = app_with_subscription().await;
    let secret = WebhookSecret::new(SECRET);
    let body = failed_event("evt_old", sub);
    let old = secret.header(now() - TOLERANCE_SECS - 60, &body);
    assert_eq!(post(&app, &body, Some(old)).await, StatusCode::BAD_REQUEST);
    let future = secret.header(now() + TOLERANCE_SECS + 60, &body);
    assert_eq!(
        post(&app, &body, Some(future)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(status_of(&app, sub).await, "active");
}

#[actix_web::test]
async fn a_signed_body_that_is_not_an_event_is_bad_request() {
    let (app, _) = app_with_subscription().await;
    let body = b"[1,2,3]";
    let sig = WebhookSecret::new(SECRET).header(now(), body);
    assert_eq!(post(&app, body, Some(sig)).await, StatusCode::BAD_REQUEST);
}
