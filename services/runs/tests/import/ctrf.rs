use std::io::{Cursor, Read};

use verdict_runs::domain::limits::MAX_CTRF_BYTES;
use verdict_runs::domain::{Counts, ResultStatus, SuiteName};
use verdict_runs::import::{
    parse_ctrf, parse_report, DeclaredCounts, ImportError, Location, ParsedReport, ReportFormat,
};

use crate::support::{attempts, fixture, malformed_at, result, text, Trickle};

fn parse(json: &str) -> Result<ParsedReport, ImportError> {
    parse_ctrf(json.as_bytes())
}

#[test]
fn a_playwright_ctrf_report() {
    let report = parse_report(Cursor::new(fixture("ctrf.json"))).unwrap();
    assert_eq!(report.summary.format, ReportFormat::Ctrf);
    assert_eq!(
        report.counts(),
        Counts {
            total: 6,
            passed: 3,
            failed: 1,
            skipped: 2,
            errored: 0,
            flaky: 2,
            quarantined: 0,
        }
    );
    assert_eq!(report.summary.tool.as_deref(), Some("playwright 1.45.0"));
    assert_eq!(
        report.summary.declared,
        DeclaredCounts {
            tests: Some(6),
            passed: Some(3),
            failed: Some(1),
            errored: None,
            skipped: Some(2),
            flaky: Some(2),
        }
    );
    assert_eq!(
        report.summary.started_at.map(|at| at.unix_timestamp()),
        Some(1_772_359_200)
    );
    assert_eq!(report.summary.duration_ms.map(|d| d.get()), Some(12_345));

    let card = result(&report, "pays with card");
    assert_eq!(
        card.suite.as_ref().map(SuiteName::as_str),
        Some("checkout.spec.ts > checkout")
    );
    assert_eq!(card.attributes.get("file"), Some("tests/checkout.spec.ts"));
    assert_eq!(card.attributes.get("line"), Some("12"));
    assert_eq!(card.attributes.get("tags"), Some("@smoke, @payments"));
    assert_eq!(card.attributes.get("browser"), Some("chromium"));
    assert_eq!(
        card.started_at.map(|at| at.unix_timestamp_nanos()),
        Some(1_772_359_200_100_000_000)
    );

    let voucher = result(&report, "pays with voucher");
    assert_eq!(
        voucher.suite, card.suite,
        "a suite string and the same suite as an array are the same suite"
    );
    assert_eq!(voucher.status, ResultStatus::Failed);
    assert!(text(&voucher.trace).ends_with("checkout.spec.ts:21:45"));
    assert_eq!(
        text(&voucher.stdout),
        "opening checkout\napplying voucher SPRING"
    );
    assert_eq!(voucher.stderr, None);

    let coupon = attempts(&report, "applies coupon");
    assert_eq!(
        coupon.len(),
        2,
        "the entry repeating the final attempt is not doubled"
    );
    assert_eq!(coupon[0].status, ResultStatus::Failed);
    assert_eq!(coupon[0].duration_ms.map(|d| d.get()), Some(5010));
    assert_eq!(text(&coupon[0].stdout), "coupon banner still loading");
    assert_eq!(coupon[1].status, ResultStatus::Passed);

    let basket = attempts(&report, "refreshes the basket");
    assert_eq!(
        basket
            .iter()
            .map(|r| (r.attempt.get(), r.status))
            .collect::<Vec<_>>(),
        [
            (1, ResultStatus::Failed),
            (2, ResultStatus::Failed),
            (3, ResultStatus::Passed)
        ],
        "retries without details still count"
    );
    assert_eq!(basket[2].duration_ms.map(|d| d.get()), Some(800));

    assert_eq!(result(&report, "gift cards").status, ResultStatus::Skipped);
}

#[test]
fn reading_in_tiny_pieces_gives_the_same_report() {
    let bytes = fixture("ctrf.json");
    let whole = parse_ctrf(&bytes[..]).unwrap();
    assert_eq!(parse_ctrf(Trickle::new(&bytes, 1)).unwrap(), whole);
}

#[test]
fn a_minimal_report_and_older_field_shapes() {
    let report = parse(
        r#"{"results": {"tool": {"name": "jest"}, "summary": {"tests": 1},
            "tests": [{"name": "adds", "status": "pending", "stdout": "one string",
                       "suite": "math", "duration": null, "flaky": true}]}}"#,
    )
    .unwrap();
    let adds = result(&report, "adds");
    assert_eq!(adds.status, ResultStatus::Skipped);
    assert_eq!(text(&adds.stdout), "one string");
    assert_eq!(adds.duration_ms, None);
    assert_eq!(report.summary.tool.as_deref(), Some("jest"));
    assert_eq!(
        report.counts().flaky,
        0,
        "a test that did not pass is not flaky"
    );
}

#[test]
fn malformed_json_is_placed_by_line_and_column() {
    let err =
        parse("{\n  \"results\": {\n    \"tests\": [\n      {\"name\": \"a\",, }\n").unwrap_err();
    assert_eq!(malformed_at(&err), (4, 20));
    assert!(
        err.to_string()
            .starts_with("malformed CTRF JSON at line 4, column 20: "),
        "{err}"
    );
    assert!(
        !reason(&err).contains(" at line "),
        "the position is not repeated: {err}"
    );
    let err = parse("{\"results\": {\"tests\": [").unwrap_err();
    assert_eq!(malformed_at(&err), (1, 23));
    assert!(err.to_string().contains("EOF"), "{err}");
}

fn reason(err: &ImportError) -> String {
    match err {
        ImportError::Malformed { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_of_the_wrong_kind_are_placed_too() {
    let err = parse(
        "{\"results\": {\n\"tests\": [\n{\"name\": \"a\", \"status\": \"broken\", \"duration\": 1}]}}",
    )
    .unwrap_err();
    assert_eq!(malformed_at(&err).0, 3);
    assert!(
        reason(&err).starts_with("unknown variant `broken`, expected one of `passed`"),
        "{err}"
    );
    assert!(
        !reason(&err).contains(" at line "),
        "the position is not repeated"
    );

    let err = parse("{\"results\": {\"tool\": {\"name\": \"x\"}}}").unwrap_err();
    assert!(reason(&err).contains("missing field `tests`"), "{err}");
    let err = parse("[]").unwrap_err();
    assert!(reason(&err).contains("a CTRF document"), "{err}");
}

#[test]
fn invalid_tests_are_named_by_their_path() {
    let err = parse(
        r#"{"results": {"tests": [{"name": "ok", "status": "passed"},
                                {"name": " ", "status": "failed"}]}}"#,
    )
    .unwrap_err();
    assert!(matches!(
        &err,
        ImportError::Invalid { at: Location::Path(path), .. } if path == "results.tests[1].name"
    ));
    assert_eq!(
        err.to_string(),
        "invalid CTRF JSON report at results.tests[1].name: must not be empty"
    );
    let long_suite = "s".repeat(2000);
    let err = parse(&format!(
        r#"{{"results": {{"tests": [{{"name": "a", "status": "passed", "suite": ["{long_suite}"]}}]}}}}"#
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid CTRF JSON report at results.tests[0].suite: must be at most 1024 bytes, got 2000"
    );
}

#[test]
fn retries_are_capped_at_the_attempt_limit() {
    let report = parse(
        r#"{"results": {"tests": [{"name": "a", "status": "passed", "retries": 4000000000, "flaky": true}]}}"#,
    )
    .unwrap();
    assert_eq!(report.results.len(), 100);
    assert_eq!(report.counts().flaky, 1);
}

#[test]
fn documents_beyond_the_size_limit_are_refused() {
    /// An endless run of spaces after an opening brace.
    struct Endless {
        sent_brace: bool,
    }
    impl Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            out.fill(b' ');
            if !self.sent_brace {
                out[0] = b'{';
                self.sent_brace = true;
            }
            Ok(out.len())
        }
    }
    let err = parse_ctrf(Endless { sent_brace: false }).unwrap_err();
    assert!(
        matches!(err, ImportError::TooLarge { format: ReportFormat::Ctrf, limit } if limit == MAX_CTRF_BYTES),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the CTRF JSON report is larger than the 67108864 bytes accepted"
    );
}
