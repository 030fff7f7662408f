//! Where the credential vault's key ring comes from: `VAULT_KEYS`, or on the
//! embedded default a key generated into the data folder on first run; and
//! key rotation over every table sealed with that ring.

use crate::config::{AppEnv, Config, VaultCommand};
use anyhow::Context;
use core_auth::vault::Rotation;
use kernel::crypto::{CryptoError, KeyRing};
use sea_orm::DatabaseConnection;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name of the generated development key ring.
pub const KEY_FILE_NAME: &str = "vault.keys";

/// Why no key ring could be loaded. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// Production refuses to invent keys: a lost key file would lose every secret.
    #[error(
        "VAULT_KEYS must be set when APP_ENV=production: give one or more VERSION:BASE64KEY \
         entries of 32-byte keys separated by commas (`server vault new-key` prints one)"
    )]
    MissingInProduction,
    /// Only the embedded SQLite default may invent a key: a server database
    /// outlives the working directory a generated key file would sit in.
    #[error(
        "VAULT_KEYS must be set when DATABASE_URL is not the embedded SQLite database: a key \
         generated into a local file would be lost with the machine while the ciphertexts stay \
         (`server vault new-key` prints an entry)"
    )]
    MissingForServerDatabase,
    /// `VAULT_KEYS` does not parse.
    #[error("VAULT_KEYS is malformed: {0}")]
    Malformed(CryptoError),
    /// The key file cannot be read or created.
    #[error("cannot use the vault key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The key file exists but does not parse.
    #[error("the vault key file {path} is malformed: {source}")]
    KeyFileMalformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: CryptoError,
    },
}

/// The key ring `config` describes.
///
/// # Errors
/// Without `VAULT_KEYS` in production or on a server database; when the keys are malformed; when the
/// development key file cannot be read or created.
pub fn key_ring(config: &Config) -> Result<KeyRing, KeyRingError> {
    match (&config.vault_keys, config.app_env) {
        (Some(text), _) => KeyRing::parse(text.expose()).map_err(KeyRingError::Malformed),
        (None, AppEnv::Production) => Err(KeyRingError::MissingInProduction),
        (None, AppEnv::Development) if !kernel::db::is_sqlite(&config.database_url) => {
            Err(KeyRingError::MissingForServerDatabase)
        }
        (None, AppEnv::Development) => load_or_create_key_file(&key_file_path(config)),
    }
}

/// The development key file: `VAULT_KEYS_FILE`, else beside the SQLite
/// database file, else `data/vault.keys`.
pub fn key_file_path(config: &Config) -> PathBuf {
    if let Some(path) = &config.vault_keys_file {
        return path.clone();
    }
    let sqlite_file = kernel::db::is_sqlite(&config.database_url)
        .then(|| {
            config
                .database_url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
        })
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    let dir = sqlite_file
        .and_then(|file| Path::new(file).parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("data"), Path::to_path_buf);
    dir.join(KEY_FILE_NAME)
}

/// Reads the key ring in `path`, first creating it with one fresh key (version 1,
/// mode 0600) when it does not exist. The key is written to a temporary file
/// and linked into place, which fails if the file exists: two processes
/// starting together end up with the same complete key file.
///
/// # Errors
/// When the file cannot be created or read, or does not parse.
pub fn load_or_create_key_file(path: &Path) -> Result<KeyRing, KeyRingError> {
    let io = |source| KeyRingError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    let malformed = |source| KeyRingError::KeyFileMalformed {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let entry = KeyRing::generate_entry(1).map_err(malformed)?;
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::now_v7().simple()));
        let written = write_private(&tmp, &format!("{entry}\n"));
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::warn!(path = %path.display(), "generated a vault key; back it up, or set VAULT_KEYS");
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    KeyRing::parse(&text.replace('\n', ",")).map_err(malformed)
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A table whose columns are sealed with the vault key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `credentials`: the vault's secrets.
    Credentials,
    /// `browser_contexts`: the contexts' cookies and local storage.
    BrowserContexts,
}

impl SealedTable {
    /// Every sealed table, in the order `server vault rotate` re-seals them.
    pub const ALL: [Self; 2] = [Self::Credentials, Self::BrowserContexts];

    /// The table's name in the database.
    pub fn table_name(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::BrowserContexts => "browser_contexts",
        }
    }

    /// What its rows are called in the command's output.
    fn rows(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::BrowserContexts => "browser contexts",
        }
    }

    /// Re-seals the table's rows under the newest key of `keys`.
    async fn rotate(
        self,
        db: &DatabaseConnection,
        keys: &KeyRing,
        batch_size: u64,
    ) -> anyhow::Result<Rotation> {
        Ok(match self {
            Self::Credentials => core_auth::vault::rotate(db, keys, batch_size).await?,
            Self::BrowserContexts => agents::browser::rotate(db, keys, batch_size).await?,
        })
    }
}

/// The output line of one table's rotation.
pub fn rotation_line(table: SealedTable, report: &Rotation) -> String {
    format!(
        "re-sealed {} {} under key version {}; {} changed concurrently; {} did not open",
        report.resealed,
        table.rows(),
        report.to_version,
        report.skipped,
        report.failed
    )
}

/// Re-seals every [`SealedTable`] under the newest key of `keys`, one table
/// after the other, handing each table's report to `done` as it finishes.
///
/// # Errors
/// When the database fails (rows re-sealed so far stay re-sealed), or, after
/// every table ran, when rows of some table did not open: the message names
/// each such table.
pub async fn rotate_all(
    db: &DatabaseConnection,
    keys: &KeyRing,
    batch_size: u64,
    mut done: impl FnMut(SealedTable, &Rotation),
) -> anyhow::Result<()> {
    let mut unopened = Vec::new();
    for table in SealedTable::ALL {
        let report = table.rotate(db, keys, batch_size).await.with_context(|| {
            format!(
                "rotation of {} stopped; run it again to resume",
                table.table_name()
            )
        })?;
        done(table, &report);
        if report.failed > 0 {
            unopened.push(format!("{} in {}", report.failed, table.table_name()));
        }
    }
    if !unopened.is_empty() {
        anyhow::bail!(
            "rows did not open with VAULT_KEYS ({}); keep their old key versions in the ring",
            unopened.join(", ")
        );
    }
    Ok(())
}

/// Runs a `server vault` task.
///
/// # Errors
/// When the configuration or the database fails, or some sealed rows did not open.
pub async fn run(config: &Config, command: VaultCommand) -> anyhow::Result<()> {
    match command {
        VaultCommand::NewKey { version } => {
            println!("{}", KeyRing::generate_entry(version)?);
            Ok(())
        }
        VaultCommand::Rotate { batch_size } => {
            let keys = key_ring(config).context("invalid configuration")?;
            let db = kernel::db::connect(&config.database_url, config.database_max_connections)
                .await
                .context("cannot connect to DATABASE_URL")?;
            rotate_all(&db, &keys, batch_size, |table, report| {
                println!("{}", rotation_line(table, report));
            })
            .await
        }
    }
}
