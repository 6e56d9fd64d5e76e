//! What a member's reply says, line by line, once the quoted email and the
//! signature are cut away (see [`super::trim`]):
//!
//! - `N <outcome>[: note]` reports on their open commitment number N, as the
//!   check-in email numbers them: done, partly, not yet (also "not-yet" and
//!   "notyet"), release (also "released"), in any case;
//! - `+ text` is a commitment for the next round;
//! - a reply whose whole text is "skip" skips the round;
//! - every other line is the reflection, as written.
//!
//! A line that looks like a report but cannot be one (there is no
//! commitment 4) is not taken as reflection: it is named in the receipt, so
//! the member sees what was not recorded and why.

use crate::rounds::check_in::{MAX_COMMITMENT_LEN, MAX_COMMITMENTS, MAX_NOTE_LEN, Outcome};
use crate::text::{self, sentence};

/// What a reply asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The whole reply was "skip".
    pub skip: bool,
    /// (commitment number as the email showed it, from 1; outcome; note).
    pub follow: Vec<(usize, Outcome, Option<String>)>,
    pub commitments: Vec<String>,
    /// The other lines, as written; empty when there were none.
    pub reflection: String,
    /// Lines that could not be taken, and why.
    pub problems: Vec<Problem>,
}

/// A line of the reply that was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// From 1, counting the lines of the reply as trimmed; 0 for a
    /// problem found once the lines were put together (a fourth commitment
    /// where the round page already holds three).
    pub line: usize,
    pub text: String,
    pub why: String,
}

/// Reads `text` (the member's own words) for a member with `open` open
/// commitments, numbered 1 to `open`.
pub fn read(text: &str, open: usize) -> Reply {
    let mut reply = Reply::default();
    if is_skip(text) {
        reply.skip = true;
        return reply;
    }
    let mut reflection: Vec<&str> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        let mut problem = |why: String| {
            reply.problems.push(Problem {
                line: number,
                text: trimmed.to_string(),
                why,
            })
        };
        if let Some(commitment) = trimmed.strip_prefix('+') {
            match text::single_line(commitment, MAX_COMMITMENT_LEN) {
                Ok(_) if reply.commitments.len() == MAX_COMMITMENTS => problem(format!(
                    "A round holds at most {MAX_COMMITMENTS} commitments; this one was left out."
                )),
                Ok(commitment) => reply.commitments.push(commitment),
                Err(error) => problem(sentence(&error.to_string())),
            }
            continue;
        }
        let Some((which, outcome, note)) = report(trimmed) else {
            reflection.push(line.trim_end());
            continue;
        };
        if which == 0 || which > open {
            problem(match open {
                0 => format!("There is no commitment {which}: you have none open."),
                1 => format!("There is no commitment {which}: yours is number 1."),
                _ => format!("There is no commitment {which}: yours are 1 to {open}."),
            });
            continue;
        }
        if reply.follow.iter().any(|(n, ..)| *n == which) {
            problem(format!(
                "Commitment {which} was already reported on above; the first report is kept."
            ));
            continue;
        }
        match note.map(|note| text::multi_line(note, MAX_NOTE_LEN, false)) {
            Some(Err(error)) => problem(sentence(&error.to_string())),
            Some(Ok(note)) => {
                let note = Some(note).filter(|n| !n.is_empty());
                reply.follow.push((which, outcome, note));
            }
            None => reply.follow.push((which, outcome, None)),
        }
    }
    reply.reflection = reflection.join("\n").trim().to_string();
    reply
}

/// A reply that is, all of it, "skip" (a full stop or exclamation mark
/// allowed).
fn is_skip(text: &str) -> bool {
    text.trim()
        .trim_end_matches(['.', '!'])
        .eq_ignore_ascii_case("skip")
}

/// `N <outcome>[: note]`, with `N` followed by `.`, `)` or `:` as people
/// also number lists; `None` for any other line.
fn report(line: &str) -> Option<(usize, Outcome, Option<&str>)> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits > 3 {
        return None;
    }
    let which: usize = line[..digits].parse().ok()?;
    let rest = line[digits..].trim_start_matches(['.', ')', ':']);
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    // A note follows a colon, or a dash with spaces around it ("not-yet"
    // has one without).
    let split = rest.split_once(':').or_else(|| {
        [" - ", " – ", " — "]
            .iter()
            .find_map(|dash| rest.split_once(dash))
    });
    let (said, note) = match split {
        Some((said, note)) => (said.trim(), Some(note.trim())),
        None => (rest.trim(), None),
    };
    let outcome = outcome(said)?;
    Some((which, outcome, note))
}

/// An outcome as people write it.
fn outcome(said: &str) -> Option<Outcome> {
    let word: String = said
        .trim_end_matches(['.', '!'])
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    match word.as_str() {
        "done" => Some(Outcome::Done),
        "partly" => Some(Outcome::Partly),
        "notyet" => Some(Outcome::NotYet),
        "release" | "released" => Some(Outcome::Release),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_in_the_email_reads_as_it_says() {
        let reply = read(
            "1 done: called on Tuesday\n2 not yet\n+ Read the tenants' union brief\n\
             + Ask Sam what would help\nA quieter week. I listened more.",
            2,
        );
        assert_eq!(
            reply.follow,
            [
                (1, Outcome::Done, Some("called on Tuesday".into())),
                (2, Outcome::NotYet, None)
            ]
        );
        assert_eq!(
            reply.commitments,
            ["Read the tenants' union brief", "Ask Sam what would help"]
        );
        assert_eq!(reply.reflection, "A quieter week. I listened more.");
        assert!(reply.problems.is_empty() && !reply.skip);
    }

    #[test]
    fn outcomes_are_read_in_the_forms_people_type() {
        for (line, outcome) in [
            ("1 DONE", Outcome::Done),
            ("1. Partly", Outcome::Partly),
            ("1) not-yet", Outcome::NotYet),
            ("1: notyet", Outcome::NotYet),
            ("1 Not Yet.", Outcome::NotYet),
            ("1 release", Outcome::Release),
            ("1 released", Outcome::Release),
        ] {
            assert_eq!(read(line, 1).follow, [(1, outcome, None)], "{line}");
        }
        assert_eq!(
            read("1 partly - half of it", 1).follow,
            [(1, Outcome::Partly, Some("half of it".into()))]
        );
    }

    #[test]
    fn a_report_on_a_commitment_that_is_not_there_is_named() {
        let reply = read("1 done\n2 done\n4 partly: tried", 2);
        assert_eq!(reply.follow.len(), 2);
        assert_eq!(reply.problems.len(), 1);
        let problem = &reply.problems[0];
        assert_eq!(
            (problem.line, problem.text.as_str()),
            (3, "4 partly: tried")
        );
        assert_eq!(problem.why, "There is no commitment 4: yours are 1 to 2.");
        assert!(reply.reflection.is_empty(), "not taken as reflection");
        let none = read("1 done", 0);
        assert_eq!(
            none.problems[0].why,
            "There is no commitment 1: you have none open."
        );
    }

    #[test]
    fn numbers_that_start_a_sentence_are_reflection() {
        let reply = read("2 things went well this week.\n10 minutes a day helped.", 2);
        assert!(reply.follow.is_empty() && reply.problems.is_empty());
        assert_eq!(
            reply.reflection,
            "2 things went well this week.\n10 minutes a day helped."
        );
    }

    #[test]
    fn commitments_keep_the_page_s_limits() {
        let long = format!("+ {}", "x".repeat(MAX_COMMITMENT_LEN + 1));
        let reply = read(&format!("+ One\n{long}\n+ Two\n+ Three\n+ Four\n+   "), 0);
        assert_eq!(reply.commitments, ["One", "Two", "Three"]);
        let lines: Vec<usize> = reply.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 5, 6]);
        assert!(reply.problems[0].why.contains("limited to 280 characters"));
        assert!(reply.problems[1].why.contains("at most 3"));
        assert_eq!(reply.problems[2].why, "This cannot be empty.");
    }

    #[test]
    fn the_same_commitment_reported_twice_keeps_the_first() {
        let reply = read("1 done\n1 not yet", 1);
        assert_eq!(reply.follow, [(1, Outcome::Done, None)]);
        assert_eq!(reply.problems[0].line, 2);
    }

    #[test]
    fn skip_alone_skips_and_skip_in_a_sentence_does_not() {
        for text in ["skip", " Skip.\n", "SKIP!"] {
            assert!(read(text, 3).skip, "{text:?}");
        }
        let reply = read("I might skip the meeting.", 3);
        assert!(!reply.skip);
        assert_eq!(reply.reflection, "I might skip the meeting.");
    }

    #[test]
    fn control_characters_in_a_commitment_are_refused() {
        let reply = read("+ Call\u{202E}Sam", 0);
        assert!(reply.commitments.is_empty());
        assert!(
            reply.problems[0]
                .why
                .contains("invisible control character")
        );
    }
}
