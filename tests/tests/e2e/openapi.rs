//! The generated OpenAPI document is valid OpenAPI 3.x.

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
