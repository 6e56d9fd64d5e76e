//! "Your data": taking a copy of one's data, deleting it, and the page that
//! says it is done. The rule is told here in plain words; the code that
//! keeps it is `people::delete`.

use maud::{Markup, html};

use super::layout::{page, page_for};
use super::problems::{Problem, described_by, invalid, message, summary};
use super::zones::{ZonePicker, picker};
use crate::people::FORMER_MEMBER;
use crate::people::delete::NeedsFacilitator;

/// A circle the viewer facilitates, whose record they may download.
pub struct FacilitatedCircle {
    pub id: i64,
    pub name: String,
}

fn time_zone(zone: &ZoneForm<'_>) -> Markup {
    let value = zone.typed.or(zone.kept).unwrap_or("");
    html! {
        section #your-time {
            h2 { "Your time zone" }
            @if zone.saved {
                p.notice role="status" { "Your time zone is saved." }
            }
            p {
                @match zone.kept {
                    Some(kept) => { "Times are shown to you in " strong { (kept) } "." }
                    None => { "You have not chosen one yet: times are shown in each circle's own zone." }
                }
            }
            form method="post" action="/me/time-zone" {
                label for="time_zone" { "Time zone" }
                (picker(&ZonePicker {
                    field: "time_zone",
                    selected: if value.is_empty() { "UTC" } else { value },
                    propose_browser_zone: zone.kept.is_none() && zone.typed.is_none(),
                    error_id: zone.error.map(|_| "time_zone-error"),
                }))
                (message("time_zone", zone.error))
                p { button type="submit" { "Save time zone" } }
            }
        }
    }
}

/// The person's calendar feed: whether there is one, and its address
/// when it was just made (the only time it can be shown).
pub struct CalendarPart<'a> {
    pub has_feed: bool,
    pub new_feed: Option<&'a str>,
}

fn calendar_feed(part: &CalendarPart<'_>) -> Markup {
    html! {
        section #your-calendar {
            h2 { "Your calendar" }
            p {
                "A private address your calendar program can subscribe to: every open and upcoming "
                "round of your circles (eight weeks ahead) from opening to close, with the prompt once "
                "a round has opened and a link to it, and the days you are away. It changes in your "
                "calendar when a circle's rhythm changes."
            }
            @if let Some(url) = part.new_feed {
                p.notice role="status" { "Your calendar address is ready. Copy it now: for safety we keep only a fingerprint of it, so this page shows it only for a few minutes." }
                label for="feed-url" { "Calendar address" }
                p.copyable {
                    input #feed-url type="text" readonly value=(url)
                        data-copy-button="copy-feed-url" data-copy-status="copy-feed-said";
                    button.secondary #copy-feed-url type="button" hidden { "Copy the address" }
                }
                p #copy-feed-said.muted role="status" {}
                p.muted { "Anyone with this address can read your rounds and away days. If it gets out, make a new one." }
            } @else if part.has_feed {
                p { "You have a calendar address. To see it again, make a new one: the old one stops working." }
            }
            @if part.has_feed {
                p { a.button.secondary href="/me/calendar" { "Make a new calendar address" } }
            } @else {
                form method="post" action="/me/calendar" {
                    button type="submit" { "Make my calendar address" }
                }
            }
        }
    }
}

/// The word to type before deleting.
pub const CONFIRM_WORD: &str = "delete";

/// The name form: the name kept, one refused as typed, and why.
#[derive(Debug, Default)]
pub struct NameForm<'a> {
    pub kept: &'a str,
    pub typed: Option<&'a str>,
    pub error: Option<&'a str>,
    pub saved: bool,
}

fn your_name(name: &NameForm<'_>) -> Markup {
    html! {
        section #your-name {
            h2 { "Your name" }
            @if name.saved {
                p.notice role="status" { "Your name is saved." }
            }
            form method="post" action="/me/name" {
                label for="display_name" { "The name people in your circles see" }
                input #display_name type="text" name="display_name" value=(name.typed.unwrap_or(name.kept))
                    maxlength="60" autocomplete="name" required
                    aria-invalid=[invalid(name.error)]
                    aria-describedby=[described_by("display_name", name.error)];
                (message("display_name", name.error))
                p { button type="submit" { "Save your name" } }
            }
        }
    }
}

/// The address form: the address in use, one refused as typed, and why.
#[derive(Debug, Default)]
pub struct AddressForm<'a> {
    pub current: &'a str,
    pub typed: Option<&'a str>,
    pub error: Option<&'a str>,
    /// A confirmation link was just sent.
    pub sent: bool,
}

fn your_address(address: &AddressForm<'_>) -> Markup {
    html! {
        section #your-address {
            h2 { "Your email address" }
            p { "Shoulder writes to " strong { (address.current) } ", and you sign in with it." }
            @if address.sent {
                p.notice role="status" {
                    "A confirmation link is on its way to the new address, and your present one has been told. "
                    "Until the link is used, nothing changes."
                }
            }
            form method="post" action="/me/email" {
                label for="new_email" { "New address" }
                input #new_email type="email" name="email" value=(address.typed.unwrap_or(""))
                    autocomplete="email" required
                    aria-invalid=[invalid(address.error)]
                    aria-describedby=[described_by("new_email", address.error)];
                (message("new_email", address.error))
                p { button type="submit" { "Send a confirmation link" } }
            }
        }
    }
}

/// The page behind the emailed link: a button that makes the change.
pub fn confirm_address(token: &str, new: &str) -> Markup {
    page(
        "Confirm your new address",
        html! {
            h1 { "Use " (new) " for Shoulder?" }
            p { "From then on Shoulder writes to this address, and you sign in with it; the old one no longer works for signing in." }
            form method="post" action={ "/me/email/" (token) } {
                p { button type="submit" { "Confirm this address" } }
            }
        },
    )
}

/// After the change, or why the link cannot make it.
pub fn address_outcome(title: &str, text: &str) -> Markup {
    page(
        title,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/me" { "Your data" } }
        },
    )
}

/// The time zone form: what is kept, what was typed, what is wrong.
#[derive(Debug, Default)]
pub struct ZoneForm<'a> {
    pub kept: Option<&'a str>,
    /// Text sent that was refused, shown again as typed.
    pub typed: Option<&'a str>,
    pub error: Option<&'a str>,
    pub saved: bool,
}

pub fn your_data(
    viewer: &str,
    facilitated: &[FacilitatedCircle],
    needs_facilitator: &[NeedsFacilitator],
    name: &NameForm<'_>,
    address: &AddressForm<'_>,
    zone: &ZoneForm<'_>,
    feed: &CalendarPart<'_>,
) -> Markup {
    // Each form here is sent on its own, so at most one of these is set.
    let problems: Vec<Problem<'_>> = [
        ("display_name", name.error),
        ("new_email", address.error),
        ("time_zone", zone.error),
    ]
    .into_iter()
    .filter_map(|(field, error)| {
        error.map(|message| Problem {
            field: Some(field),
            message,
        })
    })
    .collect();
    page_for(
        viewer,
        "Your data",
        html! {
            h1 { "Your data" }
            (summary(&problems))
            (your_name(name))
            (your_address(address))
            (time_zone(zone))
            (calendar_feed(feed))
            section {
                h2 { "Take a copy" }
                p {
                    "Everything Shoulder holds about you: your name and address, the circles you "
                    "have been in, your reflections (each saying who reads it), commitments and "
                    "follow-through notes, the support you wrote and the support written to you, "
                    "the notes you wrote and received, your away dates and skipped rounds. "
                    "Nobody else's reflections are in it."
                }
                p {
                    a.button href="/me/export.json" download { "Download as JSON" }
                    " "
                    a href="/me/export.csv" download { "Download as CSV" }
                }
                p.muted {
                    "The CSV is one table: its first column says what each row is "
                    "(profile, membership, check_in, commitment, follow_through, support_given, "
                    "support_received, note_written, note_received, away, skip)."
                }
            }
            @if !facilitated.is_empty() {
                section {
                    h2 { "Circles you facilitate" }
                    p {
                        "As a facilitator you can download a circle's whole record: its settings, "
                        "members' names and roles, every round and prompt, and what members shared "
                        "in them. Email addresses are not in it."
                    }
                    ul {
                        @for circle in facilitated {
                            li {
                                (circle.name) ": "
                                a href={ "/circles/" (circle.id) "/export.json" } download { "JSON" }
                                " · "
                                a href={ "/circles/" (circle.id) "/export.csv" } download { "CSV" }
                            }
                        }
                    }
                }
            }
            section {
                h2 { "Delete your data" }
                (what_deleting_does())
                (handover_needed(needs_facilitator))
                (delete_form("", None, !needs_facilitator.is_empty()))
            }
        },
    )
}

/// The confirmation page, again with `problem` when the last try was refused.
pub fn confirm_delete(
    viewer: &str,
    needs_facilitator: &[NeedsFacilitator],
    typed: &str,
    problem: Option<&str>,
) -> Markup {
    page_for(
        viewer,
        "Delete your data",
        html! {
            p.muted { a href="/me" { "← Your data" } }
            h1 { "Delete your data" }
            @if let Some(problem) = problem {
                (summary(&[Problem { field: Some("confirm"), message: problem }]))
            }
            (what_deleting_does())
            p {
                "If you would like a copy first, "
                a href="/me/export.json" download { "download it as JSON" }
                " or "
                a href="/me/export.csv" download { "as CSV" }
                "."
            }
            (handover_needed(needs_facilitator))
            (delete_form(typed, problem, !needs_facilitator.is_empty()))
        },
    )
}

/// The rule, as the person deleting needs to know it.
fn what_deleting_does() -> Markup {
    html! {
        p { "Deleting cannot be undone. This is exactly what happens:" }
        ul {
            li {
                strong { "Your words are removed: " }
                "your reflections, the text of your commitments, your follow-through notes, "
                "the support messages you wrote, and the support messages others wrote on "
                "your commitments."
            }
            li {
                strong { "What was only yours is removed: " }
                "your away dates, skipped rounds, sign-in links, invitations sent to your "
                "address, and every email to you, sent or waiting. You are signed out everywhere."
            }
            li {
                strong { "You leave every circle. " }
                "So that the others' history keeps its shape, your circles keep the fact that "
                "you checked in (and whether late) and that you made a commitment and how it "
                "went, with none of your words and your name shown as \"" (FORMER_MEMBER) "\"."
            }
            li {
                strong { "Your name and email address are removed from your account. " }
                "You can sign up again with the same address later; you would start fresh, "
                "and nothing from before comes back."
            }
            li {
                "If you are the only facilitator of a circle that still has other members, "
                "make someone else its facilitator first, so the circle is not left without one."
            }
        }
    }
}

fn handover_needed(needs_facilitator: &[NeedsFacilitator]) -> Markup {
    html! {
        @if !needs_facilitator.is_empty() {
            div.notice #handover-first role="status" {
                p { "Before you can delete your data, make someone else facilitator of:" }
                ul {
                    @for circle in needs_facilitator {
                        li { a href={ "/circles/" (circle.circle_id) } { (circle.name) } }
                    }
                }
            }
        }
    }
}

/// The form that deletes; `blocked` while a circle still needs another
/// facilitator, when its button is disabled and says why beside it.
fn delete_form(typed: &str, problem: Option<&str>, blocked: bool) -> Markup {
    html! {
        form method="post" action="/me/delete" {
            label for="confirm" { "To confirm, type " strong { (CONFIRM_WORD) } }
            input #confirm type="text" name="confirm" value=(typed) autocomplete="off"
                aria-invalid=[invalid(problem)]
                aria-describedby=[described_by("confirm", problem)];
            (message("confirm", problem))
            p.actions {
                button.danger type="submit" disabled[blocked]
                    aria-describedby=[blocked.then_some("handover-first")] { "Delete my data" }
                @if blocked {
                    " " span.muted { "Not yet: a circle above needs another facilitator first." }
                }
            }
        }
    }
}

/// After deleting: there is nobody to greet any more.
pub fn deleted() -> Markup {
    page(
        "Your data is deleted",
        html! {
            h1 { "Your data is deleted" }
            p {
                "Your words are gone, you have left your circles, and you are signed out. "
                "Thank you for the time you spent shouldering others up."
            }
            p {
                "If you come back with the same address, you will start fresh."
            }
            p { a href="/" { "Back to the start" } }
        },
    )
}
