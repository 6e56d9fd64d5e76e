//! The rows that round mail brings with it: each email's key (its round
//! link), shoulder-up pairs and the emails themselves.
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

use crate::auth::Token;
use crate::db::schema::{pairings, round_links};
use crate::db::{DbConnection, DbError, per_statement};
use crate::mail::outbox::{self, NewEmail};

#[derive(Insertable)]
#[diesel(table_name = round_links, treat_none_as_default_value = false)]
struct NewRoundLink {
    round_id: i64,
    membership_id: i64,
    token_hash: String,
    reply_token_hash: Option<String>,
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
    pairings: Vec<NewPairing>,
    emails: Vec<NewEmail>,
}

/// Inserts `$rows` into `$table`: on PostgreSQL in one binary `COPY`, which
/// skips parsing and binding a statement of thousands of parameters; on
/// SQLite, where a prepared multi-row insert is already cheap, as inserts of
/// [`crate::db::ROWS_PER_STATEMENT`] rows. None of these tables needs a
/// conflict clause, which `COPY` has not: their rows are new keys. A macro
/// because each table's insert is its own type.
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
                per_statement!($rows, |values| diesel::insert_into($table)
                    .values(values)
                    .execute(conn)?);
            }
        }
    };
}

impl Writes {
    /// A new key for one member's email about a round: its round link
    /// ([`super::links`]), which also names the email's one-click choices
    /// and its unsubscribe link; and, when `reply` is asked for, a key of
    /// its own for the email's Reply-To ([`crate::inbound`]).
    pub fn round_link(
        &mut self,
        round_id: i64,
        membership_id: i64,
        reply: bool,
    ) -> (Token, Option<Token>) {
        let token = Token::generate_ordered();
        let reply = reply.then(Token::generate_ordered);
        self.round_links.push(NewRoundLink {
            round_id,
            membership_id,
            token_hash: token.hash().as_str().to_string(),
            reply_token_hash: reply.as_ref().map(|t| t.hash().as_str().to_string()),
        });
        (token, reply)
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
        insert_all!(conn, pairings::table, self.pairings);
        outbox::enqueue_all(conn, now, &self.emails)?;
        Ok(())
    }
}
