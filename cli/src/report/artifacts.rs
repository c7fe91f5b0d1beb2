//! The files to attach: those a report names for a test (`[[ATTACHMENT|path]]` in its
//! output, as Playwright and the Jenkins JUnit attachments convention write), linked to
//! that test's result, and those `--artifacts` patterns match. Names are relative paths
//! (`test-results/login/screenshot.png`), the file's place below the working directory.

use std::path::{Component, Path, PathBuf};

use verdict_client::ArtifactFile;
use verdict_contracts::artifacts::{ArtifactName, ContentType};

use super::inputs::is_pattern;
use super::Failure;

const ATTACHMENT_START: &str = "[[ATTACHMENT|";
const ATTACHMENT_END: &str = "]]";

/// The paths `[[ATTACHMENT|path]]` markers in a test's output name, in order.
pub fn attachment_paths(output: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut rest = output;
    while let Some(start) = rest.find(ATTACHMENT_START) {
        rest = &rest[start + ATTACHMENT_START.len()..];
        let Some(end) = rest.find(ATTACHMENT_END) else {
            break;
        };
        let path = rest[..end].trim();
        if !path.is_empty() && !path.contains('\n') {
            paths.push(path);
        }
        rest = &rest[end + ATTACHMENT_END.len()..];
    }
    paths
}

/// `path` made absolute against `cwd`, with `.` and `..` resolved by their names (no
/// symbolic links followed), so that one file has one spelling.
pub fn normalize(cwd: &Path, path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in cwd.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// An artifact's name for the file at `path` (absolute, normalised): its path below the
/// first of `bases` it lies under, else its file name.
pub fn artifact_name(path: &Path, bases: &[&Path]) -> Result<ArtifactName, String> {
    let relative = bases
        .iter()
        .find_map(|base| path.strip_prefix(base).ok())
        .filter(|relative| relative.components().next().is_some())
        .or_else(|| path.file_name().map(Path::new))
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let segments = relative
        .components()
        .map(|component| component.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{}: the name is not UTF-8", path.display()))?;
    ArtifactName::try_from(segments.join("/")).map_err(|reason| {
        format!(
            "{}: cannot be an artifact name: it {reason}",
            path.display()
        )
    })
}

/// The media type of a file, by its extension; `application/octet-stream` when unknown.
pub fn content_type(path: &Path) -> ContentType {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let media = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "webm" => "video/webm",
        "mp4" => "video/mp4",
        "txt" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    };
    ContentType::try_from(media.to_owned()).expect("the table holds valid media types")
}

/// A file a report names for one of its results.
pub struct Attachment {
    /// The directory of the report naming it, which relative paths start from.
    pub report_dir: PathBuf,
    pub path: String,
    pub result_id: String,
}

/// What to upload, and what could not be found (as warnings: a report may name files
/// that are gone).
pub struct Plan {
    pub files: Vec<ArtifactFile>,
    pub warnings: Vec<String>,
}

/// The attachments (each linked to its result) and the files the patterns match, each
/// file once; a file both attached and matched is uploaded as the attachment.
pub fn plan(cwd: &Path, attachments: &[Attachment], patterns: &[String]) -> Result<Plan, Failure> {
    let mut plan = Plan {
        files: Vec::new(),
        warnings: Vec::new(),
    };
    let mut seen: Vec<PathBuf> = Vec::new();
    for attachment in attachments {
        let written = Path::new(&attachment.path);
        let path = [attachment.report_dir.join(written), written.to_owned()]
            .into_iter()
            .map(|candidate| normalize(cwd, &candidate))
            .find(|candidate| candidate.is_file());
        let Some(path) = path else {
            plan.warnings.push(format!(
                "attachment {} (of result {}) not found; not uploaded",
                attachment.path, attachment.result_id
            ));
            continue;
        };
        let report_dir = normalize(cwd, &attachment.report_dir);
        let name = artifact_name(&path, &[cwd, &report_dir]).map_err(Failure::input)?;
        seen.push(path.clone());
        plan.files.push(ArtifactFile {
            content_type: content_type(&path),
            path,
            name,
            result_id: Some(attachment.result_id.clone()),
        });
    }
    for pattern in patterns {
        let base = normalize(cwd, &literal_base(pattern));
        let matches = glob::glob(pattern)
            .map_err(|err| Failure::input(format!("--artifacts {pattern}: {err}")))?;
        let mut matched = 0;
        for path in matches.filter_map(Result::ok).filter(|path| path.is_file()) {
            matched += 1;
            let path = normalize(cwd, &path);
            if seen.contains(&path) {
                continue;
            }
            let name = artifact_name(&path, &[cwd, &base]).map_err(Failure::input)?;
            seen.push(path.clone());
            plan.files.push(ArtifactFile {
                content_type: content_type(&path),
                path,
                name,
                result_id: None,
            });
        }
        if matched == 0 {
            plan.warnings
                .push(format!("--artifacts {pattern}: no file matches"));
        }
    }
    Ok(plan)
}

/// The directory part of a pattern before its first wildcard (`/tmp/out` of
/// `/tmp/out/**/*.png`).
fn literal_base(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    for component in Path::new(pattern).components() {
        if component.as_os_str().to_str().is_some_and(is_pattern) {
            break;
        }
        base.push(component);
    }
    if base == Path::new(pattern) {
        base.pop();
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_markers_are_found_in_output() {
        let output = "log line\n[[ATTACHMENT|test-results/login/screenshot.png]]\n\
                      more\n[[ATTACHMENT| trace.zip ]][[ATTACHMENT|]]\n[[ATTACHMENT|unterminated";
        assert_eq!(
            attachment_paths(output),
            ["test-results/login/screenshot.png", "trace.zip"]
        );
    }

    #[test]
    fn paths_are_normalised_by_name() {
        let cwd = Path::new("/work/app");
        assert_eq!(
            normalize(cwd, Path::new("./reports/../test-results/a.png")),
            Path::new("/work/app/test-results/a.png")
        );
        assert_eq!(
            normalize(cwd, Path::new("/tmp/./x.png")),
            Path::new("/tmp/x.png")
        );
    }

    #[test]
    fn names_are_paths_below_the_first_base_that_holds_the_file() {
        let cwd = Path::new("/work/app");
        let name = |path: &str, bases: &[&Path]| {
            artifact_name(Path::new(path), bases).map(|name| name.as_str().to_owned())
        };
        assert_eq!(
            name("/work/app/test-results/login/shot.png", &[cwd]).unwrap(),
            "test-results/login/shot.png"
        );
        assert_eq!(
            name("/tmp/out/videos/a.webm", &[cwd, Path::new("/tmp/out")]).unwrap(),
            "videos/a.webm"
        );
        assert_eq!(name("/elsewhere/a.log", &[cwd]).unwrap(), "a.log");
        let deep = format!("/work/app/{}x.png", "d/".repeat(20));
        assert!(name(&deep, &[cwd]).unwrap_err().contains("segments"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type(Path::new("a/Shot.PNG")).as_str(), "image/png");
        assert_eq!(
            content_type(Path::new("trace.zip")).as_str(),
            "application/zip"
        );
        assert_eq!(
            content_type(Path::new("README")).as_str(),
            "application/octet-stream"
        );
    }

    #[test]
    fn a_pattern_base_is_its_directory_before_the_first_wildcard() {
        assert_eq!(literal_base("/tmp/out/**/*.png"), Path::new("/tmp/out"));
        assert_eq!(literal_base("shots/*.png"), Path::new("shots"));
        assert_eq!(literal_base("logs/server.log"), Path::new("logs"));
    }

    #[test]
    fn a_file_both_attached_and_matched_is_uploaded_once_linked_to_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        std::fs::create_dir_all(cwd.join("results/login")).unwrap();
        std::fs::write(cwd.join("results/login/shot.png"), b"png").unwrap();
        std::fs::write(cwd.join("results/run.log"), b"log").unwrap();
        let attachments = [
            Attachment {
                report_dir: cwd.join("reports"),
                path: "../results/login/shot.png".into(),
                result_id: "r1".into(),
            },
            Attachment {
                report_dir: cwd.join("reports"),
                path: "gone.png".into(),
                result_id: "r2".into(),
            },
        ];
        let pattern = format!("{}/results/**/*", cwd.display());
        let plan = plan(cwd, &attachments, &[pattern]).unwrap();
        let files: Vec<(&str, Option<&str>)> = plan
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.result_id.as_deref()))
            .collect();
        assert_eq!(
            files,
            [
                ("results/login/shot.png", Some("r1")),
                ("results/run.log", None)
            ]
        );
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.warnings[0].contains("gone.png"), "{:?}", plan.warnings);
    }
}
