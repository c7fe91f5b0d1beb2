//! Typed request/reply operations: a subject bound to its request and response types,
//! so a caller and the serving endpoint cannot disagree on the shape.

use std::marker::PhantomData;

use crate::ServiceName;

/// Who may send an operation. NATS permissions enforce it (`crate::bus_access`), so a
/// service can rely on who sent what reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Gateways only, on the API's behalf: `verdict.v1.<service>.<name>`. The principal
    /// the gateway authenticated travels in a header, which the service may trust
    /// because nobody else can publish here.
    Gateway,
    /// Other Verdict services (and gateways) asking for themselves:
    /// `verdict.v1.<service>.sys.<name>`. Never carries a principal to act as.
    Service,
}

/// One request/reply endpoint, taking `Req` and answering `Resp`.
pub struct Operation<Req, Resp> {
    pub service: ServiceName,
    pub name: &'static str,
    /// Asking twice has the effect of asking once (a query). Only such requests are
    /// retried by callers when no instance of the service is there to answer.
    pub idempotent: bool,
    pub caller: Caller,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Operation<Req, Resp> {
    /// A command of the API: it may change state, so callers send it once.
    pub const fn new(service: ServiceName, name: &'static str) -> Self {
        Self {
            service,
            name,
            idempotent: false,
            caller: Caller::Gateway,
            _types: PhantomData,
        }
    }

    /// A query of the API: it changes nothing, so callers may repeat it.
    pub const fn query(service: ServiceName, name: &'static str) -> Self {
        Self {
            idempotent: true,
            ..Self::new(service, name)
        }
    }

    /// A query one service asks another for itself.
    pub const fn service_query(service: ServiceName, name: &'static str) -> Self {
        Self {
            caller: Caller::Service,
            ..Self::query(service, name)
        }
    }

    pub fn subject(&self) -> String {
        match self.caller {
            Caller::Gateway => format!("{}.{}", self.service.subject_prefix(), self.name),
            Caller::Service => format!("{}.sys.{}", self.service.subject_prefix(), self.name),
        }
    }
}

impl<Req, Resp> Clone for Operation<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for Operation<Req, Resp> {}

impl<Req, Resp> std::fmt::Debug for Operation<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.subject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_versioned_and_scoped_to_its_service() {
        let op: Operation<(), ()> = Operation::new(ServiceName::Runs, "create_run");
        assert_eq!(op.subject(), "verdict.v1.runs.create_run");
    }

    #[test]
    fn service_operations_live_apart_from_the_apis() {
        let op: Operation<(), ()> = Operation::service_query(ServiceName::Runs, "run_scope");
        assert_eq!(op.subject(), "verdict.v1.runs.sys.run_scope");
        assert!(op.idempotent);
    }
}
