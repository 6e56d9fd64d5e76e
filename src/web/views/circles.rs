//! Circle pages: the settings form (start and edit), the circle itself, and
//! the list on a signed-in person's front page.

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use maud::{Markup, html};

use super::layout::page_for;
use super::problems::{Problem, described_by, described_by_with_hint, invalid, message, summary};
use super::zones::{ZonePicker, picker};
use crate::circles::settings::{FieldErrors, MAX_ROUND_HOURS, SettingsForm, WEEKDAYS};
use crate::rounds::ScheduleNotes;
use crate::rounds::standing::{Answer, Standing};

/// What the settings form is for.
pub enum FormPurpose {
    Start,
    Edit { circle_id: i64 },
}

pub struct FormPage<'a> {
    pub viewer: &'a str,
    pub purpose: FormPurpose,
    pub form: &'a SettingsForm,
    pub errors: &'a FieldErrors,
    /// The next round times in the circle's zone, when the schedule parses.
    pub preview: Option<Vec<String>>,
    /// Whether the browser's zone may replace the form's: a new circle
    /// for someone who has not chosen a zone of their own.
    pub propose_browser_zone: bool,
}

/// The key of a form's error that belongs to no field: a limit reached.
pub const LIMIT_REACHED: &str = "limit";

/// The settings form's fields that can be refused, in the order the form
/// shows them, so that the summary reads in the same order. Each is also
/// the `id` its link goes to: for the weekdays, the first checkbox; for
/// the kind of cadence, the first radio button.
const SETTINGS_FIELDS: [&str; 12] = [
    "name",
    "purpose",
    "agreements",
    "cadence_kind",
    "days",
    "every_weeks",
    "month_day",
    "time",
    "cron",
    "time_zone",
    "round_hours",
    "size_cap",
];

/// The settings form's problems, for its summary: a limit first (it is no
/// field's), then the fields in the order they are shown.
fn settings_problems(errors: &FieldErrors) -> Vec<Problem<'_>> {
    let limit = errors.get(LIMIT_REACHED).map(|message| Problem {
        field: None,
        message: message.as_str(),
    });
    let fields = SETTINGS_FIELDS.iter().filter_map(|field| {
        errors.get(field).map(|message| Problem {
            field: Some(*field),
            message: message.as_str(),
        })
    });
    // A key this list does not know still reaches the reader.
    let others = errors
        .iter()
        .filter(|(key, _)| **key != LIMIT_REACHED && !SETTINGS_FIELDS.contains(key))
        .map(|(_, message)| Problem {
            field: None,
            message: message.as_str(),
        });
    limit.into_iter().chain(fields).chain(others).collect()
}

fn problem(errors: &FieldErrors, field: &str) -> Markup {
    message(field, errors.get(field).map(String::as_str))
}

pub fn settings_form(page: &FormPage<'_>) -> Markup {
    let (title, action, submit) = match page.purpose {
        FormPurpose::Start => ("Start a circle", "/circles".to_string(), "Start the circle"),
        FormPurpose::Edit { circle_id } => (
            "Circle settings",
            format!("/circles/{circle_id}/edit"),
            "Save the settings",
        ),
    };
    let form = page.form;
    let errors = page.errors;
    let flag = |field: &str| invalid(errors.get(field));
    let about = |field: &str| described_by(field, errors.get(field));
    page_for(
        page.viewer,
        title,
        html! {
            h1 { (title) }
            (summary(&settings_problems(errors)))
            form method="post" action=(action) {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(form.name) maxlength="80" required
                    aria-invalid=[flag("name")] aria-describedby=[about("name")];
                (problem(errors, "name"))

                label for="purpose" { "Purpose" }
                p.muted #purpose-hint { "Why this circle meets, in a sentence or two." }
                textarea #purpose name="purpose" rows="3" required
                    aria-invalid=[flag("purpose")]
                    aria-describedby=(described_by_with_hint("purpose", errors.get("purpose"), "purpose-hint")) { (form.purpose) }
                (problem(errors, "purpose"))

                label for="agreements" { "Agreements" }
                p.muted #agreements-hint { "What every member accepts when they join, one per line." }
                textarea #agreements name="agreements" rows="5" required
                    aria-invalid=[flag("agreements")]
                    aria-describedby=(described_by_with_hint("agreements", errors.get("agreements"), "agreements-hint")) { (form.agreements) }
                (problem(errors, "agreements"))

                fieldset {
                    legend { "When rounds open" }
                    p {
                        label.inline {
                            input #cadence_kind type="radio" name="cadence_kind" value="weekly" checked[form.cadence_kind == "weekly"]
                                aria-invalid=[flag("cadence_kind")] aria-describedby=[about("cadence_kind")];
                            " On days of the week"
                        }
                    }
                    p.days {
                        @for (index, (_, key, day)) in WEEKDAYS.iter().enumerate() {
                            label.inline {
                                // The first weekday carries the group's id, for the summary's link.
                                input id=[(index == 0).then_some("days")] type="checkbox" name="day" value=(key)
                                    checked[form.days.iter().any(|d| d == key)]
                                    aria-invalid=[flag("days")] aria-describedby=[about("days")];
                                " " (day)
                            }
                        }
                    }
                    (problem(errors, "days"))
                    label for="every_weeks" { "Every" }
                    select #every_weeks name="every_weeks" aria-invalid=[flag("every_weeks")] aria-describedby=[about("every_weeks")] {
                        @for n in 1..=4u8 {
                            @let value = n.to_string();
                            option value=(value) selected[form.every_weeks == value] {
                                @if n == 1 { "week" } @else { (n) " weeks" }
                            }
                        }
                    }
                    (problem(errors, "every_weeks"))
                    p {
                        label.inline {
                            input type="radio" name="cadence_kind" value="monthly" checked[form.cadence_kind == "monthly"]
                                aria-invalid=[flag("cadence_kind")] aria-describedby=[about("cadence_kind")];
                            " Monthly, on day "
                        }
                        input.short #month_day type="number" name="month_day" min="1" max="31" value=(form.month_day) aria-label="Day of the month"
                            aria-invalid=[flag("month_day")] aria-describedby=[about("month_day")];
                    }
                    (problem(errors, "month_day"))
                    label for="time" { "At (local time)" }
                    input #time type="time" name="time" value=(form.time)
                        aria-invalid=[flag("time")] aria-describedby=[about("time")];
                    (problem(errors, "time"))
                    p {
                        label.inline {
                            input type="radio" name="cadence_kind" value="cron" checked[form.cadence_kind == "cron"]
                                aria-invalid=[flag("cadence_kind")] aria-describedby=[about("cadence_kind")];
                            " A cron expression"
                        }
                    }
                    input #cron type="text" name="cron" value=(form.cron) placeholder="0 9 * * 1" aria-label="Cron expression"
                        aria-invalid=[flag("cron")]
                        aria-describedby=(described_by_with_hint("cron", errors.get("cron"), "cron-hint"));
                    p.muted #cron-hint { "Five fields (minute hour day month weekday, Sunday is 0 or 7) or six with seconds first; at most hourly." }
                    (problem(errors, "cron"))
                    (problem(errors, "cadence_kind"))
                }

                label for="time_zone" { "Time zone" }
                (picker(&ZonePicker {
                    field: "time_zone",
                    selected: &form.time_zone,
                    propose_browser_zone: page.propose_browser_zone,
                    error_id: errors.contains_key("time_zone").then_some("time_zone-error"),
                }))
                (problem(errors, "time_zone"))

                label for="round_hours" { "A round stays open for (hours)" }
                input.short #round_hours type="number" name="round_hours" min="1" max=(MAX_ROUND_HOURS) value=(form.round_hours)
                    aria-invalid=[flag("round_hours")] aria-describedby=[about("round_hours")];
                (problem(errors, "round_hours"))

                label for="size_cap" { "Room for (people, 3 to 12)" }
                input.short #size_cap type="number" name="size_cap" min="3" max="12" value=(form.size_cap)
                    aria-invalid=[flag("size_cap")] aria-describedby=[about("size_cap")];
                (problem(errors, "size_cap"))

                @if let Some(times) = &page.preview {
                    section.preview {
                        h2 { "The next rounds" }
                        ul { @for time in times { li { (time) } } }
                    }
                }
                p.actions {
                    button type="submit" name="intent" value="preview" { "Preview the schedule" }
                    " "
                    button type="submit" name="intent" value="save" { (submit) }
                }
            }
        },
    )
}

/// One member as the circle page lists them.
pub struct MemberLine {
    pub membership_id: i64,
    pub name: String,
    pub facilitator: bool,
    pub is_viewer: bool,
}

/// A round in the circle page's list.
pub struct RoundLine {
    pub number: i32,
    pub question: String,
    pub open: bool,
}

/// An email that did not reach a member, shown to facilitators.
pub struct FailureLine {
    pub member: String,
    pub kind: String,
    pub what: String,
    pub when: String,
}

pub struct CirclePage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub name: &'a str,
    pub purpose: &'a str,
    pub agreements: &'a str,
    pub status: &'a str,
    pub paused_reason: Option<&'a str>,
    pub schedule: String,
    pub time_zone: &'a str,
    /// Next round in the circle's zone, in UTC, and as RFC 3339 for the
    /// reader's own zone (filled in by the browser when it runs scripts).
    pub next_round: Option<(String, String, String)>,
    /// Whether the first of those already says the reader's own time, so
    /// that the browser need not.
    pub reader_has_zone: bool,
    pub members: Vec<MemberLine>,
    pub size_cap: i32,
    pub viewer_is_facilitator: bool,
    /// Whether the viewer has muted this circle's email.
    pub muted: bool,
    /// Whether the viewer, as a facilitator, is emailed when someone joins.
    pub join_notices: bool,
    pub rounds: Vec<RoundLine>,
    /// The open round, if one is open: it leads the page.
    pub round_now: Option<RoundNow>,
    /// How the latest rounds were scheduled, when one opened late or a
    /// slot got no round (see [`schedule_notes`]).
    pub schedule_notes: Vec<String>,
    pub failures: Vec<FailureLine>,
    pub notice: Option<&'a str>,
    pub own_hour: OwnHour<'a>,
}

/// When the viewer's check-in email arrives.
pub struct OwnHour<'a> {
    /// `HH:MM`, when not at the opening.
    pub kept: Option<&'a str>,
    /// The viewer's own zone, when they chose one.
    pub zone: Option<&'a str>,
    pub problem: Option<HourProblem<'a>>,
}

/// A refused hour: what was sent, why, and which field it is about
/// ([`HOUR_CHOICE`] or [`HOUR`]).
pub struct HourProblem<'a> {
    pub typed: &'a str,
    pub error: &'a str,
    pub field: &'static str,
}

/// The hour form's choice between the opening and an hour of one's own:
/// the `id` of its first radio button.
pub const HOUR_CHOICE: &str = "when";
/// The hour form's own hour.
pub const HOUR: &str = "check_in_at";

/// The form for when the viewer's check-in email arrives.
fn own_hour_form(circle_id: i64, circle_zone: &str, hour: &OwnHour<'_>) -> Markup {
    let at_hour = hour.problem.is_some() || hour.kept.is_some();
    let typed = hour
        .problem
        .as_ref()
        .map(|problem| problem.typed)
        .or(hour.kept)
        .unwrap_or("");
    // The problem, when there is one and it is about `field`.
    let on = |field: &str| {
        hour.problem
            .as_ref()
            .filter(|problem| problem.field == field)
            .map(|problem| problem.error)
    };
    html! {
        form method="post" action={ "/circles/" (circle_id) "/check-in-hour" } {
            fieldset {
                legend { "When your check-in email arrives" }
                p {
                    label.inline {
                        input #when type="radio" name="when" value="opening" checked[!at_hour]
                            aria-invalid=[invalid(on(HOUR_CHOICE))]
                            aria-describedby=[described_by(HOUR_CHOICE, on(HOUR_CHOICE))];
                        " When the round opens"
                    }
                }
                p {
                    label.inline {
                        input type="radio" name="when" value="hour" checked[at_hour]
                            aria-invalid=[invalid(on(HOUR_CHOICE))]
                            aria-describedby=[described_by(HOUR_CHOICE, on(HOUR_CHOICE))];
                        " At an hour of my own:"
                    }
                    " "
                    input #check_in_at type="time" name="check_in_at" value=(typed)
                        aria-label="Your hour"
                        aria-invalid=[invalid(on(HOUR))]
                        aria-describedby=(described_by_with_hint(HOUR, on(HOUR), "check_in_at-hint"));
                }
                @if let Some(problem) = &hour.problem {
                    (message(problem.field, Some(problem.error)))
                }
                p.muted #check_in_at-hint {
                    @match hour.zone {
                        Some(zone) => { "Your time (" (zone) "). " }
                        None => {
                            "In the circle's time zone (" (circle_zone) "), until you choose your own under "
                            a href="/me#your-time" { "Your data" } ". "
                        }
                    }
                    "The email comes at the first such hour after the round opens while it is still open, "
                    "or at the opening when the round closes first."
                }
            }
            button type="submit" { "Save when it arrives" }
        }
    }
}

/// Where the open round stands, for the circle page.
pub struct RoundNow {
    pub standing: Standing,
    /// When it closes, in the circle's zone.
    pub closes: String,
    /// The viewer's own answer; `None` when the viewer is not an active member.
    pub viewer: Option<Answer>,
}

/// The open round at the top of the circle page: the way in for the
/// viewer, how many have answered, and for facilitators who.
fn round_now(page: &CirclePage<'_>, now: &RoundNow) -> Markup {
    let standing = &now.standing;
    let link = format!("/circles/{}/rounds/{}", page.circle_id, standing.number);
    let total = standing.members.len();
    let (checked_in, skipped, away) = (
        standing.count(Answer::CheckedIn),
        standing.count(Answer::Skipped),
        standing.count(Answer::Away),
    );
    html! {
        section.round-now aria-labelledby="round-now" {
            h2 #round-now { "Round " (standing.number) " is open until " (now.closes) }
            p {
                @match now.viewer {
                    Some(Answer::CheckedIn) => { "You checked in. " a href=(link) { "Change your check-in" } }
                    Some(Answer::Skipped) => { "You skipped this round. " a href=(link) { "Check in after all" } }
                    Some(Answer::Away) => { "You are away for this round. " a href=(link) { "Check in anyway" } }
                    _ => { a.button href=(link) { "Check in for round " (standing.number) } }
                }
            }
            p {
                (checked_in) " of " (total) " checked in, " (skipped) " skipped, "
                (away) " away."
            }
            @if page.viewer_is_facilitator {
                ul.standing {
                    @for (label, answer) in [
                        ("Checked in", Answer::CheckedIn),
                        ("Skipped", Answer::Skipped),
                        ("Away", Answer::Away),
                        ("Not heard from yet", Answer::NotYet),
                    ] {
                        @let names = standing.names(answer);
                        @if !names.is_empty() {
                            li { (label) ": " (names.join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

/// Says why the latest round opened late and which slots got no round, in
/// the circle's zone.
pub fn schedule_notes(notes: &ScheduleNotes, zone: Tz) -> Vec<String> {
    let slot_text = |slot: &NaiveDateTime| slot.format("%A %-d %B %Y, %H:%M").to_string();
    let mut lines = Vec::new();
    if let Some(late) = &notes.late {
        let intended = zone
            .from_local_datetime(&late.slot)
            .earliest()
            .map_or(late.opened_at, |at| at.naive_utc());
        let by = lateness(late.opened_at - intended);
        let slot = slot_text(&late.slot);
        lines.push(if late.because == "downtime" {
            format!(
                "Round {} opened {by} after its time ({slot}): no server was running then, \
                 and it opened when one started.",
                late.number
            )
        } else {
            format!(
                "Round {} opened {by} after its time ({slot}): the server was still \
                 opening other circles' rounds due at the same time.",
                late.number
            )
        });
    }
    if let Some(skipped) = &notes.skipped {
        let which = if skipped.count == 1 {
            format!("No round opened for {}", slot_text(&skipped.first))
        } else {
            format!(
                "No rounds opened for the {} times from {} to {}",
                skipped.count,
                slot_text(&skipped.first),
                slot_text(&skipped.last)
            )
        };
        lines.push(if skipped.because == "downtime" {
            format!(
                "{which}: no server was running then, and when one started it was too late \
                 to open {}.",
                if skipped.count == 1 { "it" } else { "them" }
            )
        } else {
            format!("{which}: by the time the server reached it, a later round was due, and that one opened instead.")
        });
    }
    lines
}

/// "12 minutes", "3 hours".
fn lateness(by: chrono::Duration) -> String {
    match by.num_minutes().max(1) {
        1 => "a minute".to_string(),
        minutes if minutes < 120 => format!("{minutes} minutes"),
        minutes => format!("{} hours", minutes / 60),
    }
}

pub fn circle(page: &CirclePage<'_>) -> Markup {
    let id = page.circle_id;
    page_for(
        page.viewer,
        page.name,
        html! {
            @if let Some(notice) = page.notice {
                p.notice role="status" { (notice) }
            }
            h1 { (page.name) }
            @if let Some(problem) = &page.own_hour.problem {
                (summary(&[Problem { field: Some(problem.field), message: problem.error }]))
            }
            @if let Some(now) = &page.round_now {
                (round_now(page, now))
            }
            @if page.status != "active" {
                p.notice {
                    "This circle is " (page.status) "."
                    @if let Some(reason) = page.paused_reason { " " (reason) }
                }
            }
            p.purpose { (page.purpose) }
            section {
                h2 { "Rhythm" }
                p { (page.schedule) " (" (page.time_zone) ")" }
                @match &page.next_round {
                    Some((local, _, _)) if page.reader_has_zone => p {
                        "Next round: " strong { (local) } "."
                    },
                    Some((local, utc, instant)) => p {
                        "Next round: " strong { (local) } " in the circle's time zone; "
                        time datetime=(instant) data-local { (utc) } "."
                    },
                    None => p.muted { "No round is scheduled." },
                }
                @for note in &page.schedule_notes {
                    p.notice { (note) }
                }
                @if page.viewer_is_facilitator {
                    p {
                        a href={ "/circles/" (page.circle_id) "/calendar.ics" } download { "Add to calendar" }
                        " "
                        span.muted { "(a file of the open and upcoming rounds, to share with members who do not subscribe to their own calendar address under Your data)" }
                    }
                }
            }
            @if !page.rounds.is_empty() {
                section {
                    h2 { "Rounds" }
                    ul.rounds {
                        @for round in &page.rounds {
                            li {
                                a href={ "/circles/" (id) "/rounds/" (round.number) } { "Round " (round.number) }
                                @if round.open { " " span.role { "open" } }
                                ": " (round.question)
                            }
                        }
                    }
                    p.history-links {
                        a href={ "/circles/" (id) "/history" } { "The circle's follow-through" }
                        @if let Some(me) = page.members.iter().find(|m| m.is_viewer) {
                            " · "
                            a href={ "/circles/" (id) "/members/" (me.membership_id) "/history" } { "Your history" }
                        }
                    }
                }
            }
            section {
                h2 { "Agreements" }
                @for line in page.agreements.lines() {
                    @if !line.trim().is_empty() { p.agreement { (line) } }
                }
            }
            section {
                h2 { "Members (" (page.members.len()) " of " (page.size_cap) ")" }
                ul.members {
                    @for member in &page.members {
                        li {
                            (member.name)
                            @if member.facilitator { " " span.role { "facilitator" } }
                            @if member.is_viewer { " " span.muted { "(you)" } }
                            " · "
                            a href={ "/circles/" (id) "/members/" (member.membership_id) "/history" } { "history" }
                            @if page.viewer_is_facilitator && !member.is_viewer {
                                @if !member.facilitator {
                                    " · "
                                    a href={ "/circles/" (id) "/members/" (member.membership_id) "/facilitator" } {
                                        "Make " (member.name) " a facilitator"
                                    }
                                }
                                " · "
                                a href={ "/circles/" (id) "/members/" (member.membership_id) "/remove" } {
                                    "Remove " (member.name)
                                }
                            }
                        }
                    }
                }
            }
            @if page.viewer_is_facilitator && !page.failures.is_empty() {
                section.failures {
                    h2 { "Emails that did not arrive" }
                    p.muted { "These members may have missed a check-in, reminder or digest. Check their addresses with them." }
                    ul {
                        @for failure in &page.failures {
                            li { (failure.member) " · " (failure.kind) " · " (failure.when) ": " (failure.what) }
                        }
                    }
                }
            }
            @if page.viewer_is_facilitator {
                section.facilitator {
                    h2 { "Facilitating" }
                    p {
                        a href={ "/circles/" (id) "/invites" } { "Invite people" }
                        " · "
                        a href={ "/circles/" (id) "/edit" } { "Settings" }
                        " · "
                        a href={ "/circles/" (id) "/prompts" } { "Prompts" }
                        " · "
                        a href={ "/circles/" (id) "/health" } { "Circle health" }
                    }
                    p {
                        @match page.status {
                            "active" => a href={ "/circles/" (id) "/status?action=pause" } { "Pause the circle" },
                            "paused" => a href={ "/circles/" (id) "/status?action=resume" } { "Resume the circle" },
                            _ => a href={ "/circles/" (id) "/status?action=resume" } { "Unarchive the circle" },
                        }
                        @if page.status != "archived" {
                            " · "
                            a href={ "/circles/" (id) "/status?action=archive" } { "Archive the circle" }
                        }
                    }
                }
            }
            section.mail #email {
                h2 { "Email" }
                (own_hour_form(id, page.time_zone, &page.own_hour))
                form method="post" action={ "/circles/" (id) "/mail" } {
                    @if page.muted {
                        p { "You have muted this circle's emails." }
                        button.link type="submit" name="action" value="unmute" { "Turn email back on" }
                    } @else {
                        p { "You get this circle's emails." }
                        button.link type="submit" name="action" value="mute" { "Mute this circle's emails" }
                    }
                }
                @if page.viewer_is_facilitator && !page.muted {
                    form method="post" action={ "/circles/" (id) "/join-notices" } {
                        @if page.join_notices {
                            p { "You get a short email when someone joins." }
                            button.link type="submit" name="notices" value="off" { "Stop emailing me when someone joins" }
                        } @else {
                            p { "You are not emailed when someone joins." }
                            button.link type="submit" name="notices" value="on" { "Email me when someone joins" }
                        }
                    }
                }
            }
            section {
                p { a href={ "/circles/" (id) "/leave" } { "Leave this circle" } }
            }
        },
    )
}

/// A line on the front page.
pub struct CircleLine {
    pub id: i64,
    pub name: String,
    pub facilitator: bool,
    pub status: String,
    pub next_round: Option<String>,
}

/// The front page: the viewer's circles, and the archived ones they
/// facilitate, (id, name), each with its way back.
pub fn my_circles(viewer: &str, circles: &[CircleLine], archived: &[(i64, String)]) -> Markup {
    page_for(
        viewer,
        "My circles",
        html! {
            h1 { "My circles" }
            @if circles.is_empty() {
                p { "You are not in a circle yet. When someone invites you, it will appear here; or start one yourself." }
            } @else {
                ul.circles {
                    @for circle in circles {
                        li {
                            a href={ "/circles/" (circle.id) } { (circle.name) }
                            @if circle.facilitator { " " span.role { "facilitator" } }
                            br;
                            span.muted {
                                @if circle.status != "active" { "Paused." }
                                @else if let Some(next) = &circle.next_round { "Next round " (next) "." }
                                @else { "No round scheduled." }
                            }
                        }
                    }
                }
            }
            p { a.button href="/circles/new" { "Start a circle" } }
            @if !archived.is_empty() {
                section aria-labelledby="archived" {
                    h2 #archived { "Archived circles" }
                    p.muted { "No rounds and no emails. You facilitate these, and can bring them back." }
                    ul.circles {
                        @for (id, name) in archived {
                            li {
                                a href={ "/circles/" (id) } { (name) }
                                " · "
                                a href={ "/circles/" (id) "/status?action=resume" } { "Unarchive " (name) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What a confirmation page asks: the act, what it will do and for whom,
/// and the form that does it.
pub struct Confirmation<'a> {
    pub title: &'a str,
    /// What will happen, a paragraph each.
    pub consequences: &'a [String],
    /// Where the form posts; it adds `confirm=yes`.
    pub action: &'a str,
    /// Fields the act needs besides, e.g. `("action", "archive")`.
    pub fields: &'a [(&'a str, &'a str)],
    pub button: &'a str,
    /// Whether the act takes something away (a danger button).
    pub danger: bool,
    /// Where "Cancel" leads.
    pub back: &'a str,
}

/// Asks before a disruptive act; nothing changes until the button is
/// pressed.
pub fn confirm(viewer: &str, confirmation: &Confirmation<'_>) -> Markup {
    page_for(
        viewer,
        confirmation.title,
        html! {
            h1 { (confirmation.title) }
            @for consequence in confirmation.consequences {
                p { (consequence) }
            }
            form method="post" action=(confirmation.action) {
                @for (name, value) in confirmation.fields {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name="confirm" value="yes";
                p.actions {
                    button.danger[confirmation.danger] type="submit" { (confirmation.button) }
                    " "
                    a href=(confirmation.back) { "Cancel" }
                }
            }
        },
    )
}

/// A page that explains why something was not done.
pub fn refused(viewer: &str, title: &str, why: &str, back: &str) -> Markup {
    page_for(
        viewer,
        title,
        html! {
            h1 { (title) }
            p { (why) }
            p { a href=(back) { "Back" } }
        },
    )
}
