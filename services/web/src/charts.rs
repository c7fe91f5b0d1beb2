//! Charts of a test's history, drawn on the server as SVG: a pass/fail strip and a
//! duration chart. Plain functions of the data; the page adds titles and links.

use maud::{html, Markup};
use verdict_contracts::runs::{HistoryEntry, ResultStatus};

const CELL: f64 = 12.0;
const GAP: f64 = 2.0;
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;
const MARGIN_LEFT: f64 = 56.0;
const MARGIN_BOTTOM: f64 = 20.0;

/// One cell per run, oldest left, each a link to its run with the outcome in its title.
pub fn strip(entries: &[HistoryEntry]) -> Markup {
    let width = entries.len() as f64 * (CELL + GAP);
    html! {
        svg.strip viewBox={ "0 0 " (width.max(CELL)) " " (CELL) } width=(width.max(CELL)) height=(CELL)
            role="img" aria-label={ "Outcome in the last " (entries.len()) " runs, oldest first" } {
            @for (index, entry) in entries.iter().rev().enumerate() {
                a href={ "/runs/" (entry.run_id) } {
                    title { (entry.run_name) ": " (entry.status.as_str()) " · " (entry.started_at) }
                    rect class={ "s-" (entry.status.as_str()) } x=(index as f64 * (CELL + GAP)) y="0"
                        width=(CELL) height=(CELL) rx="2" {}
                }
            }
        }
    }
}

/// Durations over time, oldest left, with the largest duration marked on the axis.
pub fn durations(entries: &[HistoryEntry]) -> Markup {
    let points: Vec<(usize, u64)> = entries
        .iter()
        .rev()
        .enumerate()
        .filter_map(|(index, entry)| entry.duration_ms.map(|ms| (index, ms)))
        .collect();
    let Some(max) = points.iter().map(|(_, ms)| *ms).max() else {
        return html! { p.muted { "No durations reported." } };
    };
    let max = max.max(1);
    let plot_width = CHART_WIDTH - MARGIN_LEFT - 8.0;
    let plot_height = CHART_HEIGHT - MARGIN_BOTTOM - 8.0;
    let step = plot_width / (entries.len().max(2) - 1) as f64;
    let position = |(index, ms): (usize, u64)| {
        (
            MARGIN_LEFT + index as f64 * step,
            8.0 + plot_height * (1.0 - ms as f64 / max as f64),
        )
    };
    let line: Vec<String> = points
        .iter()
        .map(|point| {
            let (x, y) = position(*point);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let bottom = 8.0 + plot_height;
    html! {
        svg.chart viewBox={ "0 0 " (CHART_WIDTH) " " (CHART_HEIGHT) } role="img"
            aria-label={ "Duration in the last " (points.len()) " runs, oldest first; longest " (crate::format::duration(max)) } {
            line.axis x1=(MARGIN_LEFT) y1="8" x2=(MARGIN_LEFT) y2=(bottom) {}
            line.axis x1=(MARGIN_LEFT) y1=(bottom) x2=(CHART_WIDTH - 8.0) y2=(bottom) {}
            text x=(MARGIN_LEFT - 4.0) y="14" text-anchor="end" { (crate::format::duration(max)) }
            text x=(MARGIN_LEFT - 4.0) y=(bottom) text-anchor="end" { "0" }
            polyline.series points=(line.join(" ")) {}
            @for point in &points {
                @let (x, y) = position(*point);
                circle.point cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="2.5" {
                    title { (crate::format::duration(point.1)) }
                }
            }
        }
    }
}

/// Share of consecutive runs (newest first) in which the outcome flipped between
/// passing and failing; skipped runs are left out.
pub fn flip_rate(entries: &[HistoryEntry]) -> Option<f64> {
    let outcomes: Vec<bool> = entries
        .iter()
        .filter(|entry| entry.status != ResultStatus::Skipped)
        .map(|entry| entry.status.is_failure())
        .collect();
    if outcomes.len() < 2 {
        return None;
    }
    let flips = outcomes
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    Some(flips as f64 / (outcomes.len() - 1) as f64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn entry(status: ResultStatus, duration_ms: Option<u64>) -> HistoryEntry {
        HistoryEntry {
            run_id: verdict_contracts::ids::RunId::generate(),
            run_name: "nightly".into(),
            status,
            duration_ms,
            started_at: "2026-11-25T10:00:00Z".into(),
            attributes: BTreeMap::new(),
            message: None,
        }
    }

    #[test]
    fn the_strip_has_one_cell_per_run_coloured_by_outcome() {
        let svg = strip(&[
            entry(ResultStatus::Failed, None),
            entry(ResultStatus::Passed, None),
        ])
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        // Oldest first: the passed run (older) comes before the failed one.
        assert!(svg.find("s-passed").unwrap() < svg.find("s-failed").unwrap());
    }

    #[test]
    fn the_duration_chart_scales_the_longest_run_to_the_top() {
        let svg = durations(&[
            entry(ResultStatus::Passed, Some(2000)),
            entry(ResultStatus::Passed, Some(1000)),
        ])
        .into_string();
        assert!(svg.contains("2.0 s"), "{svg}");
        assert!(svg.contains(r#"cy="8.0""#), "{svg}");
    }

    #[test]
    fn a_history_without_durations_says_so() {
        let markup = durations(&[entry(ResultStatus::Passed, None)]).into_string();
        assert!(markup.contains("No durations"));
    }

    #[test]
    fn the_flip_rate_counts_changes_between_passing_and_failing() {
        use ResultStatus::*;
        let history = [Passed, Failed, Skipped, Passed, Passed].map(|s| entry(s, None));
        assert_eq!(flip_rate(&history), Some(2.0 / 3.0));
        assert_eq!(flip_rate(&[entry(Passed, None)]), None);
    }
}
