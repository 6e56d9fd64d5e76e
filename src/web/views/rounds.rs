//! The round page: the prompt everyone shares, and the viewer's check-in.

use maud::{Markup, html};

use super::layout::page_for;
use crate::rounds::check_in::{
    CheckInForm, FieldErrors, MAX_COMMITMENT_LEN, MAX_COMMITMENTS, MAX_NOTE_LEN, OpenCommitment,
    Outcome,
};

pub struct RoundPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    pub number: i32,
    pub question: &'a str,
    pub follow_up: Option<&'a str>,
    pub opened: String,
    pub closes: String,
    pub closed: bool,
    pub open_commitments: &'a [OpenCommitment],
    pub form: &'a CheckInForm,
    pub errors: &'a FieldErrors,
    pub checked_in: bool,
    pub notice: Option<&'a str>,
}

fn problem(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(message) = errors.get(field) {
            p.error id={ (field) "-error" } { (message) }
        }
    }
}

pub fn round(page: &RoundPage<'_>) -> Markup {
    let title = format!("{}, round {}", page.circle_name, page.number);
    let form = page.form;
    page_for(
        page.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (page.circle_id) } { "← " (page.circle_name) } }
            h1 { "Round " (page.number) }
            @if let Some(notice) = page.notice {
                p.notice role="status" { (notice) }
            }
            blockquote.prompt {
                p { (page.question) }
                @if let Some(follow_up) = page.follow_up {
                    p.muted { (follow_up) }
                }
            }
            p.muted {
                "Opened " (page.opened) ". "
                @if page.closed { "Closed " (page.closes) "." } @else { "Open until " (page.closes) "." }
            }
            @if !page.errors.is_empty() {
                p.error role="alert" { "Some answers need another look; each is marked below. Nothing was saved yet." }
                // Problems with fields this page does not show (a commitment
                // that is not the viewer's) have no place below.
                @for (field, message) in page.errors.iter() {
                    @if field.strip_prefix("follow-").is_some_and(|id| !page.open_commitments.iter().any(|c| c.id.to_string() == id)) {
                        p.error { (message) }
                    }
                }
            }
            form method="post" action={ "/circles/" (page.circle_id) "/rounds/" (page.number) } {
                h2 { "Your check-in" }
                @if page.checked_in {
                    p.muted {
                        "You have checked in this round. "
                        @if page.closed { "The round has closed; changes now are marked late." }
                        @else { "You can change it until the round closes." }
                    }
                } @else if page.closed {
                    p.muted { "The round has closed, but a late check-in is welcome and will be marked late." }
                }
                @if !page.open_commitments.is_empty() {
                    section.follow-through {
                        h3 { "How did your earlier commitments go?" }
                        @for commitment in page.open_commitments {
                            @let id = commitment.id.to_string();
                            @let (chosen, note) = form.follow.get(&id).cloned().unwrap_or_default();
                            fieldset {
                                legend { (commitment.body) " " span.muted { "(round " (commitment.made_in_round) ")" } }
                                @for outcome in Outcome::ALL {
                                    label.inline {
                                        input type="radio" name={ "outcome-" (id) } value=(outcome.as_str()) checked[chosen == outcome.as_str()];
                                        " " (outcome.label())
                                    }
                                }
                                label for={ "note-" (id) } { "A short note (optional)" }
                                input id={ "note-" (id) } type="text" name={ "note-" (id) } value=(note) maxlength=(MAX_NOTE_LEN);
                                (problem(page.errors, &format!("follow-{id}")))
                            }
                        }
                        p.muted { "\"Not yet\" carries it into the next round. \"Release\" lets it go honestly; it is not a miss." }
                    }
                }
                label for="reflection" { "Your reflection (optional)" }
                textarea #reflection name="reflection" rows="5" { (form.reflection) }
                (problem(page.errors, "reflection"))
                h3 { "Before the next round, I will…" }
                p.muted { "One to three commitments, each up to " (MAX_COMMITMENT_LEN) " characters." }
                @for index in 0..MAX_COMMITMENTS {
                    @let field = format!("commitment-{}", index + 1);
                    label.sr-only for=(field) { "Commitment " (index + 1) }
                    input id=(field) type="text" name=(field) value=(form.commitments[index]) maxlength=(MAX_COMMITMENT_LEN);
                    (problem(page.errors, &field))
                }
                p { button type="submit" { "Save my check-in" } }
            }
        },
    )
}
