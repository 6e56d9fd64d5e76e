//! Bringing an existing group into a circle from a CSV file (`email,name`),
//! for operators moving a group that already meets. The file is read with the
//! csv crate, as spreadsheets write it: a byte-order mark, quoted cells with
//! commas or line breaks, and `;` between columns where the locale uses it.
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

/// The byte-order mark some spreadsheets put before the first header.
const BYTE_ORDER_MARK: char = '\u{feff}';

/// The separator of the file: `;` where spreadsheets in many locales write
/// it, `,` otherwise. The first column is an address, which holds neither,
/// so read with commas the first record's first field still holds the `;`
/// of a semicolon file, even when a later field is quoted or holds a comma.
fn separator(text: &str) -> u8 {
    let mut reader = reader(text, b',');
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        if is_blank(&record) {
            continue;
        }
        return match record.get(0) {
            Some(first) if first.contains(';') => b';',
            _ => b',',
        };
    }
    b','
}

fn reader(text: &str, separator: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        // Rows with the wrong number of columns are reported with the
        // others, not as a reader error that would hide them.
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// Spreadsheets write a row of empty cells for an empty row.
fn is_blank(record: &csv::StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// Whether the file ends inside a quoted field. The csv crate reads a quote
/// that is never closed to the end of the file without a word, which would
/// quietly turn every row after it into part of one name; this follows the
/// crate's own rule (a quote opens a field only as its first character) so
/// that such a row can be refused instead.
fn ends_inside_quotes(text: &str, separator: char) -> bool {
    let mut inside = false;
    let mut at_field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if inside {
            if c == '"' {
                // `""` inside quotes is a quote; a lone one closes the field.
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    inside = false;
                }
            }
            continue;
        }
        match c {
            '"' if at_field_start => inside = true,
            '\n' | '\r' => at_field_start = true,
            c => at_field_start = c == separator,
        }
    }
    inside
}

/// Numbers records by the line of the file they start on. The csv reader
/// gives each record the position where it began looking for it, which is
/// before the line break that ended the previous record (when that was
/// `\r\n`) and before any blank lines it skipped; so the count goes on from
/// there to the record's first character. It only moves forward, so the
/// whole file is counted once.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record the reader starts looking for at `byte`.
    fn record_start(&mut self, byte: u64) -> usize {
        let from = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let skipped = self.text[from..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let start = from + skipped;
        if start > self.offset {
            self.line += self.text[self.offset..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.offset = start;
        }
        self.line
    }
}

/// A name broken over lines in its cell, as a spreadsheet wraps it, is one
/// name with a space where each break was.
fn join_lines(cell: &str) -> String {
    cell.lines()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the file. A first row `email,name` is a header and skipped. Quoted
/// fields may hold separators and line breaks; `;` separates instead of `,`
/// when the first row is written that way. Each row is numbered by the line
/// of the file it starts on.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, Vec<RowProblem>> {
    let text = text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text);
    let separator = separator(text);
    let unclosed = ends_inside_quotes(text, char::from(separator));
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<EmailAddress, usize> = HashMap::new();
    let mut first_row = true;
    let mut reader = reader(text, separator);
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::new(text);
    loop {
        let line = lines.record_start(reader.position().byte());
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // A text is valid UTF-8 and the reader is flexible, so this is
            // not expected; it is still the file's problem, not a panic.
            Err(error) => {
                problems.push(RowProblem {
                    line,
                    reason: error.to_string(),
                });
                break;
            }
        }
        let mut problem = |reason: String| problems.push(RowProblem { line, reason });
        // Only the last record can hold the open quote: it runs to the end.
        if unclosed && reader.position().byte() >= text.len() as u64 {
            problem("a quoted field is not closed".into());
            break;
        }
        if is_blank(&record) {
            continue;
        }
        let is_header = first_row
            && record
                .get(0)
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("email"));
        first_row = false;
        if is_header {
            continue;
        }
        if record.len() != 2 {
            problem(format!(
                "expected 2 columns (email{}name), found {}",
                char::from(separator),
                record.len()
            ));
            continue;
        }
        let email = match EmailAddress::parse(&record[0]) {
            Ok(email) => email,
            Err(error) => {
                problem(format!("email: {error}"));
                continue;
            }
        };
        let name = match DisplayName::parse(&join_lines(&record[1])) {
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
                .filter(crate::people::email_is(row.email.as_str()))
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
                    send_at: None,
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
    fn a_byte_order_mark_before_the_header_is_not_part_of_it() {
        let rows = parse_csv("\u{feff}email,name\nada@example.org,Ada\n").expect("valid");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].email.as_str(), "ada@example.org");
        assert_eq!(rows[0].line, 2);
        // Without a header the first address is read whole.
        let rows = parse_csv("\u{feff}ada@example.org,Ada\n").expect("valid");
        assert_eq!(rows[0].email.as_str(), "ada@example.org");
    }

    #[test]
    fn quoted_fields_hold_commas_and_line_breaks() {
        let rows = parse_csv(
            "email,name\r\nada@example.org,\"Lovelace, Ada\"\r\nbea@example.org,\"Bea\r\n  Quinn\r\n\"\r\ncy@example.org,Cy\r\n",
        )
        .expect("valid");
        let read: Vec<(usize, &str)> = rows.iter().map(|r| (r.line, r.name.as_str())).collect();
        assert_eq!(
            read,
            [(2, "Lovelace, Ada"), (3, "Bea Quinn"), (6, "Cy")],
            "a name broken over lines is one name, and rows after it keep their line"
        );
    }

    #[test]
    fn semicolons_separate_when_the_first_row_uses_them() {
        let rows = parse_csv(
            "email;name\nada@example.org;Lovelace, Ada\n\"bea@example.org\";\"Bea; Quinn\"\n",
        )
        .expect("valid");
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Lovelace, Ada", "Bea; Quinn"]);

        // No header: the first row decides, even with a comma in its name.
        let rows =
            parse_csv("ada@example.org;\"Lovelace, Ada\"\nbea@example.org;Bea\n").expect("valid");
        assert_eq!(rows[0].name.as_str(), "Lovelace, Ada");
        assert_eq!(rows[1].email.as_str(), "bea@example.org");

        let problems = parse_csv("email;name\nada@example.org;Ada;extra\n").expect_err("3 columns");
        assert_eq!(problems[0].line, 2);
        assert_eq!(
            problems[0].reason,
            "expected 2 columns (email;name), found 3"
        );
    }

    #[test]
    fn rows_of_empty_cells_are_blank_lines() {
        let rows = parse_csv("email;name\n;\nada@example.org;Ada\n  ;  \n").expect("valid");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 3);
    }

    #[test]
    fn bad_rows_after_a_multi_line_name_name_the_line_they_start_on() {
        let problems = parse_csv(
            "ada@example.org,\"Ada\nLovelace\"\nnot an address,Bo\n\ncy@example.org,\"Cy\n\"\n",
        )
        .expect_err("bad row");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 3);
        assert!(problems[0].reason.starts_with("email:"));
    }

    #[test]
    fn a_quote_left_open_does_not_swallow_the_rows_after_it() {
        let problems = parse_csv("ada@example.org,\"Ada\nbea@example.org,Bea\ncy@example.org,Cy\n")
            .expect_err("unclosed quote");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 1);
        assert!(problems[0].reason.contains("not closed"));
        // A quote inside an unquoted field is only a character.
        let rows = parse_csv("ada@example.org,Ada \"The Countess\n").expect("valid");
        assert_eq!(rows[0].name.as_str(), "Ada \"The Countess");
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(parse_csv("email,name\n").is_err());
        assert!(parse_csv("").is_err());
    }
}
