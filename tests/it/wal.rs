//! [`checkpoints_aside`] on a real SQLite file: while its work goes on, what
//! is committed reaches the database file itself, not only the log.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use diesel::sql_types::Integer;
use shoulder::db::wal::checkpoints_aside;
use shoulder::db::{DatabaseUrl, DbConnection, DbManager, PoolConnection, write_transaction};
use tempfile::TempDir;

#[derive(QueryableByName)]
struct Autocheckpoint {
    #[diesel(sql_type = Integer)]
    wal_autocheckpoint: i32,
}

/// The connection's `wal_autocheckpoint`, in pages.
fn autocheckpoint(conn: &mut DbConnection) -> i32 {
    let DbConnection::Sqlite(sqlite) = conn else {
        panic!("a SQLite connection");
    };
    diesel::sql_query("PRAGMA wal_autocheckpoint")
        .get_result::<Autocheckpoint>(sqlite)
        .expect("the pragma reads")
        .wal_autocheckpoint
}

/// Writes the notes `from..from + count` in one write transaction.
fn note(conn: &mut DbConnection, from: i32, count: i32) {
    write_transaction(conn, |conn| {
        conn.batch_execute(&format!(
            "WITH RECURSIVE n(id) AS (SELECT {from} UNION ALL SELECT id + 1 FROM n WHERE id < {})
             INSERT INTO notes (id) SELECT id FROM n",
            from + count - 1
        ))
    })
    .expect("the notes are written");
}

/// How many notes the database file holds on its own, read from a copy of
/// it made without its log; `None` while the file has no notes table yet
/// (or was copied halfway through a checkpoint).
fn notes_in_file(dir: &Path) -> Option<i64> {
    let copy = dir.join("copy.db");
    let _ = std::fs::remove_file(dir.join("copy.db-wal"));
    std::fs::copy(dir.join("shoulder.db"), &copy).ok()?;
    let mut conn = SqliteConnection::establish(copy.to_str()?).ok()?;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM notes)",
    ))
    .get_result(&mut conn)
    .ok()
}

/// A new database file holding the notes `0..count`, still only in its
/// log, and the connection that wrote them.
fn notes_database(count: i32) -> (TempDir, PoolConnection) {
    let dir = tempfile::tempdir().expect("a folder");
    let url = DatabaseUrl::Sqlite(dir.path().join("shoulder.db"));
    let mut conn = DbManager::new(url, 5_000)
        .connect()
        .expect("the database opens");
    conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
        .expect("the table is made");
    note(&mut conn, 0, count);
    (dir, conn)
}

#[test]
fn checkpoints_aside_copies_the_log_into_the_file_while_the_work_goes_on() {
    let (dir, mut conn) = notes_database(10);
    // A log this small is not checkpointed by SQLite on its own.
    assert_eq!(
        notes_in_file(dir.path()),
        None,
        "only the log has the table"
    );

    let seen_during = checkpoints_aside(&mut conn, |conn| {
        assert_eq!(
            autocheckpoint(conn),
            4096,
            "the writer checkpoints only when the log holds 16 MiB"
        );
        note(conn, 10, 10);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = notes_in_file(dir.path());
        while seen != Some(20) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = notes_in_file(dir.path());
        }
        // Written last: only the checkpoint after the work can copy these.
        note(conn, 20, 5);
        Ok::<_, diesel::result::Error>(seen)
    })
    .expect("the work succeeds");

    assert_eq!(seen_during, Some(20), "checkpointed while the work went on");
    assert_eq!(
        notes_in_file(dir.path()),
        Some(25),
        "checkpointed at the end"
    );
    assert_eq!(
        autocheckpoint(&mut conn),
        1000,
        "the writer checkpoints as before"
    );
}

#[test]
fn checkpoints_aside_returns_the_work_s_error_and_restores_the_writer() {
    let (dir, mut conn) = notes_database(3);

    let failed = checkpoints_aside(&mut conn, |conn| {
        write_transaction(conn, |conn| {
            conn.batch_execute("INSERT INTO notes (id) VALUES (100)")?;
            conn.batch_execute("INSERT INTO notes (id) VALUES (1)")
        })
    });

    assert!(
        failed.is_err_and(|error| error.to_string().contains("UNIQUE")),
        "the work's own error comes back"
    );
    assert_eq!(autocheckpoint(&mut conn), 1000);
    assert_eq!(
        notes_in_file(dir.path()),
        Some(3),
        "the rolled-back row is nowhere, the committed ones are in the file"
    );
    note(&mut conn, 3, 1);
}
