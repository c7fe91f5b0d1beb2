//! Whatever bytes arrive, the importers return a report within the limits or an error
//! that says where; they never panic, and how the input is split into reads does not
//! change the outcome.

use proptest::prelude::*;
use verdict_runs::import::{parse_ctrf, parse_junit, ImportError, ParsedReport};

use crate::support::{assert_located, assert_within_limits, fixture, Trickle, FIXTURES};

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

fn parse_either(name: &str, bytes: &[u8]) -> Result<ParsedReport, ImportError> {
    if name.ends_with(".json") {
        parse_ctrf(bytes)
    } else {
        parse_junit(bytes)
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&parse_junit(&bytes[..]));
        check(&parse_ctrf(&bytes[..]));
    }

    #[test]
    fn mutated_fixtures_never_panic_and_stay_bounded(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let name = FIXTURES[which];
        let bytes = mutate(fixture(name), &mutations);
        check(&parse_junit(&bytes[..]));
        check(&parse_ctrf(&bytes[..]));
        let whole = parse_either(name, &bytes);
        let pieces = if name.ends_with(".json") {
            parse_ctrf(Trickle { bytes: &bytes, step: 3 })
        } else {
            parse_junit(Trickle { bytes: &bytes, step: 3 })
        };
        prop_assert!(same(&whole, &pieces), "splitting reads changed the outcome");
    }

    #[test]
    fn generated_junit_documents_parse_the_same_in_any_pieces(
        document in junit_document(),
        step in 1usize..16,
    ) {
        let whole = parse_junit(document.as_bytes());
        check(&whole);
        let pieces = parse_junit(Trickle { bytes: document.as_bytes(), step });
        prop_assert!(same(&whole, &pieces), "splitting reads changed the outcome");
    }
}
