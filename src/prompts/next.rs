//! Which prompt a circle's next round asks, and remembering what it asked.
//!
//! A circle draws from its deck, in deck order, followed by its own prompts.
//! `prompt_usage` holds one row per prompt the circle has used, with the
//! round and time of its latest use. The next prompt is the pinned one if
//! there is a pin, else the first never used, else (the whole deck used) the
//! one used longest ago, so a second pass walks the deck in the same order
//! as the first. Nothing is ever deleted to "start over": the oldest use
//! simply comes round again.
//!
//! Both functions take the caller's connection: the scheduler calls them
//! inside the transaction that opens the round, so a round and the record of
//! its prompt commit together or not at all.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::deck::{Deck, Decks};
use crate::db::binds::{Stamp, one_of};
use crate::db::schema::{circle_prompts, circles, prompt_usage};
use crate::db::{DbConnection, DbError, per_statement};

/// What marks a circle's own prompt among prompt ids: `own:<prompt_key>`.
/// Deck ids cannot contain ':', so the two never collide.
pub const OWN_PREFIX: &str = "own:";

/// The prompt id of a circle's own prompt.
pub fn own_id(key: &str) -> String {
    format!("{OWN_PREFIX}{key}")
}

/// The prompt a round asks, copied into the round so later deck edits leave
/// history alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenPrompt {
    /// A deck prompt id, or `own:<key>` for the circle's own.
    pub id: String,
    pub question: String,
    pub follow_up: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The circle's deck is not among the loaded decks (its file was removed
    /// or renamed). The circle cannot open rounds until a facilitator
    /// chooses another deck.
    #[error("the prompt deck \"{0}\" is not loaded")]
    UnknownDeck(String),
}

impl From<diesel::result::Error> for PromptError {
    fn from(error: diesel::result::Error) -> Self {
        PromptError::Db(DbError::Query(error))
    }
}

/// One prompt a circle can draw from. A deck's prompts are borrowed from
/// the loaded deck: a batch of round openings looks at every prompt of
/// every circle's deck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate<'d> {
    pub id: Cow<'d, str>,
    pub theme: Cow<'d, str>,
    pub question: Cow<'d, str>,
    pub follow_up: Option<Cow<'d, str>>,
    pub own: bool,
}

/// When a prompt was last used, and in which round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastUse {
    pub at: NaiveDateTime,
    pub round_id: i64,
}

/// Everything the choice depends on, read in one go.
pub(crate) struct CircleDraw<'d> {
    pub deck: String,
    /// `false` when the circle's deck is not loaded; the candidates are then
    /// only the circle's own prompts.
    pub deck_loaded: bool,
    pub pinned: Option<String>,
    pub candidates: Vec<Candidate<'d>>,
    pub usage: HashMap<String, LastUse>,
}

/// A circle's own prompt as stored: (key, theme, question, follow-up).
type OwnRow = (String, String, String, Option<String>);

impl<'d> CircleDraw<'d> {
    pub fn read(
        conn: &mut DbConnection,
        decks: &'d Decks,
        circle_id: i64,
    ) -> Result<Self, DbError> {
        let (deck_name, pinned): (String, Option<String>) = circles::table
            .find(circle_id)
            .select((circles::deck, circles::pinned_prompt_id))
            .first(conn)?;
        let own: Vec<OwnRow> = circle_prompts::table
            .filter(circle_prompts::circle_id.eq(circle_id))
            .order(circle_prompts::id.asc())
            .select((
                circle_prompts::prompt_key,
                circle_prompts::theme,
                circle_prompts::question,
                circle_prompts::follow_up,
            ))
            .load(conn)?;
        let usage = prompt_usage::table
            .filter(prompt_usage::circle_id.eq(circle_id))
            .select((
                prompt_usage::prompt_id,
                prompt_usage::used_at,
                prompt_usage::round_id,
            ))
            .load::<(String, NaiveDateTime, i64)>(conn)?
            .into_iter()
            .map(|(id, at, round_id)| (id, LastUse { at, round_id }))
            .collect();
        Ok(CircleDraw::assemble(decks, deck_name, pinned, own, usage))
    }

    fn assemble(
        decks: &'d Decks,
        deck_name: String,
        pinned: Option<String>,
        own: Vec<OwnRow>,
        usage: HashMap<String, LastUse>,
    ) -> Self {
        let deck = decks.get(&deck_name);
        let mut candidates = deck.map(deck_candidates).unwrap_or_default();
        candidates.extend(
            own.into_iter()
                .map(|(key, theme, question, follow_up)| Candidate {
                    id: Cow::Owned(own_id(&key)),
                    theme: Cow::Owned(theme),
                    question: Cow::Owned(question),
                    follow_up: follow_up.map(Cow::Owned),
                    own: true,
                }),
        );
        CircleDraw {
            deck: deck_name,
            deck_loaded: deck.is_some(),
            pinned,
            candidates,
            usage,
        }
    }

    /// The next prompt, by the rule in the module's comment.
    pub fn next(&self) -> Option<&Candidate<'d>> {
        pick(&self.candidates, self.pinned.as_deref(), &self.usage)
    }
}

fn deck_candidates(deck: &Deck) -> Vec<Candidate<'_>> {
    deck.prompts()
        .iter()
        .map(|prompt| Candidate {
            id: Cow::Borrowed(&prompt.id),
            theme: Cow::Borrowed(&prompt.theme),
            question: Cow::Borrowed(&prompt.question),
            follow_up: prompt.follow_up.as_deref().map(Cow::Borrowed),
            own: false,
        })
        .collect()
}

pub(crate) fn pick<'c, 'd>(
    candidates: &'c [Candidate<'d>],
    pinned: Option<&str>,
    usage: &HashMap<String, LastUse>,
) -> Option<&'c Candidate<'d>> {
    if let Some(pinned) = pinned
        && let Some(candidate) = candidates.iter().find(|c| c.id == pinned)
    {
        return Some(candidate);
    }
    if let Some(fresh) = candidates
        .iter()
        .find(|c| !usage.contains_key(c.id.as_ref()))
    {
        return Some(fresh);
    }
    // Every prompt has been used: the one used longest ago comes next. Two
    // uses at the same instant (a catch-up, a fixed test clock) are told
    // apart by their rounds, which are numbered in the order they opened;
    // `min_by_key` keeps deck order among any remaining ties.
    candidates.iter().min_by_key(|c| {
        usage
            .get(c.id.as_ref())
            .map(|last| (last.at, last.round_id))
    })
}

/// The prompt for the circle's next round: the pinned one if set (a deck id
/// or one of the circle's own prompts, `own:<key>`), else the first prompt in
/// deck order (the circle's own prompts after the deck's) that this circle
/// has not used; once all are used, the least recently used. Reads only;
/// [`record_use`] records the choice once the round exists.
///
/// Returns `Err(PromptError::UnknownDeck)` if the circle's deck is not
/// loaded: the scheduler pauses the circle with that message.
pub fn choose_next(
    conn: &mut DbConnection,
    decks: &Decks,
    circle_id: i64,
) -> Result<ChosenPrompt, PromptError> {
    let draw = CircleDraw::read(conn, decks, circle_id)?;
    choose(&draw, circle_id)
}

/// [`choose_next`] for circles whose rounds open together, read in two
/// queries for all of them rather than three for each. `circles` are (id,
/// deck, pinned prompt); the answers come in the same order.
pub fn choose_for_each(
    conn: &mut DbConnection,
    decks: &Decks,
    circles: &[(i64, &str, Option<&str>)],
) -> Result<Vec<Result<ChosenPrompt, PromptError>>, DbError> {
    let ids: Vec<i64> = circles.iter().map(|c| c.0).collect();
    let mut own: HashMap<i64, Vec<OwnRow>> = HashMap::new();
    for (circle_id, key, theme, question, follow_up) in circle_prompts::table
        .filter(one_of(circle_prompts::circle_id, &ids))
        .order(circle_prompts::id.asc())
        .select((
            circle_prompts::circle_id,
            circle_prompts::prompt_key,
            circle_prompts::theme,
            circle_prompts::question,
            circle_prompts::follow_up,
        ))
        .load::<(i64, String, String, String, Option<String>)>(conn)?
    {
        own.entry(circle_id)
            .or_default()
            .push((key, theme, question, follow_up));
    }
    let mut usage: HashMap<i64, HashMap<String, LastUse>> = HashMap::new();
    for (circle_id, prompt_id, at, round_id) in prompt_usage::table
        .filter(one_of(prompt_usage::circle_id, &ids))
        .select((
            prompt_usage::circle_id,
            prompt_usage::prompt_id,
            prompt_usage::used_at,
            prompt_usage::round_id,
        ))
        .load::<(i64, String, NaiveDateTime, i64)>(conn)?
    {
        usage
            .entry(circle_id)
            .or_default()
            .insert(prompt_id, LastUse { at, round_id });
    }
    Ok(circles
        .iter()
        .map(|&(circle_id, deck, pinned)| {
            let draw = CircleDraw::assemble(
                decks,
                deck.to_string(),
                pinned.map(str::to_string),
                own.remove(&circle_id).unwrap_or_default(),
                usage.remove(&circle_id).unwrap_or_default(),
            );
            choose(&draw, circle_id)
        })
        .collect())
}

fn choose(draw: &CircleDraw, circle_id: i64) -> Result<ChosenPrompt, PromptError> {
    if !draw.deck_loaded {
        return Err(PromptError::UnknownDeck(draw.deck.clone()));
    }
    if let Some(pinned) = &draw.pinned
        && !draw.candidates.iter().any(|c| c.id == pinned.as_str())
    {
        tracing::warn!(
            circle.id = circle_id,
            prompt.id = %pinned,
            "the pinned prompt is no longer in the circle's deck; taking the next in order"
        );
    }
    // A loaded deck always has at least one prompt (the loader refuses empty
    // decks), so there is always a candidate; should that ever not hold, the
    // deck is as unusable as a missing one.
    let chosen = draw
        .next()
        .ok_or_else(|| PromptError::UnknownDeck(draw.deck.clone()))?;
    Ok(ChosenPrompt {
        id: chosen.id.to_string(),
        question: chosen.question.to_string(),
        follow_up: chosen.follow_up.as_deref().map(str::to_string),
    })
}

/// Records that `round_id` asked `prompt_id`, and clears the circle's pin:
/// a pin is for one round.
///
/// An upsert on `(circle_id, prompt_id)`: a prompt asked again (on a later
/// pass through the deck, or pinned twice) moves its row to the new round
/// and time rather than adding one, which is what makes it the most
/// recently used.
pub fn record_use(
    conn: &mut DbConnection,
    circle_id: i64,
    prompt_id: &str,
    round_id: i64,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    record_uses(conn, &[(circle_id, prompt_id, round_id)], now)
}

#[derive(Insertable)]
#[diesel(table_name = prompt_usage)]
struct NewUse<'a> {
    circle_id: i64,
    prompt_id: &'a str,
    round_id: i64,
    used_at: Stamp,
}

/// [`record_use`] for many rounds at once: `uses` are (circle id, prompt
/// id, round id), one per circle.
pub fn record_uses(
    conn: &mut DbConnection,
    uses: &[(i64, &str, i64)],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    use diesel::upsert::excluded;
    let now = Stamp::new(now);
    let rows: Vec<NewUse<'_>> = uses
        .iter()
        .map(|&(circle_id, prompt_id, round_id)| NewUse {
            circle_id,
            prompt_id,
            round_id,
            used_at: now,
        })
        .collect();
    per_statement!(rows, |values| {
        // The upsert of `record_use`, one row per circle. Diesel writes a
        // multi-row upsert for PostgreSQL only, and never keeps the
        // statement of a `DO UPDATE` prepared. On SQLite `REPLACE` does the
        // same here, as a multi-row insert that stays prepared when the
        // chunk is full: it deletes the row the new one clashes with on
        // (circle, prompt), and nothing refers to a use by its id.
        match &mut *conn {
            DbConnection::Postgresql(conn) => {
                diesel::insert_into(prompt_usage::table)
                    .values(values)
                    .on_conflict((prompt_usage::circle_id, prompt_usage::prompt_id))
                    .do_update()
                    .set((
                        prompt_usage::round_id.eq(excluded(prompt_usage::round_id)),
                        prompt_usage::used_at.eq(excluded(prompt_usage::used_at)),
                    ))
                    .execute(conn)?;
            }
            DbConnection::Sqlite(conn) => {
                diesel::replace_into(prompt_usage::table)
                    .values(values)
                    .execute(conn)?;
            }
        }
        let ids: Vec<i64> = values.iter().map(|row| row.circle_id).collect();
        diesel::update(
            circles::table
                .filter(one_of(circles::id, &ids))
                .filter(circles::pinned_prompt_id.is_not_null()),
        )
        .set(circles::pinned_prompt_id.eq(None::<String>))
        .execute(conn)?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str) -> Candidate<'static> {
        Candidate {
            id: Cow::Owned(id.to_string()),
            theme: Cow::Borrowed("Theme"),
            question: Cow::Owned(format!("{id}?")),
            follow_up: None,
            own: id.starts_with(OWN_PREFIX),
        }
    }

    fn used(at_minute: u32, round_id: i64) -> LastUse {
        LastUse {
            at: chrono::NaiveDate::from_ymd_opt(2027, 3, 1)
                .and_then(|d| d.and_hms_opt(9, at_minute, 0))
                .expect("a time"),
            round_id,
        }
    }

    fn ids(
        candidates: &[Candidate<'_>],
        pinned: Option<&str>,
        usage: &HashMap<String, LastUse>,
    ) -> Option<String> {
        pick(candidates, pinned, usage).map(|c| c.id.to_string())
    }

    #[test]
    fn the_first_unused_prompt_comes_next() {
        let candidates = [candidate("a"), candidate("b"), candidate("own:1")];
        let mut usage = HashMap::new();
        assert_eq!(ids(&candidates, None, &usage).as_deref(), Some("a"));
        usage.insert("a".to_string(), used(0, 1));
        assert_eq!(ids(&candidates, None, &usage).as_deref(), Some("b"));
        usage.insert("b".to_string(), used(1, 2));
        assert_eq!(ids(&candidates, None, &usage).as_deref(), Some("own:1"));
    }

    #[test]
    fn once_all_are_used_the_least_recently_used_returns() {
        let candidates = [candidate("a"), candidate("b"), candidate("c")];
        let usage: HashMap<String, LastUse> = [
            ("a".to_string(), used(5, 4)),
            ("b".to_string(), used(1, 2)),
            ("c".to_string(), used(3, 3)),
        ]
        .into();
        assert_eq!(ids(&candidates, None, &usage).as_deref(), Some("b"));
        // Same instant: the earlier round wins.
        let usage: HashMap<String, LastUse> = [
            ("a".to_string(), used(0, 7)),
            ("b".to_string(), used(0, 5)),
            ("c".to_string(), used(0, 6)),
        ]
        .into();
        assert_eq!(ids(&candidates, None, &usage).as_deref(), Some("b"));
    }

    #[test]
    fn a_pin_wins_unless_it_names_nothing() {
        let candidates = [candidate("a"), candidate("b"), candidate("own:1")];
        let usage = HashMap::new();
        assert_eq!(
            ids(&candidates, Some("own:1"), &usage).as_deref(),
            Some("own:1")
        );
        assert_eq!(ids(&candidates, Some("gone"), &usage).as_deref(), Some("a"));
        assert_eq!(ids(&[], None, &usage), None);
    }
}
