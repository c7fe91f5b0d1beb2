//! `--junit-dir DIR`: JUnit (or NUnit, xUnit.net) XML reports the command writes into a
//! directory, read once each is complete.
//!
//! Files there before the command started are left alone until they change. A new or
//! changed `.xml` file is read once its size and modification time held still for one
//! poll; one that does not parse yet (still being written) is tried again when it
//! changes. When the command has ended, every file not yet read is read, and the ones
//! that still do not parse are reported as warnings. A file read again after a change
//! sends only the results it did not hold before: each result's id is the file's and
//! its position in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;
use verdict_contracts::runs::ResultInput;

use crate::report::inputs;
use crate::report::progress::Progress;

/// How deep below DIR reports are looked for.
const MAX_DEPTH: usize = 8;
/// Files looked at in one scan.
const MAX_FILES: usize = 10_000;

/// What a file looked like at one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub length: u64,
    pub modified: Option<SystemTime>,
}

/// Where each file of the directory is.
#[derive(Debug, Default)]
pub struct Watch {
    files: HashMap<PathBuf, FileState>,
}

#[derive(Debug)]
struct FileState {
    /// Its number among the files read, for its results' ids.
    number: usize,
    /// At the last scan; none before the first that found it.
    last: Option<Stamp>,
    /// The stamp it was read (or tried) at; at the start, the stamp it had then.
    handled: Option<Stamp>,
}

impl Watch {
    /// Remembers the files there are before the command starts.
    pub fn baseline(scan: Vec<(PathBuf, Stamp)>) -> Self {
        let mut watch = Watch::default();
        for (path, stamp) in scan {
            let number = watch.files.len();
            watch.files.insert(
                path,
                FileState {
                    number,
                    last: Some(stamp),
                    handled: Some(stamp),
                },
            );
        }
        watch
    }

    /// The files to read now, with their numbers: those that changed since they were
    /// handled and held still since the last scan (every changed one when `last_round`).
    pub fn due(&mut self, scan: Vec<(PathBuf, Stamp)>, last_round: bool) -> Vec<(PathBuf, usize)> {
        let mut due = Vec::new();
        for (path, stamp) in scan {
            let count = self.files.len();
            let state = self.files.entry(path.clone()).or_insert(FileState {
                number: count,
                last: None,
                handled: None,
            });
            let still = state.last == Some(stamp);
            state.last = Some(stamp);
            if state.handled != Some(stamp) && (still || last_round) {
                state.handled = Some(stamp);
                due.push((path, state.number));
            }
        }
        due.sort();
        due
    }
}

/// The `.xml` files below `dir`, with their stamps; none when it does not exist (yet).
pub fn scan(dir: &Path) -> Vec<(PathBuf, Stamp)> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_owned(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if found.len() >= MAX_FILES {
                return found;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            if metadata.is_dir() && depth < MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if metadata.is_file() && path.extension().is_some_and(|e| e == "xml") {
                let stamp = Stamp {
                    length: metadata.len(),
                    modified: metadata.modified().ok(),
                };
                found.push((path, stamp));
            }
        }
    }
    found
}

/// Reads the reports `dir` receives until `done` is cancelled, then the rest.
pub async fn watch(
    dir: PathBuf,
    mut watch: Watch,
    every: Duration,
    results: Sender<ResultInput>,
    done: CancellationToken,
    progress: Progress,
) {
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    loop {
        let last_round = done.is_cancelled();
        let scanned = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || scan(&dir))
                .await
                .unwrap_or_default()
        };
        for (path, number) in watch.due(scanned, last_round) {
            let parsed = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || inputs::parse(&path)).await
            };
            match parsed {
                Ok(Ok(report)) => {
                    for (index, result) in report.parsed.results.into_iter().enumerate() {
                        let mut input = ResultInput::from(result);
                        input.id = Some(format!("{prefix}.{number}.{index}"));
                        if results.send(input).await.is_err() {
                            return;
                        }
                    }
                }
                // Still being written, perhaps: tried again when it changes.
                Ok(Err(failure)) if last_round => {
                    progress.line(&format!("warning: not read: {}", failure.message));
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        if last_round {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = done.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(length: u64) -> Stamp {
        Stamp {
            length,
            modified: None,
        }
    }

    fn file(name: &str, length: u64) -> (PathBuf, Stamp) {
        (PathBuf::from(name), stamp(length))
    }

    fn names(due: Vec<(PathBuf, usize)>) -> Vec<String> {
        due.into_iter()
            .map(|(path, _)| path.display().to_string())
            .collect()
    }

    #[test]
    fn files_there_before_the_command_are_read_only_once_changed() {
        let mut watch = Watch::baseline(vec![file("old.xml", 10)]);
        assert!(watch.due(vec![file("old.xml", 10)], false).is_empty());
        assert!(watch.due(vec![file("old.xml", 10)], true).is_empty());
        let mut watch = Watch::baseline(vec![file("old.xml", 10)]);
        watch.due(vec![file("old.xml", 20)], false);
        assert_eq!(
            names(watch.due(vec![file("old.xml", 20)], false)),
            ["old.xml"]
        );
    }

    #[test]
    fn a_new_file_is_read_once_it_held_still_for_a_poll() {
        let mut watch = Watch::baseline(Vec::new());
        assert!(
            watch.due(vec![file("a.xml", 5)], false).is_empty(),
            "just seen"
        );
        assert!(
            watch.due(vec![file("a.xml", 9)], false).is_empty(),
            "growing"
        );
        assert_eq!(names(watch.due(vec![file("a.xml", 9)], false)), ["a.xml"]);
        assert!(
            watch.due(vec![file("a.xml", 9)], false).is_empty(),
            "read once"
        );
    }

    #[test]
    fn the_last_round_reads_every_changed_file_and_numbers_stay() {
        let mut watch = Watch::baseline(Vec::new());
        watch.due(vec![file("a.xml", 5)], false);
        let due = watch.due(vec![file("a.xml", 5), file("b.xml", 1)], true);
        assert_eq!(
            due,
            [(PathBuf::from("a.xml"), 0), (PathBuf::from("b.xml"), 1)]
        );
        let again = watch.due(vec![file("a.xml", 7)], true);
        assert_eq!(
            again,
            [(PathBuf::from("a.xml"), 0)],
            "same number: same ids"
        );
    }

    #[test]
    fn scanning_finds_xml_files_below_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("module/reports")).unwrap();
        std::fs::write(dir.path().join("module/reports/TEST-a.xml"), "<x/>").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let found = scan(dir.path());
        assert_eq!(found.len(), 1);
        assert!(found[0].0.ends_with("module/reports/TEST-a.xml"));
        assert!(scan(&dir.path().join("missing")).is_empty());
    }
}
