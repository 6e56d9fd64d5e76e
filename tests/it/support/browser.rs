//! A real headless Chromium for a test of its own, driven over WebDriver.
//!
//! [`Browser::start`] runs Debian's `chromedriver` on a free port of
//! 127.0.0.1 (in a process group of its own), waits until it answers, and
//! opens a session in headless Chromium with a fresh profile in a temp folder.
//! Dropping the [`Browser`] ends the session, then kills the whole process
//! group, so neither chromedriver nor any Chromium process outlives the test.
//!
//! chromedriver is looked for at `$CHROMEDRIVER` when that is set (and only
//! there), else at `/usr/bin/chromedriver`, else on `PATH`. When it is absent
//! the test is skipped with a loud line, unless `SHOULDER_REQUIRE_BROWSER=1`,
//! which turns the skip into a failure.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

/// Where Debian's `chromium-driver` and `chromium` packages put their programs.
const DEBIAN_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver may take to answer its status endpoint.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How long Chromium may take to open a session.
const SESSION_WITHIN: Duration = Duration::from_secs(60);
/// How long ending the session may take when the browser is dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// Attempts at a free port, in case another process takes the one we picked.
const PORT_ATTEMPTS: usize = 3;

/// Chromium's flags: headless as root in a container, and quiet on a
/// machine without a network (no updates, sync, first-run or QUIC probes).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

pub fn required() -> bool {
    std::env::var("SHOULDER_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// The chromedriver to run, or a description of where it was looked for.
pub fn find_chromedriver() -> Result<PathBuf, String> {
    if let Some(configured) = std::env::var_os("CHROMEDRIVER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(configured);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("CHROMEDRIVER={} is not a file", path.display()))
        };
    }
    let debian = Path::new(DEBIAN_CHROMEDRIVER);
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("no chromedriver at {DEBIAN_CHROMEDRIVER} or on PATH"))
}

pub struct Browser {
    /// `None` only while the browser is being dropped.
    client: Option<Client>,
    chromedriver: Child,
    webdriver_url: String,
    /// Holds Chromium's profile and chromedriver's output; removed last.
    dir: TempDir,
}

impl Browser {
    /// `None` (after saying so on stderr) when chromedriver is absent and not
    /// required. Panics when chromedriver is there but no session opens.
    pub async fn start() -> Option<Browser> {
        Browser::start_with_zone(None).await
    }

    /// The same, with Chromium believing it is in `zone` (its `TZ`).
    pub async fn start_in_zone(zone: &str) -> Option<Browser> {
        Browser::start_with_zone(Some(zone)).await
    }

    async fn start_with_zone(zone: Option<&str>) -> Option<Browser> {
        let chromedriver = match find_chromedriver() {
            Ok(path) => path,
            Err(why) if !required() => {
                super::announce_skip(
                    "browser test",
                    &why,
                    "Install chromium and chromium-driver, set CHROMEDRIVER, \
                     or SHOULDER_REQUIRE_BROWSER=1 to fail instead.",
                );
                return None;
            }
            Err(why) => panic!("SHOULDER_REQUIRE_BROWSER=1 but chromedriver is missing: {why}"),
        };
        let dir = tempfile::tempdir().expect("temp dir for the browser");
        let (child, webdriver_url) = start_chromedriver(&chromedriver, dir.path(), zone).await;
        // From here on a panic drops `browser`, which stops chromedriver.
        let mut browser = Browser {
            client: None,
            chromedriver: child,
            webdriver_url,
            dir,
        };
        let capabilities = capabilities(&browser.dir.path().join("profile"));
        let session = tokio::time::timeout(
            SESSION_WITHIN,
            ClientBuilder::native()
                .capabilities(capabilities)
                .connect(&browser.webdriver_url),
        )
        .await;
        match session {
            Ok(Ok(client)) => browser.client = Some(client),
            Ok(Err(error)) => panic!(
                "chromedriver at {} opened no Chromium session: {error}\n{}",
                browser.webdriver_url,
                browser.chromedriver_output()
            ),
            Err(_) => panic!(
                "chromedriver at {} opened no Chromium session within {SESSION_WITHIN:?}\n{}",
                browser.webdriver_url,
                browser.chromedriver_output()
            ),
        }
        Some(browser)
    }

    /// The WebDriver client of this browser's one session.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until the browser is dropped")
    }

    /// What chromedriver has written so far, for failure messages.
    pub fn chromedriver_output(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log"))
            .unwrap_or_else(|e| format!("(no chromedriver output: {e})"));
        format!("--- chromedriver output ---\n{log}--- end of chromedriver output ---")
    }

    /// Asks chromedriver to end the session, which quits Chromium, when a
    /// multi-threaded runtime is there to drive the request.
    fn end_session(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        tokio::task::block_in_place(|| {
            let _ = runtime.block_on(tokio::time::timeout(CLOSE_WITHIN, client.close()));
        });
    }

    /// Kills chromedriver's process group (chromedriver and the Chromium it
    /// started), then reaps chromedriver.
    fn stop_chromedriver(&mut self) {
        let group = format!("-{}", self.chromedriver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.end_session();
        self.stop_chromedriver();
    }
}

/// The session's capabilities: headless Chromium with a profile of its own.
fn capabilities(profile: &Path) -> Capabilities {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| arg.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut chrome_options = json!({ "args": args });
    if Path::new(DEBIAN_CHROMIUM).is_file() {
        chrome_options["binary"] = json!(DEBIAN_CHROMIUM);
    }
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), chrome_options);
    // A page that never finishes loading fails the test instead of hanging it.
    capabilities.insert(
        "timeouts".into(),
        json!({ "pageLoad": 30_000, "script": 10_000, "implicit": 0 }),
    );
    capabilities
}

/// Runs chromedriver on a free port until it reports itself ready; returns
/// the child and its WebDriver URL. Picks another port if chromedriver exits
/// early (another process took the port between our look and its bind).
async fn start_chromedriver(program: &Path, dir: &Path, zone: Option<&str>) -> (Child, String) {
    let log_path = dir.join("chromedriver.log");
    let mut last_failure = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let log = File::create(&log_path).expect("chromedriver log file");
        let mut child = {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(program);
            if let Some(zone) = zone {
                // Chromium, started by chromedriver, inherits it.
                command.env("TZ", zone);
            }
            command
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("chromedriver log handle"))
                .stderr(log)
                // A group of its own, so that Drop can kill the Chromium
                // processes with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
        };
        let url = format!("http://127.0.0.1:{port}");
        let not_ready = match wait_until_ready(&mut child, &url).await {
            Ok(()) => return (child, url),
            Err(not_ready) => not_ready,
        };
        let _ = child.kill();
        let _ = child.wait();
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        match not_ready {
            NotReady::Exited(why) => {
                last_failure = format!("{why}\n--- chromedriver output ---\n{output}");
            }
            NotReady::TimedOut(why) => panic!(
                "{} did not start: {why}\n--- chromedriver output ---\n{output}",
                program.display()
            ),
        }
    }
    panic!(
        "chromedriver ({}) did not start after {PORT_ATTEMPTS} attempts: {last_failure}",
        program.display()
    );
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// Why chromedriver is not ready: it exited (maybe the port was taken after
/// all; worth another port), or it kept silent too long (not worth one).
enum NotReady {
    Exited(String),
    TimedOut(String),
}

/// Polls chromedriver's status endpoint until it says it is ready, the
/// process exits, or [`READY_WITHIN`] passes.
async fn wait_until_ready(child: &mut Child, url: &str) -> Result<(), NotReady> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let status_url = format!("{url}/status");
    let deadline = Instant::now() + READY_WITHIN;
    let mut last_error = String::from("no attempt made");
    while Instant::now() < deadline {
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(NotReady::Exited(format!(
                "chromedriver exited before it was ready ({exit})"
            )));
        }
        match http.get(&status_url).send().await {
            Ok(response) => {
                let body = response.text().await.unwrap_or_default();
                let ready = serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|status| status["value"]["ready"] == json!(true));
                if ready {
                    return Ok(());
                }
                last_error = format!("not ready yet: {body}");
            }
            Err(error) => last_error = error_chain(&error),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(NotReady::TimedOut(format!(
        "chromedriver at {url} was not ready within {READY_WITHIN:?}: {last_error}"
    )))
}

/// An error with its causes, which reqwest's own message leaves out.
fn error_chain(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

// ---- steps a test takes in the page ----

/// Types `value` into the empty field at `css`.
pub async fn fill(client: &Client, css: &str, value: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page has {css}: {e}"));
    field
        .clear()
        .await
        .unwrap_or_else(|e| panic!("{css} clears: {e}"));
    field
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("{css} takes text: {e}"));
}

/// Clicks the element at `css`.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page has {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css} can be clicked: {e}"));
}

/// Waits until the page's main text contains `needle` (a form's POST
/// navigates after the click returns), then gives that text.
pub async fn wait_for(client: &Client, needle: &str) -> String {
    let xpath = format!("//main[contains(normalize-space(.), \"{needle}\")]");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("the page came to say {needle:?}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("main has text: {e}"))
}
