//! The `shoulder` command: parses arguments and hands over to the library.
//!
//! Exit codes: 0 done, 1 the work failed (an email was refused), 2 the
//! configuration or the environment stops us from starting.

use std::io::IsTerminal;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use shoulder::app::{self, AppState};
use shoulder::circles::settings::SettingsForm;
use shoulder::cli;
use shoulder::clock::Clock;
use shoulder::config::{Config, ConfigSources, LogFormat};
use shoulder::mail::{EmailAddress, Mailer, OutgoingEmail};

#[derive(Parser)]
#[command(
    name = "shoulder",
    version,
    about = "Small circles shouldering each other up"
)]
struct Cli {
    /// An extra configuration file, read after config/<SHOULDER_ENV>.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the background jobs.
    Serve {
        /// Do not apply pending database migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration and print it, passwords hidden.
    CheckConfig,
    /// Send one test email through the configured transport.
    SendTestEmail {
        /// Where to send it.
        address: String,
    },
    /// Run one pass of the scheduler as if at the given instant, then send
    /// what is due, and print what happened.
    Tick {
        /// The instant, e.g. 2027-03-14T07:00:00Z.
        #[arg(long, value_parser = parse_instant)]
        at: chrono::DateTime<chrono::Utc>,
        /// Leave the emails queued instead of sending them.
        #[arg(long)]
        no_deliver: bool,
    },
    /// Take one email on stdin (or in FILE) that came back: a reply to a
    /// round email. For a mail server's pipe transport: exits 0 when the
    /// message was taken or dropped on purpose, 65 when it is no message,
    /// 67 when it is for no reply address of ours, 75 to try again later.
    Inbound {
        /// The message, instead of stdin.
        file: Option<PathBuf>,
    },
    /// Start a small demo circle whose first round opens at once.
    Demo,
    /// Start circles and bring people in, from the command line.
    Circle {
        #[command(subcommand)]
        command: CircleCommand,
    },
}

#[derive(Subcommand)]
enum CircleCommand {
    /// Start a circle and print its id and invite link.
    Create {
        #[arg(long)]
        name: String,
        /// The facilitator's email address; the person is created if new.
        #[arg(long)]
        facilitator: String,
        /// The facilitator's name, if they are new (default: the address's local part).
        #[arg(long)]
        facilitator_name: Option<String>,
        /// `weekly mon,thu 09:00`, `weekly mon 09:00 every 2`, `monthly 15 09:00`, or a cron expression.
        #[arg(long)]
        cadence: String,
        /// An IANA time zone, e.g. America/Toronto.
        #[arg(long)]
        time_zone: String,
        #[arg(long, default_value = "A small circle shouldering each other up.")]
        purpose: String,
        /// One agreement per line.
        #[arg(
            long,
            default_value = "We listen before we advise.\nWe keep what is shared here in the circle.\nAn honest \"not yet\" is always welcome."
        )]
        agreements: String,
        /// How long a round stays open, in hours.
        #[arg(long, default_value_t = 72)]
        round_hours: i32,
        /// Room for this many people (3 to 12).
        #[arg(long, default_value_t = 8)]
        size_cap: i32,
    },
    /// Make a new reusable invite link for a circle (the old one stops working) and print it.
    InviteLink {
        /// The circle's id.
        id: i64,
    },
    /// Add an existing group's members from a CSV file with columns email,name.
    ImportMembers {
        /// The circle's id.
        id: i64,
        /// The CSV file.
        file: PathBuf,
    },
}

/// How long a finished command waits for its database connections to close.
const CLOSE_CONNECTIONS_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

enum Failure {
    /// The configuration or environment is wrong: exit 2.
    Setup(String),
    /// The command ran and what it tried failed: exit 1.
    Work(String),
    /// `inbound`'s answer to the mail server, in its terms (sysexits).
    Mail(u8, String),
}

/// The exit codes mail servers read (sysexits.h).
const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_TEMPFAIL: u8 = 75;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A mail server bounces a reply on most exit codes; a configuration
    // that cannot be read is ours to fix, so it asks for the mail again.
    let setup_failed = if matches!(cli.command, Command::Inbound { .. }) {
        EX_TEMPFAIL
    } else {
        2
    };
    let config = match Config::load(&ConfigSources::from_env(cli.config.clone())) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "shoulder: configuration error: {}",
                one_line(&error.to_string())
            );
            return ExitCode::from(setup_failed);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shoulder: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(run(cli.command, config));
    // Every task ends with the runtime, and with them the database pools;
    // then the process waits for their connections to close, which may be
    // happening on the pools' own threads (shoulder::db::close_connections).
    drop(runtime);
    if !shoulder::db::close_connections(CLOSE_CONNECTIONS_LIMIT) {
        tracing::warn!("a database connection was still opening or closing at exit");
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Setup(message)) => {
            eprintln!("shoulder: {}", one_line(&message));
            ExitCode::from(setup_failed)
        }
        Err(Failure::Mail(code, message)) => {
            eprintln!("shoulder: {}", one_line(&message));
            ExitCode::from(code)
        }
        Err(Failure::Work(message)) => {
            eprintln!("shoulder: {}", one_line(&message));
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Serve { no_migrate } => serve(config, !no_migrate).await,
        Command::Migrate => migrate(config).await,
        Command::CheckConfig => check_config(config),
        Command::SendTestEmail { address } => send_test_email(config, &address).await,
        Command::Circle { command } => circle_command(command, config).await,
        Command::Tick { at, no_deliver } => tick(config, at, !no_deliver).await,
        Command::Inbound { file } => inbound(config, file).await,
        Command::Demo => demo(config).await,
    }
}

async fn inbound(config: Config, file: Option<PathBuf>) -> Result<(), Failure> {
    use shoulder::inbound::receive::{self, Received};
    let settings = receive::Settings::from_config(&config);
    // One byte more than is taken, to tell a message that is too big.
    let limit = u64::try_from(settings.max_bytes).unwrap_or(u64::MAX) + 1;
    let mut raw = Vec::new();
    let read = match &file {
        Some(path) => std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut raw)),
        None => std::io::stdin().lock().take(limit).read_to_end(&mut raw),
    };
    if let Err(error) = read {
        return Err(Failure::Mail(
            EX_TEMPFAIL,
            format!("cannot read the message: {error}"),
        ));
    }
    let state = AppState::build(config, Clock::system(), false)
        .await
        .map_err(|e| Failure::Mail(EX_TEMPFAIL, e.0))?;
    let now = state.clock.now().naive_utc();
    let received = state
        .db
        .run(move |conn| receive::receive(conn, &settings, &raw, now))
        .await
        .map_err(|e| Failure::Mail(EX_TEMPFAIL, format!("try again later: {e}")))?;
    println!("{}", received.as_str());
    match received {
        Received::Unreadable => Err(Failure::Mail(
            EX_DATAERR,
            "this is not an email message".into(),
        )),
        Received::TooBig => Err(Failure::Mail(EX_DATAERR, "the message is too big".into())),
        Received::Unknown => Err(Failure::Mail(
            EX_NOUSER,
            "no reply address or email of ours matches this message".into(),
        )),
        _ => Ok(()),
    }
}

fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 instant like 2027-03-14T07:00:00Z ({e})"))
}

async fn tick(
    config: Config,
    at: chrono::DateTime<chrono::Utc>,
    deliver: bool,
) -> Result<(), Failure> {
    let state = AppState::build(config, Clock::fixed(at), true)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let report = shoulder::jobs::run_with(&state, shoulder::jobs::PassOptions { deliver })
        .await
        .map_err(|e| Failure::Work(e.to_string()))?;
    let rounds = &report.rounds;
    let opened: Vec<String> = rounds
        .opened
        .iter()
        .map(|(circle, number)| format!("circle {circle} round {number}"))
        .collect();
    println!("at {}", at.to_rfc3339());
    println!(
        "opened {} round(s){}",
        opened.len(),
        if opened.is_empty() {
            String::new()
        } else {
            format!(": {}", opened.join(", "))
        }
    );
    println!("skipped {} missed round(s)", rounds.skipped);
    println!("paused {} circle(s)", rounds.paused.len());
    println!("reminded {} round(s)", rounds.reminded);
    println!("closed {} round(s)", rounds.closed);
    let delivery = &report.delivery;
    if deliver {
        println!(
            "sent {} email(s), {} to retry, {} failed",
            delivery.sent, delivery.retried, delivery.failed
        );
    } else {
        println!("emails left queued (--no-deliver)");
    }
    Ok(())
}

async fn demo(config: Config) -> Result<(), Failure> {
    let state = AppState::build(config, Clock::system(), true)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let text = cli::demo(&state).await.map_err(|failure| match failure {
        cli::CliError::Input(message) => Failure::Setup(message),
        cli::CliError::Failed(message) => Failure::Work(message),
    })?;
    let report = shoulder::jobs::run_once(&state)
        .await
        .map_err(|e| Failure::Work(e.to_string()))?;
    print!("{text}");
    println!(
        "opened {} round(s); {} check-in email(s) sent",
        report.rounds.opened.len(),
        report.delivery.sent
    );
    Ok(())
}

async fn circle_command(command: CircleCommand, config: Config) -> Result<(), Failure> {
    let state = AppState::build(config, Clock::system(), true)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let outcome = match command {
        CircleCommand::Create {
            name,
            facilitator,
            facilitator_name,
            cadence,
            time_zone,
            purpose,
            agreements,
            round_hours,
            size_cap,
        } => {
            let mut form = SettingsForm::new(&time_zone);
            form.name = name;
            form.purpose = purpose;
            form.agreements = agreements;
            form.set_cadence_text(&cadence);
            form.round_hours = round_hours.to_string();
            form.size_cap = size_cap.to_string();
            let request = cli::CreateCircle {
                form,
                facilitator,
                facilitator_name,
            };
            cli::create_circle(&state, request).await
        }
        CircleCommand::InviteLink { id } => cli::invite_link(&state, id).await,
        CircleCommand::ImportMembers { id, file } => cli::import_members(&state, id, &file).await,
    };
    // Deliver the emails this command queued before exiting.
    if outcome.is_ok()
        && let Err(error) = shoulder::jobs::run_once(&state).await
    {
        eprintln!("shoulder: emails are queued but could not be sent yet: {error}");
    }
    outcome
        .map(|report| print!("{report}"))
        .map_err(|failure| match failure {
            cli::CliError::Input(message) => Failure::Setup(message),
            cli::CliError::Failed(message) => Failure::Work(message),
        })
}

async fn serve(config: Config, migrate: bool) -> Result<(), Failure> {
    let addr = config.bind_addr();
    let migrate = migrate && config.database.migrate_on_start;
    // Bind first: an occupied port is the cheapest mistake to report.
    let listener = app::bind(addr).await.map_err(|e| Failure::Setup(e.0))?;
    let metrics_listener = app::bind_metrics(&config)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let state = AppState::build(config, Clock::system(), migrate)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let addr = listener.local_addr().unwrap_or(addr);
    for warning in state.config.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        address = %addr,
        database = state.db.backend().name(),
        mail = state.mailer.transport_name(),
        "listening on http://{addr}"
    );
    let listeners = app::Listeners {
        main: listener,
        metrics: metrics_listener,
    };
    app::serve(listeners, state, app::shutdown_signal())
        .await
        .map_err(|e| Failure::Work(format!("server stopped: {e}")))
}

async fn migrate(config: Config) -> Result<(), Failure> {
    let db = app::connect(&config)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let applied = db
        .migrate()
        .await
        .map_err(|e| Failure::Setup(e.to_string()))?;
    println!("applied {applied} migration(s); the database is up to date");
    Ok(())
}

fn check_config(config: Config) -> Result<(), Failure> {
    shoulder::mail::EmailTemplates::load(std::path::Path::new(&config.mail.templates_dir))
        .map_err(|e| Failure::Setup(format!("mail.templates_dir: {e}")))?;
    app::load_decks(&config).map_err(|e| Failure::Setup(e.0))?;
    // Reads and parses the key as the mailer will; only its path is shown.
    shoulder::mail::dkim::DkimSigner::from_config(&config.mail).map_err(Failure::Setup)?;
    print!("{}", config.redacted_toml());
    for warning in config.warnings() {
        eprintln!("shoulder: warning: {warning}");
    }
    eprintln!("shoulder: the configuration is valid");
    Ok(())
}

async fn send_test_email(config: Config, address: &str) -> Result<(), Failure> {
    let to =
        EmailAddress::parse(address).map_err(|e| Failure::Setup(format!("{address:?}: {e}")))?;
    let clock = Clock::system();
    let mailer = Mailer::from_config(&config, clock.clone()).map_err(Failure::Setup)?;
    let now = clock.now();
    let content = mailer
        .templates()
        .render(
            "test",
            &json!({
                "public_url": config.server.public_url,
                "sent_at": now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            }),
        )
        .map_err(|e| Failure::Setup(e.to_string()))?;
    let email = OutgoingEmail {
        to: to.clone(),
        to_name: None,
        content,
        message_key: format!("test.{}", now.format("%Y%m%d%H%M%S%.6f")),
        headers: Vec::new(),
    };
    match mailer.send(&email).await {
        Ok(receipt) => {
            println!(
                "sent to {to} through {}: {} (Message-ID {})",
                mailer.transport_name(),
                receipt.response,
                receipt.message_id
            );
            Ok(())
        }
        Err(error) => Err(Failure::Work(format!(
            "could not send to {to} through {}: {error}",
            mailer.transport_name()
        ))),
    }
}

/// Errors from libraries (libpq's especially) span lines; an operator's
/// terminal or log gets one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
