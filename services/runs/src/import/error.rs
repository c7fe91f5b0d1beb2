use std::fmt;
use std::io;

use super::ReportFormat;

/// Why an imported report was refused. Nothing of a refused report is kept, so every
/// variant says where to look: a line and column for syntax, a line and column or a
/// JSON path for content that breaks the rules.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the report: {0}")]
    Read(#[source] io::Error),
    #[error("malformed {format} at {at}: {reason}")]
    Malformed {
        format: ReportFormat,
        at: Location,
        reason: String,
    },
    #[error("invalid {format} report at {at}: {reason}")]
    Invalid {
        format: ReportFormat,
        at: Location,
        reason: String,
    },
    #[error("the {format} report is larger than the {limit} bytes accepted")]
    TooLarge { format: ReportFormat, limit: u64 },
    /// What the file holds instead of a report, such as "XML whose root element is
    /// <html>".
    #[error("not a report format Verdict reads: found {0}; expected JUnit XML, NUnit 2 or 3 XML, xUnit.net v2 XML, TRX or CTRF JSON")]
    UnknownFormat(String),
}

/// A place in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// 1-based line, and 1-based column counted in bytes from the start of the line.
    Position { line: u64, column: u64 },
    /// A path into a JSON document, such as `results.tests[3].name`.
    Path(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Position { line, column } => write!(f, "line {line}, column {column}"),
            Location::Path(path) => f.write_str(path),
        }
    }
}
