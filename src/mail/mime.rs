//! Reading back the messages we send: just enough MIME to show a stored
//! email to a person (the dev mailbox) or to a test.
//!
//! It understands what lettre writes, and reads the rest leniently: headers
//! (unfolded, looked up without regard to case), RFC 2047 encoded words,
//! nested multiparts, and quoted-printable and base64 bodies in UTF-8 or
//! Latin-1. It never panics: a truncated, malformed or hostile message
//! gives whatever could be read from it, and anything unreadable is simply
//! absent. Line ends may be CRLF (as sent) or bare LF (as a text editor may
//! save them).

/// How deep multiparts may nest before we stop looking inside. Our own
/// messages nest one level; a hostile one must not cost unbounded work.
pub const MAX_MULTIPART_DEPTH: usize = 8;

/// What a person reading a message wants to see of it. Headers are `None`
/// when absent; bodies are `None` when the message has no such part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedEmail {
    /// From, with encoded words decoded.
    pub from: Option<String>,
    /// To, with encoded words decoded.
    pub to: Option<String>,
    /// Subject, with encoded words decoded.
    pub subject: Option<String>,
    /// Date, as written.
    pub date: Option<String>,
    /// Message-ID, as written (angle brackets included).
    pub message_id: Option<String>,
    /// The first text/plain part, decoded, with "\n" line ends.
    pub text: Option<String>,
    /// The first text/html part, decoded, with "\n" line ends.
    pub html: Option<String>,
}

/// Reads a whole message.
pub fn parse(raw: &str) -> ParsedEmail {
    let entity = Entity::read(raw);
    let decoded = |name: &str| entity.headers.get(name).map(decode_encoded_words);
    let verbatim = |name: &str| entity.headers.get(name).map(str::to_owned);
    ParsedEmail {
        from: decoded("From"),
        to: decoded("To"),
        subject: decoded("Subject"),
        date: verbatim("Date"),
        message_id: verbatim("Message-ID"),
        text: entity.find("text/plain", 0),
        html: entity.find("text/html", 0),
    }
}

/// The header block of a message, without its body.
pub fn headers(raw: &str) -> Headers {
    Headers::parse(split_head_body(raw).0)
}

/// The first part of type `mime_type` (for example `text/html`), searched
/// depth first, with its transfer encoding and charset decoded and "\n"
/// line ends. Attachments are passed over.
pub fn find_part(raw: &str, mime_type: &str) -> Option<String> {
    Entity::read(raw).find(&mime_type.trim().to_ascii_lowercase(), 0)
}

/// The fields of a header block, in order, each unfolded and trimmed but
/// otherwise as written (not decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// Reads a header block. A line that starts with a space or tab continues
    /// the field before it; a line that is neither a field nor a
    /// continuation is skipped, along with any continuation of it.
    pub fn parse(block: &str) -> Headers {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut continuing = false;
        for line in lines(block) {
            let text = line.text;
            if text.starts_with([' ', '\t']) {
                if continuing && let Some((_, value)) = fields.last_mut() {
                    // Unfolding removes only the line break; the blank that
                    // starts the next line stays, as RFC 5322 says.
                    value.push_str(text);
                }
                continue;
            }
            continuing = false;
            let Some((name, value)) = text.split_once(':') else {
                continue;
            };
            // Obsolete syntax allows blanks before the colon; none inside.
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                continue;
            }
            fields.push((name.to_owned(), value.to_owned()));
            continuing = true;
        }
        for (_, value) in &mut fields {
            let trimmed = value.trim();
            if trimmed.len() != value.len() {
                *value = trimmed.to_owned();
            }
        }
        Headers { fields }
    }

    /// The first field called `name`, compared without regard to case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every field, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Decodes the RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`)
/// in a header value. Blanks between two adjacent encoded words are dropped,
/// as the RFC says; anything that only looks like an encoded word is kept
/// as it was written.
pub fn decode_encoded_words(value: &str) -> String {
    // Bytes, so that a character lettre split across two words joins up.
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    let mut rest = value;
    let mut after_word = false;
    while let Some(at) = rest.find("=?") {
        let (before, from_marker) = (
            rest.get(..at).unwrap_or_default(),
            rest.get(at..).unwrap_or_default(),
        );
        match EncodedWord::read(from_marker) {
            Some(word) => {
                let only_blanks = before.chars().all(|c| c == ' ' || c == '\t');
                if !(after_word && only_blanks) {
                    out.extend_from_slice(before.as_bytes());
                }
                out.extend_from_slice(&word.utf8);
                rest = from_marker.get(word.len..).unwrap_or_default();
                after_word = true;
            }
            None => {
                // Keep the "=?" as text and look for a word after it.
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(b"=?");
                rest = from_marker.get(2..).unwrap_or_default();
                after_word = false;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// One encoded word, decoded to UTF-8 bytes (possibly an incomplete
/// character, which the next word completes), and how long it was.
struct EncodedWord {
    utf8: Vec<u8>,
    len: usize,
}

impl EncodedWord {
    /// The encoded word at the very start of `text`, if there is one.
    fn read(text: &str) -> Option<EncodedWord> {
        let inner = text.strip_prefix("=?")?;
        let (charset, inner) = inner.split_once('?')?;
        let (encoding, inner) = inner.split_once('?')?;
        let (payload, _) = inner.split_once("?=")?;
        let is_token = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace());
        if !is_token(charset) || payload.contains(|c: char| c.is_whitespace()) {
            return None;
        }
        let len = 2 + charset.len() + 1 + encoding.len() + 1 + payload.len() + 2;
        let bytes = match encoding {
            "B" | "b" => decode_base64(payload),
            "Q" | "q" => decode_quoted_printable(payload, true),
            _ => return None,
        };
        // RFC 2231 lets a language follow the charset: "utf-8*en".
        let charset = charset.split('*').next().unwrap_or_default();
        Some(EncodedWord {
            utf8: Charset::named(charset).to_utf8(bytes),
            len,
        })
    }
}

/// A message or one part of it: its headers and its undecoded body.
struct Entity<'a> {
    headers: Headers,
    body: &'a str,
}

impl<'a> Entity<'a> {
    fn read(raw: &'a str) -> Entity<'a> {
        let (head, body) = split_head_body(raw);
        Entity {
            headers: Headers::parse(head),
            body,
        }
    }

    /// Depth-first search for the first non-attachment part of type `wanted`.
    fn find(&self, wanted: &str, depth: usize) -> Option<String> {
        // RFC 2045: without a Content-Type, a part is US-ASCII plain text.
        let content_type =
            Parameters::parse(self.headers.get("Content-Type").unwrap_or("text/plain"));
        if content_type.value.starts_with("multipart/") {
            if depth >= MAX_MULTIPART_DEPTH {
                return None;
            }
            let boundary = content_type.get("boundary").filter(|b| !b.is_empty())?;
            return multipart_parts(self.body, boundary)
                .into_iter()
                .find_map(|part| Entity::read(part).find(wanted, depth + 1));
        }
        let attachment = self
            .headers
            .get("Content-Disposition")
            .is_some_and(|d| Parameters::parse(d).value == "attachment");
        if content_type.value != wanted || attachment {
            return None;
        }
        let charset = Charset::named(content_type.get("charset").unwrap_or("utf-8"));
        let encoding = self
            .headers
            .get("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let text = match encoding.as_str() {
            "base64" => charset.decode(decode_base64(self.body)),
            "quoted-printable" => charset.decode(decode_quoted_printable(self.body, false)),
            // 7bit, 8bit, binary, or unknown: the text as it came.
            _ => self.body.to_owned(),
        };
        Some(text.replace("\r\n", "\n"))
    }
}

/// A structured header value such as `multipart/alternative; boundary="b"`:
/// the value before the first `;`, lower-cased, and its parameters.
struct Parameters {
    value: String,
    params: Vec<(String, String)>,
}

impl Parameters {
    fn parse(header: &str) -> Parameters {
        let mut pieces = split_outside_quotes(header).into_iter();
        let value = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let params = pieces
            .filter_map(|piece| {
                let (name, value) = piece.split_once('=')?;
                Some((name.trim().to_ascii_lowercase(), unquote(value.trim())))
            })
            .collect();
        Parameters { value, params }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Splits at each `;` that is not inside a quoted string.
fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                pieces.push(text.get(start..at).unwrap_or_default());
                start = at + 1;
            }
            _ => {}
        }
    }
    pieces.push(text.get(start..).unwrap_or_default());
    pieces
}

/// A parameter value without its quotes and backslash escapes.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            other => out.push(other),
        }
    }
    out
}

/// The character sets we turn into text: UTF-8 (lettre's, and the default),
/// and Latin-1 for older mail. Anything else is read as UTF-8, with
/// replacement characters where that is wrong.
#[derive(Clone, Copy)]
enum Charset {
    Utf8,
    Latin1,
}

impl Charset {
    fn named(name: &str) -> Charset {
        match name.trim().to_ascii_lowercase().as_str() {
            "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => Charset::Latin1,
            _ => Charset::Utf8,
        }
    }

    fn decode(self, bytes: Vec<u8>) -> String {
        match self {
            Charset::Utf8 => String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Charset::Latin1 => bytes.into_iter().map(char::from).collect(),
        }
    }

    /// UTF-8 bytes, left undecoded so adjacent words can complete each other.
    fn to_utf8(self, bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Charset::Utf8 => bytes,
            Charset::Latin1 => self.decode(bytes).into_bytes(),
        }
    }
}

/// One line of a text and where it sits: `start` is its first byte, `next`
/// the first byte after its line break. `text` has no "\n" or "\r\n".
struct Line<'a> {
    text: &'a str,
    start: usize,
    next: usize,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |piece| {
        let start = offset;
        offset += piece.len();
        let without_lf = piece.strip_suffix('\n').unwrap_or(piece);
        Line {
            text: without_lf.strip_suffix('\r').unwrap_or(without_lf),
            start,
            next: offset,
        }
    })
}

/// Splits a message or part at its first empty line: (header block, body).
/// Without an empty line it is all headers.
fn split_head_body(raw: &str) -> (&str, &str) {
    for line in lines(raw) {
        if line.text.is_empty() {
            return (
                raw.get(..line.start).unwrap_or_default(),
                raw.get(line.next..).unwrap_or_default(),
            );
        }
    }
    (raw, "")
}

/// The parts of a multipart body, without preamble and epilogue. The line
/// break before a delimiter belongs to the delimiter, not to the part. A
/// body cut off before its closing delimiter keeps its last, partial part.
fn multipart_parts<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    for line in lines(body) {
        let Some(after) = line.text.strip_prefix(delimiter.as_str()) else {
            continue;
        };
        // Transport padding may follow a delimiter; anything else means
        // the line only starts like one.
        let after = after.trim_end_matches([' ', '\t']);
        let closing = after == "--";
        if !closing && !after.is_empty() {
            continue;
        }
        if let Some(start) = open.take() {
            let end = line_break_before(body, line.start).max(start);
            parts.push(body.get(start..end).unwrap_or_default());
        }
        if closing {
            return parts;
        }
        open = Some(line.next);
    }
    if let Some(start) = open {
        parts.push(body.get(start..).unwrap_or_default());
    }
    parts
}

/// Where the line break that ends just before `at` begins ("\r\n" or "\n").
fn line_break_before(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = at;
    if end > 0 && bytes.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > 0 && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

/// Base64, passing over line breaks and anything else outside the alphabet,
/// and stopping at the padding. Leftover bits that make no whole byte are
/// dropped.
fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut pending: u32 = 0;
    let mut pending_bits: u32 = 0;
    for byte in text.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        pending = (pending << 6) | u32::from(sextet);
        pending_bits += 6;
        if pending_bits >= 8 {
            pending_bits -= 8;
            out.extend((pending >> pending_bits).to_be_bytes().last());
            pending &= (1 << pending_bits) - 1;
        }
    }
    out
}

/// Quoted-printable: `=XX` is a byte and `=` before a line end (blanks
/// allowed between) is a soft line break. With `underscore_is_space`, the
/// Q encoding of headers, `_` stands for a space. An `=` that starts
/// neither is kept as it is.
fn decode_quoted_printable(text: &str, underscore_is_space: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        match byte {
            b'_' if underscore_is_space => out.push(b' '),
            b'=' => {
                let rest = bytes.get(at..).unwrap_or_default();
                let blanks = rest
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .count();
                let after = rest.get(blanks..).unwrap_or_default();
                if after.is_empty() {
                    at = bytes.len();
                } else if after.starts_with(b"\r\n") {
                    at += blanks + 2;
                } else if after.starts_with(b"\n") {
                    at += blanks + 1;
                } else if let [high, low, ..] = rest
                    && let (Some(high), Some(low)) = (hex_digit(*high), hex_digit(*low))
                {
                    out.push(high << 4 | low);
                    at += 2;
                } else {
                    out.push(b'=');
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use lettre::Message;
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};

    /// A message the way our mailer builds one, written by lettre itself.
    fn lettre_message(subject: &str, text: &str, html: &str) -> String {
        let message = Message::builder()
            .from("Shoulder <circles@example.org>".parse().expect("from"))
            .to("Zoë Ünal <zoe@example.org>".parse().expect("to"))
            .subject(subject)
            .message_id(Some("<delivery.7@circles.example.org>".into()))
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            ))
            .expect("a message");
        String::from_utf8(message.formatted()).expect("lettre writes ASCII")
    }

    #[test]
    fn reads_back_what_lettre_writes() {
        let text = "Héllo Zoë,\n\nYour link: https://circles.example.org/sign-in/abc\n";
        let html = "<p>Héllo Zoë, <a href=\"https://x.example/\">sign in</a></p>";
        let raw = lettre_message("Start a circle — ensemble", text, html);
        let email = parse(&raw);
        assert_eq!(email.subject.as_deref(), Some("Start a circle — ensemble"));
        assert_eq!(
            email.from.as_deref(),
            Some("Shoulder <circles@example.org>")
        );
        assert_eq!(email.to.as_deref(), Some("Zoë Ünal <zoe@example.org>"));
        assert_eq!(
            email.message_id.as_deref(),
            Some("<delivery.7@circles.example.org>")
        );
        assert!(email.date.is_some_and(|d| d.contains("+0000")));
        assert_eq!(email.text.as_deref(), Some(text));
        assert_eq!(email.html.as_deref(), Some(html));
    }

    #[test]
    fn long_subjects_folded_into_several_words_come_back_whole() {
        let subject = "Ça va? ".repeat(20) + "🙂 fin";
        let raw = lettre_message(&subject, "t", "<p>h</p>");
        assert!(raw.contains("\r\n "), "lettre folded the subject:\n{raw}");
        assert_eq!(parse(&raw).subject, Some(subject));
    }

    #[test]
    fn long_lines_and_plain_ascii_survive_the_body_encodings() {
        let long = "word ".repeat(60) + "= sign and tab\tend";
        let raw = lettre_message("Plain", &long, &format!("<p>{long}</p>"));
        let email = parse(&raw);
        assert_eq!(email.text, Some(long.clone()));
        assert_eq!(email.html, Some(format!("<p>{long}</p>")));
    }

    #[test]
    fn attachments_are_not_taken_for_the_body() {
        let message = Message::builder()
            .from("a@example.org".parse().expect("from"))
            .to("b@example.org".parse().expect("to"))
            .subject("With a file")
            .multipart(
                MultiPart::mixed()
                    .singlepart(
                        Attachment::new("notes.txt".into())
                            .body("attached words".to_string(), ContentType::TEXT_PLAIN),
                    )
                    .singlepart(SinglePart::plain("the real body".to_string())),
            )
            .expect("a message");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert_eq!(parse(&raw).text.as_deref(), Some("the real body"));
    }

    #[test]
    fn headers_are_unfolded_and_found_whatever_their_case() {
        let head = headers(
            "Subject: one\r\n two\r\n\tthree\r\nX-Thing:  spaced  \r\nx-thing: second\r\n\r\nbody",
        );
        assert_eq!(head.get("subject"), Some("one two\tthree"));
        assert_eq!(head.get("X-THING"), Some("spaced"), "the first one wins");
        assert_eq!(head.get("Missing"), None);
        assert_eq!(head.iter().count(), 3);
    }

    #[test]
    fn lines_that_are_not_fields_are_skipped_with_their_continuations() {
        let head = headers(" orphan continuation\nnot a field\n  its continuation\nTo: ada\n\n");
        assert_eq!(head.iter().collect::<Vec<_>>(), [("To", "ada")]);
        let head = headers("Bad Name: x\nGood: y\n\n");
        assert_eq!(head.iter().collect::<Vec<_>>(), [("Good", "y")]);
    }

    #[test]
    fn bare_line_feeds_are_read_like_crlf() {
        let raw = "Subject: hi\nContent-Type: text/plain\n\nline one\nline two\n";
        let email = parse(raw);
        assert_eq!(email.subject.as_deref(), Some("hi"));
        assert_eq!(email.text.as_deref(), Some("line one\nline two\n"));
    }

    #[test]
    fn encoded_words_are_decoded_and_joined() {
        assert_eq!(decode_encoded_words("=?utf-8?b?Wm/Dqw==?="), "Zoë");
        assert_eq!(
            decode_encoded_words("=?UTF-8?Q?Zo=C3=AB_et_moi?="),
            "Zoë et moi"
        );
        assert_eq!(
            decode_encoded_words("=?utf-8?q?a?=  \t =?utf-8?q?b?= c =?utf-8?q?d?="),
            "ab c d",
            "blanks between two words go; other text stays"
        );
        // One character split across two words, as a folder may do.
        assert_eq!(decode_encoded_words("=?utf-8?b?w6k=?="), "é");
        assert_eq!(decode_encoded_words("=?utf-8?q?=C3?= =?utf-8?q?=A9?="), "é");
        assert_eq!(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(decode_encoded_words("=?utf-8*fr?q?oui?="), "oui");
        assert_eq!(decode_encoded_words("=?utf-8?q?a=5Fb?="), "a_b");
    }

    #[test]
    fn things_that_only_look_like_encoded_words_stay_as_written() {
        for text in [
            "=?",
            "a =? b",
            "=?utf-8?x?abc?=",
            "=?utf-8?q?no end",
            "=??q?empty charset?=",
            "=?utf-8?q?has space?=",
            "2 =?= 3",
            "=?=?utf-8?q?",
        ] {
            assert_eq!(decode_encoded_words(text), text);
        }
        assert_eq!(decode_encoded_words("x =?utf-8?q?ok?="), "x ok");
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes() {
        let decode =
            |t: &str| String::from_utf8_lossy(&decode_quoted_printable(t, false)).into_owned();
        assert_eq!(decode("a=3Db"), "a=b");
        assert_eq!(decode("soft=\r\nbreak"), "softbreak");
        assert_eq!(decode("soft= \t\nbreak"), "softbreak");
        assert_eq!(decode("caf=C3=A9"), "café");
        assert_eq!(decode("lower=c3=a9"), "loweré");
        assert_eq!(decode("bad=ZZ and =4"), "bad=ZZ and =4");
        assert_eq!(decode("ends with="), "ends with");
        assert_eq!(decode("keep_under"), "keep_under");
    }

    #[test]
    fn base64_skips_line_breaks_and_stray_characters() {
        assert_eq!(decode_base64("aGVs\r\nbG8="), b"hello");
        assert_eq!(decode_base64("aG!V*s bG8"), b"hello");
        assert_eq!(decode_base64("aGVsbG8=garbage"), b"hello");
        assert_eq!(decode_base64("a"), b"", "six bits are no byte");
        assert_eq!(decode_base64("!!!!"), b"");
    }

    #[test]
    fn nested_multiparts_are_searched_depth_first() {
        let raw = "Content-Type: multipart/mixed; boundary=\"outer; odd\"\r\n\r\n\
                   preamble\r\n\
                   --outer; odd\r\n\
                   Content-Type: multipart/alternative; boundary=inner\r\n\r\n\
                   --inner\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\r\n\
                   first\r\n\
                   --inner\r\n\
                   Content-Type: text/html\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\n\
                   PHA+aGk8L3A+\r\n\
                   --inner--\r\n\
                   --outer; odd\r\n\
                   Content-Type: text/plain\r\n\r\n\
                   second\r\n\
                   --outer; odd--\r\n\
                   epilogue\r\n";
        let email = parse(raw);
        assert_eq!(email.text.as_deref(), Some("first"));
        assert_eq!(email.html.as_deref(), Some("<p>hi</p>"));
    }

    #[test]
    fn a_line_that_only_starts_like_the_boundary_is_body_text() {
        let raw = "Content-Type: multipart/alternative; boundary=b\n\n--b\n\n--bee\nstill\n--b  \n\nnext\n--b--\n";
        assert_eq!(parse(raw).text.as_deref(), Some("--bee\nstill"));
    }

    #[test]
    fn a_truncated_multipart_keeps_what_arrived() {
        let raw = "Content-Type: multipart/alternative; boundary=b\r\n\r\n\
                   --b\r\n\
                   Content-Type: text/plain\r\n\r\n\
                   cut off mid-";
        assert_eq!(parse(raw).text.as_deref(), Some("cut off mid-"));
        // Cut inside the part's headers: an empty plain-text part.
        let raw = "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Ty";
        assert_eq!(parse(raw).text.as_deref(), Some(""));
        assert_eq!(parse(raw).html, None);
    }

    #[test]
    fn a_multipart_without_a_usable_boundary_has_no_parts() {
        for content_type in [
            "multipart/alternative",
            "multipart/alternative; boundary=",
            "multipart/alternative; boundary=\"\"",
        ] {
            let raw =
                format!("Content-Type: {content_type}\n\n--\nContent-Type: text/plain\n\nx\n");
            assert_eq!(parse(&raw).text, None, "{content_type}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_not_followed() {
        let nest = |depth: usize| {
            let mut raw = String::new();
            for level in 0..depth {
                raw.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n"
                ));
            }
            raw.push_str("Content-Type: text/plain\n\ndeep\n");
            raw
        };
        assert_eq!(
            parse(&nest(MAX_MULTIPART_DEPTH)).text.as_deref(),
            Some("deep\n")
        );
        assert_eq!(parse(&nest(MAX_MULTIPART_DEPTH + 1)).text, None);
        // Very deep nesting is cheap to refuse, and overflows no stack.
        assert_eq!(parse(&nest(10_000)).text, None);
    }

    #[test]
    fn a_message_without_headers_is_plain_text() {
        assert_eq!(parse("\r\njust words").text.as_deref(), Some("just words"));
        let email = parse("no blank line, no colon");
        assert_eq!(email.text.as_deref(), Some(""));
        assert_eq!(email.subject, None);
        assert_eq!(
            parse(""),
            ParsedEmail {
                text: Some(String::new()),
                ..ParsedEmail::default()
            }
        );
    }

    #[test]
    fn latin1_bodies_are_decoded() {
        let raw = "Content-Type: text/plain; charset=\"ISO-8859-1\"\n\
                   Content-Transfer-Encoding: quoted-printable\n\ncaf=E9\n";
        assert_eq!(parse(raw).text.as_deref(), Some("café\n"));
    }

    #[test]
    fn nul_bytes_and_control_characters_are_just_text() {
        let raw = "Subject: a\0b\r\nContent-Type: text/plain\0\r\n\r\n\0\u{7}body\0";
        let email = parse(raw);
        assert_eq!(email.subject.as_deref(), Some("a\0b"));
        // "text/plain\0" is not text/plain.
        assert_eq!(email.text, None);
        let raw = "Subject: x\r\n\r\n\0\u{7}body\0";
        assert_eq!(parse(raw).text.as_deref(), Some("\0\u{7}body\0"));
    }

    #[test]
    fn every_truncation_of_a_real_message_parses() {
        let raw = lettre_message(
            "Zoë’s round — ça va?",
            "Texte accentué\nligne 2",
            "<p>é</p>",
        );
        for (at, _) in raw.char_indices() {
            let _ = parse(raw.get(..at).unwrap_or_default());
        }
    }

    #[test]
    fn hostile_fragments_in_any_order_never_panic() {
        const PIECES: &[&str] = &[
            "Content-Type: multipart/mixed; boundary=b\r\n",
            "Content-Type: text/plain; charset=latin1\n",
            "Content-Type: text/html; charset=\"\\\"\n",
            "Content-Transfer-Encoding: base64\r\n",
            "Content-Transfer-Encoding: quoted-printable\n",
            "Content-Disposition: attachment\n",
            "Subject: =?utf-8?b?",
            "=?utf-8?q?=C3?=",
            "?=",
            "--b\r\n",
            "--b--\n",
            "--",
            "\r\n",
            "\n",
            "\r",
            " ",
            "\t",
            "=",
            "=\r",
            "=F",
            "\0",
            "é",
            "🙂",
            ":",
            ";",
            "\"",
            "\\",
            "QUJD",
            "_",
        ];
        // A small linear congruential generator: the same sequence every run.
        let mut seed: u64 = 0x5eed;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap_or_default()
        };
        for _ in 0..3_000 {
            let len = next() % 40;
            let raw: String = (0..len).map(|_| PIECES[next() % PIECES.len()]).collect();
            let _ = parse(&raw);
            let _ = decode_encoded_words(&raw);
            let _ = find_part(&raw, "TEXT/HTML");
        }
    }
}
