//! The `shoulder` command: parses arguments and hands over to the library.
//!
//! Exit codes: 0 done, 1 the work failed (an email was refused), 2 the
//! configuration or the environment stops us from starting.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use shoulder::app::{self, AppState};
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
}

enum Failure {
    /// The configuration or environment is wrong: exit 2.
    Setup(String),
    /// The command ran and what it tried failed: exit 1.
    Work(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&ConfigSources::from_env(cli.config.clone())) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "shoulder: configuration error: {}",
                one_line(&error.to_string())
            );
            return ExitCode::from(2);
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
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Setup(message)) => {
            eprintln!("shoulder: {}", one_line(&message));
            ExitCode::from(2)
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
    }
}

async fn serve(config: Config, migrate: bool) -> Result<(), Failure> {
    let addr = config.bind_addr();
    let migrate = migrate && config.database.migrate_on_start;
    // Bind first: an occupied port is the cheapest mistake to report.
    let listener = app::bind(addr).await.map_err(|e| Failure::Setup(e.0))?;
    let state = AppState::build(config, Clock::system(), migrate)
        .await
        .map_err(|e| Failure::Setup(e.0))?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        address = %addr,
        database = state.db.backend().name(),
        mail = state.mailer.transport_name(),
        "listening on http://{addr}"
    );
    app::serve(listener, state, app::shutdown_signal())
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
    print!("{}", config.redacted_toml());
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
