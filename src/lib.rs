//! Shoulder: a self-hosted server that keeps small peer-accountability
//! circles going, on SQLite or PostgreSQL.
//!
//! Module map:
//! - [`config`]: typed configuration, its layers and validation.
//! - [`clock`]: the one source of "now"; tests fix it.
//! - [`db`]: the connection over both backends, the pool, migrations, `schema`.
//! - [`circles`]: circles and their cadence.
//! - [`auth`]: tokens, sessions and passwordless sign-in.
//! - [`text`]: people's words: what a name or a longer text may contain.
//! - [`rate_limit`]: request limits counted in the database.
//! - [`mail`]: addresses, email templates, and the transports that send.
//! - [`prompts`]: prompt decks, and which prompt a circle's next round asks.
//! - [`rounds`]: opening rounds on schedule, reminders, closing, digests.
//! - [`inbound`]: mail coming back: replies read and recorded.
//! - [`people`]: a person's own data: export and delete; a circle's export.
//! - [`jobs`]: the background scheduler and what it runs.
//! - [`web`]: router, middleware, thin handlers and maud views.
//! - [`cli`]: the operator's circle commands behind `shoulder circle`.
//! - [`app`]: the shared state, serving and shutting down.
//! - [`error`]: the error type at the HTTP edge.
//!
//! Rule of the house: `web` does not touch diesel; domain modules do not
//! touch axum.

pub mod app;
pub mod auth;
pub mod calendar;
pub mod circles;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod inbound;
pub mod jobs;
pub mod mail;
pub mod people;
pub mod prompts;
pub mod rate_limit;
pub mod rounds;

pub mod text;
pub mod web;
