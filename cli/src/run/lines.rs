//! Output cut into lines as it arrives in chunks of any size, each line bounded: a
//! runner's line longer than [`MAX_LINE_BYTES`] is passed through but not read (no
//! format's line of one test comes close), so a command that prints without newlines
//! never makes this hold more than that.

/// The longest line read, in bytes (libtest puts a failed test's whole output in one).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Splits chunks into lines.
pub struct Lines {
    limit: usize,
    partial: Vec<u8>,
    /// The line under way passed the limit: drop it up to its end.
    overlong: bool,
}

impl Lines {
    pub fn new(limit: usize) -> Self {
        Lines {
            limit,
            partial: Vec::new(),
            overlong: false,
        }
    }

    /// Takes a chunk of output; calls `line` with each line it completes (without the
    /// `\n`).
    pub fn push(&mut self, mut chunk: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            if !self.overlong && self.partial.len() + end <= self.limit {
                if self.partial.is_empty() {
                    line(&chunk[..end]);
                } else {
                    self.partial.extend_from_slice(&chunk[..end]);
                    line(&self.partial);
                }
            }
            self.partial.clear();
            self.overlong = false;
            chunk = &chunk[end + 1..];
        }
        if self.overlong {
            return;
        }
        if self.partial.len() + chunk.len() > self.limit {
            self.partial.clear();
            self.overlong = true;
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    /// The output ended: the last line, if it had no newline.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.overlong && !self.partial.is_empty() {
            line(&self.partial);
        }
        self.partial.clear();
        self.overlong = false;
    }

    /// Bytes held for the line under way.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split(limit: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Lines::new(limit);
        let mut out = Vec::new();
        for chunk in chunks {
            lines.push(chunk, |line| out.push(line.to_vec()));
        }
        lines.finish(|line| out.push(line.to_vec()));
        out
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        assert_eq!(
            split(100, &[b"ok 1 - a\nok 2", b" - b\n", b"1..2"]),
            [b"ok 1 - a".to_vec(), b"ok 2 - b".to_vec(), b"1..2".to_vec()]
        );
    }

    #[test]
    fn an_overlong_line_is_dropped_and_the_next_one_read() {
        assert_eq!(split(4, &[b"abc", b"defgh", b"ij\nok\n"]), [b"ok".to_vec()]);
    }

    proptest! {
        #[test]
        fn lines_are_bounded_and_short_lines_survive_any_chunking(
            text in proptest::collection::vec(
                prop_oneof![Just(b'\n'), any::<u8>(), Just(b'a')], 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..20),
            limit in 1usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([text.len()]) {
                chunks.push(&text[start..cut]);
                start = cut;
            }
            let mut lines = Lines::new(limit);
            let mut out = Vec::new();
            for chunk in &chunks {
                lines.push(chunk, |line| out.push(line.to_vec()));
                prop_assert!(lines.held() <= limit);
            }
            lines.finish(|line| out.push(line.to_vec()));
            let mut pieces: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            // After the last newline: a line only if something follows it.
            if pieces.last().is_some_and(|last| last.is_empty()) {
                pieces.pop();
            }
            let expected: Vec<Vec<u8>> = pieces
                .into_iter()
                .filter(|line| line.len() <= limit)
                .map(<[u8]>::to_vec)
                .collect();
            prop_assert_eq!(out, expected);
        }
    }
}
