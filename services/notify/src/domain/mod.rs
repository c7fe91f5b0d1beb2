//! The notify service's domain: webhooks, where they may send, what deliveries carry,
//! how they are signed and when they are tried again.

pub mod destination;
pub mod payload;
pub mod retry;
pub mod signing;
pub mod webhooks;
