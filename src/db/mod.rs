//! The database: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and the bridge from async handlers to blocking diesel.
//!
//! Queries are written once against [`DbConnection`] (diesel's
//! `MultiConnection`); only what differs between the backends (upserts,
//! `FOR UPDATE SKIP LOCKED`, pragmas, migrations) matches on the variant.

pub mod binds;
mod openings;
pub mod schema;
pub mod wal;

pub use openings::close_connections;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Runs `$run` with `$inner` bound to the connection's own backend's
/// connection, for the queries of the busiest pages. Through the
/// multi-connection diesel writes a query's SQL text out again on every run,
/// even when its prepared statement is already kept; on the backend's own
/// connection a kept statement is found by the query's type alone. The
/// query is written once, for any backend, and `$run` is compiled for each.
macro_rules! natively {
    ($conn:expr, |$inner:ident| $run:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($inner) => $run,
            $crate::db::DbConnection::Postgresql($inner) => $run,
        }
    };
}
pub(crate) use natively;

/// Rows per multi-row insert, well within both backends' limits on bound
/// parameters. A chunk of exactly this many goes in as a fixed-size array,
/// whose statement diesel prepares once per connection and keeps; a
/// multi-row insert of any other length is parsed anew on every use, which
/// was a tenth of a large round opening's time on SQLite. At this size a
/// kept statement is small, and a statement's own cost is already shared
/// by a hundred rows.
pub const ROWS_PER_STATEMENT: usize = 100;

/// Runs `$each` for every [`ROWS_PER_STATEMENT`] rows of `$rows`, with
/// `$values` bound to them: as a fixed-size array when the chunk is full, so
/// that its insert's statement stays prepared, and as a slice for the rest.
/// A macro because the two make statements of different types.
macro_rules! per_statement {
    ($rows:expr, |$values:ident| $each:expr) => {
        for chunk in $rows.chunks($crate::db::ROWS_PER_STATEMENT) {
            match <&[_; $crate::db::ROWS_PER_STATEMENT]>::try_from(chunk) {
                Ok($values) => $each,
                Err(_) => {
                    let $values = chunk;
                    $each
                }
            };
        }
    };
}
pub(crate) use per_statement;

/// How long a request waits for a pooled connection before giving up.
const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Any advisory-lock key will do as long as it is ours alone; this one spells
/// "shoulder" in ASCII and serialises migrations across instances.
const MIGRATION_LOCK_KEY: i64 = 0x73686f756c646572;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which backend a configured URL selects; decided by us, not by trying both.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://` and `postgresql://` select PostgreSQL; anything else
    /// without a scheme (or with `sqlite://`) is a SQLite file path.
    pub fn parse(raw: &str) -> Result<DatabaseUrl, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
            if url.path().trim_start_matches('/').is_empty() {
                return Err("names no database (postgres://user@host/DATABASE)".into());
            }
            return Ok(DatabaseUrl::Postgres(raw.to_string()));
        }
        let path = raw.strip_prefix("sqlite://").unwrap_or(raw);
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "{scheme}:// is not supported; use a SQLite file path or postgres://"
            ));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(
                "an in-memory SQLite database is not shared between connections; use a file path"
                    .into(),
            );
        }
        if path.ends_with('/') {
            return Err("is a folder; give a file path such as data/shoulder.db".into());
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// For messages and logs: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
            DatabaseUrl::Postgres(url) => crate::config::redact_url_password(url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.display())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Setup(#[from] diesel::result::Error),
    #[error("{0}")]
    Path(String),
    #[error("the process is closing")]
    Closing,
}

/// A connection the pool holds, counted from before it opened until it is
/// closed (see `openings`). Field order matters: the connection closes
/// first, then the count goes down.
pub struct PoolConnection {
    conn: DbConnection,
    _open: openings::Open,
}

impl Deref for PoolConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for PoolConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Opens connections of the configured backend, with SQLite's pragmas set.
#[derive(Debug)]
pub struct DbManager {
    url: DatabaseUrl,
    busy_timeout_ms: u32,
}

impl DbManager {
    pub fn new(url: DatabaseUrl, busy_timeout_ms: u32) -> Self {
        DbManager {
            url,
            busy_timeout_ms,
        }
    }
}

impl ManageConnection for DbManager {
    type Connection = PoolConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<PoolConnection, ConnectError> {
        let open = openings::Open::begin().ok_or(ConnectError::Closing)?;
        Ok(PoolConnection {
            conn: self.open()?,
            _open: open,
        })
    }

    fn is_valid(&self, conn: &mut PoolConnection) -> Result<(), ConnectError> {
        Ok(conn.ping()?)
    }

    /// Broken in diesel's sense (a transaction left in an error state), or,
    /// after work on it failed, no longer answering: a connection the
    /// database has ended (a restart, `pg_terminate_backend`) fails every
    /// query outside a transaction, and diesel alone would keep it pooled
    /// for good.
    fn has_broken(&self, conn: &mut PoolConnection) -> bool {
        conn.is_broken() || (WORK_FAILED.replace(false) && conn.ping().is_err())
    }
}

impl DbManager {
    fn open(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path_str = path
                    .to_str()
                    .ok_or_else(|| ConnectError::Path("the path is not valid UTF-8".into()))?;
                let mut conn = SqliteConnection::establish(path_str)?;
                // WAL lets readers run beside the single writer; NORMAL is
                // durable in WAL mode except for the last commits on power loss.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => {
                Ok(DbConnection::Postgresql(PgConnection::establish(url)?))
            }
        }
    }
}

/// SQLite has one writer at a time, and a writer that finds the database
/// locked sleeps and tries again (`busy_timeout`), so a check-in that
/// arrives while rounds open, one batch transaction after another, can
/// sleep through every short gap between them and wait for the whole
/// opening. Within the process, writers inside [`Db::run`] therefore queue
/// for the write lock in the order they asked: a writer waits for at most
/// the transactions queued before its own. One that waits longer than the
/// busy timeout goes on without its turn, and SQLite decides as before.
#[derive(Clone, Debug)]
struct WriteTurns {
    queue: Arc<parking_lot::FairMutex<()>>,
    wait: Duration,
}

thread_local! {
    /// The turns the work running on this thread takes its writes in.
    static WRITE_TURNS: std::cell::RefCell<Option<WriteTurns>> = const { std::cell::RefCell::new(None) };
}

impl WriteTurns {
    /// Runs `work` with its write transactions taking `turns`.
    fn taken_by_writes_in<T>(turns: Option<WriteTurns>, work: impl FnOnce() -> T) -> T {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                WRITE_TURNS.set(None);
            }
        }
        WRITE_TURNS.set(turns);
        let _reset = Reset;
        work()
    }

    /// The turns this thread's work takes, if any.
    fn here() -> Option<WriteTurns> {
        WRITE_TURNS.with_borrow(Clone::clone)
    }

    /// Waits for a turn to write; `None` after waiting too long.
    fn take(&self) -> Option<parking_lot::FairMutexGuard<'_, ()>> {
        self.queue.try_lock_for(self.wait)
    }
}

thread_local! {
    /// Set by [`Db::run`] when work on this thread's connection failed, just
    /// before the connection goes back to the pool (on the same thread), so
    /// that [`DbManager::has_broken`] checks it then. Only failures pay for
    /// that round trip.
    static WORK_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A problem reaching or using the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("database task stopped: {0}")]
    Task(String),
}

impl DbError {
    /// The database could not be reached, or ended the connection mid-query
    /// (a restart, an administrator): the database is away, nothing is wrong
    /// with the request, and the same request will work once it is back.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            DbError::Pool(_) => true,
            DbError::Query(Error::DatabaseError(kind, _)) => matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ),
            _ => false,
        }
    }
}

pub type DbPool = Pool<DbManager>;

/// The pool plus a gate that lets only as many blocking tasks run as there
/// are connections, so requests queue on a cheap semaphore rather than
/// parking blocking threads on the pool's condition variable.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    gate: Arc<Semaphore>,
    backend: Backend,
    /// On SQLite, the turns of [`Db::run`]'s writers (see [`WriteTurns`]).
    turns: Option<WriteTurns>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

/// Pool occupancy, for `/metrics`.
#[derive(Clone, Copy, Debug)]
pub struct PoolState {
    pub size: u32,
    pub max_size: u32,
    pub idle: u32,
}

impl Db {
    /// Opens the first connection directly so that its real error (a wrong
    /// password, a missing folder) reaches the operator, then builds the pool.
    pub fn connect(url: &DatabaseUrl, pool_size: u32, busy_timeout_ms: u32) -> Result<Db, String> {
        if let DatabaseUrl::Sqlite(path) = url {
            check_sqlite_folder(path)?;
        }
        let manager = DbManager::new(url.clone(), busy_timeout_ms);
        let first = manager
            .connect()
            .map_err(|e| format!("cannot open database {}: {e}", url.display()))?;
        drop(first);
        let pool = Pool::builder()
            .max_size(pool_size)
            // A failed query already tells us a connection broke; a ping on
            // every checkout would add a round trip to every request.
            .test_on_check_out(false)
            // Connections open when first needed, not all at once in the
            // pool's background threads: a short command needs one or two.
            // How a command still ends only after every connection is
            // closed: `openings`.
            .min_idle(Some(0))
            .connection_timeout(POOL_CHECKOUT_TIMEOUT)
            .error_handler(Box::new(LogPoolErrors))
            .build_unchecked(manager);
        let turns = matches!(url, DatabaseUrl::Sqlite(_)).then(|| WriteTurns {
            queue: Arc::default(),
            wait: Duration::from_millis(u64::from(busy_timeout_ms)),
        });
        Ok(Db {
            pool,
            gate: Arc::new(Semaphore::new(pool_size as usize)),
            backend: url.backend(),
            turns,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            size: state.connections,
            max_size: self.pool.max_size(),
            idle: state.idle_connections,
        }
    }

    /// A connection for blocking code (CLI commands, jobs already off the runtime).
    pub fn get(&self) -> Result<PooledConnection<DbManager>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work off the async runtime.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        let pool = self.pool.clone();
        let turns = self.turns.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            let result = WriteTurns::taken_by_writes_in(turns, || work(&mut conn));
            WORK_FAILED.set(result.is_err());
            result
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs a few indexed reads, and nothing that writes. On SQLite they run
    /// right here, on the async worker: a page's reads take tens of
    /// microseconds, less than the two thread wake-ups of a trip to a
    /// blocking thread and back, which were most of the circle page's cost
    /// (BENCHMARKS.md). In WAL mode a read never waits for a writer, and the
    /// gate leaves a connection free for it. On PostgreSQL every query waits
    /// on the network, so the work goes to a blocking thread as in
    /// [`Db::run`].
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if self.backend != Backend::Sqlite {
            return self.run(work).await;
        }
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        let mut conn = self.pool.get().map_err(DbError::from)?;
        let result = work(&mut conn);
        WORK_FAILED.set(result.is_err());
        result
    }

    pub async fn migrate(&self) -> Result<usize, DbError> {
        self.run(run_migrations).await
    }

    pub async fn pending_migrations(&self) -> Result<usize, DbError> {
        self.run(pending_migrations).await
    }
}

#[derive(Debug)]
struct LogPoolErrors;

impl r2d2::HandleError<ConnectError> for LogPoolErrors {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

fn check_sqlite_folder(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "cannot open database {}: {} is not a folder",
            path.display(),
            folder.display()
        )),
        Err(_) => Err(format!(
            "cannot open database {}: the folder {} does not exist (create it, or set database.url)",
            path.display(),
            folder.display()
        )),
    }
}

/// A transaction that will write. On SQLite it starts with `BEGIN IMMEDIATE`,
/// taking the write lock up front (waiting up to `busy_timeout`): a deferred
/// transaction that reads first and writes later fails at once, not after a
/// wait, when another connection wrote in between. PostgreSQL needs nothing
/// special.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConnection::Postgresql(_) => conn.transaction(work),
        DbConnection::Sqlite(sqlite) => {
            // Held until the transaction has ended, then handed straight to
            // the writer queued next.
            let turns = WriteTurns::here();
            let _turn = turns.as_ref().and_then(WriteTurns::take);
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
            match work(conn) {
                Ok(value) => {
                    <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(error) => {
                    <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
                    Err(error)
                }
            }
        }
    }
}

/// Applies pending migrations and returns how many ran. On PostgreSQL an
/// advisory lock keeps two instances starting together from racing.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, DbError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => Ok(conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(migration_error)?
            .len()),
        DbConnection::Postgresql(conn) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(conn)?;
            let outcome = conn
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|done| done.len())
                .map_err(migration_error);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(conn)?;
            outcome
        }
    }
}

pub fn pending_migrations(conn: &mut DbConnection) -> Result<usize, DbError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => Ok(conn
            .pending_migrations(SQLITE_MIGRATIONS)
            .map_err(migration_error)?
            .len()),
        DbConnection::Postgresql(conn) => Ok(conn
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(migration_error)?
            .len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_select_postgres() {
        for url in ["postgres://u@h/db", "postgresql://u:p@h:5433/db"] {
            assert_eq!(
                DatabaseUrl::parse(url).map(|u| u.backend()),
                Ok(Backend::Postgres)
            );
        }
    }

    #[test]
    fn paths_select_sqlite() {
        assert_eq!(
            DatabaseUrl::parse("data/shoulder.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("data/shoulder.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/shoulder.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("/var/lib/shoulder.db")))
        );
    }

    #[test]
    fn other_urls_are_rejected_with_a_reason() {
        for (url, reason) in [
            ("", "empty"),
            ("mysql://h/db", "mysql:// is not supported"),
            (":memory:", "in-memory"),
            ("postgres://h", "names no database"),
            ("postgres://h:notaport/db", "not a valid URL"),
            ("data/", "is a folder"),
        ] {
            let error = DatabaseUrl::parse(url).expect_err(url);
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn postgres_password_is_not_displayed() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@h/db").expect("valid");
        assert!(!url.display().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
