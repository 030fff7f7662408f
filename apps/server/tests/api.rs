//! The API contract over HTTP: auth, errors, statement counts, endpoints.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use common::{code, spawn_app, spawn_app_with_auth};
use core_auth::AuthSettings;
use core_auth::organizations::OrgSettings;
use sea_orm::ConnectionTrait;

#[actix_web::test]
async fn register_login_and_me_work_end_to_end() {
    let app = spawn_app().await;
    app.register("Ada@Example.com").await;
    let body = app
        .gql(r#"mutation { login(input: {email: "ada@example.com", password: "correct horse"}) { token user { email role } } }"#, None)
        .await;
    let token = body["data"]["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(body["data"]["login"]["user"]["role"], "user");
    let me = app
        .gql("{ me { email name role createdAt } }", Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com");
    let anonymous = app.gql("{ me { email } }", None).await;
    assert!(anonymous["data"]["me"].is_null());
}

#[actix_web::test]
async fn bad_tokens_are_unauthenticated_with_401() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            serde_json::json!({ "query": "{ me { email } }" }),
            Some("sess_forged"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let req = TestRequest::post()
        .uri("/graphql")
        .insert_header(("authorization", "Basic Zm9vOmJhcg=="))
        .set_json(serde_json::json!({ "query": "{ __typename }" }));
    assert_eq!(app.send(req).await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn protected_fields_need_credentials() {
    let app = spawn_app().await;
    let body = app.gql("{ apiKeys { nodes { id } } }", None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let body = app.gql("mutation { logout }", None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

#[actix_web::test]
async fn read_only_api_keys_cannot_run_mutations() {
    let app = spawn_app().await;
    let token = app.register("ro@example.com").await;
    let body = app
        .gql(
            r#"mutation { createApiKey(input: {name: "ro", permissions: [READ]}) { secret } }"#,
            Some(&token),
        )
        .await;
    let secret = body["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let me = app.gql("{ me { email } }", Some(&secret)).await;
    assert_eq!(me["data"]["me"]["email"], "ro@example.com");
    let body = app
        .gql(
            r#"mutation { updateProfile(input: {name: "x"}) { name } }"#,
            Some(&secret),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}

#[actix_web::test]
async fn another_users_key_id_is_not_found() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let body = app
        .gql(
            r#"mutation { createApiKey(input: {name: "a"}) { apiKey { id } } }"#,
            Some(&a),
        )
        .await;
    let id = body["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let body = app
        .gql(
            &format!(r#"mutation {{ revokeApiKey(id: "{id}") }}"#),
            Some(&b),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    let body = app
        .gql(
            &format!(r#"mutation {{ revokeApiKey(id: "{id}") }}"#),
            Some(&a),
        )
        .await;
    assert_eq!(body["data"]["revokeApiKey"], true);
    let body = app
        .gql(r#"mutation { revokeApiKey(id: "nonsense") }"#, Some(&a))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[actix_web::test]
async fn a_refused_registration_writes_nothing() {
    let app = spawn_app().await;
    app.register("taken@example.com").await;
    let users_before = count(&app, "users").await;
    let sessions_before = count(&app, "sessions").await;
    let body = app
        .gql(r#"mutation { register(input: {email: "TAKEN@example.com", password: "another pass"}) { token } }"#, None)
        .await;
    assert_eq!(code(&body), "CONFLICT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");
    assert_eq!(count(&app, "users").await, users_before);
    assert_eq!(count(&app, "sessions").await, sessions_before);
}

async fn count(app: &common::TestApp, table: &str) -> i64 {
    let db = &app.db.db;
    let stmt = sea_orm::Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) AS n FROM {table}"),
    );
    let row = db.query_one_raw(stmt).await.expect("count").expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

#[actix_web::test]
async fn internal_errors_are_masked_and_carry_a_request_id() {
    let app = spawn_app().await;
    let token = app.register("mask@example.com").await;
    let db = &app.db.db;
    db.execute_unprepared("DROP TABLE api_keys")
        .await
        .expect("drop");
    let body = app.gql("{ apiKeys { nodes { id } } }", Some(&token)).await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    let err = &body["errors"][0];
    assert_eq!(err["message"], "internal server error");
    assert!(
        err["extensions"]["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(!body.to_string().to_lowercase().contains("api_keys"));
}

#[actix_web::test]
async fn api_keys_page_costs_the_same_statements_for_3_or_60_keys() {
    let app = spawn_app().await;
    let few = app.register("few@example.com").await;
    let many = app.register("many@example.com").await;
    for (token, n) in [(&few, 3), (&many, 60)] {
        for i in 0..n {
            let q = format!(r#"mutation {{ createApiKey(input: {{name: "k{i}"}}) {{ secret }} }}"#);
            assert!(app.gql(&q, Some(token)).await["errors"].is_null());
        }
    }
    let query = "{ apiKeys(first: 50) { nodes { id name prefix permissions } pageInfo { hasNextPage } } me { email profile { companyName } preferences { theme } } }";
    let mut costs = Vec::new();
    for token in [&few, &many] {
        app.db.reset_statements();
        let body = app.gql(query, Some(token)).await;
        assert!(body["errors"].is_null(), "{body}");
        costs.push(app.db.statements());
    }
    let body = app.gql(query, Some(&many)).await;
    assert_eq!(
        body["data"]["apiKeys"]["nodes"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(
        costs[0], costs[1],
        "statement count grew with rows: {costs:?}"
    );
    // authenticate (1) + api keys page (1) + me (1) + profile loader (1) + preferences loader (1)
    assert_eq!(costs[0], 5, "{costs:?}");
}

#[actix_web::test]
async fn probes_metrics_and_graphiql_answer() {
    let app = spawn_app().await;
    let get = |uri: &str| TestRequest::get().uri(uri);
    let app_svc = actix_web::test::init_service(
        actix_web::App::new().configure(server::routes(app.state.clone())),
    )
    .await;
    for (uri, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/graphiql", 200),
        ("/", 302),
    ] {
        let res = actix_web::test::call_service(&app_svc, get(uri).to_request()).await;
        assert_eq!(res.status().as_u16(), status, "{uri}");
    }
    app.post_json(
        serde_json::json!({ "query": "query Probe { __typename }", "operationName": "Probe" }),
        None,
    )
    .await;
    let res = actix_web::test::call_service(&app_svc, get("/metrics").to_request()).await;
    let text = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
    assert!(
        text.contains(r#"graphql_requests_total{operation="Probe",outcome="ok"} 1"#),
        "{text}"
    );
}

#[actix_web::test]
async fn each_successful_mutation_writes_one_audit_row_and_refusals_none() {
    let app = spawn_app().await;
    let token = app.register("audit@example.com").await;
    assert_eq!(count(&app, "audit_logs").await, 1, "register is audited");
    let body = app
        .gql(
            r#"mutation { createApiKey(input: {name: "ci"}) { secret apiKey { id } } }"#,
            Some(&token),
        )
        .await;
    let secret = body["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let key_id = body["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(count(&app, "audit_logs").await, 2);

    app.gql("{ me { email } apiKeys { nodes { id } } }", Some(&token))
        .await;
    let refused = app
        .gql(
            r#"mutation { revokeApiKey(id: "01a20628-8f2d-7376-9d5a-fc9c1069799e") }"#,
            Some(&token),
        )
        .await;
    assert_eq!(code(&refused), "NOT_FOUND");
    assert_eq!(
        count(&app, "audit_logs").await,
        2,
        "queries and refusals write nothing"
    );

    let db = &app.db.db;
    let stmt = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT action, entity_type, entity_id, new_values, request_id FROM audit_logs WHERE action = 'createApiKey'",
    );
    let row = db.query_one_raw(stmt).await.expect("query").expect("row");
    assert_eq!(row.try_get::<String>("", "entity_type").unwrap(), "api_key");
    assert_eq!(row.try_get::<String>("", "entity_id").unwrap(), key_id);
    assert_ne!(
        row.try_get::<uuid::Uuid>("", "request_id").unwrap(),
        uuid::Uuid::nil()
    );
    let new_values: serde_json::Value = row.try_get("", "new_values").unwrap();
    assert_eq!(new_values["name"], "ci");
    let text = new_values.to_string();
    assert!(!text.contains(&secret), "{text}");
    assert!(!text.contains(&kernel::crypto::hash_token(&secret)));
}

#[actix_web::test]
async fn readiness_needs_every_migration_applied() {
    let app = spawn_app().await;
    let ready = |app: &common::TestApp| {
        let state = app.state.clone();
        async move {
            let svc = actix_web::test::init_service(
                actix_web::App::new().configure(server::routes(state)),
            )
            .await;
            let res =
                actix_web::test::call_service(&svc, TestRequest::get().uri("/readyz").to_request())
                    .await;
            res.status().as_u16()
        }
    };
    assert_eq!(ready(&app).await, 200);
    <migration::Migrator as migration::MigratorTrait>::down(&app.db.db, Some(1))
        .await
        .expect("roll back one");
    assert_eq!(ready(&app).await, 503);
}

#[actix_web::test]
async fn first_profile_and_preferences_update_creates_them() {
    let app = spawn_app().await;
    let token = app.register("profile@example.com").await;
    let body = app
        .gql(
            r#"mutation { updateProfile(input: {name: "Ada", companyName: "Acme", website: "https://acme.test"}) { name profile { companyName website } } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"]["companyName"], "Acme",
        "{body}"
    );
    assert_eq!(body["data"]["updateProfile"]["name"], "Ada");
    let body = app
        .gql(
            r#"mutation { updatePreferences(input: {theme: DARK}) { theme } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(body["data"]["updatePreferences"]["theme"], "DARK", "{body}");
    let body = app
        .gql(
            r#"mutation { updateProfile(input: {website: "ftp://acme.test"}) { name } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "website");
    let me = app
        .gql(
            "{ me { name profile { companyName website } preferences { theme } } }",
            Some(&token),
        )
        .await;
    assert_eq!(me["data"]["me"]["profile"]["website"], "https://acme.test");
    assert_eq!(me["data"]["me"]["preferences"]["theme"], "DARK");
}

/// Waits until no outbox row is waiting for or in delivery.
async fn mail_settled(app: &common::TestApp) {
    use kernel::mail::outbox;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    for _ in 0..200 {
        let busy = outbox::Entity::find()
            .filter(outbox::Column::Status.is_in([outbox::PENDING, outbox::SENDING]))
            .count(&app.db.db)
            .await
            .expect("count outbox");
        if busy == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("mail did not settle");
}

/// Creates an organization owned by `owner` and returns its id.
async fn create_org(app: &common::TestApp, owner: &str, slug: &str) -> String {
    let q = format!(
        r#"mutation {{ createOrganization(input: {{name: "Org", slug: "{slug}"}}) {{ id myRole }} }}"#
    );
    let body = app.gql(&q, Some(owner)).await;
    assert_eq!(
        body["data"]["createOrganization"]["myRole"], "OWNER",
        "{body}"
    );
    body["data"]["createOrganization"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Registers `n` users and brings each into `org` through invite and accept.
async fn add_members(app: &common::TestApp, owner: &str, org: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let email = format!("{prefix}{i}@example.com");
        let token = app.register_verified(&email).await;
        let q = format!(
            r#"mutation {{ inviteMember(input: {{organizationId: "{org}", email: "{email}", role: MEMBER}}) {{ id status }} }}"#
        );
        let body = app.gql(&q, Some(owner)).await;
        assert_eq!(body["data"]["inviteMember"]["status"], "PENDING", "{body}");
        let id = body["data"]["inviteMember"]["id"].as_str().expect("id");
        let q = format!(r#"mutation {{ acceptInvitation(id: "{id}") {{ role }} }}"#);
        let body = app.gql(&q, Some(&token)).await;
        assert_eq!(body["data"]["acceptInvitation"]["role"], "MEMBER", "{body}");
    }
}

/// Identity rules with these invitation sending limits.
fn invitation_limits(per_inviter_per_hour: u64, per_organization_per_day: u64) -> AuthSettings {
    AuthSettings {
        organizations: OrgSettings {
            invitations_per_inviter_per_hour: per_inviter_per_hour,
            invitations_per_organization_per_day: per_organization_per_day,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[actix_web::test]
async fn organization_members_with_users_cost_the_same_statements_for_3_or_25_members() {
    // One owner invites all 24 members, more than the default hourly limit.
    let app = spawn_app_with_auth(invitation_limits(100, 100)).await;
    let small_owner = app.register("small@example.com").await;
    let large_owner = app.register("large@example.com").await;
    let small = create_org(&app, &small_owner, "small").await;
    let large = create_org(&app, &large_owner, "large").await;
    add_members(&app, &small_owner, &small, "s", 2).await;
    add_members(&app, &large_owner, &large, "l", 24).await;

    // Invitations queue mail that is delivered in the background; let it
    // settle so that only the query below is counted.
    mail_settled(&app).await;
    let mut costs = Vec::new();
    for (token, org, n) in [(&small_owner, &small, 3), (&large_owner, &large, 25)] {
        let q = format!(
            r#"{{ organization(id: "{org}") {{ name myRole members(first: 50) {{ nodes {{ role user {{ email name }} }} }} }} }}"#
        );
        app.db.reset_statements();
        let body = app.gql(&q, Some(token)).await;
        costs.push(app.db.statements());
        let nodes = body["data"]["organization"]["members"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(nodes.len(), n);
        assert!(
            nodes.iter().all(|m| m["user"]["email"].is_string()),
            "{body}"
        );
    }
    assert_eq!(
        costs[0], costs[1],
        "statement count grew with rows: {costs:?}"
    );
    // authenticate (1) + organization (1) + membership check (1) + members page (1) + user loader (1)
    assert_eq!(costs[0], 5, "{costs:?}");

    // Every organization mutation was audited by the hook.
    let db = &app.db.db;
    let stmt = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM audit_logs WHERE action IN ('createOrganization', 'inviteMember', 'acceptInvitation')",
    );
    let row = db.query_one_raw(stmt).await.expect("count").expect("row");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 2 + 26 * 2);

    // An outsider is told the organization does not exist.
    let body = app
        .gql(
            &format!(r#"{{ organization(id: "{large}") {{ name }} }}"#),
            Some(&small_owner),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
}

#[actix_web::test]
async fn an_invitation_past_the_hourly_limit_is_rate_limited_with_retry_after_and_mails_nothing() {
    use core_auth::entity::invitation;
    use kernel::mail::outbox;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let app = spawn_app_with_auth(invitation_limits(2, 100)).await;
    let ada = app.register_verified("ada@example.com").await;
    let org = create_org(&app, &ada, "acme").await;
    let invite = |email: &str| {
        format!(
            r#"mutation {{ inviteMember(input: {{organizationId: "{org}", email: "{email}", role: MEMBER}}) {{ id }} }}"#
        )
    };
    let written = async || {
        let db = &app.db.db;
        (
            invitation::Entity::find().count(db).await.expect("count"),
            outbox::Entity::find().count(db).await.expect("count"),
        )
    };
    for email in ["a@example.com", "b@example.com"] {
        let body = app.gql(&invite(email), Some(&ada)).await;
        assert!(body["data"]["inviteMember"]["id"].is_string(), "{body}");
    }
    let before = written().await;

    let body = app.gql(&invite("c@example.com"), Some(&ada)).await;

    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    let retry = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter: {body}"));
    assert!((3500..=3600).contains(&retry), "{retry}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(written().await, before, "the refused invitation wrote rows");
}

#[actix_web::test]
async fn another_users_organization_and_invitation_ids_are_not_found() {
    let app = spawn_app().await;
    let ada = app.register_verified("ada@example.com").await;
    let bob = app.register_verified("bob@example.com").await;
    let eve = app.register_verified("eve@example.com").await;
    let org = create_org(&app, &ada, "acme").await;
    let body = app
        .gql(
            &format!(
                r#"mutation {{ inviteMember(input: {{organizationId: "{org}", email: "Bob@Example.com", role: ADMIN}}) {{ id email role }} }}"#
            ),
            Some(&ada),
        )
        .await;
    assert_eq!(
        body["data"]["inviteMember"]["email"], "bob@example.com",
        "{body}"
    );
    let inv = body["data"]["inviteMember"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let mine = app
        .gql(
            "{ myInvitations { nodes { id role status organization { slug } } } }",
            Some(&bob),
        )
        .await;
    let nodes = &mine["data"]["myInvitations"]["nodes"];
    assert_eq!(nodes[0]["id"], inv.as_str(), "{mine}");
    assert_eq!(nodes[0]["organization"]["slug"], "acme");
    let theirs = app
        .gql("{ myInvitations { nodes { id } } }", Some(&eve))
        .await;
    assert_eq!(
        theirs["data"]["myInvitations"]["nodes"],
        serde_json::json!([])
    );

    for q in [
        format!(r#"mutation {{ acceptInvitation(id: "{inv}") {{ id }} }}"#),
        format!(r#"mutation {{ rejectInvitation(id: "{inv}") {{ id }} }}"#),
        format!(r#"mutation {{ cancelInvitation(id: "{inv}") {{ id }} }}"#),
        format!(r#"{{ organization(id: "{org}") {{ members {{ nodes {{ id }} }} }} }}"#),
        format!(r#"mutation {{ leaveOrganization(id: "{org}") }}"#),
        format!(r#"mutation {{ deleteOrganization(id: "{org}") }}"#),
    ] {
        let body = app.gql(&q, Some(&eve)).await;
        assert_eq!(code(&body), "NOT_FOUND", "{q}: {body}");
    }

    let body = app
        .gql(
            &format!(r#"mutation {{ acceptInvitation(id: "{inv}") {{ role }} }}"#),
            Some(&bob),
        )
        .await;
    assert_eq!(body["data"]["acceptInvitation"]["role"], "ADMIN", "{body}");
    let orgs = app
        .gql("{ myOrganizations { nodes { slug myRole } } }", Some(&bob))
        .await;
    assert_eq!(
        orgs["data"]["myOrganizations"]["nodes"],
        serde_json::json!([{ "slug": "acme", "myRole": "ADMIN" }])
    );
}

#[actix_web::test]
async fn password_reset_by_mail_works_end_to_end() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    let old_session = app.register("ada@example.com").await;
    let body = app
        .gql(
            r#"mutation { requestPasswordReset(email: "Ada@Example.com") }"#,
            None,
        )
        .await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");

    let mail = kernel::mail::outbox::Entity::find()
        .filter(kernel::mail::outbox::Column::Recipient.eq("ada@example.com"))
        .one(&app.db.db)
        .await
        .unwrap()
        .expect("reset mail in the outbox");
    let link = mail
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:8080/reset-password?token="))
        .expect("link built from PUBLIC_URL");
    let token = link.split_once("?token=").unwrap().1;

    let body = app
        .gql(
            &format!(
                r#"mutation {{ resetPassword(input: {{token: "{token}", newPassword: "a brand new passphrase"}}) }}"#
            ),
            None,
        )
        .await;
    assert_eq!(body["data"]["resetPassword"], true, "{body}");

    let body = app.gql("{ me { email } }", Some(&old_session)).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "old sessions are revoked");
    let body = app
        .gql(r#"mutation { login(input: {email: "ada@example.com", password: "a brand new passphrase"}) { token user { emailVerified } } }"#, None)
        .await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    assert_eq!(body["data"]["login"]["user"]["emailVerified"], true);
    let body = app
        .gql(r#"mutation { login(input: {email: "ada@example.com", password: "correct horse"}) { token } }"#, None)
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

#[actix_web::test]
async fn non_admin_gets_forbidden_from_admin_users() {
    let app = spawn_app().await;
    let token = app.register("plain@example.com").await;
    let body = app
        .gql("{ admin { users { nodes { email } } } }", Some(&token))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"].is_null() || body["data"]["admin"].is_null());
    let body = app
        .gql("{ admin { users { nodes { email } } } }", None)
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
}

#[actix_web::test]
async fn an_admin_lists_users_and_sees_their_flags_over_http() {
    let app = spawn_app().await;
    let token = app.register("boss@example.com").await;
    let db = &app.state.db;
    db.execute_unprepared("UPDATE users SET role = 'admin' WHERE email = 'boss@example.com'")
        .await
        .expect("promote");
    let body = app
        .gql(
            r#"{ admin { users(search: "BOSS") { nodes { email role } } } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(
        body["data"]["admin"]["users"]["nodes"][0]["role"], "admin",
        "{body}"
    );
    let body = app
        .gql(
            r#"mutation { createFeatureFlag(input: {name: "beta", enabled: true, rolloutPercentage: 100}) { name } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(body["data"]["createFeatureFlag"]["name"], "beta", "{body}");
    let body = app.gql("{ featureFlags }", Some(&token)).await;
    assert_eq!(body["data"]["featureFlags"][0], "beta", "{body}");
}
