//! The services behind the gateway, as named on the bus.

use std::fmt;

/// A backend service. Each is one NATS micro-service (`$SRV.*.<name>`) with one
/// queue group, so any number of instances share its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    Auth,
    Runs,
    Artifacts,
    Realtime,
    Notify,
}

impl ServiceName {
    /// Every backend service, in the order probes report them.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Auth,
        ServiceName::Runs,
        ServiceName::Artifacts,
        ServiceName::Realtime,
        ServiceName::Notify,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceName::Auth => "auth",
            ServiceName::Runs => "runs",
            ServiceName::Artifacts => "artifacts",
            ServiceName::Realtime => "realtime",
            ServiceName::Notify => "notify",
        }
    }

    /// The name registered with the NATS micro-service protocol
    /// (letters, digits, `-` and `_` only).
    pub fn micro_name(self) -> String {
        ProcessKind::Service(self).micro_name()
    }

    /// `verdict.v1.<service>`: the prefix of every request subject of this service.
    pub fn subject_prefix(self) -> String {
        format!("verdict.v1.{}", self.as_str())
    }

    /// The subject a `$SRV.PING` for this service alone is sent to.
    pub fn ping_subject(self) -> String {
        ProcessKind::Service(self).ping_subject()
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceName {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown service `{0}` (expected one of: auth, runs, artifacts, realtime, notify)")]
pub struct UnknownService(pub String);

/// A kind of Verdict process that registers on the bus through the micro-service
/// protocol, so that `$SRV.PING` lists each of its instances with its id and version:
/// every backend service, and the gateway (which serves no requests on the bus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProcessKind {
    Service(ServiceName),
    Gateway,
}

impl ProcessKind {
    /// Every kind, in the order status reports list them.
    pub const ALL: [ProcessKind; 6] = [
        ProcessKind::Service(ServiceName::Auth),
        ProcessKind::Service(ServiceName::Runs),
        ProcessKind::Service(ServiceName::Artifacts),
        ProcessKind::Service(ServiceName::Realtime),
        ProcessKind::Service(ServiceName::Notify),
        ProcessKind::Gateway,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProcessKind::Service(service) => service.as_str(),
            ProcessKind::Gateway => "gateway",
        }
    }

    /// The name registered with the micro-service protocol: `verdict-<kind>`.
    pub fn micro_name(self) -> String {
        format!("verdict-{}", self.as_str())
    }

    /// The subject a `$SRV.PING` for every instance of this kind is sent to.
    pub fn ping_subject(self) -> String {
        format!("$SRV.PING.{}", self.micro_name())
    }

    /// The subject a `$SRV.PING` for one instance of this kind is sent to.
    pub fn instance_ping_subject(self, instance_id: &str) -> String {
        format!("{}.{instance_id}", self.ping_subject())
    }
}

impl fmt::Display for ProcessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProcessKind {
    type Err = UnknownProcessKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProcessKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownProcessKind(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown service `{0}` (expected one of: auth, runs, artifacts, realtime, notify, gateway)"
)]
pub struct UnknownProcessKind(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_parses_back_from_its_name() {
        for name in ServiceName::ALL {
            assert_eq!(name.as_str().parse::<ServiceName>().unwrap(), name);
        }
    }

    #[test]
    fn unknown_service_names_are_refused_with_the_expected_list() {
        let err = "gateway".parse::<ServiceName>().unwrap_err();
        assert!(err
            .to_string()
            .contains("auth, runs, artifacts, realtime, notify"));
    }

    #[test]
    fn every_process_kind_parses_back_from_its_name_and_shares_the_services_micro_names() {
        for kind in ProcessKind::ALL {
            assert_eq!(kind.as_str().parse::<ProcessKind>().unwrap(), kind);
        }
        for service in ServiceName::ALL {
            assert_eq!(
                ProcessKind::Service(service).micro_name(),
                service.micro_name()
            );
        }
        assert_eq!(ProcessKind::Gateway.micro_name(), "verdict-gateway");
        let err = "nats".parse::<ProcessKind>().unwrap_err();
        assert!(err.to_string().contains("notify, gateway"), "{err}");
    }

    #[test]
    fn micro_names_use_only_characters_the_protocol_allows() {
        for name in ServiceName::ALL {
            assert!(name
                .micro_name()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }
}
