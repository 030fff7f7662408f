//! The schema extension that keeps hostile documents away from async-graphql's
//! parser and validator, and gives every error an API code.
//!
//! It takes over parsing: [`crate::guard::check`] refuses oversized, deeply
//! nested and exponentially expanding documents in linear time, and hands the
//! parsed document on, so the stock parser never sees the text. It works the
//! same for HTTP and WebSocket requests.

use crate::guard::{self, Limits, Refusal};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use kernel::error::{Code, INTERNAL_MESSAGE};
use std::sync::Arc;

/// Marks a request that arrived over `GET`: it may only read.
#[derive(Debug, Clone, Copy)]
pub struct QueriesOnly;

/// The extension factory, registered once on the schema.
pub struct Protect(pub Limits);

impl ExtensionFactory for Protect {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ProtectExtension(self.0))
    }
}

struct ProtectExtension(Limits);

/// An error with an API code.
pub fn coded(message: impl Into<String>, code: Code) -> ServerError {
    let mut err = ServerError::new(message, None);
    set_code(&mut err, code);
    err
}

fn set_code(err: &mut ServerError, code: Code) {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

#[async_graphql::async_trait::async_trait]
impl Extension for ProtectExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        _variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = guard::check(query, &self.0).map_err(|refusal| match refusal {
            Refusal::TooComplex(m) => coded(m, Code::QueryTooComplex),
            Refusal::Invalid(m) => coded(m, Code::BadUserInput),
        })?;
        if ctx.data_opt::<QueriesOnly>().is_some() && writes(&doc) {
            return Err(coded(
                "mutations and subscriptions must be sent with POST",
                Code::BadUserInput,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for err in &mut errors {
                let code = if is_limit_message(&err.message) {
                    Code::QueryTooComplex
                } else {
                    Code::BadUserInput
                };
                set_code(err, code);
            }
            errors
        })
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for err in &mut response.errors {
            if !has_code(err) {
                classify_uncoded(err);
            }
        }
        response
    }
}

fn writes(doc: &ExecutableDocument) -> bool {
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty != OperationType::Query)
}

fn is_limit_message(message: &str) -> bool {
    message.contains("nested too deep")
        || message.contains("too complex")
        || message.contains("too many directives")
        || message.contains("recursion")
}

/// Errors that reached the client without a code come from async-graphql
/// itself: a request-level problem or bad argument is the client's; anything
/// else raised while resolving is masked, since its message may hold internals.
fn classify_uncoded(err: &mut ServerError) {
    let client_fault = err.path.is_empty()
        || err.message.starts_with("Failed to parse")
        || err.message.starts_with("Invalid value")
        || err.message.contains("must not be null");
    if client_fault {
        set_code(err, Code::BadUserInput);
        return;
    }
    let request_id = kernel::request::current_request_id();
    tracing::error!(request_id = %request_id, error = %err.message, "unclassified resolver error");
    err.message = INTERNAL_MESSAGE.to_owned();
    set_code(err, Code::InternalServerError);
    if let Some(ext) = err.extensions.as_mut() {
        ext.set("requestId", Value::String(request_id.to_string()));
    }
}
