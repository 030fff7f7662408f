//! The read API: the caller's sessions and executions, and the edges under
//! them, each served by a DataLoader so a nested list costs statements by
//! depth, never by rows; another user's rows never show.

mod common;
mod readapi_common;

use readapi_common::{Api, code, field, ids, newest_first};
use serde_json::{Value, json};

const NESTED: &str = "{ agentSessions(first: 20) { nodes { executions(first: 10) { nodes { \
                      toolExecutions(first: 10) { nodes { toolName } } } } } } }";

/// Runs [`NESTED`] and returns (statements, sessions, executions, tool calls) seen.
async fn nested_cost(api: &Api, actor: &kernel::actor::Actor) -> (usize, usize, usize, usize) {
    api.f.t.reset_statements();
    let data = api.data(actor, NESTED, json!({})).await;
    let statements = api.f.t.statements();
    let sessions = data["agentSessions"]["nodes"].as_array().unwrap();
    let executions: Vec<&Value> = sessions
        .iter()
        .flat_map(|s| s["executions"]["nodes"].as_array().unwrap())
        .collect();
    let tools = executions
        .iter()
        .map(|e| e["toolExecutions"]["nodes"].as_array().unwrap().len())
        .sum();
    (statements, sessions.len(), executions.len(), tools)
}

#[tokio::test]
async fn nested_sessions_executions_tool_calls_cost_the_same_statements_for_1_row_or_1000() {
    let small = Api::new().await;
    let alice = small.f.user("alice@example.com").await;
    let s = small.sessions(&alice, 1).await;
    let e = small.executions(alice.user_id, &s, 1, "completed").await;
    small.tool_calls(alice.user_id, &e, 1).await;
    let (few, ..) = nested_cost(&small, &alice).await;

    // 21 sessions x 11 executions x 11 tool calls: 2,793 rows, one past every page limit.
    let large = Api::new().await;
    let bob = large.f.user("bob@example.com").await;
    let s = large.sessions(&bob, 21).await;
    let e = large.executions(bob.user_id, &s, 11, "completed").await;
    large.tool_calls(bob.user_id, &e, 11).await;
    assert!(s.len() + e.len() + e.len() * 11 >= 1000);
    let (many, sessions, executions, tools) = nested_cost(&large, &bob).await;

    assert_eq!(
        (sessions, executions, tools),
        (20, 200, 2000),
        "pages are full"
    );
    assert_eq!(few, many, "statements depend on depth, not rows");
    assert_eq!(many, 3, "one statement per level");
}

#[tokio::test]
async fn every_execution_edge_is_one_statement_whatever_the_rows() {
    const EDGES: &str = "{ agentExecutions(first: 100) { nodes { id session { id name } \
                         control { state } toolExecutions { nodes { id } } \
                         approvals { nodes { id riskLevel } } checkpoints { nodes { id reason } } } } }";
    let mut costs = Vec::new();
    // A full page of 100 executions: more than one round of sibling resolvers.
    for (sessions, runs, children) in [(1, 1, 1), (10, 10, 3)] {
        let api = Api::new().await;
        let alice = api.f.user("alice@example.com").await;
        let s = api.sessions(&alice, sessions).await;
        let e = api.executions(alice.user_id, &s, runs, "executing").await;
        api.tool_calls(alice.user_id, &e, children).await;
        for run in &e {
            api.control(alice.user_id, *run).await;
            api.approvals(alice.user_id, *run, children).await;
            api.checkpoints(alice.user_id, *run, children).await;
        }
        api.f.t.reset_statements();
        let data = api.data(&alice, EDGES, json!({})).await;
        costs.push(api.f.t.statements());
        let nodes = data["agentExecutions"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), e.len());
        for node in nodes {
            assert_eq!(node["control"]["state"], "RUNNING");
            assert_eq!(node["session"]["name"], "Test session");
            assert!(s.iter().any(|id| node["session"]["id"] == id.to_string()));
            for edge in ["toolExecutions", "approvals", "checkpoints"] {
                assert_eq!(node[edge]["nodes"].as_array().unwrap().len(), children);
            }
        }
    }
    assert_eq!(costs[0], costs[1]);
    assert_eq!(costs[0], 6, "the list and one statement per edge");
}

#[tokio::test]
async fn agent_sessions_lists_only_the_callers_own_newest_first_in_pages() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let mine = api.sessions(&alice, 3).await;
    api.sessions(&mallory, 2).await;
    let q = "query($after: String) { agentSessions(first: 2, after: $after) { \
             nodes { id } pageInfo { hasNextPage endCursor } } }";
    let first = api.data(&alice, q, json!({})).await["agentSessions"].clone();
    let expected = newest_first(&mine);
    assert_eq!(ids(&first), expected[..2]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let next = api
        .data(&alice, q, json!({"after": first["pageInfo"]["endCursor"]}))
        .await["agentSessions"]
        .clone();
    assert_eq!(ids(&next), expected[2..]);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);

    let last = api
        .data(
            &alice,
            "{ agentSessions(last: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&last["agentSessions"]), expected[2..]);
}

#[tokio::test]
async fn another_users_session_and_execution_are_null_and_unknown_ids_too() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let s = api.sessions(&alice, 1).await;
    let e = api.executions(alice.user_id, &s, 1, "pending").await;
    let q = "query($s: ID!, $e: ID!) { agentSession(id: $s) { id } agentExecution(id: $e) { id } }";
    let vars = json!({"s": s[0].to_string(), "e": e[0].to_string()});
    let own = api.data(&alice, q, vars.clone()).await;
    assert_eq!(own["agentSession"]["id"], s[0].to_string());
    assert_eq!(own["agentExecution"]["id"], e[0].to_string());
    let theirs = api.data(&mallory, q, vars).await;
    assert_eq!(
        theirs,
        json!({"agentSession": null, "agentExecution": null})
    );
    let unknown =
        json!({"s": uuid::Uuid::now_v7().to_string(), "e": uuid::Uuid::now_v7().to_string()});
    let none = api.data(&alice, q, unknown).await;
    assert_eq!(none, json!({"agentSession": null, "agentExecution": null}));
    let bad = api.run(&alice, q, json!({"s": "nope", "e": "nope"})).await;
    assert_eq!(
        (code(&bad), field(&bad)),
        ("BAD_USER_INPUT".into(), "id".into())
    );
}

#[tokio::test]
async fn agent_executions_lists_the_callers_own_newest_first_and_filters_by_status() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let s = api.sessions(&alice, 2).await;
    let done = api.executions(alice.user_id, &s, 2, "completed").await;
    let pending = api.executions(alice.user_id, &s[..1], 1, "pending").await;
    let m = api.sessions(&mallory, 1).await;
    api.executions(mallory.user_id, &m, 3, "completed").await;

    let all = api
        .data(&alice, "{ agentExecutions { nodes { id } } }", json!({}))
        .await;
    let mut every = done.clone();
    every.extend(&pending);
    assert_eq!(ids(&all["agentExecutions"]), newest_first(&every));
    let completed = api
        .data(
            &alice,
            "{ agentExecutions(status: COMPLETED) { nodes { id status } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&completed["agentExecutions"]), newest_first(&done));
    let theirs = api
        .data(
            &mallory,
            "{ agentExecutions(status: PENDING) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert!(ids(&theirs["agentExecutions"]).is_empty());
}

#[tokio::test]
async fn edges_never_show_another_users_rows_even_when_they_point_at_the_callers_parent() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let hers = api.sessions(&mallory, 1).await;
    let her_runs = api.executions(mallory.user_id, &hers, 1, "completed").await;
    let mine = api.sessions(&alice, 1).await;
    let my_runs = api.executions(alice.user_id, &mine, 1, "completed").await;
    // Rows of Mallory's planted under Alice's session and execution.
    api.executions(mallory.user_id, &mine, 2, "completed").await;
    api.tool_calls(mallory.user_id, &my_runs, 2).await;
    api.approvals(mallory.user_id, my_runs[0], 1).await;
    api.checkpoints(mallory.user_id, my_runs[0], 1).await;
    api.control(mallory.user_id, my_runs[0]).await;
    // And Mallory's own tree, under her own rows.
    api.tool_calls(mallory.user_id, &her_runs, 3).await;

    let q = "{ agentSessions { nodes { id executions { nodes { id control { state } \
             toolExecutions { nodes { id } } approvals { nodes { id } } \
             checkpoints { nodes { id } } } } } } }";
    let data = api.data(&alice, q, json!({})).await;
    assert_eq!(ids(&data["agentSessions"]), newest_first(&mine));
    let session = &data["agentSessions"]["nodes"][0];
    assert_eq!(ids(&session["executions"]), newest_first(&my_runs));
    let run = &session["executions"]["nodes"][0];
    assert_eq!(run["control"], Value::Null);
    for edge in ["toolExecutions", "approvals", "checkpoints"] {
        assert!(
            ids(&run[edge]).is_empty(),
            "{edge} shows nothing of Mallory's"
        );
    }
    let q = "query($e: ID!) { agentExecution(id: $e) { session { id } } }";
    let hers_to_alice = api
        .data(&alice, q, json!({"e": her_runs[0].to_string()}))
        .await;
    assert_eq!(hers_to_alice["agentExecution"], Value::Null);
}

#[tokio::test]
async fn edge_pages_follow_the_after_cursor_and_report_has_next_page() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let s = api.sessions(&alice, 1).await;
    let runs = api.executions(alice.user_id, &s, 5, "completed").await;
    let expected = newest_first(&runs);
    let q = "query($after: String) { agentSessions { nodes { executions(first: 2, after: $after) { \
             nodes { id } edges { cursor } pageInfo { hasNextPage hasPreviousPage endCursor } } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    for (page, more) in [(0..2, true), (2..4, true), (4..5, false)] {
        let data = api.data(&alice, q, json!({"after": after})).await;
        let edge = &data["agentSessions"]["nodes"][0]["executions"];
        assert_eq!(ids(edge), expected[page], "page after {after}");
        assert_eq!(edge["pageInfo"]["hasNextPage"], more);
        assert_eq!(edge["pageInfo"]["hasPreviousPage"], !after.is_null());
        assert_eq!(
            edge["pageInfo"]["endCursor"],
            edge["edges"].as_array().unwrap().last().unwrap()["cursor"]
        );
        seen.extend(ids(edge));
        after = edge["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);

    // A cursor from the root list (kernel::page) works on the edge: one format.
    let root = api
        .data(
            &alice,
            "{ agentExecutions(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let data = api
        .data(
            &alice,
            q,
            json!({"after": root["agentExecutions"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(
        ids(&data["agentSessions"]["nodes"][0]["executions"]),
        expected[1..3]
    );
}

#[tokio::test]
async fn edge_page_arguments_are_per_parent_and_per_field() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let s = api.sessions(&alice, 2).await;
    let older = api.executions(alice.user_id, &s[..1], 4, "completed").await;
    let newer = api.executions(alice.user_id, &s[1..], 1, "completed").await;
    let q = "{ agentSessions { nodes { id a: executions(first: 1) { nodes { id } pageInfo { hasNextPage } } \
             b: executions(first: 3) { nodes { id } pageInfo { hasNextPage } } \
             none: executions(first: 0) { nodes { id } pageInfo { hasNextPage } } } } }";
    let data = api.data(&alice, q, json!({})).await;
    let nodes = data["agentSessions"]["nodes"].as_array().unwrap();
    let (second, first) = (&nodes[0], &nodes[1]);
    assert_eq!(second["id"], s[1].to_string());
    assert_eq!(ids(&second["a"]), newest_first(&newer));
    assert_eq!(second["a"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(ids(&second["b"]), newest_first(&newer));
    assert_eq!(second["none"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(ids(&first["a"]), newest_first(&older)[..1]);
    assert_eq!(first["a"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(ids(&first["b"]), newest_first(&older)[..3]);
    assert_eq!(first["b"]["pageInfo"]["hasNextPage"], true);
    assert!(ids(&first["none"]).is_empty());
}

#[tokio::test]
async fn edge_page_sizes_outside_0_to_100_and_bad_cursors_are_bad_user_input() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let s = api.sessions(&alice, 1).await;
    api.executions(alice.user_id, &s, 1, "completed").await;
    for (args, bad) in [
        ("first: 101", "first"),
        ("first: -1", "first"),
        ("after: \"not a cursor\"", "after"),
    ] {
        let q = format!(
            "{{ agentSessions {{ nodes {{ executions {{ nodes {{ toolExecutions({args}) {{ nodes {{ id }} }} }} }} }} }} }}"
        );
        let body = api.run(&alice, &q, json!({})).await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT".into(), bad.into()),
            "{args}"
        );
        let q = format!(
            "{{ agentSessions {{ nodes {{ executions({args}) {{ nodes {{ id }} }} }} }} }}"
        );
        let body = api.run(&alice, &q, json!({})).await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT".into(), bad.into()),
            "{args}"
        );
    }
    let body = api
        .run(
            &alice,
            "{ agentSessions(first: 101) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (code(&body), field(&body)),
        ("BAD_USER_INPUT".into(), "first".into())
    );
}

#[tokio::test]
async fn edges_answer_the_same_without_registered_loaders() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let s = api.sessions(&alice, 2).await;
    let e = api.executions(alice.user_id, &s, 2, "completed").await;
    api.tool_calls(alice.user_id, &e, 2).await;
    let wired = api.data(&alice, NESTED, json!({})).await;
    let unwired = api.run_unwired(&alice, NESTED, json!({})).await;
    assert_eq!(unwired["data"], wired);
    assert_eq!(
        wired["agentSessions"]["nodes"][1]["executions"]["nodes"][1]["toolExecutions"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn anonymous_callers_are_unauthenticated() {
    let api = Api::new().await;
    let body = serde_json::to_value(
        api.schema
            .execute(async_graphql::Request::new(
                "{ agentSessions { nodes { id } } }",
            ))
            .await,
    )
    .unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");
}
