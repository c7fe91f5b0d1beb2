//! Project scope checks every service makes for itself (defence in depth): the gateway
//! authenticated the principal, but each service still asks whether it may act in the
//! project at hand.

use verdict_contracts::auth::{self, Authorize, Principal, Role};
use verdict_contracts::ids::ProjectId;
use verdict_contracts::{ErrorCode, ServiceError};

use crate::{Bus, RequestError};

/// The caller's standing in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub project_id: ProjectId,
    pub role: Role,
}

/// Requires at least `needed` in `project` (an id or a slug). A caller with no role
/// there gets "not found", exactly as for a project that does not exist.
pub async fn authorize(
    bus: &Bus,
    principal: &Principal,
    project: &str,
    needed: Role,
) -> Result<Access, ServiceError> {
    let access = match principal {
        // An API token names its project and role: no lookup when the id matches.
        Principal::ApiToken {
            project_id, role, ..
        } if project.parse() == Ok(*project_id) => Access {
            project_id: *project_id,
            role: *role,
        },
        _ => {
            let question = Authorize {
                principal: principal.clone(),
                project: project.to_owned(),
            };
            let granted = bus
                .request(&auth::AUTHORIZE, &question)
                .await
                .map_err(service_error)?;
            Access {
                project_id: granted.project_id,
                role: granted.role,
            }
        }
    };
    if access.role < needed {
        return Err(ServiceError::forbidden(
            "your role in this project does not allow this",
        ));
    }
    Ok(access)
}

/// A failed call to another service, as this service answers its own caller.
pub fn service_error(error: RequestError) -> ServiceError {
    match error {
        RequestError::Service(error) => error,
        RequestError::NoResponders { .. }
        | RequestError::TimedOut { .. }
        | RequestError::StreamFull { .. } => {
            tracing::warn!(error = %error, "a service this one depends on is unavailable");
            ServiceError {
                retry_after: Some(1),
                ..ServiceError::new(
                    ErrorCode::Unavailable,
                    "a dependency is unavailable; retry shortly",
                )
            }
        }
        RequestError::Codec { .. } | RequestError::Transport { .. } => {
            tracing::error!(error = %error, "a call to another service failed");
            ServiceError::internal()
        }
    }
}
