//! Whatever bytes arrive, every reader returns a report within the limits or an error
//! that says where; none panics, and how the input is split into reads does not change
//! the outcome.

use std::io::Cursor;

use proptest::prelude::*;
use verdict_runs::import::{parse_junit, parse_report, ImportError, ParsedReport, ReportFormat};

use crate::support::{assert_located, assert_within_limits, fixture, parse_as, Trickle, FIXTURES};

const FORMATS: [ReportFormat; 6] = [
    ReportFormat::Junit,
    ReportFormat::Nunit2,
    ReportFormat::Nunit3,
    ReportFormat::Xunit2,
    ReportFormat::Trx,
    ReportFormat::Ctrf,
];

fn check(outcome: &Result<ParsedReport, ImportError>) {
    match outcome {
        Ok(report) => assert_within_limits(report),
        Err(err) => assert_located(err),
    }
}

/// Two outcomes are the same report, or errors that read the same.
fn same(a: &Result<ParsedReport, ImportError>, b: &Result<ParsedReport, ImportError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = prop::sample::select(vec![
        b"<".to_vec(),
        b">".to_vec(),
        b"&".to_vec(),
        b"\"".to_vec(),
        b"]]>".to_vec(),
        b"<![CDATA[".to_vec(),
        b"<testcase name=\"x\">".to_vec(),
        b"</testsuite>".to_vec(),
        b"<flakyFailure>".to_vec(),
        b"<test-case name=\"x\" result=\"Failed\" label=\"Error\">".to_vec(),
        b"<test-suite type=\"TestFixture\" fullname=\"F\">".to_vec(),
        b"<test name=\"t\" type=\"T\" result=\"Fail\">".to_vec(),
        b"<UnitTestResult testName=\"x\" outcome=\"Failed\">".to_vec(),
        b"<InnerResults>".to_vec(),
        b"</Results>".to_vec(),
        b"{".to_vec(),
        b"[".to_vec(),
        b",".to_vec(),
        b"\\".to_vec(),
        b"\xff\xfe".to_vec(),
        "€".as_bytes().to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (
            any::<usize>(),
            prop_oneof![tokens, prop::collection::vec(any::<u8>(), 1..8)]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Mutation::Insert(at, inserted) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Replace(at, byte) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = *byte;
                }
            }
            Mutation::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                let copy = bytes[at.min(end)..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

/// A JUnit-shaped document from the importer's vocabulary, with hostile text.
fn junit_document() -> impl Strategy<Value = String> {
    let text = prop::sample::select(vec![
        "",
        "plain",
        " &amp; ",
        "&lt;x&gt;",
        "<![CDATA[a]]b]]>",
        "<!-- c -->",
        "\u{e9}\u{20ac}",
        "\n\n",
    ]);
    let leaf = (
        prop::sample::select(vec![
            "testcase",
            "failure",
            "error",
            "skipped",
            "system-out",
            "system-err",
            "properties",
            "property",
            "flakyFailure",
            "rerunError",
            "stackTrace",
            "other",
        ]),
        prop::sample::select(vec![
            "",
            " name=\"a\"",
            " name=\"b\" classname=\"c\"",
            " message=\"m&#10;n\"",
            " time=\"0.5\"",
            " name=\"p\" value=\"v\"",
            " time=\"x\"",
        ]),
        text.clone(),
    )
        .prop_map(|(tag, attributes, text)| format!("<{tag}{attributes}>{text}</{tag}>"));
    let tree = leaf.prop_recursive(6, 64, 6, move |inner| {
        (
            prop::sample::select(vec![
                "testsuite",
                "testsuites",
                "testcase",
                "flakyError",
                "properties",
            ]),
            prop::sample::select(vec![
                "",
                " name=\"s\"",
                " name=\"t\" tests=\"3\" failures=\"1\"",
            ]),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(tag, attributes, children)| {
                format!("<{tag}{attributes}>{}</{tag}>", children.concat())
            })
    });
    tree.prop_map(|body| format!("<testsuites>{body}</testsuites>"))
}

/// A document from the vocabulary of the .NET formats (NUnit 2 and 3, xUnit.net, TRX),
/// under one of their roots, with hostile text; the elements of each nest in any order.
fn dotnet_document() -> impl Strategy<Value = (ReportFormat, String)> {
    let text = prop::sample::select(vec![
        "",
        "plain",
        "&lt;x&gt; &amp;",
        "<![CDATA[a]]b]]>",
        "00:00:01.5000000",
        "\u{e9}\n",
    ]);
    let leaf = (
        prop::sample::select(vec![
            "test-case",
            "failure",
            "message",
            "stack-trace",
            "reason",
            "output",
            "property",
            "category",
            "test",
            "trait",
            "error",
            "UnitTestResult",
            "UnitTest",
            "TestMethod",
            "StdOut",
            "ErrorInfo",
            "Message",
            "StackTrace",
            "Counters",
            "RunInfo",
            "Text",
        ]),
        prop::sample::select(vec![
            "",
            " name=\"a\" result=\"Failed\" label=\"Error\"",
            " name=\"N.C.M(1)\" result=\"Success\" executed=\"True\"",
            " name=\"b\" type=\"T\" result=\"Skip\" time=\"0,5\"",
            " testName=\"T.m\" testId=\"55ef2114-eb39-77d8-4031-3da68d0dc505\" outcome=\"Timeout\" duration=\"00:00:02\"",
            " id=\"55ef2114-eb39-77d8-4031-3da68d0dc505\" className=\"T, A\"",
            " outcome=\"Error\" total=\"3\"",
            " name=\"Category\" value=\"v\"",
        ]),
        text,
    )
        .prop_map(|(tag, attributes, text)| format!("<{tag}{attributes}>{text}</{tag}>"));
    let tree = leaf.prop_recursive(6, 64, 6, |inner| {
        (
            prop::sample::select(vec![
                "test-suite",
                "results",
                "test-case",
                "assembly",
                "collection",
                "errors",
                "Results",
                "UnitTestResult",
                "InnerResults",
                "Output",
                "TestDefinitions",
                "UnitTest",
                "ResultSummary",
                "RunInfos",
            ]),
            prop::sample::select(vec![
                "",
                " type=\"TestFixture\" fullname=\"F\" result=\"Failed\" site=\"TearDown\"",
                " name=\"A.dll\" total=\"2\" errors=\"1\"",
                " testName=\"T.m\" outcome=\"Passed\"",
                " outcome=\"Failed\"",
            ]),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(tag, attributes, children)| {
                format!("<{tag}{attributes}>{}</{tag}>", children.concat())
            })
    });
    (
        prop::sample::select(vec![
            (ReportFormat::Nunit2, "test-results"),
            (ReportFormat::Nunit3, "test-run"),
            (ReportFormat::Xunit2, "assemblies"),
            (ReportFormat::Trx, "TestRun"),
        ]),
        tree,
    )
        .prop_map(|((format, root), body)| (format, format!("<{root}>{body}</{root}>")))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for format in FORMATS {
            check(&parse_as(format, Cursor::new(&bytes[..])));
        }
        check(&parse_report(Cursor::new(&bytes[..])));
    }

    #[test]
    fn mutated_fixtures_never_panic_and_stay_bounded(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (name, format) = FIXTURES[which];
        let bytes = mutate(fixture(name), &mutations);
        for other in FORMATS {
            check(&parse_as(other, Cursor::new(&bytes[..])));
        }
        let whole = parse_as(format, Cursor::new(&bytes[..]));
        let pieces = parse_as(format, Trickle::new(&bytes, 3));
        prop_assert!(same(&whole, &pieces), "splitting reads changed the outcome");
    }

    #[test]
    fn generated_junit_documents_parse_the_same_in_any_pieces(
        document in junit_document(),
        step in 1usize..16,
    ) {
        let whole = parse_junit(document.as_bytes());
        check(&whole);
        let pieces = parse_junit(Trickle::new(document.as_bytes(), step));
        prop_assert!(same(&whole, &pieces), "splitting reads changed the outcome");
    }

    #[test]
    fn generated_dotnet_documents_parse_the_same_in_any_pieces(
        (format, document) in dotnet_document(),
        step in 1usize..16,
    ) {
        let whole = parse_as(format, Cursor::new(document.as_bytes()));
        check(&whole);
        let pieces = parse_as(format, Trickle::new(document.as_bytes(), step));
        prop_assert!(same(&whole, &pieces), "splitting reads changed the outcome");
    }
}
