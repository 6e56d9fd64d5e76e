//! The reply a mail client would write to one of our emails, for the dev
//! mailbox's Reply box: from the recipient, to the Reply-To (else the From),
//! answering the email's Message-ID, with the member's words above the
//! quoted original. It goes through the same pipeline as a real reply.

use chrono::NaiveDateTime;
use mail_parser::{Address, MessageParser};

use crate::auth::Token;

/// Whether `raw` can be replied to: it has a Message-ID and someone it was
/// sent to.
pub fn can_reply(raw: &str) -> bool {
    MessageParser::default()
        .parse(raw.as_bytes())
        .is_some_and(|m| m.message_id().is_some() && first(m.to()).is_some())
}

/// The reply to `raw` with `words` above the quote, sent at `now`; `None`
/// when the original cannot be answered (see [`can_reply`]).
pub fn reply(raw: &str, words: &str, now: NaiveDateTime) -> Option<Vec<u8>> {
    let original = MessageParser::default().parse(raw.as_bytes())?;
    let id = original.message_id()?;
    let member = first(original.to())?;
    let to = first(original.reply_to()).or_else(|| first(original.from()))?;
    let subject = original.subject().unwrap_or_default();
    let quoted: String = original
        .body_text(0)
        .unwrap_or_default()
        .lines()
        .map(|line| format!("> {line}\r\n"))
        .collect();
    let words = words.replace("\r\n", "\n").replace('\n', "\r\n");
    let message = format!(
        "From: {member}\r\nTo: {to}\r\nSubject: Re: {subject}\r\nDate: {date}\r\n\
         Message-ID: <{key}@dev-mailbox.invalid>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         {words}\r\n\r\nOn {when}, {to} wrote:\r\n{quoted}",
        date = now.and_utc().to_rfc2822(),
        when = now.format("%a, %-d %b %Y at %H:%M"),
        key = Token::generate().as_str(),
        subject = subject.replace(['\r', '\n'], " "),
    );
    Some(message.into_bytes())
}

fn first(address: Option<&Address<'_>>) -> Option<String> {
    address?.first()?.address().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{message, trim};

    const ORIGINAL: &str = "From: Shoulder <shoulder@localhost>\r\nTo: Ada <ada@example.org>\r\n\
        Reply-To: reply+abc@circles.example.org\r\nSubject: Night shift, round 2\r\n\
        Message-ID: <d-1@localhost>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
        Reply above this line to check in by email.\r\nHello Ada,\r\n";

    #[test]
    fn the_reply_reads_back_as_a_mail_client_s_would() {
        let at = chrono::NaiveDate::from_ymd_opt(2027, 3, 8)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("a time");
        let raw = reply(ORIGINAL, "1 done\n+ Call Sam", at).expect("a reply");
        let read = message::read(&raw).expect("a message");
        assert_eq!(read.from.as_deref(), Some("ada@example.org"));
        assert_eq!(read.recipients, ["reply+abc@circles.example.org"]);
        assert_eq!(read.answers, ["d-1@localhost", "d-1@localhost"]);
        assert_eq!(read.subject, "Re: Night shift, round 2");
        assert_eq!(trim::own_words(&read.text), "1 done\n+ Call Sam");
        assert!(read.text.contains("> Hello Ada,"), "{}", read.text);
    }

    #[test]
    fn an_email_without_an_id_cannot_be_answered() {
        let bare = ORIGINAL.replace("Message-ID: <d-1@localhost>\r\n", "");
        assert!(can_reply(ORIGINAL) && !can_reply(&bare));
    }
}
