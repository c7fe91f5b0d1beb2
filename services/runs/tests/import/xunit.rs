//! xUnit.net v2 reports written by xUnit.net's runners.

use std::io::Cursor;

use verdict_runs::domain::{Counts, ResultStatus, SuiteName};
use verdict_runs::import::{parse_report, ParsedReport, ReportFormat};

use crate::support::{attempts, attribute_sum, fixture, fixtures_of, parse_fixture, result, text};

fn parse_str(xml: &str) -> ParsedReport {
    parse_report(Cursor::new(xml.as_bytes())).unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn xunit_reports_count_what_their_assemblies_state() {
    for name in fixtures_of(ReportFormat::Xunit2) {
        let xml = String::from_utf8(fixture(name)).unwrap();
        let count = |attribute| attribute_sum(&xml, "assembly", attribute);
        let report = parse_fixture(name);
        assert_eq!(report.summary.format, ReportFormat::Xunit2, "{name}");
        assert_eq!(
            report.counts(),
            Counts {
                total: count("total") + count("errors"),
                passed: count("passed"),
                failed: count("failed"),
                errored: count("errors"),
                skipped: count("skipped"),
                flaky: 0,
                quarantined: 0,
            },
            "{name}"
        );
    }
}

#[test]
fn xunit_failures_skips_and_names() {
    let report = parse_fixture("xunit/xunit-simple.xml");
    assert_eq!(report.summary.tool.as_deref(), Some("xUnit.net 2.0.0.2785"));
    assert_eq!(report.summary.name.as_deref(), Some("MyProject.Tests.DLL"));
    assert_eq!(
        report.summary.started_at.map(|at| at.unix_timestamp()),
        Some(1_418_913_272)
    );
    assert_eq!(report.summary.duration_ms.map(|d| d.get()), Some(288));
    let failed = result(&report, "FailedTest");
    assert_eq!(failed.status, ResultStatus::Failed);
    assert_eq!(
        failed.suite.as_ref().map(SuiteName::as_str),
        Some("MyProject.Tests.SampleFact"),
        "the class is the suite, and leaves the name"
    );
    assert_eq!(text(&failed.message), "Assert.True() Failure");
    assert!(text(&failed.trace).ends_with("SampleFact.cs:line 16"));
    assert_eq!(failed.duration_ms.map(|d| d.get()), Some(14));
    let skipped = result(&report, "SkippedTest");
    assert_eq!(skipped.status, ResultStatus::Skipped);
    assert_eq!(text(&skipped.message), "On Purpose");

    let display_names = parse_fixture("xunit/testcase5.xml");
    let uninstall = result(&display_names, "Uninstall application if it is installed.");
    assert_eq!(
        uninstall.suite.as_ref().map(SuiteName::as_str),
        Some("UnitTest.UnitTest")
    );
    assert!(text(&uninstall.stdout).starts_with("Starting test: UninstallApplicationIfInstalled\n"));
    assert_eq!(uninstall.duration_ms.map(|d| d.get()), Some(48_391));

    let benchmarks = parse_fixture("xunit/Microbenchmarks.Output.xml");
    let skipped = result(
        &benchmarks,
        "InitializeAndQuery_AdventureWorks [Variation: Warm (100 instances)]",
    );
    assert!(text(&skipped.message).starts_with("AdventureWorks2014 database does not exist"));
    assert_eq!(
        attempts(&benchmarks, "Update [Variation: Batching Off]").len(),
        1,
        "a failure is one attempt"
    );
}

#[test]
fn an_assembly_that_ran_nothing_is_named_in_a_warning() {
    let report = parse_fixture("xunit/testcase4.xml");
    assert!(report.results.is_empty());
    assert_eq!(
        report.warnings,
        ["line 3, column 5: the assembly \"KundM.Api.Csv.UnitTest.DLL\" reports no tests"]
    );
}

#[test]
fn errors_outside_tests_are_errored_results_and_traits_are_properties() {
    let report = parse_str(
        "<assemblies><assembly name=\"/ci/Shop.Tests.dll\" total=\"2\" passed=\"1\" failed=\"0\" skipped=\"0\" errors=\"1\">\
         <errors><error type=\"test-class-cleanup\" name=\"Shop.CartTests\"><failure exception-type=\"System.Exception\">\
         <message>cleanup blew up</message><stack-trace>at Shop.CartTests.Dispose()</stack-trace></failure></error></errors>\
         <collection name=\"c\">\
         <test name=\"Shop.CartTests.Adds(x: 1)\" type=\"Shop.CartTests\" method=\"Adds\" result=\"Pass\" source-file=\"Cart.cs\" source-line=\"12\">\
         <traits><trait name=\"Category\" value=\"fast\"/><trait name=\"Category\" value=\"cart\"/></traits></test>\
         <test name=\"Shop.CartTests.Adds(x: 1)\" type=\"Shop.CartTests\" method=\"Adds\" result=\"NotRun\"/>\
         </collection></assembly></assemblies>",
    );
    let cleanup = result(&report, "(test-class-cleanup) Shop.CartTests");
    assert_eq!(cleanup.status, ResultStatus::Errored);
    assert_eq!(
        cleanup.suite.as_ref().map(SuiteName::as_str),
        Some("Shop.Tests.dll")
    );
    assert_eq!(text(&cleanup.message), "cleanup blew up");
    assert_eq!(text(&cleanup.trace), "at Shop.CartTests.Dispose()");
    let adds = result(&report, "Adds(x: 1)");
    assert_eq!(adds.attributes.get("Category"), Some("fast, cart"));
    assert_eq!(adds.attributes.get("file"), Some("Cart.cs"));
    assert_eq!(adds.attributes.get("line"), Some("12"));
    let repeated = result(&report, "Adds(x: 1) #2");
    assert_eq!(
        repeated.status,
        ResultStatus::Skipped,
        "NotRun is not a verdict"
    );
    assert_eq!(report.counts().total, 3);
}
