//! The dashboard in real browsers: headless Chromium and headless Firefox over WebDriver
//! against a TestApp. Every behaviour runs in each browser (`<behaviour>::chromium`,
//! `<behaviour>::firefox`). One browser session walks through what a person does (sign
//! in, create an API token, watch results arrive on an open run page, read a failure's
//! trace, preview a PNG, follow a test's history, sign out and press Back), saving a
//! screenshot of each page under `target/browser-screenshots/<browser>/`.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict_testkit::{Browser, BrowserKind, Component, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// How soon a posted result must show on an open run page.
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

async fn css(client: &Client, selector: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|err| panic!("no element {selector}: {err}"))
}

async fn path(client: &Client) -> String {
    client
        .current_url()
        .await
        .expect("current URL")
        .path()
        .to_owned()
}

async fn script(client: &Client, code: &str) -> Value {
    client.execute(code, vec![]).await.expect("script runs")
}

/// Instantiates behaviours, each an `async fn(BrowserKind)`, as one test per browser:
/// `<behaviour>::chromium` and `<behaviour>::firefox`.
macro_rules! in_every_browser {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            use verdict_testkit::BrowserKind;

            #[tokio::test]
            async fn chromium() {
                super::$behaviour(BrowserKind::Chromium).await;
            }

            #[tokio::test]
            async fn firefox() {
                super::$behaviour(BrowserKind::Firefox).await;
            }
        }
    )*};
}

in_every_browser!(
    a_person_follows_a_run_in_the_browser,
    a_busy_run_page_keeps_its_newest_results_each_once,
    a_run_page_in_a_background_tab_still_catches_up,
);

async fn a_person_follows_a_run_in_the_browser(kind: BrowserKind) {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "shop").await;
    let browser = Browser::start(kind).await;
    let client = &browser.client;

    // Sign in.
    client.goto(&app.url("/runs/none")).await.unwrap();
    assert_eq!(
        path(client).await,
        "/login",
        "signed-out visitors are sent to sign in"
    );
    browser.screenshot("login").await;
    css(client, "#email")
        .await
        .send_keys(ADMIN_EMAIL)
        .await
        .unwrap();
    css(client, "#password")
        .await
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    css(client, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    css(client, "h1").await;
    assert_eq!(
        path(client).await,
        "/runs/none",
        "back where the visitor wanted to go"
    );
    client.goto(&app.url("/")).await.unwrap();
    assert!(browser.text("main").await.contains("shop"));
    browser.screenshot("projects").await;

    // Create an API token; its secret is shown once.
    client
        .goto(&app.url("/projects/shop/settings"))
        .await
        .unwrap();
    css(client, "#token-name")
        .await
        .send_keys("ci")
        .await
        .unwrap();
    css(client, "form[aria-label='Create a token'] button")
        .await
        .click()
        .await
        .unwrap();
    let secret = css(client, "#token-secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("vdt_"), "{secret}");
    browser.screenshot("settings").await;

    // A form posted to the dashboard by a page of another origin is refused.
    let attacker = attacker_page(&app.url("/projects/shop/settings/tokens")).await;
    client.goto(&attacker).await.unwrap();
    let refused = browser.text("h1").await;
    assert_eq!(refused, "Request refused");
    browser.screenshot("cross-site-refused").await;
    let tokens: Value = app
        .get_as(&admin, "/api/v1/projects/shop/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tokens["items"].as_array().unwrap().len(),
        1,
        "only the token made here"
    );

    // Report with that token; the open run page shows results as they arrive.
    let run_id = start_run(
        &app,
        &secret,
        json!({ "name": "checkout suite", "attributes": { "branch": "main" } }),
    )
    .await;
    client
        .goto(&app.url(&format!("/runs/{run_id}")))
        .await
        .unwrap();
    wait_for_text(client, "[data-live-state]", "Live").await;
    let accepted_at = post_results(&app, &secret, &run_id).await;
    let row = "[data-live-results] tr[data-result='pay-declined']";
    loop {
        if client.find(Locator::Css(row)).await.is_ok() {
            break;
        }
        assert!(
            accepted_at.elapsed() < VISIBLE_WITHIN,
            "the result was not on the page within {VISIBLE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let visible_after = accepted_at.elapsed();
    println!("202 -> visible on the page: {visible_after:?}");
    wait_for_text(client, "[data-count=total]", "3").await;
    assert_eq!(browser.text("header.run [data-count=failed]").await, "1");

    // A dropped connection says so, then resumes where it left off.
    app.stop(Component::Gateway).await;
    wait_for_text(client, "[data-live-state]", "Reconnecting").await;
    browser.screenshot("run-reconnecting").await;
    app.start(Component::Gateway).await;
    wait_for_text(client, "[data-live-state]", "Live").await;
    let late = json!({ "id": "late", "name": "arrives after the drop", "status": "passed" });
    report(&app, &secret, &run_id, vec![late]).await;
    css(client, "[data-live-results] tr[data-result='late']").await;
    wait_for_text(client, "[data-count=total]", "4").await;
    let log = b"POST /pay 402 Payment Required\ncard declined by issuer\n".to_vec();
    store_artifact(
        &app,
        &secret,
        &run_id,
        "screenshots/declined.png",
        "image/png",
        png(160, 90),
    )
    .await;
    store_artifact(&app, &secret, &run_id, "logs/server.log", "text/plain", log).await;

    // A failure opens (from the keyboard) to its trace; the PNG is previewed.
    client.refresh().await.unwrap();
    wait_for_text(client, "[data-live-state]", "Live").await;
    let summary = css(client, "details.failure summary").await;
    script(
        client,
        "document.querySelector('details.failure summary').focus()",
    )
    .await;
    summary.send_keys("\u{E007}").await.unwrap();
    let trace = browser.text("details.failure[open] pre.trace").await;
    assert!(
        trace.contains("at PaymentForm.submit (payment.ts:42)"),
        "{trace}"
    );
    let loaded = script(
        client,
        "const img = document.querySelector('img.preview'); return img && img.complete ? img.naturalWidth : 0;",
    )
    .await;
    let loaded = wait_for_image(client, loaded).await;
    assert_eq!(loaded, 160, "the PNG preview is displayed at its width");
    let log = browser.text("pre.text-preview").await;
    assert!(log.contains("card declined by issuer"), "{log}");
    browser.screenshot("run").await;

    // Readable at phone width: nothing wider than the screen.
    client.set_window_size(390, 844).await.unwrap();
    let widths = script(
        client,
        "return [window.innerWidth, document.documentElement.scrollWidth];",
    )
    .await;
    let (screen, page) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    assert!(
        screen <= 390,
        "the window is {screen} px wide, not a phone's"
    );
    assert!(
        page <= screen,
        "the page is {} px wider than a phone",
        page - screen
    );
    browser.screenshot("run-phone").await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Follow the failed test's history.
    css(client, "details.failure[open] p a")
        .await
        .click()
        .await
        .unwrap();
    let heading = browser.text("h1").await;
    assert_eq!(heading, "Test history");
    let cells = client
        .find_all(Locator::Css("svg.strip rect"))
        .await
        .unwrap();
    assert_eq!(cells.len(), 1, "one run so far");
    assert!(browser.text("main").await.contains("checkout suite"));
    let message = browser.text(".recent-failures pre.message").await;
    assert_eq!(message, "expected banner 'Card declined' to be visible");
    browser.screenshot("test-history").await;
    // The project's runs page shows a new run as it starts.
    client.goto(&app.url("/projects/shop")).await.unwrap();
    wait_for_text(client, "[data-live-state]", "Live").await;
    let started = start_run(&app, &secret, json!({ "name": "smoke" })).await;
    let row = format!("tr[data-run='{started}']");
    assert!(css(client, &row)
        .await
        .text()
        .await
        .unwrap()
        .contains("smoke"));
    browser.screenshot("project").await;
    for (page, name) in [
        ("/projects/shop/flaky", "flaky"),
        ("/admin/users", "admin-users"),
    ] {
        client.goto(&app.url(page)).await.unwrap();
        css(client, "h1").await;
        browser.screenshot(name).await;
    }

    // Sign out; Back shows nothing private.
    client
        .goto(&app.url(&format!("/runs/{run_id}")))
        .await
        .unwrap();
    css(client, "form.signout button")
        .await
        .click()
        .await
        .unwrap();
    css(client, "#email").await;
    assert_eq!(path(client).await, "/login");
    client.back().await.unwrap();
    css(client, "h1").await;
    let source = client.source().await.unwrap();
    assert!(
        !source.contains("checkout suite") && !source.contains("PaymentForm"),
        "private data after Back"
    );
    assert_eq!(path(client).await, "/login");
    browser.screenshot("after-sign-out-back").await;
    browser.close().await;
}

struct WatchedRun {
    app: TestApp,
    admin: String,
    run_id: String,
    browser: Browser,
}

/// A new run of a new project, open and live in a browser signed in as the administrator.
async fn watch_a_new_run(kind: BrowserKind) -> WatchedRun {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "shop").await;
    let run_id = start_run(&app, &admin, json!({ "name": "watched" })).await;
    let browser = Browser::start(kind).await;
    browser.sign_in(&app).await;
    browser
        .client
        .goto(&app.url(&format!("/runs/{run_id}")))
        .await
        .unwrap();
    wait_for_text(&browser.client, "[data-live-state]", "Live").await;
    WatchedRun {
        app,
        admin,
        run_id,
        browser,
    }
}

/// Results posted in many quick batches: the open run page ends with the run's counts and
/// its latest-results table holds just the newest results, as many as the server renders
/// there, each once; a result resent with another status moves to the top with it.
async fn a_busy_run_page_keeps_its_newest_results_each_once(kind: BrowserKind) {
    const BATCHES: usize = 20;
    const PER_BATCH: usize = 50;
    const KEPT: usize = 20;
    let WatchedRun {
        app,
        admin,
        run_id,
        browser,
    } = watch_a_new_run(kind).await;
    let client = &browser.client;

    for batch in 0..BATCHES {
        let results = (0..PER_BATCH)
            .map(|i| json!({ "id": format!("b{batch}-{i}"), "name": format!("test {batch}.{i}"), "status": "passed" }))
            .collect();
        report(&app, &admin, &run_id, results).await;
    }
    let (last, again) = (BATCHES - 1, PER_BATCH - 5);
    let resent = json!({ "id": format!("b{last}-{again}"), "name": format!("test {last}.{again}"), "status": "failed" });
    report(&app, &admin, &run_id, vec![resent]).await;
    let again = format!("b{last}-{again}");

    wait_for_text(client, "[data-count=failed]", "1").await;
    wait_for_text(
        client,
        "[data-count=total]",
        &(BATCHES * PER_BATCH).to_string(),
    )
    .await;
    let top = format!("[data-live-results] tr:first-child[data-result='{again}']");
    css(client, &top).await;
    let shown = script(
        client,
        "return [...document.querySelectorAll('[data-live-results] tr')].map((row) => row.dataset.result);",
    )
    .await;
    let shown: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let newest = (0..PER_BATCH)
        .rev()
        .map(|i| format!("b{last}-{i}"))
        .filter(|id| *id != again);
    let expected: Vec<String> = std::iter::once(again.clone())
        .chain(newest)
        .take(KEPT)
        .collect();
    assert_eq!(
        shown, expected,
        "the newest results, newest first, each once"
    );
    let top = browser
        .text("[data-live-results] tr:first-child [data-status]")
        .await;
    assert_eq!(top, "failed");
    browser.screenshot("busy-run").await;
    browser.close().await;
}

/// A page the browser draws no frames for (a tab in the background) is still brought up
/// to date: its timer applies what arrived. (Headless Firefox keeps drawing frames for a
/// background tab; headless Chromium does not.)
async fn a_run_page_in_a_background_tab_still_catches_up(kind: BrowserKind) {
    let WatchedRun {
        app,
        admin,
        run_id,
        browser,
    } = watch_a_new_run(kind).await;
    let client = &browser.client;
    script(
        client,
        "window.__hiddenUpdates = 0; new MutationObserver(() => { if (document.hidden) window.__hiddenUpdates += 1; })\
         .observe(document.querySelector('[data-live-results]'), { childList: true });",
    )
    .await;
    let page = client.window().await.unwrap();
    let other = client.new_window(true).await.unwrap();
    client.switch_to_window(other.handle).await.unwrap();
    client.goto(&app.url("/")).await.unwrap();
    let unseen = json!({ "id": "unseen", "name": "arrives out of sight", "status": "passed" });
    report(&app, &admin, &run_id, vec![unseen]).await;
    // Background pages' timers run about once a second.
    tokio::time::sleep(Duration::from_secs(3)).await;

    client.switch_to_window(page).await.unwrap();
    let hidden_updates = script(client, "return window.__hiddenUpdates;").await;
    assert_eq!(
        hidden_updates, 1,
        "the row was added while the page was hidden"
    );
    css(client, "[data-live-results] tr[data-result='unseen']").await;
    browser.close().await;
}

/// Posts a batch of results to the run; they are accepted.
async fn report(app: &TestApp, token: &str, run_id: &str, results: Vec<Value>) {
    let response = app
        .post(
            token,
            &format!("/api/v1/runs/{run_id}/results"),
            json!({ "results": results }),
        )
        .await;
    assert_eq!(response.status(), 202);
}

/// Starts a run of project `shop`; returns its id.
async fn start_run(app: &TestApp, token: &str, run: Value) -> String {
    let response = app.post(token, "/api/v1/projects/shop/runs", run).await;
    assert_eq!(response.status(), 201);
    let run: Value = response.json().await.unwrap();
    run["id"].as_str().unwrap().to_owned()
}

/// Waits until the element's text contains `expected`.
async fn wait_for_text(client: &Client, selector: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = css(client, selector).await.text().await.unwrap_or_default();
        if text.contains(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{selector} says {text:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_image(client: &Client, first: Value) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut width = first.as_i64().unwrap_or(0);
    while width == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        width = script(
            client,
            "const img = document.querySelector('img.preview'); return img && img.complete ? img.naturalWidth : 0;",
        )
        .await
        .as_i64()
        .unwrap_or(0);
    }
    width
}

/// Posts a batch with a failure; returns when the API answered 202.
async fn post_results(app: &TestApp, token: &str, run_id: &str) -> Instant {
    let batch = json!({ "results": [
        { "id": "cart-add", "name": "adds an item to the cart", "suite": "cart", "status": "passed", "duration_ms": 120 },
        { "id": "cart-remove", "name": "removes an item", "suite": "cart", "status": "passed", "duration_ms": 95 },
        { "id": "pay-declined", "name": "shows a declined card", "suite": "payment", "status": "failed", "duration_ms": 2300,
          "message": "expected banner 'Card declined' to be visible",
          "trace": "Error: expected banner 'Card declined' to be visible\n    at PaymentForm.submit (payment.ts:42)\n    at checkout.spec.ts:17" },
    ]});
    let response = app
        .post(token, &format!("/api/v1/runs/{run_id}/results"), batch)
        .await;
    assert_eq!(response.status(), 202);
    Instant::now()
}

/// Stores an artifact of the failed result.
async fn store_artifact(
    app: &TestApp,
    token: &str,
    run_id: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) {
    let declared: Value = app
        .post(
            token,
            &format!("/api/v1/runs/{run_id}/artifacts"),
            json!({
                "name": name,
                "content_type": content_type,
                "size": bytes.len(),
                "sha256": format!("{:x}", Sha256::digest(&bytes)),
                "result_id": "pay-declined",
            }),
        )
        .await
        .json()
        .await
        .unwrap();
    let upload = &declared["upload"];
    let mut request = app.http.request(
        upload["method"].as_str().unwrap().parse().unwrap(),
        upload["url"].as_str().unwrap(),
    );
    for (name, value) in upload["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    assert_eq!(request.body(bytes).send().await.unwrap().status(), 200);
    let id = declared["id"].as_str().unwrap();
    let completed = app
        .post(
            token,
            &format!("/api/v1/artifacts/{id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(completed.status(), 200);
}

/// A `width` x `height` RGB PNG with a colour gradient.
fn png(width: u32, height: u32) -> Vec<u8> {
    use std::io::Write;
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend([(x * 255 / width) as u8, (y * 255 / height) as u8, 160]);
        }
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&raw).unwrap();
    let data = encoder.finish().unwrap();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(b"IHDR", header), (b"IDAT", data), (b"IEND", Vec::new())] {
        png.extend((body.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend(&body);
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Serves, from another origin of the same host, a page whose form posts itself to
/// `target` with a made-up token, as a malicious site would; returns its URL.
async fn attacker_page(target: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let page = format!(
        "<!doctype html><form method=post action=\"{target}\"><input name=csrf value=guess>\
         <input name=name value=stolen><input name=role value=owner></form>\
         <script>document.forms[0].submit()</script>"
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}
