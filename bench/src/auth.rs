//! Login latency (argon2id dominated) and the overhead of the gateway's JWT check:
//! the same `get_project` operation through HTTP with a bearer token, and directly on
//! the bus with the principal header set by hand.

use std::time::Instant;

use serde_json::Value;
use verdict_bus::{Bus, BusSettings};
use verdict_contracts::auth::{self, Principal, ProjectRef};
use verdict_testkit::{access_token, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

use crate::stats::{ms, Summary};

pub async fn run(logins: usize, requests: usize) -> anyhow::Result<()> {
    // The benchmark measures latency, not the rate limiter: lift the read budget.
    let app = TestApp::spawn_with(&[("VERDICT_RATE_READ", "1000000/s")]).await;

    let mut login_times = Vec::with_capacity(logins);
    for _ in 0..logins {
        let started = Instant::now();
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        login_times.push(started.elapsed());
    }

    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = access_token(&pair);
    let project = app.project(&token, "bench").await;
    let path = format!("/api/v1/projects/{project}");
    let claims: Value = app.get_as(&token, "/api/v1/me").await.json().await?;
    let principal = Principal::User {
        user_id: claims["id"].as_str().unwrap_or_default().parse()?,
        session_id: session_of(&token).parse()?,
    };
    let bus = Bus::new(
        app.nats.client().await,
        &BusSettings::new(app.nats.url(), "verdict-bench"),
    );
    let reference = ProjectRef {
        project: project.clone(),
    };

    // Warm both paths (connections, caches, JWKS) before timing.
    for _ in 0..200 {
        app.get_as(&token, &path).await;
        bus.request_as(&auth::GET_PROJECT, &reference, &principal)
            .await?;
    }
    let mut http_times = Vec::with_capacity(requests);
    let mut bus_times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let response = app.get_as(&token, &path).await;
        anyhow::ensure!(
            response.status() == 200,
            "GET {path}: {}",
            response.status()
        );
        response.bytes().await?;
        http_times.push(started.elapsed());

        let started = Instant::now();
        bus.request_as(&auth::GET_PROJECT, &reference, &principal)
            .await?;
        bus_times.push(started.elapsed());
    }

    let login = Summary::of(login_times);
    let http = Summary::of(http_times);
    let direct = Summary::of(bus_times);
    println!("| measure | n | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, summary) in [
        ("login (argon2id 19 MiB, t=2, p=1)", &login),
        ("GET project via gateway (HTTP + JWT + bus)", &http),
        ("get_project directly on the bus", &direct),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            summary.count,
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max)
        );
    }
    println!(
        "| gateway overhead (HTTP, JWT verification, rate limits, headers) | | {} | {} | |",
        ms(http.p50.saturating_sub(direct.p50)),
        ms(http.p99.saturating_sub(direct.p99))
    );
    Ok(())
}

/// The `sid` claim of an access token.
fn session_of(token: &str) -> String {
    use base64::Engine;
    token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| claims["sid"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
