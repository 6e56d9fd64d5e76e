//! People's words as we accept them: names on one line, longer texts on
//! several, never control characters or the invisible marks that reorder how
//! text is shown (bidirectional overrides), which can make a name read as
//! something it is not.

/// Marks that change the display order of the text around them.
const BIDI_CONTROLS: [char; 9] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}',
];

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

/// A name or title: trimmed, non-empty, one line, at most `max` characters.
pub fn single_line(raw: &str, max: usize) -> Result<String, TextError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.contains(['\r', '\n']) {
        return Err(TextError::LineBreak);
    }
    if text.chars().any(|c| is_forbidden(c) || c == '\t') {
        return Err(TextError::ControlCharacter);
    }
    let len = text.chars().count();
    if len > max {
        return Err(TextError::TooLong { max, len });
    }
    Ok(text.to_string())
}

/// A longer text: line breaks kept (CRLF becomes LF), trimmed, at most `max`
/// characters. Empty is allowed only when `required` is false.
pub fn multi_line(raw: &str, max: usize, required: bool) -> Result<String, TextError> {
    let text = raw.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return if required {
            Err(TextError::Empty)
        } else {
            Ok(String::new())
        };
    }
    if text.chars().any(|c| is_forbidden(c) || c == '\r') {
        return Err(TextError::ControlCharacter);
    }
    let len = text.chars().count();
    if len > max {
        return Err(TextError::TooLong { max, len });
    }
    Ok(text.to_string())
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
}
