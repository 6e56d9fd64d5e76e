//! Reports that come back about mail we sent: delivery status
//! notifications (RFC 3464, "this address does not exist") and complaints
//! (RFC 5965 feedback reports, "this is spam").
//!
//! Both are `multipart/report`. A notification says, per recipient, an
//! Action and a Status; only `failed` with a permanent 5.x.x status counts,
//! as a delay (4.x.x) changes nothing. Both quote the email they are about,
//! whole or its headers, and we find it by the Message-ID quoted there.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// What a report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Delivery failed for good: the first permanent status given.
    Failed { status: String },
    /// A delay, or a notification of success: nothing to do.
    NotFailed,
    /// The recipient marked the email as unwanted.
    Complaint,
}

/// The report in a message, with the Message-IDs (without angle
/// brackets) of the email it quotes; `None` for any other message.
pub fn read(message: &Message<'_>) -> Option<(Report, Vec<String>)> {
    let content_type = message.content_type()?;
    let is_report = content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    if !is_report {
        return None;
    }
    let kind = content_type
        .attribute("report-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let report = match kind.as_str() {
        "delivery-status" => delivery_status(message),
        "feedback-report" => Report::Complaint,
        _ => return None,
    };
    Some((report, quoted_ids(message)))
}

/// The first permanent failure among the notification's recipients.
fn delivery_status(message: &Message<'_>) -> Report {
    let fields = message
        .parts
        .iter()
        .filter(|part| {
            part.content_type().is_some_and(|t| {
                t.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
            })
        })
        .filter_map(|part| part.text_contents().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    // Per-recipient blocks are separated by blank lines; each has its own
    // Action and Status.
    for block in fields.replace("\r\n", "\n").split("\n\n") {
        let field = |name: &str| {
            block.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let failed = field("Action").is_some_and(|a| a.eq_ignore_ascii_case("failed"));
        let status = field("Status").unwrap_or_default();
        if failed && status.starts_with('5') {
            return Report::Failed { status };
        }
    }
    Report::NotFailed
}

/// The Message-IDs of the email a report quotes: a `message/rfc822` part
/// (parsed for us), or a `text/rfc822-headers` one (parsed here).
fn quoted_ids(message: &Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for part in &message.parts {
        match &part.body {
            PartType::Message(quoted) => ids.extend(quoted.message_id().map(str::to_string)),
            _ if part.content_type().is_some_and(|t| {
                t.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
            }) =>
            {
                let headers = format!("{}\r\n\r\n", part.text_contents().unwrap_or_default());
                if let Some(quoted) = MessageParser::default().parse(headers.as_bytes()) {
                    ids.extend(quoted.message_id().map(str::to_string));
                }
            }
            _ => {}
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: &str, status_part: &str, quoted: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: bounce+d-1@circles.example.org\r\n\
             Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type={kind}; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nIt did not arrive.\r\n\
             --b\r\n{status_part}\r\n\
             --b\r\n{quoted}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    const ORIGINAL: &str = "Content-Type: message/rfc822\r\n\r\nFrom: shoulder@localhost\r\n\
        To: ada@example.org\r\nMessage-ID: <d-1@localhost>\r\nSubject: Round 2\r\n\r\nHello\r\n";

    #[test]
    fn a_permanent_failure_is_read_with_the_email_it_quotes() {
        let status = "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
            Final-Recipient: rfc822; ada@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n";
        let raw = report("delivery-status", status, ORIGINAL);
        let message = MessageParser::default().parse(&raw).expect("a message");
        assert_eq!(
            read(&message),
            Some((
                Report::Failed {
                    status: "5.1.1".into()
                },
                vec!["d-1@localhost".into()]
            ))
        );
    }

    #[test]
    fn a_delay_is_not_a_failure() {
        let status = "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
            Final-Recipient: rfc822; ada@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n";
        let headers = "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <d-1@localhost>\r\nSubject: x\r\n";
        let raw = report("delivery-status", status, headers);
        let message = MessageParser::default().parse(&raw).expect("a message");
        assert_eq!(
            read(&message),
            Some((Report::NotFailed, vec!["d-1@localhost".into()]))
        );
    }

    #[test]
    fn a_feedback_report_is_a_complaint() {
        let feedback =
            "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n";
        let raw = report("feedback-report", feedback, ORIGINAL);
        let message = MessageParser::default().parse(&raw).expect("a message");
        assert_eq!(
            read(&message),
            Some((Report::Complaint, vec!["d-1@localhost".into()]))
        );
    }

    #[test]
    fn other_mail_is_no_report() {
        let message = MessageParser::default()
            .parse(b"From: ada@example.org\r\nSubject: Hi\r\n\r\nHello")
            .expect("a message");
        assert_eq!(read(&message), None);
    }
}
