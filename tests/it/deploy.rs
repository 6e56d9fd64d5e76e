//! The files in `deploy/` against this binary: the example configuration for
//! a public instance loads and validates when it gets its secrets the way
//! the systemd unit hands them over, as credential files named by `_FILE`
//! variables.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::process::{EXIT_DEADLINE, shoulder};

/// What each credential of the unit holds in the test, with a password that
/// must never be printed.
fn credential_value(name: &str) -> &'static str {
    match name {
        "database_url" => "postgres://shoulder:pg-s3cret@db.internal/shoulder",
        "smtp_url" => "smtp://circles:smtp-s3cret@mail.example.org:587?tls=required",
        "dkim_private_key" => "-----BEGIN PRIVATE KEY-----\ndkim-s3cret\n-----END PRIVATE KEY-----",
        other => panic!("the unit loads a credential {other:?} the test has no value for"),
    }
}

#[test]
fn the_public_example_loads_with_the_units_credentials() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/shoulder.service")).expect("the unit");
    let credentials = tempfile::tempdir().expect("temp dir");
    let credentials_dir = credentials.path().display().to_string();

    // The repository's root stands in for the unit's working directory,
    // which holds the release's config/ and templates/ folders.
    let mut command = shoulder(root);
    for line in unit.lines() {
        if let Some(credential) = line.strip_prefix("LoadCredential=") {
            let (name, _) = credential.split_once(':').expect("NAME:PATH");
            std::fs::write(
                credentials.path().join(name),
                format!("{}\n", credential_value(name)),
            )
            .expect("write credential");
        } else if let Some(setting) = line.strip_prefix("Environment=") {
            let (name, value) = setting.split_once('=').expect("NAME=value");
            // %d is systemd's name for the service's credentials folder.
            command.env(name, value.replace("%d", &credentials_dir));
        }
    }
    let exec_start = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let arguments: Vec<&str> = exec_start.split_whitespace().skip(1).collect();
    assert_eq!(
        arguments,
        ["--config", "/etc/shoulder/public.toml", "serve"],
        "the test gives the example file in place of its installed copy"
    );

    let mut child = command
        .arg("--config")
        .arg(root.join("deploy/public.toml"))
        .arg("check-config")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        assert!(
            started.elapsed() < EXIT_DEADLINE,
            "check-config did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    for expected in [
        "public_url = \"https://circles.example.org\"".to_string(),
        "bind = \"127.0.0.1:3000\"".to_string(),
        "transport = \"smtp\"".to_string(),
        format!("url = \"(read from {credentials_dir}/database_url)\""),
        format!("smtp_url = \"(read from {credentials_dir}/smtp_url)\""),
    ] {
        assert!(stdout.contains(&expected), "{expected} in: {stdout}");
    }
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
}
