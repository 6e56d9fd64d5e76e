//! The test harness: a real server on a random port over a fresh database
//! (a SQLite file in a temp folder, or a PostgreSQL database of its own), a
//! real SMTP server in this process, and a fixed clock.

pub mod axe;
pub mod browser;
pub mod dkim;
pub mod postgres;
pub mod process;
pub mod smtp;

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use shoulder::app::{self, AppState};
use shoulder::clock::Clock;
use shoulder::config::{Config, ConfigSources, MailTransportKind};
use shoulder::jobs::{self, PassReport};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use postgres::PgDatabase;
pub use smtp::{ReceivedEmail, SmtpMode, TestSmtp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Says loudly that a test is skipped and why. Written straight to the
/// process's stderr, which the test harness does not capture, so the line
/// shows in a normal `cargo test` run.
pub fn announce_skip(what: &str, why: &str, hint: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what}: {why}\n*** {hint}\n"
    );
}

/// An instant written as RFC 3339, for setting the fixed clock.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}

/// A circle that meets weekly on Monday at 09:00 UTC with rounds open 48
/// hours, made on 1 March 2027 at 08:00: the first of `people` (email,
/// name) facilitates, the others are members. No round is open yet; see
/// [`open_week`].
pub async fn weekly_circle(app: &TestApp, name: &str, people: &[(&str, &str)]) -> i64 {
    app.clock.set(utc("2027-03-01T08:00:00Z"));
    circle_in(app, name, "UTC", "weekly mon 09:00", 48, people).await
}

/// A circle started now in `zone` on `cadence`, its rounds open for
/// `round_hours`; the first person facilitates, the rest are members.
pub async fn circle_in(
    app: &TestApp,
    name: &str,
    zone: &str,
    cadence: &str,
    round_hours: u32,
    people: &[(&str, &str)],
) -> i64 {
    use shoulder::circles::settings::{Settings, SettingsForm};
    use shoulder::circles::store;
    let mut form = SettingsForm::new(zone);
    form.name = name.into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    form.round_hours = round_hours.to_string();
    form.set_cadence_text(cadence);
    let now = app.clock.now();
    let settings = Settings::parse(&form, now.date_naive()).expect("valid settings");
    let people: Vec<(String, String)> = people
        .iter()
        .map(|(email, name)| (email.to_string(), name.to_string()))
        .collect();
    app.state
        .db
        .run(move |conn| {
            let at = now.naive_utc();
            let mut ids = Vec::new();
            for (email, name) in &people {
                ids.push(store::find_or_create_person(conn, email, name, at)?);
            }
            let id = store::create(conn, ids[0], &settings, now)?;
            for person in &ids[1..] {
                store::add_member(conn, id, *person, store::ROLE_MEMBER, at)?;
            }
            Ok::<_, shoulder::db::DbError>(id)
        })
        .await
        .expect("circle created")
}

/// Moves the clock to the Monday of week `number` (1 is 1 March 2027,
/// 09:00 UTC) and runs the jobs there, which opens a weekly circle's round.
pub async fn open_week(app: &TestApp, number: i64) -> PassReport {
    app.clock
        .set(utc("2027-03-01T09:00:00Z") + chrono::Duration::weeks(number - 1));
    app.run_jobs().await
}

/// Where every test's clock starts unless it says otherwise.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

/// The configuration tests start from: the repository's `config/test.toml`
/// over the defaults, no environment variables.
pub fn test_config() -> Config {
    Config::load(&ConfigSources {
        config_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
        extra_file: None,
        read_env_vars: false,
    })
    .expect("the test configuration is valid")
}

/// A change a test makes to the configuration before the app starts.
type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

pub struct TestAppBuilder {
    backend: Backend,
    start_at: DateTime<Utc>,
    migrate: bool,
    adjust: Vec<ConfigChange>,
}

impl TestAppBuilder {
    pub fn at(mut self, instant: DateTime<Utc>) -> Self {
        self.start_at = instant;
        self
    }

    /// Starts the server on a database without the schema.
    pub fn without_migrations(mut self) -> Self {
        self.migrate = false;
        self
    }

    pub fn config(mut self, change: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.adjust.push(Box::new(change));
        self
    }

    /// `None` when the backend is PostgreSQL and it is unreachable (and not
    /// required); the skip has been announced on stderr.
    pub async fn start(self) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = TestSmtp::start();
        let pg = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await?),
        };
        let listener = app::bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound address");
        let mut config = test_config();
        config.server.bind = addr.to_string();
        config.server.public_url = format!("http://{addr}");
        config.database.url = match &pg {
            Some(pg) => pg.url().to_string(),
            None => dir.path().join("shoulder.db").display().to_string(),
        };
        config.mail.transport = MailTransportKind::Smtp;
        config.mail.smtp_url = smtp.url();
        config.mail.file_dir = dir.path().join("mail").display().to_string();
        config.mail.send_timeout_secs = 5;
        config.scheduler.enabled = false;
        for change in self.adjust {
            change(&mut config);
        }
        config.validate().expect("test configuration stays valid");

        // Bound here rather than by `serve`, so the test learns the port.
        let metrics_listener = app::bind_metrics(&config)
            .await
            .expect("a free port for /metrics");
        let metrics_addr = metrics_listener
            .as_ref()
            .map(|listener| listener.local_addr().expect("bound address"));
        let listeners = app::Listeners {
            main: listener,
            metrics: metrics_listener,
        };

        let clock = Clock::fixed(self.start_at);
        let state = AppState::build(config, clock.clone(), self.migrate)
            .await
            .expect("the app starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let server_state = state.clone();
        tokio::spawn(async move {
            let _ = app::serve(listeners, server_state, async {
                let _ = stopped.await;
            })
            .await;
        });
        Some(TestApp {
            addr,
            metrics_addr,
            state,
            clock,
            smtp,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            stop: Some(stop),
            _dir: dir,
            _pg: pg,
        })
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// `/metrics`'s own listener, when `server.metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub clock: Clock,
    pub smtp: TestSmtp,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
    // Last: the database is dropped after everything that uses it.
    _pg: Option<PgDatabase>,
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            start_at: default_start(),
            migrate: true,
            adjust: Vec::new(),
        }
    }

    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::builder(backend).start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The public URL emailed links start with.
    pub fn public_base(&self) -> &str {
        self.state.config.public_base()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    pub async fn get_as(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("the server answers")
    }

    /// Posts a form the way a browser on our own pages does.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_as("", path, fields).await
    }

    pub async fn post_form_as(
        &self,
        cookie: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(body);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("the server answers")
    }

    /// Follows a POST's redirect as a browser does, sending the cookie it
    /// set beside `cookie`: the status and words of the page it leads to.
    pub async fn follow(&self, cookie: &str, response: reqwest::Response) -> (u16, String) {
        assert_eq!(response.status().as_u16(), 303, "a redirect");
        let location = response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_string();
        let carried = response
            .headers()
            .get("set-cookie")
            .map(|_| cookie_from(&response));
        let cookies = [cookie.to_string(), carried.unwrap_or_default()]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let page = self.get_as(&cookies, &location).await;
        let status = page.status().as_u16();
        (status, page.text().await.expect("a page"))
    }

    /// Makes a circle's reusable invite link as a facilitator's browser
    /// does (replacing one that works, confirmed), follows the redirect
    /// with the cookie that carries the link, and returns the link's path.
    pub async fn make_invite_link(&self, cookie: &str, circle_id: i64) -> String {
        let made = self
            .post_form_as(
                cookie,
                &format!("/circles/{circle_id}/invites/link"),
                &[("confirm", "yes")],
            )
            .await;
        assert_eq!(made.status().as_u16(), 303, "the link is made");
        let location = made
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("a redirect")
            .to_string();
        let carried = cookie_from(&made);
        let page = self
            .get_as(&format!("{cookie}; {carried}"), &location)
            .await;
        assert_eq!(page.status().as_u16(), 200);
        link_path(
            &page.text().await.expect("the invite page"),
            self.public_base(),
            "/join/",
        )
    }

    /// Signs `email` in through the real emailed-link flow (creating the
    /// person as `name` on a first sign-in) and returns the session cookie.
    pub async fn sign_in(&self, email: &str, name: &str) -> String {
        let asked = self.post_form("/sign-in", &[("email", email)]).await;
        assert_eq!(asked.status().as_u16(), 303, "sign-in requested");
        self.run_jobs().await;
        // Mail goes to the address in its stored form (ASCII domain).
        let wanted = shoulder::mail::EmailAddress::parse(email)
            .expect("a valid address")
            .to_string();
        let message = self
            .emails()
            .into_iter()
            .rev()
            .find(|m| m.to == [wanted.clone()])
            .expect("a sign-in email");
        let link = link_path(&message.text_body(), self.public_base(), "/sign-in/");
        let response = self.post_form(&link, &[("name", name)]).await;
        assert_eq!(response.status().as_u16(), 303, "signed in");
        cookie_from(&response)
    }

    /// One pass of the background jobs at the clock's current instant.
    pub async fn run_jobs(&self) -> PassReport {
        jobs::run_once(&self.state)
            .await
            .expect("the background pass succeeds")
    }

    /// What the test SMTP server has accepted so far.
    pub fn emails(&self) -> Vec<ReceivedEmail> {
        self.smtp.messages()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Declares one test body that runs on SQLite and on PostgreSQL, as
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: $crate::support::TestApp) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::support::TestApp::start($crate::support::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                body(app).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) =
                    $crate::support::TestApp::start($crate::support::Backend::Postgres).await
                else {
                    return;
                };
                body(app).await;
            }
        }
    };
}

/// The `name=value` part of a response's `Set-Cookie`, ready to send back.
pub fn cookie_from(response: &reqwest::Response) -> String {
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .expect("ascii");
    set_cookie
        .split(';')
        .next()
        .expect("a name=value pair")
        .to_string()
}

/// The path of the first link in `text` that starts with `base` + `prefix`.
pub fn link_path(text: &str, base: &str, prefix: &str) -> String {
    let start = format!("{base}{prefix}");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no link starting {start} in:\n{text}"));
    let link: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    link[base.len()..].to_string()
}
