//! Bringing an existing group into a circle from a CSV file (`email,name`),
//! for operators moving a group that already meets.
//!
//! All or nothing: every row is checked first, and a file with any bad row
//! adds nobody. The rows that pass are added in one transaction, each with a
//! welcome email in the outbox.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::store::{self, CircleStatus};
use crate::auth::sign_in::DisplayName;
use crate::db::schema::{memberships, people};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::EmailAddress;
use crate::mail::outbox::{self, NewEmail};

/// One good row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: usize,
    pub email: EmailAddress,
    pub name: DisplayName,
}

/// One bad row, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: usize,
    pub reason: String,
}

/// Splits one CSV line into fields: commas separate, double quotes may wrap
/// a field, and `""` inside quotes is a quote.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => out.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(field);
    Ok(out)
}

/// Reads the file. A first line `email,name` is a header and skipped.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, Vec<RowProblem>> {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<EmailAddress, usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let mut problem = |reason: String| problems.push(RowProblem { line, reason });
        let cells = match fields(raw) {
            Ok(cells) => cells,
            Err(reason) => {
                problem(reason);
                continue;
            }
        };
        if line == 1
            && cells
                .first()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("email"))
        {
            continue;
        }
        if cells.len() != 2 {
            problem(format!(
                "expected 2 columns (email,name), found {}",
                cells.len()
            ));
            continue;
        }
        let email = match EmailAddress::parse(&cells[0]) {
            Ok(email) => email,
            Err(error) => {
                problem(format!("email: {error}"));
                continue;
            }
        };
        let name = match DisplayName::parse(&cells[1]) {
            Ok(name) => name,
            Err(error) => {
                problem(format!("name: {error}"));
                continue;
            }
        };
        if let Some(first) = seen.get(&email) {
            problem(format!("{email} is already on line {first}"));
            continue;
        }
        seen.insert(email.clone(), line);
        rows.push(ImportRow { line, email, name });
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(RowProblem {
            line: 0,
            reason: "the file has no rows".into(),
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Added,
    AlreadyMember,
}

#[derive(Debug)]
pub enum ImportOutcome {
    Imported(Vec<(ImportRow, RowOutcome)>),
    NoSuchCircle,
    NotActive(CircleStatus),
    /// Adding everyone would pass the circle's size cap.
    OverCap {
        cap: i32,
        members: i64,
        new: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        ImportError::Db(DbError::Query(error))
    }
}

/// Adds the rows to the circle, each with a welcome email, in one transaction.
pub fn import(
    conn: &mut DbConnection,
    public_base: &str,
    circle_id: i64,
    rows: Vec<ImportRow>,
    now: DateTime<Utc>,
) -> Result<ImportOutcome, ImportError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let Some(circle) = store::find(conn, circle_id)? else {
            return Ok(ImportOutcome::NoSuchCircle);
        };
        if circle.status() != CircleStatus::Active {
            return Ok(ImportOutcome::NotActive(circle.status()));
        }
        let mut plan = Vec::new();
        for row in rows {
            let active: i64 = memberships::table
                .inner_join(people::table)
                .filter(memberships::circle_id.eq(circle_id))
                .filter(memberships::status.eq(store::STATUS_ACTIVE))
                .filter(people::email.eq(row.email.as_str()))
                .count()
                .get_result(conn)?;
            let outcome = if active > 0 {
                RowOutcome::AlreadyMember
            } else {
                RowOutcome::Added
            };
            plan.push((row, outcome));
        }
        let members = store::count_active(conn, circle_id)?;
        let new = plan.iter().filter(|(_, o)| *o == RowOutcome::Added).count();
        if members + new as i64 > i64::from(circle.size_cap) {
            return Ok(ImportOutcome::OverCap {
                cap: circle.size_cap,
                members,
                new,
            });
        }
        for (row, outcome) in &plan {
            if *outcome == RowOutcome::AlreadyMember {
                continue;
            }
            let person_id =
                store::find_or_create_person(conn, row.email.as_str(), row.name.as_str(), at)?;
            store::add_member(conn, circle_id, person_id, store::ROLE_MEMBER, at)?;
            let context = json!({
                "name": row.name.as_str(),
                "circle": circle.name,
                "purpose": circle.purpose,
                "sign_in": format!("{public_base}/sign-in?next=/circles/{circle_id}"),
            });
            outbox::enqueue(
                conn,
                at,
                &NewEmail {
                    kind: "welcome",
                    to: row.email.clone(),
                    to_name: Some(row.name.as_str().to_string()),
                    round_id: None,
                    membership_id: None,
                    context: context.into(),
                    headers: Vec::new(),
                },
            )?;
        }
        Ok(ImportOutcome::Imported(plan))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_header_quotes_and_blank_lines() {
        let rows = parse_csv(
            "email,name\r\nada@example.org,Ada\n\n\"bea@example.org\",\"Bea \"\"B\"\" Quinn\"\n",
        )
        .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name.as_str(), "Bea \"B\" Quinn");
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn names_every_bad_row_with_its_line() {
        let problems = parse_csv(
            "ada@example.org,Ada\nnot an address,Bo\ncy@example.org\nada@example.org,Ada again\ndee@example.org,\"Dee\n",
        )
        .expect_err("bad rows");
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(problems[0].reason.starts_with("email:"));
        assert!(problems[1].reason.contains("2 columns"));
        assert!(problems[2].reason.contains("already on line 1"));
        assert!(problems[3].reason.contains("not closed"));
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(parse_csv("email,name\n").is_err());
        assert!(parse_csv("").is_err());
    }
}
