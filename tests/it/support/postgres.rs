//! A PostgreSQL database of a test's own, created on the server named by
//! `TEST_POSTGRES_URL` and dropped when the test ends.
//!
//! An unreachable server skips the test with a loud line, unless
//! `SHOULDER_REQUIRE_POSTGRES=1`, which turns the skip into a failure.

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use rand::Rng;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// Drops the database at `url` under the app that uses it, its
/// connections ended: a database gone while the server runs.
pub async fn drop_database_of(url: &str) {
    use diesel::{Connection, RunQueryDsl};
    let database = url.rsplit('/').next().expect("a database name").to_string();
    tokio::task::spawn_blocking(move || {
        let mut admin = diesel::PgConnection::establish(&server_url()).expect("admin connection");
        diesel::sql_query(format!("DROP DATABASE {database} WITH (FORCE)"))
            .execute(&mut admin)
            .expect("database dropped");
    })
    .await
    .expect("drop task");
}

pub fn required() -> bool {
    std::env::var("SHOULDER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

pub struct PgDatabase {
    server: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// `None` (after saying so on stderr) when the server is unreachable and
    /// not required.
    pub async fn create() -> Option<PgDatabase> {
        tokio::task::spawn_blocking(Self::create_blocking)
            .await
            .expect("the database set-up task finishes")
    }

    pub fn create_blocking() -> Option<PgDatabase> {
        let server = server_url();
        let mut admin = match PgConnection::establish(&server) {
            Ok(conn) => conn,
            Err(error) if !required() => {
                super::announce_skip(
                    "PostgreSQL test",
                    &format!("cannot reach {server}: {error}"),
                    "Set TEST_POSTGRES_URL, or SHOULDER_REQUIRE_POSTGRES=1 to fail instead.",
                );
                return None;
            }
            Err(error) => panic!(
                "SHOULDER_REQUIRE_POSTGRES=1 but PostgreSQL at {server} is unreachable: {error}"
            ),
        };
        let name = format!("shoulder_test_{:016x}", rand::rng().random::<u64>());
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE template0"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let mut url = url::Url::parse(&server).expect("TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        Some(PgDatabase {
            server,
            name,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE ends the pool's connections that may still be open.
        if let Ok(mut admin) = PgConnection::establish(&self.server) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
