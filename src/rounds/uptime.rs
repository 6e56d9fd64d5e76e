//! When a scheduler was running, so that the catch-up rule can tell a slot
//! missed while no server ran from one whose round waited behind other
//! circles' openings.
//!
//! Every pass records its instant. Passes close enough together (see
//! [`Uptime::gap`]) make one stretch, a row of `scheduler_uptime`; a longer
//! silence starts a new one. A slot's lateness then counts from when a
//! running scheduler first found it due: the slot itself when a stretch
//! covers it, otherwise the start of the first stretch after it.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::scheduler_uptime;
use crate::db::{DbConnection, DbError, write_transaction};

/// How long stretches are kept. A circle's cursor further behind than this
/// was missed while no server ran, or is judged as if it were.
const KEPT_FOR_DAYS: i64 = 35;

/// The stretches a pass judges its slots against.
#[derive(Debug, Clone, Default)]
pub struct Uptime {
    /// (started, last seen), earliest first.
    stretches: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Uptime {
    /// The longest silence between two passes of a running scheduler: three
    /// intervals, and at least two minutes, so that a pass that took a while
    /// (a large opening, a slow database) still counts as running.
    pub fn gap(interval_secs: u64) -> Duration {
        let three = i64::try_from(interval_secs.saturating_mul(3)).unwrap_or(i64::MAX / 1000);
        Duration::seconds(three).max(Duration::minutes(2))
    }

    /// Records a pass at `at`, then reads the stretches kept. A pass after
    /// more than `gap` of silence starts a stretch; the clock going
    /// backwards records nothing.
    pub fn record(
        conn: &mut DbConnection,
        at: DateTime<Utc>,
        gap: Duration,
    ) -> Result<Uptime, DbError> {
        let now = at.naive_utc();
        write_transaction(conn, |conn| {
            let latest: Option<(i64, NaiveDateTime)> = scheduler_uptime::table
                .order(scheduler_uptime::last_seen_at.desc())
                .select((scheduler_uptime::id, scheduler_uptime::last_seen_at))
                .first(conn)
                .optional()?;
            match latest {
                Some((_, last_seen)) if now <= last_seen => {}
                Some((id, last_seen)) if now - last_seen <= gap => {
                    diesel::update(
                        scheduler_uptime::table
                            .filter(scheduler_uptime::id.eq(id))
                            .filter(scheduler_uptime::last_seen_at.lt(now)),
                    )
                    .set(scheduler_uptime::last_seen_at.eq(now))
                    .execute(conn)?;
                }
                _ => {
                    diesel::insert_into(scheduler_uptime::table)
                        .values((
                            scheduler_uptime::started_at.eq(now),
                            scheduler_uptime::last_seen_at.eq(now),
                        ))
                        .execute(conn)?;
                }
            }
            diesel::delete(
                scheduler_uptime::table
                    .filter(scheduler_uptime::last_seen_at.lt(now - Duration::days(KEPT_FOR_DAYS))),
            )
            .execute(conn)?;
            let stretches = scheduler_uptime::table
                .order(scheduler_uptime::started_at.asc())
                .select((scheduler_uptime::started_at, scheduler_uptime::last_seen_at))
                .load::<(NaiveDateTime, NaiveDateTime)>(conn)?
                .into_iter()
                .map(|(started, last)| (started.and_utc(), last.and_utc()))
                .collect();
            Ok(Uptime { stretches })
        })
    }

    /// When a running scheduler first found a slot at `slot` due, as far as
    /// the stretches tell; `now` when none after it is known (the pass
    /// judging it is running now).
    pub fn first_seen(&self, slot: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        if self
            .stretches
            .iter()
            .any(|&(started, last)| started <= slot && slot <= last)
        {
            return slot;
        }
        self.stretches
            .iter()
            .map(|&(started, _)| started)
            .filter(|&started| started > slot)
            .min()
            .unwrap_or(now)
            .min(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 instant")
    }

    #[test]
    fn a_slot_inside_a_stretch_was_found_due_when_it_came() {
        let uptime = Uptime {
            stretches: vec![(at("2027-03-01T08:00:00Z"), at("2027-03-01T09:40:00Z"))],
        };
        let slot = at("2027-03-01T09:00:00Z");
        assert_eq!(uptime.first_seen(slot, at("2027-03-01T09:40:00Z")), slot);
    }

    #[test]
    fn a_slot_in_a_gap_was_found_due_when_the_next_stretch_began() {
        let uptime = Uptime {
            stretches: vec![
                (at("2027-03-01T06:00:00Z"), at("2027-03-01T08:30:00Z")),
                (at("2027-03-01T11:15:00Z"), at("2027-03-01T11:16:00Z")),
            ],
        };
        assert_eq!(
            uptime.first_seen(at("2027-03-01T09:00:00Z"), at("2027-03-01T11:16:00Z")),
            at("2027-03-01T11:15:00Z")
        );
    }

    #[test]
    fn with_nothing_recorded_a_slot_counts_from_now() {
        let now = at("2027-03-01T11:16:00Z");
        assert_eq!(
            Uptime::default().first_seen(at("2027-03-01T09:00:00Z"), now),
            now
        );
    }

    #[test]
    fn the_gap_is_three_intervals_and_never_under_two_minutes() {
        assert_eq!(Uptime::gap(30), Duration::minutes(2));
        assert_eq!(Uptime::gap(300), Duration::minutes(15));
    }
}
