//! Email addresses as we accept them from people: one mailbox, no display
//! name, nothing that could smuggle a header or a second recipient.

use std::fmt;

/// RFC 5321 limits: 254 characters in all, 64 before the `@`.
pub const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid address, stored lowercase so one person is one row.
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
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, EmailAddressError> {
        // Checked as stored: lowercasing can change characters (`İ` becomes
        // `i` and a combining dot), and what is stored must parse again.
        let lowered = raw.trim().to_lowercase();
        let trimmed = lowered.as_str();
        if trimmed.is_empty() {
            return Err(EmailAddressError::Empty);
        }
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
        if local.len() > MAX_LOCAL_LEN
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(EmailAddressError::Shape);
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !labels_ok {
            return Err(EmailAddressError::Domain);
        }
        Ok(EmailAddress(lowered))
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
            ("renée@exämple.de", "renée@exämple.de"),
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
            // Lowercase, `İ` is `i` and a combining dot, which no domain
            // label may hold; the address is judged as it would be stored.
            ("ada@İstanbul.example", EmailAddressError::Domain),
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
    fn masked_form_hides_the_local_part() {
        let address = EmailAddress::parse("ada@example.org").expect("valid");
        assert_eq!(address.masked(), "a***@example.org");
        assert!(!format!("{address:?}").contains("ada@"));
    }
}
