//! The scheduler's own bindings, [`one_of`] and [`Stamp`], on real
//! databases: they must find and write exactly what diesel's `eq_any` and
//! `NaiveDateTime` would.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::binds::{Stamp, one_of};
use shoulder::db::schema::suppressed_addresses;

use crate::on_both_backends;
use crate::support::TestApp;

fn at(hour: u32, nanos: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2027, 3, 1)
        .and_then(|day| day.and_hms_nano_opt(hour, 30, 15, nanos))
        .expect("a time")
}

/// Writes one suppressed address per entry, its `created_at` bound as a
/// [`Stamp`].
async fn write_stamped(app: &TestApp, rows: Vec<(String, NaiveDateTime)>) {
    app.state
        .db
        .run(move |conn| {
            for (email, created_at) in rows {
                diesel::insert_into(suppressed_addresses::table)
                    .values((
                        suppressed_addresses::email.eq(email),
                        suppressed_addresses::reason.eq("test"),
                        suppressed_addresses::created_at.eq(Stamp::new(created_at)),
                    ))
                    .execute(conn)?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .expect("the rows are written");
}

on_both_backends! {
    async fn one_of_finds_exactly_the_listed_values_however_many(app) {
        let addresses: Vec<String> = (0..250).map(|n| format!("p{n}@example.org")).collect();
        write_stamped(&app, addresses.iter().map(|a| (a.clone(), at(9, 0))).collect()).await;
        let found = app
            .state
            .db
            .run(|conn| {
                let mut found = Vec::new();
                // The same statement, run with lists of several lengths.
                for wanted in [
                    vec!["p3@example.org", "p200@example.org", "nobody@example.org"],
                    vec![],
                    vec!["p7@example.org"],
                    (0..250).map(|n| if n % 2 == 0 { "p0@example.org" } else { "p249@example.org" }).collect(),
                ] {
                    let mut emails: Vec<String> = suppressed_addresses::table
                        .filter(one_of(suppressed_addresses::email, &wanted))
                        .select(suppressed_addresses::email)
                        .load(conn)?;
                    emails.sort();
                    found.push(emails);
                }
                let ids: Vec<i64> = suppressed_addresses::table
                    .select(suppressed_addresses::id)
                    .order(suppressed_addresses::id.asc())
                    .limit(3)
                    .load(conn)?;
                let by_id: i64 = suppressed_addresses::table
                    .filter(one_of(suppressed_addresses::id, &ids[1..]))
                    .count()
                    .get_result(conn)?;
                Ok::<_, DbError>((found, by_id))
            })
            .await
            .expect("the reads run");
        assert_eq!(
            found.0,
            vec![
                vec!["p200@example.org".to_string(), "p3@example.org".to_string()],
                vec![],
                vec!["p7@example.org".to_string()],
                vec!["p0@example.org".to_string(), "p249@example.org".to_string()],
            ]
        );
        assert_eq!(found.1, 2);
    }
}

on_both_backends! {
    async fn a_stamp_reads_back_and_compares_as_a_timestamp(app) {
        let times = [at(9, 0), at(10, 250_000_000), at(11, 123_456_000), at(12, 987_654_000)];
        write_stamped(
            &app,
            times.iter().enumerate().map(|(n, t)| (format!("t{n}@example.org"), *t)).collect(),
        )
        .await;
        let (read, matched, before) = app
            .state
            .db
            .run(move |conn| {
                let read: Vec<NaiveDateTime> = suppressed_addresses::table
                    .order(suppressed_addresses::id.asc())
                    .select(suppressed_addresses::created_at)
                    .load(conn)?;
                // Found again by diesel's own binding of the same instant,
                // and ordered against it.
                let mut matched = Vec::new();
                for time in times {
                    matched.push(
                        suppressed_addresses::table
                            .filter(suppressed_addresses::created_at.eq(time))
                            .count()
                            .get_result::<i64>(conn)?,
                    );
                }
                let before: i64 = suppressed_addresses::table
                    .filter(suppressed_addresses::created_at.lt(at(11, 123_457_000)))
                    .count()
                    .get_result(conn)?;
                Ok::<_, DbError>((read, matched, before))
            })
            .await
            .expect("the reads run");
        assert_eq!(read, times.to_vec());
        assert_eq!(matched, vec![1, 1, 1, 1]);
        assert_eq!(before, 3);
    }
}
