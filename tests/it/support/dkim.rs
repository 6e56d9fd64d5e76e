//! DKIM keys made by the openssl command for a test, and signatures checked
//! by an independent verifier: dkimpy (Python), through
//! `dkim_verify.py` beside this file, fed the key's TXT record instead of
//! asking DNS. `pip install dkimpy pynacl` brings it (`.ci/run` does); where
//! it is missing the tests that need it are skipped loudly, unless
//! `SHOULDER_REQUIRE_DKIM_VERIFIER=1`.

#![allow(dead_code, reason = "each test uses only part of this module")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::announce_skip;

/// The kinds of key file Shoulder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `BEGIN PRIVATE KEY`, RSA inside.
    RsaPkcs8,
    /// `BEGIN RSA PRIVATE KEY`.
    RsaPkcs1,
    /// `BEGIN PRIVATE KEY`, Ed25519 inside.
    Ed25519,
}

/// A private key file and the TXT record that publishes its public half.
#[derive(Clone, Debug)]
pub struct TestKey {
    pub path: PathBuf,
    pub record: String,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Generates a key of `format` in `dir`, `bits` long for RSA.
pub fn generate(dir: &Path, name: &str, format: KeyFormat, bits: u32) -> TestKey {
    let path = dir.join(format!("{name}.pem"));
    let file = path.to_str().expect("a UTF-8 path");
    match format {
        KeyFormat::RsaPkcs8 | KeyFormat::RsaPkcs1 => {
            let bits = format!("rsa_keygen_bits:{bits}");
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &bits,
                "-out",
                file,
            ]);
            if format == KeyFormat::RsaPkcs1 {
                openssl(&["rsa", "-in", file, "-traditional", "-out", file]);
            }
        }
        KeyFormat::Ed25519 => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", file]);
        }
    }
    let public = openssl(&["pkey", "-in", file, "-pubout", "-outform", "DER"]);
    let record = match format {
        // RSA publishes the whole SubjectPublicKeyInfo (RFC 6376, 3.6.1).
        KeyFormat::RsaPkcs8 | KeyFormat::RsaPkcs1 => {
            format!("v=DKIM1; k=rsa; p={}", BASE64.encode(&public))
        }
        // Ed25519 publishes the bare 32-byte key (RFC 8463, 4.2), the end
        // of the DER.
        KeyFormat::Ed25519 => {
            let raw = &public[public.len() - 32..];
            format!("v=DKIM1; k=ed25519; p={}", BASE64.encode(raw))
        }
    };
    TestKey { path, record }
}

/// Whether dkimpy can be run; announces the skip when it cannot, and fails
/// the test instead when it is required.
pub fn verifier_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import dkim, nacl"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    let hint = "install it with `pip install dkimpy pynacl`";
    if std::env::var("SHOULDER_REQUIRE_DKIM_VERIFIER").as_deref() == Ok("1") {
        panic!("SHOULDER_REQUIRE_DKIM_VERIFIER=1 but python3 cannot import dkimpy: {hint}");
    }
    announce_skip(
        "DKIM verification",
        "python3 with dkimpy and pynacl was not found",
        &format!("{hint}, or set SHOULDER_REQUIRE_DKIM_VERIFIER=1 to make this a failure"),
    );
    false
}

/// dkimpy's verdict on `message` with `key` published at
/// `<selector>._domainkey.<domain>`: `Err` holds its reasons.
pub fn verify(message: &[u8], key: &TestKey, selector: &str, domain: &str) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/dkim_verify.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(format!("{selector}._domainkey.{domain}"))
        .arg(&key.record)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("the message is written to the verifier");
    let output = child.wait_with_output().expect("the verifier ends");
    match output.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        _ => panic!(
            "the verifier could not run: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
