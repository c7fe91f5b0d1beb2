//! TAP 13 and 14 (testanything.org), and prove's verbose output of several files.
//!
//! Each top-level test point is a test: `ok` passed, `not ok` failed, `# SKIP` skipped,
//! `not ok ... # TODO` skipped (an expected failure does not fail the run, as TAP says),
//! `ok ... # TODO` passed. A subtest (indented lines) counts as its one parent point,
//! as prove counts it. A failed point's YAML block (`  ---` .. `  ...`) and the comment
//! lines after it become its message. prove's `t/file.t .. ` line names the suite of
//! the points after it.

use verdict_contracts::runs::limits::MAX_MESSAGE_BYTES;
use verdict_contracts::runs::ResultStatus;

use super::{append_bounded, Parser, TestOutcome};

/// The TAP reader's state.
pub struct Tap {
    /// Take every `ok` line as a test point; otherwise (the auto format) only those
    /// with a number, or any after a version or plan line started a TAP document.
    assume_tap: bool,
    document: Option<Document>,
    suite: Option<String>,
    /// A failed point, held for its diagnostics.
    pending: Option<TestOutcome>,
    in_yaml: bool,
}

/// Where a TAP document (one file's output) is.
#[derive(Default)]
struct Document {
    points: u64,
    planned: Option<u64>,
    /// A plan after the points, or as many points as planned: later points without a
    /// number 1 are not tests (prove's closing `ok` of a file, for one).
    done: bool,
}

struct Point<'a> {
    passed: bool,
    number: Option<u64>,
    description: &'a str,
    directive: Option<(Directive, &'a str)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Directive {
    Skip,
    Todo,
}

impl Tap {
    pub fn new(assume_tap: bool) -> Self {
        Tap {
            assume_tap,
            document: None,
            suite: None,
            pending: None,
            in_yaml: false,
        }
    }

    /// Sends the failed point held for diagnostics.
    pub fn flush(&mut self, finished: &mut Vec<TestOutcome>) {
        self.in_yaml = false;
        finished.extend(self.pending.take());
    }

    fn diagnostics(&mut self, text: &str) {
        if let Some(pending) = &mut self.pending {
            let message = pending.message.get_or_insert_with(String::new);
            append_bounded(message, text, MAX_MESSAGE_BYTES);
            append_bounded(message, "\n", MAX_MESSAGE_BYTES);
        }
    }

    fn point(&mut self, point: Point<'_>, finished: &mut Vec<TestOutcome>) {
        let starts_anew = point.number == Some(1)
            && self
                .document
                .as_ref()
                .is_some_and(|document| document.points > 0);
        if starts_anew {
            self.document = Some(Document::default());
        }
        let document = self.document.get_or_insert_with(Document::default);
        if document.done {
            return;
        }
        document.points += 1;
        if document
            .planned
            .is_some_and(|planned| document.points >= planned)
        {
            document.done = true;
        }
        let number = point.number.unwrap_or(document.points);
        let description = point
            .description
            .trim()
            .trim_start_matches('-')
            .trim_start();
        let name = if description.is_empty() {
            format!("test {number}")
        } else {
            description.to_owned()
        };
        let (status, message) = match (point.passed, point.directive) {
            (_, Some((Directive::Skip, reason))) => (ResultStatus::Skipped, reason),
            (false, Some((Directive::Todo, reason))) => (ResultStatus::Skipped, reason),
            (true, _) => (ResultStatus::Passed, ""),
            (false, None) => (ResultStatus::Failed, ""),
        };
        let mut outcome = TestOutcome::new(self.suite.clone(), name, status);
        if !message.is_empty() {
            outcome.message = Some(message.to_owned());
        }
        if status == ResultStatus::Failed {
            self.pending = Some(outcome);
        } else {
            finished.push(outcome);
        }
    }
}

impl Parser for Tap {
    fn line(&mut self, line: &str, finished: &mut Vec<TestOutcome>) {
        if self.in_yaml {
            if line.trim() == "..." {
                self.in_yaml = false;
            } else {
                self.diagnostics(line.trim_start());
            }
            return;
        }
        if self.pending.is_some() {
            if line.trim() == "---" && line.starts_with(' ') {
                self.in_yaml = true;
                return;
            }
            if let Some(comment) = line.strip_prefix('#') {
                self.diagnostics(comment.trim());
                return;
            }
            self.flush(finished);
        }
        if line.starts_with(char::is_whitespace) {
            // Subtests and diagnostics of passed points.
            return;
        }
        if line.starts_with("TAP version ") {
            self.document = Some(Document::default());
            return;
        }
        if let Some(suite) = prove_file(line) {
            self.suite = Some(suite.to_owned());
            self.document = Some(Document::default());
            return;
        }
        if let Some(planned) = plan(line) {
            let document = self.document.get_or_insert_with(Document::default);
            if document.points > 0 || planned == 0 {
                document.done = true;
            } else {
                document.planned = Some(planned);
            }
            return;
        }
        if let Some(point) = test_point(line) {
            if self.assume_tap || self.document.is_some() || point.number.is_some() {
                self.point(point, finished);
            }
        }
    }

    fn end(&mut self, finished: &mut Vec<TestOutcome>) {
        self.flush(finished);
    }
}

/// prove's line before a file's output: `t/basic.t .. ` (dots padded to align).
fn prove_file(line: &str) -> Option<&str> {
    let (file, dots) = line.trim_end().split_once(' ')?;
    let is_dots = dots.len() >= 2 && dots.bytes().all(|b| b == b'.');
    (is_dots && !file.is_empty() && !line.starts_with("ok") && !line.starts_with("not ok"))
        .then_some(file)
}

/// `1..N`, possibly with `# reason` after it.
fn plan(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("1..")?;
    let digits = rest.split(|c: char| c.is_whitespace() || c == '#').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `ok`/`not ok`, an optional number, an optional description, an optional directive.
fn test_point(line: &str) -> Option<Point<'_>> {
    let (passed, rest) = if let Some(rest) = line.strip_prefix("not ok") {
        (false, rest)
    } else {
        (true, line.strip_prefix("ok")?)
    };
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('#')) {
        return None;
    }
    let rest = rest.trim_start_matches(' ');
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = rest[..digits].parse().ok();
    let rest = &rest[digits..];
    let (description, directive) = split_directive(rest);
    Some(Point {
        passed,
        number,
        description,
        directive,
    })
}

/// The description and the directive after its last unescaped `#`, if that is a SKIP
/// or TODO (in any case, "skipped" included).
fn split_directive(text: &str) -> (&str, Option<(Directive, &str)>) {
    let bytes = text.as_bytes();
    for (at, _) in text
        .match_indices('#')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        if at > 0 && bytes[at - 1] == b'\\' {
            continue;
        }
        let after = text[at + 1..].trim_start();
        let word_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let word = after[..word_end].to_ascii_lowercase();
        let directive = if word.starts_with("skip") {
            Directive::Skip
        } else if word == "todo" {
            Directive::Todo
        } else {
            continue;
        };
        let reason = after[word_end..].trim_start_matches(':').trim();
        return (&text[..at], Some((directive, reason)));
    }
    (text, None)
}

#[cfg(test)]
mod tests {
    use super::super::{read_all, statuses};
    use super::*;

    fn read(assume_tap: bool, text: &str) -> Vec<TestOutcome> {
        read_all(&mut Tap::new(assume_tap), text)
    }

    /// `prove -v t/` of two Test::More files (one with skip, todo and a failure, one
    /// with a subtest and a trailing plan), as prove 3.44 prints it.
    const PROVE: &str = "\
t/a.t .. 
1..4
ok 1 - first
not ok 2 - second fails
ok 3 # skip no network
not ok 4 - todo thing # TODO later
#   Failed (TODO) test 'todo thing'
#   at t/a.t line 5.
Dubious, test returned 1 (wstat 256, 0x100)
Failed 1/4 subtests 
	(less 1 skipped subtest: 2 okay)
t/b.t .. 
ok 1 - b one
# Subtest: group
    ok 1 - inner
    ok 2 - inner2
    1..2
ok 2 - group
1..2
ok
";

    #[test]
    fn prove_output_counts_as_prove_does() {
        let outcomes = read(false, PROVE);
        use ResultStatus::*;
        assert_eq!(
            statuses(&outcomes),
            [
                ("first", Passed),
                ("second fails", Failed),
                ("test 3", Skipped),
                ("todo thing", Skipped),
                ("b one", Passed),
                ("group", Passed),
            ]
        );
        assert_eq!(outcomes[0].suite.as_deref(), Some("t/a.t"));
        assert_eq!(outcomes[4].suite.as_deref(), Some("t/b.t"));
        assert_eq!(outcomes[2].message.as_deref(), Some("no network"));
    }

    #[test]
    fn a_failed_point_takes_its_yaml_block_as_message() {
        let outcomes = read(
            false,
            "TAP version 14\n1..2\nnot ok 1 - sums\n  ---\n  message: expected 3\n  got: 4\n  ...\nok 2 - next\n",
        );
        assert_eq!(outcomes[0].status, ResultStatus::Failed);
        assert_eq!(
            outcomes[0].message.as_deref(),
            Some("message: expected 3\ngot: 4\n")
        );
        assert_eq!(outcomes[1].name, "next");
    }

    #[test]
    fn a_failed_point_is_held_only_until_the_next_line_or_idle() {
        let mut tap = Tap::new(false);
        let mut finished = Vec::new();
        tap.line("not ok 1 - slow neighbour", &mut finished);
        assert!(finished.is_empty(), "held for its diagnostics");
        tap.flush(&mut finished);
        assert_eq!(finished.len(), 1);
    }

    #[test]
    fn unnumbered_ok_lines_count_only_inside_a_tap_document() {
        assert!(read(false, "ok  \texample.com/pkg\t0.01s\nok\n").is_empty());
        assert_eq!(read(true, "ok\nok - named\n").len(), 2);
        assert_eq!(read(false, "TAP version 13\nok\nok - named\n").len(), 2);
    }

    #[test]
    fn tap_lookalikes_are_not_tests() {
        assert!(read(true, "okay then\nnothing ok 1\nnot okay\n").is_empty());
    }

    #[test]
    fn escaped_hashes_stay_in_the_description_and_directives_ignore_case() {
        let outcomes = read(false, "ok 1 - issue \\# 12 # SKIPPED: flaky host\n");
        assert_eq!(outcomes[0].name, "issue \\# 12");
        assert_eq!(outcomes[0].status, ResultStatus::Skipped);
        assert_eq!(outcomes[0].message.as_deref(), Some("flaky host"));
    }

    #[test]
    fn concatenated_documents_restart_at_one() {
        let outcomes = read(false, "ok 1 - a\n1..1\nok 1 - b\nok 2 - c\n1..2\n");
        let names: Vec<&str> = outcomes.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn points_past_a_finished_plan_are_not_tests() {
        assert_eq!(read(false, "1..1\nok 1 - a\nok\nok 3 - extra\n").len(), 1);
    }
}
