//! The developer mailbox's pages: the list of what the `file` or `memory`
//! transport kept, newest first, and one message with its headers, its
//! text (web addresses made into links, so a sign-in link can be followed)
//! and its HTML. The HTML is never put into our page: it is shown in a
//! sandboxed frame of its own, and as escaped source.

use maud::{Markup, html};

use super::layout::page;
use crate::mail::mime::ParsedEmail;

/// One kept message as the list shows it.
pub struct KeptEmail<'a> {
    /// What `/dev/mail/{id}` takes: a file name or a memory index.
    pub id: &'a str,
    pub email: ParsedEmail,
}

/// How tall the frame showing an HTML email is, in CSS pixels; our
/// stylesheet is not this page's to change, and inline styles are refused
/// by our Content-Security-Policy, so the size is an attribute.
const HTML_FRAME_HEIGHT: &str = "520";

pub fn list(transport: &str, messages: &[KeptEmail<'_>]) -> Markup {
    page(
        "Mailbox",
        html! {
            h1 { "Mailbox" }
            p.muted {
                "This server does not send email: its " code { (transport) }
                " transport keeps each message instead, and they are shown here, newest first."
            }
            @if messages.is_empty() {
                p {
                    "Nothing has been sent yet. Ask for a "
                    a href="/sign-in" { "sign-in link" }
                    " and the email will appear here once the background jobs have run."
                }
            } @else {
                table.mailbox {
                    thead {
                        tr { th { "Date" } th { "To" } th { "Subject" } }
                    }
                    tbody {
                        @for kept in messages {
                            tr {
                                td { (or_none(kept.email.date.as_deref())) }
                                td { (or_none(kept.email.to.as_deref())) }
                                td { a href={ "/dev/mail/" (kept.id) } { (subject_of(&kept.email)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The Reply box under a round email: what the last reply came to, if
/// one was just sent.
#[derive(Debug, Clone, Copy)]
pub struct ReplyBox<'a> {
    pub id: &'a str,
    pub outcome: Option<&'a str>,
}

impl ReplyBox<'_> {
    fn said(&self) -> Option<&'static str> {
        Some(match self.outcome? {
            "recorded" => {
                "Your reply was recorded on your round page; the receipt will be in this mailbox in a moment."
            }
            "skipped" => {
                "Your reply skipped the round; the receipt will be in this mailbox in a moment."
            }
            "nothing" => "Your reply recorded nothing; the receipt, in a moment, says why.",
            "repeat" => "That reply was taken before.",
            "limited" => "Too many replies about this round today; this one was not read.",
            "unknown" => "Nothing of ours matches this email any more, so the reply went nowhere.",
            _ => "Your reply was not taken.",
        })
    }
}

pub fn message(email: &ParsedEmail, reply: Option<ReplyBox<'_>>) -> Markup {
    let subject = subject_of(email);
    page(
        &subject,
        html! {
            p { a href="/dev/mail" { "← All messages" } }
            h1.subject { (subject) }
            dl.headers {
                dt { "From" } dd { (or_none(email.from.as_deref())) }
                dt { "To" } dd { (or_none(email.to.as_deref())) }
                dt { "Subject" } dd { (or_none(email.subject.as_deref())) }
                dt { "Date" } dd { (or_none(email.date.as_deref())) }
                dt { "Message-ID" } dd { (or_none(email.message_id.as_deref())) }
            }
            h2 { "Text version" }
            @match &email.text {
                Some(text) => pre.text-version { (linked_text(text)) },
                None => p.muted { "This message has no text version." },
            }
            h2 { "HTML version" }
            @match &email.html {
                Some(body) => {
                    p.muted {
                        "Shown in a sandboxed frame: nothing in it runs or reaches this page, "
                        "and this server's security policy holds back the email's own styles, "
                        "so it looks plainer than in a mail client. "
                        "To follow a link, use the text version above."
                    }
                    iframe sandbox srcdoc=(body) title="The HTML version of this email"
                        width="100%" height=(HTML_FRAME_HEIGHT) {}
                    details {
                        summary { "HTML source" }
                        // Lines as the email has them, in a box that scrolls
                        // sideways on its own; focusable, so that a keyboard
                        // can scroll it too.
                        pre.source tabindex="0" role="region" aria-label="HTML source" { (body) }
                    }
                }
                None => p.muted { "This message has no HTML version." },
            }
            @if let Some(reply) = reply {
                section #reply aria-labelledby="reply-heading" {
                    h2 #reply-heading { "Reply" }
                    @if let Some(said) = reply.said() {
                        p.notice role="status" { (said) }
                    }
                    p.muted {
                        "Write as the recipient would in their mail client. The reply is sent from them, "
                        "with this email quoted below it, through the same way in as real replies."
                    }
                    form method="post" action={ "/dev/mail/" (reply.id) "/reply" } {
                        label for="reply-words" { "Your reply" }
                        textarea #reply-words name="reply" rows="6" {}
                        p { button type="submit" { "Send the reply" } }
                    }
                }
            }
        },
    )
}

fn subject_of(email: &ParsedEmail) -> String {
    match email.subject.as_deref().map(str::trim) {
        Some(subject) if !subject.is_empty() => subject.to_string(),
        _ => "(no subject)".to_string(),
    }
}

fn or_none(value: Option<&str>) -> &str {
    value.unwrap_or("(none)")
}

/// Text with every `http://` and `https://` address made into a link. maud
/// escapes both the text and the `href`; only those two schemes are linked,
/// so a `javascript:` address stays text.
fn linked_text(text: &str) -> Markup {
    html! {
        @for piece in split_links(text) {
            @match piece {
                Piece::Text(text) => (text),
                Piece::Link(address) => a href=(address) { (address) },
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// Cuts `text` into plain stretches and web addresses, in order.
fn split_links(text: &str) -> Vec<Piece<'_>> {
    // ASCII lower-casing keeps every byte where it was.
    let lower = text.to_ascii_lowercase();
    let mut pieces = Vec::new();
    let mut plain_from = 0;
    let mut search_from = 0;
    while let Some((start, scheme_len)) = next_scheme(&lower, search_from) {
        let tail = text.get(start..).unwrap_or_default();
        let end = tail
            .find(|c: char| {
                c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`')
            })
            .unwrap_or(tail.len());
        // Punctuation after an address usually ends the sentence instead.
        let address = tail
            .get(..end)
            .unwrap_or_default()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
        if address.len() <= scheme_len || url::Url::parse(address).is_err() {
            search_from = start + scheme_len;
            continue;
        }
        if let Some(before) = text.get(plain_from..start).filter(|t| !t.is_empty()) {
            pieces.push(Piece::Text(before));
        }
        pieces.push(Piece::Link(address));
        plain_from = start + address.len();
        search_from = plain_from;
    }
    if let Some(rest) = text.get(plain_from..).filter(|t| !t.is_empty()) {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// The next `http://` or `https://` at or after `from`, and its length.
fn next_scheme(lower: &str, from: usize) -> Option<(usize, usize)> {
    let rest = lower.get(from..)?;
    ["http://", "https://"]
        .into_iter()
        .filter_map(|scheme| rest.find(scheme).map(|at| (from + at, scheme.len())))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_addresses_become_links_and_the_rest_stays_text() {
        let text = "Sign in: https://circles.example.org/sign-in/AbC_12-x.\nOr (http://x.example/a?b=1&c=2) now";
        assert_eq!(
            split_links(text),
            [
                Piece::Text("Sign in: "),
                Piece::Link("https://circles.example.org/sign-in/AbC_12-x"),
                Piece::Text(".\nOr ("),
                Piece::Link("http://x.example/a?b=1&c=2"),
                Piece::Text(") now"),
            ]
        );
    }

    #[test]
    fn only_real_web_addresses_are_linked() {
        for text in [
            "javascript:alert(1)",
            "https:// nothing",
            "http://",
            "data:text/html,<b>x</b>",
            "ftp://files.example.org/x",
            "http://[::1",
        ] {
            assert_eq!(split_links(text), [Piece::Text(text)], "{text}");
        }
        assert_eq!(split_links(""), []);
        assert_eq!(
            split_links("HTTPS://Example.org/Path é"),
            [Piece::Link("HTTPS://Example.org/Path"), Piece::Text(" é")]
        );
    }

    #[test]
    fn a_quote_or_angle_bracket_ends_an_address_and_everything_is_escaped() {
        let html = linked_text("<b>https://x.example/\"onmouseover=\"alert(1)</b>").into_string();
        assert_eq!(
            html,
            "&lt;b&gt;<a href=\"https://x.example/\">https://x.example/</a>\
             &quot;onmouseover=&quot;alert(1)&lt;/b&gt;"
        );
    }

    #[test]
    fn message_content_never_becomes_our_markup() {
        let email = ParsedEmail {
            subject: Some("<script>alert(1)</script>".into()),
            from: Some("Eve <eve@example.org>".into()),
            text: Some("<img src=x onerror=alert(2)>".into()),
            html: Some("<script>alert(3)</script><p title=\"x\">hi &amp; bye</p>".into()),
            ..ParsedEmail::default()
        };
        let page = message(&email, None).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("Eve &lt;eve@example.org&gt;"), "{page}");
        assert!(
            page.contains(
                "srcdoc=\"&lt;script&gt;alert(3)&lt;/script&gt;&lt;p title=&quot;x&quot;&gt;hi &amp;amp; bye&lt;/p&gt;\""
            ),
            "{page}"
        );
        assert!(page.contains("<iframe sandbox srcdoc="), "{page}");
    }

    #[test]
    fn missing_parts_are_said_plainly() {
        let page = message(&ParsedEmail::default(), None).into_string();
        assert!(page.contains("(no subject)"));
        assert!(page.contains("This message has no text version."));
        assert!(page.contains("This message has no HTML version."));
        assert!(!page.contains("<iframe"));
        let empty = list("file", &[]).into_string();
        assert!(empty.contains("Nothing has been sent yet."));
    }
}
