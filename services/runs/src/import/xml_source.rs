//! The byte source under quick-xml, and the reading of character data around it.
//!
//! quick-xml reads each piece of markup whole, and would read each text node whole too.
//! So text is read here instead, straight from the buffer into capped text: references
//! and CDATA sections included, quick-xml only ever sees markup. The source caps how
//! much one piece of markup may take, and knows the line and column of what it has
//! handed out, so errors can say where they are without the document being kept.

use std::io::{self, BufRead, Read};

use quick_xml::Reader;

use crate::domain::limits::MAX_XML_MARKUP_BYTES;
use crate::domain::CappedTextBuilder;

use super::error::Location;

const BUFFER_BYTES: usize = 64 * 1024;
/// Newlines remembered inside one piece of markup, to place errors inside it. Markup
/// with more lines than this is not written by any test tool; errors in it are placed
/// at its last remembered line.
const MAX_TRACKED_MARKUP_NEWLINES: usize = 1024;

pub(super) struct XmlSource<R> {
    inner: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes consumed so far: the offset of the next byte.
    offset: u64,
    line: u64,
    line_start: u64,
    markup: Option<MarkupRead>,
    /// Where the last piece of markup began, kept after it ends so that attribute errors
    /// found later can still be placed.
    markup_start: LinePoint,
    markup_newlines: Vec<u64>,
    over_budget: bool,
}

/// The budget of the piece of markup quick-xml is reading.
struct MarkupRead {
    remaining: usize,
}

#[derive(Clone, Copy)]
struct LinePoint {
    offset: u64,
    line: u64,
    line_start: u64,
}

impl<R: Read> XmlSource<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            buffer: vec![0; BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            line: 1,
            line_start: 0,
            markup: None,
            markup_start: LinePoint {
                offset: 0,
                line: 1,
                line_start: 0,
            },
            markup_newlines: Vec::new(),
            over_budget: false,
        }
    }

    /// quick-xml is about to read one piece of markup: cap it and note where it starts.
    pub(super) fn begin_markup(&mut self) {
        self.markup = Some(MarkupRead {
            remaining: MAX_XML_MARKUP_BYTES,
        });
        self.markup_start = LinePoint {
            offset: self.offset,
            line: self.line,
            line_start: self.line_start,
        };
        self.markup_newlines.clear();
    }

    pub(super) fn end_markup(&mut self) {
        self.markup = None;
    }

    /// Whether the last read failed because a piece of markup was too long.
    pub(super) fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// The position of the next byte to be read.
    pub(super) fn position(&self) -> Location {
        Location::Position {
            line: self.line,
            column: self.offset - self.line_start + 1,
        }
    }

    /// The offset of the `<` that began the last piece of markup.
    pub(super) fn markup_offset(&self) -> u64 {
        self.markup_start.offset
    }

    /// The position of `offset`, which lies in the last piece of markup (offsets
    /// outside it are placed at its start).
    pub(super) fn markup_position(&self, offset: u64) -> Location {
        let start = self.markup_start;
        let offset = offset.max(start.offset);
        let (line, line_start) = self
            .markup_newlines
            .iter()
            .take_while(|&&newline| newline < offset)
            .fold((start.line, start.line_start), |(line, _), &newline| {
                (line + 1, newline + 1)
            });
        Location::Position {
            line,
            column: offset.saturating_sub(line_start) + 1,
        }
    }

    /// The buffered bytes, at least `wanted` of them unless the input ends first.
    pub(super) fn peek(&mut self, wanted: usize) -> io::Result<&[u8]> {
        while self.end - self.start < wanted && !self.eof {
            if self.buffer.len() - self.start < wanted {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            self.read_more()?;
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn read_more(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

impl<R: Read> Read for XmlSource<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let copied = available.len().min(out.len());
        out[..copied].copy_from_slice(&available[..copied]);
        self.consume(copied);
        Ok(copied)
    }
}

impl<R: Read> BufRead for XmlSource<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end && !self.eof {
            self.start = 0;
            self.end = 0;
            self.read_more()?;
        }
        let mut available = self.end - self.start;
        if let Some(markup) = &self.markup {
            if markup.remaining == 0 && available > 0 {
                self.over_budget = true;
                return Err(io::Error::other(format!(
                    "one piece of markup is longer than {MAX_XML_MARKUP_BYTES} bytes"
                )));
            }
            available = available.min(markup.remaining);
        }
        Ok(&self.buffer[self.start..self.start + available])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.end - self.start);
        let consumed = &self.buffer[self.start..self.start + amount];
        for index in memchr::memchr_iter(b'\n', consumed) {
            let newline = self.offset + index as u64;
            self.line += 1;
            self.line_start = newline + 1;
            if self.markup.is_some() && self.markup_newlines.len() < MAX_TRACKED_MARKUP_NEWLINES {
                self.markup_newlines.push(newline);
            }
        }
        if let Some(markup) = &mut self.markup {
            markup.remaining = markup.remaining.saturating_sub(amount);
        }
        self.start += amount;
        self.offset += amount as u64;
    }
}

const CDATA_OPEN: &[u8] = b"<![CDATA[";
const CDATA_CLOSE: &[u8] = b"]]>";
/// The longest reference read: `&#x10FFFF;` with room for leading zeros.
const MAX_REFERENCE_BYTES: usize = 32;

/// Why character data could not be read.
pub(super) enum CharDataError {
    Io(io::Error),
    Syntax { at: Location, reason: String },
}

impl From<io::Error> for CharDataError {
    fn from(err: io::Error) -> Self {
        CharDataError::Io(err)
    }
}

/// Reads character data up to the next piece of markup or the end of the input, giving
/// the decoded text to `sink`, or dropping it when there is none.
pub(super) fn read_char_data<R: Read>(
    reader: &mut Reader<XmlSource<R>>,
    mut sink: Option<&mut CappedTextBuilder>,
) -> Result<(), CharDataError> {
    let mut stream = reader.stream();
    loop {
        let chunk = stream.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        let Some(stop) = memchr::memchr2(b'<', b'&', chunk) else {
            let read = chunk.len();
            feed(&mut sink, chunk);
            stream.consume(read);
            continue;
        };
        let special = chunk[stop];
        feed(&mut sink, &chunk[..stop]);
        stream.consume(stop);
        let source = stream.get_mut();
        let at = source.position();
        if special == b'&' {
            let buffered = source.peek(MAX_REFERENCE_BYTES)?;
            let window = &buffered[..buffered.len().min(MAX_REFERENCE_BYTES)];
            let Some(end) = memchr::memchr(b';', window) else {
                return Err(CharDataError::Syntax {
                    at,
                    reason: "`&` must start a reference ended by `;`, such as `&amp;`".to_owned(),
                });
            };
            let reference = String::from_utf8_lossy(&window[..=end]);
            let text =
                quick_xml::escape::unescape(&reference).map_err(|err| CharDataError::Syntax {
                    at,
                    reason: err.to_string(),
                })?;
            feed(&mut sink, text.as_bytes());
            stream.consume(end + 1);
        } else if source.peek(CDATA_OPEN.len())?.starts_with(CDATA_OPEN) {
            stream.consume(CDATA_OPEN.len());
            read_cdata(&mut stream, &mut sink, at)?;
        } else {
            return Ok(());
        }
    }
}

/// Reads the rest of a CDATA section whose opening began at `at`.
fn read_cdata<R: Read>(
    stream: &mut quick_xml::reader::BinaryStream<'_, XmlSource<R>>,
    sink: &mut Option<&mut CappedTextBuilder>,
    at: Location,
) -> Result<(), CharDataError> {
    loop {
        let chunk = stream.fill_buf()?;
        if let Some(end) = memchr::memmem::find(chunk, CDATA_CLOSE) {
            feed(sink, &chunk[..end]);
            stream.consume(end + CDATA_CLOSE.len());
            return Ok(());
        }
        if chunk.len() < CDATA_CLOSE.len() {
            // The closing `]]>` may straddle the end of the buffer.
            if stream.get_mut().peek(CDATA_CLOSE.len())?.len() < CDATA_CLOSE.len() {
                return Err(CharDataError::Syntax {
                    at,
                    reason: "the CDATA section is not closed by `]]>`".to_owned(),
                });
            }
            continue;
        }
        let safe = chunk.len() - (CDATA_CLOSE.len() - 1);
        feed(sink, &chunk[..safe]);
        stream.consume(safe);
    }
}

fn feed(sink: &mut Option<&mut CappedTextBuilder>, bytes: &[u8]) {
    if let Some(sink) = sink {
        sink.push_bytes(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_lines_consumed() {
        let mut source = XmlSource::new(&b"ab\ncd\nef"[..]);
        source.fill_buf().unwrap();
        source.consume(4);
        assert_eq!(source.position(), Location::Position { line: 2, column: 2 });
    }

    #[test]
    fn positions_inside_markup_are_recovered_after_it_was_consumed() {
        let mut source = XmlSource::new(&b"x\n<a\n  b='1'\n  c>"[..]);
        source.fill_buf().unwrap();
        source.consume(2);
        source.begin_markup();
        source.fill_buf().unwrap();
        source.consume(15);
        source.end_markup();
        assert_eq!(
            source.markup_position(2),
            Location::Position { line: 2, column: 1 }
        );
        assert_eq!(
            source.markup_position(7),
            Location::Position { line: 3, column: 3 }
        );
        assert_eq!(
            source.markup_position(0),
            Location::Position { line: 2, column: 1 }
        );
    }

    #[test]
    fn markup_beyond_the_budget_is_an_error() {
        let big = vec![b'a'; MAX_XML_MARKUP_BYTES + 10];
        let mut source = XmlSource::new(&big[..]);
        source.begin_markup();
        let mut taken = 0;
        let failed = loop {
            match source.fill_buf() {
                Ok([]) => break false,
                Ok(chunk) => {
                    let n = chunk.len();
                    taken += n;
                    source.consume(n);
                }
                Err(_) => break true,
            }
        };
        assert!(failed && source.over_budget());
        assert_eq!(taken, MAX_XML_MARKUP_BYTES);
    }

    #[test]
    fn peek_looks_across_reads() {
        // A reader that hands out one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                out[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut source = XmlSource::new(Trickle(b"<![CDATA[x]]>"));
        assert_eq!(&source.peek(9).unwrap()[..9], b"<![CDATA[");
        let mut short = XmlSource::new(Trickle(b"<!["));
        assert_eq!(short.peek(9).unwrap(), b"<![");
    }
}
