//! Fresh migrated databases for tests, on SQLite by default and on PostgreSQL
//! when `DATABASE_URL` points at one.
//!
//! On PostgreSQL each test gets its own schema in that database, so tests run
//! in parallel without seeing each other's rows; CI drops the whole database at
//! the end of a run.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A migrated database private to one test, with a statement counter.
pub struct TestDb {
    /// The pool to hand to services and the schema.
    pub db: DatabaseConnection,
    statements: Arc<AtomicUsize>,
    /// PostgreSQL's URL and the test's schema, to open more pools onto it.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database migrated with `M`.
    ///
    /// # Panics
    /// When the database cannot be created or migrated: the test cannot run.
    pub async fn new<M: MigratorTrait>() -> Self {
        let (mut db, postgres) = match std::env::var("DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => {
                let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                let db = postgres_schema(&url, &schema).await;
                (db, Some((url, schema)))
            }
            _ => (sqlite_memory().await, None),
        };
        M::up(&db, None).await.expect("migrate test database");
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        Self {
            db,
            statements,
            postgres,
        }
    }

    /// A second, separate pool onto this test's database, as another server
    /// instance would hold; `None` on in-memory SQLite, which one pool owns.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached: the test cannot run.
    pub async fn another_pool(&self) -> Option<DatabaseConnection> {
        let (url, schema) = self.postgres.as_ref()?;
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(4)
            .sqlx_logging(false)
            .set_schema_search_path(schema.clone());
        Some(
            Database::connect(opts)
                .await
                .expect("connect another pool to the test schema"),
        )
    }

    /// SQL statements run since creation or the last [`TestDb::reset_statements`].
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    /// Starts counting statements from zero.
    pub fn reset_statements(&self) {
        self.statements.store(0, Ordering::SeqCst);
    }

    /// Whether another server instance could lock row `id` of `table` right
    /// now without waiting (`FOR UPDATE NOWAIT` on a pool of its own), asked
    /// while the calling thread is blocked, so that none of the caller's
    /// runtime's tasks, such as a pool's spawned release of a dropped
    /// transaction, runs meanwhile. `None` on SQLite, which has no row locks.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached or the row does not exist.
    pub fn row_lockable_elsewhere(&self, table: &str, id: uuid::Uuid) -> Option<bool> {
        use sea_orm::TransactionTrait;
        self.postgres.as_ref()?;
        let sql = format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE NOWAIT");
        Some(std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the probe");
                rt.block_on(async {
                    let pool = self.another_pool().await.expect("PostgreSQL");
                    let txn = pool.begin().await.expect("begin the probe");
                    let got = txn
                        .query_one_raw(Statement::from_sql_and_values(
                            sea_orm::DbBackend::Postgres,
                            &sql,
                            [id.into()],
                        ))
                        .await;
                    let _ = txn.rollback().await;
                    let _ = pool.close().await;
                    match got {
                        Ok(row) => {
                            assert!(row.is_some(), "no row {id} in {table}");
                            true
                        }
                        Err(_) => false,
                    }
                })
            })
            .join()
            .expect("the probe thread")
        }))
    }

    /// True when the tests run on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.db.get_database_backend(), sea_orm::DbBackend::Postgres)
    }
}

async fn sqlite_memory() -> DatabaseConnection {
    let mut opts = ConnectOptions::new("sqlite::memory:");
    // One connection: every connection to `:memory:` is a different database.
    opts.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .expect("open in-memory sqlite")
}

async fn postgres_schema(url: &str, schema: &str) -> DatabaseConnection {
    let mut admin_opts = ConnectOptions::new(url.to_owned());
    admin_opts.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(admin_opts)
        .await
        .expect("connect to DATABASE_URL");
    let backend = admin.get_database_backend();
    admin
        .execute_raw(Statement::from_string(
            backend,
            format!("CREATE SCHEMA {schema}"),
        ))
        .await
        .expect("create test schema");
    let _ = admin.close().await;
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(8)
        .sqlx_logging(false)
        .set_schema_search_path(schema);
    Database::connect(opts)
        .await
        .expect("connect to test schema")
}
