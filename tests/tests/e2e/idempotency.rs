//! `Idempotency-Key` on the creating POSTs of the auth and artifacts services (runs and
//! imports: `runs_builds.rs`): the same key and body within 24 h get the first answer and
//! create nothing more; the same key with another body gets 422; keys are per caller.

use reqwest::StatusCode;
use serde_json::{json, Value};
use verdict_testkit::TestApp;

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_repeated_project_creation_answers_the_project_it_created() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = json!({"slug": "once", "name": "Once"});
    let (first, project) = post(&app, &admin, "/api/v1/projects", "p-1", &body).await;
    let (again, repeat) = post(&app, &admin, "/api/v1/projects", "p-1", &body).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(repeat, project);
    let other = json!({"slug": "twice", "name": "Twice"});
    let (code, problem) = post(&app, &admin, "/api/v1/projects", "p-1", &other).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (code, _) = post(&app, &admin, "/api/v1/projects", "p-2", &body).await;
    assert_eq!(code, StatusCode::CONFLICT, "a new key is a new request");
}

#[tokio::test]
async fn a_repeated_token_creation_answers_the_same_working_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let path = "/api/v1/projects/web/tokens";
    let body = json!({"name": "ci", "role": "reporter"});
    let (_, token) = post(&app, &admin, path, "t-1", &body).await;
    let (again, repeat) = post(&app, &admin, path, "t-1", &body).await;
    assert_eq!(again, StatusCode::CREATED);
    assert_eq!(repeat["token"], token["token"]);
    let secret = repeat["token"].as_str().unwrap();
    assert_eq!(
        app.get_as(secret, "/api/v1/projects/web").await.status(),
        200
    );
    let listed: Value = app.get_as(&admin, path).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_repeated_user_creation_answers_the_user_it_created() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body =
        json!({"email": "dev@example.com", "name": "Dev", "password": "correct horse battery"});
    let (first, user) = post(&app, &admin, "/api/v1/users", "u-1", &body).await;
    let (again, repeat) = post(&app, &admin, "/api/v1/users", "u-1", &body).await;
    assert_eq!(
        (first, again),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{repeat}"
    );
    assert_eq!(repeat["id"], user["id"]);
    let other_password =
        json!({"email": "dev@example.com", "name": "Dev", "password": "another password"});
    let (code, _) = post(&app, &admin, "/api/v1/users", "u-1", &other_password).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A running system with a project `web`, a reporter token of it and a run; answers
/// the system, the token and the run's id.
async fn reporter_with_a_run() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let (_, token) = app.api_token(&admin, "web", "reporter").await;
    let run: Value = app
        .post(&token, "/api/v1/projects/web/runs", json!({"name": "r"}))
        .await
        .json()
        .await
        .unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    (app, token, run_id)
}

#[tokio::test]
async fn a_repeated_artifact_batch_answers_the_artifacts_it_declared() {
    let (app, token, run_id) = reporter_with_a_run().await;
    let path = format!("/api/v1/runs/{run_id}/artifacts/batch");
    let declaration = |name: &str| {
        json!({
            "name": name, "content_type": "image/png", "size": 5,
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        })
    };
    let body = json!({"artifacts": [declaration("a.png"), declaration("b.png")]});

    let (first, declared) = post(&app, &token, &path, "b-1", &body).await;
    let (again, repeat) = post(&app, &token, &path, "b-1", &body).await;

    assert_eq!(
        (first, again),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{repeat}"
    );
    let ids = |answer: &Value| -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&repeat), ids(&declared));
    let listed: Value = app
        .get_as(&token, &format!("/api/v1/runs/{run_id}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "declared once"
    );
    let other = json!({"artifacts": [declaration("c.png")]});
    let (code, _) = post(&app, &token, &path, "b-1", &other).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_repeated_artifact_declaration_answers_the_artifact_it_declared() {
    let (app, token, run_id) = reporter_with_a_run().await;
    let path = format!("/api/v1/runs/{run_id}/artifacts");
    let body = json!({
        "name": "screens/a.png", "content_type": "image/png", "size": 5,
        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    });
    let (first, declared) = post(&app, &token, &path, "a-1", &body).await;
    let (again, repeat) = post(&app, &token, &path, "a-1", &body).await;
    assert_eq!(
        (first, again),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{repeat}"
    );
    assert_eq!(repeat["id"], declared["id"]);
    let uploaded = app
        .http
        .put(repeat["upload"]["url"].as_str().unwrap())
        .headers(
            repeat["upload"]["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_str().unwrap().parse().unwrap()))
                .collect(),
        )
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    let listed: Value = app.get_as(&token, &path).await.json().await.unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "declared once"
    );
    let bigger = json!({
        "name": "screens/a.png", "content_type": "image/png", "size": 6,
        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    });
    let (code, _) = post(&app, &token, &path, "a-1", &bigger).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}
