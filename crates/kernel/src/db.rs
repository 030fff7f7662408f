//! Connecting to the database and the few helpers every service shares.

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    Value,
};
use std::time::Duration;

/// The embedded default: a SQLite file under `data/`, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/app.db?mode=rwc";

/// True when the URL names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Connects with settings that suit the backend.
///
/// SQLite gets one pooled connection: it has one writer anyway, and a single
/// connection makes every transaction serialisable instead of failing with
/// `SQLITE_BUSY` on lock upgrades. PostgreSQL gets `max_connections` (default 10).
///
/// # Errors
/// Fails when the database cannot be reached or a SQLite file cannot be created.
pub async fn connect(url: &str, max_connections: Option<u32>) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if is_sqlite(url) {
        create_parent_dir(url)?;
        opts.max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
    } else {
        opts.max_connections(max_connections.unwrap_or(10));
    }
    Database::connect(opts).await
}

/// Creates the folder a SQLite file lives in, so `cargo run` needs no setup.
fn create_parent_dir(url: &str) -> Result<(), DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// Builds a raw statement written with `?` placeholders, numbering them `$1..` on PostgreSQL.
///
/// For the few statements the query builder cannot express portably (atomic
/// upserts that return the new value).
pub fn raw(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(ch);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Answers whether the database responds, for readiness probes.
pub async fn is_ready(db: &impl ConnectionTrait) -> bool {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_string(backend, "SELECT 1"))
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let pg = raw(
            DbBackend::Postgres,
            "UPDATE t SET a = ? WHERE b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(pg.sql, "UPDATE t SET a = $1 WHERE b = $2");
        let lite = raw(
            DbBackend::Sqlite,
            "UPDATE t SET a = ? WHERE b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(lite.sql, "UPDATE t SET a = ? WHERE b = ?");
    }

    #[tokio::test]
    async fn sqlite_file_and_its_folder_are_created_on_connect() {
        let dir = std::env::temp_dir().join(format!("kernel-db-{}", crate::id::new_id()));
        let url = format!("sqlite://{}/nested/app.db?mode=rwc", dir.display());
        let db = connect(&url, None).await.unwrap();
        assert!(is_ready(&db).await);
        assert!(dir.join("nested/app.db").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
