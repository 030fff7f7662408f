//! `server user set-role`: the bootstrap path for the first superadmin.

mod common;

use common::spawn_app;
use kernel::actor::Role;
use sea_orm::{ConnectionTrait, Statement};

async fn role_of(db: &sea_orm::DatabaseConnection, email: &str) -> String {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => "SELECT role FROM users WHERE email = $1",
                _ => "SELECT role FROM users WHERE email = ?",
            },
            [email.into()],
        ))
        .await
        .unwrap()
        .expect("user row");
    row.try_get("", "role").unwrap()
}

#[actix_web::test]
async fn set_role_command_makes_a_superadmin_who_can_then_use_admin() {
    let app = spawn_app().await;
    let token = app.register("ada@example.com").await;
    let db = &app.state.db;
    let before = app
        .gql("{ admin { users { nodes { email } } } }", Some(&token))
        .await;
    assert_eq!(common::code(&before), "FORBIDDEN");

    let line = server::user_cli::set_role(db, "ADA@example.com", Role::Superadmin)
        .await
        .unwrap();
    assert_eq!(line, "ada@example.com is now superadmin");
    assert_eq!(role_of(db, "ada@example.com").await, "superadmin");

    // The same session is a superadmin on its next request.
    let body = app
        .gql(
            r#"{ admin { securityAuditLog(filter: {action: "cli.users.set_role"}) { nodes { action details } } } }"#,
            Some(&token),
        )
        .await;
    let nodes = &body["data"]["admin"]["securityAuditLog"]["nodes"];
    assert_eq!(nodes[0]["details"]["to"], "superadmin", "{body}");
}

#[actix_web::test]
async fn set_role_command_refuses_unknown_or_malformed_emails() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let err = server::user_cli::set_role(db, "nobody@example.com", Role::Admin)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no account"), "{err}");
    let err = server::user_cli::set_role(db, "not an email", Role::Admin)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("email"), "{err}");
}
