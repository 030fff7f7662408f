//! The credential vault's configuration and API: where keys come from, the
//! vault over HTTP, and `server vault rotate` over every sealed table.

mod common;

use agents::browser::{self, BrowserContextFields, NewBrowserContext};
use agents::entity::browser_context;
use common::{code, spawn_app};
use core_auth::entity::credential;
use core_auth::vault::NewCredential;
use kernel::actor::{Actor, Credential, Role};
use kernel::crypto::KeyRing;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use server::config::{AppEnv, Config};
use server::vault::{KEY_FILE_NAME, key_file_path, key_ring, rotate_all, rotation_line};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("vault-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_without_keys(env: AppEnv, dir: &TempDir) -> Config {
    let mut config = Config::for_tests();
    config.app_env = env;
    config.vault_keys = None;
    config.vault_keys_file = None;
    config.database_url = format!("sqlite://{}/app.db?mode=rwc", dir.0.display());
    config
}

#[test]
fn production_config_without_vault_keys_is_refused_naming_the_variable() {
    let dir = TempDir::new();
    let config = config_without_keys(AppEnv::Production, &dir);
    let message = key_ring(&config).unwrap_err().to_string();
    assert!(message.contains("VAULT_KEYS"), "{message}");
    assert!(message.contains("APP_ENV=production"), "{message}");
    assert!(
        !dir.0.join(KEY_FILE_NAME).exists(),
        "production never invents a key"
    );

    let mut with_keys = config;
    with_keys.vault_keys = Some(KeyRing::generate_entry(1).unwrap().parse().unwrap());
    assert!(key_ring(&with_keys).is_ok());
}

#[test]
fn production_server_without_vault_keys_stops_at_start_up_with_the_message() {
    let dir = TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("APP_ENV", "production")
        .env_remove("VAULT_KEYS")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/app.db?mode=rwc", dir.0.display()),
        )
        .env("BIND_ADDR", "127.0.0.1:0")
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started without VAULT_KEYS in production");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("VAULT_KEYS must be set when APP_ENV=production"),
        "{stderr}"
    );
}

#[test]
fn a_server_database_without_vault_keys_is_refused_even_in_development() {
    let dir = TempDir::new();
    let mut config = config_without_keys(AppEnv::Development, &dir);
    config.database_url = "postgres://postgres@127.0.0.1:5432/app".into();
    config.vault_keys_file = Some(dir.0.join(KEY_FILE_NAME));
    let message = key_ring(&config).unwrap_err().to_string();
    assert!(message.contains("VAULT_KEYS"), "{message}");
    assert!(
        !dir.0.join(KEY_FILE_NAME).exists(),
        "no key is invented for a server database"
    );
}

#[test]
fn the_default_key_file_is_created_once_beside_the_database_and_reused() {
    let dir = TempDir::new();
    let config = config_without_keys(AppEnv::Development, &dir);
    let path = dir.0.join(KEY_FILE_NAME);
    assert_eq!(key_file_path(&config), path);

    let first = key_ring(&config).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the key");
    }
    let second = key_ring(&config).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "reused, not regenerated"
    );
    let sealed = first.seal(b"secret", b"aad").unwrap();
    assert_eq!(second.open(&sealed, b"aad").unwrap(), b"secret");
    let leftovers = std::fs::read_dir(&dir.0).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary files are left behind");
}

#[actix_web::test]
async fn the_vault_works_over_http_and_another_users_id_is_not_found_everywhere() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let body = app
        .gql(
            r#"mutation { createCredential(input: {name: "stripe", service: "stripe", type: "api_key", secret: "sk-live-http"}) { id useCount } }"#,
            Some(&a),
        )
        .await;
    let id = body["data"]["createCredential"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("create failed: {body}"))
        .to_owned();
    assert!(!body.to_string().contains("sk-live-http"));

    for doc in [
        format!(r#"{{ credential(id: "{id}") {{ id }} }}"#),
        format!(r#"mutation {{ revealCredential(id: "{id}") {{ secret }} }}"#),
        format!(r#"mutation {{ updateCredential(input: {{id: "{id}", name: "x"}}) {{ id }} }}"#),
        format!(r#"mutation {{ deleteCredential(id: "{id}") }}"#),
    ] {
        let body = app.gql(&doc, Some(&b)).await;
        assert_eq!(code(&body), "NOT_FOUND", "{doc}: {body}");
        assert!(!body.to_string().contains("sk-live-http"));
    }
    let body = app.gql("{ credentials { nodes { id } } }", Some(&b)).await;
    assert_eq!(body["data"]["credentials"]["nodes"], serde_json::json!([]));

    let body = app
        .gql(
            &format!(r#"mutation {{ revealCredential(id: "{id}") {{ secret credential {{ useCount }} }} }}"#),
            Some(&a),
        )
        .await;
    assert_eq!(body["data"]["revealCredential"]["secret"], "sk-live-http");
    assert_eq!(
        body["data"]["revealCredential"]["credential"]["useCount"],
        1
    );
    let body = app
        .gql(r#"{ credential(id: "nonsense") { id } }"#, Some(&a))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

/// The key the test app seals with (`KeyRing::single(1, [7; 32])`), as a `VAULT_KEYS` entry.
const APP_KEY_ENTRY: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A user, one credential and one browser context with storage, sealed under `keys`.
async fn seal_one_of_each(
    db: &DatabaseConnection,
    keys: &KeyRing,
) -> (Actor, uuid::Uuid, uuid::Uuid) {
    let id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let backend = db.get_database_backend();
    db.execute_raw(kernel::db::raw(
        backend,
        "INSERT INTO users (id, email, login_method, role, onboarding_completed, created_at, \
         updated_at, last_signed_in) VALUES (?, 'ops@example.com', 'email', 'user', false, ?, ?, ?)",
        vec![id.into(), now.into(), now.into(), now.into()],
    ))
    .await
    .unwrap();
    let actor = Actor {
        user_id: id,
        role: Role::User,
        credential: Credential::Session {
            session_id: uuid::Uuid::now_v7(),
        },
    };
    let auth = core_auth::Auth::new(Default::default(), kernel::clock::system());
    let secret = NewCredential::parse(
        "stripe".into(),
        "stripe".into(),
        "api_key".into(),
        None,
        "sk-live-rotated".into(),
    )
    .unwrap();
    let cred = auth
        .create_credential(db, &actor, keys, secret)
        .await
        .unwrap()
        .id;
    let req = NewBrowserContext::parse(
        BrowserContextFields {
            context_id: "ctx_ops".into(),
            storage: Some(json!({ "cookies": [{ "name": "sid", "value": "c00kie" }] })),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    let context = browser::create_context(db, &actor, keys, req, now)
        .await
        .unwrap()
        .id;
    (actor, cred, context)
}

async fn rotate_lines(
    db: &DatabaseConnection,
    keys: &KeyRing,
) -> (Vec<String>, anyhow::Result<()>) {
    let mut lines = Vec::new();
    let result = rotate_all(db, keys, 500, |table, report| {
        lines.push(rotation_line(table, report));
    })
    .await;
    (lines, result)
}

async fn set_key_version<E: EntityTrait>(db: &DatabaseConnection, column: E::Column, version: i32) {
    E::update_many()
        .col_expr(column, Expr::value(version))
        .exec(db)
        .await
        .unwrap();
}

#[actix_web::test]
async fn vault_rotate_reseals_credentials_and_browser_contexts_with_one_line_per_table() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let app_keys = KeyRing::parse(APP_KEY_ENTRY).unwrap();
    let (actor, cred, context) = seal_one_of_each(db, &app_keys).await;
    let new_entry = KeyRing::generate_entry(2).unwrap();
    let keys = KeyRing::parse(&format!("{APP_KEY_ENTRY},{new_entry}")).unwrap();

    let (lines, result) = rotate_lines(db, &keys).await;
    result.unwrap();
    assert_eq!(
        lines,
        [
            "re-sealed 1 credentials under key version 2; 0 changed concurrently; 0 did not open",
            "re-sealed 1 browser contexts under key version 2; 0 changed concurrently; 0 did not open",
        ]
    );

    // The old key can be retired: the new key alone opens both tables.
    let only_new = KeyRing::parse(&new_entry).unwrap();
    let auth = core_auth::Auth::new(Default::default(), kernel::clock::system());
    let (_, secret) = auth
        .reveal_credential(db, &actor, &only_new, cred)
        .await
        .unwrap();
    assert_eq!(secret.expose(), "sk-live-rotated");
    let row = browser_context::Entity::find_by_id(context)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let storage = browser::open_storage(&only_new, &row).unwrap().unwrap();
    assert_eq!(storage.into_json()["cookies"][0]["value"], "c00kie");

    let (lines, result) = rotate_lines(db, &keys).await;
    result.unwrap();
    assert_eq!(
        lines,
        [
            "re-sealed 0 credentials under key version 2; 0 changed concurrently; 0 did not open",
            "re-sealed 0 browser contexts under key version 2; 0 changed concurrently; 0 did not open",
        ]
    );
}

#[actix_web::test]
async fn vault_rotate_runs_every_table_and_fails_naming_each_table_with_rows_that_do_not_open() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let app_keys = KeyRing::parse(APP_KEY_ENTRY).unwrap();
    seal_one_of_each(db, &app_keys).await;
    let keys = KeyRing::parse(&format!(
        "{APP_KEY_ENTRY},{}",
        KeyRing::generate_entry(2).unwrap()
    ))
    .unwrap();
    set_key_version::<browser_context::Entity>(db, browser_context::Column::StorageKeyVersion, 9)
        .await;

    let (lines, result) = rotate_lines(db, &keys).await;
    let message = result.unwrap_err().to_string();
    assert_eq!(
        lines,
        [
            "re-sealed 1 credentials under key version 2; 0 changed concurrently; 0 did not open",
            "re-sealed 0 browser contexts under key version 2; 0 changed concurrently; 1 did not open",
        ]
    );
    assert!(message.contains("1 in browser_contexts"), "{message}");
    assert!(!message.contains("credentials"), "{message}");

    set_key_version::<credential::Entity>(db, credential::Column::KeyVersion, 9).await;
    let (lines, result) = rotate_lines(db, &keys).await;
    let message = result.unwrap_err().to_string();
    assert_eq!(lines.len(), 2, "both tables run: {lines:?}");
    assert!(
        message.contains("1 in credentials, 1 in browser_contexts"),
        "{message}"
    );
    let unopened = credential::Entity::find()
        .filter(credential::Column::KeyVersion.eq(9))
        .all(db)
        .await
        .unwrap();
    assert_eq!(unopened.len(), 1, "left as it was");
}

#[tokio::test]
async fn the_rotate_command_prints_a_line_per_table_and_exits_non_zero_naming_the_table() {
    use migration::MigratorTrait;
    let dir = TempDir::new();
    let url = format!("sqlite://{}/app.db?mode=rwc", dir.0.display());
    let db = kernel::db::connect(&url, None).await.unwrap();
    migration::Migrator::up(&db, None).await.unwrap();
    let old = KeyRing::generate_entry(1).unwrap();
    seal_one_of_each(&db, &KeyRing::parse(&old).unwrap()).await;
    set_key_version::<browser_context::Entity>(&db, browser_context::Column::StorageKeyVersion, 9)
        .await;
    db.close().await.unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["vault", "rotate"])
        .env("APP_ENV", "development")
        .env("DATABASE_URL", &url)
        .env(
            "VAULT_KEYS",
            format!("{old},{}", KeyRing::generate_entry(2).unwrap()),
        )
        .current_dir(&dir.0)
        .output()
        .expect("run the server binary");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "re-sealed 1 credentials under key version 2; 0 changed concurrently; 0 did not open"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("re-sealed 0 browser contexts under key version 2; 0 changed concurrently; 1 did not open"),
        "{stdout}"
    );
    assert!(stderr.contains("1 in browser_contexts"), "{stderr}");
}
