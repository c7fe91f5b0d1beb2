//! Where artifact bytes live: a small trait with two implementations, chosen by
//! configuration (local disk, served by this service's own HTTP server, or S3).

pub mod disk;
pub mod s3;

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use verdict_contracts::artifacts::UploadTarget;

use crate::Error;

/// How a client will upload one blob.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    pub target: UploadTarget,
    /// The store's id of a multipart upload, kept until `complete`.
    pub upload_id: Option<String>,
}

/// What an upload left in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// Hex SHA-256 of the stored bytes; `None` when the size already differs from the
    /// declared one (not worth hashing).
    pub sha256: Option<String>,
}

/// A blob being declared: everything the store may bind the upload to.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub key: String,
    pub size: u64,
    pub sha256: verdict_contracts::artifacts::Sha256Hex,
    pub content_type: String,
    /// Uploaded by a service inside the deployment (an import's report, by the gateway),
    /// not a client: its URLs name the store's internal endpoint.
    pub by_service: bool,
}

/// A blob to remove, with its unfinished multipart upload if any.
#[derive(Debug, Clone)]
pub struct DoomedBlob {
    pub key: String,
    pub upload_id: Option<String>,
}

/// A blob store. Methods take owned arguments so implementations can be used as trait
/// objects; every deletion is idempotent (deleting what is gone succeeds).
pub trait BlobStore: Send + Sync + 'static {
    /// Where and how the client uploads `blob`, valid for `ttl`.
    fn prepare_upload(
        &self,
        blob: NewBlob,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<UploadPlan, Error>>;

    /// Finishes the upload (assembling a multipart upload) and reports what is stored,
    /// or `None` when nothing was uploaded.
    fn finish_upload(
        &self,
        key: String,
        upload_id: Option<String>,
        declared_size: u64,
    ) -> BoxFuture<'_, Result<Option<Uploaded>, Error>>;

    /// A signed URL to download the blob, offering `file_name` (the last segment of the
    /// artifact's name) as the file name.
    fn download_url(
        &self,
        key: String,
        file_name: String,
        content_type: String,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<String, Error>>;

    /// A signed URL a service inside the deployment reads the blob from: absolute, and
    /// naming the store's internal endpoint, never the public one clients are given.
    fn service_url(&self, key: String, ttl: Duration) -> BoxFuture<'_, Result<String, Error>>;

    /// Removes blobs (and aborts their multipart uploads).
    fn delete(&self, blobs: Vec<DoomedBlob>) -> BoxFuture<'_, Result<(), Error>>;

    /// Keys of this service's blobs last written before `before` (the sweeper compares
    /// them with the rows and deletes the ones no row knows): in S3, only generated ids
    /// below the key prefix. Also clears stray temporary data older than that.
    fn list_keys(&self, before: SystemTime) -> BoxFuture<'_, Result<Vec<String>, Error>>;

    /// The object key of a new artifact with the generated `id`: the store's own
    /// layout, kept in the artifact's row (so a change of layout leaves old objects
    /// readable).
    fn object_key(&self, id: &str) -> String;

    /// Where this service's own blob HTTP server is, when the store needs one.
    fn http_base(&self) -> Option<String>;
}

/// Whether `text` looks like an id this service generates (a UUID): only such names
/// become file names on disk, and only such keys below its prefix does the S3 sweeper
/// take for its own.
pub fn is_generated_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// `attachment` with the file name as a quoted ASCII fallback (anything else, `"` and
/// `\` become `_`) and in the RFC 6266 `filename*` UTF-8 form.
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The content type a download is served with: the declared one, except for types a
/// browser would render as active content.
pub fn served_content_type(content_type: &str) -> String {
    match verdict_contracts::artifacts::ContentType::try_from(content_type.to_owned()) {
        Ok(parsed) if !parsed.is_active() => parsed.as_str().to_owned(),
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_generated_ids_are_taken_for_keys() {
        assert!(is_generated_id("0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"));
        for bad in ["", "..", "../x", "a/b", "a b", "x".repeat(65).as_str()] {
            assert!(!is_generated_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn dispositions_are_attachments_with_a_safe_fallback_name() {
        let value = content_disposition("résumé \"x\".txt");
        assert!(
            value.starts_with("attachment; filename=\"r_sum_ _x_.txt\""),
            "{value}"
        );
        assert!(
            value.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.txt"),
            "{value}"
        );
    }

    #[test]
    fn active_content_is_served_as_bytes() {
        assert_eq!(served_content_type("text/html"), "application/octet-stream");
        assert_eq!(served_content_type("image/png"), "image/png");
    }
}
