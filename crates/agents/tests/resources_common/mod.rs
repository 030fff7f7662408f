//! Fixtures of the resources tests (browser sessions and contexts, generated
//! projects, knowledge entries): a schema of the resources roots over the
//! shared [`crate::common::Fixture`], and helpers to read its answers.
#![allow(dead_code)]

use crate::common::Fixture;
use agents::graphql::{ResourceMutation, ResourceQuery};
use async_graphql::{EmptySubscription, Request, Response, Schema, Variables};
use kernel::actor::{Actor, Credential, Permission};
use kernel::crypto::KeyRing;
use kernel::db::raw;
use sea_orm::{ConnectionTrait, Value as SqlValue};
use serde_json::Value;
use uuid::Uuid;

pub type ResourceSchema = Schema<ResourceQuery, ResourceMutation, EmptySubscription>;

/// The vault key ring of the tests: one fixed key, version 1.
pub fn keys() -> KeyRing {
    KeyRing::single(1, [7; 32])
}

/// The resources roots over `f`'s database and agents services, sealing with `keys`.
pub fn schema(f: &Fixture, keys: KeyRing) -> ResourceSchema {
    Schema::build(ResourceQuery, ResourceMutation, EmptySubscription)
        .data(f.t.db.clone())
        .data(f.agents.clone())
        .data(keys)
        .finish()
}

/// Runs `query` with `variables` as `actor`.
pub async fn run(
    schema: &ResourceSchema,
    actor: &Actor,
    query: &str,
    variables: Value,
) -> Response {
    schema
        .execute(
            Request::new(query)
                .variables(Variables::from_json(variables))
                .data(actor.clone()),
        )
        .await
}

/// The data of a response that must have succeeded.
pub fn data(res: Response) -> Value {
    assert!(res.errors.is_empty(), "unexpected errors: {:?}", res.errors);
    res.data.into_json().unwrap()
}

/// `(code, field)` of the first error of a response that must have failed.
pub fn error(res: &Response) -> (String, Option<String>) {
    let err = res
        .errors
        .first()
        .expect("the call should have been refused");
    let ext = |key: &str| {
        err.extensions
            .as_ref()
            .and_then(|x| x.get(key))
            .map(|v| v.to_string().trim_matches('"').to_owned())
    };
    (ext("code").unwrap_or_default(), ext("field"))
}

/// An API-key actor for the same user that may only read.
pub fn read_only(actor: &Actor) -> Actor {
    Actor {
        credential: Credential::ApiKey {
            key_id: Uuid::now_v7(),
            permissions: vec![Permission::Read],
        },
        ..actor.clone()
    }
}

/// `SELECT COUNT(*)` of `sql` (which must select `COUNT(*) AS n`).
pub async fn count(f: &Fixture, sql: &str, values: Vec<SqlValue>) -> i64 {
    let backend = f.t.db.get_database_backend();
    let row =
        f.t.db
            .query_one_raw(raw(backend, sql, values))
            .await
            .unwrap()
            .expect("a count");
    row.try_get("", "n").unwrap()
}
