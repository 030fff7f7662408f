//! The credential vault's configuration and API: where keys come from, and the
//! vault over HTTP.

mod common;

use common::{code, spawn_app};
use kernel::crypto::KeyRing;
use server::config::{AppEnv, Config};
use server::vault::{KEY_FILE_NAME, key_file_path, key_ring};
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
