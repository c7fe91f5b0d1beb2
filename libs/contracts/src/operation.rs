//! Typed request/reply operations: a subject bound to its request and response types,
//! so a caller and the serving endpoint cannot disagree on the shape.

use std::marker::PhantomData;

use crate::ServiceName;

/// One request/reply endpoint: `verdict.v1.<service>.<name>`, taking `Req` and
/// answering `Resp`.
pub struct Operation<Req, Resp> {
    pub service: ServiceName,
    pub name: &'static str,
    /// Asking twice has the effect of asking once (a query). Only such requests are
    /// retried by callers when no instance of the service is there to answer.
    pub idempotent: bool,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Operation<Req, Resp> {
    /// A command: it may change state, so callers send it once.
    pub const fn new(service: ServiceName, name: &'static str) -> Self {
        Self {
            service,
            name,
            idempotent: false,
            _types: PhantomData,
        }
    }

    /// A query: it changes nothing, so callers may repeat it.
    pub const fn query(service: ServiceName, name: &'static str) -> Self {
        Self {
            idempotent: true,
            ..Self::new(service, name)
        }
    }

    pub fn subject(&self) -> String {
        format!("{}.{}", self.service.subject_prefix(), self.name)
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
}
