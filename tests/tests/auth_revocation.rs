//! Revocation reaches every gateway on the bus within a second.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use verdict_testkit::{access_token, TestApp};

/// Polls `GET {base}/api/v1/me` with `token` until it is refused; returns how long that took.
async fn time_until_refused(app: &TestApp, base: &str, token: &str, path: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = app
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {status} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn logout_on_one_gateway_is_honoured_by_another_within_a_second() {
    let mut app = TestApp::spawn().await;
    let second = app.spawn_gateway().await;
    let pair = app
        .login("admin@verdict.test", "admin-password-for-tests")
        .await;
    let token = access_token(&pair);
    let status = app
        .http
        .get(format!("{second}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let logout = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let took = time_until_refused(&app, &second, &token, "/api/v1/me").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn disabling_a_user_locks_them_out_of_every_gateway_within_a_second() {
    let mut app = TestApp::spawn().await;
    let second = app.spawn_gateway().await;
    let admin = app.admin_token().await;
    let (user_id, token) = app.user(&admin, "leaver@example.com").await;

    let disabled = app
        .send(
            Method::PATCH,
            &admin,
            &format!("/api/v1/users/{user_id}"),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let took = time_until_refused(&app, &second, &token, "/api/v1/me").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "leaver@example.com", "password": "a-password-for-tests" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401);
}

#[tokio::test]
async fn a_revoked_api_token_is_refused_by_a_gateway_that_had_it_cached() {
    let mut app = TestApp::spawn().await;
    let second = app.spawn_gateway().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let (created_id, created_secret) = app.api_token(&admin, &project, "viewer").await;
    let token = created_secret.as_str();
    let path = format!("/api/v1/projects/{project}");
    // The second gateway now holds the grant in its cache.
    let status = app
        .http
        .get(format!("{second}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let id = created_id.as_str();
    let revoked = app
        .send(
            Method::DELETE,
            &admin,
            &format!("/api/v1/projects/{project}/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let took = time_until_refused(&app, &second, token, &path).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_gateway_started_after_a_revocation_honours_it() {
    let mut app = TestApp::spawn().await;
    let pair = app
        .login("admin@verdict.test", "admin-password-for-tests")
        .await;
    let logout = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    let late = app.spawn_gateway().await;
    let took = time_until_refused(&app, &late, &access_token(&pair), "/api/v1/me").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
