//! Failure signatures: a failure's message and the first lines of its trace with what
//! changes from one occurrence to the next (numbers, hex, UUIDs, times, temporary paths,
//! line numbers, addresses, terminal colours) replaced by placeholders, so the same
//! error with other numbers groups under one signature.

use sha2::{Digest, Sha256};

/// How many lines of the trace join the message: the exception line and the frames
/// nearest the failure.
const TRACE_LINES: usize = 3;
/// How much of the message and trace is read, in characters: a signature is about the
/// start of an error, and this bounds the work per failure.
const MAX_INPUT_CHARS: usize = 2048;
/// The longest pattern kept, in bytes.
const MAX_PATTERN_BYTES: usize = 1024;
/// Path starts that are temporary directories (compared lower-cased).
const TEMP_PREFIXES: [&str; 7] = [
    "/tmp/",
    "/var/tmp/",
    "/var/folders/",
    "/private/var/folders/",
    "/private/tmp/",
    "/dev/shm/",
    "file:///tmp/",
];

/// The pattern of failures without message or trace.
pub const NO_MESSAGE: &str = "(no message)";

/// A failure's signature: the normalised text and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// 16 hex digits of the pattern's SHA-256.
    pub id: String,
    pub pattern: String,
}

impl Signature {
    /// The signature of a failure; failures that say nothing (no message, no trace)
    /// share the signature [`NO_MESSAGE`].
    pub fn of(message: Option<&str>, trace: Option<&str>) -> Signature {
        let mut input = String::new();
        if let Some(message) = message {
            input.push_str(message);
        }
        if let Some(trace) = trace {
            for line in trace
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(TRACE_LINES)
            {
                input.push('\n');
                input.push_str(line);
            }
        }
        let mut pattern = normalise(&input);
        if pattern.is_empty() {
            NO_MESSAGE.clone_into(&mut pattern);
        }
        let digest = Sha256::digest(pattern.as_bytes());
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Signature { id, pattern }
    }
}

/// Whether `id` could be a signature id (so a malformed one is refused, not looked up).
pub fn is_signature_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The text with its varying parts replaced and its whitespace collapsed.
pub fn normalise(text: &str) -> String {
    let chars: Vec<char> = strip_ansi(text).chars().take(MAX_INPUT_CHARS).collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && is_word(chars[i - 1]);
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            continue;
        }
        if !after_word {
            if let Some(len) = temp_path_at(&chars[i..]) {
                out.push_str("{tmp}");
                i += len;
                continue;
            }
            if let Some(len) = uuid_at(&chars[i..]) {
                out.push_str("{uuid}");
                i += len;
                continue;
            }
        }
        if is_word(c) {
            let end = i + chars[i..].iter().take_while(|c| is_word(**c)).count();
            push_word(&mut out, &chars[i..end]);
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    let mut pattern = collapse_times(&out.trim_end().replace("{n}.{n}", "{n}"));
    if pattern.len() > MAX_PATTERN_BYTES {
        let mut end = MAX_PATTERN_BYTES;
        while !pattern.is_char_boundary(end) {
            end -= 1;
        }
        pattern.truncate(end);
    }
    pattern
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A word as it goes into the pattern: `0x…` and hex ids become `{hex}`, digit runs
/// `{n}`, anything else stays.
fn push_word(out: &mut String, word: &[char]) {
    let hex_digits = |chars: &[char]| chars.iter().all(char::is_ascii_hexdigit);
    let prefixed = word.len() > 2 && word[0] == '0' && matches!(word[1], 'x' | 'X');
    if prefixed && hex_digits(&word[2..]) {
        out.push_str("{hex}");
        return;
    }
    let has_digit = word.iter().any(char::is_ascii_digit);
    let has_letter = word.iter().any(char::is_ascii_alphabetic);
    if word.len() >= 6 && has_digit && has_letter && hex_digits(word) {
        out.push_str("{hex}");
        return;
    }
    let mut in_number = false;
    for &c in word {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("{n}");
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
}

/// The length of a UUID (8-4-4-4-12 hex digits) at the start of `chars`, if one is there
/// and ends at a word boundary.
fn uuid_at(chars: &[char]) -> Option<usize> {
    let mut at = 0;
    for (index, group) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if index > 0 {
            (chars.get(at) == Some(&'-')).then_some(())?;
            at += 1;
        }
        let digits = chars.get(at..at + group)?;
        digits.iter().all(char::is_ascii_hexdigit).then_some(())?;
        at += group;
    }
    match chars.get(at) {
        Some(&c) if is_word(c) => None,
        _ => Some(at),
    }
}

/// The length of a temporary path at the start of `chars`: up to whitespace, a quote or
/// a closing bracket.
fn temp_path_at(chars: &[char]) -> Option<usize> {
    let len = chars
        .iter()
        .take_while(|c| {
            !c.is_whitespace() && !matches!(c, '\'' | '"' | '`' | ')' | ']' | '>' | ',')
        })
        .count();
    if len < 5 {
        return None;
    }
    let path: String = chars[..len].iter().collect::<String>().to_lowercase();
    let windows_temp = path.len() > 3
        && path.as_bytes()[1] == b':'
        && (path.contains("\\temp\\") || path.contains("/temp/"));
    (windows_temp || TEMP_PREFIXES.iter().any(|prefix| path.starts_with(prefix))).then_some(len)
}

/// Dates with times (`{n}-{n}-{n}T{n}:{n}:{n}`, with a space or `T`, any zone) become
/// `{time}`.
fn collapse_times(pattern: &str) -> String {
    const DATE: &str = "{n}-{n}-{n}";
    const CLOCK: &str = "{n}:{n}:{n}";
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(at) = rest.find(DATE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + DATE.len()..];
        let clock = after
            .strip_prefix('T')
            .or_else(|| after.strip_prefix(' '))
            .and_then(|after| after.strip_prefix(CLOCK));
        match clock {
            Some(after) => {
                let zone = after
                    .strip_prefix('Z')
                    .or_else(|| after.strip_prefix("+{n}:{n}"))
                    .or_else(|| after.strip_prefix("-{n}:{n}"))
                    .unwrap_or(after);
                out.push_str("{time}");
                rest = zone;
            }
            None => {
                out.push_str("{date}");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text without terminal colour codes (`ESC [ … letter`), which Jest and
/// Playwright put in their messages.
fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(message: &str, trace: Option<&str>) -> Signature {
        Signature::of(Some(message), trace)
    }

    fn same(a: (&str, Option<&str>), b: (&str, Option<&str>)) {
        let (a, b) = (sig(a.0, a.1), sig(b.0, b.1));
        assert_eq!(a, b, "\n{}\n{}", a.pattern, b.pattern);
    }

    fn differ(a: &str, b: &str) {
        assert_ne!(sig(a, None).id, sig(b, None).id);
    }

    #[test]
    fn junit5_assertions_with_other_values_and_line_numbers_share_a_signature() {
        let trace = |line: u32| {
            format!(
                "org.opentest4j.AssertionFailedError: expected: <42> but was: <41>\n\
                 \tat org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)\n\
                 \tat org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:150)\n\
                 \tat com.example.CartTest.totalIncludesTax(CartTest.java:{line})"
            )
        };
        let (a, b) = (trace(27), trace(31));
        same(
            ("expected: <42> but was: <41>", Some(&a)),
            ("expected: <7> but was: <1000>", Some(&b)),
        );
        assert_eq!(
            sig("expected: <42> but was: <41>", None).pattern,
            "expected: <{n}> but was: <{n}>"
        );
    }

    #[test]
    fn junit4_and_java_object_addresses_are_stripped() {
        same(
            (
                "expected:<com.example.Money@1b6d3586> but was:<com.example.Money@4554617c>",
                None,
            ),
            (
                "expected:<com.example.Money@7a81197d> but was:<com.example.Money@5ca881b5>",
                None,
            ),
        );
    }

    #[test]
    fn assertj_messages_with_other_ids_and_amounts_share_a_signature() {
        same(
            (
                "\nExpecting actual:\n  \"Order[id=7f3c9a2e-1b4d-4c8e-9f2a-3b5c6d7e8f90, total=12.50]\"\nto be equal to:\n  \"Order[id=7f3c9a2e-1b4d-4c8e-9f2a-3b5c6d7e8f90, total=12.00]\"\nwhen comparing values using 'Order::equals'",
                None,
            ),
            (
                "\nExpecting actual:\n  \"Order[id=0191a4c2-9e7b-7c3d-8a1f-112233445566, total=99.95]\"\nto be equal to:\n  \"Order[id=0191a4c2-9e7b-7c3d-8a1f-112233445566, total=100.00]\"\nwhen comparing values using 'Order::equals'",
                None,
            ),
        );
        differ(
            "\nExpecting actual:\n  [1, 2, 3]\nto contain:\n  [4]\nbut could not find the following element(s):\n  [4]\n",
            "\nExpecting value to be true but was false",
        );
    }

    #[test]
    fn pytest_assertions_and_temporary_paths_share_a_signature() {
        same(
            (
                "AssertionError: assert 3 == 4\n +  where 3 = add(1, 2)",
                Some("tests/test_math.py:12: in test_add\n    assert add(1, 2) == 4\nE   AssertionError: assert 3 == 4"),
            ),
            (
                "AssertionError: assert 5 == 6\n +  where 5 = add(2, 3)",
                Some("tests/test_math.py:14: in test_add\n    assert add(2, 3) == 6\nE   AssertionError: assert 5 == 6"),
            ),
        );
        same(
            ("FileNotFoundError: [Errno 2] No such file or directory: '/tmp/pytest-of-runner/pytest-12/test_export0/out.csv'", None),
            ("FileNotFoundError: [Errno 2] No such file or directory: '/tmp/pytest-of-ci/pytest-3/test_export1/out.csv'", None),
        );
        assert_eq!(
            sig("No such file: '/tmp/pytest-of-ci/pytest-3/x.csv'", None).pattern,
            "No such file: '{tmp}'"
        );
    }

    #[test]
    fn jest_messages_lose_their_colours_and_values() {
        let coloured = "\u{1b}[2mexpect(\u{1b}[22m\u{1b}[31mreceived\u{1b}[39m\u{1b}[2m).\u{1b}[22mtoBe\u{1b}[2m(\u{1b}[22m\u{1b}[32mexpected\u{1b}[39m\u{1b}[2m) // Object.is equality\u{1b}[22m\n\nExpected: \u{1b}[32m5\u{1b}[39m\nReceived: \u{1b}[31m4\u{1b}[39m";
        same(
            (coloured, Some("    at Object.<anonymous> (/home/runner/work/app/src/sum.test.js:4:17)")),
            (
                "expect(received).toBe(expected) // Object.is equality\n\nExpected: 10\nReceived: 9",
                Some("    at Object.<anonymous> (/home/runner/work/app/src/sum.test.js:9:3)"),
            ),
        );
        assert!(!sig(coloured, None).pattern.contains('\u{1b}'));
    }

    #[test]
    fn playwright_timeouts_with_other_durations_share_a_signature() {
        same(
            ("Error: Timed out 5000ms waiting for expect(locator).toBeVisible()\n\nLocator: getByRole('button', { name: 'Checkout' })\nExpected: visible\nReceived: <element(s) not found>", None),
            ("Error: Timed out 10000ms waiting for expect(locator).toBeVisible()\n\nLocator: getByRole('button', { name: 'Checkout' })\nExpected: visible\nReceived: <element(s) not found>", None),
        );
        same(
            (
                "page.goto: net::ERR_CONNECTION_REFUSED at http://localhost:3000/cart",
                None,
            ),
            (
                "page.goto: net::ERR_CONNECTION_REFUSED at http://localhost:41235/cart",
                None,
            ),
        );
        differ(
            "locator.click: Timeout 30000ms exceeded.",
            "page.goto: net::ERR_CONNECTION_REFUSED at http://localhost:3000/cart",
        );
    }

    #[test]
    fn go_test_failures_and_panics_share_a_signature() {
        same(
            ("    cart_test.go:42: Total() = 41, want 42", None),
            ("    cart_test.go:57: Total() = 7, want 9", None),
        );
        same(
            (
                "panic: runtime error: index out of range [5] with length 3",
                Some("goroutine 7 [running]:\ntesting.tRunner.func1.2({0x5f1e60, 0x6b3c20})\n\t/usr/local/go/src/testing/testing.go:1545 +0x238"),
            ),
            (
                "panic: runtime error: index out of range [9] with length 2",
                Some("goroutine 21 [running]:\ntesting.tRunner.func1.2({0x5f2a80, 0x6c1d40})\n\t/usr/local/go/src/testing/testing.go:1545 +0x1f4"),
            ),
        );
    }

    #[test]
    fn rust_assertions_and_panics_share_a_signature() {
        same(
            (
                "assertion `left == right` failed\n  left: 41\n right: 42",
                Some("thread 'cart::tests::total' panicked at src/cart.rs:88:9:"),
            ),
            (
                "assertion `left == right` failed\n  left: 3\n right: 4",
                Some("thread 'cart::tests::total' panicked at src/cart.rs:90:13:"),
            ),
        );
        differ(
            "assertion `left == right` failed\n  left: 41\n right: 42",
            "called `Result::unwrap()` on an `Err` value: Os { code: 2, kind: NotFound, message: \"No such file or directory\" }",
        );
    }

    #[test]
    fn timestamps_become_one_placeholder_whatever_their_zone() {
        assert_eq!(
            sig(
                "deadline 2026-12-06T14:00:20.123Z passed at 2026-12-06 14:00:21+01:00",
                None
            )
            .pattern,
            "deadline {time} passed at {time}"
        );
    }

    #[test]
    fn windows_temporary_paths_are_stripped() {
        same(
            (
                r"cannot open C:\Users\runner\AppData\Local\Temp\junit123\report.xml",
                None,
            ),
            (
                r"cannot open C:\Users\ci\AppData\Local\Temp\junit987\report.xml",
                None,
            ),
        );
    }

    #[test]
    fn words_with_digits_keep_their_letters() {
        assert_eq!(
            sig("user42 has no sha256", None).pattern,
            "user{n} has no sha{n}"
        );
    }

    #[test]
    fn failures_that_say_nothing_share_one_signature() {
        assert_eq!(Signature::of(None, None).pattern, NO_MESSAGE);
        assert_eq!(
            Signature::of(Some(" \n "), Some("\n")),
            Signature::of(None, None)
        );
    }

    #[test]
    fn a_long_message_makes_a_bounded_pattern_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let signature = sig(&long, None);
        assert!(signature.pattern.len() <= MAX_PATTERN_BYTES);
        assert!(is_signature_id(&signature.id));
    }

    #[test]
    fn only_sixteen_lower_hex_digits_are_a_signature_id() {
        assert!(is_signature_id("0123456789abcdef"));
        assert!(!is_signature_id("0123456789ABCDEF"));
        assert!(!is_signature_id("0123"));
    }
}
