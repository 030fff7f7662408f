//! Generated projects: typed inputs, the caller's own execution, the
//! `active <-> archived -> deleted` lifecycle, tenant-scoped lists.

mod common;
mod resources_common;

use agents::entity::generated_project;
use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep};
use agents::projects::{self, NewProject, ProjectFields, ProjectStatus};
use common::Fixture;
use kernel::actor::Actor;
use kernel::clock::Clock;
use kernel::error::Code;
use resources_common::*;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($input: CreateGeneratedProjectInput!) {
    createGeneratedProject(input: $input) {
        id executionId name techStack features status previewUrl deploymentUrl devServerPort } }";

async fn project(f: &Fixture, actor: &Actor, name: &str) -> Uuid {
    let req = NewProject::parse(ProjectFields {
        name: name.into(),
        ..Default::default()
    })
    .unwrap();
    projects::create(&f.t.db, actor, req, f.clock.now())
        .await
        .unwrap()
        .id
}

async fn execution(f: &Fixture, actor: &Actor) -> Uuid {
    let session = f.session(actor, 10).await;
    let plan = Plan {
        phases: vec![Phase {
            name: "build".into(),
            steps: vec![PlanStep::Finish {
                result: json!("ok"),
            }],
        }],
    };
    let req = StartExecution::parse(session.id, "Build a site".into(), Some(plan)).unwrap();
    executions::start(&f.t.db, &f.agents, actor, req)
        .await
        .unwrap()
        .id
}

async fn stored(f: &Fixture, id: Uuid) -> generated_project::Model {
    generated_project::Entity::find_by_id(id)
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_new_project_is_active_with_parsed_defaults() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "name": "  Landing page ",
        "previewUrl": "http://localhost:5173/", "devServerPort": 5173 } });
    let out = data(run(&s, &alice, CREATE, input).await);
    let p = &out["createGeneratedProject"];
    assert_eq!(p["name"], "Landing page");
    assert_eq!(p["techStack"], "react", "the default stack");
    assert_eq!(p["features"], json!({}));
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["executionId"], Value::Null);
    let input = json!({ "input": { "name": "Shop", "techStack": " NextJS ",
        "features": { "auth": true }, "deploymentUrl": "https://shop.example.com" } });
    let out = data(run(&s, &alice, CREATE, input).await);
    assert_eq!(out["createGeneratedProject"]["techStack"], "nextjs");
    assert_eq!(
        out["createGeneratedProject"]["features"],
        json!({ "auth": true })
    );
}

#[tokio::test]
async fn malformed_project_fields_are_bad_user_input_naming_the_field() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let cases = [
        (json!({ "name": "  " }), "name"),
        (json!({ "name": "x".repeat(256) }), "name"),
        (
            json!({ "name": "P", "techStack": "react native" }),
            "techStack",
        ),
        (json!({ "name": "P", "techStack": "-react" }), "techStack"),
        (
            json!({ "name": "P", "techStack": "a".repeat(51) }),
            "techStack",
        ),
        (json!({ "name": "P", "features": ["auth"] }), "features"),
        (
            json!({ "name": "P", "filesSnapshot": "index.html" }),
            "filesSnapshot",
        ),
        (json!({ "name": "P", "devServerPort": 0 }), "devServerPort"),
        (
            json!({ "name": "P", "devServerPort": 65536 }),
            "devServerPort",
        ),
        (
            json!({ "name": "P", "previewUrl": "javascript:alert(1)" }),
            "previewUrl",
        ),
        (
            json!({ "name": "P", "deploymentUrl": "ftp://x.example.com" }),
            "deploymentUrl",
        ),
        (json!({ "name": "P", "executionId": "42" }), "executionId"),
    ];
    for (input, field) in cases {
        let res = run(&s, &alice, CREATE, json!({ "input": input })).await;
        assert_eq!(
            error(&res),
            ("BAD_USER_INPUT".into(), Some(field.into())),
            "{input}"
        );
    }
    let n = count(&f, "SELECT COUNT(*) AS n FROM generated_projects", vec![]).await;
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_project_names_only_an_execution_of_the_caller() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 2).await;
    let run_id = execution(&f, &alice).await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "name": "Site", "executionId": run_id } });
    let res = run(&s, &mallory, CREATE, input.clone()).await;
    assert_eq!(error(&res).0, "NOT_FOUND");
    let missing = json!({ "input": { "name": "Site", "executionId": Uuid::now_v7() } });
    assert_eq!(
        error(&run(&s, &alice, CREATE, missing).await).0,
        "NOT_FOUND"
    );
    let out = data(run(&s, &alice, CREATE, input).await);
    assert_eq!(out["createGeneratedProject"]["executionId"], json!(run_id));
}

#[tokio::test]
async fn a_project_outlives_the_execution_that_generated_it() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let run_id = execution(&f, &alice).await;
    let req = NewProject::parse(ProjectFields {
        name: "Site".into(),
        execution_id: Some(run_id),
        ..Default::default()
    })
    .unwrap();
    let p = projects::create(&f.t.db, &alice, req, f.clock.now())
        .await
        .unwrap();
    f.exec(
        "DELETE FROM agent_executions WHERE id = ?",
        vec![run_id.into()],
    )
    .await;
    assert_eq!(stored(&f, p.id).await.execution_id, None);
}

#[test]
fn projects_archive_restore_and_delete_only_from_archived_and_deleted_is_final() {
    use ProjectStatus::*;
    assert!(Active.transition(Archived).is_ok());
    assert!(Archived.transition(Active).is_ok());
    assert!(Archived.transition(Deleted).is_ok());
    for (from, to) in [(Active, Deleted), (Active, Active), (Archived, Archived)] {
        assert_eq!(
            from.transition(to).unwrap_err().code(),
            Code::InvalidTransition
        );
    }
    for to in ProjectStatus::ALL {
        assert!(Deleted.transition(*to).is_err());
    }
}

#[tokio::test]
async fn the_lifecycle_runs_through_graphql_and_refuses_illegal_moves() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = project(&f, &alice, "Site").await;
    let s = schema(&f, keys());
    let mv = |name: &'static str| format!("mutation($id: ID!) {{ {name}(id: $id) {{ status }} }}");
    let go = |name: &'static str| {
        let (s, alice, q) = (&s, &alice, mv(name));
        async move { run(s, alice, &q, json!({ "id": id })).await }
    };
    let res = go("deleteGeneratedProject").await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION", "archive first");
    let out = data(go("archiveGeneratedProject").await);
    assert_eq!(out["archiveGeneratedProject"]["status"], "ARCHIVED");
    let out = data(go("restoreGeneratedProject").await);
    assert_eq!(out["restoreGeneratedProject"]["status"], "ACTIVE");
    data(go("archiveGeneratedProject").await);
    let out = data(go("deleteGeneratedProject").await);
    assert_eq!(out["deleteGeneratedProject"]["status"], "DELETED");
    for name in [
        "restoreGeneratedProject",
        "archiveGeneratedProject",
        "deleteGeneratedProject",
    ] {
        assert_eq!(error(&go(name).await).0, "INVALID_TRANSITION", "{name}");
    }
    let update =
        "mutation($id: ID!) { updateGeneratedProject(input: { id: $id, name: \"X\" }) { name } }";
    let res = run(&s, &alice, update, json!({ "id": id })).await;
    assert_eq!(
        error(&res).0,
        "INVALID_TRANSITION",
        "a deleted project takes no changes"
    );
    assert_eq!(stored(&f, id).await.name, "Site");
}

#[tokio::test]
async fn lists_are_the_callers_own_newest_first_and_hide_deleted_projects_unless_asked() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let old = project(&f, &alice, "Old").await;
    project(&f, &bob, "Bob's").await;
    let archived = project(&f, &alice, "Archived").await;
    let gone = project(&f, &alice, "Gone").await;
    let now = f.clock.now();
    projects::move_to(&f.t.db, &alice, archived, ProjectStatus::Archived, now)
        .await
        .unwrap();
    projects::move_to(&f.t.db, &alice, gone, ProjectStatus::Archived, now)
        .await
        .unwrap();
    projects::move_to(&f.t.db, &alice, gone, ProjectStatus::Deleted, now)
        .await
        .unwrap();
    let s = schema(&f, keys());
    let q = "query($status: GeneratedProjectStatus) {
        generatedProjects(status: $status) { nodes { id } } }";
    let ids = |v: Value| v["generatedProjects"]["nodes"].clone();
    let all = data(run(&s, &alice, q, json!({})).await);
    assert_eq!(ids(all), json!([{ "id": archived }, { "id": old }]));
    let deleted = data(run(&s, &alice, q, json!({ "status": "DELETED" })).await);
    assert_eq!(ids(deleted), json!([{ "id": gone }]));
    let active = data(run(&s, &alice, q, json!({ "status": "ACTIVE" })).await);
    assert_eq!(ids(active), json!([{ "id": old }]));
    let one = "query($id: ID!) { generatedProject(id: $id) { status } }";
    let out = data(run(&s, &alice, one, json!({ "id": gone })).await);
    assert_eq!(out["generatedProject"]["status"], "DELETED");
    let out = data(run(&s, &bob, one, json!({ "id": old })).await);
    assert_eq!(
        out["generatedProject"],
        Value::Null,
        "another user's id reads null"
    );
    let archive = "mutation($id: ID!) { archiveGeneratedProject(id: $id) { id } }";
    let res = run(&s, &bob, archive, json!({ "id": old })).await;
    assert_eq!(error(&res).0, "NOT_FOUND");
    assert_eq!(stored(&f, old).await.status, "active");
}

#[tokio::test]
async fn an_update_changes_given_fields_clears_nulls_and_keeps_the_rest() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "name": "Site", "description": "First cut",
        "previewUrl": "https://preview.example.com", "devServerPort": 3000 } });
    let out = data(run(&s, &alice, CREATE, input).await);
    let id = out["createGeneratedProject"]["id"].clone();
    let q =
        "mutation($input: UpdateGeneratedProjectInput!) { updateGeneratedProject(input: $input) {
        name description previewUrl deploymentUrl devServerPort techStack } }";
    let change = json!({ "input": { "id": id, "previewUrl": null,
        "deploymentUrl": "https://site.example.com", "techStack": "Vue" } });
    let out = data(run(&s, &alice, q, change).await);
    assert_eq!(
        out["updateGeneratedProject"],
        json!({ "name": "Site", "description": "First cut", "previewUrl": null,
                "deploymentUrl": "https://site.example.com/", "devServerPort": 3000,
                "techStack": "vue" })
    );
    let bad = json!({ "input": { "id": id, "deploymentUrl": "mailto:a@b.c" } });
    let res = run(&s, &alice, q, bad).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("deploymentUrl".into()))
    );
}
