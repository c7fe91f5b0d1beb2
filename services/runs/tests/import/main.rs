//! Imports of real-world report fixtures, malformed input, and properties that must hold
//! for any input.

mod ctrf;
mod junit;
mod properties;
mod support;
