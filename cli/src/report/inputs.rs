//! The reports to send: file names and glob patterns resolved to files, each file's
//! format told by its content, every file parsed (with the server's own readers) before
//! anything is sent, so that a malformed one stops the command with nothing uploaded.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use verdict_runs::import::{parse_report, ImportError, Location, ParsedReport};

use super::{Failure, Outcome};

/// One report file, parsed.
pub struct Report {
    pub path: PathBuf,
    pub parsed: ParsedReport,
}

/// Whether a command-line argument is a glob pattern rather than a file name.
pub fn is_pattern(argument: &str) -> bool {
    argument.contains(['*', '?', '['])
}

/// The files `arguments` name, in the order given (each pattern's matches sorted), each
/// once. A file that does not exist, or a pattern that matches none, is an error.
pub fn resolve(arguments: &[String]) -> Result<Vec<PathBuf>, Failure> {
    let mut files: Vec<PathBuf> = Vec::new();
    for argument in arguments {
        let matches = if is_pattern(argument) {
            let pattern = glob::glob(argument).map_err(|err| {
                Failure::input(format!("{argument}: not a valid glob pattern: {err}"))
            })?;
            let mut matches: Vec<PathBuf> = pattern
                .filter_map(Result::ok)
                .filter(|path| path.is_file())
                .collect();
            matches.sort();
            if matches.is_empty() {
                return Err(Failure::input(format!("{argument}: no file matches")));
            }
            matches
        } else {
            let path = PathBuf::from(argument);
            if !path.is_file() {
                return Err(Failure::input(format!("{argument}: no such file")));
            }
            vec![path]
        };
        for path in matches {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

fn unreadable(path: &Path, err: &std::io::Error) -> Failure {
    Failure::input(format!("{}: cannot read: {err}", path.display()))
}

/// Parses one report, blocking, its format told by its content as the server's import
/// tells it; a refusal names the file, and the line and column (or the JSON path) of
/// the problem, or what the file holds instead of a report.
pub fn parse(path: &Path) -> Result<Report, Failure> {
    let file = File::open(path).map_err(|err| unreadable(path, &err))?;
    let parsed =
        parse_report(BufReader::new(file)).map_err(|err| Failure::input(describe(path, &err)))?;
    Ok(Report {
        path: path.to_owned(),
        parsed,
    })
}

/// `file:line:column: what` (the form compilers use, which editors and CI logs link),
/// or `file: at <json path>: what`.
pub fn describe(path: &Path, error: &ImportError) -> String {
    let file = path.display();
    let (kind, format, at, reason) = match error {
        ImportError::Malformed { format, at, reason } => ("malformed", format, at, reason),
        ImportError::Invalid { format, at, reason } => ("invalid", format, at, reason),
        ImportError::Read(_) | ImportError::TooLarge { .. } | ImportError::UnknownFormat(_) => {
            return format!("{file}: {error}")
        }
    };
    match at {
        Location::Position { line, column } => {
            format!("{file}:{line}:{column}: {kind} {format}: {reason}")
        }
        Location::Path(json_path) => format!("{file}: {kind} {format} at {json_path}: {reason}"),
    }
}

/// Parses every report; the first refusal ends it.
pub async fn parse_all(files: Vec<PathBuf>) -> Outcome<Vec<Report>> {
    tokio::task::spawn_blocking(move || files.iter().map(|path| parse(path)).collect())
        .await
        .map_err(|err| Failure::internal(format!("parsing stopped: {err}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_told_from_file_names() {
        assert!(is_pattern("reports/*.xml"));
        assert!(is_pattern("report-?.xml"));
        assert!(is_pattern("report-[ab].xml"));
        assert!(!is_pattern("reports/junit.xml"));
    }

    #[test]
    fn formats_are_told_by_content_whatever_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let junit = write(
            "results.json",
            b"\xef\xbb\xbf\n  <?xml version=\"1.0\"?><testsuites><testcase name=\"a\"/></testsuites>",
        );
        let ctrf = write(
            "results.xml",
            b"\n{\"results\": {\"tests\": [{\"name\": \"b\", \"status\": \"passed\"}]}}",
        );
        let nunit = write(
            "TestResult.json",
            b"<test-run><test-case name=\"c\" result=\"Passed\"/></test-run>",
        );
        for (path, name) in [(junit, "a"), (ctrf, "b"), (nunit, "c")] {
            let report = parse(&path).unwrap_or_else(|err| panic!("{}", err.message));
            assert_eq!(report.parsed.results[0].name.as_str(), name);
        }
        let html = write("page.xml", b"<html/>");
        let message = parse(&html).err().unwrap().message;
        assert!(
            message.ends_with("page.xml: not a report format Verdict reads: found XML whose root element is <html>; expected JUnit XML, NUnit 2 or 3 XML, xUnit.net v2 XML, TRX or CTRF JSON"),
            "{message}"
        );
        let text = write("notes.txt", b"hello");
        assert!(parse(&text)
            .err()
            .unwrap()
            .message
            .contains("found neither XML nor JSON"));
        let empty = write("empty.xml", b"  \n");
        assert!(parse(&empty)
            .err()
            .unwrap()
            .message
            .contains("found an empty file"));
    }

    #[test]
    fn a_syntax_error_is_named_by_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.xml");
        std::fs::write(
            &path,
            "<testsuite>\n  <testcase name=\"a\">\n</testsuite>\n",
        )
        .unwrap();
        let message = parse(&path).err().unwrap().message;
        let expected = format!("{}:3:", path.display());
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains("malformed JUnit XML"), "{message}");
    }
}
