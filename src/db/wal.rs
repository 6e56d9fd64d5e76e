//! SQLite's write-ahead log, checkpointed beside a long run of writes.
//!
//! In WAL mode a commit appends its pages to the log. Once the log passes
//! 1,000 pages, the commit that passed it also copies the log into the
//! database file and syncs both, and the thread that committed waits for
//! that. A round opening of 10,000 circles took about 50 such checkpoints
//! in its own thread. [`checkpoints_aside`] moves most of that copying and
//! syncing to a thread of its own, on the machine's other core, while the
//! writer builds its next transaction.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::DbConnection;

/// How often the log is checkpointed while the writes go on.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The writer's own checkpoints, in pages of log, while the other thread
/// takes the rest. A checkpoint beside the writer never finds the log
/// wholly copied at the moment a transaction starts, and only then does the
/// log start over from its beginning: without the writer's own it grew to
/// the size of everything written (190 MB for 10,000 circles' rounds). By
/// the time the log holds 16 MiB, nearly all of it is copied, so the
/// writer's checkpoint has little left to do before the log starts over.
const WRITER_CHECKPOINT_PAGES: u32 = 4096;

/// SQLite's own `wal_autocheckpoint`, in pages, restored afterwards.
const AUTOCHECKPOINT_PAGES: u32 = 1000;

#[derive(QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = Text)]
    file: String,
}

/// Runs `work` (a run of write transactions on `conn`) while a second
/// connection checkpoints the log every [`CHECKPOINT_EVERY`], and `conn`
/// checkpoints only every [`WRITER_CHECKPOINT_PAGES`]. The second
/// connection's checkpoints are `PASSIVE`: they copy what is committed, and
/// never wait on the writer nor make it wait. When `work` ends the log is
/// checkpointed once more, and `conn` checkpoints as it did before.
///
/// A checkpoint that fails is logged, and the rest are left to the
/// writer's own. PostgreSQL, and SQLite databases with no file, run `work`
/// alone.
pub fn checkpoints_aside<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let DbConnection::Sqlite(sqlite) = &mut *conn else {
        return work(conn);
    };
    let path = diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<DatabaseFile>(sqlite)?
        .file;
    if path.is_empty() {
        return work(conn);
    }
    sqlite.batch_execute(&format!(
        "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"
    ))?;
    let result = thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpointer = scope.spawn(move || checkpoint_until(&path, &stopped));
        let result = work(conn);
        drop(stop);
        if checkpointer.join().is_err() {
            tracing::warn!("the log's checkpointer panicked");
        }
        result
    });
    let restored = conn.batch_execute(&format!(
        "PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}"
    ));
    let value = result?;
    restored?;
    Ok(value)
}

/// Checkpoints the log of the database at `path` until `stopped` says so,
/// then once more.
fn checkpoint_until(path: &str, stopped: &Receiver<()>) {
    let mut conn = match SqliteConnection::establish(path) {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot open a connection to checkpoint the log");
            return;
        }
    };
    loop {
        let last = !matches!(
            stopped.recv_timeout(CHECKPOINT_EVERY),
            Err(RecvTimeoutError::Timeout)
        );
        if let Err(error) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(%error, "checkpointing the log failed");
            return;
        }
        if last {
            return;
        }
    }
}
