//! Password hashing is bounded: each argon2 hash takes 19 MiB, so the auth service runs
//! only so many at once and turns away what cannot wait briefly, instead of running out
//! of memory.

use futures::future::join_all;
use serde_json::json;
use verdict_testkit::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

#[tokio::test]
async fn logins_beyond_the_concurrent_hash_limit_get_503_with_retry_after_and_auth_stays_up() {
    let app = TestApp::spawn_with(&[
        ("VERDICT_AUTH_MAX_CONCURRENT_HASHES", "1"),
        ("VERDICT_AUTH_HASH_QUEUE_WAIT", "50ms"),
    ])
    .await;
    let logins = (0..30).map(|_| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
    });
    let responses = join_all(logins).await;

    let (mut signed_in, mut turned_away) = (0, 0);
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => signed_in += 1,
            503 => {
                let retry_after: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry_after >= 1);
                turned_away += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(signed_in >= 1, "nobody signed in");
    assert!(turned_away >= 1, "all {signed_in} logins hashed at once");

    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}
