//! Who may do what on the bus: one NATS user per kind of process, and the subjects each
//! may publish and subscribe to. nats-server enforces these permissions, so a process
//! can trust what only its peers can send: a principal only ever comes from a gateway
//! (only gateways publish the API's subjects, see [`crate::Caller`]), and replies reach
//! only their requester (each user reads its own inbox prefix; services answer through
//! `allow_responses`).
//!
//! [`authorization`] renders the `authorization` block of a nats-server configuration:
//! `verdict up` writes it with generated passwords, `deploy/nats/nats.conf` holds it
//! with one password variable per user (a test keeps that file equal to this code).

use std::fmt::Write;

use crate::streams::{self, StreamSpec};
use crate::{artifacts, auth, runs, ProcessKind, ServiceName};

/// A NATS user: every process of one kind connects as it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusUser {
    Gateway,
    Service(ServiceName),
    /// Operators and their tools (backups of streams, the `nats` CLI): everything.
    Admin,
}

impl BusUser {
    pub const ALL: [BusUser; 7] = [
        BusUser::Gateway,
        BusUser::Service(ServiceName::Auth),
        BusUser::Service(ServiceName::Runs),
        BusUser::Service(ServiceName::Artifacts),
        BusUser::Service(ServiceName::Realtime),
        BusUser::Service(ServiceName::Notify),
        BusUser::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BusUser::Gateway => "gateway",
            BusUser::Service(service) => service.as_str(),
            BusUser::Admin => "admin",
        }
    }

    /// The prefix of this user's reply subjects; it may read nobody else's.
    pub fn inbox_prefix(self) -> String {
        inbox_prefix(self.name())
    }
}

/// The inbox prefix of the NATS user `user`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// What one user may do; `None` from [`permissions`] means everything. Every user may
/// also answer the requests it received (`allow_responses`: the reply subject only,
/// once): services answer requests, and every process answers the discovery of its own
/// kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The JetStream API subjects that create a stream (or update it) and read its state.
fn stream_setup(stream: &StreamSpec) -> Vec<String> {
    ["CREATE", "UPDATE", "INFO"]
        .iter()
        .map(|verb| format!("$JS.API.STREAM.{verb}.{}", stream.name))
        .collect()
}

/// Reading single messages of a stream (by sequence or last by subject).
fn message_reads(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
    ]
}

/// Creating and reading consumers of a stream and pulling from them.
fn consuming(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
    ]
}

/// Acknowledging what a consumer delivered.
fn acknowledging(stream: &str) -> String {
    format!("$JS.ACK.{stream}.>")
}

/// Short-lived consumers (ordered readers, watches) that are deleted after use and
/// answer the server's flow control.
fn reading_with_ephemeral_consumers(stream: &str) -> Vec<String> {
    let mut subjects = consuming(stream);
    subjects.push(format!("$JS.API.CONSUMER.DELETE.{stream}.>"));
    subjects.push(format!("$JS.FC.{stream}.>"));
    subjects
}

/// The micro-service discovery subjects a process answers.
fn discovery(kind: ProcessKind) -> Vec<String> {
    let name = kind.micro_name();
    vec![
        "$SRV.PING".into(),
        "$SRV.INFO".into(),
        "$SRV.STATS".into(),
        format!("$SRV.*.{name}"),
        format!("$SRV.*.{name}.*"),
    ]
}

/// Pinging one instance of its own kind: what `verdict healthcheck`, running with a
/// service's settings (and so as its NATS user), sends.
fn own_instance_ping(service: ServiceName) -> String {
    ProcessKind::Service(service).instance_ping_subject("*")
}

/// Where live frames are republished once stored: what gateways watch.
fn live_views() -> String {
    streams::LIVE
        .republish
        .map(|(_, views)| views.to_owned())
        .unwrap_or_default()
}

/// The revocations bucket's stream.
fn revocations_stream() -> String {
    format!("KV_{}", streams::REVOCATIONS.name)
}

/// What `user` may do, or `None` for everything (the administrator).
pub fn permissions(user: BusUser) -> Option<Permissions> {
    let inbox = format!("{}.>", user.inbox_prefix());
    let kv = revocations_stream();
    let mut publish = vec!["$JS.API.INFO".to_owned()];
    let mut subscribe = vec![inbox];
    match user {
        BusUser::Admin => return None,
        BusUser::Gateway => {
            publish.extend([
                // Every operation of the API, on behalf of the principal it checked.
                "verdict.v1.*.*".to_owned(),
                auth::AUTHORIZE.subject(),
                runs::RUN_SCOPE.subject(),
                artifacts::BLOB_ENDPOINT.subject(),
                "$SRV.PING.>".to_owned(),
                "verdict.ingest.>".to_owned(),
            ]);
            for stream in streams::ALL {
                publish.extend(stream_setup(stream));
            }
            // The ingest stream's keeper, created with the stream.
            publish.extend(consuming(streams::INGEST.name));
            publish.extend(reading_with_ephemeral_consumers(streams::EVENTS.name));
            publish.extend([
                format!("$JS.API.STREAM.CREATE.{kv}"),
                format!("$JS.API.STREAM.UPDATE.{kv}"),
                format!("$JS.API.STREAM.INFO.{kv}"),
            ]);
            publish.extend(reading_with_ephemeral_consumers(&kv));
            publish.extend(message_reads(&kv));
            subscribe.extend([
                "verdict.ev.>".to_owned(),
                live_views(),
                auth::KEYS_CHANGED_SUBJECT.to_owned(),
            ]);
            // Gateways register too, so that status reports list them.
            subscribe.extend(discovery(ProcessKind::Gateway));
        }
        BusUser::Service(service @ ServiceName::Auth) => {
            publish.extend([
                auth::KEYS_CHANGED_SUBJECT.to_owned(),
                format!("$KV.{}.>", streams::REVOCATIONS.name),
                format!("$JS.API.STREAM.CREATE.{kv}"),
                format!("$JS.API.STREAM.UPDATE.{kv}"),
                format!("$JS.API.STREAM.INFO.{kv}"),
            ]);
            publish.extend(message_reads(&kv));
            subscribe.push(format!("{}.>", service.subject_prefix()));
            subscribe.extend(discovery(ProcessKind::Service(service)));
            publish.push(own_instance_ping(service));
        }
        BusUser::Service(service @ ServiceName::Runs) => {
            publish.extend([
                auth::AUTHORIZE.subject(),
                artifacts::BLOB_ENDPOINT.subject(),
                artifacts::REPORT_SOURCE.subject(),
                "verdict.ev.>".to_owned(),
                crate::tasks::ARTIFACTS_TASKS.to_owned(),
            ]);
            for stream in [&streams::INGEST, &streams::EVENTS, &streams::TASKS] {
                publish.extend(stream_setup(stream));
            }
            publish.extend(consuming(streams::INGEST.name));
            publish.push(acknowledging(streams::INGEST.name));
            subscribe.push(format!("{}.>", service.subject_prefix()));
            subscribe.extend(discovery(ProcessKind::Service(service)));
            publish.push(own_instance_ping(service));
        }
        BusUser::Service(service @ ServiceName::Artifacts) => {
            publish.extend([
                auth::AUTHORIZE.subject(),
                runs::RUN_SCOPE.subject(),
                crate::events::kind_filter(crate::events::EventKind::ArtifactStored),
            ]);
            for stream in [&streams::EVENTS, &streams::TASKS] {
                publish.extend(stream_setup(stream));
            }
            publish.extend(consuming(streams::TASKS.name));
            publish.push(acknowledging(streams::TASKS.name));
            subscribe.push(format!("{}.>", service.subject_prefix()));
            subscribe.extend(discovery(ProcessKind::Service(service)));
            publish.push(own_instance_ping(service));
        }
        BusUser::Service(service @ ServiceName::Realtime) => {
            publish.extend([
                auth::AUTHORIZE.subject(),
                runs::RUN_SCOPE.subject(),
                runs::RUN_SNAPSHOT.subject(),
                runs::RUNNING_RUNS.subject(),
                streams::LIVE.subjects[0].to_owned(),
            ]);
            for stream in [&streams::EVENTS, &streams::LIVE] {
                publish.extend(stream_setup(stream));
                publish.extend(message_reads(stream.name));
                publish.extend(reading_with_ephemeral_consumers(stream.name));
                publish.push(acknowledging(stream.name));
            }
            subscribe.push("verdict.ev.>".to_owned());
            subscribe.push(format!("{}.>", service.subject_prefix()));
            subscribe.extend(discovery(ProcessKind::Service(service)));
            publish.push(own_instance_ping(service));
        }
        BusUser::Service(service @ ServiceName::Notify) => {
            // Its durable consumer of the run events, and the run behind each.
            publish.extend([
                auth::AUTHORIZE.subject(),
                runs::RUN_SNAPSHOT.subject(),
                runs::triage::RUN_NEWS.subject(),
            ]);
            publish.extend(stream_setup(&streams::EVENTS));
            publish.extend(consuming(streams::EVENTS.name));
            publish.push(acknowledging(streams::EVENTS.name));
            subscribe.push(format!("{}.>", service.subject_prefix()));
            subscribe.extend(discovery(ProcessKind::Service(service)));
            publish.push(own_instance_ping(service));
        }
    }
    Some(Permissions { publish, subscribe })
}

/// The `authorization` block of a nats-server configuration with every user of
/// [`BusUser::ALL`]; `password` gives the text after `password: ` for each (a quoted
/// literal, or a `$VARIABLE` the server reads from its environment).
pub fn authorization(password: impl Fn(BusUser) -> String) -> String {
    let mut conf = String::from("authorization {\n  users: [\n");
    for user in BusUser::ALL {
        let _ = write!(
            conf,
            "    {{ user: {}, password: {}",
            user.name(),
            password(user)
        );
        match permissions(user) {
            None => conf.push_str(" }\n"),
            Some(permissions) => {
                conf.push_str(", permissions: {\n");
                let _ = writeln!(conf, "      publish: {}", list(&permissions.publish));
                let _ = writeln!(conf, "      subscribe: {}", list(&permissions.subscribe));
                conf.push_str("      allow_responses: true\n");
                conf.push_str("    } }\n");
            }
        }
    }
    conf.push_str("  ]\n}\n");
    conf
}

/// The `authorization` block of a deployment's nats-server configuration: each password
/// is read from the server's environment, `VERDICT_NATS_PASSWORD_<USER>`
/// (`deploy/nats/nats.conf` holds exactly this; `verdict bus-permissions` prints it).
pub fn deployment_authorization() -> String {
    authorization(|user| {
        format!(
            "$VERDICT_NATS_PASSWORD_{}",
            user.name().to_ascii_uppercase()
        )
    })
}

fn list(subjects: &[String]) -> String {
    let quoted: Vec<String> = subjects.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn can_publish(user: BusUser, subject: &str) -> bool {
        permissions(user).is_none_or(|p| p.publish.iter().any(|allowed| matches(allowed, subject)))
    }

    fn can_subscribe(user: BusUser, subject: &str) -> bool {
        permissions(user)
            .is_none_or(|p| p.subscribe.iter().any(|allowed| matches(allowed, subject)))
    }

    /// NATS subject matching: `*` is one token, `>` the rest.
    fn matches(pattern: &str, subject: &str) -> bool {
        let mut subject = subject.split('.');
        for token in pattern.split('.') {
            match (token, subject.next()) {
                (">", Some(_)) => return true,
                ("*", Some(_)) => {}
                (token, Some(actual)) if token == actual => {}
                _ => return false,
            }
        }
        subject.next().is_none()
    }

    const SERVICES: [BusUser; 5] = [
        BusUser::Service(ServiceName::Auth),
        BusUser::Service(ServiceName::Runs),
        BusUser::Service(ServiceName::Artifacts),
        BusUser::Service(ServiceName::Realtime),
        BusUser::Service(ServiceName::Notify),
    ];

    #[test]
    fn only_gateways_may_send_the_apis_requests() {
        for subject in [
            auth::CREATE_TOKEN.subject(),
            auth::LOGIN.subject(),
            runs::DELETE_RUN.subject(),
            runs::GET_RUN.subject(),
            artifacts::DOWNLOAD.subject(),
        ] {
            assert!(can_publish(BusUser::Gateway, &subject), "{subject}");
            for service in SERVICES {
                assert!(
                    !can_publish(service, &subject),
                    "{service:?} may send {subject}"
                );
            }
        }
    }

    #[test]
    fn nobody_but_a_requester_reads_its_replies() {
        for user in BusUser::ALL.into_iter().filter(|u| *u != BusUser::Admin) {
            assert!(!can_subscribe(user, "_INBOX.abc"), "{user:?}");
            for other in BusUser::ALL.into_iter().filter(|o| *o != user) {
                let reply = format!("{}.abc", other.inbox_prefix());
                assert!(
                    !can_subscribe(user, &reply),
                    "{user:?} reads {other:?}'s replies"
                );
            }
            let own = format!("{}.abc", user.inbox_prefix());
            assert!(can_subscribe(user, &own), "{user:?}");
        }
    }

    #[test]
    fn no_one_but_a_service_reads_its_requests() {
        for service in ServiceName::ALL {
            let request = format!("{}.any", service.subject_prefix());
            for user in BusUser::ALL.into_iter().filter(|u| *u != BusUser::Admin) {
                assert_eq!(
                    can_subscribe(user, &request),
                    user == BusUser::Service(service),
                    "{user:?} and {request}"
                );
            }
        }
    }

    #[test]
    fn every_process_answers_discovery_of_its_own_kind_only() {
        for kind in ProcessKind::ALL {
            let user = match kind {
                ProcessKind::Service(service) => BusUser::Service(service),
                ProcessKind::Gateway => BusUser::Gateway,
            };
            assert!(can_subscribe(user, &kind.ping_subject()), "{user:?}");
            assert!(can_subscribe(user, &kind.instance_ping_subject("x")));
            for other in ProcessKind::ALL.into_iter().filter(|o| *o != kind) {
                assert!(!can_subscribe(user, &other.ping_subject()), "{user:?}");
            }
        }
    }

    #[test]
    fn a_service_may_ping_its_own_instances_and_a_gateway_every_kind() {
        for service in ServiceName::ALL {
            let user = BusUser::Service(service);
            let own = ProcessKind::Service(service).instance_ping_subject("x");
            assert!(can_publish(user, &own), "{user:?}");
            for other in ProcessKind::ALL
                .into_iter()
                .filter(|o| *o != ProcessKind::Service(service))
            {
                assert!(!can_publish(user, &other.instance_ping_subject("x")));
            }
        }
        for kind in ProcessKind::ALL {
            assert!(can_publish(BusUser::Gateway, &kind.ping_subject()));
        }
    }

    #[test]
    fn the_subject_matcher_follows_nats_wildcards() {
        assert!(matches("verdict.v1.*.*", "verdict.v1.runs.get_run"));
        assert!(!matches("verdict.v1.*.*", "verdict.v1.runs.sys.run_scope"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
    }

    #[test]
    fn the_rendered_block_names_every_user_and_each_password() {
        let conf = authorization(|user| format!("$PW_{}", user.name()));
        for user in BusUser::ALL {
            assert!(conf.contains(&format!(
                "user: {}, password: $PW_{}",
                user.name(),
                user.name()
            )));
        }
        assert!(conf.contains("allow_responses: true"));
    }
}
