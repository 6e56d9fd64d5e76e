//! People's words as we accept them: names on one line, longer texts on
//! several, never control characters or the invisible marks that reorder how
//! text is shown (bidirectional overrides), which can make a name read as
//! something it is not.
//!
//! One-line fields (names, titles, commitments) refuse every format
//! character (Unicode's Cf category: zero-width spaces and joiners,
//! direction marks, byte-order marks, invisible operators) and the Unicode
//! line and paragraph separators: none of them shows, so "Ada" and "Ada"
//! with a zero-width space in it would read alike and be two names. Longer
//! texts keep the few format characters that writing needs: a joiner or
//! non-joiner between two visible characters (emoji sequences, Persian and
//! Indic words), the direction marks that settle mixed-direction sentences,
//! a soft hyphen, and the tag characters of flag emoji.

/// Marks that change the display order of the text around them.
const BIDI_CONTROLS: [char; 9] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}',
];

/// Unicode's format characters (general category Cf, Unicode 16), as
/// inclusive ranges.
const FORMAT_CHARACTERS: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

const ZERO_WIDTH_NON_JOINER: char = '\u{200C}';
const ZERO_WIDTH_JOINER: char = '\u{200D}';
const LINE_SEPARATOR: char = '\u{2028}';
const PARAGRAPH_SEPARATOR: char = '\u{2029}';

fn is_format(c: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("this cannot be empty")]
    Empty,
    #[error("this is limited to {max} characters (you wrote {len})")]
    TooLong { max: usize, len: usize },
    #[error("this must stay on one line")]
    LineBreak,
    #[error("this contains an invisible control character; please retype it")]
    ControlCharacter,
}

/// An error message, written lower-case so it can be embedded, made to
/// stand alone on a page: capitalised, ending with a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

fn is_forbidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || BIDI_CONTROLS.contains(&c)
}

/// A format character a longer text may keep where it stands: `before` and
/// `after` are its neighbours.
fn format_kept_in_text(c: char, before: Option<char>, after: Option<char>) -> bool {
    let visible = |n: Option<char>| n.is_some_and(|n| !n.is_whitespace() && !is_format(n));
    match c {
        ZERO_WIDTH_JOINER | ZERO_WIDTH_NON_JOINER => visible(before) && visible(after),
        // Left-to-right, right-to-left and Arabic letter marks.
        '\u{200E}' | '\u{200F}' | '\u{061C}' => true,
        '\u{00AD}' => visible(before) && visible(after),
        // Tags follow a flag's black flag or another tag.
        '\u{E0020}'..='\u{E007F}' => {
            before.is_some_and(|b| !b.is_whitespace() && (b >= '\u{E0020}' || !is_format(b)))
        }
        _ => false,
    }
}

/// A name or title: trimmed, non-empty, one line, at most `max` characters.
pub fn single_line(raw: &str, max: usize) -> Result<String, TextError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.contains(['\r', '\n', LINE_SEPARATOR, PARAGRAPH_SEPARATOR]) {
        return Err(TextError::LineBreak);
    }
    if text
        .chars()
        .any(|c| is_forbidden(c) || c == '\t' || is_format(c))
    {
        return Err(TextError::ControlCharacter);
    }
    let len = text.chars().count();
    if len > max {
        return Err(TextError::TooLong { max, len });
    }
    Ok(text.to_string())
}

/// A longer text: line breaks kept (CRLF, and Unicode's line and paragraph
/// separators, become LF), trimmed, at most `max` characters. Empty is
/// allowed only when `required` is false.
pub fn multi_line(raw: &str, max: usize, required: bool) -> Result<String, TextError> {
    let text = raw
        .replace("\r\n", "\n")
        .replace([LINE_SEPARATOR, PARAGRAPH_SEPARATOR], "\n");
    let text = text.trim();
    if text.is_empty() {
        return if required {
            Err(TextError::Empty)
        } else {
            Ok(String::new())
        };
    }
    if text.chars().any(|c| is_forbidden(c) || c == '\r') || has_stray_format(text) {
        return Err(TextError::ControlCharacter);
    }
    let len = text.chars().count();
    if len > max {
        return Err(TextError::TooLong { max, len });
    }
    Ok(text.to_string())
}

/// Whether a longer text holds a format character it has no use for.
fn has_stray_format(text: &str) -> bool {
    let mut before = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_format(c) && !format_kept_in_text(c, before, chars.peek().copied()) {
            return true;
        }
        before = Some(c);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_keeps_ordinary_names() {
        assert_eq!(
            single_line("  Ada Lovelace ", 60),
            Ok("Ada Lovelace".into())
        );
        assert_eq!(
            single_line("Zoë O'Brien-Ngata", 60),
            Ok("Zoë O'Brien-Ngata".into())
        );
        assert_eq!(single_line("سارا", 60), Ok("سارا".into()));
    }

    #[test]
    fn single_line_rejects_each_problem_by_name() {
        assert_eq!(single_line(" \t ", 60), Err(TextError::Empty));
        assert_eq!(
            single_line("Ada\r\nBcc: x@y.z", 60),
            Err(TextError::LineBreak)
        );
        assert_eq!(single_line("Ada\nLovelace", 60), Err(TextError::LineBreak));
        assert_eq!(single_line("Ada\0", 60), Err(TextError::ControlCharacter));
        assert_eq!(single_line("Ada\tL", 60), Err(TextError::ControlCharacter));
        assert_eq!(
            single_line("Ada\u{202E}ecalevol", 60),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            single_line("abcdef", 5),
            Err(TextError::TooLong { max: 5, len: 6 })
        );
        assert_eq!(
            single_line("ééééé", 5),
            Ok("ééééé".into()),
            "characters, not bytes"
        );
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("this cannot be empty"), "This cannot be empty.");
        assert_eq!(sentence("été trop long!"), "Été trop long!");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn multi_line_keeps_paragraphs_and_normalises_line_ends() {
        assert_eq!(
            multi_line("We listen first.\r\n\r\nWe give credit.\n", 500, true),
            Ok("We listen first.\n\nWe give credit.".into())
        );
        assert_eq!(multi_line("   ", 500, false), Ok(String::new()));
        assert_eq!(multi_line("   ", 500, true), Err(TextError::Empty));
        assert_eq!(
            multi_line("a\u{2066}b", 500, true),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            multi_line("a\rb", 500, true),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            multi_line("abc", 2, true),
            Err(TextError::TooLong { max: 2, len: 3 })
        );
    }

    #[test]
    fn one_line_fields_refuse_every_invisible_format_character() {
        for invisible in [
            "\u{200B}",
            "\u{200C}",
            "\u{200D}",
            "\u{200E}",
            "\u{200F}",
            "\u{061C}",
            "\u{FEFF}",
            "\u{00AD}",
            "\u{2060}",
            "\u{180E}",
            "\u{E0001}",
        ] {
            assert_eq!(
                single_line(&format!("Ada{invisible}Lovelace"), 60),
                Err(TextError::ControlCharacter),
                "{invisible:?}"
            );
        }
        for separator in ["\u{2028}", "\u{2029}"] {
            assert_eq!(
                single_line(&format!("Ada{separator}Bcc"), 60),
                Err(TextError::LineBreak)
            );
        }
    }

    #[test]
    fn longer_texts_keep_the_format_characters_writing_needs() {
        for kept in [
            // A family emoji, a Persian word with a non-joiner, a flag, an
            // Arabic sentence with a left-to-right mark before a Latin name.
            "We are 👩\u{200D}👩\u{200D}👧 together",
            "می\u{200C}خواهم",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "قالت \u{200E}Ada\u{200E} ذلك",
            "co\u{00AD}operation",
        ] {
            assert_eq!(multi_line(kept, 500, true), Ok(kept.to_string()));
        }
        for refused in [
            "a\u{200B}b",
            "a\u{FEFF}b",
            "a\u{2060}b",
            "a \u{200D}b",
            "a\u{200D}",
            "\u{E0067}\u{E007F} x",
        ] {
            assert_eq!(
                multi_line(refused, 500, true),
                Err(TextError::ControlCharacter),
                "{refused:?}"
            );
        }
        assert_eq!(
            multi_line("one\u{2028}two\u{2029}three", 500, true),
            Ok("one\ntwo\nthree".into())
        );
    }
}
