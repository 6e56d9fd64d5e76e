//! Prompt decks as data: one TOML file per deck in the prompts folder
//! (`rounds.prompts_dir`), read and checked once at start so that a broken
//! edit stops the server with a line naming the file, not a round later.
//!
//! A deck is named by its file (`shoulder.toml` is the deck `shoulder`), and
//! its `name` key must say the same: a copied file that still claims another
//! deck's name is the mistake this catches. The default deck is also compiled
//! into the binary and used when its file is missing; a file on disk always
//! wins over the built-in copy.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::text::{self, TextError};

/// The decks shipped with the binary, by name.
const BUILT_IN: &[(&str, &str)] = &[(
    "shoulder",
    include_str!("../../templates/prompts/shoulder.toml"),
)];

pub const MAX_DECK_NAME_LEN: usize = 40;
pub const MAX_TITLE_LEN: usize = 80;
pub const MAX_DESCRIPTION_LEN: usize = 300;
pub const MAX_ID_LEN: usize = 64;
pub const MAX_THEME_LEN: usize = 60;
/// The same limit a facilitator's own prompt has: a question answerable in
/// a few sentences should not need more.
pub const MAX_QUESTION_LEN: usize = 500;
pub const MAX_FOLLOW_UP_LEN: usize = 500;
pub const MAX_INSPIRED_BY_LEN: usize = 300;
/// Weekly rounds for twenty years; more is a file gone wrong.
pub const MAX_PROMPTS_PER_DECK: usize = 1000;
pub const MAX_DECK_FILE_BYTES: u64 = 1024 * 1024;

/// One prompt of a deck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Stable slug; circles remember what they used by it.
    pub id: String,
    pub theme: String,
    pub question: String,
    pub follow_up: Option<String>,
    /// The idea, author or source the prompt grew from.
    pub inspired_by: String,
}

/// Where a deck was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeckSource {
    File(PathBuf),
    BuiltIn,
}

/// A deck that passed every check: it has at least one prompt, and its ids
/// are unique. Fields are private so that stays true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deck {
    name: String,
    title: String,
    description: String,
    prompts: Vec<Prompt>,
    source: DeckSource,
}

impl Deck {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// In deck order, the order circles move through them.
    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    pub fn source(&self) -> &DeckSource {
        &self.source
    }

    pub fn prompt(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|prompt| prompt.id == id)
    }

    /// Each theme with how many prompts it has, in order of first appearance.
    pub fn themes(&self) -> Vec<(&str, usize)> {
        let mut themes: Vec<(&str, usize)> = Vec::new();
        for prompt in &self.prompts {
            match themes.iter_mut().find(|(theme, _)| *theme == prompt.theme) {
                Some((_, count)) => *count += 1,
                None => themes.push((&prompt.theme, 1)),
            }
        }
        themes
    }
}

/// Every loaded deck, by name. Shared read-only by handlers and jobs.
#[derive(Debug, Clone)]
pub struct Decks {
    /// Sorted by name.
    decks: Vec<Deck>,
}

impl Decks {
    /// Reads every `*.toml` in `dir`, then adds the built-in decks that no
    /// file replaced. A missing folder means the built-in decks alone.
    pub fn load(dir: &Path) -> Result<Decks, DeckError> {
        let mut decks = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut paths = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| DeckError::folder(dir, &e))?;
                    paths.push(entry.path());
                }
                paths.sort();
                for path in paths {
                    if let Some(deck) = load_file(&path)? {
                        decks.push(deck);
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(
                    folder = %dir.display(),
                    "no prompts folder; using the built-in decks"
                );
            }
            Err(error) => return Err(DeckError::folder(dir, &error)),
        }
        for (name, text) in BUILT_IN {
            if !decks.iter().any(|deck: &Deck| deck.name == *name) {
                decks.push(parse_deck(name, DeckSource::BuiltIn, text)?);
            }
        }
        decks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Decks { decks })
    }

    /// Only the decks compiled into the binary.
    pub fn built_in() -> Result<Decks, DeckError> {
        let mut decks = BUILT_IN
            .iter()
            .map(|(name, text)| parse_deck(name, DeckSource::BuiltIn, text))
            .collect::<Result<Vec<_>, _>>()?;
        decks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Decks { decks })
    }

    pub fn get(&self, name: &str) -> Option<&Deck> {
        self.decks.iter().find(|deck| deck.name == name)
    }

    /// By name.
    pub fn iter(&self) -> impl Iterator<Item = &Deck> {
        self.decks.iter()
    }

    pub fn len(&self) -> usize {
        self.decks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decks.is_empty()
    }
}

/// Why a deck could not be loaded: the file, the line when known, and the
/// problem, in one line an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeckError {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl DeckError {
    fn folder(dir: &Path, error: &std::io::Error) -> DeckError {
        DeckError {
            file: dir.display().to_string(),
            line: None,
            reason: format!("cannot read the prompts folder: {error}"),
        }
    }
}

impl fmt::Display for DeckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "prompt deck {}, line {line}: {}", self.file, self.reason),
            None => write!(f, "prompt deck {}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for DeckError {}

/// A deck file as written; checked into a [`Deck`] by [`parse_deck`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeckFile {
    name: Spanned<String>,
    title: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    prompts: Vec<PromptFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    id: Spanned<String>,
    theme: Spanned<String>,
    question: Spanned<String>,
    follow_up: Option<Spanned<String>>,
    inspired_by: Spanned<String>,
}

/// Reads one file of the folder; `None` for files that are not decks.
fn load_file(path: &Path) -> Result<Option<Deck>, DeckError> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden files are editors' and version control's, never decks.
    if file_name.starts_with('.') || !file_name.ends_with(".toml") || !path.is_file() {
        return Ok(None);
    }
    let at = |line: Option<usize>, reason: String| DeckError {
        file: path.display().to_string(),
        line,
        reason,
    };
    let name = file_name.trim_end_matches(".toml");
    check_deck_name(name).map_err(|reason| at(None, reason))?;
    let size = std::fs::metadata(path)
        .map_err(|e| at(None, format!("cannot read it: {e}")))?
        .len();
    if size > MAX_DECK_FILE_BYTES {
        return Err(at(
            None,
            format!("is {size} bytes; a deck file is at most {MAX_DECK_FILE_BYTES}"),
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| at(None, format!("cannot read it: {e}")))?;
    parse_deck(name, DeckSource::File(path.to_path_buf()), &text).map(Some)
}

/// Deck names live in the database (`circles.deck`) and in file names: keep
/// them to plain lower-case slugs.
fn check_deck_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_DECK_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the file name {name:?} is not a deck name: use up to {MAX_DECK_NAME_LEN} lower-case letters, digits, '-' or '_', such as my-deck.toml"
        ))
    }
}

fn check_prompt_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the id is empty".into());
    }
    // No ':' allowed, so a deck id can never look like a circle's own
    // prompt ("own:3").
    let valid = id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the id {id:?} is not a slug: use up to {MAX_ID_LEN} lower-case letters, digits and '-'"
        ))
    }
}

/// Describes a text problem after the name of the key it is in.
fn problem(key: &str, error: &TextError) -> String {
    match error {
        TextError::Empty => format!("{key} is empty"),
        TextError::TooLong { max, len } => {
            format!("{key} is {len} characters long; at most {max} are allowed")
        }
        TextError::LineBreak => format!("{key} must stay on one line"),
        TextError::ControlCharacter => format!("{key} contains a control character"),
    }
}

/// The 1-based line of a byte offset into `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses and checks one deck. `name` is what the file is called; `source`
/// names it in errors.
pub fn parse_deck(name: &str, source: DeckSource, text: &str) -> Result<Deck, DeckError> {
    let file = match &source {
        DeckSource::File(path) => path.display().to_string(),
        DeckSource::BuiltIn => format!("{name}.toml (built in)"),
    };
    let fail = |span: Option<std::ops::Range<usize>>, reason: String| DeckError {
        file: file.clone(),
        line: span.map(|span| line_of(text, span.start)),
        reason,
    };
    let parsed: DeckFile = toml::from_str(text).map_err(|error| {
        // toml's messages can span lines; an operator's log gets one.
        let message = error.message().split_whitespace().collect::<Vec<_>>();
        fail(error.span(), message.join(" "))
    })?;

    if parsed.name.get_ref() != name {
        return Err(fail(
            Some(parsed.name.span()),
            format!(
                "name is {:?}, but a deck is named by its file: write name = {name:?}",
                parsed.name.get_ref()
            ),
        ));
    }
    let title = text::single_line(parsed.title.get_ref(), MAX_TITLE_LEN)
        .map_err(|e| fail(Some(parsed.title.span()), problem("title", &e)))?;
    let description = text::single_line(parsed.description.get_ref(), MAX_DESCRIPTION_LEN)
        .map_err(|e| fail(Some(parsed.description.span()), problem("description", &e)))?;
    if parsed.prompts.is_empty() {
        return Err(fail(
            None,
            "has no prompts; add at least one [[prompts]] entry".into(),
        ));
    }
    if parsed.prompts.len() > MAX_PROMPTS_PER_DECK {
        return Err(fail(
            None,
            format!(
                "has {} prompts; a deck holds at most {MAX_PROMPTS_PER_DECK}",
                parsed.prompts.len()
            ),
        ));
    }

    let mut seen: HashSet<String> = HashSet::new();
    let mut first_line: Vec<(String, usize)> = Vec::new();
    let mut prompts = Vec::with_capacity(parsed.prompts.len());
    for (index, entry) in parsed.prompts.into_iter().enumerate() {
        let number = index + 1;
        let id = entry.id.get_ref().trim().to_string();
        let label = if id.is_empty() {
            format!("prompt {number}")
        } else {
            format!("prompt {number} ({id:?})")
        };
        let at = |span: std::ops::Range<usize>, reason: String| {
            fail(Some(span), format!("{label}: {reason}"))
        };
        check_prompt_id(&id).map_err(|reason| at(entry.id.span(), reason))?;
        if !seen.insert(id.clone()) {
            let earlier = first_line
                .iter()
                .find(|(other, _)| *other == id)
                .map(|(_, line)| format!(" (first on line {line})"))
                .unwrap_or_default();
            return Err(at(
                entry.id.span(),
                format!("the id {id:?} is used twice{earlier}; ids must be unique in a deck"),
            ));
        }
        first_line.push((id.clone(), line_of(text, entry.id.span().start)));
        let theme = text::single_line(entry.theme.get_ref(), MAX_THEME_LEN)
            .map_err(|e| at(entry.theme.span(), problem("theme", &e)))?;
        let question = text::multi_line(entry.question.get_ref(), MAX_QUESTION_LEN, true)
            .map_err(|e| at(entry.question.span(), problem("question", &e)))?;
        // An empty follow-up is the same as none.
        let follow_up = match &entry.follow_up {
            Some(follow_up) => text::multi_line(follow_up.get_ref(), MAX_FOLLOW_UP_LEN, false)
                .map_err(|e| at(follow_up.span(), problem("follow_up", &e)))?,
            None => String::new(),
        };
        let inspired_by = text::single_line(entry.inspired_by.get_ref(), MAX_INSPIRED_BY_LEN)
            .map_err(|e| at(entry.inspired_by.span(), problem("inspired_by", &e)))?;
        prompts.push(Prompt {
            id,
            theme,
            question,
            follow_up: (!follow_up.is_empty()).then_some(follow_up),
            inspired_by,
        });
    }
    Ok(Deck {
        name: name.to_string(),
        title,
        description,
        prompts,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"name = "small"
title = "A small deck"
description = "Two prompts for tests."

[[prompts]]
id = "first"
theme = "Listening"
question = "Who did you listen to this week?"
follow_up = "Listen to one more person."
inspired_by = "Listen more, speak less."

[[prompts]]
id = "second"
theme = "Credit"
question = "Whose work did you build on?"
inspired_by = "Give credit where it is due."
"#;

    fn parse(text: &str) -> Result<Deck, DeckError> {
        parse_deck("small", DeckSource::File("prompts/small.toml".into()), text)
    }

    #[test]
    fn a_valid_deck_parses_in_order() {
        let deck = parse(SMALL).expect("valid");
        assert_eq!(deck.name(), "small");
        assert_eq!(deck.title(), "A small deck");
        let ids: Vec<&str> = deck.prompts().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["first", "second"]);
        assert_eq!(
            deck.prompt("first").and_then(|p| p.follow_up.as_deref()),
            Some("Listen to one more person.")
        );
        assert_eq!(
            deck.prompt("second").and_then(|p| p.follow_up.clone()),
            None
        );
        assert_eq!(deck.themes(), [("Listening", 1), ("Credit", 1)]);
    }

    #[test]
    fn a_duplicate_id_names_the_file_the_line_and_the_first_use() {
        let text = SMALL.replace("id = \"second\"", "id = \"first\"");
        let error = parse(&text).expect_err("duplicate refused");
        assert_eq!(error.file, "prompts/small.toml");
        assert_eq!(error.line, Some(13));
        let shown = error.to_string();
        assert!(shown.contains("prompts/small.toml, line 13"), "{shown}");
        assert!(shown.contains("prompt 2 (\"first\")"), "{shown}");
        assert!(shown.contains("used twice (first on line 6)"), "{shown}");
    }

    #[test]
    fn an_empty_question_names_the_prompt_and_its_line() {
        let text = SMALL.replace("Whose work did you build on?", "   ");
        let error = parse(&text).expect_err("empty refused");
        assert_eq!(error.line, Some(15));
        assert!(
            error
                .to_string()
                .ends_with("prompt 2 (\"second\"): question is empty"),
            "{error}"
        );
    }

    #[test]
    fn bad_toml_is_reported_with_its_line_on_one_line() {
        let text = SMALL.replace("theme = \"Credit\"", "theme = \"Credit");
        let error = parse(&text).expect_err("syntax error");
        assert_eq!(error.line, Some(14), "{error}");
        assert!(!error.to_string().contains('\n'), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("prompt deck prompts/small.toml, line 14: ")
        );
    }

    #[test]
    fn each_problem_is_refused_with_a_reason() {
        let cases: [(&str, &str, &str); 11] = [
            (
                "question = \"Who did",
                "questoin = \"Who did",
                "unknown field `questoin`",
            ),
            (
                "inspired_by = \"Give credit where it is due.\"",
                "",
                "missing field `inspired_by`",
            ),
            ("theme = \"Credit\"", "theme = \"\"", "theme is empty"),
            (
                "inspired_by = \"Give credit where it is due.\"",
                "inspired_by = \" \"",
                "inspired_by is empty",
            ),
            ("id = \"second\"", "id = \"Second Prompt\"", "is not a slug"),
            ("id = \"second\"", "id = \"own:1\"", "is not a slug"),
            ("id = \"second\"", "id = \"\"", "prompt 2: the id is empty"),
            (
                "name = \"small\"",
                "name = \"shoulder\"",
                "write name = \"small\"",
            ),
            ("title = \"A small deck\"", "title = \"\"", "title is empty"),
            (
                "theme = \"Credit\"",
                "theme = \"Credit\\nand more\"",
                "theme must stay on one line",
            ),
            (
                "question = \"Whose work",
                "question = \"\\u202EWhose work",
                "control character",
            ),
        ];
        for (from, to, expected) in cases {
            let text = SMALL.replacen(from, to, 1);
            assert_ne!(text, SMALL, "{from} is in the sample");
            let error = parse(&text).expect_err(expected);
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
    }

    #[test]
    fn lengths_are_limited() {
        let long = "x".repeat(MAX_QUESTION_LEN + 1);
        let text = SMALL.replace("Whose work did you build on?", &long);
        let error = parse(&text).expect_err("too long");
        assert!(
            error
                .to_string()
                .contains("question is 501 characters long"),
            "{error}"
        );
    }

    #[test]
    fn a_deck_without_prompts_is_refused() {
        let text = "name = \"small\"\ntitle = \"Empty\"\ndescription = \"Nothing here.\"\n";
        let error = parse(text).expect_err("no prompts");
        assert!(error.to_string().contains("has no prompts"), "{error}");
    }

    #[test]
    fn the_shipped_deck_is_large_varied_and_mixed() {
        let decks = Decks::built_in().expect("the built-in deck validates");
        let deck = decks.get("shoulder").expect("the default deck is built in");
        assert!(
            deck.prompts().len() >= 48,
            "{} prompts",
            deck.prompts().len()
        );
        let themes = deck.themes();
        assert!(themes.len() >= 6, "{themes:?}");
        // Consecutive rounds, and the turn from the last prompt back to the
        // first, never stay on one theme.
        let prompts = deck.prompts();
        for (i, prompt) in prompts.iter().enumerate() {
            let next = &prompts[(i + 1) % prompts.len()];
            assert_ne!(prompt.theme, next.theme, "{} then {}", prompt.id, next.id);
        }
        for prompt in prompts {
            assert!(
                prompt.question.ends_with('?'),
                "{} asks a question",
                prompt.id
            );
            assert!(prompt.follow_up.is_some(), "{} leads somewhere", prompt.id);
        }
    }

    #[test]
    fn the_shipped_file_on_disk_validates_too() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/prompts");
        let decks = Decks::load(&dir).expect("the shipped folder validates");
        let deck = decks.get("shoulder").expect("shoulder deck");
        assert!(matches!(deck.source(), DeckSource::File(_)));
    }

    #[test]
    fn a_missing_folder_falls_back_to_the_built_in_decks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let decks = Decks::load(&dir.path().join("nowhere")).expect("built-ins");
        let deck = decks.get("shoulder").expect("shoulder deck");
        assert_eq!(deck.source(), &DeckSource::BuiltIn);
    }

    #[test]
    fn files_on_disk_win_and_add_decks() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("shoulder.toml"),
            SMALL.replace("name = \"small\"", "name = \"shoulder\""),
        )
        .expect("write");
        std::fs::write(dir.path().join("small.toml"), SMALL).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a deck").expect("write");
        std::fs::write(dir.path().join(".small.toml.swp"), "junk").expect("write");
        let decks = Decks::load(dir.path()).expect("loads");
        let names: Vec<&str> = decks.iter().map(Deck::name).collect();
        assert_eq!(names, ["shoulder", "small"]);
        let shoulder = decks.get("shoulder").expect("replaced");
        assert_eq!(
            shoulder.prompts().len(),
            2,
            "the file won over the built-in copy"
        );
    }

    #[test]
    fn a_broken_file_stops_loading_and_names_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("small.toml"), "name = \"small\"\ntitle = [")
            .expect("write");
        let error = Decks::load(dir.path()).expect_err("broken");
        assert!(error.file.ends_with("small.toml"), "{error}");
        assert_eq!(error.line, Some(2));

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("My Deck.toml"), SMALL).expect("write");
        let error = Decks::load(dir.path()).expect_err("bad name");
        assert!(error.to_string().contains("is not a deck name"), "{error}");
    }
}
