//! Operations every service answers, whatever it does.

use serde::{Deserialize, Serialize};

use crate::{Operation, ServiceName};

/// The build a service instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub service: String,
    pub version: String,
}

/// An instance's answer to a `$SRV.PING` of the micro-service protocol
/// (`io.nats.micro.v1.ping_response`): which process answers, and which build it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResponse {
    /// The micro-service name, `verdict-<kind>`.
    pub name: String,
    /// The instance id, unique to one process's registration.
    pub id: String,
    pub version: String,
}

/// An empty request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `verdict.v1.<service>.version`: which build is answering.
pub const fn version(service: ServiceName) -> Operation<Empty, VersionInfo> {
    Operation::query(service, "version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_operation_of_each_service_has_its_own_subject() {
        assert_eq!(
            version(ServiceName::Auth).subject(),
            "verdict.v1.auth.version"
        );
        assert_eq!(
            version(ServiceName::Realtime).subject(),
            "verdict.v1.realtime.version"
        );
    }

    #[test]
    fn a_ping_response_is_read_from_the_protocols_json() {
        let pong: PingResponse = serde_json::from_str(
            r#"{"type":"io.nats.micro.v1.ping_response","name":"verdict-runs","id":"Xy12","version":"0.1.0","metadata":{}}"#,
        )
        .unwrap();
        assert_eq!((pong.id.as_str(), pong.version.as_str()), ("Xy12", "0.1.0"));
    }

    #[test]
    fn version_info_ignores_fields_added_by_newer_builds() {
        let info: VersionInfo =
            serde_json::from_str(r#"{"service":"auth","version":"1.0.0","git":"abc"}"#).unwrap();
        assert_eq!(info.version, "1.0.0");
    }
}
