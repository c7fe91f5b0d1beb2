//! Every size and count limit on test results, in one place, so the API, the importers
//! and the documentation cannot drift apart.
//!
//! Identity fields (names, ids, attribute keys) are rejected beyond their limit: cutting
//! them would silently merge different tests. Free text (messages, traces, output) is
//! truncated instead, because a report should never be refused over a long log.

/// A test name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// A suite name, in bytes; the same as a test name since both make up the test key.
pub const MAX_SUITE_BYTES: usize = 1024;
/// A client-chosen result id, in bytes. UUIDs need 36.
pub const MAX_RESULT_ID_BYTES: usize = 128;

/// A failure or skip message, in bytes, before truncation.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// A stack trace, in bytes, before truncation.
pub const MAX_TRACE_BYTES: usize = 256 * 1024;
/// Captured stdout, and separately stderr, in bytes, before truncation.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// Attributes on one result (or properties on one imported test case).
pub const MAX_ATTRIBUTES: usize = 64;
/// An attribute key, in bytes.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 128;
/// An attribute value, in bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;
/// `attr.<key>=<value>` filters in one query of a project's runs; each one is a join,
/// and the bound keeps the query small for SQLite to plan (1 000 of them overflowed its
/// expression tree).
pub const MAX_ATTRIBUTE_FILTERS: usize = 16;

/// Results in one `POST /runs/{run}/results` batch.
pub const MAX_RESULTS_PER_BATCH: usize = 1000;
/// Field errors reported for one batch; the first ones are enough to fix the input, and
/// the bound keeps an error response small however broken the batch is.
pub const MAX_REPORTED_FIELD_ERRORS: usize = 100;

/// The highest attempt number of one test in one run (attempts start at 1).
pub const MAX_ATTEMPT: u32 = 100;
/// The longest duration a result may claim: one year. Anything longer is a clock bug, and
/// the bound keeps sums of durations far from overflowing a 64-bit integer.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// Element nesting in an imported XML report. Real reports nest five or six deep; the
/// bound keeps the parser's stack small on hostile input.
pub const MAX_XML_DEPTH: usize = 64;
/// One piece of XML markup (a start tag with its attributes, a comment, a declaration),
/// in bytes. Character data is streamed and truncated, but markup is read whole, so this
/// bounds the parser's buffer.
pub const MAX_XML_MARKUP_BYTES: usize = 4 * 1024 * 1024;
/// An imported CTRF document, in bytes. JSON strings are read whole, so the document as
/// a whole is capped.
pub const MAX_CTRF_BYTES: u64 = 64 * 1024 * 1024;
