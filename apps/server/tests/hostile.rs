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

/// Every paged field in the schema, wherever it sits, with `first: -1` and
/// `last: -1`: the validator's page cost must not overflow (a debug build
/// panicked on it), and the document is answered, never a crash. Fields
/// are found by introspection, so a new list is covered the day it lands.
#[actix_web::test]
async fn negative_page_sizes_on_every_paged_field_are_answered_not_a_crash() {
    let app = spawn_app().await;
    let token = app.register("pager@example.com").await;
    let body = app
        .gql(
            "{ __schema { queryType { name } types { name kind fields { name \
             args { name defaultValue type { kind name ofType { kind name } } } \
             type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }",
            Some(&token),
        )
        .await;
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    let by_name = |name: &str| types.iter().find(|t| t["name"] == name);
    // The named type under NON_NULL/LIST wrappers.
    fn named(t: &serde_json::Value) -> (&str, &str) {
        let mut t = t;
        while t["name"].is_null() {
            t = &t["ofType"];
        }
        (t["kind"].as_str().unwrap(), t["name"].as_str().unwrap())
    }
    // Arguments for a field: -1 for the page sizes, a dummy for each other
    // required scalar; `None` when a required argument is not a scalar.
    fn arguments(field: &serde_json::Value) -> Option<String> {
        let mut out = Vec::new();
        for arg in field["args"].as_array().unwrap() {
            let name = arg["name"].as_str().unwrap();
            if name == "first" || name == "last" {
                out.push(format!("{name}: -1"));
            } else if arg["type"]["kind"] == "NON_NULL" && arg["defaultValue"].is_null() {
                let value = match named(&arg["type"]) {
                    ("SCALAR", "ID") => "\"00000000-0000-7000-8000-000000000000\"",
                    ("SCALAR", "String") => "\"x\"",
                    ("SCALAR", "Int") => "1",
                    ("SCALAR", "Boolean") => "true",
                    _ => return None,
                };
                out.push(format!("{name}: {value}"));
            }
        }
        Some(if out.is_empty() {
            String::new()
        } else {
            format!("({})", out.join(", "))
        })
    }

    // Walk from Query, three object levels down, collecting a document for
    // each field that takes `first`.
    let mut documents = Vec::new();
    let mut frontier = vec![(String::new(), 0usize, "Query".to_owned())];
    while let Some((path, depth, type_name)) = frontier.pop() {
        let Some(t) = by_name(&type_name) else {
            continue;
        };
        for field in t["fields"].as_array().into_iter().flatten() {
            let (kind, target) = named(&field["type"]);
            if kind != "OBJECT" || field["name"].as_str().unwrap().starts_with("__") {
                continue;
            }
            let Some(args) = arguments(field) else {
                continue;
            };
            let selection = format!("{} {}{}", path, field["name"].as_str().unwrap(), args);
            let paged = field["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "first");
            if paged {
                // A selection that costs something: `__typename` alone is free
                // and would hide an overflow.
                let leaf = by_name(target)
                    .and_then(|t| t["fields"].as_array())
                    .and_then(|fields| {
                        fields.iter().find(|f| {
                            let (k, _) = named(&f["type"]);
                            f["args"].as_array().is_some_and(Vec::is_empty)
                                && (k == "OBJECT" || k == "SCALAR" || k == "ENUM")
                        })
                    })
                    .map(|f| {
                        let name = f["name"].as_str().unwrap();
                        match named(&f["type"]).0 {
                            "OBJECT" => format!("{name} {{ __typename }}"),
                            _ => name.to_owned(),
                        }
                    })
                    .unwrap_or_else(|| "__typename".to_owned());
                // The field's own brace, one per ancestor field, the document's.
                let close = "}".repeat(depth + 2);
                documents.push((format!("{{{selection} {{ {leaf} {close}"), depth == 0));
            }
            if depth < 3 {
                frontier.push((format!("{selection} {{"), depth + 1, target.to_owned()));
            }
        }
    }
    let names: Vec<_> = documents.iter().map(|(d, _)| d.as_str()).collect();
    for wanted in [
        "agentSessions(",
        "creditLedger(",
        "apiKeys(",
        " users(",
        " members(",
        "toolExecutions(",
    ] {
        assert!(
            names.iter().any(|d| d.contains(wanted)),
            "the walk found no {wanted} among {names:#?}"
        );
    }
    for (document, at_root) in &documents {
        let body = app.gql(document, Some(&token)).await;
        if body["errors"].is_null() {
            // Only a field under a parent that does not exist resolves at all.
            assert!(!body["data"].is_null(), "{document}: {body}");
            continue;
        }
        // A root page is refused for its size. Below the root, the parent
        // (a made-up id, or `admin` for a non-admin) is refused first: the
        // validator priced the page before either.
        if *at_root {
            assert_eq!(code(&body), "BAD_USER_INPUT", "{document}: {body}");
        } else {
            assert!(
                ["BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN"].contains(&code(&body)),
                "{document}: {body}"
            );
        }
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains("syntax error"), "{document}: {message}");
    }
    app.assert_alive().await;
}
