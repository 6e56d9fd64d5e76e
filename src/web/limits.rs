//! Limits per client address on the doors strangers can knock at: asking
//! for a sign-in link, joining through an invitation, sending invitations,
//! one-click choices and unsubscribes. Each door has its own quota per
//! client, kept in memory by `governor` (each instance counts for itself;
//! the limits per address, person and instance that must hold across
//! instances live in the database, `crate::rate_limit`).
//!
//! Who the client is: the connection's peer, unless the peer is one of
//! `server.trusted_proxies`; then the nearest address in `X-Forwarded-For`
//! (or, without it, `Forwarded`) that is not itself a trusted proxy. From
//! anyone else those headers are ignored, so a client cannot pose as many.
//! IPv6 clients are counted by their /64, which one subscriber usually has
//! whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::metrics::ClosedLabel;
use crate::app::AppState;
use crate::config::Config;

/// How often (in checks) keys no longer limited are dropped, which keeps
/// the memory the limiters hold in proportion to recent clients.
const FORGET_EVERY: u64 = 1024;

/// A door with a limit per client, and the limits reached elsewhere, as
/// counted in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    SignIn,
    Join,
    Invite,
    Link,
    /// `limits.circles_per_person_per_day`.
    CirclesPerPerson,
    /// A sign-in or join email not sent: too many for one address.
    PerAddress,
    /// An email to a new address not sent: `limits.new_addresses_per_hour`.
    NewAddresses,
}

impl ClosedLabel for Limited {
    const NAME: &'static str = "limit";
    fn as_str(self) -> &'static str {
        match self {
            Limited::SignIn => "sign_in_per_client",
            Limited::Join => "join_per_client",
            Limited::Invite => "invites_per_client",
            Limited::Link => "links_per_client",
            Limited::CirclesPerPerson => "circles_per_person",
            Limited::PerAddress => "per_address",
            Limited::NewAddresses => "new_addresses",
        }
    }
}

/// A door with a limit per client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Door {
    SignIn,
    Join,
    Invite,
    Link,
}

impl From<Door> for Limited {
    fn from(door: Door) -> Limited {
        match door {
            Door::SignIn => Limited::SignIn,
            Door::Join => Limited::Join,
            Door::Invite => Limited::Invite,
            Door::Link => Limited::Link,
        }
    }
}

/// The doors' limiters.
#[derive(Debug)]
pub struct ClientLimits {
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    join: DefaultKeyedRateLimiter<IpAddr>,
    invite: DefaultKeyedRateLimiter<IpAddr>,
    link: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
    clock: DefaultClock,
}

fn quota(per: fn(NonZeroU32) -> Quota, count: u32) -> Quota {
    per(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN))
}

impl ClientLimits {
    pub fn from_config(config: &Config) -> Self {
        let limits = &config.limits;
        ClientLimits {
            sign_in: RateLimiter::keyed(quota(Quota::per_hour, limits.sign_in_per_client_per_hour)),
            join: RateLimiter::keyed(quota(Quota::per_hour, limits.join_per_client_per_hour)),
            invite: RateLimiter::keyed(quota(Quota::per_hour, limits.invites_per_client_per_hour)),
            link: RateLimiter::keyed(quota(Quota::per_minute, limits.links_per_client_per_minute)),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request through `door` from `client`: `Err` with how long
    /// to wait when it is over the limit.
    pub fn check(&self, door: Door, client: ClientAddress) -> Result<(), Duration> {
        let limiter = match door {
            Door::SignIn => &self.sign_in,
            Door::Join => &self.join,
            Door::Invite => &self.invite,
            Door::Link => &self.link,
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            for limiter in [&self.sign_in, &self.join, &self.invite, &self.link] {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        limiter
            .check_key(&client.0)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// How many clients the limiters remember.
    pub fn remembered(&self) -> usize {
        [&self.sign_in, &self.join, &self.invite, &self.link]
            .iter()
            .map(|limiter| limiter.len())
            .sum()
    }
}

/// Who is asking, as the limits count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The client behind `peer`, believing forwarding headers only from
    /// `trusted` proxies.
    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> ClientAddress {
        let is_trusted = |address: &IpAddr| trusted.iter().any(|proxy| proxy.contains(address));
        let mut client = peer;
        if is_trusted(&peer) {
            // Each proxy appends the address it was reached from, so the
            // list is read from its end; entries left of the first
            // untrusted one were written by the client and are not read.
            for hop in forwarded_hops(headers).iter().rev() {
                match hop {
                    Some(address) if is_trusted(address) => client = *address,
                    Some(address) => {
                        client = *address;
                        break;
                    }
                    None => break,
                }
            }
        }
        ClientAddress(counted_as(client))
    }
}

/// IPv4 as it is (an IPv4-mapped IPv6 address too); IPv6 by its /64.
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The hops a request came through, oldest first, from `X-Forwarded-For`,
/// or `Forwarded` when that is absent; `None` for a hop that names no
/// address (`unknown`, an obfuscated name).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|hop| hop.trim().to_string())
            .collect()
    };
    let forwarded_for = values(header::HeaderName::from_static("x-forwarded-for"));
    if !forwarded_for.is_empty() {
        return forwarded_for.iter().map(|hop| address_in(hop)).collect();
    }
    values(header::FORWARDED)
        .iter()
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| address_in(node.trim_matches('"')))
        })
        .collect()
}

/// An address, with or without a port, IPv6 with or without brackets.
fn address_in(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(inside, _)| inside.parse().ok())
        })
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
                peer.ip()
            });
        Ok(ClientAddress::of(
            peer,
            &parts.headers,
            &state.config.trusted_proxies(),
        ))
    }
}

/// A 429 answer: `page` (the form as typed, with the reason), and when to
/// come back.
pub fn too_many(wait: Duration, page: maud::Markup) -> Response {
    with_retry_after((StatusCode::TOO_MANY_REQUESTS, page).into_response(), wait)
}

/// `response` with `Retry-After` in whole seconds, at least one.
pub fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Counts one request through `door` from `client`; over the limit, the
/// refusal to answer with instead (for doors whose form has no text worth
/// keeping).
pub fn refusal_over_limit(state: &AppState, door: Door, client: ClientAddress) -> Option<Response> {
    let wait = wait_over_limit(state, door, client)?;
    Some(too_many(
        wait,
        super::views::errors::too_many(&in_words(wait)),
    ))
}

/// Counts one request through `door` from `client`; over the limit, how
/// long to wait, the refusal counted in `/metrics`.
pub fn wait_over_limit(state: &AppState, door: Door, client: ClientAddress) -> Option<Duration> {
    let wait = state.limits.check(door, client).err()?;
    state.metrics.record_limit_reached(door.into());
    Some(wait)
}

/// "in 3 minutes", for a refusal's message.
pub fn in_words(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60);
    match minutes {
        0 | 1 => "in a minute".to_string(),
        minutes if minutes < 120 => format!("in {minutes} minutes"),
        minutes => format!("in {} hours", minutes.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).expect("a value"));
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("a network");
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            ClientAddress::of(ip("203.0.113.9"), &spoofed, &[proxy]).0,
            ip("203.0.113.9"),
            "a client's own header is ignored"
        );
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            ClientAddress::of(ip("10.0.0.1"), &chain, &[proxy]).0,
            ip("198.51.100.7"),
            "the nearest untrusted hop, not what the client wrote first"
        );
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8:1:2::7]:4711\";proto=https")]);
        assert_eq!(
            ClientAddress::of(ip("10.0.0.1"), &forwarded, &[proxy]).0,
            ip("2001:db8:1:2::"),
            "IPv6 counted by its /64"
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            ClientAddress::of(ip("10.0.0.1"), &unknown, &[proxy]).0,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(in_words(Duration::from_secs(20)), "in a minute");
        assert_eq!(in_words(Duration::from_secs(61 * 5)), "in 6 minutes");
        assert_eq!(in_words(Duration::from_secs(3 * 3600)), "in 3 hours");
    }

    #[test]
    fn each_client_has_its_own_quota_and_is_forgotten_later() {
        let mut config = crate::config::Config::load(&crate::config::ConfigSources {
            config_dir: "no-such-folder".into(),
            environment: "test".into(),
            extra_file: None,
            read_env_vars: false,
        })
        .expect("the compiled defaults load");
        config.limits.sign_in_per_client_per_hour = 2;
        let limits = ClientLimits::from_config(&config);
        let (a, b) = (
            ClientAddress(ip("192.0.2.1")),
            ClientAddress(ip("192.0.2.2")),
        );
        assert!(limits.check(Door::SignIn, a).is_ok());
        assert!(limits.check(Door::SignIn, a).is_ok());
        let wait = limits
            .check(Door::SignIn, a)
            .expect_err("a third is too many");
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        assert!(limits.check(Door::SignIn, b).is_ok(), "b has its own");
        assert!(limits.check(Door::Join, a).is_ok(), "each door its own");
        assert_eq!(limits.remembered(), 3);
    }
}
