//! Owns circles and their schedules: who meets, and when their rounds happen.

pub mod cadence;
pub mod health;
pub mod import;
pub mod invites;
pub mod settings;
pub mod store;
pub mod unsubscribe;
