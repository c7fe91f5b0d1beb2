//! How numbers, times and statuses read on a page.

use maud::{html, Markup};
use verdict_contracts::runs::Counts;

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

pub fn optional_duration(ms: Option<u64>) -> String {
    ms.map(duration).unwrap_or_else(|| "—".to_owned())
}

/// An RFC 3339 time as `2026-11-25 10:04:05 UTC`, in a `<time>` element that keeps the
/// exact value.
pub fn time(rfc3339: &str) -> Markup {
    let readable = rfc3339
        .get(..19)
        .map(|head| format!("{} UTC", head.replace('T', " ")))
        .unwrap_or_else(|| rfc3339.to_owned());
    html! { time datetime=(rfc3339) { (readable) } }
}

/// A status word in a badge; the word itself carries the meaning, colour only helps.
pub fn status(word: &str) -> Markup {
    html! { span class={ "status s-" (word) } data-status=(word) { (word) } }
}

/// Share of finished tests in each outcome, for a progress bar: `(class, percent)`.
pub fn shares(counts: &Counts) -> Vec<(&'static str, f64)> {
    let total = counts.total.max(1) as f64;
    let passed = counts.passed.saturating_sub(counts.flaky);
    [
        ("passed", passed),
        ("flaky", counts.flaky),
        ("failed", counts.failed + counts.errored),
        ("skipped", counts.skipped),
    ]
    .into_iter()
    .map(|(class, n)| (class, n as f64 * 100.0 / total))
    .collect()
}

/// A run's counts as a bar (SVG: no inline styles) and in words.
pub fn progress(counts: &Counts) -> Markup {
    let segments: Vec<(&str, f64, f64)> = shares(counts)
        .into_iter()
        .scan(0.0, |x, (class, share)| {
            let start = *x;
            *x += share;
            Some((class, start, share))
        })
        .collect();
    html! {
        svg.bar viewBox="0 0 100 4" preserveAspectRatio="none" role="img"
            aria-label={ (counts.total) " tests" } data-bar {
            @for (class, x, width) in segments {
                rect class=(class) data-segment=(class) x=(format!("{x:.3}")) y="0"
                    width=(format!("{width:.3}")) height="4" {}
            }
        }
    }
}

pub fn counts(counts: &Counts) -> Markup {
    html! {
        span.counts data-counts {
            span data-count="total" { (counts.total) } " tests · "
            span.c-passed data-count="passed" { (counts.passed) } " passed · "
            span.c-failed data-count="failed" { (counts.failed) } " failed · "
            span.c-errored data-count="errored" { (counts.errored) } " errored · "
            span.c-skipped data-count="skipped" { (counts.skipped) } " skipped · "
            span.c-flaky data-count="flaky" { (counts.flaky) } " flaky"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        assert_eq!(duration(7_380_000), "2 h 03 min");
    }

    #[test]
    fn times_read_without_the_t_and_keep_the_exact_value() {
        let markup = time("2026-11-25T10:04:05.123Z").into_string();
        assert!(markup.contains("2026-11-25 10:04:05 UTC"), "{markup}");
        assert!(markup.contains(r#"datetime="2026-11-25T10:04:05.123Z""#));
    }

    #[test]
    fn shares_add_up_to_the_whole_bar_with_flaky_taken_from_passed() {
        let counts = Counts {
            total: 10,
            passed: 6,
            failed: 2,
            skipped: 1,
            errored: 1,
            flaky: 1,
            quarantined: 0,
        };
        let shares = shares(&counts);
        assert_eq!(shares[0], ("passed", 50.0));
        assert_eq!(shares[1], ("flaky", 10.0));
        assert_eq!(shares[2], ("failed", 30.0));
        let sum: f64 = shares.iter().map(|(_, s)| s).sum();
        assert!((sum - 100.0).abs() < 1e-9);
    }
}
