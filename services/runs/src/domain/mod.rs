//! The runs service's domain: plain types and rules with no I/O. The value types that
//! travel on the bus (results, statuses, test keys, limits) live in
//! `verdict_contracts::runs`, since the gateway validates with them too; the counting
//! rules are the runs service's own.

mod counts;
mod finishing;
mod search;
mod signature;
mod trends;

pub use counts::{finished_status, FinishReason, OutcomeChange, Tally, TestOutcome};
pub use finishing::Finishing;
pub use search::{InvalidSearch, SearchText, MAX_SEARCH_BYTES, MAX_SEARCH_WORDS};
pub use signature::{is_signature_id, Signature};
pub use trends::{percentile, rank_page, Rank, TestRecord};
pub use verdict_contracts::runs::{
    limits, Attempt, AttributeProblem, Attributes, CappedText, CappedTextBuilder, Counts,
    CountsDelta, DurationMs, FieldError, InvalidTestKey, InvalidValue, NewResult, ResultBatchInput,
    ResultId, ResultInput, ResultStatus, RunStatus, SuiteName, TestKey, TestName, TextField,
    UnknownStatus, ValidationErrors,
};
