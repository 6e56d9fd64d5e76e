//! The rows that round mail brings with it: round links, one-click and
//! unsubscribe tokens, shoulder-up pairs and the emails themselves.
//!
//! They are gathered in memory while the emails are written and inserted
//! together just before the transaction commits, as a few multi-row
//! statements rather than several single-row ones per member. Opening the
//! rounds of thousands of circles is mostly these inserts, and on both
//! backends the cost of a statement is its round trip and parsing far more
//! than its rows. Nothing is visible to anyone before the commit, so the
//! order of the writes inside the transaction changes nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::check_in::Outcome;
use crate::auth::Token;
use crate::db::schema::{action_tokens, pairings, round_links};
use crate::db::{DbConnection, DbError, ROWS_PER_STATEMENT};
use crate::mail::outbox::{self, NewEmail};

#[derive(Insertable)]
#[diesel(table_name = round_links, treat_none_as_default_value = false)]
struct NewRoundLink {
    round_id: i64,
    membership_id: i64,
    token_hash: String,
}

#[derive(Insertable)]
#[diesel(table_name = action_tokens, treat_none_as_default_value = false)]
struct NewActionToken {
    token_hash: String,
    kind: &'static str,
    membership_id: i64,
    round_id: Option<i64>,
    commitment_id: Option<i64>,
    choice: Option<&'static str>,
    expires_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = pairings, treat_none_as_default_value = false)]
struct NewPairing {
    round_id: i64,
    giver_membership_id: i64,
    receiver_membership_id: i64,
}

/// Rows waiting for [`Writes::insert`].
#[derive(Default)]
pub struct Writes {
    round_links: Vec<NewRoundLink>,
    tokens: Vec<NewActionToken>,
    pairings: Vec<NewPairing>,
    emails: Vec<NewEmail>,
}

/// Inserts `$rows` into `$table`: on PostgreSQL in one binary `COPY`, which
/// skips parsing and binding a statement of thousands of parameters; on
/// SQLite, where a prepared multi-row insert is already cheap, as inserts of
/// [`ROWS_PER_STATEMENT`] rows. None of these tables needs a conflict
/// clause, which `COPY` has not: their rows are new keys. A macro because
/// each table's insert is its own type.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match &mut *$conn {
            DbConnection::Postgresql(conn) if !$rows.is_empty() => {
                diesel::copy_from($table)
                    .from_insertable(&$rows)
                    .execute(conn)?;
            }
            DbConnection::Postgresql(_) => {}
            DbConnection::Sqlite(conn) => {
                for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
                    match <&[_; ROWS_PER_STATEMENT]>::try_from(chunk) {
                        Ok(full) => diesel::insert_into($table).values(full).execute(conn)?,
                        Err(_) => diesel::insert_into($table).values(chunk).execute(conn)?,
                    };
                }
            }
        }
    };
}

impl Writes {
    /// A new round link for one member and round; see [`super::links`].
    pub fn round_link(&mut self, round_id: i64, membership_id: i64) -> Token {
        let token = Token::generate_ordered();
        self.round_links.push(NewRoundLink {
            round_id,
            membership_id,
            token_hash: token.hash().as_str().to_string(),
        });
        token
    }

    /// A new one-click link of `kind`; see [`super::actions`].
    pub fn action(
        &mut self,
        kind: &'static str,
        membership_id: i64,
        round_id: Option<i64>,
        follow: Option<(i64, Outcome)>,
        expires_at: NaiveDateTime,
    ) -> Token {
        let token = Token::generate_ordered();
        self.tokens.push(NewActionToken {
            token_hash: token.hash().as_str().to_string(),
            kind,
            membership_id,
            round_id,
            commitment_id: follow.map(|f| f.0),
            choice: follow.map(|f| f.1.as_str()),
            expires_at,
        });
        token
    }

    /// A round's shoulder-up pairs, (giver, receiver).
    pub fn pairs(&mut self, round_id: i64, pairs: &[(i64, i64)]) {
        self.pairings
            .extend(pairs.iter().map(|&(giver, receiver)| NewPairing {
                round_id,
                giver_membership_id: giver,
                receiver_membership_id: receiver,
            }));
    }

    pub fn email(&mut self, email: NewEmail) {
        self.emails.push(email);
    }

    /// Writes everything gathered, in the caller's transaction.
    pub fn insert(self, conn: &mut DbConnection, now: NaiveDateTime) -> Result<(), DbError> {
        insert_all!(conn, round_links::table, self.round_links);
        insert_all!(conn, action_tokens::table, self.tokens);
        insert_all!(conn, pairings::table, self.pairings);
        outbox::enqueue_all(conn, now, &self.emails)?;
        Ok(())
    }
}
