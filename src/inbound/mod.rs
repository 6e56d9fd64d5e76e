//! Mail coming back: replies to round emails, read and recorded as the
//! same check-in on the round page would be.
//!
//! - [`message`]: what a message says, read with mail-parser.
//! - [`trim`]: the member's own words, without the quoted email.
//! - [`reply`]: what those words ask for, line by line.

pub mod message;
pub mod reply;
pub mod trim;
