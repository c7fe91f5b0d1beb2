//! Figures over a window of runs (pass rates, duration percentiles) and pages of lists
//! ranked by such figures.

use std::cmp::Reverse;

use verdict_contracts::runs::ResultStatus;

/// The `p`th percentile (nearest rank) of `sorted`, which is in ascending order.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    sorted.get(nearest_rank(sorted.len(), p)?).copied()
}

/// The index of the `p`th percentile (nearest rank) among `len` sorted values.
fn nearest_rank(len: usize, p: u32) -> Option<usize> {
    let rank = (u64::from(p) * len as u64).div_ceil(100).max(1);
    (len > 0).then(|| rank as usize - 1)
}

/// What a test did in the runs of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestRecord {
    pub runs: u64,
    pub passed: u64,
    pub pass_rate: f64,
    pub p50_duration_ms: Option<u64>,
    pub p95_duration_ms: Option<u64>,
}

impl TestRecord {
    /// The record of a test's outcomes (status and duration, one per run).
    pub fn of(outcomes: impl IntoIterator<Item = (ResultStatus, Option<u64>)>) -> Self {
        let mut runs = 0;
        let mut passed = 0;
        let mut durations = Vec::new();
        for (status, duration) in outcomes {
            runs += 1;
            passed += u64::from(status == ResultStatus::Passed);
            durations.extend(duration);
        }
        durations.sort_unstable();
        TestRecord {
            runs,
            passed,
            pass_rate: if runs == 0 {
                0.0
            } else {
                passed as f64 / runs as f64
            },
            p50_duration_ms: percentile(&durations, 50),
            p95_duration_ms: percentile(&durations, 95),
        }
    }

    /// The same record from outcomes already in ascending order of duration (those
    /// without one first, as a sort leaves them), without collecting the durations: the
    /// slowest tests compute one for each of tens of thousands of tests.
    pub fn of_sorted<I>(outcomes: I) -> Self
    where
        I: Iterator<Item = (ResultStatus, Option<u64>)> + Clone,
    {
        let (mut runs, mut passed, mut timed) = (0u64, 0u64, 0usize);
        for (status, duration) in outcomes.clone() {
            runs += 1;
            passed += u64::from(status == ResultStatus::Passed);
            timed += usize::from(duration.is_some());
        }
        let durations = outcomes.filter_map(|(_, duration)| duration);
        let at = |p| nearest_rank(timed, p).and_then(|rank| durations.clone().nth(rank));
        TestRecord {
            runs,
            passed,
            pass_rate: if runs == 0 {
                0.0
            } else {
                passed as f64 / runs as f64
            },
            p50_duration_ms: at(50),
            p95_duration_ms: at(95),
        }
    }
}

/// A place in a list ranked by two figures, largest first, ties broken by an integer
/// key, smallest first. It is the list's page cursor, so a page follows on from the
/// last item of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    primary: Reverse<u64>,
    secondary: Reverse<u64>,
    key: i64,
}

impl Rank {
    pub fn new(primary: u64, secondary: u64, key: i64) -> Self {
        Rank {
            primary: Reverse(primary),
            secondary: Reverse(secondary),
            key,
        }
    }

    /// The figures and the key, for a cursor.
    pub fn parts(&self) -> [String; 3] {
        [
            self.primary.0.to_string(),
            self.secondary.0.to_string(),
            self.key.to_string(),
        ]
    }

    /// Reads [`Rank::parts`] back.
    pub fn from_parts(parts: &[String]) -> Option<Rank> {
        match parts {
            [primary, secondary, key] => Some(Rank::new(
                primary.parse().ok()?,
                secondary.parse().ok()?,
                key.parse().ok()?,
            )),
            _ => None,
        }
    }
}

/// The page of `items` after `after`, at most `limit` long, in rank order; and the rank
/// of its last item when more follow.
pub fn rank_page<T>(
    items: Vec<T>,
    rank: impl Fn(&T) -> Rank,
    after: Option<Rank>,
    limit: usize,
) -> (Vec<T>, Option<Rank>) {
    let mut ranked: Vec<(Rank, T)> = items
        .into_iter()
        .map(|item| (rank(&item), item))
        .filter(|(position, _)| after.is_none_or(|after| *position > after))
        .collect();
    ranked.sort_unstable_by_key(|(position, _)| *position);
    let more = ranked.len() > limit;
    ranked.truncate(limit);
    let next = more
        .then(|| ranked.last().map(|(position, _)| *position))
        .flatten();
    (ranked.into_iter().map(|(_, item)| item).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResultStatus::{Failed, Passed};

    #[test]
    fn percentiles_are_nearest_rank() {
        let durations: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&durations, 50), Some(50));
        assert_eq!(percentile(&durations, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn a_record_of_sorted_outcomes_is_the_record_of_the_same_outcomes() {
        let statuses = [
            ResultStatus::Passed,
            ResultStatus::Failed,
            ResultStatus::Skipped,
        ];
        for len in 0..45 {
            let mut outcomes: Vec<(ResultStatus, Option<u64>)> = (0..len)
                .map(|i| {
                    let duration = (i % 7 != 3).then_some((i * 37 % 101) as u64);
                    (statuses[i % 3], duration)
                })
                .collect();
            outcomes.sort_unstable_by_key(|(_, duration)| *duration);
            assert_eq!(
                TestRecord::of_sorted(outcomes.iter().copied()),
                TestRecord::of(outcomes.iter().copied()),
                "{len} outcomes"
            );
        }
    }

    #[test]
    fn a_record_counts_passes_and_ignores_missing_durations() {
        let record = TestRecord::of([
            (Passed, Some(10)),
            (Failed, None),
            (Passed, Some(30)),
            (Passed, Some(20)),
        ]);
        assert_eq!((record.runs, record.passed), (4, 3));
        assert!((record.pass_rate - 0.75).abs() < 1e-9);
        assert_eq!(record.p50_duration_ms, Some(20));
        assert_eq!(record.p95_duration_ms, Some(30));
    }

    #[test]
    fn pages_of_a_ranked_list_follow_on_without_gaps_or_repeats() {
        let items = vec![(5, 1, 3), (9, 0, 1), (5, 1, 2), (5, 2, 4), (1, 0, 5)];
        let rank = |item: &(u64, u64, i64)| Rank::new(item.0, item.1, item.2);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = rank_page(items.clone(), rank, after, 2);
            seen.extend(page.iter().map(|item| item.2));
            match next {
                Some(next) => after = Rank::from_parts(&next.parts()),
                None => break,
            }
        }
        assert_eq!(seen, [1, 4, 2, 3, 5]);
    }
}
