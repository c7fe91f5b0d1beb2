//! Events announcing applied results, cut to the size every NATS deployment carries:
//! a batch (live or a chunk of an import) whose tests would not fit one event of
//! [`MAX_EVENT_BYTES`] is announced in several, in order.

use verdict_contracts::events::{Event, FinishedTest, MAX_EVENT_BYTES};
use verdict_contracts::ids::{ProjectId, RunId};

/// JSON of a `test.finished` event with empty ids and no tests.
const EVENT_OVERHEAD: usize =
    r#"{"kind":"test.finished","project_id":"","run_id":"","tests":[]}"#.len();

/// JSON of a test with empty strings and the longest status and numbers.
const TEST_OVERHEAD: usize = r#"{"id":"","test_key":"","suite":"","name":"","status":"errored","attempt":4294967295,"duration_ms":18446744073709551615}"#.len();

/// The length of `text` as serde_json writes it inside quotes (the quotes not counted):
/// `"` and `\` and the short control escapes take two bytes, other controls six.
fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// At least the length of the test's JSON, computed without writing it.
fn encoded_len_bound(test: &FinishedTest) -> usize {
    TEST_OVERHEAD
        + escaped_len(&test.id)
        + escaped_len(&test.test_key)
        // `null` is two bytes longer than `""`.
        + test.suite.as_deref().map_or(2, escaped_len)
        + escaped_len(&test.name)
}

/// `test.finished` events announcing `tests` of a run, in order: as few as fit
/// [`MAX_EVENT_BYTES`] each. At least one, even for no tests. A test too large for an
/// event of its own (it cannot be: names and ids are capped far below) goes alone.
pub fn test_finished(project_id: ProjectId, run_id: RunId, tests: Vec<FinishedTest>) -> Vec<Event> {
    let budget = MAX_EVENT_BYTES
        .saturating_sub(EVENT_OVERHEAD + project_id.to_string().len() + run_id.to_string().len());
    let event = |tests| Event::TestFinished {
        project_id,
        run_id,
        tests,
    };
    let mut events = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for test in tests {
        // One more for the comma before it.
        let len = encoded_len_bound(&test) + 1;
        if !current.is_empty() && size + len > budget {
            events.push(event(std::mem::take(&mut current)));
            size = 0;
        }
        size += len;
        current.push(test);
    }
    if !current.is_empty() || events.is_empty() {
        events.push(event(current));
    }
    events
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use verdict_contracts::runs::ResultStatus;

    use super::*;

    fn test(name: &str) -> FinishedTest {
        FinishedTest {
            id: uuid::Uuid::now_v7().to_string(),
            test_key: "0123456789abcdef0123456789abcdef".into(),
            suite: Some("suite".into()),
            name: name.into(),
            status: ResultStatus::Passed,
            attempt: 1,
            duration_ms: Some(12),
        }
    }

    proptest! {
        #[test]
        fn the_bound_is_never_below_the_json(
            id in "\\PC{0,40}|[\\x00-\\x1f\"\\\\]{0,20}",
            name in any::<String>(),
            suite in proptest::option::of(any::<String>()),
            attempt in any::<u32>(),
            duration_ms in proptest::option::of(any::<u64>()),
        ) {
            let test = FinishedTest {
                id,
                test_key: "k".into(),
                suite,
                name,
                status: ResultStatus::Errored,
                attempt,
                duration_ms,
            };
            let json = serde_json::to_vec(&test).unwrap();
            prop_assert!(encoded_len_bound(&test) >= json.len());
        }
    }

    #[test]
    fn the_bound_is_exact_for_the_longest_numbers() {
        let test = FinishedTest {
            attempt: u32::MAX,
            duration_ms: Some(u64::MAX),
            status: ResultStatus::Errored,
            ..test("a \"quoted\"\tname\u{1}")
        };
        assert_eq!(
            encoded_len_bound(&test),
            serde_json::to_vec(&test).unwrap().len()
        );
    }

    #[test]
    fn many_long_tests_are_announced_in_events_under_the_limit_in_order() {
        let tests: Vec<FinishedTest> = (0..2000).map(|i| test(&format!("{i:0>1000}"))).collect();
        let events = test_finished(ProjectId::generate(), RunId::generate(), tests.clone());
        assert!(events.len() > 1);
        let mut announced = Vec::new();
        for event in events {
            assert!(serde_json::to_vec(&event).unwrap().len() <= MAX_EVENT_BYTES);
            let Event::TestFinished { tests, .. } = event else {
                panic!("not test.finished")
            };
            announced.extend(tests);
        }
        assert_eq!(announced, tests);
    }

    #[test]
    fn a_small_batch_is_one_event_and_an_empty_one_still_announced() {
        assert_eq!(
            test_finished(
                ProjectId::generate(),
                RunId::generate(),
                vec![test("a"), test("b")]
            )
            .len(),
            1
        );
        assert_eq!(
            test_finished(ProjectId::generate(), RunId::generate(), Vec::new()).len(),
            1
        );
    }
}
