//! Secrets we email or set as cookies: sign-in links, invites, round links,
//! unsubscribe links, session ids.
//!
//! A token is 128 random bits, shown as 32 lowercase hex characters. Only its
//! SHA-256 is stored, so a copy of the database opens no door; and a token is
//! never logged (its `Debug` hides it).

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 16;
const TOKEN_HEX_LEN: usize = TOKEN_BYTES * 2;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// The stored form of a token: the hex SHA-256 of its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Token(hex::encode(bytes))
    }

    /// Accepts exactly what `generate` makes; anything else is no token at
    /// all, so a mangled link is told apart from an unknown one before any
    /// database lookup.
    pub fn parse(text: &str) -> Option<Token> {
        let ok = text.len() == TOKEN_HEX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Token(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
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
