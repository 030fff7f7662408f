//! The id of the request being served, readable from anywhere below the handler.
//!
//! The server wraps each request in [`scope`]; errors and logs read the id with
//! [`current_request_id`] so that a masked error can be found in the log.

use std::future::Future;
use uuid::Uuid;

tokio::task_local! {
    static REQUEST_ID: Uuid;
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: Uuid, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Where a request came from, recorded with sign-ins, sessions and audit records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The peer address as the server saw it.
    pub ip: String,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
}

/// The current request id, or the nil id outside a request (tests, jobs).
pub fn current_request_id() -> Uuid {
    REQUEST_ID.try_with(|id| *id).unwrap_or(Uuid::nil())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_visible_inside_the_scope_only() {
        let id = Uuid::now_v7();
        assert_eq!(scope(id, async { current_request_id() }).await, id);
        assert_eq!(current_request_id(), Uuid::nil());
    }
}
