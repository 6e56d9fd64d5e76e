//! The real `shoulder` binary as a child process: `serve` on a port of its
//! own, and `tick --at` for one pass of the jobs at a fixed instant.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::TestApp;

/// How long a process that should stop by itself may take.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(60);

/// The real binary, with no `SHOULDER_*__*` setting inherited from the
/// environment the tests run in.
pub fn shoulder(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shoulder"));
    command
        .current_dir(cwd)
        .env_remove("SHOULDER_ENV")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("SHOULDER_") && key.contains("__") {
            command.env_remove(key);
        }
    }
    command
}

/// Sends `signal` ("-KILL", "-STOP", ...) to a process.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {}", child.id());
}

/// Waits for a process that was told to stop.
pub fn wait_for_exit(child: &mut Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return status;
        }
        if started.elapsed() > EXIT_DEADLINE {
            let _ = child.kill();
            panic!("{what} did not exit within {EXIT_DEADLINE:?}");
        }
        // Waiting for the process, not for time to pass.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running `shoulder serve` and the address it announced.
pub struct Running {
    pub child: Child,
    pub base: String,
}

impl Running {
    /// Starts `shoulder serve` on a port the system picks, and returns once
    /// it says where it listens.
    pub fn start(mut command: Command, serve_args: &[&str]) -> Running {
        let mut child = command
            .arg("serve")
            .args(serve_args)
            .env("SHOULDER_SERVER__BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().expect("exited");
                panic!("shoulder serve stopped before listening: {status}");
            };
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Running { child, base }
    }

    /// Sends `signal` and waits for the server to exit.
    pub fn stop_with(mut self, signal_name: &str) -> ExitStatus {
        signal(&self.child, signal_name);
        wait_for_exit(
            &mut self.child,
            &format!("shoulder serve after {signal_name}"),
        )
    }
}

/// What a `shoulder tick` process needs to work on a test app's database and
/// SMTP server; owned, so the processes can be run off the async runtime.
#[derive(Clone)]
pub struct TickTarget {
    pub database_url: String,
    pub public_url: String,
    pub smtp_url: String,
    /// Where each process's output goes (a file per process, rewritten each tick).
    pub output_dir: PathBuf,
    /// More settings, as `SHOULDER_<SECTION>__<KEY>` variables.
    pub settings: Vec<(String, String)>,
}

impl TickTarget {
    pub fn of(app: &TestApp, output_dir: &Path) -> TickTarget {
        TickTarget {
            database_url: app.state.config.database.url.clone(),
            public_url: app.public_base().to_string(),
            smtp_url: app.smtp.url(),
            output_dir: output_dir.to_path_buf(),
            settings: Vec::new(),
        }
    }

    /// The same target with one more setting.
    pub fn with(mut self, variable: &str, value: impl ToString) -> TickTarget {
        self.settings
            .push((variable.to_string(), value.to_string()));
        self
    }
}

/// Starts `shoulder tick --at <at>`, its output going to files named `name`.
pub fn spawn_tick(target: &TickTarget, at: DateTime<Utc>, name: &str) -> (Child, PathBuf, PathBuf) {
    let stdout = target.output_dir.join(format!("{name}.out"));
    let stderr = target.output_dir.join(format!("{name}.err"));
    let mut command = shoulder(&target.output_dir);
    command
        .arg("tick")
        .arg("--at")
        .arg(at.to_rfc3339())
        .env("SHOULDER_DATABASE__URL", &target.database_url)
        .env("SHOULDER_SERVER__PUBLIC_URL", &target.public_url)
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", &target.smtp_url)
        .envs(target.settings.iter().map(|(k, v)| (k, v)))
        // Files, not pipes: a pipe nobody reads while the other process is
        // waited on could fill up and stall its writer.
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"));
    let child = command.spawn().expect("the binary runs");
    (child, stdout, stderr)
}
