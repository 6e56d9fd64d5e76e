//! Accepting connections. HTTP/1.1 through hyper, with two guards that a
//! server on the open internet needs and axum's own `serve` does not give:
//! a connection that has not sent a whole request head within
//! `server.header_read_timeout_secs` is closed (a client trickling one
//! header byte at a time would otherwise hold it for good), and one client
//! address holds at most `server.max_connections_per_client` connections
//! at once (more are closed as soon as they are accepted). Connections from
//! `server.trusted_proxies` carry many clients and are not capped.
//!
//! Every request carries its peer's address as `ConnectInfo`, from which
//! the limits per client tell who is asking.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::Config;

/// What each connection is held to.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub per_client: usize,
    pub trusted_proxies: Arc<[IpNet]>,
}

impl ConnectionLimits {
    pub fn from_config(config: &Config) -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
            per_client: config.server.max_connections_per_client as usize,
            trusted_proxies: config.trusted_proxies().into(),
        }
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|proxy| proxy.contains(&address))
    }
}

/// Open connections per client address; an address with none has no entry,
/// so the map is as large as the clients connected right now.
#[derive(Debug, Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; dropping it gives the place back.
struct Place {
    open: Arc<OpenConnections>,
    address: IpAddr,
}

impl OpenConnections {
    fn take(self: &Arc<Self>, address: IpAddr, limit: usize) -> Option<Place> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Place {
            open: Arc::clone(self),
            address,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    wait_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let place = if limits.is_trusted(peer.ip()) {
            None
        } else {
            match open.take(peer.ip(), limits.per_client) {
                Some(place) => Some(place),
                None => {
                    tracing::warn!(
                        client = %peer.ip(),
                        limit = limits.per_client,
                        "connection refused: too many open from one client"
                    );
                    continue;
                }
            }
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors about one connection (reset before it was accepted) pass; others,
/// such as running out of file descriptors, would repeat at once, so the
/// loop waits a moment before accepting again.
async fn wait_after_accept_error(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The peer of a request, as the server saw it.
pub fn peer_of<B>(request: &Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_address_and_given_back() {
        let open = Arc::new(OpenConnections::default());
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let first = open.take(a, 2).expect("a first place");
        let second = open.take(a, 2).expect("a second place");
        assert!(open.take(a, 2).is_none(), "a third is over the limit");
        assert!(open.take(b, 2).is_some(), "another address has its own");
        drop(first);
        let third = open.take(a, 2).expect("a place given back is free");
        drop((second, third));
        assert!(open.0.lock().expect("lock").is_empty(), "no entry is left");
    }
}
