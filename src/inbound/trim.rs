//! The member's own words in a reply: what they wrote above the email they
//! answered, without the quoted original, the mail client's line that
//! introduces it, their signature, or "Sent from my phone".
//!
//! Clients mark the original in different ways: `>` before each line (most
//! of them, for plain text); an attribution line such as "On Mon, 1 Mar
//! 2027 at 09:00, Shoulder <…> wrote:" (Gmail, Apple Mail, Thunderbird and
//! the phones, in each client's language, sometimes wrapped over two or
//! three lines); a separator such as "-----Original Message-----"; or, in
//! Outlook, a block of headers ("From: … Sent: … To: … Subject: …") with the
//! original unmarked below it. We read from the top and stop at the first of
//! these, and leave out any `>` line above it.

/// Words that begin an attribution line, per language.
const ATTRIBUTION_STARTS: [&str; 6] = ["On ", "El ", "Le ", "Am ", "Em ", "Op "];

/// The verbs of attribution lines: English, Spanish, French, German,
/// Portuguese, Dutch.
const ATTRIBUTION_VERBS: [&str; 7] = [
    "wrote",
    "escribió",
    "a écrit",
    "schrieb",
    "escreveu",
    "schreef",
    "skrev",
];

/// Separators clients put above a quoted original, compared without their
/// dashes and case.
const SEPARATORS: [&str; 8] = [
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
    "mensagem original",
    "oorspronkelijk bericht",
    "forwarded message",
    "begin forwarded message:",
];

/// The first line of an Outlook header block, per language.
const FROM_FIELDS: [&str; 4] = ["from:", "de:", "von:", "van:"];

/// The line that follows it within a few lines: when it was sent.
const SENT_FIELDS: [&str; 9] = [
    "sent:",
    "date:",
    "enviado:",
    "envoyé :",
    "envoyé:",
    "gesendet:",
    "verzonden:",
    "datum:",
    "fecha:",
];

/// Lines phones and apps add below what was written.
const SENT_FROM: [&str; 8] = [
    "sent from my ",
    "sent from ",
    "get outlook for ",
    "enviado desde mi ",
    "envoyé de mon ",
    "von meinem ",
    "enviado do meu ",
    "verzonden vanaf mijn ",
];

/// Our own line above the instructions in every email a reply can answer.
pub const REPLY_ABOVE: &str = "Reply above this line";

/// The member's own words in `text` (a reply's body as text).
pub fn own_words(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if starts_the_original(&lines[index..]) || is_signature(trimmed) {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    kept.join("\n").trim().to_string()
}

/// Whether the first of `lines` begins what the member answered, or the
/// client's introduction of it.
fn starts_the_original(lines: &[&str]) -> bool {
    let line = lines[0].trim();
    if line.contains(REPLY_ABOVE) {
        return true;
    }
    let lower = line.to_lowercase();
    let bare = lower.trim_matches(|c: char| c == '-' || c == '_' || c.is_whitespace());
    if line.starts_with("--") && SEPARATORS.contains(&bare) {
        return true;
    }
    if SEPARATORS.last().is_some_and(|s| lower == *s) {
        return true;
    }
    // Outlook on the web draws a line of underscores above its header block.
    if line.len() >= 20 && line.chars().all(|c| c == '_') {
        return true;
    }
    if FROM_FIELDS.iter().any(|f| lower.starts_with(f))
        && lines.iter().skip(1).take(3).any(|next| {
            SENT_FIELDS
                .iter()
                .any(|f| next.trim().to_lowercase().starts_with(f))
        })
    {
        return true;
    }
    is_attribution(lines)
}

/// "On … wrote:" and its kin, possibly wrapped over up to three lines.
fn is_attribution(lines: &[&str]) -> bool {
    let first = lines[0].trim_start();
    if !ATTRIBUTION_STARTS.iter().any(|s| first.starts_with(s)) {
        return false;
    }
    let mut joined = String::new();
    for line in lines.iter().take(3) {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line.trim());
        let lower = joined.to_lowercase();
        if lower.ends_with(':') && ATTRIBUTION_VERBS.iter().any(|v| lower.contains(v)) {
            return true;
        }
        if line.trim().is_empty() {
            break;
        }
    }
    false
}

/// A signature's separator (`-- `, often with its space lost) or a "Sent
/// from my phone" line: nothing below is the member's reply.
fn is_signature(line: &str) -> bool {
    if line == "--" || line == "—" {
        return true;
    }
    let lower = line.to_lowercase();
    SENT_FROM.iter().any(|s| lower.starts_with(s)) && line.len() < 80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_original_and_its_attribution_are_cut() {
        let reply = "1 done\n+ Call Sam\n\nOn Mon, 1 Mar 2027 at 09:00, Shoulder <shoulder@example.org>\nwrote:\n\n> Round 2 of Night shift is open.\n> 1 Ask Sam";
        assert_eq!(own_words(reply), "1 done\n+ Call Sam");
    }

    #[test]
    fn attributions_in_six_languages_are_cut() {
        for attribution in [
            "On 1 Mar 2027, at 09:00, Shoulder <s@example.org> wrote:",
            "El lun, 1 mar 2027 a las 9:00, Shoulder (<s@example.org>) escribió:",
            "Le lun. 1 mars 2027 à 09:00, Shoulder <s@example.org> a écrit :",
            "Am Mo., 1. März 2027 um 09:00 Uhr schrieb Shoulder <s@example.org>:",
            "Em seg., 1 de mar. de 2027 às 09:00, Shoulder <s@example.org> escreveu:",
            "Op ma 1 mrt. 2027 om 09:00 schreef Shoulder <s@example.org>:",
        ] {
            let reply = format!("Mine.\n\n{attribution}\nThe original, unmarked.");
            assert_eq!(own_words(&reply), "Mine.", "{attribution}");
        }
    }

    #[test]
    fn outlook_header_blocks_and_separators_are_cut() {
        let desktop = "2 partly\r\n\r\n-----Original Message-----\r\nFrom: Shoulder\r\nSent: Monday\r\n1 Ask Sam";
        assert_eq!(own_words(desktop), "2 partly");
        let web = "Skip\n\n________________________________\nFrom: Shoulder <s@example.org>\nSent: Monday, 1 March 2027 09:00\nTo: Ada\nSubject: Night shift, round 2";
        assert_eq!(own_words(web), "Skip");
        let german = "Fertig.\n\nVon: Shoulder <s@example.org>\nGesendet: Montag, 1. März 2027 09:00\nAn: Ada";
        assert_eq!(own_words(german), "Fertig.");
        let separator = "Done.\n-----Ursprüngliche Nachricht-----\nOld";
        assert_eq!(own_words(separator), "Done.");
    }

    #[test]
    fn signatures_and_sent_from_lines_are_cut() {
        assert_eq!(
            own_words("1 done\n-- \nAda Lovelace\nEngines Ltd"),
            "1 done"
        );
        assert_eq!(own_words("1 done\n\nSent from my iPhone"), "1 done");
        assert_eq!(own_words("Hecho\n\nEnviado desde mi Android"), "Hecho");
    }

    #[test]
    fn lines_of_the_member_s_own_that_look_alike_are_kept() {
        // A sentence that starts like an attribution but is not one, and a
        // "from:" with no date below it.
        let reply =
            "On Tuesday I called the office.\nFrom: now on I will ask first.\nSam wrote back.";
        assert_eq!(own_words(reply), reply);
    }

    #[test]
    fn quoted_lines_between_the_member_s_own_are_left_out() {
        let reply = "> 1 Ask Sam\n1 done\n> 2 Credit Lee\n2 not yet";
        assert_eq!(own_words(reply), "1 done\n2 not yet");
    }

    #[test]
    fn our_own_marker_ends_the_reply_even_unquoted() {
        let reply = "+ Rest more\n\nReply above this line. For example:\n1 done: called on Tuesday";
        assert_eq!(own_words(reply), "+ Rest more");
    }
}
