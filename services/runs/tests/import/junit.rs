use verdict_runs::domain::limits::{MAX_NAME_BYTES, MAX_XML_DEPTH, MAX_XML_MARKUP_BYTES};
use verdict_runs::domain::{Counts, ResultStatus, SuiteName, TestKey, TestName};
use verdict_runs::import::{
    parse_junit, DeclaredCounts, ImportError, JunitReader, Location, ParsedReport, ReportItem,
    MAX_UNLISTED_RESULTS,
};

use crate::support::{attempts, fixture, malformed_at, result, text, Trickle};

fn parse(name: &str) -> ParsedReport {
    parse_junit(&fixture(name)[..]).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn parse_str(xml: &str) -> Result<ParsedReport, ImportError> {
    parse_junit(xml.as_bytes())
}

fn statuses(report: &ParsedReport, name: &str) -> Vec<ResultStatus> {
    attempts(report, name).iter().map(|r| r.status).collect()
}

#[test]
fn pytest() {
    let report = parse("pytest.xml");
    assert_eq!(
        report.counts(),
        Counts {
            total: 6,
            passed: 2,
            failed: 1,
            skipped: 2,
            errored: 1,
            flaky: 0,
            quarantined: 0,
        }
    );
    assert_eq!(
        report.summary.declared,
        DeclaredCounts {
            tests: Some(6),
            failed: Some(1),
            errored: Some(1),
            skipped: Some(2),
            ..DeclaredCounts::default()
        }
    );
    assert_eq!(report.summary.name.as_deref(), Some("pytest tests"));
    assert_eq!(report.summary.duration_ms.map(|d| d.get()), Some(412));
    assert_eq!(
        report.summary.started_at.map(|at| at.unix_timestamp()),
        Some(1_772_359_200)
    );

    let adds = result(&report, "test_adds");
    assert_eq!(adds.status, ResultStatus::Passed);
    assert_eq!(
        adds.suite.as_ref().map(SuiteName::as_str),
        Some("tests.test_math")
    );
    assert_eq!(adds.duration_ms.map(|d| d.get()), Some(1));
    assert_eq!(adds.attributes.get("owner"), Some("math-team"));
    assert_eq!(
        adds.test_key().to_string(),
        "8d87b0ac62891d337b885fff8e07a741",
        "the key is the documented hash of suite and name"
    );

    let divides = result(&report, "test_divides[0-1]");
    assert_eq!(divides.status, ResultStatus::Failed);
    assert_eq!(
        text(&divides.message),
        "assert 0 == 1\n +  where 0 = divide(0, 1)"
    );
    assert!(text(&divides.trace).contains(">       assert divide(a, b) == 1"));
    assert!(text(&divides.trace).ends_with("tests/test_math.py:12: AssertionError"));
    assert_eq!(text(&divides.stdout), "dividing 0 by 1\n");

    let connects = result(&report, "test_connects");
    assert_eq!(connects.status, ResultStatus::Errored);
    assert_eq!(
        text(&connects.message),
        "failed on setup with \"ConnectionRefusedError: [Errno 111] Connection refused\""
    );
    assert_eq!(
        text(&connects.stderr),
        "WARNING  db:conftest.py:8 retrying connect\n"
    );

    let trains = result(&report, "test_trains");
    assert_eq!(trains.status, ResultStatus::Skipped);
    assert_eq!(text(&trains.message), "needs a GPU");
    assert_eq!(text(&trains.trace), "/app/tests/test_gpu.py:8: needs a GPU");

    let xfail = result(&report, "test_rounds_half_even");
    assert_eq!(xfail.status, ResultStatus::Skipped);
    assert_eq!(text(&xfail.message), "bug #12: banker's rounding");
    assert_eq!(xfail.trace, None);

    assert_eq!(
        result(&report, "test_ünïcode[€]").status,
        ResultStatus::Passed
    );
    assert!(report
        .results
        .iter()
        .all(|r| r.attempt.get() == 1 && r.id.is_none()));
}

#[test]
fn jest_junit() {
    let report = parse("jest-junit.xml");
    assert_eq!(
        report.counts(),
        Counts {
            total: 5,
            passed: 3,
            failed: 1,
            skipped: 1,
            ..Counts::default()
        }
    );
    assert_eq!(report.summary.declared.tests, Some(5));
    assert_eq!(report.summary.duration_ms.map(|d| d.get()), Some(2184));

    let discount = result(&report, "Cart applies a discount");
    assert_eq!(
        discount.suite.as_ref().map(SuiteName::as_str),
        Some("Cart applies a discount")
    );
    // jest-junit writes no message attribute: the first line of the text stands in.
    assert_eq!(
        text(&discount.message),
        "Error: expect(received).toBe(expected) // Object.is equality"
    );
    assert!(text(&discount.trace).contains("at Object.<anonymous> (/app/src/cart.test.ts:21:29)"));
    assert_eq!(
        result(&report, "Cart checks out").status,
        ResultStatus::Skipped
    );
    assert_eq!(report.suites.len(), 2);
}

#[test]
fn surefire_with_flaky_and_rerun_failures() {
    let report = parse("surefire.xml");
    assert_eq!(
        report.counts(),
        Counts {
            total: 5,
            passed: 3,
            failed: 1,
            skipped: 1,
            errored: 0,
            flaky: 2,
            quarantined: 0,
        }
    );
    assert_eq!(report.results.len(), 10, "one result per attempt");
    assert_eq!(
        report.summary.name.as_deref(),
        Some("com.example.cart.CartServiceTest")
    );
    assert_eq!(
        report.summary.declared,
        DeclaredCounts {
            tests: Some(5),
            failed: Some(1),
            errored: Some(0),
            skipped: Some(1),
            ..DeclaredCounts::default()
        }
    );

    // A flaky test: the failed attempt first, then the passing one.
    use ResultStatus::{Errored, Failed, Passed};
    assert_eq!(statuses(&report, "appliesDiscount"), [Failed, Passed]);
    let discount = attempts(&report, "appliesDiscount");
    assert_eq!(discount[0].attempt.get(), 1);
    assert_eq!(text(&discount[0].message), "expected: <90> but was: <100>");
    assert!(text(&discount[0].trace).starts_with("org.opentest4j.AssertionFailedError"));
    assert_eq!(
        text(&discount[0].stdout),
        "pricing service answered in 2400 ms\n"
    );
    assert_eq!(discount[1].attempt.get(), 2);
    assert_eq!(
        text(&discount[1].stdout),
        "pricing service answered in 35 ms\n"
    );
    assert_eq!(discount[1].duration_ms.map(|d| d.get()), Some(45));

    // A test that failed every rerun: its own failure first, then the reruns.
    // Reruns keep the case's own category: Surefire counts it as one failure.
    assert_eq!(statuses(&report, "checksOut"), [Failed, Failed, Failed]);
    let checkout = attempts(&report, "checksOut");
    assert_eq!(text(&checkout[0].stdout), "checkout attempt 1\n");
    assert_eq!(text(&checkout[1].stdout), "checkout attempt 2\n");
    assert_eq!(
        text(&checkout[2].message),
        "checkout timed out after 30 seconds"
    );
    assert_eq!(
        checkout.iter().map(|r| r.attempt.get()).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    assert_eq!(
        statuses(&report, "retriesPayment"),
        [Errored, Errored, Passed]
    );
    assert_eq!(
        text(&attempts(&report, "retriesPayment")[1].stderr),
        "WARN payment gateway slow\n"
    );

    let suite = &report.suites[0];
    assert_eq!(suite.properties.get("java.version"), Some("21.0.2"));
    assert_eq!(text(&suite.stdout), "Spring context started in 812 ms\n");
    assert_eq!(
        text(&suite.stderr),
        "SLF4J: No SLF4J providers were found.\n"
    );
}

#[test]
fn gotestsum() {
    let report = parse("gotestsum.xml");
    assert_eq!(
        report.counts(),
        Counts {
            total: 7,
            passed: 4,
            failed: 2,
            skipped: 1,
            ..Counts::default()
        }
    );
    assert_eq!(report.summary.declared.tests, Some(7));
    assert_eq!(report.summary.declared.failed, Some(2));

    let over_limit = result(&report, "TestDiscount/over_limit");
    assert_eq!(
        over_limit.suite.as_ref().map(SuiteName::as_str),
        Some("github.com/acme/shop/cart")
    );
    assert_eq!(text(&over_limit.message), "Failed");
    assert!(text(&over_limit.trace).contains("cart_test.go:42: got 100, want 90\n"));

    let checkout = result(&report, "TestCheckout");
    assert_eq!(checkout.status, ResultStatus::Skipped);
    assert!(text(&checkout.message).contains("\n    cart_test.go:50: needs a database\n"));
    assert_eq!(
        result(&report, "TestFormat").duration_ms.map(|d| d.get()),
        Some(990)
    );

    assert_eq!(report.suites.len(), 2);
    assert_eq!(
        report.suites[1].properties.get("go.version"),
        Some("go1.22.1 linux/amd64")
    );
}

#[test]
fn playwright() {
    let report = parse("playwright.xml");
    assert_eq!(
        report.counts(),
        Counts {
            total: 5,
            passed: 3,
            failed: 1,
            skipped: 1,
            errored: 0,
            flaky: 1,
            quarantined: 0,
        }
    );
    assert_eq!(report.summary.name, None, "an empty name is no name");
    assert_eq!(report.summary.declared.skipped, Some(1));

    let card = result(&report, "checkout › pays with card");
    assert_eq!(
        card.suite.as_ref().map(SuiteName::as_str),
        Some("checkout.spec.ts")
    );
    assert_eq!(card.attributes.get("issue"), Some("SHOP-123"));

    let voucher = result(&report, "checkout › pays with voucher");
    assert_eq!(voucher.status, ResultStatus::Failed);
    assert_eq!(
        text(&voucher.message),
        "checkout.spec.ts:18:7 pays with voucher"
    );
    assert!(text(&voucher.trace).contains("Expected string: \"€90.00\""));
    assert!(text(&voucher.stdout)
        .contains("[[ATTACHMENT|checkout-checkout-pays-with-voucher-chromium/test-failed-1.png]]"));

    let coupon = attempts(&report, "checkout › applies coupon");
    assert_eq!(coupon.len(), 2);
    assert_eq!(coupon[0].status, ResultStatus::Failed);
    assert_eq!(coupon[0].duration_ms.map(|d| d.get()), Some(5010));
    assert!(text(&coupon[0].trace).starts_with("Error: Timed out 5000ms"));
    // Output is kept verbatim, the newlines Playwright wraps it in included.
    assert_eq!(text(&coupon[0].stdout), "\ncoupon banner still loading\n");
    assert_eq!(coupon[1].status, ResultStatus::Passed);
}

#[test]
fn reading_in_tiny_pieces_gives_the_same_report() {
    for name in [
        "pytest.xml",
        "jest-junit.xml",
        "surefire.xml",
        "gotestsum.xml",
        "playwright.xml",
    ] {
        let bytes = fixture(name);
        let whole = parse_junit(&bytes[..]).unwrap();
        for step in [1, 2, 3, 7] {
            let pieces = parse_junit(Trickle::new(&bytes, step)).unwrap();
            assert_eq!(pieces, whole, "{name} read {step} bytes at a time");
        }
    }
}

#[test]
fn the_streaming_reader_yields_results_as_cases_end() {
    let bytes = fixture("surefire.xml");
    let mut reader = JunitReader::new(&bytes[..]);
    let first = reader.next().unwrap().unwrap();
    assert!(matches!(first, ReportItem::Result(ref r) if r.name.as_str() == "addsItem"));
    let rest: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(matches!(rest.last(), Some(ReportItem::Suite(_))));
    assert!(reader.next().is_none());
    assert_eq!(reader.summary().declared.tests, Some(5));
}

#[test]
fn nested_suites_name_their_cases_and_sum_their_counts() {
    let report = parse_str(
        r#"<testsuites>
             <testsuite name="outer" tests="2" failures="1">
               <testsuite name="inner" tests="1">
                 <testcase name="deep"/>
               </testsuite>
               <testcase name="shallow"><failure/></testcase>
             </testsuite>
             <testsuite name="other" tests="1" skipped="1">
               <testcase name="skipped"><skipped/></testcase>
             </testsuite>
           </testsuites>"#,
    )
    .unwrap();
    let suite_of = |name| {
        result(&report, name)
            .suite
            .as_ref()
            .map(|s| s.as_str().to_owned())
    };
    assert_eq!(suite_of("deep").as_deref(), Some("inner"));
    assert_eq!(suite_of("shallow").as_deref(), Some("outer"));
    assert_eq!(
        report.summary.declared,
        DeclaredCounts {
            tests: Some(3),
            failed: Some(1),
            skipped: Some(1),
            ..DeclaredCounts::default()
        },
        "the top-level suites are summed, the nested one is not counted twice"
    );
    assert_eq!(report.suites.len(), 3);
    assert_eq!(
        result(&report, "shallow").test_key(),
        TestKey::derive(
            Some(&SuiteName::parse("outer").unwrap()),
            &TestName::parse("shallow").unwrap()
        )
    );
}

#[test]
fn references_cdata_comments_and_unknown_elements() {
    let report = parse_str(
        "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE testsuite>\n<testsuite name=\"s\">\
         <!-- a comment --><?pi data?><unknown><testcase name=\"hidden\"/></unknown>\
         <testcase name=\"t\"><failure message=\"a &amp; b\">x &lt; y &#x263A; &#9731; \
         <![CDATA[<raw> & ]]]]><![CDATA[>]]><!-- not text --> end</failure></testcase></testsuite>",
    )
    .unwrap();
    assert_eq!(
        report.results.len(),
        1,
        "cases inside unknown elements are not read"
    );
    let t = result(&report, "t");
    assert_eq!(text(&t.message), "a & b");
    assert_eq!(text(&t.trace), "x < y ☺ ☃ <raw> & ]]> end");
}

#[test]
fn huge_text_is_truncated_with_a_marker() {
    let big = "log line\n".repeat(300_000);
    let xml = format!(
        "<testsuite><testcase name=\"t\"><system-out><![CDATA[{big}]]></system-out>\
         <system-err>{big}</system-err></testcase></testsuite>"
    );
    let report = parse_str(&xml).unwrap();
    let t = result(&report, "t");
    for output in [&t.stdout, &t.stderr] {
        assert_eq!(text(output).len(), 1024 * 1024);
        assert!(text(output).starts_with("log line\nlog line\n"));
        assert!(text(output).ends_with(" bytes]"));
    }
}

#[test]
fn a_case_without_a_name_gets_a_stable_name_and_every_other_result_is_kept() {
    let xml = "<testsuite name=\"s\">\n  <testcase classname=\"pkg.Setup\"/>\n  \
               <testcase classname=\"pkg.Setup\"><error message=\"boom\"/></testcase>\n  \
               <testcase name=\" \"/>\n  <testcase name=\"kept\"><failure/></testcase>\n</testsuite>";
    let report = parse_str(xml).unwrap();
    let names: Vec<(&str, &str)> = report
        .results
        .iter()
        .map(|r| (r.suite.as_ref().unwrap().as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("pkg.Setup", "pkg.Setup"),
            ("pkg.Setup", "(unnamed 2)"),
            ("s", "(unnamed 3)"),
            ("s", "kept")
        ]
    );
    assert_eq!(result(&report, "(unnamed 2)").status, ResultStatus::Errored);
    assert_eq!(
        report.counts(),
        Counts {
            total: 4,
            passed: 2,
            failed: 1,
            errored: 1,
            ..Counts::default()
        }
    );
    assert_eq!(
        report.warnings,
        [
            "line 2, column 3: a <testcase> without a name is imported as \"pkg.Setup\"",
            "line 3, column 3: a <testcase> without a name is imported as \"(unnamed 2)\"",
            "line 4, column 3: a <testcase> without a name is imported as \"(unnamed 3)\""
        ]
    );
    assert_eq!(
        parse_str(xml).unwrap(),
        report,
        "the names are the same every time"
    );
}

#[test]
fn disabled_cases_are_skipped_with_their_message_as_the_reason() {
    let report = parse_str(
        "<testsuite name=\"s\" tests=\"3\" disabled=\"1\" skipped=\"1\">\
         <testcase name=\"a\" status=\"disabled\" message=\"flaky on CI\"/>\
         <testcase name=\"b\" status=\"notrun\" result=\"suppressed\"/>\
         <testcase name=\"c\" status=\"run\"/></testsuite>",
    )
    .unwrap();
    let disabled = result(&report, "a");
    assert_eq!(disabled.status, ResultStatus::Skipped);
    assert_eq!(text(&disabled.message), "flaky on CI");
    let not_run = result(&report, "b");
    assert_eq!(not_run.status, ResultStatus::Skipped);
    assert_eq!(not_run.message, None);
    assert_eq!(result(&report, "c").status, ResultStatus::Passed);
    assert_eq!(
        report.summary.declared.skipped,
        Some(2),
        "a suite's disabled tests count as skipped"
    );
}

#[test]
fn a_suite_with_counts_but_no_cases_records_them_as_unlisted_results() {
    let report = parse_str(
        "<testsuites>\n<testsuite name=\"aborted\" tests=\"6\" failures=\"1\" errors=\"1\" skipped=\"2\"/>\n\
         <testsuite name=\"fine\" tests=\"1\"><testcase name=\"ok\"/></testsuite>\n</testsuites>",
    )
    .unwrap();
    assert_eq!(
        report.counts(),
        Counts {
            total: 7,
            passed: 3,
            failed: 1,
            errored: 1,
            skipped: 2,
            flaky: 0,
            quarantined: 0,
        },
        "the counts are those the report declares"
    );
    let failure = result(&report, "(unlisted failure 1)");
    assert_eq!(failure.status, ResultStatus::Failed);
    assert_eq!(
        failure.suite.as_ref().map(SuiteName::as_str),
        Some("aborted")
    );
    assert!(text(&failure.message).contains("does not list it"));
    assert_eq!(
        result(&report, "(unlisted error 1)").status,
        ResultStatus::Errored
    );
    assert_eq!(attempts(&report, "(unlisted skipped test 2)").len(), 1);
    assert_eq!(attempts(&report, "(unlisted passed test 2)").len(), 1);
    assert_eq!(
        report.warnings,
        ["line 2, column 1: <testsuite> \"aborted\" declares 6 tests (1 failed, 1 errored, 2 skipped) but lists none; they are recorded as unlisted results"]
    );
}

#[test]
fn unlisted_results_are_numbered_through_the_document_and_counted_once() {
    let report = parse_str(
        "<testsuites><testsuite tests=\"1\" failures=\"1\"/>\
         <testsuite name=\"outer\" tests=\"2\" failures=\"2\">\
         <testsuite name=\"inner\" tests=\"2\" failures=\"2\"/></testsuite></testsuites>",
    )
    .unwrap();
    let names: Vec<(Option<&str>, &str)> = report
        .results
        .iter()
        .map(|r| (r.suite.as_ref().map(SuiteName::as_str), r.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (None, "(unlisted failure 1)"),
            (Some("inner"), "(unlisted failure 2)"),
            (Some("inner"), "(unlisted failure 3)")
        ],
        "the outer suite counts its nested one's tests, not more"
    );
}

#[test]
fn unlisted_results_are_capped_per_report() {
    let report = parse_str("<testsuite name=\"huge\" tests=\"4000000000\"/>").unwrap();
    assert_eq!(report.results.len() as u64, MAX_UNLISTED_RESULTS);
    assert_eq!(report.warnings.len(), 2);
    assert!(report.warnings[1]
        .ends_with("only the first 10000 unlisted results of the report are recorded"));
}

#[test]
fn a_too_long_case_name_is_refused_naming_the_limit() {
    let name = "n".repeat(MAX_NAME_BYTES + 1);
    let err = parse_str(&format!(
        "<testsuite><testcase name=\"{name}\"/></testsuite>"
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("testcase name must be at most 1024 bytes, got 1025"),
        "{err}"
    );
}

#[test]
fn a_mismatched_end_tag_is_placed_by_line_and_column() {
    let err =
        parse_str("<testsuite name=\"s\">\n  <testcase name=\"a\">\n  </testsuite>").unwrap_err();
    assert_eq!(malformed_at(&err), (3, 3));
    assert!(
        err.to_string()
            .starts_with("malformed JUnit XML at line 3, column 3: "),
        "{err}"
    );
    assert!(err.to_string().contains("testcase"), "{err}");
}

#[test]
fn a_truncated_document_is_placed_at_its_end() {
    let err =
        parse_str("<testsuites>\n<testsuite name=\"s\">\n<testcase name=\"a\"/>").unwrap_err();
    assert_eq!(malformed_at(&err), (3, 21));
    assert!(
        err.to_string()
            .ends_with("the document ends inside <testsuite>"),
        "{err}"
    );
}

#[test]
fn an_unclosed_tag_is_placed_at_its_start() {
    let err = parse_str("<testsuite>\n  <testcase name=\"a\"").unwrap_err();
    assert_eq!(malformed_at(&err), (2, 3));
}

#[test]
fn a_broken_attribute_is_placed_inside_its_tag() {
    let err = parse_str("<testsuite>\n<testcase\n   name=a/></testsuite>").unwrap_err();
    assert_eq!(malformed_at(&err), (3, 9));
    assert!(err.to_string().contains("must be enclosed in"), "{err}");
}

#[test]
fn bad_references_in_text_are_placed() {
    let err =
        parse_str("<testsuite>\n<testcase name=\"a\"><failure>1 &nbsp; 2</failure>").unwrap_err();
    assert_eq!(malformed_at(&err), (2, 31));
    let err = parse_str("<testsuite>\n <testcase name=\"a\">fish & chips</testcase>").unwrap_err();
    assert_eq!(malformed_at(&err), (2, 26));
    assert!(err.to_string().contains("`&amp;`"), "{err}");
}

#[test]
fn an_unterminated_cdata_section_is_placed_at_its_start() {
    let err = parse_str("<testsuite><testcase name=\"a\">\n  <system-out><![CDATA[never ends")
        .unwrap_err();
    assert_eq!(malformed_at(&err), (2, 15));
}

#[test]
fn documents_that_are_not_junit_are_refused() {
    for (input, expected) in [
        ("", "invalid JUnit XML report at line 1, column 1: there is no <testsuites> or <testsuite> element"),
        ("just text", "invalid JUnit XML report at line 1, column 10: there is no <testsuites> or <testsuite> element"),
        ("<?xml version=\"1.0\"?>\n<html><body/></html>", "invalid JUnit XML report at line 2, column 1: the root element is <html>, not <testsuites> or <testsuite>"),
    ] {
        assert_eq!(parse_str(input).unwrap_err().to_string(), expected);
    }
    let err = parse_str("<testsuite/>\n<testsuite/>").unwrap_err();
    assert_eq!(malformed_at(&err), (2, 1));
}

#[test]
fn nesting_is_bounded() {
    let depth = MAX_XML_DEPTH + 1;
    let xml = format!(
        "{}{}",
        "<testsuite>".repeat(depth),
        "</testsuite>".repeat(depth)
    );
    let err = parse_str(&xml).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("elements nest deeper than 64 levels"),
        "{err}"
    );
    assert!(matches!(
        err,
        ImportError::Invalid {
            at: Location::Position {
                line: 1,
                column: 705
            },
            ..
        }
    ));
}

#[test]
fn one_huge_tag_is_refused_instead_of_buffered() {
    let xml = format!(
        "<testsuite>\n<testcase name=\"t\" message=\"{}\"/></testsuite>",
        "m".repeat(MAX_XML_MARKUP_BYTES)
    );
    let err = parse_str(&xml).unwrap_err();
    assert_eq!(malformed_at(&err), (2, 1));
    assert!(
        err.to_string()
            .ends_with("one piece of markup is longer than 4194304 bytes"),
        "{err}"
    );
}

#[test]
fn a_failed_read_is_reported_as_such() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = parse_junit(Broken).unwrap_err();
    assert!(matches!(err, ImportError::Read(_)), "{err:?}");
    assert_eq!(err.to_string(), "cannot read the report: disk on fire");
}
