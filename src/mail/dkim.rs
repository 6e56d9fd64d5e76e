//! DKIM signatures (RFC 6376) on everything we send, for operators whose
//! relay does not sign: with `mail.dkim_domain`, `mail.dkim_selector` and
//! `mail.dkim_private_key_file` set, the mailer signs each message once, as
//! it builds it, whatever the transport, so the file and memory transports
//! keep the message exactly as an SMTP server would get it.
//!
//! lettre's `dkim` feature does the signing; this module reads the key and
//! chooses what is signed. Keys are PEM files as openssl writes them: RSA in
//! PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`), signing
//! rsa-sha256, and Ed25519 in PKCS#8, signing ed25519-sha256 (RFC 8463).
//! lettre takes RSA keys only as PKCS#1 and Ed25519 keys only as their raw
//! 32 bytes, so both are converted here, once, at start. The key is read
//! when the mailer is built and never written anywhere, logs included.
//!
//! Canonicalization is relaxed for headers and body, so a relay that
//! refolds a header or trims trailing blanks does not break the signature.
//! The signed headers are [`SIGNED_HEADERS`]. Large providers honour
//! one-click unsubscribe only when both `List-Unsubscribe` headers are
//! signed. Every signature names them, and `List-Id`, also on mail that has
//! none: a signed header that is absent counts as empty (RFC 6376, 5.4), so
//! nobody can add one to a sign-in email on its way without breaking the
//! signature.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

use crate::config::MailConfig;

/// What every signature covers. Content-Type is not among them: lettre
/// writes it with the body, where its signer cannot see it; the body hash
/// covers the parts and their boundaries anyway.
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Auto-Submitted",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Verifiers must refuse smaller RSA keys (RFC 8301, 3.2); 2048 bits is
/// what to generate.
pub const MIN_RSA_BITS: usize = 1024;

/// Longest DNS name (RFC 1035, 2.3.4) and label.
const MAX_DNS_NAME_LEN: usize = 253;
const MAX_DNS_LABEL_LEN: usize = 63;

/// Why a key file cannot sign. None of these carries any of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "holds no PEM private key (expected -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
    )]
    NotPem,
    #[error(
        "the key is encrypted; Shoulder reads unencrypted keys only (openssl pkey -in KEY -out PLAIN.pem), so keep the file readable by Shoulder alone"
    )]
    Encrypted,
    #[error("holds a {0:?} PEM block, not an RSA or Ed25519 private key")]
    OtherBlock(String),
    #[error("holds a PKCS#8 private key that is neither RSA nor Ed25519, or is damaged")]
    OtherAlgorithm,
    #[error("the RSA key has {bits} bits; DKIM needs at least {MIN_RSA_BITS} (generate 2048)")]
    RsaTooSmall { bits: usize },
    #[error("the key cannot be read: {0}")]
    Malformed(String),
}

/// The key's algorithm, as logs and `a=` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    Ed25519,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "rsa-sha256 ({bits} bits)"),
            KeyKind::Ed25519 => f.write_str("ed25519-sha256"),
        }
    }
}

/// Signs messages for one domain and selector with one key.
pub struct DkimSigner {
    config: DkimConfig,
    kind: KeyKind,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// The signer `mail.dkim_*` ask for, its key file read and parsed; `None`
    /// when they are empty. Config validation has made sure the three are
    /// set together and that the names are DNS names. Errors name the key.
    pub fn from_config(mail: &MailConfig) -> Result<Option<DkimSigner>, String> {
        let path = mail.dkim_private_key_file.as_str();
        if path.is_empty() {
            return Ok(None);
        }
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("mail.dkim_private_key_file: cannot read {path}: {e}"))?;
        let (key, kind) =
            parse_key(&pem).map_err(|e| format!("mail.dkim_private_key_file: {path}: {e}"))?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect();
        let relaxed = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        let config = DkimConfig::new(
            mail.dkim_selector.clone(),
            mail.dkim_domain.clone(),
            key,
            headers,
            relaxed,
        );
        Ok(Some(DkimSigner { config, kind }))
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Adds the `DKIM-Signature` header. The message must not change after.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// Reads a PEM private key into what lettre signs with.
pub fn parse_key(pem: &str) -> Result<(DkimSigningKey, KeyKind), KeyError> {
    let malformed = |e: &dyn std::fmt::Display| KeyError::Malformed(e.to_string());
    match pem_label(pem).ok_or(KeyError::NotPem)? {
        "RSA PRIVATE KEY" => {
            rsa_signing_key(RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| malformed(&e))?)
        }
        "PRIVATE KEY" => {
            if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
                return rsa_signing_key(key);
            }
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                .map_err(|_| KeyError::OtherAlgorithm)?;
            // lettre takes the 32 secret bytes in base64.
            let raw = BASE64.encode(key.to_bytes());
            let key = DkimSigningKey::new(&raw, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| malformed(&e))?;
            Ok((key, KeyKind::Ed25519))
        }
        "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
        other => Err(KeyError::OtherBlock(other.to_string())),
    }
}

fn rsa_signing_key(key: RsaPrivateKey) -> Result<(DkimSigningKey, KeyKind), KeyError> {
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall { bits });
    }
    let pkcs1 = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    Ok((key, KeyKind::Rsa { bits }))
}

/// The label of the first PEM block: `PRIVATE KEY` for
/// `-----BEGIN PRIVATE KEY-----`.
fn pem_label(pem: &str) -> Option<&str> {
    pem.lines().find_map(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
    })
}

/// Whether `name` can be a DKIM domain or selector: ASCII DNS labels of
/// letters, digits and inner hyphens (RFC 6376, 3.1 and 3.5).
pub fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if !name.is_ascii() {
        return Err("must be ASCII; write an international name in its xn-- form".into());
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(format!("is longer than {MAX_DNS_NAME_LEN} characters"));
    }
    for label in name.split('.') {
        let well_formed = !label.is_empty()
            && label.len() <= MAX_DNS_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !well_formed {
            return Err(format!(
                "{name:?} is not a DNS name (labels of letters, digits and inner hyphens, joined by dots)"
            ));
        }
    }
    Ok(())
}

/// The domain of `mail.from`'s address, for the DMARC alignment warning.
pub fn aligns_with_from(dkim_domain: &str, from_address: &str) -> bool {
    let Some((_, from_domain)) = from_address.rsplit_once('@') else {
        return false;
    };
    let (from_domain, dkim_domain) = (
        from_domain.to_ascii_lowercase(),
        dkim_domain.to_ascii_lowercase(),
    );
    from_domain == dkim_domain || from_domain.ends_with(&format!(".{dkim_domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_usable_key_says_why() {
        let cases = [
            ("", KeyError::NotPem),
            ("ssh-ed25519 AAAAC3Nz ada@example.org", KeyError::NotPem),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
                KeyError::Encrypted,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
                KeyError::OtherBlock("PUBLIC KEY".into()),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
                KeyError::OtherAlgorithm,
            ),
        ];
        for (pem, expected) in cases {
            assert_eq!(parse_key(pem).err(), Some(expected), "{pem}");
        }
        let damaged =
            "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(
            parse_key(damaged).err(),
            Some(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn dkim_names_are_dns_names() {
        for good in ["example.org", "mail.example.org", "s2027", "x-1.example"] {
            assert_eq!(check_dns_name(good), Ok(()), "{good}");
        }
        let long_label = "a".repeat(MAX_DNS_LABEL_LEN + 1);
        let long_name = format!("{}org", "abc.".repeat(MAX_DNS_NAME_LEN / 4));
        for bad in [
            "",
            "exämple.org",
            "example..org",
            ".example.org",
            "-x.example",
            "x-.example",
            "under_score",
            "sp ace",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_dns_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alignment_is_the_same_domain_or_one_below_it() {
        assert!(aligns_with_from("example.org", "circles@example.org"));
        assert!(aligns_with_from("Example.org", "circles@mail.EXAMPLE.org"));
        assert!(!aligns_with_from("example.org", "circles@badexample.org"));
        assert!(!aligns_with_from("mail.example.org", "circles@example.org"));
    }
}
