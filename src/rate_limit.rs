//! Request limits kept in the database, so they hold across instances and
//! restarts. Each limit counts hits per fixed window in one row, bumped with
//! an upsert so two instances counting at once both count.

use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamp};

use crate::db::schema::people;
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

/// How long until the window `now` falls in ends, when a limit hit in it
/// frees up again.
pub fn retry_after(limit: Limit, now: DateTime<Utc>) -> Duration {
    window_start(now, limit.window).and_utc() + limit.window - now
}

/// The key an address is limited by: `ada+tag@example.org` counts as
/// `ada@example.org`, so tags cannot turn one mailbox into many.
pub fn address_key(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let mailbox = local.split_once('+').map_or(local, |(mailbox, _)| mailbox);
            format!("{mailbox}@{domain}")
        }
        None => address.to_string(),
    }
}

/// Mail to addresses of nobody with an account, across the instance.
pub fn new_addresses(per_hour: u32) -> Limit {
    Limit {
        name: "new-addresses",
        max: i32::try_from(per_hour).unwrap_or(i32::MAX),
        window: Duration::hours(1),
    }
}

/// Whether an email to `address` may go out under the instance's hourly
/// cap on mail to new addresses (`limits.new_addresses_per_hour`): always
/// for someone with an account, who has shown they read our mail; for
/// anyone else, while the cap allows, counting this one.
pub fn may_mail(
    conn: &mut DbConnection,
    address: &str,
    per_hour: u32,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let known: bool = diesel::select(diesel::dsl::exists(
        people::table
            .filter(people::email.eq(address))
            .filter(people::deleted_at.is_null()),
    ))
    .get_result(conn)?;
    Ok(known || hit(conn, new_addresses(per_hour), "instance", now)? == Verdict::Allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_do_not_make_new_addresses() {
        assert_eq!(address_key("ada+1@example.org"), "ada@example.org");
        assert_eq!(address_key("ada+a+b@example.org"), "ada@example.org");
        assert_eq!(address_key("ada@example.org"), "ada@example.org");
    }

    #[test]
    fn a_window_frees_up_when_it_ends() {
        let limit = new_addresses(10);
        let now = DateTime::parse_from_rfc3339("2027-03-01T09:20:00Z")
            .expect("an instant")
            .with_timezone(&Utc);
        assert_eq!(retry_after(limit, now), Duration::minutes(40));
    }
}
