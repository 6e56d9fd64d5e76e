//! Prompts: the shared question each round asks.
//!
//! Decks are data an operator can edit (`templates/prompts/<deck>.toml`),
//! loaded and checked once at start ([`deck`]). Each circle draws from one
//! deck plus prompts of its own, moving through them without repeating until
//! all are used ([`next`], which the round scheduler calls inside the
//! transaction that opens a round). A facilitator can choose the deck, pin
//! the next prompt and add the circle's own ([`circle`]).

pub mod circle;
pub mod deck;
pub mod next;

pub use deck::{Deck, DeckError, DeckSource, Decks, Prompt};
pub use next::{
    ChosenPrompt, OWN_PREFIX, PromptError, choose_for_each, choose_next, own_id, record_use,
    record_uses,
};
