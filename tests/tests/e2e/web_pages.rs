//! The dashboard over plain HTTP: sessions, CSRF and origin checks, roles and project
//! scope on pages, the headers pages and assets are sent with, and the live socket's
//! cookie authentication. The browser itself is in `web_browser.rs`.

use serde_json::json;
use verdict_testkit::{TestApp, WebSession};

const PASSWORD: &str = "a-password-for-tests";

/// An app with an owner's project `web` and a session of a viewer of it.
async fn with_viewer() -> (TestApp, String, WebSession) {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let (viewer_id, _) = app.user(&admin, "viewer@example.com").await;
    let put = app
        .send(
            reqwest::Method::PUT,
            &admin,
            &format!("/api/v1/projects/{project}/members/{viewer_id}"),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(put.status(), 200);
    let viewer = app.web_login("viewer@example.com", PASSWORD).await;
    (app, project, viewer)
}

#[tokio::test]
async fn pages_send_a_strict_csp_without_unsafe_inline_and_are_never_stored() {
    let app = TestApp::spawn().await;
    let session = app.web_admin().await;
    let anonymous = app.get("/login").await;
    for (path, response) in [("/login", anonymous), ("/", session.get("/").await)] {
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{path}: inline code"
        );
    }
}

#[tokio::test]
async fn assets_are_fingerprinted_and_cached_as_immutable() {
    let app = TestApp::spawn().await;
    let page = app.get("/login").await.text().await.unwrap();
    let start = page.find("/assets/app.").expect("the style sheet's link");
    let href = &page[start..start + page[start..].find('"').unwrap()];
    let asset = app.get(href).await;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(app.get("/assets/app.000000000000.css").await.status(), 404);
}

#[tokio::test]
async fn signing_in_sets_the_session_cookie_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = TestApp::spawn().await;
    let session = app.web_admin().await;
    assert!(session.cookie.starts_with("verdict_session=v1~"));
    let home = session.get("/").await;
    assert_eq!(home.status(), 200);
    assert!(home
        .text()
        .await
        .unwrap()
        .contains(verdict_testkit::ADMIN_EMAIL));
    let anonymous = app.http.get(app.url("/")).send().await.unwrap();
    assert!(
        anonymous.url().path().starts_with("/login"),
        "{}",
        anonymous.url()
    );
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let session = app.web_admin().await;
    let csrf = session.csrf().await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "stolen"),
        ("role", "owner"),
    ];
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let response = session
            .post_form("/projects/web/settings/tokens", &fields, origin)
            .await;
        assert_eq!(response.status(), 403, "from {origin:?}");
    }
    let tokens: serde_json::Value = app
        .get_as(&admin, "/api/v1/projects/web/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_same_origin_form_without_the_sessions_token_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let session = app.web_admin().await;
    let fields = [("csrf", "forged"), ("name", "ci"), ("role", "reporter")];
    let refused = session
        .post_form(
            "/projects/web/settings/tokens",
            &fields,
            Some(session.origin()),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let csrf = session.csrf().await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "ci"),
        ("role", "reporter"),
    ];
    let created = session
        .post_form(
            "/projects/web/settings/tokens",
            &fields,
            Some(session.origin()),
        )
        .await;
    assert_eq!(created.status(), 200);
    let page = created.text().await.unwrap();
    assert!(page.contains("vdt_"), "the new secret is shown once");
    let again = session
        .get("/projects/web/settings")
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains("vdt_"), "and never again");
}

#[tokio::test]
async fn a_viewer_cannot_reach_settings() {
    let (app, _, viewer) = with_viewer().await;
    assert_eq!(viewer.get("/projects/web").await.status(), 200);
    assert_eq!(viewer.get("/projects/web/settings").await.status(), 403);
    let csrf = viewer.csrf().await;
    let fields = [("csrf", csrf.as_str()), ("name", "ci"), ("role", "viewer")];
    let post = viewer
        .post_form(
            "/projects/web/settings/tokens",
            &fields,
            Some(viewer.origin()),
        )
        .await;
    assert_eq!(post.status(), 403);
    assert_eq!(viewer.get("/admin/users").await.status(), 403);
    drop(app);
}

#[tokio::test]
async fn a_page_of_a_project_the_user_cannot_see_is_a_404() {
    let (app, _, viewer) = with_viewer().await;
    let admin = app.admin_token().await;
    let hidden = app.project(&admin, "hidden").await;
    let run: serde_json::Value = app
        .post(
            &admin,
            "/api/v1/projects/hidden/runs",
            json!({ "name": "secret run" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let run_id = run["id"].as_str().unwrap();
    for path in [
        "/projects/hidden".to_owned(),
        format!("/projects/{hidden}"),
        "/projects/hidden/flaky".to_owned(),
        "/projects/hidden/settings".to_owned(),
        "/projects/hidden/tests/abc".to_owned(),
        format!("/runs/{run_id}"),
        "/projects/no-such-project".to_owned(),
    ] {
        let response = viewer.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(!response.text().await.unwrap().contains("secret run"));
    }
}

#[tokio::test]
async fn signing_out_revokes_the_session_everywhere() {
    let app = TestApp::spawn().await;
    let session = app.web_admin().await;
    let csrf = session.csrf().await;
    let out = session
        .post_form(
            "/logout",
            &[("csrf", csrf.as_str())],
            Some(session.origin()),
        )
        .await;
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie is worth nothing now, even if a copy was kept.
    let after = session.get("/").await;
    assert_eq!(after.status(), 303);
    assert!(after.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

#[tokio::test]
async fn the_live_socket_takes_the_session_cookie_from_its_own_origin_only() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::spawn().await;
    let session = app.web_admin().await;
    let url = format!("ws://{}/api/v1/live", app.address());
    let open = |origin: Option<&str>| {
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", session.cookie.parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let status = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
    };
    assert_eq!(status(open(Some(session.origin())).await.map(drop)), 101);
    assert_eq!(
        status(open(Some("http://evil.example")).await.map(drop)),
        403
    );
    assert_eq!(status(open(None).await.map(drop)), 403);
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_once_for_requests_that_arrive_together() {
    let app = TestApp::spawn_with(&[("VERDICT_ACCESS_TOKEN_TTL", "1s")]).await;
    let session = app.web_admin().await;
    // Past the token's lifetime and the gateway's 5 s clock leeway.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let (first, second) = tokio::join!(session.get("/"), session.get("/"));
    let renewed: Vec<String> = [first, second]
        .into_iter()
        .map(|response| {
            assert_eq!(response.status(), 200, "still signed in");
            let cookie = response.headers()["set-cookie"].to_str().unwrap();
            cookie.split(';').next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(renewed[0], renewed[1], "one refresh for both");
    assert_ne!(renewed[0], session.cookie);
    // The old csrf token stays valid: it belongs to the sign-in, not to the tokens.
    let old = session.cookie.rsplit('~').next().unwrap();
    assert_eq!(renewed[0].rsplit('~').next().unwrap(), old);
}
