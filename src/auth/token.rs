//! Secrets we email or set as cookies: sign-in links, invites, round links,
//! unsubscribe links, session ids.
//!
//! A token is 128 random bits, shown as 32 lowercase hex characters. Only its
//! SHA-256 is stored, so a copy of the database opens no door; and a token is
//! never logged (its `Debug` hides it).
//!
//! Tokens minted by the thousand, the links in round emails, are *ordered*:
//! 16 hex characters of the time they were made, then the 128 random bits.
//! Their stored form is that time prefix followed by the SHA-256 of the
//! whole token. A unique index on purely random hashes takes each insert on
//! a random page, so a round opening for thousands of circles rewrote most
//! of the index in every transaction; with the prefix, new entries land
//! together at the end. The prefix is no secret (it says when the email was
//! written); the random part and the hash are as for any token.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 16;
const TOKEN_HEX_LEN: usize = TOKEN_BYTES * 2;
/// The time prefix of an ordered token: microseconds since 1970, 8 bytes.
const PREFIX_HEX_LEN: usize = 16;
const ORDERED_HEX_LEN: usize = PREFIX_HEX_LEN + TOKEN_HEX_LEN;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// The stored form of a token: the hex SHA-256 of its text, after an
/// ordered token's time prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl Token {
    /// The length of an ordered token's text.
    pub const ORDERED_LEN: usize = ORDERED_HEX_LEN;

    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Token(hex::encode(bytes))
    }

    /// A token whose stored form sorts by when it was made; see the module
    /// comment.
    pub fn generate_ordered() -> Token {
        let random = Token::generate();
        Token(format!("{:016x}{}", ordering_micros(), random.0))
    }

    /// Accepts exactly what `generate` makes; anything else is no token at
    /// all, so a mangled link is told apart from an unknown one before any
    /// database lookup.
    pub fn parse(text: &str) -> Option<Token> {
        let ok = (text.len() == TOKEN_HEX_LEN || text.len() == ORDERED_HEX_LEN)
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Token(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        let digest = hex::encode(Sha256::digest(self.0.as_bytes()));
        if self.0.len() == ORDERED_HEX_LEN {
            TokenHash(format!("{}{digest}", &self.0[..PREFIX_HEX_LEN]))
        } else {
            TokenHash(digest)
        }
    }
}

/// Microseconds since 1970 by the system's clock, to put keys in the order
/// they were made. Not an instant the product reasons about, so not the
/// replaceable clock: a fixed test clock would only make every key share
/// one prefix.
#[expect(
    clippy::disallowed_methods,
    reason = "orders keys by when they were made; no behaviour depends on it"
)]
pub(crate) fn ordering_micros() -> i64 {
    chrono::Utc::now().timestamp_micros().max(0)
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_128_bits_of_hex_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.as_str()), Some(a.clone()));
    }

    #[test]
    fn the_hash_is_stable_and_not_the_token() {
        let token = Token::parse("00112233445566778899aabbccddeeff").expect("valid");
        assert_eq!(token.hash(), token.clone().hash());
        assert_eq!(token.hash().as_str().len(), 64);
        assert!(!token.hash().as_str().contains(token.as_str()));
    }

    #[test]
    fn ordered_tokens_carry_128_random_bits_and_store_in_the_order_made() {
        let before = ordering_micros();
        let first = Token::generate_ordered();
        let after = ordering_micros();
        assert_eq!(first.as_str().len(), 48);
        assert_eq!(Token::parse(first.as_str()), Some(first.clone()));
        let made = i64::from_str_radix(&first.hash().as_str()[..16], 16).expect("hex");
        assert!(before <= made && made <= after);
        let later = Token(format!("{:016x}{}", made + 1, &first.as_str()[16..]));
        assert!(first.hash().as_str() < later.hash().as_str());
        let stored = first.hash();
        assert_eq!(stored.as_str().len(), 16 + 64);
        assert!(stored.as_str().starts_with(&first.as_str()[..16]));
        assert!(!stored.as_str().contains(&first.as_str()[16..]));
        assert_ne!(
            Token::generate_ordered().as_str()[16..],
            Token::generate_ordered().as_str()[16..]
        );
    }

    #[test]
    fn anything_else_is_not_a_token() {
        for text in [
            "",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff0",
            "00112233445566778899AABBCCDDEEFF",
            "00112233445566778899aabbccddeefg",
            "../../../../etc/passwd0000000000",
        ] {
            assert_eq!(Token::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = Token::generate();
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}
