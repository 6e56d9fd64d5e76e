//! Email addresses as we accept them from people: one mailbox, no display
//! name, nothing that could smuggle a header or a second recipient, and one
//! stored form per mailbox, so that one person is one row however the
//! address was typed.
//!
//! The domain is put in its ASCII form by IDNA (UTS 46): `exämple.de`,
//! `EXÄMPLE.DE`, full-width `ｅｘａｍｐｌｅ.de` and `xn--exmple-cua.de` all
//! become `xn--exmple-cua.de`, which is what is stored, compared and written
//! into `RCPT TO`. The part before the `@` is lower-cased and put in Unicode
//! NFC (RFC 6532 asks senders for NFC); compatibility forms there, such as
//! full-width letters, are refused rather than folded (see [`EmailAddress::parse`]).

use std::fmt;

use icu_normalizer::ComposingNormalizerBorrowed;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// RFC 5321 limits: 254 characters in all, 64 before the `@`.
pub const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid address in its stored form: the part before the
/// `@` lower-cased in NFC, the domain in lower-case ASCII.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    #[error("an email address is needed")]
    Empty,
    #[error("an email address is at most {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("an email address has one @ with something on both sides, like name@example.org")]
    Shape,
    #[error(
        "an email address cannot contain spaces, quotes, commas, angle brackets or control characters"
    )]
    Character,
    #[error("the part after @ must be a domain name, like example.org")]
    Domain,
    #[error(
        "the part before @ has full-width or other look-alike characters; type it in ordinary letters, like ada@example.org"
    )]
    LocalForm,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, EmailAddressError> {
        let lowered = raw.trim().to_lowercase();
        let trimmed = lowered.as_str();
        if trimmed.is_empty() {
            return Err(EmailAddressError::Empty);
        }
        // Checked on what was typed too, so that no more than this reaches
        // the normalisers; the stored form is checked again below.
        if trimmed.chars().count() > MAX_EMAIL_LEN {
            return Err(EmailAddressError::TooLong);
        }
        if trimmed.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(
                    c,
                    '"' | ',' | '<' | '>' | '(' | ')' | ';' | ':' | '\\' | '[' | ']'
                )
        }) {
            return Err(EmailAddressError::Character);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailAddressError::Shape)?;
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return Err(EmailAddressError::Shape);
        }
        let local = normalise_local(local)?;
        if local.len() > MAX_LOCAL_LEN
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(EmailAddressError::Shape);
        }
        let domain = domain_to_ascii(domain)?;
        let stored = format!("{local}@{domain}");
        if stored.chars().count() > MAX_EMAIL_LEN {
            return Err(EmailAddressError::TooLong);
        }
        Ok(EmailAddress(stored))
    }

    /// The address with its domain in Unicode (`x@exämple.de` for
    /// `x@xn--exmple-cua.de`), or `None` when that is the stored form
    /// already. Before domains were normalised, this is how such an
    /// address was stored: lookups of a person by address also try it.
    pub fn unicode_spelling(&self) -> Option<String> {
        let (local, domain) = self.0.rsplit_once('@')?;
        let (unicode, checked) = Uts46::new().to_unicode(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
        );
        (checked.is_ok() && unicode != domain).then(|| format!("{local}@{unicode}"))
    }

    /// Every form a person with this address may be stored under: the
    /// stored form, then the one written before domains were normalised.
    pub fn stored_spellings(&self) -> Vec<String> {
        let mut spellings = vec![self.0.clone()];
        spellings.extend(self.unicode_spelling());
        spellings
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `a***@example.org`, for logs: enough to tell deliveries apart, not
    /// enough to harvest addresses from a log file.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

/// The part before the `@` in NFC. Compatibility forms (full-width
/// `ａｄａ`, ligatures like `ﬁ`, circled or superscript letters) are refused
/// rather than folded by NFKC: how the part before the `@` is read belongs
/// to the receiving server alone (RFC 5321), so folding `ａｄａ` into `ada`
/// could send someone's mail to a different mailbox, and two people's rows
/// could become one. A refusal costs a person one retyping, with a message
/// that says what to change.
fn normalise_local(local: &str) -> Result<String, EmailAddressError> {
    if local.is_ascii() {
        return Ok(local.to_string());
    }
    let nfc = ComposingNormalizerBorrowed::new_nfc().normalize(local);
    if !ComposingNormalizerBorrowed::new_nfkc().is_normalized(&nfc) {
        return Err(EmailAddressError::LocalForm);
    }
    Ok(nfc.into_owned())
}

/// The domain's ASCII form by UTS 46, with the rules of host names (STD3:
/// letters, digits and hyphens only; no label starting or ending with a
/// hyphen; DNS lengths). Whatever does not map is refused.
fn domain_to_ascii(domain: &str) -> Result<String, EmailAddressError> {
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| EmailAddressError::Domain)?;
    // UTS 46 already promises this; the stored form relies on it, so it is
    // stated here rather than assumed.
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(EmailAddressError::Domain);
    }
    Ok(ascii.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_them() {
        for (raw, stored) in [
            ("ada@example.org", "ada@example.org"),
            (
                "  Ada.Lovelace+circle@Example.ORG ",
                "ada.lovelace+circle@example.org",
            ),
            ("shoulder@localhost", "shoulder@localhost"),
            ("renée@exämple.de", "renée@xn--exmple-cua.de"),
        ] {
            assert_eq!(
                EmailAddress::parse(raw).map(|a| a.to_string()),
                Ok(stored.into())
            );
        }
    }

    #[test]
    fn rejects_what_is_not_one_mailbox() {
        let cases = [
            ("", EmailAddressError::Empty),
            ("   ", EmailAddressError::Empty),
            ("ada", EmailAddressError::Shape),
            ("@example.org", EmailAddressError::Shape),
            ("ada@", EmailAddressError::Shape),
            ("a@b@example.org", EmailAddressError::Shape),
            (".ada@example.org", EmailAddressError::Shape),
            ("a..da@example.org", EmailAddressError::Shape),
            ("ada lovelace@example.org", EmailAddressError::Character),
            (
                "ada@example.org\r\nBcc: x@y.z",
                EmailAddressError::Character,
            ),
            (
                "ada@example.org,bob@example.org",
                EmailAddressError::Character,
            ),
            ("Ada <ada@example.org>", EmailAddressError::Character),
            ("ada\0@example.org", EmailAddressError::Character),
            ("ada@-example.org", EmailAddressError::Domain),
            ("ada@example..org", EmailAddressError::Domain),
            ("ada@exa_mple.org", EmailAddressError::Domain),
        ];
        for (raw, expected) in cases {
            assert_eq!(EmailAddress::parse(raw), Err(expected), "{raw:?}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailAddressError::TooLong));
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(
            EmailAddress::parse(&long_local),
            Err(EmailAddressError::Shape)
        );
    }

    #[test]
    fn both_forms_of_an_international_domain_are_one_address() {
        let unicode = EmailAddress::parse("x@exämple.de").expect("valid");
        let ascii = EmailAddress::parse("x@xn--exmple-cua.de").expect("valid");
        assert_eq!(unicode, ascii);
        assert_eq!(unicode.as_str(), "x@xn--exmple-cua.de");
        assert_eq!(
            EmailAddress::parse("X@EXÄMPLE.DE").map(|a| a.to_string()),
            Ok("x@xn--exmple-cua.de".into())
        );
        // What is stored parses again to itself.
        assert_eq!(EmailAddress::parse(unicode.as_str()), Ok(unicode));
    }

    #[test]
    fn full_width_letters_are_folded_in_the_domain_only() {
        // UTS 46 maps full-width letters and the ideographic full stop of a
        // domain to ASCII, as a browser would.
        for raw in [
            "ada@ｅｘａｍｐｌｅ.org",
            "ada@ＥＸＡＭＰＬＥ．ｏｒｇ",
            "ada@example。org",
        ] {
            assert_eq!(
                EmailAddress::parse(raw).map(|a| a.to_string()),
                Ok("ada@example.org".into()),
                "{raw:?}"
            );
        }
        for raw in [
            "ａｄａ@example.org",
            "ＡＤＡ@example.org",
            "a\u{fb01}@example.org",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailAddressError::LocalForm),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn the_part_before_the_at_is_kept_in_one_unicode_form() {
        // `é` typed as one character or as `e` and a combining accent.
        let composed = EmailAddress::parse("ren\u{e9}e@example.org").expect("valid");
        let decomposed = EmailAddress::parse("rene\u{301}e@example.org").expect("valid");
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_str(), "ren\u{e9}e@example.org");
    }

    #[test]
    fn domains_that_do_not_normalise_are_refused() {
        for raw in [
            // A Punycode label that does not decode.
            "ada@xn--a.example",
            // A combining mark cannot begin a label.
            "ada@\u{301}example.org",
            // The replacement character marks text that was already lost.
            "ada@exam\u{fffd}ple.org",
            // Right-to-left and left-to-right letters in one label.
            "ada@a\u{5d0}.example",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailAddressError::Domain),
                "{raw:?}"
            );
        }
        let long_label = format!("ada@{}.org", "a".repeat(64));
        assert_eq!(
            EmailAddress::parse(&long_label),
            Err(EmailAddressError::Domain)
        );
        // Punycode makes the stored form longer than what was typed; the
        // limit holds for what is stored.
        let grows = format!("{}@{}.de", "a".repeat(64), "ä".repeat(60));
        assert!(grows.chars().count() <= MAX_EMAIL_LEN);
        assert!(EmailAddress::parse(&grows).is_err());
    }

    #[test]
    fn the_unicode_spelling_of_an_ascii_domain_is_known() {
        let address = EmailAddress::parse("x@exämple.de").expect("valid");
        assert_eq!(address.unicode_spelling().as_deref(), Some("x@exämple.de"));
        let plain = EmailAddress::parse("x@example.de").expect("valid");
        assert_eq!(plain.unicode_spelling(), None);
    }

    #[test]
    fn masked_form_hides_the_local_part() {
        let address = EmailAddress::parse("ada@example.org").expect("valid");
        assert_eq!(address.masked(), "a***@example.org");
        assert!(!format!("{address:?}").contains("ada@"));
    }
}
