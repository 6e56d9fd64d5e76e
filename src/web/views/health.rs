//! The facilitator's circle health page: who might welcome a hand, in
//! caring words. It names people so that someone can reach out to them,
//! never to rank or shame them.

use maud::{Markup, html};

use super::circles::FailureLine;
use super::layout::page_for;

/// A commitment that has been open for a while.
pub struct CarriedLine {
    pub membership_id: i64,
    pub member: String,
    pub body: String,
    pub made_in_round: i32,
    pub rounds_carried: i32,
    pub help_wanted: bool,
}

/// A member nobody has written to lately.
pub struct QuietLine {
    pub membership_id: i64,
    pub name: String,
}

pub struct HealthPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    /// `None` before the first round.
    pub latest_round: Option<i32>,
    pub carried_rounds: i32,
    pub quiet_rounds: i64,
    pub carried: Vec<CarriedLine>,
    pub quiet: Vec<QuietLine>,
    pub unheard_rounds: i64,
    /// Members not heard from lately, by name.
    pub unheard: Vec<QuietLine>,
    pub failures: Vec<FailureLine>,
}

fn rounds_word(n: i64) -> &'static str {
    if n == 1 { "round" } else { "rounds" }
}

pub fn health(page: &HealthPage<'_>) -> Markup {
    let id = page.circle_id;
    let title = format!("Circle health · {}", page.circle_name);
    page_for(
        page.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (id) } { "← " (page.circle_name) } }
            h1 { "Circle health" }
            p.muted {
                "Only facilitators see this page. It points to where someone might "
                "welcome a word or a hand; it is not a score, and nobody here is behind."
            }
            @if page.latest_round.is_none() {
                p { "Once the first rounds have run, this page will show who might welcome some support." }
            } @else {
                section.carried {
                    h2 { "Commitments carried a while" }
                    p.muted {
                        "Still open, or carried with \u{201c}not yet\u{201d}, "
                        (page.carried_rounds) " rounds or more after they were made. "
                        "Carrying something is often a sign it matters; a check-in, some help, "
                        "or permission to release it can all be kind."
                    }
                    @if page.carried.is_empty() {
                        p.empty { "Nothing has been carried that long." }
                    } @else {
                        ul {
                            @for line in &page.carried {
                                li data-membership=(line.membership_id) {
                                    strong { (line.member) } ": " (line.body)
                                    br;
                                    span.muted {
                                        "Made in round " (line.made_in_round) ", carried for "
                                        (line.rounds_carried) " " (rounds_word(i64::from(line.rounds_carried))) "."
                                        @if line.help_wanted { " They have said they could use help." }
                                    }
                                }
                            }
                        }
                    }
                }
                section.quiet {
                    h2 { "Members who might welcome a word" }
                    p.muted {
                        "Nobody else has offered support on their commitments in the last "
                        (page.quiet_rounds) " " (rounds_word(page.quiet_rounds)) ". "
                        "Members who joined more recently than that are not listed."
                    }
                    @if page.quiet.is_empty() {
                        p.empty { "Everyone has heard from someone lately." }
                    } @else {
                        ul {
                            @for member in &page.quiet {
                                li data-membership=(member.membership_id) {
                                    (member.name)
                                    " · "
                                    a href={ "/circles/" (id) "/members/" (member.membership_id) "/history" } { "history" }
                                }
                            }
                        }
                    }
                }
            }
            @if page.latest_round.is_some() {
                section.unheard {
                    h2 { "Members not heard from" }
                    p.muted {
                        "No check-in, no skip and no days away in the last "
                        (page.unheard_rounds) " closed rounds. A word from you may help. "
                        "Members who joined more recently than that are not listed."
                    }
                    @if page.unheard.is_empty() {
                        p.empty { "Everyone has been heard from lately." }
                    } @else {
                        ul {
                            @for member in &page.unheard {
                                li { (member.name) }
                            }
                        }
                    }
                }
            }
            section.failures {
                h2 { "Emails that did not arrive" }
                @if page.failures.is_empty() {
                    p.empty { "No email to the circle's members has failed to arrive." }
                } @else {
                    p.muted { "These members may have missed a check-in, reminder or digest. Check their addresses with them." }
                    ul {
                        @for failure in &page.failures {
                            li { (failure.member) " · " (failure.kind) " · " (failure.when) ": " (failure.what) }
                        }
                    }
                }
            }
        },
    )
}
