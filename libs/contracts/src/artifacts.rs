//! The artifacts service's operations and messages: files attached to a run (or one of
//! its results) whose bytes live in a blob store, never on the bus.
//!
//! An artifact's `name` is a relative path (`screens/login.png`) shown to people and
//! used to filter a run's artifacts by directory; its last segment is offered as the
//! download's file name. It never becomes a file system path or an object key (those are
//! generated).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::idempotency::Keyed;
use crate::ids::{ArtifactId, RunId};
use crate::page::{Page, PageRequest};
use crate::system::Empty;
use crate::{Operation, ServiceName};

/// Longest artifact name (a whole relative path), in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest segment of a name (one directory or the file name), in bytes.
pub const MAX_NAME_SEGMENT_BYTES: usize = 255;
/// Most segments of a name (`a/b/c.png` has three).
pub const MAX_NAME_SEGMENTS: usize = 16;
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
pub const MAX_RESULT_ID_BYTES: usize = 255;

/// What names and name prefixes share: a length bound, no control characters, `/` as
/// the only separator, and no absolute paths.
fn check_path_text(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(format!("must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if value.contains('\\') {
        return Err("must separate directories with /, not \\".into());
    }
    if value.starts_with('/') {
        return Err("must be a relative path (no leading /)".into());
    }
    if value.split('/').count() > MAX_NAME_SEGMENTS {
        return Err(format!("must have at most {MAX_NAME_SEGMENTS} segments"));
    }
    Ok(())
}

/// One complete segment: non-empty, not `.` or `..`, at most 255 bytes.
fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("must not have empty segments (// or a trailing /)".into());
    }
    if segment == "." || segment == ".." {
        return Err("must not have . or .. segments".into());
    }
    check_segment_length(segment)
}

fn check_segment_length(segment: &str) -> Result<(), String> {
    if segment.len() > MAX_NAME_SEGMENT_BYTES {
        return Err(format!(
            "must have segments of at most {MAX_NAME_SEGMENT_BYTES} bytes"
        ));
    }
    Ok(())
}

/// An artifact's name: a normalised relative path of 1 to [`MAX_NAME_BYTES`] bytes and
/// at most [`MAX_NAME_SEGMENTS`] segments separated by `/`, each segment 1 to
/// [`MAX_NAME_SEGMENT_BYTES`] bytes and neither `.` nor `..`; no leading `/`, no `\`,
/// no control characters. A name without `/` is a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct ArtifactName(String);

impl ArtifactName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the name offered when the artifact is downloaded.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for ArtifactName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_path_text(&value)?;
        value.split('/').try_for_each(check_segment)?;
        Ok(ArtifactName(value))
    }
}

impl From<ArtifactName> for String {
    fn from(name: ArtifactName) -> Self {
        name.0
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of artifact names (`screens/`, `screens/log`): what a run's artifacts are
/// filtered by. It is a prefix of some valid [`ArtifactName`]: the same rules, except
/// that the last segment may be incomplete (empty after a trailing `/`, or `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactNamePrefix(String);

impl ArtifactNamePrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The least string greater than every name that starts with this prefix, so that
    /// those names are exactly the range `[prefix, upper_bound)` in byte (and code
    /// point) order, which an index can scan.
    pub fn upper_bound(&self) -> String {
        let mut bound = self.0.clone();
        while let Some(last) = bound.pop() {
            let next = match last as u32 + 1 {
                0xD800 => Some('\u{E000}'),
                code => char::from_u32(code),
            };
            if let Some(next) = next {
                bound.push(next);
                return bound;
            }
        }
        // Only U+10FFFF characters: every name at or after the prefix starts with it,
        // and this string, longer than any name, sorts after all of them.
        char::MAX
            .to_string()
            .repeat(MAX_NAME_BYTES / char::MAX.len_utf8() + 1)
    }
}

impl TryFrom<String> for ArtifactNamePrefix {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_path_text(&value)?;
        let mut segments = value.split('/').collect::<Vec<_>>();
        let last = segments.pop().unwrap_or_default();
        segments.into_iter().try_for_each(check_segment)?;
        check_segment_length(last)?;
        Ok(ArtifactNamePrefix(value))
    }
}

impl From<ArtifactNamePrefix> for String {
    fn from(prefix: ArtifactNamePrefix) -> Self {
        prefix.0
    }
}

/// A media type such as `image/png` or `text/plain; charset=utf-8`: printable ASCII,
/// `type/subtype` with token characters, optional parameters, at most 255 bytes.
/// Stored lower-cased up to the parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct ContentType(String);

impl ContentType {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `type/subtype` without parameters.
    pub fn essence(&self) -> &str {
        self.0.split(';').next().unwrap_or_default().trim()
    }

    /// Whether a browser would run or render this as a document when opened inline
    /// (HTML, SVG, XML, scripts, PDF). Such downloads are served as
    /// `application/octet-stream`.
    pub fn is_active(&self) -> bool {
        let essence = self.essence();
        matches!(
            essence,
            "text/html"
                | "application/xhtml+xml"
                | "image/svg+xml"
                | "text/xml"
                | "application/xml"
                | "text/javascript"
                | "application/javascript"
                | "application/ecmascript"
                | "text/ecmascript"
                | "application/pdf"
                | "multipart/x-mixed-replace"
        ) || essence.ends_with("+xml")
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

impl TryFrom<String> for ContentType {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let invalid = || "must be a media type such as image/png".to_owned();
        if value.is_empty() || value.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(format!("must be 1 to {MAX_CONTENT_TYPE_BYTES} bytes"));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err("must be printable ASCII".into());
        }
        let (essence, parameters) = match value.split_once(';') {
            Some((essence, parameters)) => (essence, Some(parameters)),
            None => (value.as_str(), None),
        };
        let (kind, subtype) = essence.trim().split_once('/').ok_or_else(invalid)?;
        if !is_token(kind) || !is_token(subtype) {
            return Err(invalid());
        }
        let mut normalized = format!(
            "{}/{}",
            kind.to_ascii_lowercase(),
            subtype.to_ascii_lowercase()
        );
        if let Some(parameters) = parameters {
            normalized.push(';');
            normalized.push_str(parameters);
        }
        Ok(ContentType(normalized))
    }
}

impl From<ContentType> for String {
    fn from(value: ContentType) -> Self {
        value.0
    }
}

/// A SHA-256 digest as 64 hexadecimal digits, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest's 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in self.0.as_bytes().chunks(2).enumerate() {
            let hex = |b: u8| match b {
                b'0'..=b'9' => b - b'0',
                _ => b - b'a' + 10,
            };
            out[i] = hex(chunk[0]) << 4 | hex(chunk[1]);
        }
        out
    }

    pub fn from_digest(digest: &[u8]) -> Self {
        Sha256Hex(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256Hex(value.to_ascii_lowercase()))
        } else {
            Err("must be a SHA-256 digest: 64 hexadecimal digits".into())
        }
    }
}

impl From<Sha256Hex> for String {
    fn from(value: Sha256Hex) -> Self {
        value.0
    }
}

/// Where an artifact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ArtifactState {
    /// Declared; bytes not (yet) verified.
    Pending,
    /// Size and checksum verified; downloadable.
    Stored,
    /// Being removed with its run.
    Deleted,
}

impl ArtifactState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ArtifactState::Pending => "pending",
            ArtifactState::Stored => "stored",
            ArtifactState::Deleted => "deleted",
        }
    }
}

impl std::str::FromStr for ArtifactState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(ArtifactState::Pending),
            "stored" => Ok(ArtifactState::Stored),
            "deleted" => Ok(ArtifactState::Deleted),
            other => Err(format!("unknown artifact state `{other}`")),
        }
    }
}

/// An artifact as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Artifact {
    pub id: ArtifactId,
    pub run_id: RunId,
    pub result_id: Option<String>,
    pub name: ArtifactName,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub state: ArtifactState,
    pub created_at: String,
}

/// The body of `POST /runs/{run}/artifacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewArtifact {
    pub name: ArtifactName,
    pub content_type: ContentType,
    /// Bytes the upload will carry.
    pub size: u64,
    /// SHA-256 of those bytes, hexadecimal.
    pub sha256: Sha256Hex,
    /// The result (client result id) the artifact belongs to, if any.
    #[serde(default)]
    pub result_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclareArtifact {
    pub run_id: RunId,
    pub artifact: NewArtifact,
}

/// How to send the bytes: `method` to `url` with exactly `headers`. When `parts` is
/// present (large uploads to S3), each part is sent instead, to its own URL, with the
/// part's `size` bytes taken in order from the file; `url` is then the first part's.
/// A relative `url` (local-disk store) is resolved against the gateway's public URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadTarget {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<UploadPart>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadPart {
    /// 1-based part number.
    pub number: u32,
    pub url: String,
    pub size: u64,
}

/// What declaring an artifact answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclaredArtifact {
    pub id: ArtifactId,
    pub upload: UploadTarget,
    /// RFC 3339: when the upload URL stops working.
    pub expires_at: String,
}

/// Most artifacts one batch request declares or completes.
pub const MAX_BATCH_ARTIFACTS: usize = 100;

fn check_batch_len(len: usize) -> Result<(), String> {
    if (1..=MAX_BATCH_ARTIFACTS).contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "must hold 1 to {MAX_BATCH_ARTIFACTS} items, not {len}"
        ))
    }
}

/// 1 to [`MAX_BATCH_ARTIFACTS`] declarations, in the order their answers come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<NewArtifact>", into = "Vec<NewArtifact>")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Vec<NewArtifact>))]
pub struct ArtifactDeclarations(Vec<NewArtifact>);

impl ArtifactDeclarations {
    pub fn into_inner(self) -> Vec<NewArtifact> {
        self.0
    }
}

impl TryFrom<Vec<NewArtifact>> for ArtifactDeclarations {
    type Error = String;

    fn try_from(value: Vec<NewArtifact>) -> Result<Self, Self::Error> {
        check_batch_len(value.len())?;
        Ok(ArtifactDeclarations(value))
    }
}

impl From<ArtifactDeclarations> for Vec<NewArtifact> {
    fn from(value: ArtifactDeclarations) -> Self {
        value.0
    }
}

/// 1 to [`MAX_BATCH_ARTIFACTS`] artifact ids, each listed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Vec<String>))]
pub struct ArtifactIds(Vec<String>);

impl ArtifactIds {
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for ArtifactIds {
    type Error = String;

    fn try_from(value: Vec<String>) -> Result<Self, Self::Error> {
        check_batch_len(value.len())?;
        let mut seen = std::collections::HashSet::with_capacity(value.len());
        if let Some(repeated) = value.iter().find(|id| !seen.insert(id.as_str())) {
            return Err(format!("must list each id once; {repeated} is repeated"));
        }
        Ok(ArtifactIds(value))
    }
}

impl From<ArtifactIds> for Vec<String> {
    fn from(value: ArtifactIds) -> Self {
        value.0
    }
}

/// The body of `POST /runs/{run}/artifacts/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewArtifactBatch {
    pub artifacts: ArtifactDeclarations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclareArtifactBatch {
    pub run_id: RunId,
    pub artifacts: ArtifactDeclarations,
}

/// What declaring a batch answers: one declared artifact per declaration, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclaredArtifactBatch {
    pub items: Vec<DeclaredArtifact>,
}

/// The body of `POST /runs/{run}/artifacts/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteArtifactBatch {
    pub ids: ArtifactIds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteArtifactsOfRun {
    pub run_id: RunId,
    pub ids: ArtifactIds,
}

/// How completing one artifact of a batch went: `status` is what completing it alone
/// would have answered (200, 404, 409 or 422), with the artifact when stored and the
/// reason otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompletedArtifact {
    pub id: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What completing a batch answers: one entry per id, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompletedArtifactBatch {
    pub items: Vec<CompletedArtifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub artifact_id: ArtifactId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListArtifacts {
    pub run_id: RunId,
    #[serde(flatten)]
    pub page: PageRequest,
    /// Only names starting with this, listed in name order (then id) instead of
    /// creation order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<ArtifactNamePrefix>,
}

/// A short-lived signed URL to fetch an artifact's bytes (relative for the local-disk
/// store, like [`UploadTarget::url`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadTarget {
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunArtifacts {
    pub run_id: RunId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedArtifacts {
    pub deleted: u64,
}

/// Where the artifacts service serves blob uploads and downloads over HTTP (local-disk
/// store); `None` when blobs live in S3. The gateway proxies [`BLOB_PATH_PREFIX`] there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEndpoint {
    pub base_url: Option<String>,
}

/// The path under which signed local-disk blob URLs live, on the artifacts service and,
/// proxied, on the gateway.
pub const BLOB_PATH_PREFIX: &str = "/blobs/";

const ARTIFACTS: ServiceName = ServiceName::Artifacts;

/// Reporter: declares an artifact of a run and answers where to upload it. A repeated
/// `Idempotency-Key` gets the artifact it declared, with its upload signed anew.
pub const DECLARE: Operation<Keyed<DeclareArtifact>, DeclaredArtifact> =
    Operation::new(ARTIFACTS, "declare");
/// Reporter: verifies the uploaded bytes; 200 with the stored artifact, 422 when they do
/// not match the declared size or sha256 (the blob is deleted, nothing is stored), 409
/// when nothing was uploaded.
pub const COMPLETE: Operation<ArtifactRef, Artifact> = Operation::new(ARTIFACTS, "complete");
/// Reporter: declares up to [`MAX_BATCH_ARTIFACTS`] artifacts of a run at once, all or
/// none (one quota reservation for their total); answers their uploads in order.
pub const DECLARE_BATCH: Operation<Keyed<DeclareArtifactBatch>, DeclaredArtifactBatch> =
    Operation::new(ARTIFACTS, "declare_batch");
/// Reporter: completes up to [`MAX_BATCH_ARTIFACTS`] artifacts of a run, each as
/// [`COMPLETE`] would; one artifact's failure is its own entry and does not stop the
/// others.
pub const COMPLETE_BATCH: Operation<CompleteArtifactsOfRun, CompletedArtifactBatch> =
    Operation::new(ARTIFACTS, "complete_batch");
/// Viewer.
pub const GET: Operation<ArtifactRef, Artifact> = Operation::query(ARTIFACTS, "get");
/// Viewer: the run's artifacts, oldest first; with a prefix, those whose names start
/// with it, in name order.
pub const LIST: Operation<ListArtifacts, Page<Artifact>> = Operation::query(ARTIFACTS, "list");
/// Viewer: a signed download URL of a stored artifact.
pub const DOWNLOAD: Operation<ArtifactRef, DownloadTarget> =
    Operation::query(ARTIFACTS, "download");
/// Maintainer: deletes every artifact of a run, rows and blobs (also done on
/// `run.deleted`).
pub const DELETE_RUN: Operation<RunArtifacts, DeletedArtifacts> =
    Operation::new(ARTIFACTS, "delete_run");
/// Internal, no principal: where the blob HTTP endpoint is.
pub const BLOB_ENDPOINT: Operation<Empty, BlobEndpoint> =
    Operation::service_query(ARTIFACTS, "blob_endpoint");

/// An import's report: an artifact of kind report of the import's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    pub run_id: RunId,
    pub artifact_id: ArtifactId,
}

/// Where a service reads a report's bytes: an absolute signed URL naming the store's
/// internal endpoint, valid for the artifacts URL lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSource {
    pub url: String,
}

/// Reporter (the gateway, for an import): declares the raw report of an import, an
/// artifact of kind report. Only services move a report's bytes, so its upload URLs name
/// the store's internal endpoint.
pub const DECLARE_REPORT: Operation<Keyed<DeclareArtifact>, DeclaredArtifact> =
    Operation::new(ARTIFACTS, "declare_report");
/// Internal, no principal (runs' import worker): where to read a stored report of the
/// given run. Answers only for artifacts of kind report that belong to that run, so an
/// accepted import never depends on its submitter's session.
pub const REPORT_SOURCE: Operation<ReportRef, ReportSource> =
    Operation::service_query(ARTIFACTS, "report_source");

#[cfg(test)]
mod tests {
    use super::*;

    fn name(value: &str) -> Result<ArtifactName, String> {
        ArtifactName::try_from(value.to_owned())
    }

    fn prefix(value: &str) -> Result<ArtifactNamePrefix, String> {
        ArtifactNamePrefix::try_from(value.to_owned())
    }

    #[test]
    fn a_batch_holds_one_to_a_hundred_items() {
        let ids = |n: usize| (0..n).map(|i| format!("a{i}")).collect::<Vec<_>>();
        assert!(ArtifactIds::try_from(ids(1)).is_ok());
        assert!(ArtifactIds::try_from(ids(MAX_BATCH_ARTIFACTS)).is_ok());
        let empty = ArtifactIds::try_from(ids(0)).unwrap_err();
        assert_eq!(empty, "must hold 1 to 100 items, not 0");
        let over = ArtifactDeclarations::try_from(vec![
            NewArtifact {
                name: name("a.png").unwrap(),
                content_type: ContentType::try_from("image/png".to_owned()).unwrap(),
                size: 1,
                sha256: Sha256Hex::from_digest(&[0; 32]),
                result_id: None,
            };
            MAX_BATCH_ARTIFACTS + 1
        ])
        .unwrap_err();
        assert_eq!(over, "must hold 1 to 100 items, not 101");
    }

    #[test]
    fn a_batch_of_ids_names_the_one_listed_twice() {
        let err = ArtifactIds::try_from(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()])
            .unwrap_err();
        assert_eq!(err, "must list each id once; a is repeated");
    }

    #[test]
    fn names_are_file_names_or_relative_paths() {
        for good in [
            "screenshot 1.png",
            "résumé ✓.txt",
            "..hidden",
            ".env",
            "screens/login.png",
            "test-results/login-should-work-chromium/trace.zip",
            "a/.b/c..d/e",
        ] {
            assert_eq!(name(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn names_that_are_not_normalised_relative_paths_are_refused() {
        for (bad, reason) in [
            ("", "1 to 1024 bytes"),
            (".", ". or .."),
            ("..", ". or .."),
            ("../etc/passwd", ". or .."),
            ("a/../b", ". or .."),
            ("./a", ". or .."),
            ("a/./b", ". or .."),
            ("/etc/passwd", "no leading /"),
            ("a//b", "empty segments"),
            ("a/", "empty segments"),
            ("a\\b", "not \\"),
            ("a\nb", "control characters"),
            ("a/\u{7f}", "control characters"),
            ("a\0b", "control characters"),
        ] {
            let err = name(bad).unwrap_err();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
    }

    #[test]
    fn names_are_bounded_in_length_depth_and_segment_length() {
        let segment = "s".repeat(MAX_NAME_SEGMENT_BYTES);
        assert!(name(&segment).is_ok());
        assert!(name(&format!("{segment}s"))
            .unwrap_err()
            .contains("at most 255 bytes"));
        let deep = vec!["d"; MAX_NAME_SEGMENTS].join("/");
        assert!(name(&deep).is_ok());
        assert!(name(&format!("{deep}/d"))
            .unwrap_err()
            .contains("at most 16 segments"));
        let long = [&segment[..200]; 5].join("/");
        assert!(long.len() <= MAX_NAME_BYTES);
        assert!(name(&long).is_ok());
        let longer = format!("{long}/{}", "x".repeat(MAX_NAME_BYTES - long.len()));
        assert!(name(&longer).unwrap_err().contains("1 to 1024 bytes"));
    }

    #[test]
    fn the_file_name_is_the_last_segment() {
        assert_eq!(
            name("screenshots/login.cy.ts/fails (failed).png")
                .unwrap()
                .file_name(),
            "fails (failed).png"
        );
        assert_eq!(name("trace.zip").unwrap().file_name(), "trace.zip");
    }

    #[test]
    fn prefixes_are_starts_of_valid_names() {
        for good in ["screens/", "screens/lo", "a/b/", ".", "a/.", "a/..", "s"] {
            assert_eq!(prefix(good).unwrap().as_str(), good);
        }
        for bad in ["", "/", "/a", "a//", "../", "a/../", "./", "a\\b", "a\tb"] {
            assert!(prefix(bad).is_err(), "{bad:?}");
        }
        assert!(prefix(&"p".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(prefix(&"p/".repeat(MAX_NAME_SEGMENTS)).is_err());
        assert!(prefix(&"p/".repeat(MAX_NAME_SEGMENTS - 1)).is_ok());
    }

    #[test]
    fn a_prefix_bounds_the_names_that_start_with_it() {
        assert_eq!(prefix("screens/").unwrap().upper_bound(), "screens0");
        assert_eq!(prefix("a\u{D7FF}").unwrap().upper_bound(), "a\u{E000}");
        assert_eq!(prefix("a\u{10FFFF}").unwrap().upper_bound(), "b");
        let top = prefix("\u{10FFFF}").unwrap().upper_bound();
        assert!(top.len() > MAX_NAME_BYTES);
        assert!(top.as_str() > "\u{10FFFF}".repeat(MAX_NAME_BYTES / 4).as_str());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn segment() -> impl Strategy<Value = String> {
            "[^/\\\\\\p{Cc}]{1,40}".prop_filter("not . or ..", |s| s != "." && s != "..")
        }

        fn valid_name() -> impl Strategy<Value = String> {
            proptest::collection::vec(segment(), 1..=MAX_NAME_SEGMENTS)
                .prop_map(|segments| segments.join("/"))
                .prop_filter("short enough", |name| name.len() <= MAX_NAME_BYTES)
        }

        proptest! {
            #[test]
            fn valid_names_parse_unchanged_and_keep_their_last_segment(name in valid_name()) {
                let parsed = ArtifactName::try_from(name.clone()).unwrap();
                prop_assert_eq!(parsed.as_str(), name.as_str());
                prop_assert_eq!(parsed.file_name(), name.rsplit('/').next().unwrap());
                let json = serde_json::to_string(&parsed).unwrap();
                prop_assert_eq!(serde_json::from_str::<ArtifactName>(&json).unwrap(), parsed);
            }

            #[test]
            fn whatever_parses_is_a_normalised_relative_path(text in "[a./\\\\\\n]{0,12}") {
                if let Ok(parsed) = ArtifactName::try_from(text) {
                    let name = parsed.as_str();
                    prop_assert!(!name.starts_with('/') && !name.contains('\\') && !name.contains('\n'));
                    for segment in name.split('/') {
                        prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                    }
                }
            }

            #[test]
            fn every_start_of_a_name_is_a_prefix_whose_range_holds_it(
                name in valid_name(),
                cut in any::<proptest::sample::Index>(),
            ) {
                let boundaries: Vec<usize> =
                    (1..=name.len()).filter(|&i| name.is_char_boundary(i)).collect();
                let start = &name[..boundaries[cut.index(boundaries.len())]];
                let prefix = ArtifactNamePrefix::try_from(start.to_owned()).unwrap();
                prop_assert!(prefix.as_str() <= name.as_str());
                prop_assert!(name.as_str() < prefix.upper_bound().as_str());
            }

            #[test]
            fn the_range_of_a_prefix_holds_exactly_the_names_starting_with_it(
                start in "[ab/\u{10FFFF}]{1,4}",
                name in "[ab/\u{10FFFF}]{0,6}",
            ) {
                if let Ok(prefix) = ArtifactNamePrefix::try_from(start) {
                    let upper = prefix.upper_bound();
                    let in_range = prefix.as_str() <= name.as_str() && name.as_str() < upper.as_str();
                    prop_assert_eq!(in_range, name.starts_with(prefix.as_str()));
                }
            }
        }
    }

    #[test]
    fn content_types_are_normalized_and_checked() {
        let ct = ContentType::try_from("Image/PNG".to_owned()).unwrap();
        assert_eq!(ct.as_str(), "image/png");
        let ct = ContentType::try_from("text/plain; charset=utf-8".to_owned()).unwrap();
        assert_eq!(ct.essence(), "text/plain");
        for bad in ["", "png", "a/", "/b", "a b/c", "text/plain\r\nx: y"] {
            assert!(ContentType::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn active_content_is_recognized() {
        for active in ["text/html", "image/svg+xml", "application/atom+xml; x=1"] {
            assert!(ContentType::try_from(active.to_owned())
                .unwrap()
                .is_active());
        }
        assert!(!ContentType::try_from("image/png".to_owned())
            .unwrap()
            .is_active());
    }

    #[test]
    fn digests_are_64_hex_digits_and_round_trip_their_bytes() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let digest = Sha256Hex::try_from(hex.to_owned()).unwrap();
        assert_eq!(digest.as_str(), hex.to_ascii_lowercase());
        assert_eq!(Sha256Hex::from_digest(&digest.bytes()), digest);
        assert!(Sha256Hex::try_from("abc".to_owned()).is_err());
        assert!(Sha256Hex::try_from("g".repeat(64)).is_err());
    }
}
