//! Who someone is: tokens, sessions and passwordless sign-in.

pub mod session;
pub mod sign_in;
pub mod token;

pub use token::{Token, TokenHash};
