//! Output read as it comes: chunks cut into bounded lines, lines read by the formats,
//! the tests they finished handed on as results the API takes.

use verdict_contracts::runs::ResultInput;

use super::formats::{Format, Stream, TestOutcome};
use super::lines::{Lines, MAX_LINE_BYTES};

/// One output (the command's stdout, or a followed file) being read.
pub struct Reader {
    lines: Lines,
    stream: Stream,
    finished: Vec<TestOutcome>,
}

impl Reader {
    pub fn new(format: Format) -> Self {
        Reader {
            lines: Lines::new(MAX_LINE_BYTES),
            stream: Stream::new(format),
            finished: Vec::new(),
        }
    }

    /// Reads a chunk of output; answers the results it finished.
    pub fn chunk(&mut self, bytes: &[u8]) -> Vec<ResultInput> {
        let Reader {
            lines,
            stream,
            finished,
        } = self;
        lines.push(bytes, |line| stream.line(line, finished));
        self.take()
    }

    /// Nothing came for a while.
    pub fn idle(&mut self) -> Vec<ResultInput> {
        self.stream.idle(&mut self.finished);
        self.take()
    }

    /// The output ended.
    pub fn end(&mut self) -> Vec<ResultInput> {
        let Reader {
            lines,
            stream,
            finished,
        } = self;
        lines.finish(|line| stream.line(line, finished));
        stream.end(finished);
        self.take()
    }

    fn take(&mut self) -> Vec<ResultInput> {
        self.finished
            .drain(..)
            .map(TestOutcome::into_input)
            .collect()
    }
}
