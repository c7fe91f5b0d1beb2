//! Accepting results and finishes: checked here, then made durable in the
//! `VERDICT_INGEST` stream before the client hears 202. The runs service applies them
//! from there, even if it was down when they arrived.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use verdict_bus::{access, Bus, RequestError};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::idempotency::IdempotencyKey;
use verdict_contracts::ids::{ProjectId, RunId};
use verdict_contracts::runs::{self, IngestMessage, NewResult, RunRef};

use crate::problem::ApiError;

/// Run-to-project entries kept; a run never changes project, so entries never go stale,
/// and past this size the map simply starts over.
const MAX_SCOPES: usize = 100_000;
/// Bytes of a message besides its results (type, ids, brackets).
const ENVELOPE_BYTES: usize = 512;

pub struct Ingest {
    bus: Bus,
    projects: RwLock<HashMap<RunId, ProjectId>>,
}

impl Ingest {
    pub fn new(bus: Bus) -> Self {
        Self {
            bus,
            projects: RwLock::default(),
        }
    }

    /// The project of a run the principal may report to.
    pub async fn authorize(
        &self,
        principal: &Principal,
        run_id: RunId,
    ) -> Result<ProjectId, ApiError> {
        let cached = self
            .projects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
            .cloned();
        let project_id = match cached {
            Some(project_id) => project_id,
            None => {
                let scope = self
                    .bus
                    .request(&runs::RUN_SCOPE, &RunRef { run_id })
                    .await?;
                let mut projects = self.projects.write().unwrap_or_else(|p| p.into_inner());
                if projects.len() >= MAX_SCOPES {
                    projects.clear();
                }
                projects.insert(run_id, scope.project_id);
                scope.project_id
            }
        };
        access::authorize(
            &self.bus,
            principal,
            &project_id.to_string(),
            Role::Reporter,
        )
        .await
        .map_err(|error| ApiError::Bus(verdict_bus::RequestError::Service(error)))?;
        Ok(project_id)
    }

    /// Makes `results` durable, in as many messages as the server's payload limit needs.
    /// `dedupe` names the request (from `Idempotency-Key`), so a client's retry is
    /// stored once; each message's id derives from it.
    pub async fn results(
        &self,
        project_id: ProjectId,
        run_id: RunId,
        results: &[NewResult],
        dedupe: &str,
    ) -> Result<(), ApiError> {
        let limit = self
            .bus
            .client()
            .server_info()
            .max_payload
            .saturating_sub(ENVELOPE_BYTES);
        let mut encoded = Vec::with_capacity(results.len());
        for (index, result) in results.iter().enumerate() {
            let json =
                serde_json::to_vec(result).map_err(|err| ApiError::BadRequest(err.to_string()))?;
            if json.len() > limit {
                return Err(ApiError::Validation(vec![crate::problem::FieldError {
                    field: format!("results[{index}]"),
                    message: format!(
                        "is {} bytes once encoded; at most {limit} fit in one result",
                        json.len()
                    ),
                }]));
            }
            encoded.push(json);
        }
        let subject = runs::ingest_subject(project_id, run_id);
        let mut chunk: Vec<&[u8]> = Vec::new();
        let mut size = 0;
        let mut part = 0;
        for json in &encoded {
            if !chunk.is_empty() && size + json.len() + 1 > limit {
                self.publish(
                    &subject,
                    project_id,
                    run_id,
                    &chunk,
                    &format!("{dedupe}-{part}"),
                )
                .await?;
                part += 1;
                chunk.clear();
                size = 0;
            }
            size += json.len() + 1;
            chunk.push(json);
        }
        self.publish(
            &subject,
            project_id,
            run_id,
            &chunk,
            &format!("{dedupe}-{part}"),
        )
        .await
    }

    async fn publish(
        &self,
        subject: &str,
        project_id: ProjectId,
        run_id: RunId,
        results: &[&[u8]],
        id: &str,
    ) -> Result<(), ApiError> {
        // The message is assembled from the results already encoded, so each result is
        // serialized once on its way through.
        let head =
            serde_json::json!({ "type": "results", "project_id": project_id, "run_id": run_id });
        let mut payload =
            serde_json::to_vec(&head).map_err(|err| ApiError::BadRequest(err.to_string()))?;
        payload.pop();
        payload.extend_from_slice(b",\"results\":[");
        for (index, result) in results.iter().enumerate() {
            if index > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(result);
        }
        payload.extend_from_slice(b"]}");
        self.send(subject, payload, id).await
    }

    pub async fn message(
        &self,
        project_id: ProjectId,
        run_id: RunId,
        message: &IngestMessage,
        id: &str,
    ) -> Result<(), ApiError> {
        let payload =
            serde_json::to_vec(message).map_err(|err| ApiError::BadRequest(err.to_string()))?;
        self.send(&runs::ingest_subject(project_id, run_id), payload, id)
            .await
    }

    async fn send(&self, subject: &str, payload: Vec<u8>, id: &str) -> Result<(), ApiError> {
        self.bus
            .publish_durable(subject, payload.into(), id)
            .await
            .map_err(|err| match err {
                RequestError::StreamFull { .. } => {
                    tracing::warn!(%subject, error = %err, "the ingest backlog is full");
                    ApiError::IngestFull
                }
                err => {
                    tracing::error!(%subject, error = %err, "JetStream did not accept an ingest message");
                    ApiError::IngestUnavailable
                }
            })
    }
}

/// The id JetStream de-duplicates a request's messages by: from the client's
/// `Idempotency-Key` when given (scoped to the principal and run), else unique.
pub fn dedupe_id(
    principal: &Principal,
    run_id: RunId,
    idempotency_key: Option<&IdempotencyKey>,
) -> String {
    match idempotency_key.map(IdempotencyKey::as_str) {
        Some(key) => {
            let who = serde_json::to_string(principal).unwrap_or_default();
            let digest = Sha256::digest(format!("{who}\n{run_id}\n{key}").as_bytes());
            digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
        }
        None => uuid::Uuid::now_v7().simple().to_string(),
    }
}
