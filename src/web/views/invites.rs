//! Invite and join pages: the facilitator's invite page (link, email
//! invites, pending list), the page behind an invite, the "check your email"
//! page, the confirmation page whose button joins, and one page per reason a
//! join cannot go ahead.

use chrono::SecondsFormat;
use chrono_tz::Tz;
use maud::{Markup, html};

use super::layout::{page, page_for};
use super::problems::{self, Problem, described_by, described_by_with_hint, invalid, message};
use super::zones::first_choice;
use crate::circles::invites::{AddressOutcome, AddressResult, JoinOffer, MAX_NOTE_CHARS, Refusal};
use crate::circles::store::CircleStatus;
use crate::clock::{local_text, time_for, zone_or_utc, zones};

/// A page for whoever is looking: named in the header when signed in.
fn page_as(viewer: Option<&str>, title: &str, content: Markup) -> Markup {
    match viewer {
        Some(name) => page_for(name, title, content),
        None => page(title, content),
    }
}

/// The reusable link as the invite page can show it.
#[derive(Clone)]
pub enum LinkView {
    /// Just made: the only time its address can be shown.
    Fresh {
        url: String,
        expires: String,
    },
    /// One exists, but only its hash is kept, so it cannot be shown again.
    Exists {
        expires: String,
    },
    Expired {
        expired: String,
    },
    NotMade,
}

pub struct PendingRow {
    pub id: i64,
    pub email: String,
    pub sent: String,
    pub expires: String,
}

/// The email invite form as typed, and what sending it did.
#[derive(Default)]
pub struct BatchView<'a> {
    pub typed: &'a str,
    pub note: &'a str,
    /// What is wrong with the addresses as a whole (none, or too many).
    pub error: Option<String>,
    pub note_error: Option<String>,
    pub results: &'a [AddressResult],
}

pub struct InvitePage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    /// `None` while the circle is active; otherwise why nobody can join now.
    pub closed: Option<CircleStatus>,
    pub members: i64,
    pub size_cap: i32,
    pub link: LinkView,
    pub pending: &'a [PendingRow],
    pub batch: BatchView<'a>,
    /// A short line at the top saying what just happened.
    pub notice: Option<&'a str>,
    pub max_addresses: usize,
    pub days: u32,
}

pub fn invite_page(view: &InvitePage<'_>) -> Markup {
    let id = view.circle_id;
    let title = format!("Invite people to {}", view.circle_name);
    page_for(
        view.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (id) } { "← " (view.circle_name) } }
            h1 { "Invite people" }
            @if let Some(notice) = view.notice {
                p.notice role="status" { (notice) }
            }
            p {
                (view.members) " of " (view.size_cap) " places are taken. "
                @if view.members >= i64::from(view.size_cap) {
                    "The circle is full: people you invite can join once someone leaves or the size cap is raised."
                }
            }
            @match view.closed {
                Some(status) => {
                    p.error {
                        "This circle is " (status.as_str()) ", so nobody can join it for now. "
                        "Resume it to invite people again."
                    }
                }
                None => {
                    (link_section(id, &view.link, view.days))
                    (email_section(view))
                }
            }
            (pending_section(id, view.pending))
        },
    )
}

fn link_section(circle_id: i64, link: &LinkView, days: u32) -> Markup {
    let action = format!("/circles/{circle_id}/invites/link");
    html! {
        section #invite-link {
            h2 { "A link to share" }
            p {
                "Anyone with this link can ask to join, until the circle is full. "
                "Share it where only the people you mean can see it."
            }
            @match link {
                LinkView::Fresh { url, expires } => {
                    label for="invite-url" { "Your invite link" }
                    p.copyable {
                        input #invite-url type="text" value=(url) readonly
                            data-copy-button="copy-invite-url" data-copy-status="copy-invite-said";
                        button.secondary #copy-invite-url type="button" hidden { "Copy the link" }
                    }
                    p #copy-invite-said.muted role="status" {}
                    p.muted {
                        "It works until " (expires) ". Copy it now: for safety we keep only a "
                        "fingerprint of it, so this page shows it only for a few minutes. You can always make a new one."
                    }
                    p { a.button.secondary href=(action) { "Make a new link" } }
                }
                LinkView::Exists { expires } => {
                    p { "An invite link exists (expires " (expires) ")." }
                    p.muted {
                        "We keep only a fingerprint of it, so it cannot be shown again. "
                        "Making a new link shows it here and stops the old one from working."
                    }
                    p { a.button.secondary href=(action) { "Make a new link" } }
                }
                LinkView::Expired { expired } => {
                    p { "The last invite link expired on " (expired) "." }
                    form method="post" action=(action) {
                        button type="submit" { "Make a new link" }
                    }
                }
                LinkView::NotMade => {
                    p { "There is no invite link yet. A new one works for " (days) " days." }
                    form method="post" action=(action) {
                        button type="submit" { "Make a link" }
                    }
                }
            }
        }
    }
}

fn batch_problems<'a>(batch: &'a BatchView<'_>) -> Vec<Problem<'a>> {
    [("addresses", &batch.error), ("note", &batch.note_error)]
        .into_iter()
        .filter_map(|(field, error)| {
            error.as_deref().map(|message| Problem {
                field: Some(field),
                message,
            })
        })
        .collect()
}

fn email_section(view: &InvitePage<'_>) -> Markup {
    let batch = &view.batch;
    html! {
        section #email-invites {
            h2 { "Invite by email" }
            @if !batch.results.is_empty() {
                (results_table(batch.results))
            }
            (problems::summary(&batch_problems(batch)))
            form method="post" action={ "/circles/" (view.circle_id) "/invites" } {
                label for="addresses" { "Email addresses" }
                p.muted #addresses-hint {
                    "Up to " (view.max_addresses) " at once, one per line or separated by commas. "
                    "Each person gets their own link, which works once, for " (view.days) " days."
                }
                textarea #addresses name="addresses" rows="5" required
                    aria-invalid=[invalid(batch.error.as_ref())]
                    aria-describedby=(described_by_with_hint("addresses", batch.error.as_ref(), "addresses-hint")) { (batch.typed) }
                (message("addresses", batch.error.as_deref()))
                label for="note" { "A note from you (optional)" }
                p.muted #note-hint {
                    "Added to each email in your own words, such as why you thought of them. "
                    "Up to " (MAX_NOTE_CHARS) " characters."
                }
                textarea #note name="note" rows="3"
                    aria-invalid=[invalid(batch.note_error.as_ref())]
                    aria-describedby=(described_by_with_hint("note", batch.note_error.as_ref(), "note-hint")) { (batch.note) }
                (message("note", batch.note_error.as_deref()))
                p { button type="submit" { "Send invitations" } }
            }
        }
    }
}

/// Results show at most this much of an entry; a pasted paragraph in the
/// address box should not stretch the table.
const SHOWN_ENTRY_LEN: usize = 80;

fn shown_entry(entry: &str) -> String {
    if entry.chars().count() > SHOWN_ENTRY_LEN {
        let cut: String = entry.chars().take(SHOWN_ENTRY_LEN).collect();
        format!("{cut}…")
    } else {
        entry.to_string()
    }
}

fn outcome_text(outcome: &AddressOutcome) -> String {
    match outcome {
        AddressOutcome::Invited => "Invited.".into(),
        AddressOutcome::InvitedAgain => {
            "Invited again, with a fresh link; the earlier one no longer works.".into()
        }
        AddressOutcome::AlreadyMember => "Already a member of this circle.".into(),
        AddressOutcome::AlreadyInvited => {
            "Already invited in the last day, so not sent again.".into()
        }
        AddressOutcome::Repeated => "Listed twice; invited once.".into(),
        AddressOutcome::Malformed(error) => format!("Not sent: {error}."),
        AddressOutcome::CircleCapReached => {
            "Not sent: this circle already has as many invitations waiting as it may. \
             Revoke some below, or wait for answers."
                .into()
        }
        AddressOutcome::DailyCapReached => {
            "Not sent: you have sent as many invitations today as one person may. \
             Please try again tomorrow."
                .into()
        }
        AddressOutcome::NewAddressCapReached => {
            "Not sent: this server has sent as much email to new addresses this hour \
             as it may. Please try again in an hour."
                .into()
        }
    }
}

fn results_table(results: &[AddressResult]) -> Markup {
    let sent = results.iter().filter(|r| r.outcome.sent()).count();
    html! {
        h3 { "What happened" }
        p { (sent) " of " (results.len()) " sent." }
        table.results {
            thead { tr { th { "Address" } th { "Result" } } }
            tbody {
                @for result in results {
                    tr.sent[result.outcome.sent()] {
                        td { (shown_entry(&result.entry)) }
                        td { (outcome_text(&result.outcome)) }
                    }
                }
            }
        }
    }
}

fn pending_section(circle_id: i64, pending: &[PendingRow]) -> Markup {
    html! {
        section #pending-invites {
            h2 { "Waiting for an answer" }
            @if pending.is_empty() {
                p.muted { "No email invitations are waiting." }
            } @else {
                table {
                    thead { tr { th { "Address" } th { "Sent" } th { "Expires" } th { span.sr-only { "Withdraw" } } } }
                    tbody {
                        @for invite in pending {
                            tr {
                                td { (invite.email) }
                                td { (invite.sent) }
                                td { (invite.expires) }
                                td {
                                    form method="post" action={ "/circles/" (circle_id) "/invites/" (invite.id) "/revoke" } {
                                        button.link type="submit" {
                                            "Revoke" span.sr-only { " the invitation to " (invite.email) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The join form as typed, with a message per field that needs another look.
#[derive(Default)]
pub struct JoinForm<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub accepted: bool,
    pub name_error: Option<String>,
    pub email_error: Option<String>,
    pub accept_error: Option<String>,
}

fn agreements_list(agreements: &str) -> Markup {
    html! {
        ul.agreements {
            @for line in agreements.lines().map(str::trim).filter(|l| !l.is_empty()) {
                li { (line) }
            }
        }
    }
}

fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The join form's problems for the summary at its top, in the form's order.
fn join_problems<'a>(form: &'a JoinForm<'_>) -> Vec<Problem<'a>> {
    [
        ("name", &form.name_error),
        ("email", &form.email_error),
        ("accept", &form.accept_error),
    ]
    .into_iter()
    .filter_map(|(field, error)| {
        error.as_deref().map(|message| Problem {
            field: Some(field),
            message,
        })
    })
    .collect()
}

/// When the circle meets: its rhythm, how long a round stays open, and the
/// next round, in the reader's own zone when they have chosen one, else in
/// the circle's with the browser's own time beside it where a script can
/// tell it.
fn rhythm(offer: &JoinOffer, reader: Option<Tz>) -> Markup {
    let zone = zone_or_utc(&offer.time_zone);
    html! {
        h2 { "When it meets" }
        @match &offer.schedule {
            Some(schedule) => p { (schedule) " (" (zones::place_in_region(zone.name())) " time), each round open for " (offer.round_hours) " hours." },
            None => p.muted { "Its facilitator is setting its rhythm." },
        }
        @if let Some(at) = offer.next_round_at {
            @let at = at.and_utc();
            @match reader {
                Some(reader) => p { "Next round: " strong { (time_for(at, zone, Some(reader))) } "." },
                None => p {
                    "Next round: " strong { (local_text(at, zone)) } "; "
                    time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) data-local {
                        (at.format("%A %-d %B %Y, %H:%M UTC"))
                    } "."
                },
            }
        }
    }
}

pub fn join(
    token: &str,
    offer: &JoinOffer,
    form: &JoinForm<'_>,
    viewer: Option<&str>,
    reader: Option<Tz>,
) -> Markup {
    let title = format!("Join {}", offer.circle_name);
    page_as(
        viewer,
        &title,
        html! {
            h1 { "You are invited to join " (offer.circle_name) }
            @if !offer.facilitators.is_empty() {
                p.muted { "Facilitated by " (names(&offer.facilitators)) "." }
            }
            h2 { "What the circle is for" }
            @for paragraph in offer.purpose.split("\n\n") {
                p.purpose { (paragraph) }
            }
            h2 { "What members agree to" }
            (agreements_list(&offer.agreements))
            (rhythm(offer, reader))
            p.muted {
                "Each round everyone gets the same question, says what they will do before the next "
                "round, and encourages someone else. Nobody is scored, and \"not yet\" is an honest answer."
            }
            (problems::summary(&join_problems(form)))
            form method="post" action={ "/join/" (token) } {
                label for="name" { "Your name" }
                p.muted #name-hint { "As the others in the circle will see it." }
                input #name type="text" name="name" value=(form.name) maxlength="60" autocomplete="name" required
                    aria-invalid=[invalid(form.name_error.as_ref())]
                    aria-describedby=(described_by_with_hint("name", form.name_error.as_ref(), "name-hint"));
                (message("name", form.name_error.as_deref()))
                label for="email" { "Your email address" }
                @match &offer.fixed_email {
                    Some(email) => {
                        input #email type="email" name="email" value=(email) readonly aria-describedby="email-hint";
                        p.muted #email-hint { "This invitation was sent to this address, so it is the one that joins." }
                    }
                    None => {
                        input #email type="email" name="email" value=(form.email) autocomplete="email" required
                            aria-invalid=[invalid(form.email_error.as_ref())]
                            aria-describedby=[described_by("email", form.email_error.as_ref())];
                        (message("email", form.email_error.as_deref()))
                    }
                }
                p {
                    label.inline {
                        input #accept type="checkbox" name="accept" value="yes" checked[form.accepted]
                            aria-invalid=[invalid(form.accept_error.as_ref())]
                            aria-describedby=[described_by("accept", form.accept_error.as_ref())];
                        " I accept these agreements"
                    }
                }
                (message("accept", form.accept_error.as_deref()))
                p { button type="submit" { "Ask to join" } }
                p.muted { "We will email you a link to confirm; you join when you use it." }
            }
        },
    )
}

pub fn check_your_email(
    email: Option<&str>,
    circle_name: &str,
    hours: i64,
    viewer: Option<&str>,
) -> Markup {
    page_as(
        viewer,
        "Check your email",
        html! {
            h1 { "Check your email" }
            p {
                "A confirmation link is on its way to "
                @match email {
                    Some(email) => strong { (email) },
                    None => "the address you gave",
                }
                ". Open it and press the button there to join " (circle_name) ". It works once, within "
                (hours) " hours."
            }
            p.muted { "Nothing arrived? Look in the spam folder, or open the invitation again and ask once more." }
        },
    )
}

/// The zone asked for when joining: as sent, and why it was refused.
pub struct JoinZone<'a> {
    pub sent: &'a str,
    pub error: Option<&'a str>,
}

/// The page behind the confirmation link; `zone` is there when the person
/// is new or has not chosen a time zone yet.
pub fn confirm(
    token: &str,
    circle_name: &str,
    email: &str,
    zone: Option<&JoinZone<'_>>,
    viewer: Option<&str>,
) -> Markup {
    page_as(
        viewer,
        "Confirm joining",
        html! {
            h1 { "Join " (circle_name) }
            p { "You are joining as " strong { (email) } ". Pressing the button adds you to the circle and signs you in." }
            form method="post" action={ "/join/confirm/" (token) } {
                @if let Some(zone) = zone {
                    (first_choice(zone.sent, zone.error))
                }
                p { button type="submit" { "Join the circle" } }
            }
        },
    )
}

pub fn refused(refusal: &Refusal, viewer: Option<&str>) -> Markup {
    let (title, why, next): (String, String, Markup) = match refusal {
        Refusal::UnknownLink => (
            "This link does not work".into(),
            "It may have been copied incompletely, or the facilitator has since made a new invite link. \
             Please ask them for the current one."
                .into(),
            home_link(),
        ),
        Refusal::InviteExpired => (
            "This invitation has expired".into(),
            "Invitations stay open for a limited time. Please ask the facilitator for a new one.".into(),
            home_link(),
        ),
        Refusal::InviteRevoked => (
            "This invitation was withdrawn".into(),
            "The facilitator has taken this invitation back. If you think that was a mistake, \
             please get in touch with them."
                .into(),
            home_link(),
        ),
        Refusal::InviteUsed => (
            "This invitation has been used".into(),
            "Each emailed invitation works once, and this one already has. If that was you, \
             sign in to find the circle."
                .into(),
            sign_in_link(),
        ),
        Refusal::LinkReplaced => (
            "This invite link was replaced".into(),
            "The facilitator made a new invite link after you asked to join, and the old one \
             no longer works. Please ask them for the new link."
                .into(),
            home_link(),
        ),
        Refusal::ConfirmationExpired => (
            "This confirmation link has expired".into(),
            "Confirmation links work for a day. Open your invitation again and ask to join once more."
                .into(),
            home_link(),
        ),
        Refusal::ConfirmationUsed => (
            "This confirmation link has been used".into(),
            "Each confirmation link works once. If you have joined already, sign in to find the circle."
                .into(),
            sign_in_link(),
        ),
        Refusal::CircleFull { circle_name } => (
            format!("{circle_name} is full"),
            "Every place in this circle is taken for now. The facilitator can raise its size cap, \
             or a place may open when someone leaves; your link will work again then if it has not expired."
                .into(),
            home_link(),
        ),
        Refusal::CircleNotOpen {
            circle_name,
            status,
        } => {
            let why = match status {
                CircleStatus::Archived => {
                    "This circle has finished its work and been archived, so it takes nobody new."
                }
                CircleStatus::Paused | CircleStatus::Active => {
                    "This circle is taking a pause and is not taking new members right now. \
                     Please try again when the facilitator has resumed it."
                }
            };
            (
                format!("{circle_name} is not taking new members"),
                why.into(),
                home_link(),
            )
        }
        Refusal::AlreadyMember {
            circle_id,
            circle_name,
        } => (
            format!("You are already in {circle_name}"),
            "Nothing more to do: you are a member of this circle.".into(),
            html! { p { a.button href={ "/circles/" (circle_id) } { "Go to the circle" } } },
        ),
        Refusal::Removed { circle_name } => (
            format!("This link cannot bring you back to {circle_name}"),
            "A facilitator ended your membership of this circle. If you would like to return, \
             ask them to invite you by email."
                .into(),
            home_link(),
        ),
    };
    page_as(
        viewer,
        &title,
        html! {
            h1 { (title) }
            p { (why) }
            (next)
        },
    )
}

fn home_link() -> Markup {
    html! { p { a href="/" { "Back to the start" } } }
}

fn sign_in_link() -> Markup {
    html! { p { a.button href="/sign-in" { "Sign in" } } }
}
