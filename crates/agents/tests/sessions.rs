//! Managing sessions: create, update and delete, each one transaction, on the
//! caller's own sessions only.

mod common;
mod readapi_common;

use readapi_common::{Api, code, field, ids};
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($input: CreateAgentSessionInput!) { createAgentSession(input: $input) { \
                      id name status context iterationCount maxIterations } }";
const UPDATE: &str = "mutation($input: UpdateAgentSessionInput!) { updateAgentSession(input: $input) { \
                      id name context maxIterations } }";
const DELETE: &str = "mutation($id: ID!) { deleteAgentSession(id: $id) }";

async fn set_iterations(api: &Api, session: Uuid, n: i32) {
    api.f
        .exec(
            "UPDATE agent_sessions SET iteration_count = ? WHERE id = ?",
            vec![n.into(), session.into()],
        )
        .await;
}

async fn session_row(api: &Api, actor: &kernel::actor::Actor, id: Uuid) -> Option<Value> {
    let q = "query($id: ID!) { agentSession(id: $id) { name context maxIterations } }";
    let data = api.data(actor, q, json!({"id": id.to_string()})).await;
    Some(data["agentSession"].clone()).filter(|v| !v.is_null())
}

#[tokio::test]
async fn create_agent_session_writes_an_idle_session_the_caller_then_lists() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let input = json!({"name": "  Research  ", "context": {"goal": "x"}, "maxIterations": 50});
    let made =
        api.data(&alice, CREATE, json!({"input": input})).await["createAgentSession"].clone();
    assert_eq!(made["name"], "Research", "trimmed");
    assert_eq!(made["status"], "IDLE");
    assert_eq!(made["context"], json!({"goal": "x"}));
    assert_eq!(
        (
            made["iterationCount"].clone(),
            made["maxIterations"].clone()
        ),
        (json!(0), json!(50))
    );
    let listed = api
        .data(&alice, "{ agentSessions { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        ids(&listed["agentSessions"]),
        vec![made["id"].as_str().unwrap().to_owned()]
    );
    let defaults = api
        .data(&alice, CREATE, json!({"input": {"name": "Plain"}}))
        .await;
    assert_eq!(defaults["createAgentSession"]["maxIterations"], 100);
    assert_eq!(defaults["createAgentSession"]["context"], Value::Null);
}

#[tokio::test]
async fn create_agent_session_refuses_a_bad_name_or_cap_and_writes_nothing() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    for (input, bad) in [
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "ok", "maxIterations": 0}), "maxIterations"),
        (
            json!({"name": "ok", "maxIterations": 10_001}),
            "maxIterations",
        ),
    ] {
        let body = api.run(&alice, CREATE, json!({"input": input})).await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT".into(), bad.into())
        );
    }
    assert_eq!(api.count("agent_sessions").await, 0);
}

#[tokio::test]
async fn update_agent_session_changes_what_is_given_and_null_clears_the_context() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let id = api.sessions(&alice, 1).await[0];
    let input =
        json!({"id": id.to_string(), "name": "Renamed", "context": {"k": 1}, "maxIterations": 7});
    let changed =
        api.data(&alice, UPDATE, json!({"input": input})).await["updateAgentSession"].clone();
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(changed["context"], json!({"k": 1}));
    assert_eq!(changed["maxIterations"], 7);
    let only_cap = json!({"id": id.to_string(), "maxIterations": 9});
    api.data(&alice, UPDATE, json!({"input": only_cap})).await;
    let row = session_row(&api, &alice, id).await.unwrap();
    assert_eq!(
        row,
        json!({"name": "Renamed", "context": {"k": 1}, "maxIterations": 9})
    );
    let clear = json!({"id": id.to_string(), "context": null});
    api.data(&alice, UPDATE, json!({"input": clear})).await;
    let row = session_row(&api, &alice, id).await.unwrap();
    assert_eq!(
        row,
        json!({"name": "Renamed", "context": null, "maxIterations": 9})
    );
}

#[tokio::test]
async fn update_agent_session_refuses_a_cap_below_the_iterations_taken_and_changes_nothing() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let id = api.sessions(&alice, 1).await[0];
    set_iterations(&api, id, 10).await;
    let input = json!({"id": id.to_string(), "name": "Renamed", "maxIterations": 9});
    let body = api.run(&alice, UPDATE, json!({"input": input})).await;
    assert_eq!(
        (code(&body), field(&body)),
        ("BAD_USER_INPUT".into(), "maxIterations".into())
    );
    let row = session_row(&api, &alice, id).await.unwrap();
    assert_eq!(
        (row["name"].clone(), row["maxIterations"].clone()),
        (json!("Test session"), json!(100))
    );
    let at_count = json!({"id": id.to_string(), "maxIterations": 10});
    let ok = api.data(&alice, UPDATE, json!({"input": at_count})).await;
    assert_eq!(
        ok["updateAgentSession"]["maxIterations"], 10,
        "equal to the count is allowed"
    );
    let bad_name = json!({"id": id.to_string(), "name": ""});
    let body = api.run(&alice, UPDATE, json!({"input": bad_name})).await;
    assert_eq!(
        (code(&body), field(&body)),
        ("BAD_USER_INPUT".into(), "name".into())
    );
}

#[tokio::test]
async fn update_of_another_users_session_is_not_found_and_changes_nothing() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let id = api.sessions(&alice, 1).await[0];
    for input in [
        json!({"id": id.to_string(), "name": "Mine now"}),
        json!({"id": id.to_string(), "maxIterations": 1}),
        json!({"id": Uuid::now_v7().to_string(), "name": "Nobody's"}),
    ] {
        let body = api.run(&mallory, UPDATE, json!({"input": input})).await;
        assert_eq!(code(&body), "NOT_FOUND");
    }
    let row = session_row(&api, &alice, id).await.unwrap();
    assert_eq!(
        (row["name"].clone(), row["maxIterations"].clone()),
        (json!("Test session"), json!(100))
    );
}

#[tokio::test]
async fn delete_agent_session_is_refused_while_an_execution_is_unfinished() {
    for status in ["pending", "planning", "executing"] {
        let api = Api::new().await;
        let alice = api.f.user("alice@example.com").await;
        let id = api.sessions(&alice, 1).await[0];
        api.executions(alice.user_id, &[id], 2, "completed").await;
        api.executions(alice.user_id, &[id], 1, status).await;
        let body = api.run(&alice, DELETE, json!({"id": id.to_string()})).await;
        assert_eq!(code(&body), "INVALID_TRANSITION", "{status}");
        assert!(session_row(&api, &alice, id).await.is_some());
        assert_eq!(api.count("agent_executions").await, 3);
    }
}

#[tokio::test]
async fn delete_agent_session_removes_a_finished_session_with_its_executions_and_their_rows() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let s = api.sessions(&alice, 2).await;
    let (gone, kept) = (s[0], s[1]);
    let mut runs = Vec::new();
    for status in ["completed", "failed", "cancelled"] {
        runs.extend(api.executions(alice.user_id, &[gone], 1, status).await);
    }
    api.tool_calls(alice.user_id, &runs, 2).await;
    api.control(alice.user_id, runs[0]).await;
    api.approvals(alice.user_id, runs[0], 1).await;
    api.checkpoints(alice.user_id, runs[0], 1).await;
    let other = api.executions(alice.user_id, &[kept], 1, "pending").await;
    api.tool_calls(alice.user_id, &other, 1).await;

    let data = api
        .data(&alice, DELETE, json!({"id": gone.to_string()}))
        .await;
    assert_eq!(data["deleteAgentSession"], true);
    assert!(session_row(&api, &alice, gone).await.is_none());
    assert!(session_row(&api, &alice, kept).await.is_some());
    assert_eq!(
        api.count("agent_executions").await,
        1,
        "the other session's run stays"
    );
    assert_eq!(api.count("tool_executions").await, 1);
    for table in [
        "execution_controls",
        "action_approvals",
        "execution_checkpoints",
    ] {
        assert_eq!(api.count(table).await, 0, "{table} went with its execution");
    }
}

#[tokio::test]
async fn delete_of_another_users_session_is_not_found_and_keeps_it() {
    let api = Api::new().await;
    let alice = api.f.user("alice@example.com").await;
    let mallory = api.f.user("mallory@example.com").await;
    let id = api.sessions(&alice, 1).await[0];
    let body = api
        .run(&mallory, DELETE, json!({"id": id.to_string()}))
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    let body = api
        .run(&alice, DELETE, json!({"id": Uuid::now_v7().to_string()}))
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    assert!(session_row(&api, &alice, id).await.is_some());
}

#[tokio::test]
async fn a_session_with_a_started_execution_cannot_be_deleted() {
    use agents::executions::{self, StartExecution};
    use agents::plan::{Phase, Plan, PlanStep};
    let api = Api::new().await;
    let alice = api.f.subscribed_user("alice@example.com", 10, 2).await;
    let id = api.sessions(&alice, 1).await[0];
    let plan = Plan {
        phases: vec![Phase {
            name: "only".into(),
            steps: vec![PlanStep::Finish {
                result: json!("ok"),
            }],
        }],
    };
    let req = StartExecution::parse(id, "Do it".into(), Some(plan)).unwrap();
    executions::start(&api.f.t.db, &api.f.agents, &alice, req)
        .await
        .unwrap();
    let body = api.run(&alice, DELETE, json!({"id": id.to_string()})).await;
    assert_eq!(code(&body), "INVALID_TRANSITION");
    assert_eq!(api.count("agent_executions").await, 1);
    assert_eq!(
        api.f.running_agents(alice.user_id).await,
        1,
        "the reservation stands"
    );
}
