//! Pages as maud functions: a shared layout, small components, and one
//! function per page taking what it shows rather than database rows.

pub mod account;
pub mod actions;
pub mod circles;
pub mod dev_mail;
pub mod errors;
pub mod health;
pub mod history;
pub mod home;
pub mod invites;
pub mod layout;
pub mod problems;
pub mod prompts;
pub mod rounds;
pub mod sign_in;
pub mod unsubscribe;
pub mod zones;
