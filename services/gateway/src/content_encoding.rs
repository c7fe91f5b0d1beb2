//! Request bodies sent with `Content-Encoding: gzip` (result batches and reports). They
//! are decompressed as they stream in, in small steps, and the route's body limit bounds
//! both what arrives and what it expands to: a body that would decompress beyond the
//! limit (a "zip bomb") is cut off with 413 after at most the limit and one step, and a
//! body that is not gzip gets 400. Other encodings get 415.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flate2::write::MultiGzDecoder;
use futures::{Stream, StreamExt};

use crate::problem::ApiError;

/// Compressed bytes fed to the decoder at a time: DEFLATE expands at most about 1 000
/// times, so one step yields at most about a megabyte.
const STEP: usize = 1024;

/// Why a gzip body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes once decompressed")]
    TooLarge(u64),
    #[error("the body is not valid gzip: {0}")]
    Invalid(String),
    #[error("reading the body failed: {0}")]
    Read(String),
}

/// What a failure to read a body means to the client: the limit (413), broken gzip
/// (400), or anything else (a body cut short by the limit layer: 413).
pub fn body_error(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(error) = cause.downcast_ref::<BodyError>() {
            return match error {
                BodyError::TooLarge(_) => ApiError::PayloadTooLarge,
                BodyError::Invalid(_) | BodyError::Read(_) => {
                    ApiError::BadRequest(error.to_string())
                }
            };
        }
        source = cause.source();
    }
    ApiError::PayloadTooLarge
}

/// Middleware: a gzip body is replaced by its decompressed bytes, at most `limit` of them.
pub async fn decompress(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let gzip = match is_gzip(request.headers()) {
        Ok(gzip) => gzip,
        Err(error) => return error.into_response(),
    };
    if !gzip {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let (mut parts, body) = request.into_parts();
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = Body::from_stream(gunzip(body.into_data_stream(), limit as u64));
    next.run(Request::from_parts(parts, body)).await
}

/// Whether the body is gzip; identity (or no header) is not, anything else is refused.
fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let value = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match value.as_str() {
        "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType(
            "a body without Content-Encoding, or with Content-Encoding: gzip",
        )),
    }
}

struct Gunzip<S> {
    input: S,
    decoder: MultiGzDecoder<Vec<u8>>,
    /// Compressed bytes received but not yet fed to the decoder.
    pending: Bytes,
    read: u64,
    written: u64,
    limit: u64,
    done: bool,
}

impl<S> Gunzip<S> {
    /// The decompressed bytes produced so far, checked against the limit.
    fn output(&mut self) -> Result<Vec<u8>, BodyError> {
        let output = std::mem::take(self.decoder.get_mut());
        self.written += output.len() as u64;
        if self.written > self.limit {
            return Err(BodyError::TooLarge(self.limit));
        }
        Ok(output)
    }
}

/// The decompressed stream of a gzip stream (one or more members), at most `limit`
/// bytes in and out.
pub fn gunzip<S, E>(input: S, limit: u64) -> impl Stream<Item = Result<Bytes, BodyError>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let state = Gunzip {
        input,
        decoder: MultiGzDecoder::new(Vec::new()),
        pending: Bytes::new(),
        read: 0,
        written: 0,
        limit,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            let step = if !state.pending.is_empty() {
                let piece = state.pending.split_to(state.pending.len().min(STEP));
                state
                    .decoder
                    .write_all(&piece)
                    .map_err(|err| BodyError::Invalid(err.to_string()))
                    .and_then(|()| state.output())
            } else {
                match state.input.next().await {
                    Some(Ok(chunk)) => {
                        state.read += chunk.len() as u64;
                        if state.read > state.limit {
                            Err(BodyError::TooLarge(state.limit))
                        } else {
                            state.pending = chunk;
                            continue;
                        }
                    }
                    Some(Err(err)) => Err(BodyError::Read(err.to_string())),
                    None => {
                        state.done = true;
                        state
                            .decoder
                            .try_finish()
                            .map_err(|err| BodyError::Invalid(err.to_string()))
                            .and_then(|()| state.output())
                    }
                }
            };
            match step {
                Ok(output) if output.is_empty() => continue,
                Ok(output) => return Some((Ok(Bytes::from(output)), state)),
                Err(error) => {
                    state.done = true;
                    return Some((Err(error), state));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Decompresses `compressed`, arriving in chunks of `chunk` bytes.
    async fn run(compressed: &[u8], chunk: usize, limit: u64) -> Result<Vec<u8>, BodyError> {
        let chunks: Vec<Result<Bytes, std::io::Error>> = compressed
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut stream = std::pin::pin!(gunzip(futures::stream::iter(chunks), limit));
        let mut out = Vec::new();
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_gzip_body_comes_out_as_it_went_in_however_it_is_chunked() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let compressed = gzip(&data);
        for chunk in [1, 7, 4096, compressed.len()] {
            assert_eq!(run(&compressed, chunk, 1 << 20).await.unwrap(), data);
        }
    }

    #[tokio::test]
    async fn concatenated_members_are_one_body() {
        let compressed = [gzip(b"first "), gzip(b"second")].concat();
        assert_eq!(run(&compressed, 5, 1000).await.unwrap(), b"first second");
    }

    #[tokio::test]
    async fn a_bomb_is_stopped_at_the_limit() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0u8; 64 << 20]).unwrap();
        let compressed = encoder.finish().unwrap();
        assert!(compressed.len() < 100_000, "{}", compressed.len());
        let error = run(&compressed, 16 * 1024, 1 << 20).await.unwrap_err();
        assert!(matches!(error, BodyError::TooLarge(_)), "{error}");
    }

    #[tokio::test]
    async fn a_body_exactly_at_the_limit_passes() {
        let compressed = gzip(&[7u8; 1000]);
        assert_eq!(run(&compressed, 100, 1000).await.unwrap().len(), 1000);
        assert!(matches!(
            run(&compressed, 100, 999).await.unwrap_err(),
            BodyError::TooLarge(_)
        ));
    }

    #[tokio::test]
    async fn what_is_not_gzip_is_invalid() {
        for bad in [&b"{\"results\": []}"[..], b"", &gzip(b"cut short")[..12]] {
            let error = run(bad, 4, 1000).await.unwrap_err();
            assert!(matches!(error, BodyError::Invalid(_)), "{bad:?}: {error}");
        }
    }

    #[test]
    fn failures_map_to_the_right_status() {
        let status = |error: BodyError| match body_error(&error) {
            ApiError::PayloadTooLarge => 413,
            ApiError::BadRequest(_) => 400,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(BodyError::TooLarge(1)), 413);
        assert_eq!(status(BodyError::Invalid("x".into())), 400);
    }

    #[test]
    fn only_gzip_and_identity_are_taken() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_ENCODING, value.parse().unwrap());
            headers
        };
        assert!(!is_gzip(&HeaderMap::new()).unwrap());
        assert!(!is_gzip(&headers("identity")).unwrap());
        assert!(is_gzip(&headers("GZIP")).unwrap());
        assert!(is_gzip(&headers("br")).is_err());
    }
}
