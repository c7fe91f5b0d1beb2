//! Which format a report is in, told by its content: the root element of an XML
//! document, or a JSON object. File names and `Content-Type` say nothing reliable (a
//! TRX is XML, so is NUnit's), so the import endpoint and `verdict report` both ask
//! [`detect_format`].

use std::io::{Read, Seek, SeekFrom};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{ImportError, ReportFormat};

/// How much of a report is read to tell its format: room for a long XML prolog
/// (declaration, comments, doctype) before the root element.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// The format of the report `input` holds, which is left positioned at its start.
/// A report of no known format is refused with what was found instead.
pub fn detect_format(input: &mut (impl Read + Seek)) -> Result<ReportFormat, ImportError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    input
        .by_ref()
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(ImportError::Read)?;
    input.seek(SeekFrom::Start(0)).map_err(ImportError::Read)?;
    format_of(&head).map_err(ImportError::UnknownFormat)
}

/// The format of a report that begins with `head`, or what was found instead.
fn format_of(head: &[u8]) -> Result<ReportFormat, String> {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match text.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => Err("an empty file".to_owned()),
        Some(b'{') => Ok(ReportFormat::Ctrf),
        Some(b'<') => format_of_root(&root_element(text)?),
        Some(b'[') => Err("a JSON array, not an object".to_owned()),
        Some(_) => Err("neither XML nor JSON".to_owned()),
    }
}

fn format_of_root(root: &str) -> Result<ReportFormat, String> {
    ReportFormat::of_root_element(root).ok_or_else(|| format!("XML whose root element is <{root}>"))
}

/// The local name of the first element of an XML document's beginning.
fn root_element(head: &[u8]) -> Result<String, String> {
    let mut reader = Reader::from_reader(head);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                let name = element.local_name();
                let name: &str = name.as_ref();
                return Ok(name.to_owned());
            }
            Ok(Event::Eof) => {
                return Err(if head.len() < SNIFF_BYTES {
                    "XML without a root element".to_owned()
                } else {
                    format!("XML without a root element in its first {SNIFF_BYTES} bytes")
                });
            }
            Ok(_) => {}
            // A prolog cut by the sniffing window is not broken, only unfinished.
            Err(_) if head.len() >= SNIFF_BYTES => {
                return Err(format!(
                    "XML without a root element in its first {SNIFF_BYTES} bytes"
                ));
            }
            Err(err) => {
                return Err(format!(
                    "XML that is not well-formed before its root element ({err})"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_told_by_its_root_element_or_json_shape() {
        for (head, format) in [
            (
                &b"<?xml version=\"1.0\"?>\n<testsuites/>"[..],
                ReportFormat::Junit,
            ),
            (b"\xef\xbb\xbf  <testsuite name=\"a\">", ReportFormat::Junit),
            (
                b"<!-- results --><test-results total=\"1\">",
                ReportFormat::Nunit2,
            ),
            (
                b"<?xml version=\"1.0\"?><test-run id=\"2\">",
                ReportFormat::Nunit3,
            ),
            (b"<!DOCTYPE x><assemblies>", ReportFormat::Xunit2),
            (
                b"<TestRun xmlns=\"http://microsoft.com/schemas/VisualStudio/TeamTest/2010\">",
                ReportFormat::Trx,
            ),
            (b"\n {\"results\": {}}", ReportFormat::Ctrf),
        ] {
            assert_eq!(
                format_of(head),
                Ok(format),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn unknown_files_are_named_by_what_they_hold() {
        for (head, found) in [
            (&b"<html><body/></html>"[..], "XML whose root element is <html>"),
            (b"  \n", "an empty file"),
            (b"hello", "neither XML nor JSON"),
            (b"[1, 2]", "a JSON array, not an object"),
            (b"<?xml version=\"1.0\"?>", "XML without a root element"),
            (b"<!-- never closed", "XML that is not well-formed before its root element (syntax error: comment not closed: `-->` not found before end of input)"),
        ] {
            assert_eq!(format_of(head), Err(found.to_owned()));
        }
    }

    #[test]
    fn a_prolog_longer_than_the_window_is_named() {
        let mut head = b"<!--".to_vec();
        head.resize(SNIFF_BYTES, b'x');
        assert_eq!(
            format_of(&head),
            Err(format!(
                "XML without a root element in its first {SNIFF_BYTES} bytes"
            ))
        );
    }

    #[test]
    fn detection_leaves_the_input_at_its_start() {
        let mut input = std::io::Cursor::new(b"<test-run/>".to_vec());
        assert_eq!(detect_format(&mut input).unwrap(), ReportFormat::Nunit3);
        assert_eq!(input.position(), 0);
    }
}
