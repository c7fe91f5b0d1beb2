//! The runs service's operations, ingest messages and events, and the value types of
//! test results. The gateway validates result batches with these types before they are
//! accepted; the runs service parses them again when it applies them.

mod attempt;
mod attributes;
mod counts;
mod duration;
pub mod limits;
mod messages;
mod names;
mod result;
pub mod shards;
mod status;
mod test_key;
mod text;
pub mod triage;
mod wire;

pub use attempt::Attempt;
pub use attributes::{AttributeProblem, Attributes};
pub use counts::{Counts, CountsDelta};
pub use duration::DurationMs;
pub use messages::*;
pub use names::{InvalidValue, ResultId, SuiteName, TestName};
pub use result::{FieldError, NewResult, ResultBatchInput, ResultInput, ValidationErrors};
pub use shards::{RunShard, ShardCounts, ShardRef, ShardStatus};
pub use status::{ResultStatus, RunStatus, UnknownStatus};
pub use test_key::{InvalidTestKey, TestKey};
pub use text::{CappedText, CappedTextBuilder, TextField};
