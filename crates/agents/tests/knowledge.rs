//! Knowledge entries: the closed category set, exact confidence in 0..=1,
//! atomic usage counting under concurrency, deactivation, tenant scoping.

mod common;
mod resources_common;

use agents::knowledge::{self, Category, Confidence, NewEntry};
use common::Fixture;
use kernel::actor::Actor;
use kernel::clock::Clock;
use kernel::error::Code;
use resources_common::*;
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($input: CreateKnowledgeEntryInput!) {
    createKnowledgeEntry(input: $input) { id category confidence usageCount isActive examples } }";
const USE: &str = "mutation($id: ID!) { useKnowledgeEntry(id: $id) { usageCount lastUsedAt } }";

async fn entry(f: &Fixture, actor: &Actor, category: Category) -> Uuid {
    let req = NewEntry::parse(
        category,
        "Writing client emails".into(),
        "Sign off with the first name only".into(),
        None,
        Some(0.8),
    )
    .unwrap();
    knowledge::create(&f.t.db, actor, req, f.clock.now())
        .await
        .unwrap()
        .id
}

#[test]
fn confidence_is_a_number_from_0_to_1_with_at_most_two_decimals_held_exactly() {
    assert_eq!(Confidence::parse(0.85).unwrap().hundredths(), 85);
    assert_eq!(Confidence::parse(0.07).unwrap().hundredths(), 7);
    assert_eq!(Confidence::parse(0.0).unwrap().hundredths(), 0);
    assert_eq!(Confidence::parse(1.0).unwrap().hundredths(), 100);
    assert_eq!(Confidence::parse(0.29).unwrap().as_f64(), 0.29);
    for bad in [-0.01, 1.01, 1.5, f64::NAN, f64::INFINITY, 0.855, 0.333] {
        let err = Confidence::parse(bad).unwrap_err();
        assert!(
            matches!(err, kernel::Error::BadInput { ref field, .. } if field == "confidence"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_new_entry_keeps_its_category_and_exact_confidence_and_starts_unused() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "category": "BRAND_VOICE", "context": "Tweets",
        "content": "No exclamation marks", "examples": ["Launching today."], "confidence": 0.07 } });
    let out = data(run(&s, &alice, CREATE, input).await);
    let e = &out["createKnowledgeEntry"];
    assert_eq!(e["category"], "BRAND_VOICE");
    assert_eq!(e["confidence"], json!(0.07));
    assert_eq!(e["usageCount"], 0);
    assert_eq!(e["isActive"], true);
    assert_eq!(e["examples"], json!(["Launching today."]));
    let stored = count(
        &f,
        "SELECT COUNT(*) AS n FROM knowledge_entries WHERE confidence_hundredths = 7 \
         AND category = 'brand_voice'",
        vec![],
    )
    .await;
    assert_eq!(stored, 1, "stored exactly, as hundredths");
    let input = json!({ "input": { "category": "PROCESS", "context": "c", "content": "c" } });
    let out = data(run(&s, &alice, CREATE, input).await);
    assert_eq!(
        out["createKnowledgeEntry"]["confidence"],
        json!(1.0),
        "the default"
    );
}

#[tokio::test]
async fn malformed_entries_are_bad_user_input_naming_the_field() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let base = |extra: Value| {
        let mut input = json!({ "category": "WORKFLOW", "context": "c", "content": "c" });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "input": input })
    };
    for (extra, field) in [
        (json!({ "confidence": 1.2 }), "confidence"),
        (json!({ "confidence": -0.5 }), "confidence"),
        (json!({ "confidence": 0.125 }), "confidence"),
        (json!({ "context": " " }), "context"),
        (json!({ "content": "" }), "content"),
        (json!({ "examples": { "a": 1 } }), "examples"),
    ] {
        let res = run(&s, &alice, CREATE, base(extra.clone())).await;
        assert_eq!(
            error(&res),
            ("BAD_USER_INPUT".into(), Some(field.into())),
            "{extra}"
        );
    }
    let res = run(&s, &alice, CREATE, base(json!({ "category": "GOSSIP" }))).await;
    assert!(!res.errors.is_empty(), "the category set is closed");
    assert_eq!(
        count(&f, "SELECT COUNT(*) AS n FROM knowledge_entries", vec![]).await,
        0
    );
}

#[tokio::test]
async fn the_database_refuses_confidence_outside_0_to_1_and_unknown_categories() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = entry(&f, &alice, Category::Workflow).await;
    let backend = sea_orm::ConnectionTrait::get_database_backend(&f.t.db);
    for sql in [
        "UPDATE knowledge_entries SET confidence_hundredths = 101 WHERE id = ?",
        "UPDATE knowledge_entries SET confidence_hundredths = -1 WHERE id = ?",
        "UPDATE knowledge_entries SET category = 'gossip' WHERE id = ?",
    ] {
        let res = sea_orm::ConnectionTrait::execute_raw(
            &f.t.db,
            kernel::db::raw(backend, sql, vec![id.into()]),
        )
        .await;
        assert!(res.is_err(), "{sql}");
    }
}

#[tokio::test]
async fn a_use_bumps_the_usage_count_and_stamps_last_used_at() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let mallory = f.user("mallory@example.com").await;
    let id = entry(&f, &alice, Category::Preference).await;
    let s = schema(&f, keys());
    let out = data(run(&s, &alice, USE, json!({ "id": id })).await);
    assert_eq!(out["useKnowledgeEntry"]["usageCount"], 1);
    assert_ne!(out["useKnowledgeEntry"]["lastUsedAt"], Value::Null);
    let out = data(run(&s, &alice, USE, json!({ "id": id })).await);
    assert_eq!(out["useKnowledgeEntry"]["usageCount"], 2);
    let res = run(&s, &mallory, USE, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "NOT_FOUND");
    let read = "query($id: ID!) { knowledgeEntry(id: $id) { usageCount } }";
    let out = data(run(&s, &mallory, read, json!({ "id": id })).await);
    assert_eq!(out["knowledgeEntry"], Value::Null);
    let out = data(run(&s, &alice, read, json!({ "id": id })).await);
    assert_eq!(
        out["knowledgeEntry"]["usageCount"], 2,
        "another user's use counted nothing"
    );
}

#[tokio::test]
async fn concurrent_uses_are_all_counted() {
    const N: usize = 24;
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = entry(&f, &alice, Category::Technical).await;
    let s = schema(&f, keys());
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (s, alice) = (s.clone(), alice.clone());
            tokio::spawn(async move { data(run(&s, &alice, USE, json!({ "id": id })).await) })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        let out = task.await.unwrap();
        seen.push(out["useKnowledgeEntry"]["usageCount"].as_i64().unwrap());
    }
    seen.sort_unstable();
    let expected: Vec<i64> = (1..=N as i64).collect();
    assert_eq!(seen, expected, "each use saw its own increment");
    let row = knowledge::entry(&f.t.db, &alice, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.usage_count, N as i32);
}

#[tokio::test]
async fn a_deactivated_entry_takes_no_changes_or_uses_and_stays_deactivated() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let id = entry(&f, &alice, Category::Workflow).await;
    let s = schema(&f, keys());
    let deactivate = "mutation($id: ID!) { deactivateKnowledgeEntry(id: $id) { isActive } }";
    let out = data(run(&s, &alice, deactivate, json!({ "id": id })).await);
    assert_eq!(out["deactivateKnowledgeEntry"]["isActive"], false);
    let res = run(&s, &alice, deactivate, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION");
    let res = run(&s, &alice, USE, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION");
    let update =
        "mutation($id: ID!) { updateKnowledgeEntry(input: { id: $id, content: \"x\" }) { id } }";
    let res = run(&s, &alice, update, json!({ "id": id })).await;
    assert_eq!(error(&res).0, "INVALID_TRANSITION");
    let row = knowledge::entry(&f.t.db, &alice, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.usage_count, row.content.as_str(), row.is_active),
        (0, "Sign off with the first name only", false)
    );
}

#[tokio::test]
async fn an_update_changes_given_fields_and_clears_examples_with_null() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let s = schema(&f, keys());
    let input = json!({ "input": { "category": "PROCESS", "context": "Invoices",
        "content": "Net 30", "examples": ["INV-1"] } });
    let out = data(run(&s, &alice, CREATE, input).await);
    let id = out["createKnowledgeEntry"]["id"].clone();
    let q = "mutation($input: UpdateKnowledgeEntryInput!) { updateKnowledgeEntry(input: $input) {
        category context content examples confidence } }";
    let change = json!({ "input": { "id": id, "category": "TECHNICAL", "content": "Net 15",
        "examples": null, "confidence": 0.5 } });
    let out = data(run(&s, &alice, q, change).await);
    assert_eq!(
        out["updateKnowledgeEntry"],
        json!({ "category": "TECHNICAL", "context": "Invoices", "content": "Net 15",
                "examples": null, "confidence": 0.5 })
    );
    let bad = json!({ "input": { "id": id, "confidence": 2 } });
    let res = run(&s, &alice, q, bad).await;
    assert_eq!(
        error(&res),
        ("BAD_USER_INPUT".into(), Some("confidence".into()))
    );
}

#[tokio::test]
async fn lists_are_the_callers_own_newest_first_by_category_and_active_only_by_default() {
    let f = Fixture::new().await;
    let alice = f.user("alice@example.com").await;
    let bob = f.user("bob@example.com").await;
    let w1 = entry(&f, &alice, Category::Workflow).await;
    entry(&f, &bob, Category::Workflow).await;
    let t1 = entry(&f, &alice, Category::Technical).await;
    let w2 = entry(&f, &alice, Category::Workflow).await;
    knowledge::deactivate(&f.t.db, &alice, w2, f.clock.now())
        .await
        .unwrap();
    let s = schema(&f, keys());
    let q = "query($category: KnowledgeCategory, $activeOnly: Boolean) {
        knowledgeEntries(category: $category, activeOnly: $activeOnly) { nodes { id } } }";
    let ids = |v: Value| v["knowledgeEntries"]["nodes"].clone();
    let out = data(run(&s, &alice, q, json!({})).await);
    assert_eq!(ids(out), json!([{ "id": t1 }, { "id": w1 }]));
    let out = data(
        run(
            &s,
            &alice,
            q,
            json!({ "category": "WORKFLOW", "activeOnly": false }),
        )
        .await,
    );
    assert_eq!(ids(out), json!([{ "id": w2 }, { "id": w1 }]));
    let out = data(run(&s, &alice, q, json!({ "category": "WORKFLOW" })).await);
    assert_eq!(ids(out), json!([{ "id": w1 }]));
    let err = knowledge::deactivate(&f.t.db, &bob, w1, f.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
