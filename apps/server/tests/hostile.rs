//! Hostile requests are refused cheaply with a code, and the server keeps answering.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use common::{code, spawn_app};
use serde_json::json;

#[actix_web::test]
async fn argument_values_nested_a_hundred_thousand_deep_are_refused() {
    let app = spawn_app().await;
    let deep = format!(
        "{{ me(x: {}{}) {{ email }} }}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let body = app.gql(&deep, None).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    app.assert_alive().await;
}

#[actix_web::test]
async fn doubling_fragment_chain_is_refused_before_validation() {
    let app = spawn_app().await;
    let mut doc = String::from("query { ...F40 } fragment F0 on Query { me { email } }");
    for i in 1..=40 {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
            p = i - 1
        ));
    }
    let body = app.gql(&doc, None).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    app.assert_alive().await;
}

#[actix_web::test]
async fn subscriptions_go_through_the_same_guard() {
    let app = spawn_app().await;
    use futures_util::StreamExt;
    let deep = format!(
        "subscription {{ heartbeat(intervalSeconds: {}1{}) }}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let first = app
        .state
        .schema
        .execute_stream(async_graphql::Request::new(deep))
        .next()
        .await
        .expect("one response");
    let err = &first.errors[0];
    let code = err
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .map(|v| v.to_string());
    assert_eq!(code.as_deref(), Some("\"QUERY_TOO_COMPLEX\""));
}

#[actix_web::test]
async fn too_many_aliases_are_refused() {
    let app = spawn_app().await;
    let aliases: String = (0..200).map(|i| format!(" a{i}: __typename")).collect();
    let body = app.gql(&format!("{{{aliases} }}"), None).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    app.assert_alive().await;
}

#[actix_web::test]
async fn deep_selection_sets_hit_the_depth_limit() {
    let app = spawn_app().await;
    // 24 levels of introspection nesting: valid fields, deeper than the limit of 15.
    let mut doc = String::from("{ __schema { types { fields { type { ofType ");
    for _ in 0..18 {
        doc.push_str("{ ofType ");
    }
    doc.push_str("{ name }");
    doc.push_str(&" }".repeat(18 + 5));
    let body = app.gql(&doc, None).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
}

#[actix_web::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let padding = " ".repeat(300 * 1024);
    let (status, body) = app
        .post_json(
            json!({ "query": format!("{{ __typename {padding} }}") }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");
    app.assert_alive().await;
}

#[actix_web::test]
async fn variables_nested_beyond_json_limits_are_refused() {
    let app = spawn_app().await;
    let nested = format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000));
    let raw = format!(r#"{{"query":"{{ __typename }}","variables":{{"x":{nested}}}}}"#);
    let req = TestRequest::post()
        .uri("/graphql")
        .insert_header(("content-type", "application/json"))
        .set_payload(raw);
    let (status, body) = app.send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.assert_alive().await;
}

#[actix_web::test]
async fn batches_are_capped_at_ten_operations() {
    let app = spawn_app().await;
    let one = json!({ "query": "{ __typename }" });
    let (status, body) = app.post_json(json!(vec![one.clone(); 10]), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(10));
    let (status, body) = app.post_json(json!(vec![one; 11]), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");
}

#[actix_web::test]
async fn mutations_are_refused_over_get() {
    let app = spawn_app().await;
    let req = TestRequest::get().uri("/graphql?query=mutation%20%7B%20logout%20%7D");
    let (_, body) = app.send(req).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["data"]["logout"].is_null());
    let req = TestRequest::get().uri("/graphql?query=%7B%20__typename%20%7D");
    let (status, body) = app.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["__typename"], "Query");
}

#[actix_web::test]
async fn only_json_bodies_are_accepted() {
    let app = spawn_app().await;
    let req = TestRequest::post()
        .uri("/graphql")
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"query":"mutation { logout }"}"#);
    let (status, body) = app.send(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[actix_web::test]
async fn syntax_and_validation_errors_carry_bad_user_input() {
    let app = spawn_app().await;
    assert_eq!(code(&app.gql("{ me { ", None).await), "BAD_USER_INPUT");
    assert_eq!(
        code(&app.gql("{ me { nope } }", None).await),
        "BAD_USER_INPUT"
    );
    let body = app
        .post_json(
            json!({ "query": "query A { __typename }", "operationName": "B" }),
            None,
        )
        .await
        .1;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}

#[actix_web::test]
async fn introspection_can_be_switched_off() {
    let app = common::spawn_app_with(false).await;
    let body = app.gql("{ __schema { queryType { name } } }", None).await;
    // async-graphql answers disabled introspection with null rather than an error.
    assert!(body["data"]["__schema"].is_null(), "{body}");
    let open = common::spawn_app_with(true).await;
    let body = open.gql("{ __schema { queryType { name } } }", None).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}
