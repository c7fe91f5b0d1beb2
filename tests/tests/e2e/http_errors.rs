//! Every error the gateway returns is an RFC 9457 problem document.

use verdict_testkit::TestApp;

async fn problem(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    let body = problem(response).await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["type"], "urn:verdict:problem:not-found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = TestApp::spawn().await;
    let response = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers()["allow"]
        .to_str()
        .unwrap()
        .contains("GET"));
    assert_eq!(problem(response).await["status"], 405);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/version"))
        .body(vec![b'x'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["status"], 413);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let generated = app.get("/healthz").await;
    assert!(!generated.headers()["x-request-id"].is_empty());

    let echoed = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "ci-job-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "ci-job-42");

    let forged = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "bad id\twith spaces");
}

#[tokio::test]
async fn the_access_api_refuses_bodies_far_smaller_than_the_general_limit() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(100 * 1024);
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"email":"a@b.c","password":"{padding}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["status"], 413);
}

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors_by_default() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn a_listed_origin_gets_cors_headers() {
    let app = TestApp::spawn_with(&[("VERDICT_CORS_ORIGINS", "https://app.example")]).await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test]
async fn a_json_endpoint_refuses_other_content_types() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(problem(response).await["status"], 415);
}

/// An administrator's token and a fresh run in project `web`.
async fn admin_and_run(app: &TestApp) -> (String, String) {
    let token = app.admin_token().await;
    app.project(&token, "web").await;
    let created = app
        .post(
            &token,
            "/api/v1/projects/web/runs",
            serde_json::json!({ "name": "nightly" }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let run: serde_json::Value = created.json().await.unwrap();
    (token, run["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_text_search_for_a_nul_byte_is_refused_naming_q_instead_of_failing() {
    let app = TestApp::spawn().await;
    let (token, run) = admin_and_run(&app).await;
    let response = app
        .get_as(&token, &format!("/api/v1/runs/{run}/results?q=%00"))
        .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert!(body["detail"].as_str().unwrap().starts_with("q:"), "{body}");
}

#[tokio::test]
async fn a_run_attribute_that_cannot_be_a_header_is_refused_at_once_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    app.project(&token, "web").await;
    let started = std::time::Instant::now();
    let response = app
        .post(
            &token,
            "/api/v1/projects/web/runs",
            serde_json::json!({ "name": "nightly", "attributes": { "a\nb": "v".repeat(1025) } }),
        )
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("attributes.a\nb"),
        "{body}"
    );
}

#[tokio::test]
async fn more_attribute_filters_than_the_limit_are_refused_naming_it() {
    let app = TestApp::spawn().await;
    let (token, _) = admin_and_run(&app).await;
    let filters: Vec<String> = (0..1000).map(|i| format!("attr.k{i}=v")).collect();
    let response = app
        .get_as(
            &token,
            &format!("/api/v1/projects/web/runs?{}", filters.join("&")),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert!(body["detail"].as_str().unwrap().contains("16"), "{body}");
}

#[tokio::test]
async fn an_attribute_filter_longer_than_an_attribute_may_be_is_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = admin_and_run(&app).await;
    for filter in [
        format!("attr.{}=v", "k".repeat(129)),
        format!("attr.k={}", "v".repeat(1025)),
    ] {
        let response = app
            .get_as(&token, &format!("/api/v1/projects/web/runs?{filter}"))
            .await;
        assert_eq!(response.status(), 400, "{filter}");
        let body = problem(response).await;
        assert!(
            body["detail"].as_str().unwrap().starts_with("attr."),
            "{body}"
        );
    }
}

/// Each request, with `{id}` in its path replaced by text that is no id and by an id
/// nothing has, gets the same 404 problem either way.
async fn no_id_is_answered_like_an_unknown_one(
    app: &TestApp,
    token: &str,
    requests: Vec<(reqwest::Method, &str, Option<serde_json::Value>)>,
) {
    for (method, path, body) in requests {
        let answer = |id: &str| {
            let path = path.replace("{id}", id);
            let (method, body) = (method.clone(), body.clone());
            async move { app.send(method, token, &path, body).await }
        };
        let not_an_id = answer("no-such-thing").await;
        assert_eq!(not_an_id.status(), 404, "{method} {path}");
        let unknown = answer("01a24dd3-1a36-742d-af3e-72998a5a73e1").await;
        assert_eq!(unknown.status(), 404, "{method} {path}");
        assert_eq!(
            problem(not_an_id).await["detail"],
            problem(unknown).await["detail"],
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn text_that_is_no_run_id_in_a_path_is_answered_like_a_run_that_does_not_exist() {
    let app = TestApp::spawn().await;
    let (token, _) = admin_and_run(&app).await;
    let batch = serde_json::json!({ "results": [{ "name": "a", "status": "passed" }] });
    let runs = "/api/v1/runs/{id}";
    no_id_is_answered_like_an_unknown_one(
        &app,
        &token,
        vec![
            (reqwest::Method::GET, runs, None),
            (reqwest::Method::DELETE, runs, None),
            (reqwest::Method::GET, "/api/v1/runs/{id}/results", None),
            (
                reqwest::Method::POST,
                "/api/v1/runs/{id}/results",
                Some(batch),
            ),
            (
                reqwest::Method::POST,
                "/api/v1/runs/{id}/finish",
                Some(serde_json::json!({})),
            ),
            (reqwest::Method::GET, "/api/v1/runs/{id}/artifacts", None),
            (reqwest::Method::GET, "/api/v1/runs/{id}/failures", None),
            (reqwest::Method::GET, "/api/v1/runs/{id}/shards/linux", None),
        ],
    )
    .await;
}

#[tokio::test]
async fn text_that_is_no_artifact_id_in_a_path_is_answered_like_an_unknown_artifact() {
    let app = TestApp::spawn().await;
    let (token, _) = admin_and_run(&app).await;
    no_id_is_answered_like_an_unknown_one(
        &app,
        &token,
        vec![
            (reqwest::Method::GET, "/api/v1/artifacts/{id}", None),
            (
                reqwest::Method::GET,
                "/api/v1/artifacts/{id}/download",
                None,
            ),
            (
                reqwest::Method::POST,
                "/api/v1/artifacts/{id}/complete",
                None,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn text_that_is_no_user_id_in_a_path_is_answered_like_an_unknown_user() {
    let app = TestApp::spawn().await;
    let (token, _) = admin_and_run(&app).await;
    let member = "/api/v1/projects/web/members/{id}";
    no_id_is_answered_like_an_unknown_one(
        &app,
        &token,
        vec![
            (
                reqwest::Method::PATCH,
                "/api/v1/users/{id}",
                Some(serde_json::json!({ "disabled": true })),
            ),
            (
                reqwest::Method::PUT,
                member,
                Some(serde_json::json!({ "role": "viewer" })),
            ),
            (reqwest::Method::DELETE, member, None),
        ],
    )
    .await;
}
