//! Visual Studio TRX reports written by mstest.exe and `dotnet test --logger trx`.

use std::io::Cursor;

use verdict_runs::domain::{Counts, ResultStatus, SuiteName};
use verdict_runs::import::{parse_report, ParsedReport, ReportFormat};

use crate::support::{attempts, attribute_sum, fixture, fixtures_of, parse_fixture, result, text};

fn parse_str(xml: &str) -> ParsedReport {
    parse_report(Cursor::new(xml.as_bytes())).unwrap_or_else(|err| panic!("{err}"))
}

/// `<Counters>`: `total`, `passed`, `failed`, and `error`, `timeout` and `aborted`,
/// which did not run to a verdict; the rest of `total` (`notExecuted`, and what
/// vstest leaves out of `executed`) did not run.
#[test]
fn trx_reports_count_what_their_counters_state() {
    for name in fixtures_of(ReportFormat::Trx) {
        let xml = String::from_utf8(fixture(name)).unwrap();
        let count = |attribute| attribute_sum(&xml, "Counters", attribute);
        let errored = count("error") + count("timeout") + count("aborted");
        let report = parse_fixture(name);
        assert_eq!(report.summary.format, ReportFormat::Trx, "{name}");
        assert_eq!(
            report.counts(),
            Counts {
                total: count("total"),
                passed: count("passed"),
                failed: count("failed"),
                errored,
                skipped: count("total") - count("passed") - count("failed") - errored,
                flaky: 0,
                quarantined: 0,
            },
            "{name}"
        );
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    }
}

#[test]
fn classes_come_from_the_test_definitions() {
    // Two tests named alike in two assemblies, classes qualified by mstest.exe.
    let report = parse_fixture("trx/mstest_2_tests_from_different_assemblies.trx");
    let suites: Vec<(&str, ResultStatus)> = attempts(&report, "TestYell")
        .iter()
        .map(|r| (r.suite.as_ref().unwrap().as_str(), r.status))
        .collect();
    assert_eq!(
        suites,
        [
            ("GoodGuyTest.GoodGuyTest", ResultStatus::Failed),
            ("ProjectNumberOneTest.BoringGuyTest", ResultStatus::Passed)
        ]
    );
    let failed = &attempts(&report, "TestYell")[0];
    assert_eq!(
        text(&failed.message),
        "Assert.AreEqual failed. Expected:<lala!>. Actual:<Lele!!>."
    );
    assert!(text(&failed.trace).ends_with("GoodGuyTest.cs:line 16"));
    assert_eq!(failed.duration_ms.map(|d| d.get()), Some(44));
    assert_eq!(
        report.summary.name.as_deref(),
        Some("koiti.takahashi@TECNOLOGIA137 2009-06-15 19:16:52")
    );

    let long = parse_fixture("trx/mstest_more_than_one_minute_test.trx");
    assert_eq!(
        result(&long, "CalculaFibonacci")
            .duration_ms
            .map(|d| d.get()),
        Some(130_016)
    );
    assert_eq!(long.summary.duration_ms.map(|d| d.get()), Some(484));
}

#[test]
fn dotnet_test_results_lose_their_class_prefix() {
    let report = parse_fixture("trx/dotnet-trx.trx");
    let failing = result(&report, "Failing_Test");
    assert_eq!(
        failing.suite.as_ref().map(SuiteName::as_str),
        Some("DotnetTests.XUnitTests.CalculatorTests")
    );
    assert_eq!(
        text(&failing.message),
        "Assert.Equal() Failure\r\nExpected: 3\r\nActual:   2"
    );
    assert_eq!(
        failing.started_at.map(|at| at.unix_timestamp()),
        Some(1_602_963_544)
    );
    let skipped = result(&report, "Skipped_Test");
    assert_eq!(skipped.status, ResultStatus::Skipped);
    assert_eq!(text(&skipped.stdout), "Skipped test");
    assert_eq!(
        result(&report, "Custom Name").status,
        ResultStatus::Passed,
        "a display name of its own stays whole"
    );

    let mstest = parse_fixture("trx/MSTest-net8.0-sample.trx");
    let theory = result(&mstest, "TestTheory (False)");
    assert_eq!(theory.status, ResultStatus::Failed);
    assert_eq!(
        theory.suite.as_ref().map(SuiteName::as_str),
        Some("SampleProject.MSTest.TestServiceTests")
    );
    assert_eq!(
        result(&mstest, "TestTheory (True)").status,
        ResultStatus::Passed
    );
    let skipped = result(&mstest, "SkipTest");
    assert_eq!(skipped.status, ResultStatus::Skipped);
    assert_eq!(text(&skipped.message), "Skipped");
    assert_eq!(skipped.duration_ms, None);
    assert_eq!(
        text(&result(&mstest, "AttachImage").stdout),
        "TestContext Messages:\r\nAttach an image"
    );
}

const HEAD: &str =
    "<TestRun xmlns=\"http://microsoft.com/schemas/VisualStudio/TeamTest/2010\"><Results>";
const DEFINITIONS: &str = "</Results><TestDefinitions>\
    <UnitTest name=\"Rows\" id=\"11111111-1111-1111-1111-111111111111\"><TestMethod className=\"Shop.CartTests\" name=\"Rows\"/></UnitTest>\
    </TestDefinitions>";

#[test]
fn data_rows_and_retries_inside_a_result_stand_for_it() {
    let report = parse_str(&format!(
        "{HEAD}\
         <UnitTestResult testId=\"11111111-1111-1111-1111-111111111111\" testName=\"Rows\" outcome=\"Failed\" resultType=\"DataDrivenTest\">\
         <InnerResults>\
         <UnitTestResult testId=\"11111111-1111-1111-1111-111111111111\" testName=\"Rows (Data Row 0)\" outcome=\"Passed\" resultType=\"DataDrivenDataRow\"/>\
         <UnitTestResult testId=\"11111111-1111-1111-1111-111111111111\" testName=\"Rows (Data Row 1)\" outcome=\"Failed\" resultType=\"DataDrivenDataRow\">\
         <Output><ErrorInfo><Message>row 1 broke</Message></ErrorInfo></Output></UnitTestResult>\
         <UnitTestResult testId=\"11111111-1111-1111-1111-111111111111\" testName=\"Rows (Data Row 1)\" outcome=\"Passed\"/>\
         </InnerResults></UnitTestResult>{DEFINITIONS}</TestRun>"
    ));
    let rows: Vec<(&str, u32, ResultStatus)> = report
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.attempt.get(), r.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("Rows (Data Row 0)", 1, ResultStatus::Passed),
            ("Rows (Data Row 1)", 1, ResultStatus::Failed),
            ("Rows (Data Row 1)", 2, ResultStatus::Passed)
        ],
        "the parent is not a test of its own; a repeated row is a retry"
    );
    assert!(report
        .results
        .iter()
        .all(|r| r.suite.as_ref().map(SuiteName::as_str) == Some("Shop.CartTests")));
    assert_eq!(
        report.counts(),
        Counts {
            total: 2,
            passed: 2,
            flaky: 1,
            quarantined: 0,
            ..Counts::default()
        }
    );
}

#[test]
fn outcomes_without_a_verdict_and_unknown_ones() {
    let report = parse_str(&format!(
        "{HEAD}\
         <UnitTestResult testName=\"slow\" outcome=\"Timeout\" duration=\"1.00:00:00\"/>\
         <UnitTestResult testName=\"cut\" outcome=\"Aborted\"/>\
         <UnitTestResult testName=\"maybe\" outcome=\"Inconclusive\"/>\
         <UnitTestResult testName=\"odd\" outcome=\"Exploded\"/>\
         <UnitTestResult outcome=\"Passed\"/>\
         </Results></TestRun>"
    ));
    use ResultStatus::{Errored, Skipped};
    for (name, status) in [
        ("slow", Errored),
        ("cut", Errored),
        ("maybe", Skipped),
        ("odd", Skipped),
    ] {
        assert_eq!(result(&report, name).status, status, "{name}");
    }
    assert_eq!(
        result(&report, "slow").duration_ms.map(|d| d.get()),
        Some(86_400_000)
    );
    assert_eq!(result(&report, "(unnamed 1)").status, ResultStatus::Passed);
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
}

#[test]
fn a_failed_run_without_failed_tests_is_named_in_a_warning() {
    let report = parse_str(&format!(
        "{HEAD}<UnitTestResult testName=\"fine\" outcome=\"Passed\"/></Results>\n\
         <ResultSummary outcome=\"Failed\"><Counters total=\"1\" passed=\"1\"/><RunInfos>\
         <RunInfo outcome=\"Warning\"><Text>noise</Text></RunInfo>\
         <RunInfo outcome=\"Error\"><Text>The active test run was aborted. Reason: Test host process crashed</Text></RunInfo>\
         </RunInfos></ResultSummary></TestRun>"
    ));
    assert_eq!(
        report.warnings,
        ["line 2, column 1: the run's outcome is Failed though no test failed: The active test run was aborted. Reason: Test host process crashed"]
    );
}
