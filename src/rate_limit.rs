//! Request limits kept in the database, so they hold across instances and
//! restarts. Each limit counts hits per fixed window in one row, bumped with
//! an upsert so two instances counting at once both count.

use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamp};

use crate::db::{DbConnection, DbError};

/// A named limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: i32,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    count: i32,
}

/// Counts one hit of `limit` for `subject` (an address, a circle id) and
/// says whether it is still within the limit.
pub fn hit(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Verdict, DbError> {
    let window_start = window_start(now, limit.window);
    let bucket = format!("{}:{}", limit.name, subject);
    // The upsert is the same SQL on both backends, but diesel binds it through
    // each backend's own connection.
    const BUMP: &str = "INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) \
                        ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limits.count + 1 \
                        RETURNING count";
    let query = diesel::sql_query(BUMP)
        .bind::<Text, _>(&bucket)
        .bind::<Timestamp, _>(window_start);
    let count = match conn {
        DbConnection::Postgresql(conn) => query.get_result::<Count>(conn)?,
        DbConnection::Sqlite(conn) => query.get_result::<Count>(conn)?,
    };
    if count.count > limit.max {
        tracing::warn!(
            limit = limit.name,
            count = count.count,
            "request limit reached"
        );
        Ok(Verdict::Limited)
    } else {
        Ok(Verdict::Allowed)
    }
}

fn window_start(now: DateTime<Utc>, window: Duration) -> NaiveDateTime {
    now.duration_trunc(window).unwrap_or(now).naive_utc()
}
