//! Imports of real-world report fixtures, malformed input, and properties that must hold
//! for any input.

mod ctrf;
mod detect;
mod junit;
mod nunit;
mod properties;
mod support;
mod trx;
mod xunit;
