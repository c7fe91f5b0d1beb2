//! Access tokens, API tokens and refresh tokens: what the gateway accepts and what it
//! refuses.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use verdict_contracts::ServiceName;
use verdict_testkit::{access_token, Component, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get_as(token, "/api/v1/me").await.status().as_u16()
}

/// The auth service's current signing key, read from its database: lets a test sign
/// tokens that are valid in every respect but the one it checks.
fn signing_key(app: &TestApp) -> (String, Vec<u8>, Vec<u8>) {
    let db = rusqlite::Connection::open(app.data_dir().join("auth.db")).unwrap();
    db.query_row(
        "SELECT kid, private_pkcs8, public_key FROM signing_keys WHERE retired_at IS NULL",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .unwrap()
}

/// The claims of a real access token, so forged tokens name a live session.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Valid claims for `session` (the claims of a real token), changed by `overrides`.
fn claims(session: &Value, overrides: Value) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iss": "verdict", "aud": "verdict-api", "sub": session["sub"], "iat": now, "exp": now + 600,
        "jti": "test", "typ": "access", "sid": session["sid"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

fn sign_eddsa(kid: &str, pkcs8: &[u8], claims: &Value) -> String {
    let header = Header {
        kid: Some(kid.to_owned()),
        ..Header::new(Algorithm::EdDSA)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(pkcs8)).unwrap()
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = app.get_as(token, "/api/v1/me").await.json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_login_token_verifies_with_an_independent_jwt_library_against_the_jwks() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), &jwks).unwrap();
    std::fs::write(dir.path().join("token"), &token).unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_jwt.py"))
        .arg(dir.path().join("jwks.json"))
        .arg(dir.path().join("token"))
        .args(["verdict", "verdict-api"])
        .output()
        .unwrap_or_else(|err| panic!("{} (run deploy/install-deps.sh): {err}", python.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        user_id(&app, &token).await
    );
}

#[tokio::test]
async fn requests_without_a_token_or_with_garbage_are_refused() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "vdt_nothing",
    ] {
        assert_eq!(me_status(&app, garbage).await, 401, "{garbage}");
    }
}

#[tokio::test]
async fn expired_wrong_audience_and_wrong_issuer_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let session = claims_of(&app.admin_token().await);
    let (kid, pkcs8, _) = signing_key(&app);
    // A token made the same way and valid in every respect passes, so each refusal
    // below is for the one claim it changes.
    let valid = sign_eddsa(&kid, &pkcs8, &claims(&session, json!({})));
    assert_eq!(me_status(&app, &valid).await, 200);

    let now = session["iat"].as_i64().unwrap();
    for (case, overrides) in [
        ("expired", json!({ "exp": now - 60, "iat": now - 1000 })),
        ("wrong audience", json!({ "aud": "someone-else" })),
        ("wrong issuer", json!({ "iss": "evil" })),
        ("not an access token", json!({ "typ": "refresh" })),
    ] {
        let token = sign_eddsa(&kid, &pkcs8, &claims(&session, overrides));
        assert_eq!(me_status(&app, &token).await, 401, "{case}");
    }
}

#[tokio::test]
async fn a_token_signed_with_the_real_key_but_claims_changed_afterwards_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    assert_eq!(me_status(&app, &token).await, 200);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    assert_eq!(me_status(&app, &parts.join(".")).await, 401);
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let app = TestApp::spawn().await;
    let session = claims_of(&app.admin_token().await);
    let (kid, _, public_key) = signing_key(&app);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&session, json!({}))).unwrap());

    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    assert_eq!(
        me_status(&app, &format!("{none_header}.{body}.")).await,
        401,
        "alg none"
    );

    let hs256 = Header {
        kid: Some(kid.clone()),
        ..Header::new(Algorithm::HS256)
    };
    let x = URL_SAFE_NO_PAD.encode(&public_key);
    for secret in [public_key.clone(), x.into_bytes()] {
        let token = jsonwebtoken::encode(
            &hs256,
            &claims(&session, json!({})),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_eq!(
            me_status(&app, &token).await,
            401,
            "HS256 keyed with the public key"
        );
    }
}

#[tokio::test]
async fn a_token_from_an_unknown_key_is_refused() {
    let app = TestApp::spawn().await;
    let session = claims_of(&app.admin_token().await);
    let stranger = ed25519_pkcs8();
    let token = sign_eddsa("unknown-kid", &stranger, &claims(&session, json!({})));
    assert_eq!(me_status(&app, &token).await, 401);
}

/// A fresh Ed25519 key in PKCS#8, the way any attacker could make one.
fn ed25519_pkcs8() -> Vec<u8> {
    // RFC 8410 PKCS#8 v1 prefix for an Ed25519 private key, then a 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    der
}

#[tokio::test]
async fn a_revoked_api_token_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let (created_id, created_secret) = app.api_token(&admin, &project, "reporter").await;
    let token = created_secret.as_str();
    assert!(token.starts_with("vdt_"));
    assert_eq!(
        app.get_as(token, &format!("/api/v1/projects/{project}"))
            .await
            .status(),
        200
    );

    let id = created_id.as_str();
    let revoked = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("/api/v1/projects/{project}/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        app.get_as(token, &format!("/api/v1/projects/{project}"))
            .await
            .status(),
        401
    );
}

fn rfc3339_in(seconds: i64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds as u64);
    let unix = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// An API token with `role` in a new project, made by the administrator, expiring as
/// `expires_at` says (never when `None`); returns the project and the token's secret.
async fn project_token(app: &TestApp, role: &str, expires_at: Option<String>) -> (String, String) {
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let created = app
        .post(
            &admin,
            &format!("/api/v1/projects/{project}/tokens"),
            json!({ "name": "ci", "role": role, "expires_at": expires_at }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    (project, created["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_api_token_cannot_create_a_token_that_outlives_it() {
    let app = TestApp::spawn().await;
    let (project, maintainer) = project_token(&app, "maintainer", Some(rfc3339_in(3600))).await;
    let tokens = format!("/api/v1/projects/{project}/tokens");
    for (expires_at, what) in [(None, "never expiring"), (Some(rfc3339_in(7200)), "later")] {
        let response = app
            .post(
                &maintainer,
                &tokens,
                json!({ "name": "child", "role": "viewer", "expires_at": expires_at }),
            )
            .await;
        assert_eq!(response.status(), 400, "a {what} token");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("expires_at: "),
            "{problem}"
        );
    }
    let within = app
        .post(
            &maintainer,
            &tokens,
            json!({ "name": "child", "role": "viewer", "expires_at": rfc3339_in(1800) }),
        )
        .await;
    assert_eq!(within.status(), 201);
}

#[tokio::test]
async fn an_api_token_that_never_expires_may_create_one_that_never_expires() {
    let app = TestApp::spawn().await;
    let (project, maintainer) = project_token(&app, "maintainer", None).await;
    let created = app
        .post(
            &maintainer,
            &format!("/api/v1/projects/{project}/tokens"),
            json!({ "name": "child", "role": "reporter" }),
        )
        .await;
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn an_api_token_cannot_create_a_token_with_a_role_above_its_own() {
    let app = TestApp::spawn().await;
    let (project, maintainer) = project_token(&app, "maintainer", None).await;
    let tokens = format!("/api/v1/projects/{project}/tokens");
    let owner = app
        .post(
            &maintainer,
            &tokens,
            json!({ "name": "up", "role": "owner" }),
        )
        .await;
    assert_eq!(owner.status(), 403);
    let same = app
        .post(
            &maintainer,
            &tokens,
            json!({ "name": "same", "role": "maintainer" }),
        )
        .await;
    assert_eq!(same.status(), 201);
}

#[tokio::test]
async fn the_token_list_never_shows_secrets() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let (created_id, created_secret) = app.api_token(&admin, &project, "viewer").await;
    let listed = app
        .get_as(&admin, &format!("/api/v1/projects/{project}/tokens"))
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(created_id.as_str()));
    assert!(!listed.contains(created_secret.as_str()));
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_rotates_the_token_and_a_spent_one_is_refused() {
    let app = TestApp::spawn().await;
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let spent = first["refresh_token"].as_str().unwrap();
    let second: Value = refresh(&app, spent).await.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(me_status(&app, &access_token(&second)).await, 200);
    assert_eq!(refresh(&app, spent).await.status(), 401);
}

#[tokio::test]
async fn refreshing_does_not_extend_a_session_past_the_refresh_token_lifetime() {
    let app = TestApp::spawn_with(&[("VERDICT_REFRESH_TOKEN_TTL", "3s")]).await;
    let started = std::time::Instant::now();
    let mut pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let response = refresh(&app, pair["refresh_token"].as_str().unwrap()).await;
        if response.status() == 401 {
            break;
        }
        assert_eq!(response.status(), 200);
        pair = response.json().await.unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "refreshing kept a 3 s session alive for 5 s"
        );
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "refused after {:?}, before the session's lifetime was up",
        started.elapsed()
    );
    assert_eq!(me_status(&app, &access_token(&pair)).await, 401);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_its_successors_and_their_access_tokens() {
    let app = TestApp::spawn().await;
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let second: Value = refresh(&app, first["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let third: Value = refresh(&app, second["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me_status(&app, &access_token(&third)).await, 200);

    // Someone replays the first, long spent, token.
    assert_eq!(
        refresh(&app, first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    assert_eq!(
        refresh(&app, third["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(me_status(&app, &access_token(&third)).await, 401);
    assert_eq!(me_status(&app, &access_token(&first)).await, 401);
    // Another sign-in is a new session, untouched.
    assert_eq!(me_status(&app, &app.admin_token().await).await, 200);
}

#[tokio::test]
async fn logout_ends_the_session_everywhere() {
    let app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let logout = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(me_status(&app, &access_token(&pair)).await, 401);
    assert_eq!(
        refresh(&app, pair["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn signing_keys_survive_a_restart_of_the_auth_service() {
    let mut app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let auth = verdict_testkit::Component::Service(verdict_contracts::ServiceName::Auth);
    app.stop(auth).await;
    app.start(auth).await;
    app.wait_for_status("/readyz", 200, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(me_status(&app, &token).await, 200);
}

/// Bytes 0 to 31, base64: a key encryption key for tests.
const KEY_ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// For each stored private key, oldest first: whether it is sealed rather than PKCS#8
/// DER (an ASN.1 SEQUENCE, first byte 0x30).
fn stored_keys_sealed(app: &TestApp) -> Vec<bool> {
    let db = rusqlite::Connection::open(app.data_dir().join("auth.db")).unwrap();
    let mut statement = db
        .prepare("SELECT private_pkcs8 FROM signing_keys ORDER BY created_at, kid")
        .unwrap();
    let keys = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap();
    keys.map(|key| key.unwrap()[0] != 0x30).collect()
}

#[tokio::test]
async fn with_a_key_encryption_key_signing_keys_are_sealed_and_tokens_keep_working() {
    let mut app = TestApp::spawn().await;
    let before = app.admin_token().await;
    assert_eq!(stored_keys_sealed(&app), [false]);
    let auth = Component::Service(ServiceName::Auth);
    app.stop(auth).await;
    app.set("VERDICT_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY);
    app.start(auth).await;
    app.wait_for_status("/readyz", 200, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(
        stored_keys_sealed(&app),
        [true],
        "the plain key is sealed at start"
    );
    assert_eq!(me_status(&app, &before).await, 200);
    let rotated = app
        .post(&before, "/api/v1/admin/keys/rotate", json!({}))
        .await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(stored_keys_sealed(&app), [true, true]);
    let after = app.admin_token().await;
    assert_eq!(me_status(&app, &after).await, 200);
    assert_eq!(me_status(&app, &before).await, 200);
}

#[tokio::test]
async fn sealed_signing_keys_without_their_key_stop_the_auth_service_naming_the_setting() {
    let app = TestApp::spawn_with(&[("VERDICT_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)]).await;
    assert_eq!(stored_keys_sealed(&app), [true]);
    // An empty value is the setting unset.
    let env = app.env().with([("VERDICT_KEY_ENCRYPTION_KEY", "")]);
    let settings = verdict_auth::Settings::from_env(&env).unwrap();
    let error = verdict_auth::run(settings, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("VERDICT_KEY_ENCRYPTION_KEY"),
        "{error}"
    );
}

#[tokio::test]
async fn after_a_key_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let app = TestApp::spawn().await;
    let before = app.admin_token().await;
    let rotated: Value = app
        .post(&before, "/api/v1/admin/keys/rotate", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let after = app.admin_token().await;
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(kid(&after), rotated["kid"].as_str().unwrap());
    assert_ne!(kid(&before), kid(&after));
    assert_eq!(me_status(&app, &before).await, 200);
    assert_eq!(me_status(&app, &after).await, 200);
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_principal_header_sent_by_a_client_is_ignored() {
    let app = TestApp::spawn().await;
    let forged = r#"{"kind":"user","user_id":"x","session_id":"y"}"#;
    let response = app
        .http
        .get(app.url("/api/v1/me"))
        .header("Verdict-Principal", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
