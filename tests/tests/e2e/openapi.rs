//! The generated OpenAPI document is valid OpenAPI 3.x, and it and the router agree:
//! every route is written with its document entry (the router in routes/mod.rs, the
//! entry on the handler), and these tests fail when one is missing.

use std::collections::BTreeSet;
use std::path::PathBuf;

use verdict_testkit::TestApp;

#[tokio::test]
async fn the_openapi_document_validates_as_openapi_3() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert!(document["paths"]["/readyz"].is_object());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    let validator =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/openapi-spec-validator");
    let output = std::process::Command::new(&validator)
        .arg(&path)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "{} (run deploy/install-deps.sh): {err}",
                validator.display()
            )
        });
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The gateway routes that are not in the document, and why.
const UNDOCUMENTED: [&str; 2] = [
    // The WebSocket upgrade: its protocol is in the README, not expressible in OpenAPI.
    "/api/v1/live",
    // Signed blob URLs of the local-disk store, handed out by the artifact operations.
    "/blobs/{key}",
];
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The documented operations: (method, path).
async fn documented(app: &TestApp) -> Vec<(String, String)> {
    let document: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.push((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

/// `path` with every `{parameter}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => in_parameter = true,
            '}' => {
                in_parameter = false;
                out.push('x');
            }
            _ if !in_parameter => out.push(c),
            _ => {}
        }
    }
    out
}

/// The paths the gateway's router declares (`.route("…"` in routes/mod.rs).
fn routed_paths() -> BTreeSet<String> {
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/gateway/src/routes/mod.rs"),
    )
    .unwrap();
    source
        .split(".route(")
        .skip(1)
        .filter_map(|call| call.trim_start().strip_prefix('"'))
        .filter_map(|call| call.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_on_its_path() {
    // Some 200 requests at once: no 429 may hide the router's answer.
    let app = TestApp::spawn_with(&[
        ("VERDICT_RATE_READ", "100000/s"),
        ("VERDICT_RATE_WRITE", "100000/s"),
        ("VERDICT_RATE_LOGIN", "100000/s"),
    ])
    .await;
    let operations = documented(&app).await;
    let paths: BTreeSet<&String> = operations.iter().map(|(_, path)| path).collect();
    let mut disagreements = Vec::new();
    for path in paths {
        for method in METHODS {
            let is_documented = operations.contains(&(method.to_owned(), path.clone()));
            let response = app
                .http
                .request(
                    method.to_uppercase().parse().unwrap(),
                    app.url(&concrete(path)),
                )
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // The router's own refusals: 405 for a method it does not route on a path
            // it knows, 404 without a problem document for a path it does not know.
            let problem = response
                .headers()
                .get("content-type")
                .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
            let routed = !(status == 405 || (status == 404 && !problem));
            if routed != is_documented {
                disagreements.push(format!(
                    "{} {path}: documented {is_documented}, routed {routed} ({status})",
                    method.to_uppercase()
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[tokio::test]
async fn every_routed_path_is_documented_or_known_to_be_left_out() {
    let app = TestApp::spawn().await;
    let documented: BTreeSet<String> = documented(&app)
        .await
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let routed = routed_paths();
    assert!(
        routed.len() > 30,
        "the router's paths were found: {routed:?}"
    );
    let undocumented: Vec<&String> = routed
        .iter()
        .filter(|path| !documented.contains(*path) && !UNDOCUMENTED.contains(&path.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed, not documented: {undocumented:?}"
    );
    let unrouted: Vec<&String> = documented.difference(&routed).collect();
    assert!(unrouted.is_empty(), "documented, not routed: {unrouted:?}");
}
