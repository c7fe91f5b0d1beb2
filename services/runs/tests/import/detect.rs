//! Every report's format is told by its content, whatever its name.

use std::io::Cursor;

use verdict_runs::import::{detect_format, parse_report, ImportError};

use crate::support::{fixture, FIXTURES};

#[test]
fn every_fixture_is_told_by_its_content() {
    for (name, format) in FIXTURES {
        let mut input = Cursor::new(fixture(name));
        assert_eq!(detect_format(&mut input).unwrap(), format, "{name}");
        assert_eq!(
            input.position(),
            0,
            "{name}: detection leaves the input at its start"
        );
    }
}

#[test]
fn a_file_of_no_known_format_names_what_it_holds() {
    for (bytes, found) in [
        (
            &b"<?xml version=\"1.0\"?>\n<html><body/></html>"[..],
            "XML whose root element is <html>",
        ),
        (b"\x89PNG\r\n", "neither XML nor JSON"),
        (b"", "an empty file"),
    ] {
        let err = parse_report(Cursor::new(bytes)).unwrap_err();
        assert!(
            matches!(&err, ImportError::UnknownFormat(what) if what == found),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("not a report format Verdict reads: found {found}; expected JUnit XML, NUnit 2 or 3 XML, xUnit.net v2 XML, TRX or CTRF JSON")
        );
    }
}
