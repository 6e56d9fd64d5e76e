//! The real `shoulder` binary: configuration, start-up failures, serving on
//! both backends, migrations and the test email.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::dkim::{self, KeyFormat};
use crate::support::process::{EXIT_DEADLINE, Running, shoulder};
use crate::support::{PgDatabase, SmtpMode, TestSmtp};

/// Runs to completion, failing the test if the command does not stop.
fn finish(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("waitable").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > EXIT_DEADLINE {
            let _ = child.kill();
            panic!("shoulder did not exit within {EXIT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A start-up failure: exit code 2, one line naming the problem, no panic.
fn assert_refuses_to_start(output: &Output, expected: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("shoulder:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
}

#[test]
fn check_config_shows_the_effective_config_with_secrets_hidden() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = shoulder(dir.path());
    command
        .arg("check-config")
        .env("SHOULDER_SERVER__BIND", "0.0.0.0:8080")
        .env(
            "SHOULDER_MAIL__SMTP_URL",
            "smtp://app:hunter2@mail.example.org:587?tls=required",
        )
        .env("SHOULDER_DATABASE__POOL_SIZE", "12");
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("bind = \"0.0.0.0:8080\""), "{stdout}");
    assert!(stdout.contains("pool_size = 12"), "{stdout}");
    assert!(
        stdout.contains("smtp://app:***@mail.example.org:587"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"));
}

/// Email kept on a server that listens beyond loopback in production is
/// email nobody reads: `check-config` says so, and `serve` hides `/dev/mail`.
#[test]
fn check_config_flags_kept_mail_on_a_public_production_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |bind: &str, environment: &str| {
        let mut command = shoulder(dir.path());
        command
            .arg("check-config")
            .env("SHOULDER_ENV", environment)
            .env("SHOULDER_SERVER__BIND", bind)
            .env("SHOULDER_MAIL__TRANSPORT", "file");
        let output = finish(command);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stderr)
    };
    let public = check("0.0.0.0:3000", "production");
    assert!(
        public.contains("warning: mail.transport = \"file\"")
            && public.contains("/dev/mail is not served"),
        "{public}"
    );
    let development = check("0.0.0.0:3000", "development");
    assert!(
        development.contains("to anyone who reaches 0.0.0.0:3000"),
        "{development}"
    );
    assert!(!check("127.0.0.1:3000", "production").contains("warning"));
}

/// As systemd's `LoadCredential=` hands a secret over: a file of its own,
/// named by a `_FILE` variable.
#[test]
fn check_config_takes_a_secret_from_a_file_and_never_prints_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("smtp_url");
    std::fs::write(
        &secret,
        "smtp://app:hunter2@mail.example.org:587?tls=required\n",
    )
    .expect("write secret");
    // Production refuses to start without an SMTP server, so passing shows
    // the value from the file took effect.
    let mut command = shoulder(Path::new(env!("CARGO_MANIFEST_DIR")));
    command
        .arg("check-config")
        .env("SHOULDER_ENV", "production")
        .env("SHOULDER_MAIL__SMTP_URL_FILE", &secret)
        .env(
            "SHOULDER_DATABASE__URL",
            "postgres://db.example.org/shoulder?user=app&password=s3cret",
        );
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains(&format!("smtp_url = \"(read from {})\"", secret.display())),
        "{stdout}"
    );
    for secret in ["hunter2", "mail.example.org", "s3cret"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }

    let mut command = shoulder(dir.path());
    command
        .arg("check-config")
        .env("SHOULDER_MAIL__SMTP_URL_FILE", dir.path().join("missing"));
    let output = finish(command);
    assert_refuses_to_start(&output, "mail.smtp_url_file: cannot read");
    assert!(text(&output.stderr).contains(&dir.path().join("missing").display().to_string()));
}

#[test]
fn a_config_file_given_on_the_command_line_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("site.toml");
    std::fs::write(
        &file,
        "[circles]\ndefault_time_zone = \"America/Toronto\"\n",
    )
    .expect("write");
    let mut command = shoulder(dir.path());
    command.arg("--config").arg(&file).arg("check-config");
    let output = finish(command);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("default_time_zone = \"America/Toronto\""));
}

#[test]
fn bad_configuration_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (key, value, expected) in [
        ("SHOULDER_DATABASE__POOL_SIZE", "0", "database.pool_size"),
        (
            "SHOULDER_SERVER__BINDD",
            "0.0.0.0:1",
            "server.bindd: unknown key",
        ),
        ("SHOULDER_MAIL__FROM", "nobody", "mail.from"),
        (
            "SHOULDER_CIRCLES__DEFAULT_TIME_ZONE",
            "Europe/Atlantis",
            "circles.default_time_zone",
        ),
        (
            "SHOULDER_SERVER__PUBLIC_URL",
            "circles.example.org",
            "server.public_url",
        ),
    ] {
        let mut command = shoulder(dir.path());
        command.arg("check-config").env(key, value);
        assert_refuses_to_start(&finish(command), expected);
    }
}

#[test]
fn production_without_an_smtp_server_is_refused() {
    let mut command = shoulder(Path::new(env!("CARGO_MANIFEST_DIR")));
    command
        .arg("check-config")
        .env("SHOULDER_ENV", "production");
    assert_refuses_to_start(&finish(command), "mail.smtp_url");
}

#[test]
fn serve_refuses_to_start_on_bad_surroundings() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a-file"), "").expect("write");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let free_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        probe.local_addr().expect("addr").port()
    };
    let cases: [(&str, String, &str); 6] = [
        (
            "SHOULDER_DATABASE__URL",
            "missing/shoulder.db".into(),
            "the folder missing does not exist",
        ),
        (
            "SHOULDER_DATABASE__URL",
            "a-file/shoulder.db".into(),
            "is not a folder",
        ),
        (
            "SHOULDER_DATABASE__URL",
            "mysql://db/shoulder".into(),
            "database.url",
        ),
        (
            "SHOULDER_DATABASE__URL",
            format!("postgres://postgres@127.0.0.1:{free_port}/shoulder"),
            "cannot open database postgres://postgres@127.0.0.1",
        ),
        (
            "SHOULDER_MAIL__SMTP_URL",
            "smtp://mail:25?tls=maybe".into(),
            "mail.smtp_url",
        ),
        (
            "SHOULDER_SERVER__BIND",
            taken_addr.clone(),
            "already in use",
        ),
    ];
    for (key, value, expected) in cases {
        let mut command = shoulder(dir.path());
        command
            .arg("serve")
            .env("SHOULDER_SERVER__BIND", "127.0.0.1:0")
            .env("SHOULDER_DATABASE__URL", "db.sqlite")
            .env(key, &value);
        assert_refuses_to_start(&finish(command), expected);
    }
    drop(taken);
}

/// `command` with DKIM signing for example.org with the key at `key_file`.
fn with_dkim_key(mut command: Command, key_file: &Path) -> Command {
    command
        .env("SHOULDER_MAIL__FROM", "Shoulder <circles@example.org>")
        .env("SHOULDER_MAIL__DKIM_DOMAIN", "example.org")
        .env("SHOULDER_MAIL__DKIM_SELECTOR", "s1")
        .env("SHOULDER_MAIL__DKIM_PRIVATE_KEY_FILE", key_file);
    command
}

#[test]
fn check_config_reads_each_kind_of_dkim_key_and_never_prints_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    for format in [KeyFormat::RsaPkcs8, KeyFormat::RsaPkcs1, KeyFormat::Ed25519] {
        let key = dkim::generate(dir.path(), "dkim", format, 2048);
        let mut command = with_dkim_key(shoulder(dir.path()), &key.path);
        command.arg("check-config");
        let output = finish(command);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{format:?}: {stderr}");
        assert!(
            stdout.contains(&format!(
                "dkim_private_key_file = \"{}\"",
                key.path.display()
            )),
            "{stdout}"
        );
        let pem = std::fs::read_to_string(&key.path).expect("the key file");
        for line in pem.lines().filter(|line| !line.starts_with("-----")) {
            assert!(
                !stdout.contains(line) && !stderr.contains(line),
                "{format:?}: key shown"
            );
        }
    }
}

#[test]
fn a_dkim_key_that_cannot_sign_stops_the_start_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("notes.pem"), "my DKIM key is in the vault\n").expect("write");
    let small = dkim::generate(dir.path(), "small", KeyFormat::RsaPkcs8, 512);
    let ed25519 = dkim::generate(dir.path(), "ed25519", KeyFormat::Ed25519, 0);
    let sealed = path("sealed.pem");
    let status = Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(&ed25519.path)
        .arg("-out")
        .arg(&sealed)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let ec = path("ec.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&ec)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let cases = [
        (path("missing.pem"), "cannot read"),
        (path("notes.pem"), "holds no PEM private key"),
        (small.path.clone(), "the RSA key has 512 bits"),
        (sealed, "the key is encrypted"),
        (ec, "neither RSA nor Ed25519"),
    ];
    for (file, reason) in cases {
        for command_name in ["check-config", "serve"] {
            let mut command = with_dkim_key(shoulder(dir.path()), &file);
            command
                .arg(command_name)
                .env("SHOULDER_SERVER__BIND", "127.0.0.1:0")
                .env("SHOULDER_DATABASE__URL", "db.sqlite")
                .env("SHOULDER_MAIL__TRANSPORT", "memory");
            let output = finish(command);
            assert_refuses_to_start(&output, "mail.dkim_private_key_file");
            assert_refuses_to_start(&output, reason);
        }
    }
    // The three settings go together.
    let mut command = shoulder(dir.path());
    command
        .arg("check-config")
        .env("SHOULDER_MAIL__DKIM_DOMAIN", "example.org")
        .env("SHOULDER_MAIL__DKIM_PRIVATE_KEY_FILE", &ed25519.path);
    assert_refuses_to_start(&finish(command), "mail.dkim_selector: must be set");
}

async fn probe(base: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let running = Running::start(shoulder(dir.path()), &[]);
    assert_eq!(probe(&running.base, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(
        probe(&running.base, "/readyz").await,
        (200, "ready\n".into())
    );
    let (status, home) = probe(&running.base, "/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Shouldering each other up"));
    let status = running.stop_with("-TERM");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        dir.path().join("data/shoulder.db").is_file(),
        "the default SQLite file"
    );
    assert!(
        dir.path().join("data/mail").is_dir(),
        "the file transport's folder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_answers_and_stops_on_sigterm() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let mut command = shoulder(dir.path());
    command.env("SHOULDER_DATABASE__URL", pg.url());
    let running = Running::start(command, &[]);
    assert_eq!(
        probe(&running.base, "/readyz").await,
        (200, "ready\n".into())
    );
    let (_, metrics) = probe(&running.base, "/metrics").await;
    assert!(metrics.contains(r#"route="/readyz""#), "{metrics}");
    assert!(running.stop_with("-TERM").success());
}

/// How many migrations the repository holds (the same for both backends).
fn migration_count() -> usize {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    std::fs::read_dir(folder)
        .expect("the migrations folder")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_migrations_is_alive_but_not_ready_and_stops_on_sigint() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let running = Running::start(shoulder(dir.path()), &["--no-migrate"]);
    assert_eq!(probe(&running.base, "/healthz").await.0, 200);
    let (status, body) = probe(&running.base, "/readyz").await;
    assert_eq!(status, 503);
    let pending = format!("{} database migrations pending", migration_count());
    assert!(body.contains(&pending), "{body}");
    assert!(running.stop_with("-INT").success());
}

#[test]
fn migrate_applies_once_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let all = format!("applied {} migration(s)", migration_count());
    for expected in [all.as_str(), "applied 0 migration(s)"] {
        let mut command = shoulder(dir.path());
        command
            .arg("migrate")
            .env("SHOULDER_DATABASE__URL", "shoulder.db");
        let output = finish(command);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stdout).contains(expected),
            "{}",
            text(&output.stdout)
        );
    }
}

#[test]
fn send_test_email_reports_the_servers_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = TestSmtp::start();
    let mut command = shoulder(dir.path());
    command
        .args(["send-test-email", "ops@example.org"])
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", smtp.url());
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("sent to ops@example.org through smtp: 250"),
        "{stdout}"
    );

    let received = smtp.wait_for_messages(1);
    assert_eq!(received[0].to, ["ops@example.org"]);
    assert_eq!(
        received[0].subject().as_deref(),
        Some("Shoulder test email: the mail settings work")
    );
    assert!(received[0].text_body().contains("http://127.0.0.1:3000"));
}

#[test]
fn send_test_email_shows_a_refusal_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = TestSmtp::start();
    smtp.set_mode(SmtpMode::PermFail);
    let mut command = shoulder(dir.path());
    command
        .args(["send-test-email", "ops@example.org"])
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", smtp.url());
    let output = finish(command);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permanent failure"), "{stderr}");
    assert!(stderr.contains("550"), "{stderr}");
}

#[test]
fn send_test_email_rejects_a_malformed_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = shoulder(dir.path());
    command.args(["send-test-email", "ops at example.org"]);
    assert_refuses_to_start(&finish(command), "email address");
}

#[test]
fn send_test_email_with_the_file_transport_writes_an_eml() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let mut command = shoulder(dir.path());
    command.args(["send-test-email", "ops@example.org"]);
    let output = finish(command);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let written: Vec<_> = std::fs::read_dir(dir.path().join("data/mail"))
        .expect("mail folder")
        .collect();
    assert_eq!(written.len(), 1);
}

/// `shoulder circle …` against a running test app's own database and SMTP
/// server, so what the command did can be checked through the app.
fn circle_command(app: &crate::support::TestApp, dir: &Path, args: &[&str]) -> Output {
    let mut command = shoulder(dir);
    command
        .arg("circle")
        .args(args)
        .env("SHOULDER_DATABASE__URL", &app.state.config.database.url)
        .env("SHOULDER_SERVER__PUBLIC_URL", app.public_base())
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", app.smtp.url());
    finish(command)
}

const CREATE: &[&str] = &[
    "create",
    "--name",
    "Night shift accomplices",
    "--facilitator",
    "ada@example.org",
    "--facilitator-name",
    "Ada",
    "--cadence",
    "weekly mon,thu 18:30",
    "--time-zone",
    "America/Toronto",
];

/// A test app whose clock reads the real time, because the `shoulder`
/// process under test runs on the system clock and its links expire by it.
async fn app_at_system_time() -> crate::support::TestApp {
    #[expect(
        clippy::disallowed_methods,
        reason = "the binary under test uses the system clock"
    )]
    let now = chrono::Utc::now();
    crate::support::TestApp::builder(crate::support::Backend::Sqlite)
        .at(now)
        .start()
        .await
        .expect("sqlite")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circle_create_prints_the_id_and_a_working_invite_link() {
    let app = app_at_system_time().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = circle_command(&app, dir.path(), CREATE);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.starts_with("circle 1 started"), "{stdout}");
    let link = crate::support::link_path(&stdout, app.public_base(), "/join/");
    let (status, page) = app.get_text(&link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Night shift accomplices"), "{page}");

    // A new link replaces the old one.
    let output = circle_command(&app, dir.path(), &["invite-link", "1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let fresh = crate::support::link_path(&text(&output.stdout), app.public_base(), "/join/");
    assert_ne!(fresh, link);
    assert_eq!(app.get_text(&fresh).await.0, 200);
    assert_ne!(
        app.get_text(&link).await.0,
        200,
        "the old link stopped working"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circle_create_refuses_bad_settings_by_option_name() {
    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite)
        .await
        .expect("sqlite");
    let dir = tempfile::tempdir().expect("temp dir");
    for (option, value, expected) in [
        ("--time-zone", "Mars/Olympus", "--time-zone"),
        ("--cadence", "*/5 * * * *", "--cadence"),
        ("--facilitator", "ada at example.org", "--facilitator"),
        ("--name", "Two\nlines", "--name"),
    ] {
        let mut args = vec![CREATE[0]];
        for pair in CREATE[1..].chunks(2) {
            match pair {
                [flag, _] if *flag == option => args.extend([*flag, value]),
                other => args.extend_from_slice(other),
            }
        }
        assert_refuses_to_start(&circle_command(&app, dir.path(), &args), expected);
    }
    assert_refuses_to_start(
        &circle_command(&app, dir.path(), &["invite-link", "42"]),
        "there is no circle 42",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_members_adds_everyone_or_nobody() {
    let app = app_at_system_time().await;
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(circle_command(&app, dir.path(), CREATE).status.success());
    let before = app.emails().len();

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "email,name\nbea@example.org,Bea\nnot-an-address,Cy\ndee@example.org,\n",
    )
    .expect("write");
    let output = circle_command(
        &app,
        dir.path(),
        &["import-members", "1", bad.to_str().expect("utf-8")],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(stderr.contains("line 3: email:"), "{stderr}");
    assert!(stderr.contains("line 4: name:"), "{stderr}");
    assert_eq!(app.emails().len(), before, "no welcome was sent");

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "email,name\nbea@example.org,Bea\n\"cy@example.org\",\"Cy, Jr.\"\nada@example.org,Ada\n",
    )
    .expect("write");
    let output = circle_command(
        &app,
        dir.path(),
        &["import-members", "1", good.to_str().expect("utf-8")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("line 2: bea@example.org (Bea): added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 3: cy@example.org (Cy, Jr.): added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 4: ada@example.org (Ada): already a member"),
        "{stdout}"
    );
    let welcomes = app.smtp.wait_for_messages(before + 2);
    let welcome = welcomes
        .iter()
        .find(|m| m.to == ["cy@example.org"])
        .expect("Cy's welcome");
    assert_eq!(
        welcome.subject().as_deref(),
        Some("Welcome to Night shift accomplices on Shoulder")
    );

    // Cy can sign in and sees the circle.
    let cy = app.sign_in("cy@example.org", "Cy").await;
    assert_eq!(app.get_as(&cy, "/circles/1").await.status().as_u16(), 200);

    // A file that would overfill the circle adds nobody.
    let many: String = (0..8).map(|i| format!("p{i}@example.org,P{i}\n")).collect();
    let crowded = dir.path().join("crowded.csv");
    std::fs::write(&crowded, many).expect("write");
    let output = circle_command(
        &app,
        dir.path(),
        &["import-members", "1", crowded.to_str().expect("utf-8")],
    );
    assert_refuses_to_start(&output, "has room for 8 and has 3 members");
}

#[test]
fn demo_opens_a_round_whose_check_ins_are_ready_to_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let mut command = shoulder(dir.path());
    command.arg("demo");
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("opened 1 round(s); 4 check-in email(s) sent"),
        "{stdout}"
    );
    let written = std::fs::read_dir(dir.path().join("data/mail"))
        .expect("mail folder")
        .count();
    assert_eq!(
        written, 4,
        "one check-in per demo member, readable at /dev/mail"
    );

    // A tick far ahead closes that round and reports it.
    let mut command = shoulder(dir.path());
    command.args(["tick", "--at", "2100-01-01T00:00:00Z", "--no-deliver"]);
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("closed 1 round(s)"), "{stdout}");
    assert!(
        stdout.contains("emails left queued (--no-deliver)"),
        "{stdout}"
    );
}

#[test]
fn tick_refuses_an_instant_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = shoulder(dir.path());
    command.args(["tick", "--at", "next tuesday"]);
    let output = finish(command);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("RFC 3339"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_drives_rounds_on_postgres_too() {
    use diesel::prelude::*;
    use shoulder::db::schema::circles;

    let Some(app) = crate::support::TestApp::start(crate::support::Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(circle_command(&app, dir.path(), CREATE).status.success());
    let next: chrono::NaiveDateTime = app
        .state
        .db
        .run(|conn| {
            Ok::<_, shoulder::db::DbError>(
                circles::table
                    .select(circles::next_round_at.assume_not_null())
                    .first(conn)?,
            )
        })
        .await
        .expect("the circle's next round");
    let at = (next.and_utc() + chrono::Duration::minutes(1)).to_rfc3339();
    for expected in ["opened 1 round(s): circle 1 round 1", "opened 0 round(s)"] {
        let output = circle_command_tick(&app, dir.path(), &at);
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(stdout.contains(expected), "{stdout}");
    }
    let check_in = app.smtp.wait_for_messages(1);
    assert!(
        check_in[0]
            .subject()
            .expect("subject")
            .starts_with("Night shift accomplices, round 1")
    );
}

/// `shoulder tick --at AT` against a test app's database and SMTP server.
fn circle_command_tick(app: &crate::support::TestApp, dir: &Path, at: &str) -> Output {
    let mut command = shoulder(dir);
    command
        .args(["tick", "--at", at])
        .env("SHOULDER_DATABASE__URL", &app.state.config.database.url)
        .env("SHOULDER_SERVER__PUBLIC_URL", app.public_base())
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", app.smtp.url());
    finish(command)
}

/// Short commands on PostgreSQL end with exit code 0, never with a signal:
/// a command that exited while the pool was still opening a connection in a
/// thread of its own crashed in OpenSSL's exit-time clean-up, about 4 times
/// in 100, which a scheduler running `tick` from cron reads as a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_short_commands_on_postgres_all_exit_cleanly() {
    const RUNS: usize = 300;
    let Some(app) = crate::support::TestApp::start(crate::support::Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(circle_command(&app, dir.path(), CREATE).status.success());
    let now = shoulder::clock::Clock::system().now().to_rfc3339();
    // Two at a time, as a cron table with several entries would run them.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let (app, dir, now) = (&app, dir.path(), &now);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for run in (worker..RUNS).step_by(2) {
                        let facilitator = format!("f{run}@example.org");
                        let output = match run % 3 {
                            0 => {
                                let mut args = CREATE.to_vec();
                                args[4] = &facilitator;
                                circle_command(app, dir, &args)
                            }
                            1 => circle_command(app, dir, &["invite-link", "1"]),
                            _ => circle_command_tick(app, dir, now),
                        };
                        if output.status.code() != Some(0) {
                            failures.push(format!(
                                "run {run}: {:?}: {}",
                                output.status,
                                text(&output.stderr)
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("worker"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {RUNS} commands failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_members_reads_a_spreadsheets_semicolon_export() {
    let app = app_at_system_time().await;
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(circle_command(&app, dir.path(), CREATE).status.success());
    let before = app.emails().len();

    // As a spreadsheet saves it in many locales: a byte-order mark, `;`
    // between columns, CRLF, and a name wrapped onto two lines in its cell.
    let export =
        "\u{feff}email;name\r\nbea@example.org;\"Bea\r\nQuinn\"\r\ncy@example.org;\"Cy, Jr.\"\r\n";
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{export}not-an-address;Dee\r\n")).expect("write");
    let output = circle_command(
        &app,
        dir.path(),
        &["import-members", "1", bad.to_str().expect("utf-8")],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(stderr.contains("line 5: email:"), "{stderr}");

    let good = dir.path().join("good.csv");
    std::fs::write(&good, export).expect("write");
    let output = circle_command(
        &app,
        dir.path(),
        &["import-members", "1", good.to_str().expect("utf-8")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("line 2: bea@example.org (Bea Quinn): added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 4: cy@example.org (Cy, Jr.): added"),
        "{stdout}"
    );
    let welcomes = app.smtp.wait_for_messages(before + 2);
    assert!(
        welcomes.iter().any(|m| m.to == ["bea@example.org"]),
        "Bea's welcome"
    );
}

/// `tick --at` sends a check-in held for a member's own hour at that hour,
/// and only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_sends_a_check_in_held_for_its_hour_then_and_once() {
    use diesel::prelude::*;
    use shoulder::db::schema::memberships;

    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite)
        .await
        .expect("SQLite");
    let circle = crate::support::weekly_circle(
        &app,
        "Monday accomplices",
        &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
    )
    .await;
    crate::shoulder::query(&app, move |conn| {
        diesel::update(
            memberships::table
                .filter(memberships::circle_id.eq(circle))
                .filter(memberships::role.eq("member")),
        )
        .set(memberships::check_in_at.eq(Some("11:00")))
        .execute(conn)
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let to = |address: &str| {
        app.emails()
            .iter()
            .filter(|m| m.to == [address.to_string()])
            .count()
    };
    let tick = |at: &str| {
        let output = circle_command_tick(&app, dir.path(), at);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let opened = tick("2027-03-01T09:00:30Z");
    assert!(opened.contains("opened 1 round(s)"), "{opened}");
    app.smtp.wait_for_messages(1);
    assert_eq!((to("ada@example.org"), to("bea@example.org")), (1, 0));
    tick("2027-03-01T10:59:00Z");
    assert_eq!(to("bea@example.org"), 0, "not before her hour");
    tick("2027-03-01T11:00:00Z");
    app.smtp.wait_for_messages(2);
    tick("2027-03-01T11:05:00Z");
    assert_eq!((to("ada@example.org"), to("bea@example.org")), (1, 1));
}
