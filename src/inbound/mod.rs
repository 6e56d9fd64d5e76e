//! Mail coming back: replies to round emails, read and recorded as the
//! same check-in on the round page would be.
//!
//! - [`message`]: what a message says, read with mail-parser.
//! - [`trim`]: the member's own words, without the quoted email.
//! - [`reply`]: what those words ask for, line by line.
//! - [`report`]: bounces and complaints about mail we sent.
//! - [`receive`]: the one pipeline every message goes through.
//! - [`compose`]: the reply a mail client would write, for the dev mailbox.

pub mod compose;
pub mod message;
pub mod receive;
pub mod reply;
pub mod report;
pub mod trim;
