//! Typed configuration: where it comes from, what it may contain, and whether
//! it makes sense before anything starts.
//!
//! Layers, later ones winning: the defaults compiled into the binary (the same
//! text as `config/default.toml`), `config/default.toml` on disk,
//! `config/<SHOULDER_ENV>.toml` (default `development`), a file given with
//! `--config`, then environment variables `SHOULDER_<SECTION>__<KEY>`.
//! Unknown keys are rejected so a typo never silently means "default".
//!
//! Any key may instead be given as `<key>_file`, the path of a file holding
//! its value, as container and systemd credentials are handed over; such
//! values are never shown by `check-config`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::db::DatabaseUrl;

/// The defaults, compiled in so the binary runs even without its `config/` folder.
const DEFAULTS: &str = include_str!("../config/default.toml");

pub const DEFAULT_ENVIRONMENT: &str = "development";
pub const MAX_POOL_SIZE: u32 = 64;
/// The largest value of any `limits.*` key: past a million, a limit no
/// longer limits anything.
pub const MAX_LIMIT: u32 = 1_000_000;
/// A request head takes one round trip; a minute is patience enough.
pub const MAX_HEADER_READ_TIMEOUT_SECS: u64 = 60;
/// Thirty days: past that, an email's news is stale.
pub const MAX_RETRY_FOR_HOURS: u64 = 720;
pub const MAX_LEASE_SECS: u64 = 86_400;
pub const MAX_MAIL_BATCH_SIZE: u32 = 10_000;
/// An invite that waits longer than a season has outlived the conversation
/// that led to it.
pub const MAX_INVITE_LINK_DAYS: u32 = 90;
/// A shorter bearer token for `/metrics` could be guessed by whoever can
/// reach the port.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// `<key>_file` names a file whose content is `<key>`'s value.
const FILE_SUFFIX: &str = "_file";
/// Keys whose name ends with one of these hold a secret and are never shown.
const SECRET_NAME_ENDINGS: [&str; 3] = ["password", "secret", "token"];
/// What `check-config` shows in place of a secret.
const HIDDEN: &str = "***";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `SHOULDER_ENV`, which chose the layer above the defaults; set by
    /// [`Config::load`], never read from a file.
    #[serde(skip)]
    pub environment: String,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub scheduler: SchedulerConfig,
    pub rounds: RoundsConfig,
    pub inbound: InboundConfig,
    pub circles: CirclesConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    /// Keys whose value was read from a file (`<key>_file`), and that file;
    /// `check-config` shows the path in place of the value.
    #[serde(skip)]
    pub read_from_files: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: String,
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
    /// Empty: `/metrics` is served on `bind`. An address: only there.
    pub metrics_bind: String,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: String,
    /// A connection that has not sent a whole request head in this many
    /// seconds is closed.
    pub header_read_timeout_secs: u64,
    /// Connections one client address may hold open at once.
    pub max_connections_per_client: u32,
    /// Addresses (`10.0.0.5`) or networks (`10.0.0.0/8`) of reverse
    /// proxies: only their `X-Forwarded-For` and `Forwarded` headers are
    /// believed, and their connections are not capped per client.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: u32,
    pub migrate_on_start: bool,
    pub busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
    Memory,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    pub from: String,
    pub file_dir: String,
    pub smtp_url: String,
    pub smtp_pool_size: u32,
    pub send_timeout_secs: u64,
    pub templates_dir: String,
    pub retry_for_hours: u64,
    pub lease_secs: u64,
    pub batch_size: u32,
    /// DKIM signing: the `d=` domain, the `s=` selector and the PEM private
    /// key's path; all three empty (no signing) or all three set.
    pub dkim_domain: String,
    pub dkim_selector: String,
    pub dkim_private_key_file: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    pub enabled: bool,
    pub interval_secs: u64,
    pub catch_up_grace_minutes: u32,
    pub batch_size: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoundsConfig {
    pub reminder_before_close_hours: u32,
    pub prompts_dir: String,
}

/// Mail coming back: replies to round emails (README: replying by email).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// The Reply-To of check-ins and reminders, with `{key}` where each
    /// email's own key goes; empty: replying by email is off.
    pub reply_address: String,
    /// What `POST /inbound/email` must be sent with as a bearer token;
    /// empty: the route answers 404.
    pub secret: String,
    /// The largest message taken, in bytes.
    pub max_bytes: usize,
    /// Replies taken from one member about one round in a day.
    pub replies_per_round_per_day: u32,
    /// The envelope sender of every email, with `{key}` where the email's
    /// own key goes, so bounces name it; empty: the From address.
    pub bounce_address: String,
}

/// The longest a reply address's local part may be (RFC 5321), with the
/// key in it.
const MAX_LOCAL_PART: usize = 64;
const MIN_INBOUND_SECRET_LEN: usize = 16;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CirclesConfig {
    pub default_time_zone: String,
    pub invite_link_days: u32,
}

/// What one client, one person or the whole instance may ask for, so that
/// nobody can use the server to mail strangers (README: limits).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub sign_in_per_client_per_hour: u32,
    pub join_per_client_per_hour: u32,
    pub invites_per_client_per_hour: u32,
    pub links_per_client_per_minute: u32,
    pub circles_per_person_per_day: u32,
    pub new_addresses_per_hour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

/// A configuration problem, naming the key so the operator knows where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where to read configuration from; `from_env` is what the binary uses.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub config_dir: PathBuf,
    pub environment: String,
    pub extra_file: Option<PathBuf>,
    pub read_env_vars: bool,
}

impl ConfigSources {
    pub fn from_env(extra_file: Option<PathBuf>) -> Self {
        ConfigSources {
            config_dir: PathBuf::from("config"),
            environment: std::env::var("SHOULDER_ENV")
                .unwrap_or_else(|_| DEFAULT_ENVIRONMENT.to_string()),
            extra_file,
            read_env_vars: true,
        }
    }
}

impl Config {
    /// Reads every layer and validates the result.
    pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
        let env = sources.environment.as_str();
        if !env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || env.is_empty()
        {
            return Err(ConfigError::new(
                "SHOULDER_ENV",
                format!("{env:?} is not a valid environment name"),
            ));
        }
        let defaults = Toml::string(DEFAULTS)
            .data()
            .map_err(from_figment)?
            .remove(&Profile::Default)
            .unwrap_or_default();
        let mut layers = Layers {
            figment: Figment::new(),
            defaults: &defaults,
            read_from_files: BTreeMap::new(),
        };
        layers.merge(Toml::string(DEFAULTS))?;
        layers.merge(Toml::file(sources.config_dir.join("default.toml")))?;
        layers.merge(Toml::file(sources.config_dir.join(format!("{env}.toml"))))?;
        if let Some(extra) = &sources.extra_file {
            if !extra.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", extra.display()),
                ));
            }
            layers.merge(Toml::file(extra))?;
        }
        if sources.read_env_vars {
            // Only `SECTION__KEY` variables are configuration; SHOULDER_ENV and
            // the test switches share the prefix but are not keys.
            layers.merge(
                Env::prefixed("SHOULDER_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            )?;
        }
        let mut config: Config = layers.figment.extract().map_err(from_figment)?;
        config.environment = env.to_string();
        config.read_from_files = layers.read_from_files;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that serde's types cannot: addresses, URLs, zones, sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.bind.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new("server.bind", "expected an address like 127.0.0.1:3000")
        })?;
        let public = Url::parse(&self.server.public_url)
            .map_err(|e| ConfigError::new("server.public_url", format!("not a valid URL ({e})")))?;
        if !matches!(public.scheme(), "http" | "https") || public.host_str().is_none() {
            return Err(ConfigError::new(
                "server.public_url",
                "expected an http:// or https:// URL with a host",
            ));
        }
        if public.query().is_some() || public.fragment().is_some() {
            return Err(ConfigError::new(
                "server.public_url",
                "must not have a query or a fragment",
            ));
        }
        if !(1..=MAX_HEADER_READ_TIMEOUT_SECS).contains(&self.server.header_read_timeout_secs) {
            return Err(ConfigError::new(
                "server.header_read_timeout_secs",
                format!("must be between 1 and {MAX_HEADER_READ_TIMEOUT_SECS}"),
            ));
        }
        if self.server.max_connections_per_client == 0 {
            return Err(ConfigError::new(
                "server.max_connections_per_client",
                "must be at least 1",
            ));
        }
        for proxy in &self.server.trusted_proxies {
            parse_network(proxy).map_err(|reason| {
                ConfigError::new("server.trusted_proxies", format!("{proxy:?}: {reason}"))
            })?;
        }
        let limits = &self.limits;
        for (key, value) in [
            (
                "limits.sign_in_per_client_per_hour",
                limits.sign_in_per_client_per_hour,
            ),
            (
                "limits.join_per_client_per_hour",
                limits.join_per_client_per_hour,
            ),
            (
                "limits.invites_per_client_per_hour",
                limits.invites_per_client_per_hour,
            ),
            (
                "limits.links_per_client_per_minute",
                limits.links_per_client_per_minute,
            ),
            (
                "limits.circles_per_person_per_day",
                limits.circles_per_person_per_day,
            ),
            (
                "limits.new_addresses_per_hour",
                limits.new_addresses_per_hour,
            ),
        ] {
            if !(1..=MAX_LIMIT).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "server.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if let Some(addr) = self.metrics_addr() {
            let addr = addr.map_err(|_| {
                ConfigError::new(
                    "server.metrics_bind",
                    "expected empty (serve /metrics on server.bind) or an address like 127.0.0.1:9100",
                )
            })?;
            // Port 0 picks a free port, so two of them never collide.
            if addr.port() != 0 && addr == self.bind_addr() {
                return Err(ConfigError::new(
                    "server.metrics_bind",
                    "must differ from server.bind (leave it empty to serve /metrics there)",
                ));
            }
        }
        let token = &self.server.metrics_token;
        if !token.is_empty() {
            if token.len() < MIN_METRICS_TOKEN_LEN {
                return Err(ConfigError::new(
                    "server.metrics_token",
                    format!("must be at least {MIN_METRICS_TOKEN_LEN} characters long"),
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new(
                    "server.metrics_token",
                    "may hold only printable ASCII characters, without spaces",
                ));
            }
        }

        self.validate_inbound()?;

        DatabaseUrl::parse(&self.database.url)
            .map_err(|reason| ConfigError::new("database.url", reason))?;
        if !(1..=MAX_POOL_SIZE).contains(&self.database.pool_size) {
            return Err(ConfigError::new(
                "database.pool_size",
                format!("must be between 1 and {MAX_POOL_SIZE}"),
            ));
        }

        crate::mail::parse_from(&self.mail.from)
            .map_err(|reason| ConfigError::new("mail.from", reason))?;
        if self.mail.file_dir.trim().is_empty() {
            return Err(ConfigError::new("mail.file_dir", "must not be empty"));
        }
        if self.mail.transport == MailTransportKind::Smtp || !self.mail.smtp_url.is_empty() {
            validate_smtp_url(&self.mail.smtp_url)
                .map_err(|reason| ConfigError::new("mail.smtp_url", reason))?;
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.mail.smtp_pool_size) {
            return Err(ConfigError::new(
                "mail.smtp_pool_size",
                format!("must be between 1 and {MAX_POOL_SIZE}"),
            ));
        }
        if self.mail.send_timeout_secs == 0 {
            return Err(ConfigError::new(
                "mail.send_timeout_secs",
                "must be at least 1",
            ));
        }
        if !(1..=MAX_RETRY_FOR_HOURS).contains(&self.mail.retry_for_hours) {
            return Err(ConfigError::new(
                "mail.retry_for_hours",
                format!("must be between 1 and {MAX_RETRY_FOR_HOURS}"),
            ));
        }
        if !(1..=MAX_LEASE_SECS).contains(&self.mail.lease_secs) {
            return Err(ConfigError::new(
                "mail.lease_secs",
                format!("must be between 1 and {MAX_LEASE_SECS}"),
            ));
        }
        // A send that starts while the lease holds must end, by our own
        // timeout, before the lease runs out, or another worker may take the
        // email over mid-send and send it a second time.
        if self.mail.lease_secs <= self.mail.send_timeout_secs {
            return Err(ConfigError::new(
                "mail.lease_secs",
                format!(
                    "must be longer than mail.send_timeout_secs ({})",
                    self.mail.send_timeout_secs
                ),
            ));
        }
        if !(1..=MAX_MAIL_BATCH_SIZE).contains(&self.mail.batch_size) {
            return Err(ConfigError::new(
                "mail.batch_size",
                format!("must be between 1 and {MAX_MAIL_BATCH_SIZE}"),
            ));
        }
        self.validate_dkim()?;

        if !(1..=86_400).contains(&self.scheduler.interval_secs) {
            return Err(ConfigError::new(
                "scheduler.interval_secs",
                "must be between 1 and 86400",
            ));
        }

        if self.scheduler.catch_up_grace_minutes > 7 * 24 * 60 {
            return Err(ConfigError::new(
                "scheduler.catch_up_grace_minutes",
                "must be at most 10080 (a week)",
            ));
        }
        if !(1..=100_000).contains(&self.scheduler.batch_size) {
            return Err(ConfigError::new(
                "scheduler.batch_size",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=24 * 28).contains(&self.rounds.reminder_before_close_hours) {
            return Err(ConfigError::new(
                "rounds.reminder_before_close_hours",
                "must be between 1 and 672",
            ));
        }
        if self.rounds.prompts_dir.trim().is_empty() {
            return Err(ConfigError::new(
                "rounds.prompts_dir",
                "must not be empty (the folder of prompt decks, e.g. templates/prompts)",
            ));
        }

        self.circles
            .default_time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                ConfigError::new(
                    "circles.default_time_zone",
                    format!(
                        "{:?} is not an IANA time zone name (e.g. America/Toronto)",
                        self.circles.default_time_zone
                    ),
                )
            })?;
        if !(1..=MAX_INVITE_LINK_DAYS).contains(&self.circles.invite_link_days) {
            return Err(ConfigError::new(
                "circles.invite_link_days",
                format!("must be between 1 and {MAX_INVITE_LINK_DAYS}"),
            ));
        }

        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| ConfigError::new("log.filter", e.to_string()))?;
        Ok(())
    }

    /// The three DKIM keys go together; the key file itself is read when
    /// the mailer is built (and by `check-config`).
    fn validate_dkim(&self) -> Result<(), ConfigError> {
        let mail = &self.mail;
        let keys = [
            ("mail.dkim_domain", &mail.dkim_domain),
            ("mail.dkim_selector", &mail.dkim_selector),
            ("mail.dkim_private_key_file", &mail.dkim_private_key_file),
        ];
        if keys.iter().all(|(_, value)| value.is_empty()) {
            return Ok(());
        }
        if let Some((key, _)) = keys.iter().find(|(_, value)| value.trim().is_empty()) {
            return Err(ConfigError::new(
                key,
                "must be set: DKIM signing needs mail.dkim_domain, mail.dkim_selector and \
                 mail.dkim_private_key_file together (or none of them)",
            ));
        }
        crate::mail::dkim::check_dns_name(&mail.dkim_domain)
            .map_err(|reason| ConfigError::new("mail.dkim_domain", reason))?;
        crate::mail::dkim::check_dns_name(&mail.dkim_selector)
            .map_err(|reason| ConfigError::new("mail.dkim_selector", reason))?;
        Ok(())
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // validate() has parsed it already; fall back to the documented default.
        self.server
            .bind
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 3000)))
    }

    /// Where `/metrics` has a listener of its own: `None` when it is served
    /// on `server.bind`.
    pub fn metrics_addr(&self) -> Option<Result<SocketAddr, std::net::AddrParseError>> {
        let raw = self.server.metrics_bind.trim();
        (!raw.is_empty()).then(|| raw.parse())
    }

    /// `server.trusted_proxies`, parsed (validate() has checked each).
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|proxy| parse_network(proxy).ok())
            .collect()
    }

    pub fn public_url_is_https(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        Url::parse(&self.server.public_url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The public URL without a trailing slash, ready for `format!("{base}/path")`.
    pub fn public_base(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }

    /// Whether `/dev/mail` shows what the `file` or `memory` transport kept.
    /// Those messages hold live sign-in links, so the mailbox is served only
    /// where strangers cannot reach it: on a server listening on loopback,
    /// or one run for development or tests.
    pub fn serves_dev_mailbox(&self) -> bool {
        self.mail.transport != MailTransportKind::Smtp
            && (self.bind_addr().ip().is_loopback()
                || matches!(self.environment.as_str(), "development" | "test"))
    }

    /// Settings that are valid one by one but unsafe together: `serve` logs
    /// them at start and `check-config` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let public_host = Url::parse(&self.server.public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        let public_is_local = public_host == "localhost"
            || public_host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if self.bind_addr().ip().is_loopback()
            && !public_is_local
            && self.server.trusted_proxies.is_empty()
        {
            warnings.push(format!(
                "server.bind is on loopback and people reach {public_host}, so a reverse proxy seems \
                 to be in front: list it in server.trusted_proxies, or every client shares its limits"
            ));
        }
        if self.mail.transport != MailTransportKind::Smtp {
            let transport = match self.mail.transport {
                MailTransportKind::File => "file",
                _ => "memory",
            };
            let bind = &self.server.bind;
            let env = &self.environment;
            if self.serves_dev_mailbox() && !self.bind_addr().ip().is_loopback() {
                warnings.push(format!(
                    "mail.transport = \"{transport}\": /dev/mail shows every email, sign-in links included, \
                     to anyone who reaches {bind} (SHOULDER_ENV={env}); bind to 127.0.0.1 or send through smtp"
                ));
            } else if !self.serves_dev_mailbox() {
                warnings.push(format!(
                    "mail.transport = \"{transport}\": no email leaves this server, and /dev/mail is not \
                     served because it listens on {bind} with SHOULDER_ENV={env}; send through smtp"
                ));
            }
        }
        warnings
    }

    pub fn mail_file_dir(&self) -> &Path {
        Path::new(&self.mail.file_dir)
    }

    /// The effective configuration as TOML with no secret in it: a value read
    /// from a file shows the file instead, keys named like secrets show
    /// `***`, and URLs lose their passwords.
    pub fn redacted_toml(&self) -> String {
        let mut shown = match toml::Value::try_from(self) {
            Ok(shown) => shown,
            Err(e) => return format!("# cannot print: {e}\n"),
        };
        if let toml::Value::Table(sections) = &mut shown {
            for (section, keys) in sections.iter_mut() {
                let toml::Value::Table(keys) = keys else {
                    continue;
                };
                for (key, value) in keys.iter_mut() {
                    let full = format!("{section}.{key}");
                    if let Some(file) = self.read_from_files.get(&full) {
                        *value = toml::Value::String(format!("(read from {})", file.display()));
                    } else if let toml::Value::String(text) = value {
                        *text = if is_secret_name(key) && !text.is_empty() {
                            HIDDEN.to_string()
                        } else {
                            redact_url_password(text)
                        };
                    }
                }
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

/// An address, taken as a network of one, or a network in CIDR notation.
fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Ok(IpNet::from(address));
    }
    raw.parse::<IpNet>()
        .map(|network| network.trunc())
        .map_err(|_| "expected an address like 10.0.0.5 or a network like 10.0.0.0/8".into())
}

impl Config {
    fn validate_inbound(&self) -> Result<(), ConfigError> {
        let inbound = &self.inbound;
        check_key_address("inbound.reply_address", &inbound.reply_address)?;
        check_key_address("inbound.bounce_address", &inbound.bounce_address)?;
        let secret = &inbound.secret;
        if !secret.is_empty()
            && (secret.len() < MIN_INBOUND_SECRET_LEN
                || !secret.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::new(
                "inbound.secret",
                format!(
                    "must be at least {MIN_INBOUND_SECRET_LEN} printable ASCII characters, without spaces"
                ),
            ));
        }
        if !(1024..=25 * 1024 * 1024).contains(&inbound.max_bytes) {
            return Err(ConfigError::new(
                "inbound.max_bytes",
                "must be between 1024 and 26214400 (25 MB)",
            ));
        }
        if !(1..=1000).contains(&inbound.replies_per_round_per_day) {
            return Err(ConfigError::new(
                "inbound.replies_per_round_per_day",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }
}

/// An address with `{key}` in its local part, as `inbound.reply_address`
/// and `inbound.bounce_address` are; empty is allowed (off).
fn check_key_address(key: &str, address: &str) -> Result<(), ConfigError> {
    if address.is_empty() {
        return Ok(());
    }
    let wrong = |reason: &str| Err(ConfigError::new(key, reason));
    if address.matches("{key}").count() != 1 {
        return wrong("must hold {key} once, where each email's key goes");
    }
    if !address
        .rsplit_once('@')
        .is_some_and(|(local, _)| local.contains("{key}"))
    {
        return wrong("must hold {key} before the @, as in reply+{key}@circles.example.org");
    }
    // The longest key put there: an email's own ("d-" and an ordered key).
    let example = address.replace("{key}", &"0".repeat(crate::auth::Token::ORDERED_LEN + 2));
    let local = example.rsplit_once('@').map_or("", |(local, _)| local);
    if local.len() > MAX_LOCAL_PART {
        return wrong("is too long: with a key in it, the part before the @ passes 64 characters");
    }
    if crate::mail::EmailAddress::parse(&example).is_err() {
        return wrong("must be an address, such as reply+{key}@circles.example.org");
    }
    Ok(())
}

fn is_secret_name(key: &str) -> bool {
    SECRET_NAME_ENDINGS.iter().any(|end| key.ends_with(end))
}

/// The layers of configuration as they are merged, each with its `<key>_file`
/// entries replaced by the files' contents first. Doing it layer by layer
/// keeps the usual order: a later layer's `<key>` or `<key>_file` wins over
/// an earlier one's, and only one layer giving both is a conflict.
struct Layers<'a> {
    figment: Figment,
    /// The compiled defaults, which say which keys are text.
    defaults: &'a Dict,
    read_from_files: BTreeMap<String, PathBuf>,
}

impl Layers<'_> {
    fn merge<P: Provider>(&mut self, layer: P) -> Result<(), ConfigError> {
        let metadata = layer.metadata();
        let Ok(mut data) = layer.data() else {
            // A file that does not parse: figment reports it, naming the file,
            // when the configuration is extracted.
            self.figment = std::mem::take(&mut self.figment).merge(layer);
            return Ok(());
        };
        for dict in data.values_mut() {
            self.read_files(dict, &mut Vec::new(), Some(self.defaults), &metadata)?;
        }
        self.figment = std::mem::take(&mut self.figment).merge(FilesRead { metadata, data });
        Ok(())
    }

    fn read_files(
        &mut self,
        dict: &mut Dict,
        path: &mut Vec<String>,
        defaults: Option<&Dict>,
        layer: &Metadata,
    ) -> Result<(), ConfigError> {
        let keys: Vec<String> = dict.keys().cloned().collect();
        for key in keys {
            let default = defaults.and_then(|d| d.get(&key));
            if let Some(Value::Dict(_, inner)) = dict.get_mut(&key) {
                path.push(key);
                let inner_defaults = match default {
                    Some(Value::Dict(_, d)) => Some(d),
                    _ => None,
                };
                self.read_files(inner, path, inner_defaults, layer)?;
                path.pop();
                continue;
            }
            let Some(base) = file_form_of(path, &key) else {
                // Set here directly, so no longer from a file of an earlier layer.
                self.read_from_files.remove(&dotted(path, &key));
                continue;
            };
            let base_default = defaults.and_then(|d| d.get(base));
            let name = dotted(path, &key);
            let base_name = dotted(path, base);
            if dict.contains_key(base) {
                return Err(ConfigError::new(
                    &base_name,
                    format!(
                        "given both as {base_name} and as {name} (in {}); keep one",
                        layer.name
                    ),
                ));
            }
            let Some(Value::String(_, file)) = dict.remove(&key) else {
                return Err(ConfigError::new(&name, "expected the path of a file"));
            };
            let file = PathBuf::from(file);
            let content = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::new(&name, format!("cannot read {}: {e}", file.display()))
            })?;
            let content = content.strip_suffix('\n').unwrap_or(&content);
            let content = content.strip_suffix('\r').unwrap_or(content);
            // Text stays text, even a secret of only digits; a number or a
            // switch reads as its environment variable would.
            let value = match base_default {
                None | Some(Value::String(..)) => Value::from(content.to_string()),
                Some(_) => content.parse().unwrap_or_else(|never| match never {}),
            };
            dict.insert(base.to_string(), value);
            self.read_from_files.insert(base_name, file);
        }
        Ok(())
    }
}

/// `section.key`, as keys are named to the operator.
fn dotted(path: &[String], key: &str) -> String {
    path.iter()
        .map(String::as_str)
        .chain([key])
        .collect::<Vec<_>>()
        .join(".")
}

/// The key that `key` gives from a file, if it is `<a key>_file` and not a
/// key of its own (as a path setting may be).
fn file_form_of<'k>(path: &[String], key: &'k str) -> Option<&'k str> {
    let base = key.strip_suffix(FILE_SUFFIX).filter(|b| !b.is_empty())?;
    let accepted = accepted_keys(path);
    (accepted.contains(&base) && !accepted.contains(&key)).then_some(base)
}

/// The keys the section at `path` accepts. serde lists them when it refuses
/// one it does not know, so asking with a name no key has is how to learn
/// them, and keys added later are covered without a list kept by hand.
fn accepted_keys(path: &[String]) -> &'static [&'static str] {
    const NO_KEY: &str = "\u{0}";
    let probe = path.iter().rev().fold(
        Value::from(Dict::from([(NO_KEY.to_string(), Value::from(0))])),
        |inner, key| Value::from(Dict::from([(key.clone(), inner)])),
    );
    match Figment::from(Serialized::defaults(probe)).extract::<Config>() {
        Err(error) => match error.kind {
            figment::error::Kind::UnknownField(_, expected) => expected,
            _ => &[],
        },
        Ok(_) => &[],
    }
}

/// One layer's settings once its files are read, under the layer's name.
struct FilesRead {
    metadata: Metadata,
    data: Map<Profile, Dict>,
}

impl Provider for FilesRead {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(self.data.clone())
    }
}

fn validate_smtp_url(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("must be set when mail.transport is \"smtp\"".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err("expected smtp://host:port or smtps://host:port".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "required" | "opportunistic") => {}
            ("tls", other) => {
                return Err(format!(
                    "tls={other} is not one of required, opportunistic (leave it out for plain SMTP)"
                ));
            }
            (other, _) => return Err(format!("unknown query parameter {other:?}")),
        }
    }
    Ok(())
}

/// Hides the passwords of a URL: the one before the host
/// (`postgres://user:***@host/db`) and any in its query, where libpq also
/// takes one (`?password=...`, `?sslpassword=...`).
pub fn redact_url_password(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return raw.to_string();
    };
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
        changed = true;
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if pairs.iter().any(|(name, _)| is_secret_name(name)) {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs.iter().map(|(name, value)| {
                let shown = if is_secret_name(name) {
                    HIDDEN
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            }));
        changed = true;
    }
    if changed {
        url.to_string()
    } else {
        raw.to_string()
    }
}

fn from_figment(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let key = error.path.join(".");
    let reason = match &error.kind {
        // figment's path already ends with the offending field's name.
        Kind::UnknownField(field, _) => {
            let full = if key.is_empty() { field.clone() } else { key };
            return ConfigError::new(&full, "unknown key");
        }
        Kind::MissingField(field) => {
            let full = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            return ConfigError::new(&full, "missing");
        }
        Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::InvalidValue(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::UnknownVariant(value, expected) => {
            format!("{value:?} is not one of {}", expected.join(", "))
        }
        Kind::Message(message) => message.clone(),
        other => other.to_string(),
    };
    let origin = error
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    ConfigError::new(&key, format!("{reason}{origin}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources_in(dir: &Path) -> ConfigSources {
        ConfigSources {
            config_dir: dir.to_path_buf(),
            environment: "development".into(),
            extra_file: None,
            read_env_vars: false,
        }
    }

    fn load_with(extra: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("extra.toml");
        std::fs::write(&file, extra).expect("write extra config");
        let mut sources = sources_in(dir.path());
        sources.extra_file = Some(file);
        Config::load(&sources)
    }

    #[test]
    fn compiled_defaults_are_valid() {
        let config = load_with("").expect("defaults load");
        assert_eq!(config.server.bind, "127.0.0.1:3000");
        assert_eq!(config.database.url, "data/shoulder.db");
        assert_eq!(config.mail.transport, MailTransportKind::File);
        assert_eq!(config.mail.file_dir, "data/mail");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = load_with("[server]\nbnd = \"x\"\n").expect_err("typo rejected");
        assert_eq!(error.key, "server.bnd");
        let error = load_with("[servr]\nbind = \"x\"\n").expect_err("typo rejected");
        assert_eq!(error.key, "servr");
    }

    #[test]
    fn a_proxy_in_front_without_trust_is_warned_about() {
        let behind =
            "[server]\nbind = \"127.0.0.1:3000\"\npublic_url = \"https://circles.example.org\"\n";
        let config = load_with(behind).expect("loads");
        assert!(
            config
                .warnings()
                .iter()
                .any(|w| w.contains("server.trusted_proxies")),
            "{:?}",
            config.warnings()
        );
        let trusted = format!("{behind}trusted_proxies = [\"127.0.0.1\"]\n");
        assert!(load_with(&trusted).expect("loads").warnings().is_empty());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let config =
            load_with("[server]\ntrusted_proxies = [\"10.0.0.5\", \"10.1.2.3/16\", \"::1\"]\n")
                .expect("loads");
        let shown: Vec<String> = config
            .trusted_proxies()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[server]\nbind = \"localhost\"", "server.bind"),
            ("[server]\npublic_url = \"ftp://x\"", "server.public_url"),
            ("[server]\nmetrics_bind = \"9100\"", "server.metrics_bind"),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]",
                "server.trusted_proxies",
            ),
            (
                "[server]\ntrusted_proxies = [\"proxy.internal\"]",
                "server.trusted_proxies",
            ),
            (
                "[server]\nheader_read_timeout_secs = 0",
                "server.header_read_timeout_secs",
            ),
            (
                "[server]\nmax_connections_per_client = 0",
                "server.max_connections_per_client",
            ),
            (
                "[server]\nbind = \"127.0.0.1:3000\"\nmetrics_bind = \"127.0.0.1:3000\"",
                "server.metrics_bind",
            ),
            (
                "[server]\nmetrics_token = \"short\"",
                "server.metrics_token",
            ),
            (
                "[server]\nmetrics_token = \"has a space inside it\"",
                "server.metrics_token",
            ),
            ("[database]\npool_size = 0", "database.pool_size"),
            ("[database]\nurl = \"mysql://x/y\"", "database.url"),
            ("[mail]\nfrom = \"not an address\"", "mail.from"),
            ("[mail]\ntransport = \"smtp\"", "mail.smtp_url"),
            ("[mail]\ntransport = \"pigeon\"", "mail.transport"),
            (
                "[mail]\nsmtp_url = \"smtp://h:25?tls=maybe\"",
                "mail.smtp_url",
            ),
            ("[mail]\nsmtp_url = \"http://h\"", "mail.smtp_url"),
            (
                "[circles]\ndefault_time_zone = \"Mars/Olympus\"",
                "circles.default_time_zone",
            ),
            ("[scheduler]\ninterval_secs = 0", "scheduler.interval_secs"),
            (
                "[scheduler]\ncatch_up_grace_minutes = 20000",
                "scheduler.catch_up_grace_minutes",
            ),
            ("[scheduler]\nbatch_size = 0", "scheduler.batch_size"),
            (
                "[rounds]\nreminder_before_close_hours = 0",
                "rounds.reminder_before_close_hours",
            ),
            ("[rounds]\nprompts_dir = \" \"", "rounds.prompts_dir"),
            ("[database]\npool_size = \"many\"", "database.pool_size"),
            ("[mail]\nretry_for_hours = 0", "mail.retry_for_hours"),
            ("[mail]\nretry_for_hours = 10000", "mail.retry_for_hours"),
            ("[mail]\nlease_secs = 0", "mail.lease_secs"),
            (
                "[mail]\nsend_timeout_secs = 30\nlease_secs = 30",
                "mail.lease_secs",
            ),
            ("[mail]\nbatch_size = 0", "mail.batch_size"),
            ("[mail]\nbatch_size = 20000", "mail.batch_size"),
            (
                "[circles]\ninvite_link_days = 0",
                "circles.invite_link_days",
            ),
            (
                "[circles]\ninvite_link_days = 91",
                "circles.invite_link_days",
            ),
            (
                "[mail]\ndkim_domain = \"example.org\"\ndkim_private_key_file = \"k.pem\"",
                "mail.dkim_selector",
            ),
            ("[mail]\ndkim_selector = \"s1\"", "mail.dkim_domain"),
            (
                "[mail]\ndkim_domain = \"example.org\"\ndkim_selector = \"s1\"",
                "mail.dkim_private_key_file",
            ),
            (
                "[mail]\ndkim_domain = \"exa mple.org\"\ndkim_selector = \"s1\"\n\
                 dkim_private_key_file = \"k.pem\"",
                "mail.dkim_domain",
            ),
            (
                "[mail]\ndkim_domain = \"example.org\"\ndkim_selector = \"s_1\"\n\
                 dkim_private_key_file = \"k.pem\"",
                "mail.dkim_selector",
            ),
        ];
        for (text, key) in cases {
            let error = load_with(text).expect_err(text);
            assert_eq!(error.key, key, "{text}: {error}");
        }
    }

    #[test]
    fn environment_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("staging.toml"),
            "[server]\nbind = \"0.0.0.0:8080\"\n",
        )
        .expect("write env file");
        let mut sources = sources_in(dir.path());
        sources.environment = "staging".into();
        let config = Config::load(&sources).expect("loads");
        assert_eq!(config.server.bind, "0.0.0.0:8080");
    }

    #[test]
    fn missing_extra_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sources = sources_in(dir.path());
        sources.extra_file = Some(dir.path().join("nope.toml"));
        let error = Config::load(&sources).expect_err("missing file");
        assert_eq!(error.key, "--config");
    }

    /// Writes `content` to a file named `name` in `dir` and returns its path
    /// as a TOML string.
    fn secret_file(dir: &Path, name: &str, content: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write secret");
        format!("{:?}", path.display().to_string())
    }

    #[test]
    fn any_key_may_be_read_from_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = secret_file(
            dir.path(),
            "smtp_url",
            "smtp://app:hunter2@mail.example.org:587?tls=required\n",
        );
        let pool = secret_file(dir.path(), "pool", "12\n");
        let templates = secret_file(dir.path(), "templates", "2024");
        let config = load_with(&format!(
            "[mail]\nsmtp_url_file = {smtp}\ntemplates_dir_file = {templates}\n\
             [database]\npool_size_file = {pool}\n"
        ))
        .expect("loads");
        assert_eq!(
            config.mail.smtp_url, "smtp://app:hunter2@mail.example.org:587?tls=required",
            "the content, its trailing newline trimmed"
        );
        assert_eq!(config.database.pool_size, 12, "a number reads as a number");
        assert_eq!(
            config.mail.templates_dir, "2024",
            "text of digits stays text"
        );
    }

    #[test]
    fn a_later_layer_wins_over_a_file_given_earlier() {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = secret_file(dir.path(), "smtp_url", "smtp://old.example.org:25");
        std::fs::write(
            dir.path().join("development.toml"),
            format!("[mail]\nsmtp_url_file = {smtp}\n"),
        )
        .expect("write env file");
        let extra = dir.path().join("extra.toml");
        std::fs::write(&extra, "[mail]\nsmtp_url = \"smtp://new.example.org:25\"\n")
            .expect("write extra");
        let mut sources = sources_in(dir.path());
        sources.extra_file = Some(extra);
        let config = Config::load(&sources).expect("loads");
        assert_eq!(config.mail.smtp_url, "smtp://new.example.org:25");
        assert!(
            config.redacted_toml().contains("smtp://new.example.org:25"),
            "no longer shown as read from a file"
        );
    }

    #[test]
    fn a_key_and_its_file_in_one_layer_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = secret_file(dir.path(), "smtp_url", "smtp://mail.example.org:25");
        let error = load_with(&format!(
            "[mail]\nsmtp_url = \"smtp://other.example.org:25\"\nsmtp_url_file = {smtp}\n"
        ))
        .expect_err("both forms");
        assert_eq!(error.key, "mail.smtp_url");
        assert!(
            error
                .reason
                .contains("both as mail.smtp_url and as mail.smtp_url_file"),
            "{error}"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_names_the_key_and_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("no-such-secret");
        let error = load_with(&format!(
            "[database]\nurl_file = {:?}\n",
            missing.display().to_string()
        ))
        .expect_err("missing file");
        assert_eq!(error.key, "database.url_file");
        assert!(
            error.reason.contains(&missing.display().to_string()),
            "{error}"
        );

        let error = load_with("[database]\nurl_file = 7\n").expect_err("not a path");
        assert_eq!(error.key, "database.url_file");

        // A name that is no key's file form stays an unknown key, and no
        // file is read for it.
        let error = load_with("[mail]\nnothing_file = \"/etc/shadow\"\n").expect_err("typo");
        assert_eq!(error.to_string(), "mail.nothing_file: unknown key");
    }

    #[test]
    fn values_read_from_files_are_never_shown() {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = secret_file(
            dir.path(),
            "smtp_url",
            "smtp://mail.example.org:25?tls=required",
        );
        let database = secret_file(
            dir.path(),
            "database_url",
            "postgres://db.example.org/shoulder",
        );
        let config = load_with(&format!(
            "[mail]\nsmtp_url_file = {smtp}\n[database]\nurl_file = {database}\n"
        ))
        .expect("loads");
        let shown = config.redacted_toml();
        assert!(!shown.contains("mail.example.org"), "{shown}");
        assert!(!shown.contains("db.example.org"), "{shown}");
        let file = dir.path().join("smtp_url");
        assert!(
            shown.contains(&format!("smtp_url = \"(read from {})\"", file.display())),
            "{shown}"
        );
    }

    #[test]
    fn passwords_in_a_database_urls_query_are_redacted() {
        let config = load_with(
            "[database]\nurl = \"postgres://db.example.org/shoulder?user=app&password=s3cret&sslpassword=k3y&sslmode=require\"\n",
        )
        .expect("loads");
        let shown = config.redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("k3y"), "{shown}");
        assert!(shown.contains("user=app"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
    }

    #[test]
    fn keys_named_like_secrets_are_hidden_whole() {
        for key in ["metrics_token", "password", "client_secret"] {
            assert!(is_secret_name(key), "{key}");
        }
        for key in ["url", "dkim_private_key_file", "from", "bind"] {
            assert!(!is_secret_name(key), "{key}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let config = load_with(
            "[mail]\nsmtp_url = \"smtp://user:hunter2@mail.example.org:587?tls=required\"\n\
             [database]\nurl = \"postgres://app:s3cret@db.example.org/shoulder\"\n",
        )
        .expect("loads");
        let shown = config.redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("smtp://user:***@mail.example.org:587"),
            "{shown}"
        );
    }

    #[test]
    fn the_metrics_token_is_redacted() {
        let config =
            load_with("[server]\nmetrics_token = \"s3cret-scrape-token-0123\"\n").expect("loads");
        let shown = config.redacted_toml();
        assert!(!shown.contains("s3cret-scrape"), "{shown}");
        assert!(shown.contains("metrics_token = \"***\""), "{shown}");
    }
}
