//! A fresh app per test: its own migrated database, the real routes, no network.

#![allow(dead_code)]

pub mod ws;

use actix_web::http::StatusCode;
use actix_web::{App, test};
use kernel::testing::TestDb;
use serde_json::{Value, json};
use server::metrics::Metrics;
use server::{AppState, build_schema, routes};
use std::sync::Arc;

pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
}

/// Builds the app over a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(true).await
}

/// Builds the app with introspection on or off.
pub async fn spawn_app_with(introspection: bool) -> TestApp {
    build(introspection, Default::default()).await
}

/// Builds the app with these identity rules.
pub async fn spawn_app_with_auth(settings: core_auth::AuthSettings) -> TestApp {
    build(true, settings).await
}

async fn build(introspection: bool, settings: core_auth::AuthSettings) -> TestApp {
    let db = TestDb::new::<migration::Migrator>().await;
    let auth = core_auth::Auth::new(settings, kernel::clock::system());
    let keys = kernel::crypto::KeyRing::single(1, [7; 32]);
    let idempotency = kernel::idempotency::Idempotency::new(auth.clock.clone(), keys.clone());
    let state = AppState {
        schema: build_schema(
            db.db.clone(),
            auth.clone(),
            keys,
            Arc::new(kernel::mail::LocalMailer),
            introspection,
        ),
        db: db.db.clone(),
        auth,
        metrics: Arc::new(Metrics::default()),
        max_body_bytes: 256 * 1024,
        billing: billing::Billing::local(kernel::clock::system()),
        idempotency,
    };
    TestApp { db, state }
}

impl TestApp {
    /// Sends a raw request and returns status and JSON body.
    pub async fn send(&self, req: test::TestRequest) -> (StatusCode, Value) {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    server::http::request_context,
                ))
                .configure(routes(self.state.clone())),
        )
        .await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let body = test::read_body(res).await;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json)
    }

    /// POSTs a JSON body to /graphql with an optional bearer token.
    pub async fn post_json(&self, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = test::TestRequest::post().uri("/graphql").set_json(body);
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        self.send(req).await
    }

    /// Runs one GraphQL document and returns the response body.
    pub async fn gql(&self, query: &str, token: Option<&str>) -> Value {
        self.post_json(json!({ "query": query }), token).await.1
    }

    /// Registers a user and returns its session token.
    pub async fn register(&self, email: &str) -> String {
        let q = format!(
            r#"mutation {{ register(input: {{email: "{email}", password: "correct horse"}}) {{ token }} }}"#
        );
        let body = self.gql(&q, None).await;
        body["data"]["register"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("register failed: {body}"))
            .to_owned()
    }

    /// Registers a user, marks the address verified as `verifyEmail` would,
    /// and returns its session token.
    pub async fn register_verified(&self, email: &str) -> String {
        use core_auth::entity::user;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let token = self.register(email).await;
        let done = user::Entity::update_many()
            .col_expr(
                user::Column::EmailVerifiedAt,
                Expr::value(Some(chrono::Utc::now())),
            )
            .filter(user::Column::Email.eq(email.to_lowercase()))
            .exec(&self.db.db)
            .await
            .expect("mark verified");
        assert_eq!(done.rows_affected, 1);
        token
    }

    /// The server still answers an ordinary query.
    pub async fn assert_alive(&self) {
        let body = self.gql("{ __typename }", None).await;
        assert_eq!(
            body["data"]["__typename"], "Query",
            "server stopped answering: {body}"
        );
    }
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
