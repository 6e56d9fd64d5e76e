//! A message that came in, read with mail-parser: who sent it, to which of
//! our addresses, what it answers, whether a program sent it, and its text.

use mail_parser::{Address, HeaderValue, MessageParser};

use super::report::{self, Report};

/// What the pipeline needs of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The Message-ID without angle brackets; absent in some messages.
    pub message_id: Option<String>,
    /// The From address.
    pub from: Option<String>,
    /// Every address it was sent to that a header names: To, Cc,
    /// Delivered-To, X-Original-To, Envelope-To.
    pub recipients: Vec<String>,
    /// The Message-IDs it answers: In-Reply-To, then References, newest
    /// first, without angle brackets.
    pub answers: Vec<String>,
    /// Why it looks sent by a program (an auto-reply, a list), if it does.
    pub automatic: Option<&'static str>,
    pub subject: String,
    /// The first text body, an HTML-only message's turned into text.
    pub text: String,
    /// A bounce or complaint, with the Message-IDs of the email it quotes.
    pub report: Option<(Report, Vec<String>)>,
}

/// Headers that carry the envelope recipient, as delivery agents add them.
const DELIVERED_TO: [&str; 3] = ["Delivered-To", "X-Original-To", "Envelope-To"];

/// Subjects of out-of-office replies, lower-cased, in the languages we read.
const AWAY_SUBJECTS: [&str; 14] = [
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "auto:",
    "abwesenheitsnotiz",
    "automatische antwort",
    "respuesta automática",
    "fuera de la oficina",
    "réponse automatique",
    "absence du bureau",
    "resposta automática",
    "automatisch antwoord",
];

/// Reads `raw`; `None` when it holds no message at all.
pub fn read(raw: &[u8]) -> Option<Incoming> {
    let message = MessageParser::default().parse(raw)?;
    if message.headers().is_empty() {
        return None;
    }
    let mut recipients: Vec<String> = Vec::new();
    for address in message.to().into_iter().chain(message.cc()) {
        recipients.extend(addresses(address));
    }
    for name in DELIVERED_TO {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                recipients.push(bare(text));
            }
        }
    }
    let mut answers = ids(message.in_reply_to());
    let mut references = ids(message.references());
    references.reverse();
    answers.extend(references);
    let subject = message.subject().unwrap_or_default().to_string();
    let automatic = automatic(&message, &subject);
    Some(Incoming {
        message_id: message.message_id().map(str::to_string),
        from: message
            .from()
            .and_then(Address::first)
            .and_then(|a| a.address())
            .map(str::to_string),
        recipients,
        answers,
        automatic,
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        report: report::read(&message),
        subject,
    })
}

fn addresses(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|a| a.address())
        .map(str::to_string)
        .collect()
}

/// An address header's text without its angle brackets or a display name.
fn bare(text: &str) -> String {
    let text = text.trim();
    match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => text[open + 1..close].trim().to_string(),
        _ => text.to_string(),
    }
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Why a message looks sent by a program rather than a person: the
/// headers RFC 3834 asks auto-responders to set and the ones lists and
/// older responders use, an empty return path (bounces), or an
/// out-of-office subject.
fn automatic(message: &mail_parser::Message<'_>, subject: &str) -> Option<&'static str> {
    let raw = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if raw("Auto-Submitted").is_some_and(|v| !v.is_empty() && !v.starts_with("no")) {
        return Some("Auto-Submitted");
    }
    if raw("X-Autoreply").is_some() || raw("X-Autorespond").is_some() {
        return Some("an auto-reply header");
    }
    if raw("Precedence")
        .is_some_and(|v| ["bulk", "junk", "list", "auto_reply"].contains(&v.as_str()))
    {
        return Some("Precedence");
    }
    if raw("Return-Path").is_some_and(|v| v.trim_matches(['<', '>', ' ']).is_empty()) {
        return Some("an empty return path");
    }
    let subject = subject.to_lowercase();
    if AWAY_SUBJECTS.iter().any(|s| subject.starts_with(s)) {
        return Some("an out-of-office subject");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn a_plain_reply_is_read_whole() {
        let raw = message(
            "From: Ada <Ada@Example.org>\r\nTo: reply+abc@circles.example.org\r\n\
             Delivered-To: reply+abc@circles.example.org\r\nSubject: Re: Night shift, round 2\r\n\
             Message-ID: <r1@mail.example.org>\r\nIn-Reply-To: <m2@shoulder>\r\n\
             References: <m1@shoulder> <m2@shoulder>",
            "1 done\r\n",
        );
        let read = read(&raw).expect("a message");
        assert_eq!(read.message_id.as_deref(), Some("r1@mail.example.org"));
        assert_eq!(read.from.as_deref(), Some("Ada@Example.org"));
        assert_eq!(
            read.recipients,
            [
                "reply+abc@circles.example.org",
                "reply+abc@circles.example.org"
            ]
        );
        assert_eq!(read.answers, ["m2@shoulder", "m2@shoulder", "m1@shoulder"]);
        assert_eq!(read.automatic, None);
        assert_eq!(read.text.trim(), "1 done");
    }

    #[test]
    fn an_html_only_reply_is_read_as_text() {
        let raw = message(
            "From: ada@example.org\r\nSubject: Re\r\nContent-Type: text/html; charset=utf-8",
            "<div>2 not yet<br>+ Call Sam</div><div class=\"gmail_quote\">On Mon wrote:</div>",
        );
        let text = read(&raw).expect("a message").text;
        assert!(
            text.contains("2 not yet") && text.contains("+ Call Sam"),
            "{text:?}"
        );
    }

    #[test]
    fn latin_1_and_quoted_printable_are_decoded() {
        let raw = message(
            "From: ada@example.org\r\nSubject: =?ISO-8859-1?Q?R=E9ponse?=\r\n\
             Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable",
            "Une semaine d=E9licate.\r\n",
        );
        let read = read(&raw).expect("a message");
        assert_eq!(read.subject, "Réponse");
        assert_eq!(read.text.trim(), "Une semaine délicate.");
    }

    #[test]
    fn programs_are_told_from_people() {
        for (header, why) in [
            ("Auto-Submitted: auto-replied", "Auto-Submitted"),
            ("X-Autoreply: yes", "an auto-reply header"),
            ("Precedence: bulk", "Precedence"),
            ("Return-Path: <>", "an empty return path"),
            (
                "Subject: Automatic reply: Night shift",
                "an out-of-office subject",
            ),
            ("Subject: Abwesenheitsnotiz", "an out-of-office subject"),
        ] {
            let raw = message(&format!("From: ada@example.org\r\n{header}"), "Away.");
            assert_eq!(
                read(&raw).expect("a message").automatic,
                Some(why),
                "{header}"
            );
        }
        let person = message("From: ada@example.org\r\nAuto-Submitted: no", "Here.");
        assert_eq!(read(&person).expect("a message").automatic, None);
    }

    #[test]
    fn what_is_no_message_is_none() {
        assert_eq!(read(b""), None);
        assert_eq!(read(b"\r\n\r\n"), None);
    }
}
