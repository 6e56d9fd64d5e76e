//! The running application: its shared state, and starting and stopping the
//! HTTP server and the background jobs around it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::{DatabaseUrl, Db};
use crate::jobs;
use crate::mail::Mailer;
use crate::prompts::Decks;
use crate::web;
use crate::web::limits::ClientLimits;
use crate::web::metrics::Metrics;
use crate::web::server::ConnectionLimits;

/// What every handler and job shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub mailer: Arc<Mailer>,
    /// The prompt decks, loaded and checked at start; read-only afterwards.
    pub decks: Arc<Decks>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// The limits per client address (`web::limits`).
    pub limits: Arc<ClientLimits>,
    /// Wakes the background jobs early, e.g. when an email was just queued.
    pub jobs_waker: Arc<Notify>,
}

impl AppState {
    /// Asks the background jobs to run a pass now rather than at the next tick.
    pub fn wake_jobs(&self) {
        self.jobs_waker.notify_one();
    }
}

/// Why the server could not start, in one line an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

impl AppState {
    /// Loads the prompt decks, connects to the database and prepares the
    /// mailer; applies migrations when `migrate` is set.
    pub async fn build(
        config: Config,
        clock: Clock,
        migrate: bool,
    ) -> Result<AppState, StartError> {
        // Decks first: a broken deck file is the cheapest mistake to report,
        // and names its file and line.
        let decks = load_decks(&config)?;
        let db = connect(&config).await?;
        if migrate {
            let applied = db
                .migrate()
                .await
                .map_err(|e| StartError(format!("database {}: {e}", db_name(&config))))?;
            if applied > 0 {
                tracing::info!(applied, "database migrations applied");
            }
        }
        let mailer = Mailer::from_config(&config, clock.clone()).map_err(StartError)?;
        let limits = Arc::new(ClientLimits::from_config(&config));
        Ok(AppState {
            limits,
            config: Arc::new(config),
            db,
            mailer: Arc::new(mailer),
            decks: Arc::new(decks),
            clock,
            metrics: Arc::new(Metrics::new()),
            jobs_waker: Arc::default(),
        })
    }
}

/// Reads and checks every prompt deck in `rounds.prompts_dir`.
pub fn load_decks(config: &Config) -> Result<Decks, StartError> {
    let decks = Decks::load(std::path::Path::new(&config.rounds.prompts_dir))
        .map_err(|e| StartError(e.to_string()))?;
    tracing::debug!(decks = decks.len(), "prompt decks loaded");
    Ok(decks)
}

/// Opens the pool off the async runtime: the first connect may take a while.
pub async fn connect(config: &Config) -> Result<Db, StartError> {
    let url = DatabaseUrl::parse(&config.database.url)
        .map_err(|reason| StartError(format!("database.url: {reason}")))?;
    let pool_size = config.database.pool_size;
    let busy_timeout = config.database.busy_timeout_ms;
    tokio::task::spawn_blocking(move || Db::connect(&url, pool_size, busy_timeout))
        .await
        .map_err(|e| StartError(format!("database connection task failed: {e}")))?
        .map_err(StartError)
}

fn db_name(config: &Config) -> String {
    DatabaseUrl::parse(&config.database.url)
        .map(|u| u.display())
        .unwrap_or_default()
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    bind_for("server.bind", addr).await
}

/// The listener of `server.metrics_bind`, when it names one.
pub async fn bind_metrics(config: &Config) -> Result<Option<TcpListener>, StartError> {
    let Some(addr) = config.metrics_addr() else {
        return Ok(None);
    };
    let addr = addr.map_err(|e| StartError(format!("server.metrics_bind: {e}")))?;
    bind_for("server.metrics_bind", addr).await.map(Some)
}

async fn bind_for(key: &str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "the address is already in use".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        StartError(format!("{key}: cannot listen on {addr}: {why}"))
    })
}

/// Where the server listens: the main port, and the one `/metrics` has to
/// itself when `server.metrics_bind` is set.
#[derive(Debug)]
pub struct Listeners {
    pub main: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(main: TcpListener) -> Listeners {
        Listeners {
            main,
            metrics: None,
        }
    }
}

/// Serves HTTP and runs the background jobs until `shutdown` resolves, then
/// lets in-flight requests finish. `/metrics` goes to its own listener when
/// `server.metrics_bind` is set, bound here if the caller did not.
pub async fn serve(
    listeners: impl Into<Listeners>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Listeners { main, metrics } = listeners.into();
    let metrics = match metrics {
        Some(listener) => Some(listener),
        None => bind_metrics(&state.config)
            .await
            .map_err(|e| std::io::Error::other(e.0))?,
    };
    let (stop_jobs, stopped) = watch::channel(false);
    let jobs = state
        .config
        .scheduler
        .enabled
        .then(|| tokio::spawn(jobs::run_scheduler(state.clone(), stopped)));
    // The one shutdown signal stops the metrics listener with the main one.
    let (stop_metrics, mut metrics_stopped) = watch::channel(false);
    let limits = ConnectionLimits::from_config(&state.config);
    let metrics_server = match metrics {
        Some(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(address = %addr, "serving /metrics on http://{addr}/metrics");
            }
            let server = web::server::serve(
                listener,
                web::metrics::router(state.clone()),
                limits.clone(),
                async move {
                    let _ = metrics_stopped.wait_for(|stop| *stop).await;
                },
            );
            Some(tokio::spawn(server))
        }
        None => None,
    };
    let app = web::router(state);
    let outcome = web::server::serve(main, app, limits, async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
    })
    .await;
    let _ = stop_metrics.send(true);
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    let metrics_outcome = match metrics_server {
        Some(server) => server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
        None => Ok(()),
    };
    outcome.and(metrics_outcome)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
