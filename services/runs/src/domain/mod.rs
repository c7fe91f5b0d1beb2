//! The runs service's domain: plain types and rules with no I/O. Values are parsed into
//! these types at the boundary (API input, imported reports, database rows) and cannot
//! hold invalid values afterwards.

mod attributes;
mod counts;
mod duration;
pub mod limits;
mod names;
mod result;
mod status;
mod test_key;
mod text;

pub use attributes::{AttributeProblem, Attributes};
pub use counts::{Attempt, Counts, CountsDelta, FinishReason, OutcomeChange, TestOutcome};
pub use duration::DurationMs;
pub use names::{InvalidValue, ResultId, SuiteName, TestName};
pub use result::{FieldError, NewResult, ResultBatchInput, ResultInput, ValidationErrors};
pub use status::{ResultStatus, RunStatus, UnknownStatus};
pub use test_key::{InvalidTestKey, TestKey};
pub use text::{CappedText, CappedTextBuilder, TextField};
