//! Two ways of binding values that keep the scheduler's statements cheap on
//! SQLite, where opening thousands of rounds runs the same few statements
//! a hundred times over.
//!
//! - [`one_of`]: a column in a list of values, with the same SQL text
//!   however long the list. diesel writes `eq_any` on SQLite as `IN (?, ?,
//!   ...)`, one placeholder per value, so its statement is prepared anew on
//!   every run; on PostgreSQL it is already `= ANY($1)`.
//! - [`Stamp`]: a timestamp bound as SQLite's text without going through
//!   chrono's format strings, which were a fourteenth of an opening's time.

use std::sync::OnceLock;

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Array, Bool, Text, Timestamp};
use diesel::sqlite::Sqlite;
use serde::Serialize;

use super::MultiBackend;

/// `column IN (values)`. On SQLite the values go in as one JSON array read
/// back by `json_each`, so the statement's text is the same for any list
/// and diesel keeps it prepared. An empty list matches nothing.
pub fn one_of<C: Expression, T: Serialize>(column: C, values: &[T]) -> OneOf<'_, C, T> {
    OneOf {
        column,
        values,
        json: OnceLock::new(),
    }
}

/// See [`one_of`].
#[derive(Debug, Clone)]
pub struct OneOf<'v, C, T> {
    column: C,
    values: &'v [T],
    /// The values as SQLite binds them, written on first use.
    json: OnceLock<String>,
}

impl<C, T: Serialize> OneOf<'_, C, T> {
    fn json(&self) -> &str {
        self.json.get_or_init(|| {
            // A list of numbers or strings always serialises.
            serde_json::to_string(self.values).unwrap_or_else(|_| "[]".to_string())
        })
    }
}

/// The statement's text depends on the column alone, not on the values'
/// type or how many there are.
impl<C: QueryId, T> QueryId for OneOf<'_, C, T> {
    type QueryId = OneOf<'static, C::QueryId, ()>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

impl<C, T> Expression for OneOf<'_, C, T> {
    type SqlType = Bool;
}

impl<C, T, QS> AppearsOnTable<QS> for OneOf<'_, C, T>
where
    C: AppearsOnTable<QS>,
    Self: Expression,
{
}

impl<C, T, GB> ValidGrouping<GB> for OneOf<'_, C, T>
where
    C: ValidGrouping<GB>,
{
    type IsAggregate = C::IsAggregate;
}

impl<C, T> QueryFragment<Sqlite> for OneOf<'_, C, T>
where
    C: QueryFragment<Sqlite>,
    T: Serialize,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(self.json())?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C, T> QueryFragment<Pg> for OneOf<'_, C, T>
where
    C: Expression + QueryFragment<Pg>,
    C::SqlType: diesel::sql_types::SqlType,
    Pg: diesel::sql_types::HasSqlType<C::SqlType>,
    [T]: ToSql<Array<C::SqlType>, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ANY(");
        out.push_bind_param::<Array<C::SqlType>, _>(self.values)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<C, T> QueryFragment<MultiBackend> for OneOf<'_, C, T>
where
    Self: QueryFragment<Sqlite> + QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}

/// A timestamp to bind. It reads back exactly as a `NaiveDateTime` bound
/// by diesel does: on SQLite the same text (`%F %T%.f`: the fraction only
/// when there is one, in 3, 6 or 9 digits), so that comparisons and
/// ordering in SQL see no difference; on PostgreSQL it is diesel's own.
/// The text is written when the stamp is made, into the stamp itself, so
/// binding it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::expression::AsExpression)]
#[diesel(sql_type = Timestamp)]
pub struct Stamp {
    at: NaiveDateTime,
    text: [u8; STAMP_LEN],
    /// How much of `text` is used; 0 when chrono has to write it.
    len: u8,
}

/// `YYYY-MM-DD HH:MM:SS.fffffffff`
const STAMP_LEN: usize = 29;

impl Stamp {
    pub fn new(at: NaiveDateTime) -> Stamp {
        let mut stamp = Stamp {
            at,
            text: [0; STAMP_LEN],
            len: 0,
        };
        let nanos = at.nanosecond();
        // chrono writes years outside 0 to 9999, and leap seconds, its own way.
        let Some(year) = u32::try_from(at.year()).ok().filter(|year| *year <= 9999) else {
            return stamp;
        };
        if nanos >= 1_000_000_000 {
            return stamp;
        }
        stamp.digits(year, 4);
        for (separator, value) in [
            (b'-', at.month()),
            (b'-', at.day()),
            (b' ', at.hour()),
            (b':', at.minute()),
            (b':', at.second()),
        ] {
            stamp.push(separator);
            stamp.digits(value, 2);
        }
        if nanos != 0 {
            stamp.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                stamp.digits(nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                stamp.digits(nanos / 1_000, 6);
            } else {
                stamp.digits(nanos, 9);
            }
        }
        stamp
    }

    fn push(&mut self, byte: u8) {
        self.text[usize::from(self.len)] = byte;
        self.len += 1;
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, value: u32, width: u32) {
        for place in (0..width).rev() {
            let digit = (value / 10u32.pow(place) % 10) as u8;
            self.push(b'0' + digit);
        }
    }

    /// The SQLite text, unless chrono has to write it.
    fn text(&self) -> Option<&str> {
        match self.len {
            0 => None,
            len => std::str::from_utf8(&self.text[..usize::from(len)]).ok(),
        }
    }
}

impl ToSql<Timestamp, Sqlite> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        match self.text() {
            Some(text) => out.set_value(text),
            None => return ToSql::<Timestamp, Sqlite>::to_sql(&self.at, out),
        }
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Timestamp, Pg>::to_sql(&self.at, out)
    }
}

impl ToSql<Timestamp, MultiBackend> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Timestamp, self));
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn chrono_text(at: NaiveDateTime) -> String {
        at.format("%F %T%.f").to_string()
    }

    #[test]
    fn a_stamp_is_written_as_diesel_writes_a_timestamp_on_sqlite() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 1).expect("a date");
        for (hour, minute, second, nanos) in [
            (0, 0, 0, 0),
            (9, 5, 7, 0),
            (23, 59, 59, 120_000_000),
            (12, 30, 1, 123_456_000),
            (12, 30, 1, 123_456_789),
            (1, 2, 3, 1),
            (1, 2, 3, 999_999_999),
        ] {
            let at = day
                .and_hms_nano_opt(hour, minute, second, nanos)
                .expect("a time");
            assert_eq!(Stamp::new(at).text(), Some(chrono_text(at).as_str()));
        }
        let early = NaiveDate::from_ymd_opt(7, 1, 9)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a time");
        assert_eq!(Stamp::new(early).text(), Some(chrono_text(early).as_str()));
    }

    #[test]
    fn a_stamp_leaves_what_it_cannot_write_to_chrono() {
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a time");
        assert_eq!(Stamp::new(far).text(), None);
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .expect("a leap second");
        assert_eq!(Stamp::new(leap).text(), None);
    }
}
