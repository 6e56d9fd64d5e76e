//! The round page: the prompt everyone shares, the viewer's check-in, the
//! peer they shoulder up, the circle's open commitments, and stepping back.

use chrono::NaiveDate;
use maud::{Markup, html};

use super::layout::{page, page_for};
use super::problems::{Problem, described_by, invalid, message, summary};
use crate::rounds::away::{AwayForm, AwayPeriod};
use crate::rounds::check_in::{
    CheckInForm, FOR_ME, FOR_THE_CIRCLE, FieldErrors, MAX_COMMITMENT_LEN, MAX_COMMITMENTS,
    MAX_NOTE_LEN, OpenCommitment, Outcome,
};
use crate::rounds::notes::{MAX_ANSWER_LEN, MAX_NOTE_LEN as MAX_PEER_NOTE_LEN, Note};
use crate::rounds::reflections::Shared;
use crate::rounds::support::{CircleCommitment, MAX_SUPPORT_LEN, Support};

/// What a change just did, said once at the top of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    CheckedIn,
    Supported,
    HelpAsked,
    HelpWithdrawn,
    Skipped,
    Unskipped,
    AwaySet,
    AwayCancelled,
    NoteLeft,
    Answered,
}

impl Notice {
    const ALL: [Notice; 10] = [
        Notice::CheckedIn,
        Notice::Supported,
        Notice::HelpAsked,
        Notice::HelpWithdrawn,
        Notice::Skipped,
        Notice::Unskipped,
        Notice::AwaySet,
        Notice::AwayCancelled,
        Notice::NoteLeft,
        Notice::Answered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Notice::CheckedIn => "check-in",
            Notice::Supported => "support",
            Notice::HelpAsked => "help",
            Notice::HelpWithdrawn => "no-help",
            Notice::Skipped => "skip",
            Notice::Unskipped => "unskip",
            Notice::AwaySet => "away",
            Notice::AwayCancelled => "back",
            Notice::NoteLeft => "note",
            Notice::Answered => "answer",
        }
    }

    pub fn parse(text: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == text)
    }

    fn message(self) -> &'static str {
        match self {
            Notice::CheckedIn => "Your check-in is saved.",
            Notice::Supported => {
                "Your support is on its way: it will be in the next email and the digest."
            }
            Notice::HelpAsked => "The circle will see that you could use help with this one.",
            Notice::HelpWithdrawn => "No longer asking for help with that one.",
            Notice::Skipped => {
                "You are skipping this round: no reminder will come, and the digest will say you are away."
            }
            Notice::Unskipped => "You are back in this round.",
            Notice::AwaySet => {
                "Your away dates are saved. No check-ins or reminders will come on those days."
            }
            Notice::AwayCancelled => "Those away dates are removed.",
            Notice::NoteLeft => {
                "Your note is left: they will find it here, in their next email and in the digest."
            }
            Notice::Answered => "Your answer is under it now.",
        }
    }
}

/// What was typed into a form that is being shown again, and its problems.
#[derive(Debug, Clone, Default)]
pub struct Drafts {
    pub check_in: Option<CheckInForm>,
    /// (commitment id, text) of a support message.
    pub support: Option<(i64, String)>,
    /// (recipient's membership id, text) of a note.
    pub note: Option<(i64, String)>,
    /// (field, text) of an answer to a note or to support.
    pub answer: Option<(String, String)>,
    pub away: Option<AwayForm>,
    pub errors: FieldErrors,
}

pub struct RoundPage<'a> {
    pub viewer: &'a str,
    /// The round link's token when the viewer came by one.
    pub key: Option<&'a str>,
    pub circle_id: i64,
    pub circle_name: &'a str,
    pub membership_id: i64,
    pub number: i32,
    pub question: &'a str,
    pub follow_up: Option<&'a str>,
    pub opened: String,
    pub closes: String,
    pub closed: bool,
    pub open_commitments: &'a [OpenCommitment],
    pub form: &'a CheckInForm,
    pub checked_in: bool,
    pub partner: Option<(i64, &'a str)>,
    pub circle_open: &'a [CircleCommitment],
    pub shared: &'a [Shared],
    pub notes: &'a [Note],
    /// The other active members: (membership id, name).
    pub others: &'a [(i64, String)],
    pub skipping: bool,
    pub away: &'a [AwayPeriod],
    pub today: NaiveDate,
    pub drafts: &'a Drafts,
    pub notice: Option<Notice>,
}

impl RoundPage<'_> {
    fn action(&self, what: &str) -> String {
        format!("/circles/{}/rounds/{}{what}", self.circle_id, self.number)
    }

    /// Every form carries the round link's token, when there is one.
    fn key_field(&self) -> Markup {
        html! {
            @if let Some(key) = self.key {
                input type="hidden" name="key" value=(key);
            }
        }
    }
}

fn problem(errors: &FieldErrors, field: &str) -> Markup {
    message(field, errors.get(field).map(String::as_str))
}

/// `aria-invalid` for the fields of the problem kept under `key`.
fn flag(errors: &FieldErrors, key: &str) -> Option<&'static str> {
    invalid(errors.get(key))
}

/// `aria-describedby` for the fields of the problem kept under `key`,
/// naming its message.
fn describing(errors: &FieldErrors, key: &str) -> Option<String> {
    described_by(key, errors.get(key))
}

/// Where a problem's link in the summary goes: the `id` of its field; the
/// check-in form's for what belongs to that form but to none of its fields;
/// `None` when the page shows neither (the item it names is not on the page,
/// or the problem is with an act rather than with something typed).
fn problem_target(page: &RoundPage<'_>, key: &str) -> Option<String> {
    let id_in = |prefix: &str| {
        key.strip_prefix(prefix)
            .and_then(|id| id.parse::<i64>().ok())
    };
    let own = |commitment: &&CircleCommitment| commitment.membership_id == page.membership_id;
    if let Some(id) = id_in("follow-") {
        let shown = page.open_commitments.iter().any(|c| c.id == id);
        return Some(if shown { key } else { "check-in" }.to_string());
    }
    if let Some(id) = id_in("support-") {
        let shown = page.circle_open.iter().any(|c| c.id == id && !own(&c));
        return shown.then(|| format!("{key}-body"));
    }
    if let Some(id) = id_in("answer-note-") {
        let shown = page
            .notes
            .iter()
            .any(|n| n.id == id && n.answer.is_none() && n.to_id == page.membership_id);
        return shown.then(|| key.to_string());
    }
    if let Some(id) = id_in("answer-support-") {
        let shown = page
            .circle_open
            .iter()
            .filter(own)
            .flat_map(|c| &c.support)
            .any(|s| s.id == id && s.answer.is_none());
        return shown.then(|| key.to_string());
    }
    let commitment = (1..=MAX_COMMITMENTS).any(|n| key == format!("commitment-{n}"));
    match key {
        "reflection" | "audience" | "away-starts" | "away-ends" => Some(key.to_string()),
        _ if commitment => Some(key.to_string()),
        "commitment-extra" => Some("check-in".to_string()),
        "note-for" if !page.others.is_empty() => Some("note-for".to_string()),
        "note" if !page.others.is_empty() => Some("note-body".to_string()),
        _ => None,
    }
}

/// Where a problem stands among the check-in form's, which the summary
/// lists in the form's order; the other forms have one field or two.
fn form_order(key: &str) -> u8 {
    match key {
        _ if key.starts_with("follow-") => 0,
        "reflection" => 1,
        "audience" => 2,
        "commitment-extra" => 4,
        _ if key.starts_with("commitment-") => 3,
        "away-starts" => 5,
        "away-ends" => 6,
        _ => 7,
    }
}

/// The summary of what the form just sent needs, at the top of the page.
fn round_summary(page: &RoundPage<'_>) -> Markup {
    let mut found: Vec<(&str, Option<String>, &str)> = page
        .drafts
        .errors
        .iter()
        .map(|(key, message)| (key.as_str(), problem_target(page, key), message.as_str()))
        .collect();
    found.sort_by_key(|(key, _, _)| (form_order(key), *key));
    let problems: Vec<Problem<'_>> = found
        .iter()
        .map(|(_, target, message)| Problem {
            field: target.as_deref(),
            message,
        })
        .collect();
    summary(&problems)
}

pub fn round(page: &RoundPage<'_>) -> Markup {
    let title = format!("{}, round {}", page.circle_name, page.number);
    let content = html! {
        p.muted { a href={ "/circles/" (page.circle_id) } { "← " (page.circle_name) } }
        h1 { "Round " (page.number) }
        @if page.key.is_some() {
            p.muted { "Checking in as " strong { (page.viewer) } " through the link in your email. It works for this round until it closes." }
        }
        (round_summary(page))
        @if let Some(notice) = page.notice {
            p.notice role="status" { (notice.message()) }
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
        (asking_for_help(page))
        (shoulder_up(page))
        (check_in_form(page))
        (what_the_circle_said(page))
        (notes(page))
        (own_commitments(page))
        (circle_commitments(page))
        (stepping_back(page))
    };
    if page.key.is_some() {
        super::layout::page(&title, content)
    } else {
        page_for(page.viewer, &title, content)
    }
}

fn check_in_form(page: &RoundPage<'_>) -> Markup {
    let form = page.form;
    let errors = &page.drafts.errors;
    html! {
        form #check-in method="post" action=(page.action("")) {
            (page.key_field())
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
                        @let key = format!("follow-{id}");
                        fieldset {
                            legend { (commitment.body) " " span.muted { "(round " (commitment.made_in_round) ")" } }
                            @for (index, outcome) in Outcome::ALL.into_iter().enumerate() {
                                label.inline {
                                    // The first choice carries the id the summary links to.
                                    input id=[(index == 0).then_some(&key)] type="radio" name={ "outcome-" (id) }
                                        value=(outcome.as_str()) checked[chosen == outcome.as_str()]
                                        aria-invalid=[flag(errors, &key)] aria-describedby=[describing(errors, &key)];
                                    " " (outcome.label())
                                }
                            }
                            label for={ "note-" (id) } { "A short note (optional)" }
                            input id={ "note-" (id) } type="text" name={ "note-" (id) } value=(note) maxlength=(MAX_NOTE_LEN)
                                aria-invalid=[flag(errors, &key)] aria-describedby=[describing(errors, &key)];
                            (problem(errors, &key))
                        }
                    }
                    p.muted { "\"Partly\" closes it with honest credit for what you did. \"Not yet\" carries it into the next round. \"Release\" lets it go honestly; it is not a miss." }
                }
            }
            label for="reflection" { "Your reflection (optional)" }
            textarea #reflection name="reflection" rows="5"
                aria-invalid=[flag(errors, "reflection")] aria-describedby=[describing(errors, "reflection")] { (form.reflection) }
            (problem(errors, "reflection"))
            fieldset.audience {
                legend { "Who reads your reflection" }
                label.inline {
                    input #audience type="radio" name="audience" value=(FOR_THE_CIRCLE) checked[form.audience != FOR_ME]
                        aria-invalid=[flag(errors, "audience")] aria-describedby=[describing(errors, "audience")];
                    " The circle: "
                    span.muted { "everyone in it reads it with your name, on this page and in the round's digest" }
                }
                label.inline {
                    input type="radio" name="audience" value=(FOR_ME) checked[form.audience == FOR_ME]
                        aria-invalid=[flag(errors, "audience")] aria-describedby=[describing(errors, "audience")];
                    " Only me: "
                    span.muted { "no one else, not the facilitator either; it is in nobody else's page, email or export" }
                }
                p.muted { "Your choice is kept for your next reflection in this circle." }
                (problem(errors, "audience"))
            }
            h3 { "Before the next round, I will…" }
            p.muted { "Up to three commitments, each up to " (MAX_COMMITMENT_LEN) " characters. None is fine too: a round without new promises is still a check-in." }
            @for index in 0..MAX_COMMITMENTS {
                @let field = format!("commitment-{}", index + 1);
                label.sr-only for=(field) { "Commitment " (index + 1) }
                input id=(field) type="text" name=(field) value=(form.commitments[index]) maxlength=(MAX_COMMITMENT_LEN)
                    aria-invalid=[flag(errors, &field)] aria-describedby=[describing(errors, &field)];
                (problem(errors, &field))
            }
            (problem(errors, "commitment-extra"))
            p { button type="submit" { "Save my check-in" } }
        }
    }
}

/// One peer commitment: its support so far and a form to add some.
fn supportable(page: &RoundPage<'_>, commitment: &CircleCommitment, show_name: bool) -> Markup {
    let field = format!("support-{}", commitment.id);
    let typed = page
        .drafts
        .support
        .as_ref()
        .filter(|(id, _)| *id == commitment.id)
        .map(|(_, text)| text.as_str())
        .unwrap_or("");
    html! {
        li.commitment data-commitment=(commitment.id) {
            p {
                @if show_name { strong { (commitment.name) } ": " }
                (commitment.body)
                " " span.muted { "(round " (commitment.made_in_round) ")" }
                @if commitment.help_wanted { " " span.help { "Could use help" } }
            }
            (support_list(page, commitment, false))
            form.support method="post" action=(page.action("/support")) {
                (page.key_field())
                input type="hidden" name="commitment" value=(commitment.id);
                label.sr-only for={ (field) "-body" } { "Support for " (commitment.name) " on: " (commitment.body) }
                textarea id={ (field) "-body" } name="body" rows="2" maxlength=(MAX_SUPPORT_LEN)
                    placeholder="A word of encouragement, an offer of help…"
                    aria-invalid=[flag(&page.drafts.errors, &field)]
                    aria-describedby=[describing(&page.drafts.errors, &field)] { (typed) }
                (problem(&page.drafts.errors, &field))
                button type="submit" {
                    "Offer support" span.sr-only { " to " (commitment.name) " on: " (commitment.body) }
                }
            }
        }
    }
}

/// The support on a commitment, each with its answer; `own` when the
/// viewer owns the commitment, and so may answer what has none yet.
fn support_list(page: &RoundPage<'_>, commitment: &CircleCommitment, own: bool) -> Markup {
    html! {
        @if !commitment.support.is_empty() {
            ul.support {
                @for support in &commitment.support {
                    li {
                        strong { (support.author) } ": " (support.body)
                        (support_answer(page, support, own, &commitment.name))
                    }
                }
            }
        }
    }
}

fn support_answer(page: &RoundPage<'_>, support: &Support, own: bool, owner: &str) -> Markup {
    html! {
        @if let Some(answer) = &support.answer {
            p.answer { strong { (owner) } " answered: " (answer) }
        } @else if own {
            (answer_form(page, false, support.id, &support.author, &support.body))
        }
    }
}

/// The form field of an answer, which its problem is shown by.
pub fn answer_field(on_note: bool, id: i64) -> String {
    if on_note {
        format!("answer-note-{id}")
    } else {
        format!("answer-support-{id}")
    }
}

/// One brief answer to a note or to support, by the one it was written to.
fn answer_form(page: &RoundPage<'_>, on_note: bool, id: i64, author: &str, body: &str) -> Markup {
    let field = answer_field(on_note, id);
    let typed = page
        .drafts
        .answer
        .as_ref()
        .filter(|(draft, _)| *draft == field)
        .map(|(_, text)| text.as_str())
        .unwrap_or("");
    let about: String = body.chars().take(40).collect();
    html! {
        form.answer method="post" action=(page.action("/answer")) {
            (page.key_field())
            input type="hidden" name="to" value=(if on_note { "note" } else { "support" });
            input type="hidden" name="id" value=(id);
            label for=(field) {
                "Answer " (author) " once "
                span.muted { "(\"thank you\", \"yes, let's talk\")" }
                span.sr-only { ", about: " (about) }
            }
            input id=(field) type="text" name="answer" value=(typed) maxlength=(MAX_ANSWER_LEN)
                aria-invalid=[flag(&page.drafts.errors, &field)]
                aria-describedby=[describing(&page.drafts.errors, &field)];
            (problem(&page.drafts.errors, &field))
            button.secondary type="submit" { "Send the answer" span.sr-only { " to " (author) ", about: " (about) } }
        }
    }
}

/// The reflections shared with the circle this round.
fn what_the_circle_said(page: &RoundPage<'_>) -> Markup {
    html! {
        section #said aria-labelledby="said-heading" {
            h2 #said-heading { "What the circle said" }
            @if page.shared.is_empty() {
                p.muted { "No one has shared a reflection this round yet." }
            } @else {
                ul.said {
                    @for reflection in page.shared {
                        li {
                            p.author {
                                strong { (reflection.name) }
                                @if reflection.membership_id == page.membership_id { " (you)" }
                            }
                            p.written { (reflection.body) }
                        }
                    }
                }
            }
        }
    }
}

/// The round's notes, their answers, and a form to leave one.
fn notes(page: &RoundPage<'_>) -> Markup {
    let errors = &page.drafts.errors;
    let (typed_for, typed) = page
        .drafts
        .note
        .clone()
        .unwrap_or_else(|| (page.partner.map_or(-1, |p| p.0), String::new()));
    let name_of = |id: i64, name: &str| -> String {
        if id == page.membership_id {
            "you".to_string()
        } else {
            name.to_string()
        }
    };
    if page.notes.is_empty() && page.others.is_empty() {
        return html! {};
    }
    html! {
        section #notes aria-labelledby="notes-heading" {
            h2 #notes-heading { "Notes this round" }
            (problem(errors, "answer"))
            @if !page.notes.is_empty() {
                ul.notes {
                    @for note in page.notes {
                        li {
                            p {
                                strong { (name_of(note.from_id, &note.from)) }
                                " to "
                                strong { (name_of(note.to_id, &note.to)) }
                                ": " (note.body)
                            }
                            @if let Some(answer) = &note.answer {
                                p.answer { strong { (name_of(note.to_id, &note.to)) } " answered: " (answer) }
                            } @else if note.to_id == page.membership_id {
                                (answer_form(page, true, note.id, &note.from, &note.body))
                            }
                        }
                    }
                }
            }
            @if !page.others.is_empty() {
                form #note method="post" action=(page.action("/note")) {
                    (page.key_field())
                    p.muted { "A word for your peer, or anyone in the circle: what you noticed in them, a thank-you, an offer. The circle reads it here and in the digest; they also find it in their next email." }
                    label for="note-for" { "Note for" }
                    select #note-for name="for"
                        aria-invalid=[flag(errors, "note-for")] aria-describedby=[describing(errors, "note-for")] {
                        @for (id, name) in page.others {
                            option value=(id) selected[*id == typed_for] {
                                (name)
                                @if page.partner.is_some_and(|p| p.0 == *id) { " (your shoulder-up peer)" }
                            }
                        }
                    }
                    (problem(errors, "note-for"))
                    label for="note-body" { "Your note, up to " (MAX_PEER_NOTE_LEN) " characters" }
                    textarea #note-body name="body" rows="3" maxlength=(MAX_PEER_NOTE_LEN)
                        aria-invalid=[flag(errors, "note")] aria-describedby=[describing(errors, "note")] { (typed) }
                    (problem(errors, "note"))
                    p { button.secondary type="submit" { "Leave the note" } }
                }
            }
        }
    }
}

fn shoulder_up(page: &RoundPage<'_>) -> Markup {
    let Some((partner_id, partner_name)) = page.partner else {
        return html! {};
    };
    let theirs: Vec<&CircleCommitment> = page
        .circle_open
        .iter()
        .filter(|c| c.membership_id == partner_id)
        .collect();
    html! {
        section.shoulder-up #shoulder-up {
            h2 { "Shoulder up " (partner_name) }
            p { "This round you are paired with " strong { (partner_name) } ". A word of encouragement on what they carry goes a long way, or " a href="#note" { "leave them a note" } "." }
            @if theirs.is_empty() {
                p.muted { "They have no open commitments yet; check back once they have checked in." }
            } @else {
                ul.commitments {
                    @for commitment in theirs {
                        (supportable(page, commitment, false))
                    }
                }
            }
        }
    }
}

fn own_commitments(page: &RoundPage<'_>) -> Markup {
    let mine: Vec<&CircleCommitment> = page
        .circle_open
        .iter()
        .filter(|c| c.membership_id == page.membership_id)
        .collect();
    html! {
        @if !mine.is_empty() {
            section #yours {
                h2 { "Your open commitments" }
                (problem(&page.drafts.errors, "help"))
                ul.commitments {
                    @for commitment in mine {
                        li.commitment data-commitment=(commitment.id) {
                            p {
                                (commitment.body) " " span.muted { "(round " (commitment.made_in_round) ")" }
                                @if commitment.help_wanted { " " span.help { "Could use help" } }
                            }
                            (support_list(page, commitment, true))
                            form.inline method="post" action=(page.action("/help")) {
                                (page.key_field())
                                input type="hidden" name="commitment" value=(commitment.id);
                                @if commitment.help_wanted {
                                    input type="hidden" name="wanted" value="no";
                                    button.secondary type="submit" {
                                        "I no longer need help" span.sr-only { " with: " (commitment.body) }
                                    }
                                } @else {
                                    input type="hidden" name="wanted" value="yes";
                                    button.secondary type="submit" {
                                        "I could use help" span.sr-only { " with: " (commitment.body) }
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

/// The peers' requests for help, gathered near the top of the page, each
/// linking to its support form below.
fn asking_for_help(page: &RoundPage<'_>) -> Markup {
    let asking: Vec<&CircleCommitment> = page
        .circle_open
        .iter()
        .filter(|c| c.help_wanted && c.membership_id != page.membership_id)
        .collect();
    html! {
        @if !asking.is_empty() {
            section.asking aria-labelledby="asking" {
                h2 #asking { "Asking for help" }
                ul {
                    @for commitment in asking {
                        li {
                            strong { (commitment.name) } ": " (commitment.body) " "
                            a href={ "#support-" (commitment.id) "-body" } {
                                "Offer " (commitment.name) " a hand"
                                span.sr-only { " with " (commitment.body) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn circle_commitments(page: &RoundPage<'_>) -> Markup {
    let partner = page.partner.map(|p| p.0);
    let others: Vec<&CircleCommitment> = page
        .circle_open
        .iter()
        .filter(|c| c.membership_id != page.membership_id && Some(c.membership_id) != partner)
        .collect();
    html! {
        (problem(&page.drafts.errors, "support"))
        @if !others.is_empty() {
            section #circle {
                h2 { "What the circle is carrying" }
                ul.commitments {
                    @for commitment in others {
                        (supportable(page, commitment, true))
                    }
                }
            }
        }
    }
}

fn stepping_back(page: &RoundPage<'_>) -> Markup {
    let errors = &page.drafts.errors;
    let typed = page.drafts.away.clone().unwrap_or_default();
    html! {
        section #stepping-back {
            h2 { "Stepping back" }
            @if !page.closed {
                form.inline method="post" action=(page.action("/skip")) {
                    (page.key_field())
                    @if page.skipping {
                        p { "You are skipping this round." }
                        input type="hidden" name="skip" value="no";
                        button.secondary type="submit" { "Take part in this round after all" }
                    } @else {
                        input type="hidden" name="skip" value="yes";
                        button.secondary type="submit" { "Skip this round" }
                        " " span.muted { "No reminder; the digest will say you are away." }
                    }
                }
            }
            @if !page.away.is_empty() {
                p { "Your away dates in this circle:" }
                ul {
                    @for period in page.away {
                        li {
                            (period.starts_on.format("%-d %B %Y")) " to " (period.ends_on.format("%-d %B %Y"))
                            " "
                            form.inline method="post" action=(page.action("/away")) {
                                (page.key_field())
                                input type="hidden" name="cancel" value=(period.id);
                                button.link type="submit" { "remove" }
                            }
                        }
                    }
                }
            }
            (problem(errors, "away"))
            form #away method="post" action=(page.action("/away")) {
                (page.key_field())
                p.muted { "Away for a while? On those days you get no check-in or reminder, and you are left out of the pairs." }
                label for="away-starts" { "First day away" }
                input #away-starts type="date" name="starts" value=(typed.starts) min=(page.today.format("%Y-%m-%d"))
                    aria-invalid=[flag(errors, "away-starts")] aria-describedby=[describing(errors, "away-starts")];
                (problem(errors, "away-starts"))
                label for="away-ends" { "Last day away" }
                input #away-ends type="date" name="ends" value=(typed.ends) min=(page.today.format("%Y-%m-%d"))
                    aria-invalid=[flag(errors, "away-ends")] aria-describedby=[describing(errors, "away-ends")];
                (problem(errors, "away-ends"))
                p { button.secondary type="submit" { "Set away dates" } }
            }
        }
    }
}

/// A round link that is not one of ours.
pub fn link_unknown() -> Markup {
    page(
        "This link does not work",
        html! {
            h1 { "This round link does not work" }
            p { "It may have been copied incompletely, or its member has left the circle. Nothing has changed." }
            p { a href="/sign-in" { "Sign in" } " to reach your circles and their rounds." }
        },
    )
}

/// A real round link, used on another round's page.
pub fn link_other_round() -> Markup {
    page(
        "This link is for another round",
        html! {
            h1 { "This link is for a different round" }
            p { "Each email's link opens only the round it was sent for. Use the link in that round's email, or sign in. Nothing has changed." }
            p { a href="/sign-in" { "Sign in" } }
        },
    )
}

/// A round link after its round closed.
pub fn link_closed() -> Markup {
    page(
        "This round has closed",
        html! {
            h1 { "This round has closed" }
            p { "Email links work only while their round is open. A late check-in is still welcome: sign in to add it. Nothing has changed." }
            p { a href="/sign-in" { "Sign in" } }
        },
    )
}

/// Someone signed in opened another member's round link.
pub fn link_someone_elses() -> Markup {
    page(
        "This link is someone else's",
        html! {
            h1 { "This link was sent to another member" }
            p { "You are signed in as someone else, and a round link works only for the member it was emailed to. Nothing has changed." }
            p { a href="/" { "Go to your circles" } }
        },
    )
}
