//! The facilitator's prompts page: the circle's deck, what the next round
//! will ask (and pinning another prompt instead), and the circle's own
//! prompts with the form that adds one.

use maud::{Markup, html};

use super::layout::page_for;
use super::problems::{Problem, described_by, invalid, message, summary};
use crate::prompts::circle::{FieldErrors, OwnPromptForm};

/// A deck the circle may choose.
pub struct DeckChoice {
    pub name: String,
    pub title: String,
    pub description: String,
    pub prompts: usize,
    pub themes: usize,
}

/// One prompt in the pin list.
pub struct PromptChoice {
    pub id: String,
    pub theme: String,
    pub question: String,
    pub own: bool,
    /// The day it was last asked, in the circle's zone.
    pub last_used: Option<String>,
}

/// What the next round will ask.
pub struct NextPrompt {
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
    pub pinned: bool,
}

/// One of the circle's own prompts.
pub struct OwnLine {
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
    pub last_used: Option<String>,
}

pub struct PromptsPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    /// The circle's deck name, and whether it is loaded.
    pub deck: &'a str,
    pub deck_loaded: bool,
    pub decks: Vec<DeckChoice>,
    pub next: Option<NextPrompt>,
    /// A pin that names a prompt no longer there.
    pub stale_pin: bool,
    /// The prompt currently pinned, or else the next one: preselected.
    pub selected: Option<String>,
    pub choices: Vec<PromptChoice>,
    pub used: usize,
    pub own: Vec<OwnLine>,
    pub form: &'a OwnPromptForm,
    pub errors: &'a FieldErrors,
    pub notice: Option<&'a str>,
    pub max_question: usize,
    pub max_follow_up: usize,
    pub max_theme: usize,
    /// Theme names of the deck, offered as suggestions for an own prompt.
    pub themes: Vec<String>,
}

fn problem(errors: &FieldErrors, field: &str) -> Markup {
    message(field, errors.get(field).map(String::as_str))
}

/// The page's fields that can be refused, in the order it shows them;
/// each is the `id` of its field.
const PROMPT_FIELDS: [&str; 5] = ["prompt_id", "deck", "theme", "question", "follow_up"];

/// The summary's problems in the page's order. A pin refused when the page
/// no longer offers any prompt to pin has no field to link to.
fn prompt_problems<'a>(view: &'a PromptsPage<'_>) -> Vec<Problem<'a>> {
    let shown = |field: &str| field != "prompt_id" || !view.choices.is_empty();
    let known = PROMPT_FIELDS.iter().filter_map(|field| {
        view.errors.get(field).map(|message| Problem {
            field: shown(field).then_some(*field),
            message: message.as_str(),
        })
    });
    let others = view
        .errors
        .iter()
        .filter(|(key, _)| !PROMPT_FIELDS.contains(key))
        .map(|(_, message)| Problem {
            field: None,
            message: message.as_str(),
        });
    known.chain(others).collect()
}

/// A long question shortened for a select list, on a character boundary.
fn shortened(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

fn choice_label(choice: &PromptChoice) -> String {
    let used = match &choice.last_used {
        Some(day) => format!(" (used {day})"),
        None => String::new(),
    };
    format!(
        "{}: {}{used}",
        choice.theme,
        shortened(&choice.question, 90)
    )
}

pub fn prompts_page(view: &PromptsPage<'_>) -> Markup {
    let id = view.circle_id;
    let errors = view.errors;
    let flag = |field: &str| invalid(errors.get(field));
    let about = |field: &str| described_by(field, errors.get(field));
    let title = format!("Prompts for {}", view.circle_name);
    let deck_choices = view.choices.iter().filter(|c| !c.own);
    let own_choices = view.choices.iter().filter(|c| c.own);
    page_for(
        view.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (id) } { "← " (view.circle_name) } }
            h1 { "Prompts" }
            @if let Some(notice) = view.notice {
                p.notice role="status" { (notice) }
            }
            (summary(&prompt_problems(view)))
            p.muted {
                "Every round asks the whole circle one question. The circle moves through its deck in order, "
                "then through its own prompts, without repeating one until all have been asked."
            }

            section #next {
                h2 { "The next round" }
                @if !view.deck_loaded {
                    p.error {
                        "This circle's deck \"" (view.deck) "\" is no longer available, so no round can open. "
                        "Choose another deck below, then resume the circle from its page if it was paused."
                    }
                } @else if let Some(next) = &view.next {
                    p {
                        @if next.pinned { "Pinned for the next round" } @else { "Next in order" }
                        " · " span.muted { (next.theme) }
                    }
                    blockquote.prompt {
                        p { strong { (next.question) } }
                        @if let Some(follow_up) = &next.follow_up { p { (follow_up) } }
                    }
                }
                @if view.stale_pin {
                    p.notice { "The pinned prompt is no longer in the deck; the next round takes the next one in order instead." }
                }
                @if !view.choices.is_empty() {
                    form method="post" action={ "/circles/" (id) "/prompts/pin" } {
                        label for="prompt_id" { "Ask this in the next round instead" }
                        p.muted {
                            (view.used) " of " (view.choices.len()) " prompts have been asked. "
                            "A pin holds for one round; after it, the circle carries on in order."
                        }
                        select #prompt_id name="prompt_id"
                            aria-invalid=[flag("prompt_id")] aria-describedby=[about("prompt_id")] {
                            @if deck_choices.clone().next().is_some() {
                                optgroup label="From the deck" {
                                    @for choice in deck_choices {
                                        option value=(choice.id) selected[view.selected.as_deref() == Some(choice.id.as_str())] { (choice_label(choice)) }
                                    }
                                }
                            }
                            @if own_choices.clone().next().is_some() {
                                optgroup label="The circle's own" {
                                    @for choice in own_choices {
                                        option value=(choice.id) selected[view.selected.as_deref() == Some(choice.id.as_str())] { (choice_label(choice)) }
                                    }
                                }
                            }
                        }
                        (problem(errors, "prompt_id"))
                        p.actions { button type="submit" { "Pin for the next round" } }
                    }
                    @if view.next.as_ref().is_some_and(|n| n.pinned) || view.stale_pin {
                        form method="post" action={ "/circles/" (id) "/prompts/unpin" } {
                            button.link type="submit" { "Unpin: take the next prompt in order" }
                        }
                    }
                }
            }

            section #choose-deck {
                h2 { "Deck" }
                form method="post" action={ "/circles/" (id) "/prompts/deck" } {
                    label for="deck" { "The circle draws from" }
                    select #deck name="deck" aria-invalid=[flag("deck")] aria-describedby=[about("deck")] {
                        @for deck in &view.decks {
                            option value=(deck.name) selected[deck.name == view.deck] {
                                (deck.title) " (" (deck.prompts) " prompts, " (deck.themes) " themes)"
                            }
                        }
                    }
                    @for deck in &view.decks {
                        @if deck.name == view.deck {
                            p.muted { (deck.description) }
                        }
                    }
                    (problem(errors, "deck"))
                    p.actions { button type="submit" { "Use this deck" } }
                }
                p.muted { "Switching keeps what the circle has already asked, so coming back to a deck carries on where it left off." }
            }

            section #own {
                h2 { "The circle's own prompts" }
                @if view.own.is_empty() {
                    p.muted { "None yet. A question of your own joins the rotation after the deck's." }
                } @else {
                    ol.own-prompts {
                        @for line in &view.own {
                            li {
                                span.muted { (line.theme) } br;
                                (line.question)
                                @if let Some(follow_up) = &line.follow_up { br; span.muted { (follow_up) } }
                                @if let Some(day) = &line.last_used { br; span.muted { "Asked " (day) "." } }
                            }
                        }
                    }
                }
                h3 { "Add a prompt" }
                form method="post" action={ "/circles/" (id) "/prompts/own" } {
                    label for="theme" { "Theme" }
                    input #theme type="text" name="theme" value=(view.form.theme) maxlength=(view.max_theme) list="deck-themes" required
                        aria-invalid=[flag("theme")] aria-describedby=[about("theme")];
                    datalist #deck-themes {
                        @for theme in &view.themes { option value=(theme) {} }
                    }
                    (problem(errors, "theme"))

                    label for="question" { "Question" }
                    p.muted { "Warm and concrete, answerable in a few sentences; up to " (view.max_question) " characters." }
                    textarea #question name="question" rows="3" maxlength=(view.max_question) required
                        aria-invalid=[flag("question")] aria-describedby=[about("question")] { (view.form.question) }
                    (problem(errors, "question"))

                    label for="follow_up" { "Follow-up (optional)" }
                    p.muted { "A nudge towards something to do before the next round." }
                    textarea #follow_up name="follow_up" rows="2" maxlength=(view.max_follow_up)
                        aria-invalid=[flag("follow_up")] aria-describedby=[about("follow_up")] { (view.form.follow_up) }
                    (problem(errors, "follow_up"))

                    p.actions { button type="submit" { "Add the prompt" } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_questions_are_shortened_on_a_character_boundary() {
        assert_eq!(shortened("Short  and\nflat", 90), "Short and flat");
        let long = "é".repeat(100);
        let short = shortened(&long, 10);
        assert_eq!(short.chars().count(), 10);
        assert!(short.ends_with('…'));
    }
}
