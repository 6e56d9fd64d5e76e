//! Reading back the messages we send: what the dev mailbox shows of a
//! stored email, and what a test reads of one, with mail-parser (the
//! library that also reads the mail that comes back, `crate::inbound`).
//!
//! Headers are looked up without regard to case and unfolded; encoded
//! words, quoted-printable and base64 bodies and charsets are decoded by
//! the library. Nothing here panics: a truncated, malformed or hostile
//! message gives whatever could be read from it, and anything unreadable
//! is simply absent. Line ends in what is returned are "\n".

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

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
    let head = headers(raw);
    let decoded = |name: &str| head.get(name).map(decode_encoded_words);
    let verbatim = |name: &str| head.get(name).map(str::to_owned);
    let message = MessageParser::default().parse(raw.as_bytes());
    ParsedEmail {
        from: decoded("From"),
        to: decoded("To"),
        subject: decoded("Subject"),
        date: verbatim("Date"),
        message_id: verbatim("Message-ID"),
        text: message.as_ref().and_then(|m| part_of(m, "text/plain")),
        html: message.as_ref().and_then(|m| part_of(m, "text/html")),
    }
}

/// The header block of a message, without its body.
pub fn headers(raw: &str) -> Headers {
    let Some(message) = MessageParser::default().parse_headers(raw.as_bytes()) else {
        return Headers::default();
    };
    // A field's name is a token: one with blanks in it is no field.
    let fields = message
        .headers_raw()
        .filter(|(name, _)| !name.contains(|c: char| c.is_whitespace() || c.is_control()))
        .map(|(name, value)| (name.to_string(), unfold(value)))
        .collect();
    Headers { fields }
}

/// The first part of type `mime_type` (for example `text/html`), with its
/// transfer encoding and charset decoded and "\n" line ends. Attachments
/// are passed over.
pub fn find_part(raw: &str, mime_type: &str) -> Option<String> {
    let message = MessageParser::default().parse(raw.as_bytes())?;
    part_of(&message, &mime_type.trim().to_ascii_lowercase())
}

/// The first body part (not an attachment) of `mime_type`, as text.
fn part_of(message: &Message<'_>, mime_type: &str) -> Option<String> {
    let html = mime_type == "text/html";
    let bodies = if html {
        &message.html_body
    } else {
        &message.text_body
    };
    bodies.iter().find_map(|&id| {
        let part = message.parts.get(id as usize)?;
        let type_is = part.content_type().map_or(!html, |t| {
            let subtype = t.subtype().unwrap_or_default();
            format!("{}/{}", t.ctype(), subtype).eq_ignore_ascii_case(mime_type)
        });
        match (&part.body, type_is) {
            (PartType::Text(text) | PartType::Html(text), true) => Some(text.replace("\r\n", "\n")),
            _ => None,
        }
    })
}

/// A header value with its line breaks unfolded (the blank that starts a
/// continuation stays, as RFC 5322 says) and trimmed.
fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_string()
}

/// The fields of a header block, in order, each unfolded and trimmed but
/// otherwise as written (not decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
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
/// in a header value, as mail-parser reads an unstructured field.
pub fn decode_encoded_words(value: &str) -> String {
    let field = format!("Subject: {}\r\n\r\n", value.replace(['\r', '\n'], " "));
    MessageParser::default()
        .parse_headers(field.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| value.to_string())
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
        assert_eq!(decode_encoded_words("=?utf-8?b?w6k=?="), "é");
        assert_eq!(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(decode_encoded_words("=?utf-8*fr?q?oui?="), "oui");
        assert_eq!(decode_encoded_words("=?utf-8?q?a=5Fb?="), "a_b");
    }

    #[test]
    fn plain_text_with_equals_and_question_marks_stays_as_written() {
        for text in ["=?", "a =? b", "2 =?= 3", "what? = yes"] {
            assert_eq!(decode_encoded_words(text), text);
        }
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
    fn deep_nesting_is_refused_without_a_stack_overflow() {
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
        // The library stops following nesting long before this.
        assert_eq!(parse(&nest(10_000)).text, None);
    }

    #[test]
    fn what_is_no_message_has_nothing_to_show() {
        assert_eq!(parse(""), ParsedEmail::default());
        let email = parse("no blank line, no colon");
        assert_eq!((email.subject, email.html), (None, None));
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
