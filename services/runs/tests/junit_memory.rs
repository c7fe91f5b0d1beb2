//! A 50 MB JUnit report, generated on the fly, streams through the parser in a few
//! megabytes: the parser holds one piece of markup and one test case at a time, and
//! cuts huge output while reading it. Its own binary, because it counts every
//! allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

use verdict_runs::domain::limits::MAX_OUTPUT_BYTES;
use verdict_runs::domain::ResultStatus;
use verdict_runs::import::{JunitReader, ReportItem};

/// The system allocator, keeping count of live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters have
// no influence on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CASES: usize = 8_000;
const CASE_OUTPUT_LINE: &str = "2026-03-01T10:00:00Z INFO request handled &amp; logged in 3 ms\n";
const GIANT_BYTES: usize = 10 * 1024 * 1024;

/// Writes a JUnit report piece by piece as it is read: many ordinary cases with a few
/// kilobytes of output each, every tenth failing, then one case whose stdout (CDATA)
/// and stderr (escaped text) are 10 MB each.
struct GeneratedReport {
    pending: Vec<u8>,
    read: usize,
    stage: Stage,
    written: u64,
}

enum Stage {
    Header,
    Case(usize),
    GiantStdout(usize),
    GiantStderr(usize),
    Footer,
    Done,
}

impl GeneratedReport {
    fn new() -> Self {
        Self {
            pending: Vec::with_capacity(128 * 1024),
            read: 0,
            stage: Stage::Header,
            written: 0,
        }
    }

    fn refill(&mut self) {
        self.pending.clear();
        self.read = 0;
        let out = &mut self.pending;
        self.stage = match self.stage {
            Stage::Header => {
                out.extend_from_slice(b"<?xml version=\"1.0\"?>\n<testsuites name=\"generated\">\n<testsuite name=\"big\">\n");
                Stage::Case(0)
            }
            Stage::Case(i) if i < CASES => {
                out.extend_from_slice(
                    format!("<testcase classname=\"big.Suite{}\" name=\"case {i}\" time=\"0.010\">\n<system-out>", i / 100)
                        .as_bytes(),
                );
                for _ in 0..60 {
                    out.extend_from_slice(CASE_OUTPUT_LINE.as_bytes());
                }
                out.extend_from_slice(b"</system-out>\n");
                if i % 10 == 0 {
                    out.extend_from_slice(
                        format!("<failure message=\"boom {i}\"><![CDATA[java.lang.AssertionError: boom\n\tat Big.case{i}(Big.java:1)\n]]></failure>\n")
                            .as_bytes(),
                    );
                }
                out.extend_from_slice(b"</testcase>\n");
                Stage::Case(i + 1)
            }
            Stage::Case(_) => {
                out.extend_from_slice(b"<testcase name=\"giant\"><system-out><![CDATA[");
                Stage::GiantStdout(0)
            }
            Stage::GiantStdout(done) if done < GIANT_BYTES => {
                out.resize(64 * 1024, b'o');
                Stage::GiantStdout(done + 64 * 1024)
            }
            Stage::GiantStdout(_) => {
                out.extend_from_slice(b"]]></system-out><system-err>");
                Stage::GiantStderr(0)
            }
            Stage::GiantStderr(done) if done < GIANT_BYTES => {
                for _ in 0..(64 * 1024 / 16) {
                    out.extend_from_slice(b"err &lt;&gt; \xc3\xa9\n");
                }
                Stage::GiantStderr(done + 64 * 1024)
            }
            Stage::GiantStderr(_) => {
                out.extend_from_slice(b"</system-err></testcase>\n</testsuite>\n</testsuites>\n");
                Stage::Footer
            }
            Stage::Footer | Stage::Done => Stage::Done,
        };
    }
}

impl Read for GeneratedReport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read == self.pending.len() {
            if matches!(self.stage, Stage::Done) {
                return Ok(0);
            }
            self.refill();
        }
        let n = buf.len().min(self.pending.len() - self.read);
        buf[..n].copy_from_slice(&self.pending[self.read..self.read + n]);
        self.read += n;
        self.written += n as u64;
        Ok(n)
    }
}

#[test]
fn a_50_mb_report_streams_in_bounded_memory() {
    let mut input = GeneratedReport::new();
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);

    let mut reader = JunitReader::new(&mut input);
    let (mut results, mut failed, mut giant) = (0usize, 0usize, None);
    for item in reader.by_ref() {
        if let ReportItem::Result(result) = item.unwrap() {
            results += 1;
            failed += usize::from(result.status == ResultStatus::Failed);
            let stdout = result.stdout.as_ref().map_or(0, |s| s.as_str().len());
            assert!(stdout <= MAX_OUTPUT_BYTES);
            if result.name.as_str() == "giant" {
                giant = Some(result);
            }
        }
    }
    drop(reader);
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    let written = input.written;

    assert!(written > 50_000_000, "generated only {written} bytes");
    assert_eq!(results, CASES + 1);
    assert_eq!(failed, CASES / 10);
    let giant = giant.unwrap();
    let stdout = giant.stdout.as_ref().unwrap().as_str();
    let stderr = giant.stderr.as_ref().unwrap().as_str();
    assert_eq!(stdout.len(), MAX_OUTPUT_BYTES);
    assert!(stdout.starts_with("oooo") && stdout.ends_with(" bytes]"));
    assert!(stderr.len() <= MAX_OUTPUT_BYTES && stderr.starts_with("err <> é\n"));
    println!("parsed {written} bytes with a peak of {peak} bytes allocated");
    assert!(peak < 8 * 1024 * 1024, "peak allocation was {peak} bytes");
}
