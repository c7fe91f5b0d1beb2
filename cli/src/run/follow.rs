//! `--follow FILE`: a file the command writes its results to while it runs (pytest's
//! `--report-log`), read as it grows.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;
use verdict_contracts::runs::ResultInput;

use super::formats::Format;
use super::reader::Reader;
use crate::report::{Failure, Outcome};

/// Removes a file left from an earlier run, whose results must not be sent again.
pub fn clear(path: &Path) -> Outcome<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Failure::input(format!(
            "{}: cannot remove the file of an earlier run: {err}",
            path.display()
        ))),
    }
}

/// Reads `path` as it grows (from its start again when it is truncated) until `done`
/// is cancelled, then reads what is left.
pub async fn follow(
    path: PathBuf,
    every: Duration,
    results: Sender<ResultInput>,
    done: CancellationToken,
) {
    let mut reader = Reader::new(Format::Auto);
    let mut offset = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let last_round = done.is_cancelled();
        if let Ok(mut file) = tokio::fs::File::open(&path).await {
            let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            if length < offset {
                offset = 0;
            }
            if file.seek(SeekFrom::Start(offset)).await.is_ok() {
                while let Ok(read @ 1..) = file.read(&mut buffer).await {
                    offset += read as u64;
                    for result in reader.chunk(&buffer[..read]) {
                        if results.send(result).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if last_round {
            break;
        }
        for result in reader.idle() {
            let _ = results.send(result).await;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = done.cancelled() => {}
        }
    }
    for result in reader.end() {
        let _ = results.send(result).await;
    }
}
