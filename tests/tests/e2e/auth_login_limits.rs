//! Login slows down: per account and client address after repeated failures (unknown
//! accounts alike), per client address always.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use verdict_testkit::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

async fn attempt(app: &TestApp, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn thirty_wrong_passwords_get_429_before_the_thirtieth_and_the_right_one_works_after_the_lock(
) {
    let app = TestApp::spawn_with(&[
        ("VERDICT_LOGIN_MAX_FAILURES", "5"),
        ("VERDICT_LOGIN_LOCKOUT", "1s"),
    ])
    .await;
    let mut first_429 = None;
    for n in 1..=30 {
        let response = attempt(&app, "wrong-password").await;
        match response.status().as_u16() {
            401 => {}
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                first_429.get_or_insert(n);
            }
            other => panic!("attempt {n}: unexpected {other}"),
        }
    }
    let first_429 = first_429.expect("no attempt was slowed down");
    assert!(first_429 < 30, "first 429 at attempt {first_429}");
    assert_eq!(first_429, 6, "the account locks after 5 failures");

    // Still locked: even the right password waits, as long as Retry-After says.
    let locked = attempt(&app, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), 429);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(100)).await;
    assert_eq!(attempt(&app, ADMIN_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = TestApp::spawn_with(&[
        ("VERDICT_LOGIN_MAX_FAILURES", "3"),
        ("VERDICT_LOGIN_LOCKOUT", "1m"),
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(attempt(&app, "wrong-password").await.status(), 401);
    }
    assert_eq!(attempt(&app, ADMIN_PASSWORD).await.status(), 200);
    for _ in 0..2 {
        assert_eq!(attempt(&app, "wrong-password").await.status(), 401);
    }
    assert_eq!(attempt(&app, ADMIN_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn one_client_address_gets_429_with_retry_after_beyond_its_login_budget() {
    let app = TestApp::spawn_with(&[
        ("VERDICT_RATE_LOGIN", "10/m"),
        ("VERDICT_LOGIN_MAX_FAILURES", "1000"),
    ])
    .await;
    for n in 1..=10 {
        assert_eq!(
            attempt(&app, "wrong-password").await.status(),
            401,
            "attempt {n}"
        );
    }
    let limited = attempt(&app, ADMIN_PASSWORD).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    let unknown = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "nobody@example.com", "password": "whatever-password" }))
        .send()
        .await
        .unwrap();
    let wrong = attempt(&app, "wrong-password").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    let body =
        |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap()["detail"].clone();
    assert_eq!(
        body(unknown.text().await.unwrap()),
        body(wrong.text().await.unwrap())
    );
}

#[tokio::test]
async fn a_malformed_login_names_the_field() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "not-an-email", "password": "whatever-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "email");

    let unknown_field = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);
}

#[tokio::test]
async fn a_wrong_password_shorter_than_a_password_can_be_set_to_gets_the_same_401() {
    let app = TestApp::spawn().await;
    let long = attempt(&app, "wrong-password").await;
    let short = attempt(&app, "wrong").await;
    let empty = attempt(&app, "").await;
    assert_eq!(long.status(), 401);
    assert_eq!(short.status(), 401);
    assert_eq!(empty.status(), 401);
    let detail =
        |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap()["detail"].clone();
    let long = detail(long.text().await.unwrap());
    assert_eq!(detail(short.text().await.unwrap()), long);
    assert_eq!(detail(empty.text().await.unwrap()), long);
}

#[tokio::test]
async fn a_login_password_over_1024_bytes_is_refused_naming_the_limit_before_any_hashing() {
    let app = TestApp::spawn().await;
    let response = attempt(&app, &"x".repeat(1025)).await;
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "password");
    assert_eq!(
        problem["errors"][0]["message"],
        "must be at most 1024 bytes"
    );
    // A mebibyte never reaches the auth service: over the body limit.
    let huge = attempt(&app, &"x".repeat(1 << 20)).await;
    assert_eq!(huge.status(), 413);
}

/// A login attempt from `client`, as the trusted proxy in front of the gateway names it.
async fn attempt_from(app: &TestApp, client: &str, email: &str, password: &str) -> u16 {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The attempt (1-based) at which `email` from `client` first gets 429, with wrong passwords.
async fn first_429(app: &TestApp, client: &str, email: &str) -> Option<u32> {
    for n in 1..=10 {
        match attempt_from(app, client, email, "wrong-password").await {
            401 => {}
            429 => return Some(n),
            other => panic!("attempt {n}: unexpected {other}"),
        }
    }
    None
}

const BEHIND_A_PROXY: (&str, &str) = ("VERDICT_TRUSTED_PROXIES", "127.0.0.1");

#[tokio::test]
async fn wrong_guesses_sent_in_parallel_all_count_towards_the_lock() {
    let app = TestApp::spawn_with(&[
        ("VERDICT_LOGIN_MAX_FAILURES", "5"),
        ("VERDICT_LOGIN_LOCKOUT", "1m"),
    ])
    .await;
    let guesses = join_all((0..5).map(|_| attempt(&app, "wrong-password"))).await;
    for guess in guesses {
        assert_eq!(guess.status(), 401);
    }
    assert_eq!(attempt(&app, ADMIN_PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn an_unknown_email_is_locked_after_as_many_failures_as_a_known_one() {
    let app = TestApp::spawn_with(&[
        BEHIND_A_PROXY,
        ("VERDICT_LOGIN_MAX_FAILURES", "3"),
        ("VERDICT_LOGIN_LOCKOUT", "1m"),
    ])
    .await;
    let known = first_429(&app, "203.0.113.1", ADMIN_EMAIL).await;
    let unknown = first_429(&app, "203.0.113.1", "nobody@example.com").await;
    assert_eq!(known, Some(4));
    assert_eq!(unknown, known);
}

#[tokio::test]
async fn a_lockout_from_one_address_does_not_keep_the_owner_out_from_another() {
    let app = TestApp::spawn_with(&[
        BEHIND_A_PROXY,
        ("VERDICT_LOGIN_MAX_FAILURES", "3"),
        ("VERDICT_LOGIN_LOCKOUT", "1m"),
    ])
    .await;
    let attacker = "203.0.113.66";
    assert_eq!(first_429(&app, attacker, ADMIN_EMAIL).await, Some(4));
    assert_eq!(
        attempt_from(&app, attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        429,
        "the attacker's address stays locked, even with the right password"
    );

    let owner = "198.51.100.7";
    assert_eq!(
        attempt_from(&app, owner, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        200
    );
}
