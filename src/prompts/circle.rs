//! What a facilitator changes about a circle's prompts: which deck it draws
//! from, which prompt the next round asks (a pin), and the circle's own
//! prompts; and the overview their page shows.
//!
//! Every function takes the connection it runs on. Each write is a single
//! statement or one write transaction, so a refused change leaves nothing
//! behind.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::deck::{Decks, MAX_FOLLOW_UP_LEN, MAX_QUESTION_LEN, MAX_THEME_LEN};
use super::next::{CircleDraw, OWN_PREFIX, own_id};
use crate::db::schema::{circle_prompts, circles};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::text::{self, TextError};

/// A circle's own prompts are for the occasional question of its own, not a
/// second deck; past this, an operator's deck file is the better home.
pub const MAX_OWN_PROMPTS: usize = 100;

/// A message per form field, for the fields that were refused.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// A row of `circle_prompts`, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = circle_prompts)]
pub struct OwnPrompt {
    pub prompt_key: String,
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
    pub created_at: NaiveDateTime,
}

impl OwnPrompt {
    /// The id rounds, pins and usage know it by.
    pub fn prompt_id(&self) -> String {
        own_id(&self.prompt_key)
    }
}

/// The "add a prompt" form exactly as typed, so a refused form comes back
/// as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnPromptForm {
    pub theme: String,
    pub question: String,
    pub follow_up: String,
}

/// A checked own prompt, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOwnPrompt {
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
}

impl NewOwnPrompt {
    /// Checks each field; every problem is reported, each by its field.
    pub fn parse(form: &OwnPromptForm) -> Result<NewOwnPrompt, FieldErrors> {
        let mut errors = FieldErrors::new();
        let theme = text::single_line(&form.theme, MAX_THEME_LEN)
            .map_err(|e| errors.insert("theme", field_message("theme", &e)))
            .ok();
        let question = text::multi_line(&form.question, MAX_QUESTION_LEN, true)
            .map_err(|e| errors.insert("question", field_message("question", &e)))
            .ok();
        let follow_up = text::multi_line(&form.follow_up, MAX_FOLLOW_UP_LEN, false)
            .map_err(|e| errors.insert("follow_up", field_message("follow_up", &e)))
            .ok();
        match (theme, question, follow_up) {
            (Some(theme), Some(question), Some(follow_up)) if errors.is_empty() => {
                Ok(NewOwnPrompt {
                    theme,
                    question,
                    follow_up: (!follow_up.is_empty()).then_some(follow_up),
                })
            }
            _ => Err(errors),
        }
    }
}

/// What a person reads beside a refused field.
fn field_message(field: &str, error: &TextError) -> String {
    match (field, error) {
        ("theme", TextError::Empty) => {
            "Give the prompt a theme: a few words that say what it is about.".into()
        }
        ("question", TextError::Empty) => "Write the question the circle will answer.".into(),
        (_, TextError::TooLong { max, len }) => {
            format!("This is limited to {max} characters (you wrote {len}).")
        }
        (_, TextError::LineBreak) => "A theme stays on one line.".into(),
        (_, TextError::ControlCharacter) => {
            "This contains an invisible control character; please retype it.".into()
        }
        (_, TextError::Empty) => "This cannot be empty.".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOwnPrompt {
    Added {
        prompt_id: String,
    },
    /// The circle already has [`MAX_OWN_PROMPTS`].
    Full,
}

/// Adds a prompt of the circle's own. Its key is the next number after the
/// circle's highest, so keys stay short, stable and unique per circle.
pub fn add_own(
    conn: &mut DbConnection,
    circle_id: i64,
    prompt: &NewOwnPrompt,
    now: NaiveDateTime,
) -> Result<AddOwnPrompt, DbError> {
    write_transaction(conn, |conn| {
        // Touching the circle's row first makes two facilitators adding at
        // once take turns: on PostgreSQL the second waits on the row lock
        // and then reads the first one's key (SQLite's write transaction
        // already runs one at a time). Without it both could choose the
        // same next key, and the unique key would refuse one of them.
        diesel::update(circles::table.find(circle_id))
            .set(circles::updated_at.eq(now))
            .execute(conn)?;
        let keys: Vec<String> = circle_prompts::table
            .filter(circle_prompts::circle_id.eq(circle_id))
            .select(circle_prompts::prompt_key)
            .load(conn)?;
        if keys.len() >= MAX_OWN_PROMPTS {
            tracing::warn!(
                circle.id = circle_id,
                limit = MAX_OWN_PROMPTS,
                "a circle's own prompts are at their limit"
            );
            return Ok(AddOwnPrompt::Full);
        }
        let next = keys
            .iter()
            .filter_map(|key| key.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let key = next.to_string();
        diesel::insert_into(circle_prompts::table)
            .values((
                circle_prompts::circle_id.eq(circle_id),
                circle_prompts::prompt_key.eq(&key),
                circle_prompts::theme.eq(&prompt.theme),
                circle_prompts::question.eq(&prompt.question),
                circle_prompts::follow_up.eq(prompt.follow_up.as_deref()),
                circle_prompts::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(AddOwnPrompt::Added {
            prompt_id: own_id(&key),
        })
    })
}

/// The circle's own prompts, oldest first (the order rounds reach them).
pub fn list_own(conn: &mut DbConnection, circle_id: i64) -> Result<Vec<OwnPrompt>, DbError> {
    Ok(circle_prompts::table
        .filter(circle_prompts::circle_id.eq(circle_id))
        .order(circle_prompts::id.asc())
        .select(OwnPrompt::as_select())
        .load(conn)?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChooseDeck {
    Chosen,
    /// No loaded deck has that name.
    UnknownDeck,
}

/// Switches the circle to another deck. A pin on a prompt of the old deck
/// that the new one lacks is dropped with it; the circle's own prompts and
/// everything it has used stay, so coming back to a deck resumes it.
pub fn choose_deck(
    conn: &mut DbConnection,
    decks: &Decks,
    circle_id: i64,
    name: &str,
    now: NaiveDateTime,
) -> Result<ChooseDeck, DbError> {
    let Some(deck) = decks.get(name) else {
        return Ok(ChooseDeck::UnknownDeck);
    };
    write_transaction(conn, |conn| {
        let pinned: Option<String> = circles::table
            .find(circle_id)
            .select(circles::pinned_prompt_id)
            .first(conn)?;
        let keep_pin = pinned
            .as_deref()
            .is_some_and(|id| id.starts_with(OWN_PREFIX) || deck.prompt(id).is_some());
        diesel::update(circles::table.find(circle_id))
            .set((
                circles::deck.eq(deck.name()),
                circles::pinned_prompt_id.eq(if keep_pin { pinned } else { None }),
                circles::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(ChooseDeck::Chosen)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    Pinned,
    /// Neither a prompt of the circle's deck nor one of its own.
    UnknownPrompt,
}

/// Makes `prompt_id` the next round's prompt, whether or not it was used.
pub fn pin(
    conn: &mut DbConnection,
    decks: &Decks,
    circle_id: i64,
    prompt_id: &str,
    now: NaiveDateTime,
) -> Result<Pin, DbError> {
    write_transaction(conn, |conn| {
        let deck: String = circles::table
            .find(circle_id)
            .select(circles::deck)
            .first(conn)?;
        let known = match prompt_id.strip_prefix(OWN_PREFIX) {
            Some(key) => diesel::select(diesel::dsl::exists(
                circle_prompts::table
                    .filter(circle_prompts::circle_id.eq(circle_id))
                    .filter(circle_prompts::prompt_key.eq(key)),
            ))
            .get_result::<bool>(conn)?,
            None => decks
                .get(&deck)
                .is_some_and(|deck| deck.prompt(prompt_id).is_some()),
        };
        if !known {
            return Ok(Pin::UnknownPrompt);
        }
        diesel::update(circles::table.find(circle_id))
            .set((
                circles::pinned_prompt_id.eq(prompt_id),
                circles::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(Pin::Pinned)
    })
}

/// Lets the next round take the next prompt in order again.
pub fn unpin(conn: &mut DbConnection, circle_id: i64, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(circles::table.find(circle_id))
        .set((
            circles::pinned_prompt_id.eq(None::<String>),
            circles::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// One prompt the circle can draw from, with when it last asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptLine {
    pub id: String,
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
    /// One of the circle's own, rather than the deck's.
    pub own: bool,
    pub last_used: Option<NaiveDateTime>,
}

/// What the facilitator's prompts page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptOverview {
    pub deck: String,
    /// `false` when the circle's deck is not loaded (no rounds can open).
    pub deck_loaded: bool,
    /// The pin as stored, which may name a prompt that no longer exists.
    pub pinned: Option<String>,
    /// The deck's prompts in order, then the circle's own.
    pub prompts: Vec<PromptLine>,
    /// The id of the prompt the next round would ask if it opened now.
    pub next: Option<String>,
    /// The circle's own prompts, oldest first.
    pub own: Vec<OwnPrompt>,
}

pub fn overview(
    conn: &mut DbConnection,
    decks: &Decks,
    circle_id: i64,
) -> Result<PromptOverview, DbError> {
    let draw = CircleDraw::read(conn, decks, circle_id)?;
    let next = if draw.deck_loaded {
        draw.next().map(|c| c.id.to_string())
    } else {
        None
    };
    let prompts = draw
        .candidates
        .iter()
        .map(|c| PromptLine {
            id: c.id.to_string(),
            theme: c.theme.to_string(),
            question: c.question.to_string(),
            follow_up: c.follow_up.as_deref().map(str::to_string),
            own: c.own,
            last_used: draw.usage.get(c.id.as_ref()).map(|last| last.at),
        })
        .collect();
    Ok(PromptOverview {
        deck: draw.deck,
        deck_loaded: draw.deck_loaded,
        pinned: draw.pinned,
        prompts,
        next,
        own: list_own(conn, circle_id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(theme: &str, question: &str, follow_up: &str) -> OwnPromptForm {
        OwnPromptForm {
            theme: theme.into(),
            question: question.into(),
            follow_up: follow_up.into(),
        }
    }

    #[test]
    fn a_filled_form_parses_and_an_empty_follow_up_is_none() {
        let parsed =
            NewOwnPrompt::parse(&form(" Listening ", "Who did you hear?\r\n", "")).expect("valid");
        assert_eq!(parsed.theme, "Listening");
        assert_eq!(parsed.question, "Who did you hear?");
        assert_eq!(parsed.follow_up, None);
    }

    #[test]
    fn each_problem_is_named_by_its_field() {
        let long = "x".repeat(MAX_QUESTION_LEN + 1);
        let cases = [
            (form("", "Q?", ""), "theme"),
            (form("Two\nlines", "Q?", ""), "theme"),
            (form("T", "  ", ""), "question"),
            (form("T", &long, ""), "question"),
            (form("T", "Q?", &long), "follow_up"),
            (form("T", "Q\u{202E}?", ""), "question"),
        ];
        for (form, field) in cases {
            let errors = NewOwnPrompt::parse(&form).expect_err(field);
            assert_eq!(
                errors.keys().copied().collect::<Vec<_>>(),
                [field],
                "{form:?}"
            );
        }
        let errors = NewOwnPrompt::parse(&form("", "", &long)).expect_err("all three");
        assert_eq!(errors.len(), 3);
        assert!(errors["question"].contains("Write the question"));
        assert!(errors["follow_up"].contains("limited to 500 characters (you wrote 501)"));
    }
}
