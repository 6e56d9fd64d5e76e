//! The pages behind one-click choices in round emails. They need no
//! sign-in, so they name only the circle, the round and the commitment.

use chrono::NaiveDate;
use maud::{Markup, html};

use super::layout::page;
use super::problems::{self, Problem, described_by, invalid, message};
use crate::rounds::actions::{Choice, Pending, StillOpen, Unusable};
use crate::rounds::away::{AwayDates, AwayForm, FieldErrors};
use crate::rounds::check_in::Outcome;

fn round_name(pending: &Pending) -> String {
    format!("{}, round {}", pending.circle_name, pending.round_number)
}

fn meaning(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "You did it.",
        Outcome::Partly => "Some of it happened.",
        Outcome::NotYet => "It carries into the next round.",
        Outcome::Release => "You let it go honestly; that is not a miss.",
    }
}

/// The away form's problems for the summary at its top, first day first.
fn away_problems(errors: &FieldErrors) -> Vec<Problem<'_>> {
    ["away-starts", "away-ends"]
        .into_iter()
        .filter_map(|field| {
            errors.get(field).map(|message| Problem {
                field: Some(field),
                message,
            })
        })
        .collect()
}

/// What a GET shows: the choice, and a button that POSTs it to `action`,
/// the link's own path.
pub fn confirm(
    action: &str,
    pending: &Pending,
    away: &AwayForm,
    errors: &FieldErrors,
    today: NaiveDate,
) -> Markup {
    page(
        "Confirm",
        html! {
            p.muted { (round_name(pending)) }
            @match &pending.choice {
                Choice::Follow { commitment, outcome, .. } => {
                    h1 { "Mark as " (outcome.label()) "?" }
                    blockquote { p { (commitment) } }
                    p { (meaning(*outcome)) " You can add a note or change it on the round page until the round closes." }
                    form method="post" action=(action) {
                        p { button type="submit" { "Yes, mark it " (outcome.label()) } }
                    }
                }
                Choice::Skip => {
                    h1 { "Skip this round?" }
                    p { "No reminder will come for this round, and the digest will say you are away. Your open commitments wait for the next round." }
                    form method="post" action=(action) {
                        p { button type="submit" { "Skip round " (pending.round_number) } }
                    }
                }
                Choice::Away => {
                    h1 { "Away for a while?" }
                    p { "On the days you give, you get no check-in or reminder from " (pending.circle_name) ", and you are left out of the shoulder-up pairs. Both days count." }
                    (problems::summary(&away_problems(errors)))
                    form method="post" action=(action) {
                        label for="away-starts" { "First day away" }
                        input #away-starts type="date" name="starts" value=(away.starts) min=(today.format("%Y-%m-%d"))
                            aria-invalid=[invalid(errors.get("away-starts"))]
                            aria-describedby=[described_by("away-starts", errors.get("away-starts"))];
                        (message("away-starts", errors.get("away-starts").map(String::as_str)))
                        label for="away-ends" { "Last day away" }
                        input #away-ends type="date" name="ends" value=(away.ends) min=(today.format("%Y-%m-%d"))
                            aria-invalid=[invalid(errors.get("away-ends"))]
                            aria-describedby=[described_by("away-ends", errors.get("away-ends"))];
                        (message("away-ends", errors.get("away-ends").map(String::as_str)))
                        p { button type="submit" { "Set away dates" } }
                    }
                }
            }
        },
    )
}

/// What the POST answers: what was recorded, what is still open in the
/// round, and the way to the round page (`round_page`, when the email's
/// key opens it; else by signing in).
pub fn done(
    pending: &Pending,
    away: Option<AwayDates>,
    round_page: Option<&str>,
    still_open: &StillOpen,
) -> Markup {
    let signed_in_page = format!(
        "/circles/{}/rounds/{}",
        pending.circle_id, pending.round_number
    );
    page(
        "Recorded",
        html! {
            p.muted { (round_name(pending)) }
            @match &pending.choice {
                Choice::Follow { commitment, outcome, .. } => {
                    h1 { "Marked " (outcome.label()) }
                    blockquote { p { (commitment) } }
                    p { (meaning(*outcome)) }
                }
                Choice::Skip => {
                    h1 { "You are skipping this round" }
                    p { "Rest well. The circle will be glad to have you back." }
                }
                Choice::Away => {
                    h1 { "Away dates saved" }
                    @if let Some(dates) = away {
                        p { "From " (dates.starts_on.format("%-d %B %Y")) " to " (dates.ends_on.format("%-d %B %Y")) ", no check-ins or reminders will come." }
                    }
                }
            }
            @if pending.choice != Choice::Away {
                section aria-labelledby="still-open" {
                    h2 #still-open { "Still open in this round" }
                    @if still_open.unreported.is_empty() && still_open.answered {
                        p { "Nothing else is waiting for you in this round." }
                    } @else {
                        ul {
                            @for commitment in &still_open.unreported {
                                li { "How it went: " (commitment) }
                            }
                            @if !still_open.answered {
                                li { "Your reflection and what you will do next" }
                            }
                        }
                    }
                }
            }
            @match round_page {
                Some(link) => p { a.button href=(link) { "Open your round page" } },
                None => p { "To say more, " a href=(signed_in_page) { "sign in and go to the round" } "." },
            }
        },
    )
}

/// A link that cannot be used, and why.
pub fn unusable(why: Unusable) -> Markup {
    let (title, text) = match why {
        Unusable::Unknown => (
            "This link does not work",
            "It may have been copied incompletely, or its member has left the circle.",
        ),
        Unusable::Used => (
            "This link has already been used",
            "Each choice in an email works once, and this one has done its work. To change your answer, use the round page while the round is open.",
        ),
        Unusable::Expired => (
            "This round has closed",
            "Choices in an email work only while their round is open. A late check-in is still welcome on the round page once you sign in.",
        ),
        Unusable::Settled => (
            "This commitment is already settled",
            "It has been marked in an earlier round, so there is nothing left to choose here.",
        ),
    };
    page(
        title,
        html! {
            h1 { (title) }
            p { (text) " Nothing has changed." }
            p { a href="/sign-in" { "Sign in" } " to reach your circles and their rounds." }
        },
    )
}
