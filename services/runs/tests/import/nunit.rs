//! NUnit 2 and 3 reports written by NUnit (and tools that write its format).

use verdict_runs::domain::{Counts, ResultStatus, SuiteName};
use verdict_runs::import::ReportFormat;

use crate::support::{attempts, attribute_sum, fixture, fixtures_of, parse_fixture, result, text};

fn suite_of(report: &verdict_runs::import::ParsedReport, name: &str) -> String {
    result(report, name)
        .suite
        .as_ref()
        .map_or(String::new(), |suite| suite.as_str().to_owned())
}

#[test]
fn nunit_2_reports_count_what_their_summary_states() {
    for name in fixtures_of(ReportFormat::Nunit2) {
        let xml = String::from_utf8(fixture(name)).unwrap();
        // `total` counts the tests that ran; `not-run` the others, `invalid` among them.
        let count = |attribute| attribute_sum(&xml, "test-results", attribute);
        let (total, not_run, invalid) = (count("total"), count("not-run"), count("invalid"));
        let (errors, failures, inconclusive) =
            (count("errors"), count("failures"), count("inconclusive"));
        let report = parse_fixture(name);
        assert_eq!(report.summary.format, ReportFormat::Nunit2, "{name}");
        assert_eq!(
            report.counts(),
            Counts {
                total: total + not_run,
                passed: total - errors - failures - inconclusive,
                failed: failures,
                errored: errors + invalid,
                skipped: not_run - invalid + inconclusive,
                flaky: 0,
                quarantined: 0,
            },
            "{name}"
        );
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    }
}

#[test]
fn nunit_2_mock_assembly_maps_every_outcome() {
    let report = parse_fixture("nunit2/mock-assembly-2.6.2.xml");
    assert_eq!(report.summary.tool.as_deref(), Some("NUnit 2.6.2.12296"));
    assert_eq!(
        report.summary.name.as_deref(),
        Some(r"C:\Program Files\NUnit 2.6.2\bin\tests\mock-assembly.dll")
    );
    assert_eq!(
        report.summary.started_at.map(|at| at.unix_timestamp()),
        Some(1_380_471_574)
    );

    let failing = result(&report, "FailingTest");
    assert_eq!(failing.status, ResultStatus::Failed);
    assert_eq!(
        failing.suite.as_ref().map(SuiteName::as_str),
        Some("NUnit.Tests.Assemblies.MockTestFixture")
    );
    assert_eq!(text(&failing.message), "Intentional failure");
    assert_eq!(
        text(&failing.trace),
        "at NUnit.Tests.Assemblies.MockTestFixture.FailingTest()"
    );
    assert_eq!(failing.duration_ms.map(|d| d.get()), Some(13));

    let inconclusive = result(&report, "InconclusiveTest");
    assert_eq!(inconclusive.status, ResultStatus::Skipped);
    assert_eq!(text(&inconclusive.message), "No valid data");
    let ignored = result(&report, "MockTest4");
    assert_eq!(ignored.status, ResultStatus::Skipped);
    assert_eq!(text(&ignored.message), "ignoring this test method for now");
    assert_eq!(ignored.attributes.get("category"), Some("Foo"));
    let not_runnable = result(&report, "MockTest5");
    assert_eq!(not_runnable.status, ResultStatus::Errored);
    assert_eq!(text(&not_runnable.message), "Method is not public");
    let error = result(&report, "TestWithException");
    assert_eq!(error.status, ResultStatus::Errored);
    assert!(text(&error.trace).ends_with("MockTestFixture.TestWithException()"));

    let properties = result(&report, "MockTest2");
    assert_eq!(properties.attributes.get("Severity"), Some("Critical"));
    assert_eq!(properties.attributes.get("category"), Some("MockCategory"));
    assert_eq!(
        result(&report, "MockTest3").attributes.get("category"),
        Some("AnotherCategory, MockCategory")
    );
    // Qualified names split at their last dot outside arguments.
    assert_eq!(
        suite_of(&report, "GenericMethod<Double>(9.2d,11.7d)"),
        "NUnit.Tests.FixtureWithTestCases"
    );
    assert_eq!(
        attempts(&report, "Test1")
            .iter()
            .map(|r| r.suite.as_ref().unwrap().as_str())
            .collect::<Vec<_>>(),
        [
            "NUnit.Tests.GenericFixture<Double>(11.5d)",
            "NUnit.Tests.GenericFixture<Int32>(5)",
            "NUnit.Tests.IgnoredFixture",
            "NUnit.Tests.ParameterizedFixture(42)",
            "NUnit.Tests.ParameterizedFixture(5)"
        ],
        "each fixture instance is its own suite"
    );
}

#[test]
fn nunit_2_before_the_result_attribute() {
    // NUnit 2.5.3 says only `executed` and `success`.
    let report = parse_fixture("nunit2/NUnit-issue5674.xml");
    let failed = result(&report, "FailTest(\"Safari\")");
    assert_eq!(failed.status, ResultStatus::Failed);
    assert_eq!(failed.message, None, "an empty message is no message");
    assert!(text(&failed.trace).starts_with("at GetBrowsersTest.BrowserNamesTest1.FailTest"));
    assert_eq!(
        failed.suite.as_ref().map(SuiteName::as_str),
        Some("GetBrowsersTest.BrowserNamesTest1")
    );

    // IEUnit writes unqualified names and lower-case booleans.
    let ieunit = parse_fixture("nunit2/NUnit-issue1077.xml");
    let change = result(&ieunit, "testChangePassword");
    assert_eq!(change.status, ResultStatus::Passed);
    assert_eq!(
        change.suite.as_ref().map(SuiteName::as_str),
        Some("AdministrationPasswordTest")
    );
    assert_eq!(change.duration_ms.map(|d| d.get()), Some(10_100));
    assert_eq!(ieunit.summary.name.as_deref(), Some("IEUnit Tests"));
}

#[test]
fn a_nunit_2_case_with_a_failure_but_no_result_failed() {
    let report = parse_report_str(
        "<test-results total=\"2\" failures=\"1\"><test-suite name=\"S\"><results>\
         <test-case name=\"S.ok\" executed=\"True\"/>\
         <test-case name=\"S.broken\" executed=\"True\"><failure><message>no</message></failure></test-case>\
         </results></test-suite></test-results>",
    );
    assert_eq!(result(&report, "ok").status, ResultStatus::Passed);
    assert_eq!(result(&report, "broken").status, ResultStatus::Failed);
    assert_eq!(text(&result(&report, "broken").message), "no");
}

/// NUnit 3's totals: `total` (warnings are not counted in it, but in the suites'
/// `warnings`), `passed`, `failed` (errors included), `skipped`, `inconclusive`.
#[test]
fn nunit_3_reports_count_what_their_summary_states() {
    for (name, [total, passed, failed, skipped, inconclusive, warnings], errored) in [
        ("nunit3/NUnit-issue56241-failure.xml", [1, 0, 1, 0, 0, 0], 0),
        ("nunit3/NUnit-issue56241-warning.xml", [0, 0, 0, 0, 0, 1], 0),
        ("nunit3/NUnit-issue48478.xml", [3, 3, 0, 0, 0, 0], 0),
        ("nunit3/issue-27906.xml", [9, 9, 0, 0, 0, 0], 0),
        // Two of the five failures are labelled `Error`.
        ("nunit3/dotnet-nunit.xml", [9, 3, 5, 1, 0, 0], 2),
    ] {
        let xml = String::from_utf8(fixture(name)).unwrap();
        let count = |attribute| attribute_sum(&xml, "test-run", attribute);
        assert_eq!(
            [
                count("total"),
                count("passed"),
                count("failed"),
                count("skipped"),
                count("inconclusive")
            ],
            [total, passed, failed, skipped, inconclusive],
            "{name}: the summary the test states"
        );
        let report = parse_fixture(name);
        assert_eq!(report.summary.format, ReportFormat::Nunit3, "{name}");
        assert_eq!(
            report.counts(),
            Counts {
                total: total + warnings,
                passed: passed + warnings,
                failed: failed - errored,
                errored,
                skipped: skipped + inconclusive,
                flaky: 0,
                quarantined: 0,
            },
            "{name}"
        );
    }
}

#[test]
fn nunit_3_labels_messages_and_output() {
    let report = parse_fixture("nunit3/dotnet-nunit.xml");
    assert_eq!(
        report.summary.tool.as_deref(),
        Some("NUnit engine 3.12.0.0")
    );
    assert_eq!(
        report.summary.name.as_deref(),
        Some("DotnetTests.NUnitV3Tests.dll")
    );
    let error = result(&report, "Exception_In_TargetTest");
    assert_eq!(error.status, ResultStatus::Errored);
    assert_eq!(
        text(&error.message),
        "System.DivideByZeroException : Attempted to divide by zero."
    );
    assert_eq!(
        error.suite.as_ref().map(SuiteName::as_str),
        Some("DotnetTests.XUnitTests.CalculatorTests")
    );
    assert_eq!(
        error.started_at.map(|at| at.unix_timestamp()),
        Some(1_624_911_821)
    );
    let failing = result(&report, "Failing_Test");
    assert_eq!(failing.status, ResultStatus::Failed);
    assert_eq!(text(&failing.message), "Expected: 3\n  But was:  2");
    assert_eq!(failing.duration_ms.map(|d| d.get()), Some(28));
    assert_eq!(
        result(&report, "Timeout_Test").status,
        ResultStatus::Failed,
        "NUnit counts a timeout as a failure"
    );
    let skipped = result(&report, "Skipped_Test");
    assert_eq!(skipped.status, ResultStatus::Skipped);
    assert_eq!(text(&skipped.message), "Skipped");
    assert_eq!(
        skipped.attributes.get("_SKIPREASON"),
        None,
        "NUnit's own properties stay out"
    );
    assert_eq!(
        result(&report, "Passing_Test_With_Description")
            .attributes
            .get("Description"),
        Some("Some description")
    );
    assert_eq!(
        result(&report, "Is_Even_Number(3)").status,
        ResultStatus::Failed
    );

    let warning = parse_fixture("nunit3/NUnit-issue56241-warning.xml");
    let method = result(&warning, "TestMethod1");
    assert_eq!(method.status, ResultStatus::Passed);
    assert_eq!(text(&method.message), "Example Warning Messages");

    let output = parse_fixture("nunit3/NUnit-issue48478.xml");
    assert!(text(&result(&output, "TestAllRawData").stdout).ends_with("Checking 241 log ids\r\n"));
}

#[test]
fn nunit_3_cases_named_alike_are_told_apart() {
    let report = parse_fixture("nunit3/issue-27906.xml");
    let names: Vec<&str> = report
        .results
        .iter()
        .take(3)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "LinkWorks(Saucery3.ValueSources.PlatformTestData)",
            "LinkWorks(Saucery3.ValueSources.PlatformTestData) #2",
            "LinkWorks(Saucery3.ValueSources.PlatformTestData) #3"
        ]
    );
    assert!(text(&report.results[1].stdout).contains("LinkWorks_Mac 10.10_iphone_8.2"));
}

#[test]
fn nunit_3_suites_that_fail_without_cases_are_warned_about() {
    let report = parse_report_str(
        "<test-run total=\"1\" passed=\"1\">\n\
         <test-suite type=\"TestFixture\" fullname=\"A.Broken\" result=\"Failed\" label=\"Error\">\n\
         <failure><message>OneTimeSetUp: boom</message></failure></test-suite>\n\
         <test-suite type=\"TestFixture\" fullname=\"A.Teardown\" result=\"Failed\" site=\"TearDown\">\n\
         <failure><message>cleanup failed</message></failure>\n\
         <test-case name=\"ok\" result=\"Passed\"/></test-suite>\n\
         <test-case name=\"odd\" result=\"Exploded\"/></test-run>",
    );
    assert_eq!(
        report.warnings,
        [
            "line 2, column 1: the suite \"A.Broken\" failed and lists no test case: OneTimeSetUp: boom",
            "line 4, column 1: the suite \"A.Teardown\" failed in its one-time teardown: cleanup failed",
            "line 7, column 1: the result \"Exploded\" is not one NUnit writes; it is read as skipped"
        ]
    );
    assert_eq!(result(&report, "odd").status, ResultStatus::Skipped);
}

fn parse_report_str(xml: &str) -> verdict_runs::import::ParsedReport {
    verdict_runs::import::parse_report(std::io::Cursor::new(xml.as_bytes()))
        .unwrap_or_else(|err| panic!("{err}"))
}
