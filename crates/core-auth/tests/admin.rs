//! Admin: the capability, user management, the audit trail and its filters,
//! security events and the security audit log.

mod common;

use chrono::Duration;
use common::*;
use core_auth::admin::AdminCap;
use core_auth::admin::records::{AccessFilter, AuditFilter, EventFilter, ResolutionNote};
use core_auth::admin::users::{SuspensionReason, UserFilter, bootstrap_set_role};
use core_auth::entity::{audit_log, security_audit_log, security_event, session, user};
use core_auth::security::{Severity, kinds, record_access, record_event};
use core_auth::types::Email;
use kernel::actor::Role;
use kernel::clock::Clock;
use kernel::error::Code;
use kernel::page::PageArgs;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

fn all() -> kernel::page::Window {
    PageArgs::default().parse().unwrap()
}

async fn events_of_kind(
    db: &sea_orm::DatabaseConnection,
    kind: &str,
) -> Vec<security_event::Model> {
    security_event::Entity::find()
        .filter(security_event::Column::Kind.eq(kind))
        .all(db)
        .await
        .unwrap()
}

async fn access_rows(
    db: &sea_orm::DatabaseConnection,
    action: &str,
) -> Vec<security_audit_log::Model> {
    security_audit_log::Entity::find()
        .filter(security_audit_log::Column::Action.eq(action))
        .all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_capability_is_granted_only_to_admins_and_superadmins() {
    let (t, auth, _clock) = setup().await;
    let (_, plain) = member(&auth, &t.db, "u@x.com", "user").await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, root) = member(&auth, &t.db, "s@x.com", "superadmin").await;

    assert_eq!(AdminCap::check(&plain).refused().code(), Code::Forbidden);
    assert!(!AdminCap::check(&admin).unwrap().is_superadmin());
    assert!(AdminCap::check(&root).unwrap().is_superadmin());
}

#[tokio::test]
async fn non_admin_is_forbidden_from_admin_queries_and_mutations() {
    let (t, auth, _clock) = setup().await;
    let (_, plain) = member(&auth, &t.db, "u@x.com", "user").await;
    let (victim, _) = member(&auth, &t.db, "v@x.com", "user").await;
    let s = schema(&t.db, &auth);
    let id = victim.user.id;

    let docs = [
        "{ admin { users { nodes { email } } } }".to_owned(),
        format!(r#"{{ admin {{ user(id: "{id}") {{ email }} }} }}"#),
        "{ admin { auditLogs { nodes { action } } } }".to_owned(),
        "{ admin { securityEvents { nodes { kind } } } }".to_owned(),
        "{ admin { systemConfig { nodes { key } } } }".to_owned(),
        format!(r#"mutation {{ suspendUser(input: {{id: "{id}", reason: "x"}}) {{ id }} }}"#),
        format!(r#"mutation {{ setUserRole(input: {{id: "{id}", role: ADMIN}}) {{ id }} }}"#),
        r#"mutation { createFeatureFlag(input: {name: "beta"}) { id } }"#.to_owned(),
        r#"mutation { setSystemConfig(input: {key: "k", value: 1, valueType: NUMBER}) { id } }"#
            .to_owned(),
    ];
    for doc in &docs {
        let body = run_gql(&s, Some(&plain), doc).await;
        assert_eq!(gql_code(&body), "FORBIDDEN", "{doc}: {body}");
        let anonymous = run_gql(&s, None, doc).await;
        assert_eq!(
            gql_code(&anonymous),
            "UNAUTHENTICATED",
            "{doc}: {anonymous}"
        );
    }
    let victim_row = user::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(victim_row.role, "user");
    assert!(victim_row.suspended_at.is_none());
    assert_eq!(
        count::<audit_log::Entity>(&t.db).await,
        0,
        "nothing was audited"
    );
    assert_eq!(count::<security_audit_log::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn read_only_api_key_of_an_admin_can_read_but_not_run_admin_mutations() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (victim, _) = member(&auth, &t.db, "v@x.com", "user").await;
    let (_, secret) = api_key(
        &auth,
        &t.db,
        &admin,
        "ro",
        None,
        Some(vec![kernel::actor::Permission::Read]),
    )
    .await;
    let by_key = auth.authenticate(&t.db, &secret).await.unwrap();
    let s = schema(&t.db, &auth);

    let body = run_gql(&s, Some(&by_key), "{ admin { users { nodes { email } } } }").await;
    assert_eq!(
        body["data"]["admin"]["users"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{body}"
    );
    let doc = format!(
        r#"mutation {{ suspendUser(input: {{id: "{}", reason: "x"}}) {{ id }} }}"#,
        victim.user.id
    );
    assert_eq!(
        gql_code(&run_gql(&s, Some(&by_key), &doc).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn admin_cannot_make_admins_but_superadmin_can() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, root) = member(&auth, &t.db, "s@x.com", "superadmin").await;
    let (target, _) = member(&auth, &t.db, "t@x.com", "user").await;
    let id = target.user.id;

    for role in [Role::Admin, Role::Superadmin] {
        let err = auth
            .set_user_role(&t.db, &cap(&admin), id, role)
            .await
            .refused();
        assert_eq!(err.code(), Code::Forbidden);
    }
    let stored = user::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role, "user", "a refusal changes nothing");

    let (old, new) = auth
        .set_user_role(&t.db, &cap(&root), id, Role::Admin)
        .await
        .unwrap();
    assert_eq!((old.role.as_str(), new.role.as_str()), ("user", "admin"));
    let rows = access_rows(&t.db, "admin.users.set_role").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, Some(root.user_id));
    assert_eq!(rows[0].details.as_ref().unwrap()["to"], "admin");

    // The promoted user is an admin from their next request on.
    let promoted = actor(&auth, &t.db, &target).await;
    assert!(AdminCap::check(&promoted).is_ok());
}

#[tokio::test]
async fn admins_cannot_change_themselves_other_admins_or_superadmins() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (other_admin, _) = member(&auth, &t.db, "b@x.com", "admin").await;
    let (root_session, root) = member(&auth, &t.db, "s@x.com", "superadmin").await;
    let admin_cap = cap(&admin);

    let own = auth
        .set_user_role(&t.db, &admin_cap, admin.user_id, Role::User)
        .await;
    assert_eq!(own.refused().code(), Code::Forbidden);
    for id in [other_admin.user.id, root_session.user.id] {
        let demote = auth.set_user_role(&t.db, &admin_cap, id, Role::User).await;
        assert_eq!(demote.refused().code(), Code::Forbidden);
        let suspend = auth
            .suspend_user(
                &t.db,
                &admin_cap,
                id,
                SuspensionReason::parse("x".into()).unwrap(),
            )
            .await;
        assert_eq!(suspend.refused().code(), Code::Forbidden);
    }
    // Superadmins cannot demote themselves either, so one always remains.
    let own = auth
        .set_user_role(&t.db, &cap(&root), root.user_id, Role::User)
        .await;
    assert_eq!(own.refused().code(), Code::Forbidden);
    // But a superadmin can demote an admin.
    let (_, new) = auth
        .set_user_role(&t.db, &cap(&root), other_admin.user.id, Role::User)
        .await
        .unwrap();
    assert_eq!(new.role, "user");
}

#[tokio::test]
async fn unknown_user_ids_are_not_found_for_admins() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let ghost = uuid::Uuid::now_v7();
    let err = auth
        .admin_get_user(&t.db, &cap(&admin), ghost)
        .await
        .refused();
    assert_eq!(err.code(), Code::NotFound);
    let err = auth
        .unsuspend_user(&t.db, &cap(&admin), ghost)
        .await
        .refused();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn suspension_revokes_sessions_and_blocks_api_keys() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (first, victim) = member(&auth, &t.db, "v@x.com", "user").await;
    let second = login(&auth, &t.db, "v@x.com", PASSWORD).await.unwrap();
    let (_, secret) = api_key(&auth, &t.db, &victim, "ci", None, None).await;
    let s = schema(&t.db, &auth);

    let doc = format!(
        r#"mutation {{ suspendUser(input: {{id: "{}", reason: "chargeback fraud"}}) {{ suspendedAt suspensionReason }} }}"#,
        victim.user_id
    );
    let body = run_gql(&s, Some(&admin), &doc).await;
    assert_eq!(
        body["data"]["suspendUser"]["suspensionReason"], "chargeback fraud",
        "{body}"
    );

    let live = session::Entity::find()
        .filter(session::Column::UserId.eq(victim.user_id))
        .filter(session::Column::RevokedAt.is_null())
        .all(&t.db)
        .await
        .unwrap();
    assert!(live.is_empty(), "every session is revoked");
    for token in [&first.token, &second.token, &secret] {
        let err = auth.authenticate(&t.db, token).await;
        assert_eq!(code(err.unwrap_err()), Code::Unauthenticated);
    }
    let err = login(&auth, &t.db, "v@x.com", PASSWORD).await.unwrap_err();
    assert_eq!(
        code(err),
        Code::Unauthenticated,
        "a suspended user cannot sign in"
    );

    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("suspendUser"))
        .one(&t.db)
        .await
        .unwrap()
        .expect("audit row");
    assert_eq!(
        audited.entity_id.as_deref(),
        Some(victim.user_id.to_string().as_str())
    );
    assert_eq!(
        audited.new_values.unwrap()["suspensionReason"],
        "chargeback fraud"
    );
    assert_eq!(access_rows(&t.db, "admin.users.suspend").await.len(), 1);

    let again = run_gql(&s, Some(&admin), &doc).await;
    assert_eq!(gql_code(&again), "INVALID_TRANSITION");
}

#[tokio::test]
async fn unsuspend_restores_sign_in_and_api_keys() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, victim) = member(&auth, &t.db, "v@x.com", "user").await;
    let (_, secret) = api_key(&auth, &t.db, &victim, "ci", None, None).await;
    let c = cap(&admin);
    let reason = SuspensionReason::parse("review".into()).unwrap();
    auth.suspend_user(&t.db, &c, victim.user_id, reason)
        .await
        .unwrap();
    assert!(login(&auth, &t.db, "v@x.com", PASSWORD).await.is_err());

    let (_, restored) = auth
        .unsuspend_user(&t.db, &c, victim.user_id)
        .await
        .unwrap();
    assert!(restored.suspended_at.is_none() && restored.suspension_reason.is_none());
    assert!(login(&auth, &t.db, "v@x.com", PASSWORD).await.is_ok());
    assert!(
        auth.authenticate(&t.db, &secret).await.is_ok(),
        "keys were blocked, not revoked"
    );
    let err = auth
        .unsuspend_user(&t.db, &c, victim.user_id)
        .await
        .refused();
    assert_eq!(err.code(), Code::InvalidTransition);
}

#[tokio::test]
async fn suspension_reason_is_required() {
    let err = SuspensionReason::parse("   ".into()).unwrap_err();
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "reason"));
}

#[tokio::test]
async fn user_search_matches_email_or_name_case_insensitively_and_filters() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "boss@x.com", "admin").await;
    let req = core_auth::sign_in::Register::parse(
        "ada@x.com",
        PASSWORD.into(),
        Some("Ada Lovelace".into()),
    )
    .await
    .unwrap();
    let ada = auth.register(&t.db, req, &client()).await.unwrap();
    member(&auth, &t.db, "grace@x.com", "user").await;
    member(&auth, &t.db, "percent_100@x.com", "user").await;
    let c = cap(&admin);
    let emails = |page: kernel::page::Page<user::Model>| {
        page.items
            .into_iter()
            .map(|(_, u)| u.email)
            .collect::<Vec<_>>()
    };

    let by_name = UserFilter::parse(Some("LOVELACE".into()), None, None).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, by_name, all())
        .await
        .unwrap();
    assert_eq!(emails(page), ["ada@x.com"]);
    let by_email = UserFilter::parse(Some("GRACE@".into()), None, None).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, by_email, all())
        .await
        .unwrap();
    assert_eq!(emails(page), ["grace@x.com"]);
    // `_` and `%` are literal, not wildcards.
    let literal = UserFilter::parse(Some("t_1".into()), None, None).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, literal, all())
        .await
        .unwrap();
    assert_eq!(emails(page), ["percent_100@x.com"]);
    let wildcard = UserFilter::parse(Some("%".into()), None, None).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, wildcard, all())
        .await
        .unwrap();
    assert!(emails(page).is_empty());

    let admins = UserFilter::parse(None, Some(Role::Admin), None).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, admins, all())
        .await
        .unwrap();
    assert_eq!(emails(page), ["boss@x.com"]);

    let reason = SuspensionReason::parse("x".into()).unwrap();
    auth.suspend_user(&t.db, &c, ada.user.id, reason)
        .await
        .unwrap();
    let suspended = UserFilter::parse(None, None, Some(true)).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, suspended, all())
        .await
        .unwrap();
    assert_eq!(emails(page), ["ada@x.com"]);
    let active = UserFilter::parse(None, None, Some(false)).unwrap();
    let page = auth
        .admin_list_users(&t.db, &c, active, all())
        .await
        .unwrap();
    assert_eq!(
        emails(page),
        ["percent_100@x.com", "grace@x.com", "boss@x.com"],
        "newest first"
    );
}

#[tokio::test]
async fn admin_reads_of_user_data_are_recorded_in_security_audit_log() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (target, _) = member(&auth, &t.db, "t@x.com", "user").await;
    let s = schema(&t.db, &auth);

    let body = run_gql(
        &s,
        Some(&admin),
        r#"{ admin { users(search: "t@") { nodes { email } } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["admin"]["users"]["nodes"][0]["email"], "t@x.com",
        "{body}"
    );
    let doc = format!(
        r#"{{ admin {{ user(id: "{}") {{ email }} }} }}"#,
        target.user.id
    );
    let body = run_gql(&s, Some(&admin), &doc).await;
    assert_eq!(body["data"]["admin"]["user"]["email"], "t@x.com");
    run_gql(&s, Some(&admin), "{ admin { auditLogs { nodes { id } } } }").await;

    let listed = access_rows(&t.db, "admin.users.list").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_id, Some(admin.user_id));
    assert_eq!(
        listed[0].details.as_ref().unwrap()["filter"]["search"],
        "t@"
    );
    let read = access_rows(&t.db, "admin.users.read").await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].resource_id.as_deref(),
        Some(target.user.id.to_string().as_str())
    );
    assert_eq!(access_rows(&t.db, "admin.audit_logs.list").await.len(), 1);

    let body = run_gql(
        &s,
        Some(&admin),
        r#"{ admin { securityAuditLog(filter: {action: "admin.users.read"}) { nodes { action resourceType userId } } } }"#,
    )
    .await;
    let nodes = body["data"]["admin"]["securityAuditLog"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["userId"], admin.user_id.to_string());

    // Reading the security records is itself a recorded sensitive read.
    run_gql(
        &s,
        Some(&admin),
        "{ admin { securityEvents(filter: {unresolved: true}) { nodes { id } } } }",
    )
    .await;
    assert_eq!(
        access_rows(&t.db, "admin.security_audit_log.list")
            .await
            .len(),
        1
    );
    let events = access_rows(&t.db, "admin.security_events.list").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].details.as_ref().unwrap()["filter"]["unresolved"],
        true
    );
}

#[tokio::test]
async fn audit_log_filters_by_user_action_entity_and_time_range() {
    let (t, auth, clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let (_, bob) = member(&auth, &t.db, "bob@x.com", "user").await;
    let s = schema(&t.db, &auth);
    let t0 = clock.now();

    let create = r#"mutation { createApiKey(input: {name: "k"}) { apiKey { id } } }"#;
    let body = run_gql(&s, Some(&ada), create).await;
    let ada_key = body["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.advance(Duration::hours(1));
    let t1 = clock.now();
    run_gql(&s, Some(&bob), create).await;
    let revoke = format!(r#"mutation {{ revokeApiKey(id: "{ada_key}") }}"#);
    assert_eq!(
        run_gql(&s, Some(&ada), &revoke).await["data"]["revokeApiKey"],
        true
    );
    clock.advance(Duration::hours(1));
    let t2 = clock.now();
    run_gql(
        &s,
        Some(&bob),
        r#"mutation { updateProfile(input: {name: "Bob"}) { id } }"#,
    )
    .await;
    let c = cap(&admin);

    let actions = |page: kernel::page::Page<audit_log::Model>| {
        page.items
            .into_iter()
            .map(|(_, r)| r.action)
            .collect::<Vec<_>>()
    };
    let by_user = AuditFilter {
        user_id: Some(ada.user_id),
        ..Default::default()
    };
    let got = actions(
        auth.admin_audit_logs(&t.db, &c, by_user, all())
            .await
            .unwrap(),
    );
    assert_eq!(got, ["revokeApiKey", "createApiKey"], "newest first");

    let by_action = AuditFilter {
        action: Some("createApiKey".into()),
        ..Default::default()
    };
    let page = auth
        .admin_audit_logs(&t.db, &c, by_action, all())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);

    let by_entity = AuditFilter {
        entity_type: Some("api_key".into()),
        entity_id: Some(ada_key.clone()),
        ..Default::default()
    };
    let got = actions(
        auth.admin_audit_logs(&t.db, &c, by_entity, all())
            .await
            .unwrap(),
    );
    assert_eq!(got, ["revokeApiKey", "createApiKey"]);

    let range = core_auth::admin::TimeRange::parse(Some(t1), Some(t2)).unwrap();
    let in_range = AuditFilter {
        range,
        ..Default::default()
    };
    let got = actions(
        auth.admin_audit_logs(&t.db, &c, in_range, all())
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        ["revokeApiKey", "createApiKey"],
        "[t1, t2) holds bob's key and ada's revoke"
    );
    let from_t2 = core_auth::admin::TimeRange::parse(Some(t2), None).unwrap();
    let got = actions(
        auth.admin_audit_logs(
            &t.db,
            &c,
            AuditFilter {
                range: from_t2,
                ..Default::default()
            },
            all(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(got, ["updateProfile"]);
    let before_t1 = core_auth::admin::TimeRange::parse(Some(t0), Some(t1)).unwrap();
    let got = actions(
        auth.admin_audit_logs(
            &t.db,
            &c,
            AuditFilter {
                range: before_t1,
                ..Default::default()
            },
            all(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(got, ["createApiKey"]);

    let err = core_auth::admin::TimeRange::parse(Some(t2), Some(t1)).unwrap_err();
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "to"));

    // The same filters over GraphQL.
    let doc = format!(
        r#"{{ admin {{ auditLogs(filter: {{userId: "{}", action: "createApiKey"}}) {{ nodes {{ action entityType userId }} }} }} }}"#,
        bob.user_id
    );
    let body = run_gql(&s, Some(&admin), &doc).await;
    let nodes = body["data"]["admin"]["auditLogs"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["entityType"], "api_key");
}

#[tokio::test]
async fn audit_log_pages_newest_first_with_cursors() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let s = schema(&t.db, &auth);
    for i in 0..5 {
        let doc = format!(r#"mutation {{ updateProfile(input: {{name: "n{i}"}}) {{ id }} }}"#);
        run_gql(&s, Some(&ada), &doc).await;
    }
    let page1 = run_gql(
        &s,
        Some(&admin),
        r#"{ admin { auditLogs(first: 2) { nodes { newValues } pageInfo { hasNextPage endCursor } } } }"#,
    )
    .await;
    let conn = &page1["data"]["admin"]["auditLogs"];
    assert_eq!(conn["nodes"][0]["newValues"]["name"], "n4", "{page1}");
    assert_eq!(conn["nodes"][1]["newValues"]["name"], "n3");
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let cursor = conn["pageInfo"]["endCursor"].as_str().unwrap();
    let doc = format!(
        r#"{{ admin {{ auditLogs(first: 10, after: "{cursor}") {{ nodes {{ newValues }} pageInfo {{ hasNextPage }} }} }} }}"#
    );
    let page2 = run_gql(&s, Some(&admin), &doc).await;
    let conn = &page2["data"]["admin"]["auditLogs"];
    let names: Vec<_> = conn["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["newValues"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("n2"), json!("n1"), json!("n0")]);
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn there_is_no_api_to_update_or_delete_audit_rows() {
    let (t, auth, _clock) = setup().await;
    let s = schema(&t.db, &auth);
    let body = run_gql(
        &s,
        None,
        r#"{ __schema { mutationType { fields { name } } } }"#,
    )
    .await;
    let names: Vec<String> = body["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(names.contains(&"suspenduser".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("audit")), "{names:?}");
}

#[tokio::test]
async fn lockout_writes_a_security_event() {
    let (t, auth, _clock) = setup().await;
    let (ada, _) = member(&auth, &t.db, "ada@x.com", "user").await;
    for _ in 0..5 {
        assert!(login(&auth, &t.db, "ada@x.com", WRONG).await.is_err());
    }
    let locked = events_of_kind(&t.db, kinds::LOCKOUT).await;
    assert_eq!(locked.len(), 1, "recorded when the threshold is reached");
    assert_eq!(locked[0].severity, "high");
    assert_eq!(locked[0].user_id, Some(ada.user.id));
    assert_eq!(locked[0].ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(locked[0].details.as_ref().unwrap()["failures"], 5);

    // Refused attempts during the lockout do not add events.
    for _ in 0..3 {
        let err = login(&auth, &t.db, "ada@x.com", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(code(err), Code::RateLimited);
    }
    assert_eq!(events_of_kind(&t.db, kinds::LOCKOUT).await.len(), 1);
}

#[tokio::test]
async fn failed_login_burst_is_recorded_one_failure_before_lockout() {
    let (t, auth, _clock) = setup().await;
    for _ in 0..3 {
        login(&auth, &t.db, "nobody@x.com", WRONG)
            .await
            .unwrap_err();
    }
    assert!(
        events_of_kind(&t.db, kinds::FAILED_LOGIN_BURST)
            .await
            .is_empty()
    );
    login(&auth, &t.db, "nobody@x.com", WRONG)
        .await
        .unwrap_err();
    let burst = events_of_kind(&t.db, kinds::FAILED_LOGIN_BURST).await;
    assert_eq!(burst.len(), 1);
    assert_eq!(burst[0].severity, "medium");
    assert_eq!(
        burst[0].user_id, None,
        "unknown emails are recorded without a user"
    );
    assert_eq!(burst[0].details.as_ref().unwrap()["email"], "nobody@x.com");
    assert!(events_of_kind(&t.db, kinds::LOCKOUT).await.is_empty());
}

#[tokio::test]
async fn successful_sign_ins_write_no_security_events() {
    let (t, auth, _clock) = setup().await;
    member(&auth, &t.db, "ada@x.com", "user").await;
    for _ in 0..6 {
        login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
    }
    assert_eq!(count::<security_event::Entity>(&t.db).await, 0);
}

/// The reason stored with session `id`'s revocation.
async fn revoked_reason(db: &sea_orm::DatabaseConnection, id: uuid::Uuid) -> Option<String> {
    session::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .revoked_reason
}

#[tokio::test]
async fn a_session_signed_out_by_its_owner_is_refused_but_not_reported() {
    let (t, auth, _clock) = setup().await;
    let (ada, actor) = member(&auth, &t.db, "ada@x.com", "user").await;
    auth.logout(&t.db, &actor).await.unwrap();
    assert_eq!(
        revoked_reason(&t.db, actor.session_id().unwrap())
            .await
            .as_deref(),
        Some("logout")
    );
    for _ in 0..3 {
        let err = auth.authenticate(&t.db, &ada.token).await.unwrap_err();
        assert_eq!(code(err), Code::Unauthenticated);
    }
    assert!(
        events_of_kind(&t.db, kinds::SUSPICIOUS_TOKEN_USE)
            .await
            .is_empty(),
        "a stale tab sending its old token is not an attack"
    );
}

#[tokio::test]
async fn a_session_ended_by_a_password_change_writes_one_suspicious_token_event() {
    let (t, auth, clock) = setup().await;
    let (ada, _) = member(&auth, &t.db, "ada@x.com", "user").await;
    let (_, changer) = {
        let other = login(&auth, &t.db, "ada@x.com", PASSWORD).await.unwrap();
        let actor = auth.authenticate(&t.db, &other.token).await.unwrap();
        (other, actor)
    };
    let new = core_auth::password::NewPassword::parse("newPassword", "brand new secret".into())
        .unwrap()
        .hash()
        .await
        .unwrap();
    auth.change_password(&t.db, &changer, PASSWORD.into(), new)
        .await
        .unwrap();
    let first = auth.authenticate(&t.db, &ada.token).await.unwrap_err();
    assert_eq!(code(first), Code::Unauthenticated);
    let revoked = session::Entity::find()
        .filter(session::Column::RevokedAt.is_not_null())
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].revoked_reason.as_deref(),
        Some("password_changed")
    );

    for _ in 0..2 {
        auth.authenticate(&t.db, &ada.token).await.unwrap_err();
    }
    let events = events_of_kind(&t.db, kinds::SUSPICIOUS_TOKEN_USE).await;
    assert_eq!(
        events.len(),
        1,
        "repeats within the hour are not recorded again"
    );
    assert_eq!(events[0].user_id, Some(ada.user.id));
    assert_eq!(events[0].details.as_ref().unwrap()["source"], "session");
    let text = format!("{:?}", events[0]);
    assert!(!text.contains(&ada.token), "the token is never recorded");

    clock.advance(Duration::hours(2));
    auth.authenticate(&t.db, &ada.token).await.unwrap_err();
    assert_eq!(
        events_of_kind(&t.db, kinds::SUSPICIOUS_TOKEN_USE)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_session_revoked_before_reasons_were_kept_is_still_reported() {
    let (t, auth, _clock) = setup().await;
    let (ada, actor) = member(&auth, &t.db, "ada@x.com", "user").await;
    auth.logout(&t.db, &actor).await.unwrap();
    // As a row revoked before the reason column existed reads.
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedReason,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .exec(&t.db)
        .await
        .unwrap();
    auth.authenticate(&t.db, &ada.token).await.unwrap_err();
    assert_eq!(
        events_of_kind(&t.db, kinds::SUSPICIOUS_TOKEN_USE)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn revoked_api_key_use_writes_a_suspicious_token_event() {
    let (t, auth, _clock) = setup().await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let (key, secret) = api_key(&auth, &t.db, &ada, "ci", None, None).await;
    auth.revoke_api_key(&t.db, &ada, key.id).await.unwrap();
    let stored = core_auth::entity::api_key::Entity::find_by_id(key.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.revoked_reason.as_deref(), Some("revoked_by_owner"));
    auth.authenticate(&t.db, &secret).await.unwrap_err();
    let events = events_of_kind(&t.db, kinds::SUSPICIOUS_TOKEN_USE).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].details.as_ref().unwrap()["source"], "api_key");
    assert_eq!(
        events[0].details.as_ref().unwrap()["sourceId"],
        key.id.to_string()
    );
}

#[tokio::test]
async fn unknown_or_expired_tokens_write_no_event() {
    let (t, auth, clock) = setup().await;
    let (ada, _) = member(&auth, &t.db, "ada@x.com", "user").await;
    for token in ["sess_random", "ak_random", "whatever"] {
        auth.authenticate(&t.db, token).await.unwrap_err();
    }
    clock.advance(Duration::days(40));
    auth.authenticate(&t.db, &ada.token).await.unwrap_err();
    assert_eq!(count::<security_event::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn resolving_a_security_event_records_who_and_when_once() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let id = record_event(
        &t.db,
        "credential_reveal",
        Severity::Critical,
        None,
        Some("198.51.100.1"),
        None,
    )
    .await
    .unwrap();
    record_event(&t.db, kinds::LOCKOUT, Severity::High, None, None, None)
        .await
        .unwrap();
    let s = schema(&t.db, &auth);

    let doc = format!(
        r#"mutation {{ resolveSecurityEvent(input: {{id: "{id}", note: "known pentest"}}) {{ resolved resolvedBy resolutionNote resolvedAt }} }}"#
    );
    let body = run_gql(&s, Some(&admin), &doc).await;
    let ev = &body["data"]["resolveSecurityEvent"];
    assert_eq!(ev["resolved"], true, "{body}");
    assert_eq!(ev["resolvedBy"], admin.user_id.to_string());
    assert_eq!(ev["resolutionNote"], "known pentest");

    let again = run_gql(&s, Some(&admin), &doc).await;
    assert_eq!(gql_code(&again), "INVALID_TRANSITION");
    let rows = access_rows(&t.db, "admin.security_events.resolve").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].resource_id.as_deref(),
        Some(id.to_string().as_str())
    );
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("resolveSecurityEvent"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(
        audited.len(),
        1,
        "only the successful resolution is audited"
    );

    let c = cap(&admin);
    let open = EventFilter {
        unresolved: Some(true),
        ..Default::default()
    };
    let page = auth
        .admin_security_events(&t.db, &c, open, all())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].1.kind, kinds::LOCKOUT);
    let critical = EventFilter {
        severity: Some(Severity::Critical),
        ..Default::default()
    };
    let page = auth
        .admin_security_events(&t.db, &c, critical, all())
        .await
        .unwrap();
    assert_eq!(page.items[0].1.id, id);
    let by_kind = EventFilter {
        kind: Some(kinds::LOCKOUT.into()),
        unresolved: Some(false),
        ..Default::default()
    };
    assert!(
        auth.admin_security_events(&t.db, &c, by_kind, all())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let note = ResolutionNote::parse(" ".into()).unwrap_err();
    assert!(matches!(note, kernel::Error::BadInput { ref field, .. } if field == "note"));
}

#[tokio::test]
async fn security_audit_log_filters_by_user_action_resource_and_time() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, other) = member(&auth, &t.db, "b@x.com", "admin").await;
    let before = kernel::clock::SystemClock.now();
    record_access(
        &t.db,
        &admin,
        "credential.reveal",
        "credential",
        Some("c1"),
        Some(json!({"apiKey": "ak_secret", "n": 1})),
    )
    .await
    .unwrap();
    record_access(
        &t.db,
        &other,
        "credential.reveal",
        "credential",
        Some("c2"),
        None,
    )
    .await
    .unwrap();
    record_access(&t.db, &other, "admin.users.read", "user", Some("u1"), None)
        .await
        .unwrap();
    let c = cap(&admin);

    let mine = AccessFilter {
        user_id: Some(admin.user_id),
        ..Default::default()
    };
    let page = auth
        .admin_security_audit_log(&t.db, &c, mine, all())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let details = page.items[0].1.details.clone().unwrap();
    assert_eq!(
        details["apiKey"], "[REDACTED]",
        "secrets in details are redacted"
    );
    assert_eq!(details["n"], 1);

    let reveals = AccessFilter {
        action: Some("credential.reveal".into()),
        ..Default::default()
    };
    assert_eq!(
        auth.admin_security_audit_log(&t.db, &c, reveals, all())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let one = AccessFilter {
        resource_type: Some("credential".into()),
        resource_id: Some("c2".into()),
        ..Default::default()
    };
    let page = auth
        .admin_security_audit_log(&t.db, &c, one, all())
        .await
        .unwrap();
    assert_eq!(page.items[0].1.user_id, Some(other.user_id));
    let later =
        core_auth::admin::TimeRange::parse(Some(before + Duration::hours(1)), None).unwrap();
    let none = AccessFilter {
        range: later,
        ..Default::default()
    };
    assert!(
        auth.admin_security_audit_log(&t.db, &c, none, all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let since = core_auth::admin::TimeRange::parse(Some(before), None).unwrap();
    let every = AccessFilter {
        range: since,
        ..Default::default()
    };
    // The three records above, plus one for each of the four reads of the log before this one.
    let rows = auth
        .admin_security_audit_log(&t.db, &c, every, all())
        .await
        .unwrap()
        .items;
    let reads = rows
        .iter()
        .filter(|(_, r)| r.action == "admin.security_audit_log.list")
        .count();
    assert_eq!((rows.len() - reads, reads), (3, 4));
}

#[tokio::test]
async fn bootstrap_set_role_makes_the_first_superadmin_and_records_it() {
    let (t, auth, clock) = setup().await;
    let (ada, _) = member(&auth, &t.db, "ada@x.com", "user").await;
    let email = Email::parse("ADA@x.com").unwrap();
    let updated = bootstrap_set_role(&t.db, &email, Role::Superadmin, clock.now())
        .await
        .unwrap();
    assert_eq!(updated.role, "superadmin");
    let now_root = actor(&auth, &t.db, &ada).await;
    assert!(cap(&now_root).is_superadmin());
    let rows = access_rows(&t.db, "cli.users.set_role").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].details.as_ref().unwrap()["from"], "user");
    assert_eq!(rows[0].details.as_ref().unwrap()["to"], "superadmin");

    let missing = Email::parse("nobody@x.com").unwrap();
    let err = bootstrap_set_role(&t.db, &missing, Role::Admin, clock.now())
        .await
        .refused();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn suspended_users_are_refused_on_sessions_not_yet_revoked() {
    let (t, auth, clock) = setup().await;
    let (session, victim) = member(&auth, &t.db, "v@x.com", "user").await;
    // Suspended directly in the table, as an operator might: the session row is still live.
    suspend(&t.db, victim.user_id, clock.now()).await;
    let err = auth.authenticate(&t.db, &session.token).await.unwrap_err();
    assert_eq!(code(err), Code::Unauthenticated);
    assert_eq!(
        count::<security_event::Entity>(&t.db).await,
        0,
        "a live session of a suspended user is not a revoked token"
    );
}

#[tokio::test]
async fn a_refused_admin_mutation_leaves_no_trace() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (target, _) = member(&auth, &t.db, "t@x.com", "user").await;
    let s = schema(&t.db, &auth);
    let doc = format!(
        r#"mutation {{ setUserRole(input: {{id: "{}", role: SUPERADMIN}}) {{ role }} }}"#,
        target.user.id
    );
    assert_eq!(
        gql_code(&run_gql(&s, Some(&admin), &doc).await),
        "FORBIDDEN"
    );
    let stored = user::Entity::find_by_id(target.user.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role, "user");
    assert_eq!(count::<audit_log::Entity>(&t.db).await, 0);
    assert_eq!(count::<security_audit_log::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn concurrent_suspensions_of_one_user_suspend_once() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, victim) = member(&auth, &t.db, "v@x.com", "user").await;
    let admin_cap = cap(&admin);
    // Each attempt runs in its own transaction, all started before any checks,
    // as concurrent requests do; without the row lock on PostgreSQL both pass
    // the "not yet suspended" check and both write.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(4));
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let (db, auth, admin_cap, start) =
                (t.db.clone(), auth.clone(), admin_cap.clone(), start.clone());
            tokio::spawn(async move {
                use sea_orm::TransactionTrait;
                let txn = db.begin().await.unwrap();
                if !t_is_sqlite(&db) {
                    start.wait().await;
                }
                let reason = SuspensionReason::parse(format!("attempt {i}")).unwrap();
                let out = auth
                    .suspend_user(&txn, &admin_cap, victim.user_id, reason)
                    .await;
                if out.is_ok() {
                    txn.commit().await.unwrap();
                }
                out.map(|_| ()).map_err(|e| e.code())
            })
        })
        .collect();
    let mut results = Vec::new();
    for a in attempts {
        results.push(a.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.err())
            .all(|c| c == Code::InvalidTransition),
        "{results:?}"
    );
    let suspends = security_audit_log::Entity::find()
        .filter(security_audit_log::Column::Action.eq("admin.users.suspend"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(suspends.len(), 1);
}

fn t_is_sqlite(db: &sea_orm::DatabaseConnection) -> bool {
    db.get_database_backend() == sea_orm::DbBackend::Sqlite
}

#[test]
fn every_revocation_reason_is_one_the_database_accepts() {
    use core_auth::session::RevocationReason as R;
    let stored = migration::m20261128_000017_revocation_reasons::REVOCATION_REASONS;
    // A new reason stops this compiling until it is listed here too.
    let listed = |reason: R| match reason {
        R::Logout | R::PasswordChanged | R::PasswordReset | R::Suspended | R::RevokedByOwner => {
            reason
        }
    };
    let all = [
        R::Logout,
        R::PasswordChanged,
        R::PasswordReset,
        R::Suspended,
        R::RevokedByOwner,
    ]
    .map(listed);
    assert_eq!(all.len(), stored.len());
    for reason in all {
        assert!(stored.contains(&reason.as_str()), "{reason:?}");
    }
}
