//! The `Idempotency-Key` header on `POST /graphql`: a keyed mutation runs once
//! per key and caller, and every repeat gets the first response back.
//!
//! The key is read after authentication, so keys are scoped to the calling
//! user (anonymous callers share one scope of their own), and only when the
//! document holds a mutation: queries ignore the header. A batch holding a
//! mutation cannot carry a key, because its operations commit one by one and
//! a stored batch could not say which of them ran. The store's rules (hashing,
//! the claim, waiting, expiry, which responses are stored, sealing them) are in
//! [`kernel::idempotency`]; a stored response that does not open is answered
//! `INTERNAL_SERVER_ERROR` and logged, and the mutation is not run again.

use crate::guard::{self, Limits};
use crate::http::{AppState, RawRequest, refuse, run};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use async_graphql::parser::types::OperationType;
use kernel::actor::Actor;
use kernel::error::{Code, Error, INTERNAL_MESSAGE};
use kernel::idempotency::{
    Claimed, HEADER, Idempotency, IdempotencyKey, RequestHash, Scope, StoredResponse, Ticket,
    is_replayable,
};
use serde_json::json;
use tracing::Instrument;

/// Set to `true` on a response replayed from the store.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The key that applies to this request: `None` without the header, when no
/// operation is a mutation, or when the caller may not run mutations at all
/// (a read-only API key): such a caller is refused by the schema, and must
/// never be handed a response stored for one of its user's writing credentials.
///
/// # Errors
/// `BAD_USER_INPUT` on the header when it is malformed or repeated, or sent
/// with a batch that holds a mutation; answer it with [`refuse_error`].
pub(crate) fn keyed(
    req: &HttpRequest,
    actor: Option<&Actor>,
    requests: &[RawRequest],
    batched: bool,
) -> Result<Option<IdempotencyKey>, Error> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if actor.is_some_and(|a| !a.can_write()) {
        return Ok(None);
    }
    if !requests.iter().any(|r| has_mutation(&r.query)) {
        return Ok(None);
    }
    if values.next().is_some() {
        return Err(Error::bad_input(HEADER, "send one Idempotency-Key"));
    }
    if batched {
        return Err(Error::bad_input(
            HEADER,
            "a batch holding a mutation cannot carry an Idempotency-Key; send the mutation alone",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| Error::bad_input(HEADER, "must be 1 to 255 printable ASCII characters"))?;
    IdempotencyKey::parse(text).map(Some)
}

/// True when the document parses and declares a mutation. A document that
/// does not parse is refused by the schema before it runs, so it needs no key.
fn has_mutation(query: &str) -> bool {
    guard::check(query, &Limits::default()).is_ok_and(|doc| {
        doc.operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation)
    })
}

/// Runs the one keyed operation at most once for this caller and key.
pub(crate) async fn run_once(
    state: &AppState,
    req: &HttpRequest,
    actor: Option<Actor>,
    key: IdempotencyKey,
    requests: Vec<RawRequest>,
) -> HttpResponse {
    let Some(raw) = requests.into_iter().next() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "body is not a GraphQL request",
        );
    };
    let store = state.idempotency.clone();
    let scope = Scope::of(actor.as_ref().map(|a| a.user_id));
    let hash = RequestHash::of_graphql(
        &raw.query,
        raw.variables.as_ref(),
        raw.operation_name.as_deref(),
    );
    let ticket = match store.claim(&state.db, scope, &key, &hash).await {
        Ok(Claimed::Run(ticket)) => ticket,
        Ok(Claimed::Replay(stored)) => return replay(&stored),
        Err(err) => return refuse_error(&err),
    };
    // The work and the key's completion run in a task of their own, so a
    // client hanging up cannot cut the request off between the mutation's
    // commit and the stored response.
    let (state, req) = (state.clone(), req.clone());
    let request_id = kernel::request::current_request_id();
    let work = async move {
        let responses = run(&state, &req, actor, vec![raw], false).await;
        finish(&state, &store, ticket, responses.into_iter().next()).await
    };
    let task = actix_web::rt::spawn(
        kernel::request::scope(request_id, work).instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(response) => response,
        // The claim stays in progress until its lease ends; then a retry runs.
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::InternalServerError,
            INTERNAL_MESSAGE,
        ),
    }
}

/// Stores the response when it is replayable, else releases the key; then
/// answers with the response.
async fn finish(
    state: &AppState,
    store: &Idempotency,
    ticket: Ticket,
    response: Option<async_graphql::Response>,
) -> HttpResponse {
    let Some(response) = response else {
        let _ = store.release(&state.db, ticket).await;
        return internal();
    };
    let body = match serde_json::to_string(&response) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "response did not serialize");
            let _ = store.release(&state.db, ticket).await;
            return internal();
        }
    };
    let stored = StoredResponse { status: 200, body };
    if is_replayable(&response.errors) {
        match store.complete(&state.db, ticket, &stored).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("idempotency claim expired before its response was stored"),
            Err(err) => tracing::error!(error = %err, "storing the idempotent response failed"),
        }
    } else if let Err(err) = store.release(&state.db, ticket).await {
        tracing::warn!(error = %err, "releasing the idempotency key failed");
    }
    respond(&stored)
}

fn internal() -> HttpResponse {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::InternalServerError,
        INTERNAL_MESSAGE,
    )
}

fn respond(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .content_type(header::ContentType::json())
        .body(stored.body.clone())
}

/// The stored response, marked as a replay.
fn replay(stored: &StoredResponse) -> HttpResponse {
    let mut response = respond(stored);
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
    response
}

/// A refusal of the key itself, before any operation ran.
pub(crate) fn refuse_error(err: &Error) -> HttpResponse {
    let (status, field) = match err {
        Error::BadInput { field, .. } => (StatusCode::BAD_REQUEST, Some(field.as_str())),
        Error::Conflict { field, .. } => (StatusCode::CONFLICT, field.as_deref()),
        _ => return internal_logged(err),
    };
    let mut extensions = json!({ "code": err.code().as_str() });
    if let Some(field) = field {
        extensions["field"] = json!(field);
    }
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": err.to_string(), "extensions": extensions }]
    }))
}

fn internal_logged(err: &Error) -> HttpResponse {
    tracing::error!(error = %err, "idempotency store failed");
    HttpResponse::InternalServerError().json(json!({
        "errors": [{
            "message": INTERNAL_MESSAGE,
            "extensions": {
                "code": Code::InternalServerError.as_str(),
                "requestId": kernel::request::current_request_id().to_string(),
            }
        }]
    }))
}
