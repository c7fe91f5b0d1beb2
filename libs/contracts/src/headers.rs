//! Header names carried on bus messages.

/// W3C trace context: one trace spans gateway -> service -> store.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state, carried alongside `traceparent` when present.
pub const TRACESTATE: &str = "tracestate";
/// The authenticated principal. Only the gateway sets it; it strips the header from
/// anything a client sends.
pub const PRINCIPAL: &str = "Verdict-Principal";
/// JetStream de-duplication id: a publisher's retry with the same id is stored once.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Standard NATS micro-service error headers.
pub const SERVICE_ERROR: &str = "Nats-Service-Error";
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
/// Seconds before a refused request may be retried, alongside the error headers.
pub const RETRY_AFTER: &str = "Verdict-Retry-After";
