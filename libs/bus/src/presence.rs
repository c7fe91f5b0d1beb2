//! A process's presence on the bus: registered through the NATS micro-service protocol,
//! so that `$SRV.PING` (and INFO, STATS) list each instance with its id and version,
//! and the instance id written to a file so that `verdict healthcheck`, run beside the
//! process (an exec probe in its container), can ask that very instance whether it
//! answers. Discovery of the instances of a kind is here too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::service::{Service, ServiceExt};
use async_nats::Client;
use futures::StreamExt;
use verdict_contracts::system::PingResponse;
use verdict_contracts::ProcessKind;

use crate::{BusError, RequestError};

/// One process on the bus, from its registration until [`Presence::leave`].
pub struct Presence {
    service: Service,
    id: String,
    instance_file: Option<PathBuf>,
}

impl Presence {
    /// Registers this process as an instance of `kind` (queue group per kind, so the
    /// instances of a service share its requests), and writes its instance id to
    /// `instance_file`, replacing whatever an earlier instance left there.
    pub async fn register(
        client: &Client,
        kind: ProcessKind,
        version: &str,
        instance_file: Option<&Path>,
    ) -> Result<Self, BusError> {
        let name = kind.micro_name();
        let service = client
            .service_builder()
            .description(format!("Verdict {kind}"))
            .queue_group(&name)
            .start(&name, version)
            .await
            .map_err(|err| BusError::Register {
                what: name.clone(),
                reason: err,
            })?;
        let id = service.info().await.id;
        if let Some(path) = instance_file {
            write_instance_id(path, &id).map_err(|source| BusError::InstanceFile {
                path: path.display().to_string(),
                source,
            })?;
        }
        tracing::info!(%kind, instance = %id, "registered on the bus");
        Ok(Self {
            service,
            id,
            instance_file: instance_file.map(Path::to_path_buf),
        })
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Stops answering (discovery and every endpoint), and removes the instance file
    /// unless a newer instance has written its own id there since.
    pub async fn leave(self) {
        if let Err(err) = self.service.stop().await {
            tracing::warn!(error = %err, "service stop reported an error");
        }
        if let Some(path) = &self.instance_file {
            if read_instance_id(path).is_ok_and(|id| id == self.id) {
                if let Err(err) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %err, "cannot remove the instance file");
                }
            }
        }
    }
}

/// Writes `id` to `path` in one step (a temporary file renamed over it), so a reader
/// never sees half an id. Creates the directory when needed.
fn write_instance_id(path: &Path, id: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&temporary, format!("{id}\n"))?;
    std::fs::rename(&temporary, path)
}

/// The instance id a process wrote to `path`.
pub fn read_instance_id(path: &Path) -> std::io::Result<String> {
    let id = std::fs::read_to_string(path)?.trim().to_owned();
    if id.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file holds no instance id",
        ));
    }
    Ok(id)
}

/// Every instance of `kind` that answers a `$SRV.PING` within `window`, ordered by id.
/// The window is waited out in full: nobody knows how many instances there are.
pub async fn discover(
    client: &Client,
    kind: ProcessKind,
    window: Duration,
) -> Result<Vec<PingResponse>, RequestError> {
    let subject = kind.ping_subject();
    let transport = |reason: String| RequestError::Transport {
        subject: subject.clone(),
        reason,
    };
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|err| transport(err.to_string()))?;
    client
        .publish_with_reply(subject.clone(), inbox, bytes::Bytes::new())
        .await
        .map_err(|err| transport(err.to_string()))?;
    let mut instances = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.next()).await {
        match serde_json::from_slice::<PingResponse>(&reply.payload) {
            Ok(pong) if pong.name == kind.micro_name() => instances.push(pong),
            Ok(_) => {}
            Err(err) => tracing::warn!(%subject, error = %err, "malformed discovery answer"),
        }
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances.dedup_by(|a, b| a.id == b.id);
    Ok(instances)
}

/// Asks the one instance `id` of `kind` whether it answers, within `timeout`.
pub async fn ping_instance(
    client: &Client,
    kind: ProcessKind,
    id: &str,
    timeout: Duration,
) -> Result<PingResponse, RequestError> {
    let subject = kind.instance_ping_subject(id);
    let request = async_nats::Request::new().timeout(Some(timeout));
    let reply = client
        .send_request(subject.clone(), request)
        .await
        .map_err(|err| crate::request::request_error(&subject, timeout, &err))?;
    serde_json::from_slice(&reply.payload).map_err(|err| RequestError::Codec {
        subject,
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_is_written_whole_and_read_back_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("verdict-runs.instance");
        write_instance_id(&path, "first").unwrap();
        write_instance_id(&path, "second").unwrap();
        assert_eq!(read_instance_id(&path).unwrap(), "second");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn an_empty_instance_file_holds_no_id() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "\n").unwrap();
        assert!(read_instance_id(file.path()).is_err());
    }
}
