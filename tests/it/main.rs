//! Shoulder's integration tests: one binary, real parts (a SQLite file, a
//! PostgreSQL database, an SMTP server, the built `shoulder` binary).

mod support;

mod automatic_mail;
mod binds;
mod browser;
mod browser_pages;
mod browser_round;
mod calendar;
mod check_ins;
mod circles;
mod cli;
mod crashes;
mod deploy;
mod dev_mail;
mod dkim;
mod forms_sent_back;
mod health;
mod hearing;
mod history;
mod hostile;
mod http;
mod inbound;
mod invites;
mod jobs;
mod limits;
mod mail;
mod metrics;
mod outbox;
mod own_data;
mod own_time;
mod prompts;
mod properties;
mod resilience;
mod rounds;
mod scheduling;
mod schema;
mod shoulder;
mod sign_in;
mod smtp_nodelay;
mod unsubscribe;
mod wal;
