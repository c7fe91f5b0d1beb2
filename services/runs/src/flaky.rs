//! Which tests flip between passing and failing across a window of runs.

use std::collections::HashMap;

use crate::domain::ResultStatus;
use crate::store::OutcomeRow;

/// A test's record over the window, before names are looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Flakiness {
    pub test_key: String,
    pub flips: u32,
    pub runs: u32,
    pub flake_rate: f64,
    /// Index in the window (0 = newest) of the latest run the test appeared in.
    pub last_seen: usize,
}

/// `runs` are the window's outcomes, newest first. A flip is a change between passed
/// and failed (or errored) from one run to the next, plus every run in which the test
/// passed only on a retry. Skipped runs neither flip nor break a streak. Tests that never
/// flipped are left out; the rest come flakiest first.
pub fn flaky_tests(runs: &[Vec<OutcomeRow>]) -> Vec<Flakiness> {
    struct Track {
        flips: u32,
        runs: u32,
        last: Option<bool>,
        last_seen: usize,
    }
    let mut tracks: HashMap<&str, Track> = HashMap::new();
    // Oldest first, so "last" is the previous run in time.
    for (age, outcomes) in runs.iter().enumerate().rev() {
        for outcome in outcomes {
            let track = tracks.entry(outcome.test_key.as_str()).or_insert(Track {
                flips: 0,
                runs: 0,
                last: None,
                last_seen: age,
            });
            track.runs += 1;
            track.last_seen = age;
            if outcome.status == ResultStatus::Passed && outcome.failed_earlier {
                track.flips += 1;
            }
            let passed = match outcome.status {
                ResultStatus::Passed => true,
                ResultStatus::Failed | ResultStatus::Errored => false,
                ResultStatus::Skipped => continue,
            };
            if track.last.is_some_and(|last| last != passed) {
                track.flips += 1;
            }
            track.last = Some(passed);
        }
    }
    let mut flaky: Vec<Flakiness> = tracks
        .into_iter()
        .filter(|(_, track)| track.flips > 0)
        .map(|(key, track)| Flakiness {
            test_key: key.to_owned(),
            flips: track.flips,
            runs: track.runs,
            flake_rate: f64::from(track.flips) / f64::from(track.runs),
            last_seen: track.last_seen,
        })
        .collect();
    flaky.sort_by(|a, b| {
        b.flake_rate
            .total_cmp(&a.flake_rate)
            .then(b.flips.cmp(&a.flips))
            .then(a.test_key.cmp(&b.test_key))
    });
    flaky
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResultStatus::{Failed, Passed, Skipped};

    fn outcome(key: &str, status: ResultStatus, failed_earlier: bool) -> OutcomeRow {
        OutcomeRow {
            test_key: key.into(),
            status,
            failed_earlier,
        }
    }

    #[test]
    fn a_test_that_always_passes_or_always_fails_is_not_flaky() {
        let runs = vec![
            vec![outcome("a", Passed, false), outcome("b", Failed, false)],
            vec![outcome("a", Passed, false), outcome("b", Failed, false)],
        ];
        assert!(flaky_tests(&runs).is_empty());
    }

    #[test]
    fn alternating_outcomes_count_every_change() {
        let runs = vec![
            vec![outcome("a", Passed, false)],
            vec![outcome("a", Failed, false)],
            vec![outcome("a", Passed, false)],
        ];
        let flaky = flaky_tests(&runs);
        assert_eq!(flaky[0].flips, 2);
        assert_eq!(flaky[0].runs, 3);
        assert!((flaky[0].flake_rate - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn passing_on_retry_is_a_flip_and_skips_do_not_break_a_streak() {
        let runs = vec![
            vec![outcome("a", Passed, true)],
            vec![outcome("a", Skipped, false)],
            vec![outcome("a", Passed, false)],
        ];
        let flaky = flaky_tests(&runs);
        assert_eq!(flaky[0].flips, 1);
        assert_eq!(flaky[0].last_seen, 0);
    }

    #[test]
    fn the_flakiest_test_comes_first() {
        let runs = vec![
            vec![
                outcome("rare", Passed, false),
                outcome("often", Failed, false),
            ],
            vec![
                outcome("rare", Passed, false),
                outcome("often", Passed, false),
            ],
            vec![
                outcome("rare", Failed, false),
                outcome("often", Failed, false),
            ],
            vec![
                outcome("rare", Failed, false),
                outcome("often", Passed, false),
            ],
        ];
        let keys: Vec<_> = flaky_tests(&runs).into_iter().map(|f| f.test_key).collect();
        assert_eq!(keys, ["often", "rare"]);
    }
}
