//! `POST /webhooks/billing`: payment-provider events. The signature is checked
//! over the raw body before anything is parsed; each event id is applied once,
//! in one transaction with its effect. Answers are small JSON objects; the
//! provider retries anything that is not 2xx.

use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use billing::webhook::{Outcome, SIGNATURE_HEADER, SignatureError};
use kernel::error::{Code, Error};
use sea_orm::TransactionTrait;
use serde_json::json;

fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Verifies and applies one billing event.
pub async fn billing_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let billing = &state.billing;
    let Some(header) = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "missing signature");
    };
    let now = billing.clock.now();
    match billing.settings.webhook_secret.verify(header, &body, now) {
        Ok(()) => {}
        Err(SignatureError::Mismatch) => {
            return refuse(StatusCode::UNAUTHORIZED, "signature does not match");
        }
        Err(e @ (SignatureError::Malformed | SignatureError::Stale)) => {
            return refuse(StatusCode::BAD_REQUEST, &e.to_string());
        }
    }
    match apply(&state, &body).await {
        Ok(outcome) => HttpResponse::Ok().json(json!({
            "received": true,
            "duplicate": outcome == Outcome::Duplicate,
        })),
        Err(e) if e.code() == Code::BadUserInput => refuse(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "billing webhook failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                kernel::error::INTERNAL_MESSAGE,
            )
        }
    }
}

async fn apply(state: &AppState, body: &[u8]) -> Result<Outcome, Error> {
    let txn = state.db.begin().await?;
    let outcome = state.billing.apply_webhook_event(&txn, body).await?;
    txn.commit().await?;
    Ok(outcome)
}
