//! HTTP endpoints: the GraphQL API, GraphiQL, probes and metrics.
//!
//! The GraphQL handler is our own rather than the stock extractor, so that a
//! hostile request is refused before it costs anything: the body is capped
//! while it streams in, only `application/json` is accepted for POST, GET may
//! only read, and batches are capped at `MAX_BATCH` operations. A mutation
//! sent with an `Idempotency-Key` header runs at most once per key (see
//! [`crate::idempotency`]).

use crate::metrics::Metrics;
use crate::protect::QueriesOnly;
use crate::schema::AppSchema;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::{Data, Variables};
use async_graphql_actix_web::GraphQLSubscription;
use core_auth::Auth;
use core_auth::types::ClientInfo;
use futures_util::StreamExt;
use kernel::actor::Actor;
use kernel::error::Code;
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// Most operations accepted in one batched request.
pub const MAX_BATCH: usize = 10;

/// Everything a handler needs; cloned into each worker.
#[derive(Clone)]
pub struct AppState {
    /// The composed schema.
    pub schema: AppSchema,
    /// The pool.
    pub db: DatabaseConnection,
    /// Identity services, for resolving bearer tokens.
    pub auth: Auth,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Billing services, for provider webhooks.
    pub billing: billing::Billing,
    /// The `Idempotency-Key` store, sealing stored responses with the vault's key ring.
    pub idempotency: kernel::idempotency::Idempotency,
}

/// Mounts every endpoint.
pub fn routes(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(
                web::resource("/graphql")
                    .route(web::post().to(graphql_post))
                    .route(web::get().to(graphql_get)),
            )
            .route("/graphql/ws", web::get().to(graphql_ws))
            .route("/graphiql", web::get().to(graphiql))
            .route("/", web::get().to(root))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .route(
                "/webhooks/billing",
                web::post().to(crate::webhooks::billing_webhook),
            );
    }
}

/// Middleware: gives every request an id, a tracing span, an access-log line
/// and an `x-request-id` response header.
///
/// # Errors
/// Passes on the inner service's error.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = Uuid::now_v7();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let mut res = kernel::request::scope(id, next.call(req))
        .instrument(span.clone())
        .await?;
    if let Ok(value) = header::HeaderValue::from_str(&id.to_string()) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "served"
        );
    });
    Ok(res)
}

/// A refusal in the GraphQL error shape, before any operation ran.
pub(crate) fn refuse(status: StatusCode, code: Code, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    }))
}

/// One GraphQL operation as the client sent it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawRequest {
    pub(crate) query: String,
    #[serde(default)]
    pub(crate) variables: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) operation_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Single(RawRequest),
    Batch(Vec<RawRequest>),
}

async fn graphql_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let json_body = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.essence_str() == "application/json");
    if !json_body {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::BadUserInput,
            "send GraphQL requests as application/json",
        );
    }
    let bytes = match read_capped(payload, &req, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let body: Body = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                "body is not a GraphQL request",
            );
        }
    };
    let (requests, batched) = match body {
        Body::Single(r) => (vec![r], false),
        Body::Batch(rs) if (1..=MAX_BATCH).contains(&rs.len()) => (rs, true),
        Body::Batch(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                Code::QueryTooComplex,
                "a batch holds 1 to 10 operations",
            );
        }
    };
    execute(&state, &req, requests, batched, false).await
}

/// Reads the body, refusing it as soon as it passes `limit` bytes.
async fn read_capped(
    mut payload: web::Payload,
    req: &HttpRequest,
    limit: usize,
) -> Result<web::BytesMut, HttpResponse> {
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::QueryTooComplex,
            "request body is too large",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                "could not read the body",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: String,
    variables: Option<String>,
    operation_name: Option<String>,
}

async fn graphql_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Ok(params) = web::Query::<GetParams>::from_query(req.query_string()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "expected ?query=...",
        );
    };
    let params = params.into_inner();
    let variables = match params
        .variables
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
    {
        Ok(v) => v,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                "variables are not JSON",
            );
        }
    };
    let raw = RawRequest {
        query: params.query,
        variables,
        operation_name: params.operation_name,
    };
    execute(&state, &req, vec![raw], false, true).await
}

/// Resolves the bearer token, if any.
async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Option<Actor>, HttpResponse> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let unauthenticated = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "invalid or expired token",
        )
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthenticated)?;
    match state.auth.authenticate(&state.db, token).await {
        Ok(actor) => Ok(Some(actor)),
        Err(core_auth::AuthError::InvalidToken) => Err(unauthenticated()),
        Err(other) => {
            tracing::error!(error = %other, "authentication failed");
            Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                kernel::error::INTERNAL_MESSAGE,
            ))
        }
    }
}

fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        ip: req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
    }
}

async fn execute(
    state: &AppState,
    req: &HttpRequest,
    requests: Vec<RawRequest>,
    batched: bool,
    queries_only: bool,
) -> HttpResponse {
    let actor = match authenticate(state, req).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    if !queries_only {
        match crate::idempotency::keyed(req, actor.as_ref(), &requests, batched) {
            Ok(None) => {}
            Ok(Some(key)) => {
                return crate::idempotency::run_once(state, req, actor, key, requests).await;
            }
            Err(err) => return crate::idempotency::refuse_error(&err),
        }
    }
    let responses = run(state, req, actor, requests, queries_only).await;
    if batched {
        HttpResponse::Ok().json(responses)
    } else {
        HttpResponse::Ok().json(responses.into_iter().next())
    }
}

/// Executes each operation in turn, as `actor`.
pub(crate) async fn run(
    state: &AppState,
    req: &HttpRequest,
    actor: Option<Actor>,
    requests: Vec<RawRequest>,
    queries_only: bool,
) -> Vec<async_graphql::Response> {
    let client = client_info(req);
    let mut responses = Vec::with_capacity(requests.len());
    for raw in requests {
        let started = Instant::now();
        let op_name = raw.operation_name.clone();
        let mut request = async_graphql::Request::new(raw.query)
            .variables(Variables::from_json(raw.variables.unwrap_or_default()))
            .data(client.clone());
        if let Some(name) = raw.operation_name {
            request = request.operation_name(name);
        }
        if let Some(actor) = &actor {
            request = request.data(actor.clone());
        }
        if queries_only {
            request = request.data(QueriesOnly);
        }
        let request = core_auth::graphql::register_loaders(request, &state.db);
        let request = agents::graphql::register_loaders(request, &state.db);
        let response = state.schema.execute(request).await;
        state
            .metrics
            .observe(op_name.as_deref(), response.is_ok(), started.elapsed());
        responses.push(response);
    }
    responses
}

async fn graphql_ws(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let (auth, db) = (state.auth.clone(), state.db.clone());
    GraphQLSubscription::new(state.schema.clone())
        .on_connection_init(move |init| async move {
            let mut data = Data::default();
            agents::graphql::insert_loaders(&mut data, &db);
            let token = init
                .get("Authorization")
                .or_else(|| init.get("authorization"))
                .and_then(|v| v.as_str())
                .map(|v| v.trim_start_matches("Bearer ").trim().to_owned());
            if let Some(token) = token {
                let actor = auth
                    .authenticate(&db, &token)
                    .await
                    .map_err(|_| async_graphql::Error::new("invalid or expired token"))?;
                data.insert(actor);
            }
            Ok(data)
        })
        .start(&req, payload)
}

async fn graphiql() -> HttpResponse {
    let page = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .title("Agency platform API")
        .finish();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/graphiql"))
        .finish()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when the database answers and holds every migration this binary knows,
/// so a load balancer never routes to a server whose tables are missing.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let unavailable = |why: &'static str| {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(why)
    };
    if !kernel::db::is_ready(&state.db).await {
        return unavailable("database unavailable");
    }
    match Migrator::get_pending_migrations_read_only(&state.db).await {
        Ok(pending) if pending.is_empty() => {
            HttpResponse::Ok().content_type("text/plain").body("ready")
        }
        Ok(_) => unavailable("migrations pending"),
        Err(_) => unavailable("migrations not applied"),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state.db))
}
