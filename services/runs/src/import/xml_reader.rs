//! The loop every XML report reader runs: quick-xml reads the markup, [`read_char_data`]
//! the text, and a [`Dialect`] (JUnit, NUnit, xUnit.net, TRX) says what each element
//! means. The loop owns what all dialects share, so each keeps the same limits and
//! placed errors: one piece of markup at a time, at most [`MAX_XML_DEPTH`] open
//! elements, capped text, one root element of a name the dialect reads, and every
//! syntax error at its line and column.

use std::collections::VecDeque;
use std::io::Read;

use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::domain::limits::{MAX_XML_DEPTH, MAX_XML_MARKUP_BYTES};
use crate::domain::{Attributes, CappedTextBuilder, SuiteName, TestName};

use super::xml_source::{read_char_data, CharDataError, XmlSource};
use super::{
    attempt_results, AttemptReport, ImportError, Location, ReportFormat, ReportItem, ReportSummary,
    Warnings,
};

/// What one report format makes of its elements. The loop keeps one frame per open
/// element (even for elements the dialect ignores): [`Dialect::open`] makes it from the
/// start tag and the frames around it, [`Dialect::close`] gets it back at the end tag
/// (an empty element gets both).
pub trait Dialect {
    type Frame;
    fn format(&self) -> ReportFormat;
    /// Where text directly inside an element goes, if it is kept.
    fn text_sink(frame: &mut Self::Frame) -> Option<&mut CappedTextBuilder>;
    /// What a start tag means inside `parents` (innermost last).
    fn open<R: Read>(
        &mut self,
        parents: &[Self::Frame],
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<Self::Frame, ImportError>;
    /// An element ended inside `parents`.
    fn close(
        &mut self,
        frame: Self::Frame,
        parents: &mut [Self::Frame],
        out: &mut Collected,
    ) -> Result<(), ImportError>;
}

/// What a dialect hands out: results as they are complete, the summary, warnings.
pub struct Collected {
    pub(super) ready: VecDeque<ReportItem>,
    pub(super) summary: ReportSummary,
    pub(super) warnings: Warnings,
}

impl Collected {
    /// Hands out one result per attempt of a finished test (see [`attempt_results`]);
    /// a test with more attempts than the limit is refused at `at`.
    pub(super) fn push_attempts(
        &mut self,
        at: Location,
        suite: Option<SuiteName>,
        name: TestName,
        attributes: Attributes,
        attempts: Vec<AttemptReport>,
    ) -> Result<(), ImportError> {
        let results = attempt_results(suite, name, attributes, attempts)
            .map_err(|err| invalid(self.summary.format, at, err.to_string()))?;
        self.ready
            .extend(results.into_iter().map(ReportItem::Result));
        Ok(())
    }
}

/// A start tag being read.
pub struct Tag<'a, R> {
    /// The local name (without a namespace prefix).
    pub(super) name: &'a str,
    /// How many elements are open around it: 0 for the root.
    pub(super) depth: usize,
    element: &'a BytesStart<'a>,
    source: &'a XmlSource<R>,
    format: ReportFormat,
}

impl<R: Read> Tag<'_, R> {
    /// Where the tag starts.
    pub(super) fn position(&self) -> Location {
        self.source.markup_position(self.source.markup_offset())
    }

    /// The content of the report at this tag breaks a rule.
    pub(super) fn invalid(&self, reason: impl Into<String>) -> ImportError {
        invalid(self.format, self.position(), reason)
    }

    pub(super) fn attributes(&self) -> Result<TagAttributes, ImportError> {
        let mut attributes = Vec::new();
        for attribute in self.element.attributes() {
            let attribute = attribute.map_err(|err| self.attribute_error(&err))?;
            let key = attribute.key.local_name().as_ref().to_owned();
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| malformed(self.format, self.position(), err.to_string()))?;
            attributes.push((key, value.into_owned()));
        }
        Ok(TagAttributes(attributes))
    }

    fn attribute_error(&self, err: &AttrError) -> ImportError {
        let within_tag = match *err {
            AttrError::ExpectedEq(at)
            | AttrError::ExpectedValue(at)
            | AttrError::UnquotedValue(at)
            | AttrError::ExpectedQuote(at, _)
            | AttrError::Duplicated(at, _) => at,
        };
        let reason = err.to_string();
        // quick-xml prefixes the reason with the offset inside the tag, which is of no
        // use once the error has a line and column.
        let reason = match reason.split_once(": ") {
            Some((prefix, rest)) if prefix.starts_with("position ") => rest.to_owned(),
            _ => reason,
        };
        // `within_tag` counts from the byte after `<`.
        let offset = self.source.markup_offset() + 1 + within_tag as u64;
        malformed(self.format, self.source.markup_position(offset), reason)
    }
}

/// The attributes of one start tag, by local name.
pub struct TagAttributes(Vec<(String, String)>);

impl TagAttributes {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// A value that says something: present and not blank.
    pub(super) fn non_blank(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.trim().is_empty())
    }
}

/// Yields the results of an XML report as its dialect completes them. After an error it
/// yields nothing more. The summary and warnings are complete once it is done.
pub struct XmlReader<R, D: Dialect> {
    reader: Reader<XmlSource<R>>,
    markup: Vec<u8>,
    /// The open elements, innermost last, and their names for error messages.
    frames: Vec<D::Frame>,
    open_names: Vec<String>,
    root_seen: bool,
    done: bool,
    collected: Collected,
    dialect: D,
}

impl<R: Read, D: Dialect> XmlReader<R, D> {
    pub(super) fn with_dialect(input: R, dialect: D) -> Self {
        let mut reader = Reader::from_reader(XmlSource::new(input));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Self {
            reader,
            markup: Vec::new(),
            frames: Vec::new(),
            open_names: Vec::new(),
            root_seen: false,
            done: false,
            collected: Collected {
                ready: VecDeque::new(),
                summary: ReportSummary::new(dialect.format()),
                warnings: Warnings::default(),
            },
            dialect,
        }
    }

    /// What the report says about itself; complete once the iterator has finished.
    pub fn summary(&self) -> &ReportSummary {
        &self.collected.summary
    }

    pub fn into_summary(self) -> ReportSummary {
        self.collected.summary
    }

    /// What was noticed but not refused; complete once the iterator has finished.
    pub fn warnings(&self) -> &Warnings {
        &self.collected.warnings
    }

    pub(super) fn into_parts(self) -> (ReportSummary, Warnings, D) {
        (
            self.collected.summary,
            self.collected.warnings,
            self.dialect,
        )
    }

    /// Reads the text before the next piece of markup, then that markup.
    fn advance(&mut self) -> Result<(), ImportError> {
        let format = self.dialect.format();
        let sink = self.frames.last_mut().and_then(D::text_sink);
        read_char_data(&mut self.reader, sink).map_err(|err| match err {
            CharDataError::Io(err) => ImportError::Read(err),
            CharDataError::Syntax { at, reason } => malformed(format, at, reason),
        })?;

        let mut markup = std::mem::take(&mut self.markup);
        markup.clear();
        self.reader.get_mut().begin_markup();
        let event = self.reader.read_event_into(&mut markup);
        self.reader.get_mut().end_markup();
        let handled = match event {
            Err(err) => Err(self.xml_error(err)),
            Ok(Event::Start(element)) => self.open(&element),
            Ok(Event::Empty(element)) => self.open(&element).and_then(|()| self.close()),
            Ok(Event::End(_)) => self.close(),
            Ok(Event::Eof) => self.finish(),
            // Declarations, comments, processing instructions and doctypes say nothing
            // about tests; text never reaches quick-xml (see `read_char_data`).
            Ok(_) => Ok(()),
        };
        self.markup = markup;
        handled
    }

    fn open(&mut self, element: &BytesStart<'_>) -> Result<(), ImportError> {
        let format = self.dialect.format();
        let source = self.reader.get_ref();
        let local_name = element.local_name();
        let tag = Tag {
            name: local_name.as_ref(),
            depth: self.open_names.len(),
            element,
            source,
            format,
        };
        if tag.depth >= MAX_XML_DEPTH {
            return Err(tag.invalid(format!("elements nest deeper than {MAX_XML_DEPTH} levels")));
        }
        if tag.depth == 0 {
            if self.root_seen {
                return Err(malformed(
                    format,
                    tag.position(),
                    format!(
                        "<{}> follows the root element; a document has one root",
                        tag.name
                    ),
                ));
            }
            let roots = self.dialect.format().root_elements();
            if !roots.contains(&tag.name) {
                return Err(tag.invalid(format!(
                    "the root element is <{}>, not {}",
                    tag.name,
                    element_list(roots)
                )));
            }
            self.root_seen = true;
        }
        let frame = self.dialect.open(&self.frames, &tag, &mut self.collected)?;
        self.frames.push(frame);
        self.open_names.push(tag.name.to_owned());
        Ok(())
    }

    fn close(&mut self) -> Result<(), ImportError> {
        // quick-xml refuses unmatched end tags before they get here.
        self.open_names.pop();
        match self.frames.pop() {
            Some(frame) => self
                .dialect
                .close(frame, &mut self.frames, &mut self.collected),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), ImportError> {
        self.done = true;
        let format = self.dialect.format();
        let at = self.reader.get_ref().position();
        if let Some(open) = self.open_names.last() {
            return Err(malformed(
                format,
                at,
                format!("the document ends inside <{open}>"),
            ));
        }
        if !self.root_seen {
            return Err(invalid(
                format,
                at,
                format!(
                    "there is no {} element",
                    element_list(format.root_elements())
                ),
            ));
        }
        Ok(())
    }

    fn xml_error(&self, err: quick_xml::Error) -> ImportError {
        let format = self.dialect.format();
        let source = self.reader.get_ref();
        if source.over_budget() {
            return malformed(
                format,
                source.markup_position(source.markup_offset()),
                format!("one piece of markup is longer than {MAX_XML_MARKUP_BYTES} bytes"),
            );
        }
        match err {
            quick_xml::Error::Io(err) => {
                ImportError::Read(std::io::Error::new(err.kind(), err.to_string()))
            }
            err => malformed(
                format,
                source.markup_position(self.reader.error_position()),
                err.to_string(),
            ),
        }
    }
}

impl<R: Read, D: Dialect> Iterator for XmlReader<R, D> {
    type Item = Result<ReportItem, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.collected.ready.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(err) = self.advance() {
                self.done = true;
                self.collected.ready.clear();
                return Some(Err(err));
            }
        }
    }
}

/// `<a>`, `<a> or <b>`, `<a>, <b> or <c>`.
fn element_list(names: &[&str]) -> String {
    let tags: Vec<String> = names.iter().map(|name| format!("<{name}>")).collect();
    match tags.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub(super) fn malformed(
    format: ReportFormat,
    at: Location,
    reason: impl Into<String>,
) -> ImportError {
    ImportError::Malformed {
        format,
        at,
        reason: reason.into(),
    }
}

pub(super) fn invalid(
    format: ReportFormat,
    at: Location,
    reason: impl Into<String>,
) -> ImportError {
    ImportError::Invalid {
        format,
        at,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_lists_read_as_prose() {
        assert_eq!(element_list(&["a"]), "<a>");
        assert_eq!(element_list(&["a", "b"]), "<a> or <b>");
        assert_eq!(element_list(&["a", "b", "c"]), "<a>, <b> or <c>");
    }
}
