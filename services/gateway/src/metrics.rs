//! The gateway's metrics: their names and help, in one place. They are served, with
//! every other part's, on the process's admin listener.

use metrics::{describe_counter, describe_gauge, describe_histogram};

pub const HTTP_REQUESTS: &str = "verdict_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "verdict_http_request_duration_seconds";
pub const LIVE_SOCKETS: &str = "verdict_live_sockets";
pub const LIVE_CHANNELS: &str = "verdict_live_channels";
pub const LIVE_FRAMES: &str = "verdict_live_frames_total";
pub const LIVE_LAGGED: &str = "verdict_live_lagged_total";

/// Installs the registry and describes the gateway's metrics; the gauges start at 0.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        "Time to answer an HTTP request (to the start of the response body), by method and route template."
    );
    describe_gauge!(
        LIVE_SOCKETS,
        "Live WebSockets open on this gateway (viewers)."
    );
    describe_gauge!(
        LIVE_CHANNELS,
        "Channels this gateway holds a subscription for (each shared by all its viewers)."
    );
    describe_counter!(LIVE_FRAMES, "Live frames written to viewers' sockets.");
    describe_counter!(
        LIVE_LAGGED,
        "Viewers told `lagged` because their queue was full (they resync from a snapshot)."
    );
    metrics::gauge!(LIVE_SOCKETS).increment(0.0);
    metrics::gauge!(LIVE_CHANNELS).increment(0.0);
    metrics::counter!(LIVE_FRAMES).increment(0);
    metrics::counter!(LIVE_LAGGED).increment(0);
}

/// The method as a metric label: the standard ones by name, anything else as `other`,
/// so a client inventing methods cannot grow the registry.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invented_method_is_labelled_other() {
        let invented = http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&http::Method::POST), "POST");
    }
}
