//! Revocation reaches every gateway on the bus within a second.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite;
use verdict_testkit::{access_token, LiveClient, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

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

/// Posts a refresh token to `path` (refresh or logout); returns the status.
async fn send_refresh_token(app: &TestApp, path: &str, refresh_token: &serde_json::Value) -> u16 {
    app.http
        .post(app.url(path))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Disables or enables a user as the administrator; returns the status.
async fn set_disabled(app: &TestApp, admin: &str, user_id: &str, disabled: bool) -> u16 {
    app.send(
        Method::PATCH,
        admin,
        &format!("/api/v1/users/{user_id}"),
        Some(json!({ "disabled": disabled })),
    )
    .await
    .status()
    .as_u16()
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

    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &pair["refresh_token"]).await,
        204
    );
    let took = time_until_refused(&app, &second, &token, "/api/v1/me").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn disabling_a_user_locks_them_out_of_every_gateway_within_a_second() {
    let mut app = TestApp::spawn().await;
    let second = app.spawn_gateway().await;
    let admin = app.admin_token().await;
    let (user_id, token) = app.user(&admin, "leaver@example.com").await;

    assert_eq!(set_disabled(&app, &admin, &user_id, true).await, 200);
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
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &pair["refresh_token"]).await,
        204
    );

    let late = app.spawn_gateway().await;
    let took = time_until_refused(&app, &late, &access_token(&pair), "/api/v1/me").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// The status a gateway answers a live socket's upgrade with: it decides from the token
/// and its own deny list alone, asking no service.
async fn live_upgrade_status(base: &str, token: &str) -> u16 {
    match LiveClient::connect(base, Some(token)).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("live upgrade failed: {other}"),
    }
}

#[tokio::test]
async fn a_gateway_started_after_a_logout_refuses_the_session_on_its_own() {
    let mut app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = access_token(&pair);
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &pair["refresh_token"]).await,
        204
    );

    let late = app.spawn_gateway().await;
    assert_eq!(live_upgrade_status(&late, &token).await, 401);
    assert_eq!(live_upgrade_status(&app.url(""), &token).await, 401);
}

#[tokio::test]
async fn a_gateway_started_after_a_user_was_disabled_refuses_their_tokens_on_its_own() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (user_id, token) = app.user(&admin, "gone@example.com").await;
    assert_eq!(set_disabled(&app, &admin, &user_id, true).await, 200);

    let late = app.spawn_gateway().await;
    assert_eq!(live_upgrade_status(&late, &token).await, 401);
    assert_eq!(live_upgrade_status(&late, &admin).await, 101);
}

/// How many revocations (and un-revocations) were ever written to the bucket every
/// gateway watches: each one makes every live socket on every gateway check its token.
async fn revocations_published(app: &TestApp) -> u64 {
    let jetstream = async_nats::jetstream::new(app.nats.client().await);
    let mut bucket = jetstream
        .get_stream("KV_VERDICT_REVOCATIONS")
        .await
        .unwrap();
    bucket.info().await.unwrap().state.last_sequence
}

#[tokio::test]
async fn a_second_logout_of_the_same_session_publishes_no_new_revocation() {
    let app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let before = revocations_published(&app).await;
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &pair["refresh_token"]).await,
        204
    );
    let after_first = revocations_published(&app).await;
    assert_eq!(after_first, before + 1);

    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &pair["refresh_token"]).await,
        204
    );
    assert_eq!(revocations_published(&app).await, after_first);
}

#[tokio::test]
async fn a_spent_refresh_token_reused_again_publishes_no_new_revocation() {
    let app = TestApp::spawn().await;
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/refresh", &first["refresh_token"]).await,
        200
    );
    let before = revocations_published(&app).await;
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/refresh", &first["refresh_token"]).await,
        401
    );
    let after_first = revocations_published(&app).await;
    assert_eq!(
        after_first,
        before + 1,
        "the first reuse revokes the session"
    );

    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/refresh", &first["refresh_token"]).await,
        401
    );
    assert_eq!(
        send_refresh_token(&app, "/api/v1/auth/logout", &first["refresh_token"]).await,
        204
    );
    assert_eq!(revocations_published(&app).await, after_first);
}

#[tokio::test]
async fn disabling_a_disabled_user_or_enabling_an_enabled_one_publishes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (user_id, _) = app.user(&admin, "twice@example.com").await;
    let before = revocations_published(&app).await;
    assert_eq!(set_disabled(&app, &admin, &user_id, false).await, 200);
    assert_eq!(revocations_published(&app).await, before);

    assert_eq!(set_disabled(&app, &admin, &user_id, true).await, 200);
    let disabled = revocations_published(&app).await;
    assert_eq!(disabled, before + 1);
    assert_eq!(set_disabled(&app, &admin, &user_id, true).await, 200);
    assert_eq!(revocations_published(&app).await, disabled);
}

#[tokio::test]
async fn revoking_a_revoked_api_token_again_publishes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let (token_id, _) = app.api_token(&admin, &project, "reporter").await;
    let path = format!("/api/v1/projects/{project}/tokens/{token_id}");
    assert_eq!(
        app.send(Method::DELETE, &admin, &path, None).await.status(),
        204
    );
    let revoked = revocations_published(&app).await;
    assert_eq!(
        app.send(Method::DELETE, &admin, &path, None).await.status(),
        204
    );
    assert_eq!(revocations_published(&app).await, revoked);
}
