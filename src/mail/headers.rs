//! Headers that tell mail programs and robots what kind of mail ours is:
//! `Auto-Submitted` (RFC 3834) on everything we send, so auto-responders
//! stay quiet and filters know no person typed it, and `List-Id` (RFC 2919)
//! on circle mail, so each circle's mail can be filtered on its own.
//!
//! A circle's name is people's text and may hold anything: quotes,
//! backslashes, letters of any script, even what looks like an encoded word.
//! [`list_id`] writes it as a quoted string when it is plain ASCII and as
//! RFC 2047 encoded words otherwise, so the header's value is always ASCII
//! without control characters and reads back as the name it was.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

pub const AUTO_SUBMITTED: &str = "Auto-Submitted";
/// What [`AUTO_SUBMITTED`] says of mail a program sent on its own.
pub const AUTO_GENERATED: &str = "auto-generated";
pub const LIST_ID: &str = "List-Id";

/// The longest an encoded word may be, delimiters included (RFC 2047, 2).
const MAX_ENCODED_WORD_LEN: usize = 75;
const ENCODED_WORD_START: &str = "=?utf-8?b?";
const ENCODED_WORD_END: &str = "?=";
/// Most bytes of text one encoded word carries: base64 turns each 3 bytes
/// into 4 characters, and the word must stay within its length limit.
const MAX_ENCODED_WORD_BYTES: usize =
    (MAX_ENCODED_WORD_LEN - ENCODED_WORD_START.len() - ENCODED_WORD_END.len()) / 4 * 3;

/// Where circles' list ids live: `lists.<host>` of the public URL, under the
/// operator's own domain as RFC 2919 asks. A host that cannot stand in a
/// list id (an IPv6 address) gives a name under `.invalid`, which is still
/// well formed.
pub fn list_namespace(public_url: &str) -> String {
    let host = url::Url::parse(public_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .filter(|host| {
            !host.is_empty()
                && host
                    .split('.')
                    .all(|label| !label.is_empty() && label.bytes().all(is_label_byte))
        });
    format!("lists.{}", host.as_deref().unwrap_or("shoulder.invalid"))
}

fn is_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

/// The `List-Id` value of circle `circle_id`: its name as the display part,
/// then `<circle-<id>.<namespace>>`, which stays the same when the circle is
/// renamed. `namespace` comes from [`list_namespace`].
pub fn list_id(circle_id: i64, circle_name: &str, namespace: &str) -> String {
    // Control characters (line breaks above all) have no place in a header.
    let name: String = circle_name
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    let id = format!("<circle-{circle_id}.{namespace}>");
    if name.is_empty() {
        return id;
    }
    let phrase = if name.is_ascii() && !name.contains("=?") {
        quoted(&name)
    } else {
        encoded_words(&name)
    };
    format!("{phrase} {id}")
}

/// `text` as an RFC 5322 quoted string: in quotes, with `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `text` as RFC 2047 encoded words (UTF-8, base64), each within the length
/// limit and holding whole characters, separated by spaces, which readers
/// drop between encoded words.
fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        let next = at + c.len_utf8();
        if next - start > MAX_ENCODED_WORD_BYTES {
            words.push(encoded_word(&text[start..end]));
            start = end;
        }
        end = next;
    }
    words.push(encoded_word(&text[start..end]));
    words.join(" ")
}

fn encoded_word(chunk: &str) -> String {
    format!(
        "{ENCODED_WORD_START}{}{ENCODED_WORD_END}",
        BASE64.encode(chunk)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::mime::decode_encoded_words;

    #[test]
    fn plain_names_are_quoted_with_their_quotes_and_backslashes_escaped() {
        assert_eq!(
            list_id(42, "Tuesday circle", "lists.circles.example.org"),
            "\"Tuesday circle\" <circle-42.lists.circles.example.org>"
        );
        assert_eq!(
            list_id(7, r#"The "A\B" team"#, "lists.x.example"),
            r#""The \"A\\B\" team" <circle-7.lists.x.example>"#
        );
    }

    #[test]
    fn other_names_become_encoded_words_that_read_back_whole() {
        for name in [
            "Zoë’s \"Dienstag\" Kreis",
            "火曜日のサークル".repeat(8).as_str(),
            "=?utf-8?q?looks_encoded?=",
            "🙂",
        ] {
            let value = list_id(3, name, "lists.x.example");
            assert!(value.is_ascii(), "{value}");
            let (phrase, id) = value.rsplit_once(' ').expect("a phrase and an id");
            assert_eq!(id, "<circle-3.lists.x.example>");
            assert_eq!(decode_encoded_words(phrase), name, "{value}");
            for word in phrase.split(' ') {
                assert!(word.len() <= MAX_ENCODED_WORD_LEN, "{word}");
                assert!(word.starts_with("=?utf-8?b?") && word.ends_with("?="));
            }
        }
    }

    #[test]
    fn line_breaks_and_control_characters_never_reach_the_header() {
        let value = list_id(1, "Evil\r\nBcc: eve@example.org\u{7}", "lists.x.example");
        assert_eq!(
            value,
            "\"EvilBcc: eve@example.org\" <circle-1.lists.x.example>"
        );
        assert_eq!(
            list_id(1, " \r\n ", "lists.x.example"),
            "<circle-1.lists.x.example>"
        );
    }

    #[test]
    fn the_namespace_is_under_the_public_host() {
        assert_eq!(
            list_namespace("https://Circles.Example.org:8443/base/"),
            "lists.circles.example.org"
        );
        assert_eq!(list_namespace("http://127.0.0.1:3000"), "lists.127.0.0.1");
        assert_eq!(
            list_namespace("https://bücher.example/"),
            "lists.xn--bcher-kva.example"
        );
        assert_eq!(
            list_namespace("http://[::1]:3000"),
            "lists.shoulder.invalid"
        );
        assert_eq!(list_namespace("not a url"), "lists.shoulder.invalid");
    }
}
