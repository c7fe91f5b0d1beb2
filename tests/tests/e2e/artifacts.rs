//! Artifacts end to end, over real sockets: every scenario runs twice, against the
//! local-disk store (served by the artifacts service, proxied by the gateway) and
//! against a real signature-verifying S3 server (s3s-fs). Uploads and downloads use a
//! plain HTTP client with nothing but the URL and headers the API handed out.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use verdict_contracts::events::{self, EventKind};
use verdict_contracts::ServiceName;
use verdict_testkit::{BlobStoreKind, Component, TestApp};

const ARTIFACTS: Component = Component::Service(ServiceName::Artifacts);
const RUNS: Component = Component::Service(ServiceName::Runs);

/// S3 uploads above 6 MiB in parts of 5 MiB (the smallest S3 allows).
const SMALL_PARTS: [(&str, &str); 2] = [
    ("VERDICT_S3_MULTIPART_THRESHOLD", "6291456"),
    ("VERDICT_S3_PART_SIZE", "5242880"),
];

/// Runs every listed scenario once per blob store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn disk() {
                super::$name(BlobStoreKind::Disk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(BlobStoreKind::S3).await
            }
        }
    )*};
}

on_both_stores!(
    round_trip,
    large_artifacts_round_trip_in_parts,
    tampered_or_other_object_urls_are_refused,
    expired_urls_are_refused,
    wrong_size_or_checksum_is_refused_at_complete,
    other_projects_see_nothing,
    deleting_a_run_removes_its_blobs,
    the_sweeper_removes_abandoned_uploads_and_stray_blobs,
    run_deletions_wait_for_a_stopped_artifacts_service,
    a_deletion_cut_short_by_a_crash_is_finished_at_restart,
    names_are_relative_paths_and_downloads_offer_the_last_segment,
    names_that_are_not_normalised_relative_paths_are_refused,
    a_runs_artifacts_are_listed_by_name_prefix,
    an_invalid_prefix_is_refused_naming_it,
    artifacts_of_a_run_that_runs_no_longer_has_are_not_served,
    artifact_reads_answer_503_while_runs_is_unavailable,
    a_batch_is_declared_and_completed_with_one_request_each,
);

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u64 * 2_654_435_761 % 251) as u8 ^ seed)
        .collect()
}

/// A client that does not follow redirects, to look at `/download` itself.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct World {
    app: TestApp,
    owner: String,
    project: String,
}

impl World {
    async fn new(store: BlobStoreKind, overrides: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with_store(store, overrides).await;
        let admin = app.admin_token().await;
        let (_, owner) = app.user(&admin, "owner@example.com").await;
        let project = app.project(&owner, "web").await;
        Self {
            app,
            owner,
            project,
        }
    }

    /// A new run in `project`, created by `token`'s user.
    async fn run_in(&self, token: &str, project: &str) -> String {
        let created = self
            .app
            .post(
                token,
                &format!("/api/v1/projects/{project}/runs"),
                json!({ "name": "nightly" }),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let run: Value = created.json().await.unwrap();
        run["id"].as_str().unwrap().to_owned()
    }

    async fn run(&self) -> String {
        self.run_in(&self.owner, &self.project).await
    }

    async fn declare(&self, token: &str, run: &str, name: &str, bytes: &[u8]) -> reqwest::Response {
        self.app
            .post(
                token,
                &format!("/api/v1/runs/{run}/artifacts"),
                json!({
                    "name": name,
                    "content_type": "image/png",
                    "size": bytes.len(),
                    "sha256": sha256_hex(bytes),
                }),
            )
            .await
    }

    /// Declares as the owner; returns the declaration.
    async fn declared(&self, run: &str, name: &str, bytes: &[u8]) -> Value {
        let response = self.declare(&self.owner, run, name, bytes).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 201, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Declares, uploads and completes; returns the declaration.
    async fn store(&self, run: &str, name: &str, bytes: &[u8]) -> Value {
        let declared = self.declared(run, name, bytes).await;
        assert_eq!(upload(&declared["upload"], bytes).await, 200);
        let completed = self
            .app
            .post(
                &self.owner,
                &format!(
                    "/api/v1/artifacts/{}/complete",
                    declared["id"].as_str().unwrap()
                ),
                json!({}),
            )
            .await;
        assert_eq!(completed.status(), 200, "{:?}", completed.text().await);
        declared
    }

    /// `POST /runs/{run}/artifacts/batch` as the owner, declaring each `(name, bytes)`.
    async fn declare_batch(&self, run: &str, files: &[(&str, &[u8])]) -> reqwest::Response {
        let artifacts: Vec<Value> = files
            .iter()
            .map(|(name, bytes)| {
                json!({
                    "name": name,
                    "content_type": "image/png",
                    "size": bytes.len(),
                    "sha256": sha256_hex(bytes),
                })
            })
            .collect();
        self.app
            .post(
                &self.owner,
                &format!("/api/v1/runs/{run}/artifacts/batch"),
                json!({ "artifacts": artifacts }),
            )
            .await
    }

    /// `POST /runs/{run}/artifacts/complete` as the owner; returns the entries.
    async fn complete_batch(&self, run: &str, ids: &[&str]) -> Vec<Value> {
        let response = self
            .app
            .post(
                &self.owner,
                &format!("/api/v1/runs/{run}/artifacts/complete"),
                json!({ "ids": ids }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    async fn complete(&self, id: &str) -> reqwest::Response {
        self.app
            .post(
                &self.owner,
                &format!("/api/v1/artifacts/{id}/complete"),
                json!({}),
            )
            .await
    }

    /// Where the download of artifact `id` redirects `token`'s user to.
    async fn download_location(&self, token: &str, id: &str) -> String {
        let redirect = no_redirects()
            .get(self.app.url(&format!("/api/v1/artifacts/{id}/download")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(redirect.status(), 302);
        redirect.headers()["location"].to_str().unwrap().to_owned()
    }

    /// `GET /artifacts/{id}` as the owner, answered 200.
    async fn artifact(&self, id: &str) -> Value {
        let response = self
            .app
            .get_as(&self.owner, &format!("/api/v1/artifacts/{id}"))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `GET /runs/{run}/artifacts` with the query parameters `query`, URL-encoded.
    async fn list(&self, run: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let mut url =
            reqwest::Url::parse(&self.app.url(&format!("/api/v1/runs/{run}/artifacts"))).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        self.app
            .http
            .get(url)
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap()
    }

    /// Deletes the run through the API; the runs service announces it with
    /// `run.deleted`, which the artifacts service consumes.
    async fn delete_run(&self, run: &str) {
        let deleted = self
            .app
            .send(
                Method::DELETE,
                &self.owner,
                &format!("/api/v1/runs/{run}"),
                None,
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    }
}

/// Sends `bytes` the way the upload instructions say, with a plain client; returns the
/// first failing status, or the last one.
async fn upload(target: &Value, bytes: &[u8]) -> u16 {
    let http = reqwest::Client::new();
    let method: Method = target["method"].as_str().unwrap().parse().unwrap();
    let send = |url: &str, body: Vec<u8>| {
        let mut request = http.request(method.clone(), url);
        for (name, value) in target["headers"].as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        request.body(body).send()
    };
    match target.get("parts").and_then(Value::as_array) {
        Some(parts) => {
            let mut offset = 0;
            let mut status = 0;
            for part in parts {
                let size = part["size"].as_u64().unwrap() as usize;
                let end = (offset + size).min(bytes.len());
                let response = send(part["url"].as_str().unwrap(), bytes[offset..end].to_vec())
                    .await
                    .unwrap();
                status = response.status().as_u16();
                if status != 200 {
                    return status;
                }
                offset = end;
            }
            status
        }
        None => send(target["url"].as_str().unwrap(), bytes.to_vec())
            .await
            .unwrap()
            .status()
            .as_u16(),
    }
}

async fn round_trip(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let bytes = content(300_000, 7);
    let declared = world
        .declare(&world.owner, &run, "login failed.png", &bytes)
        .await;
    assert_eq!(declared.status(), 201);
    let declared: Value = declared.json().await.unwrap();
    let id = declared["id"].as_str().unwrap().to_owned();
    let url = declared["upload"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://"), "{url}");
    assert!(
        !url.contains("login"),
        "the name never reaches the URL: {url}"
    );
    assert!(declared["expires_at"].as_str().unwrap().ends_with('Z'));

    let before = world
        .app
        .get_as(&world.owner, &format!("/api/v1/artifacts/{id}"))
        .await;
    assert_eq!(before.json::<Value>().await.unwrap()["state"], "pending");
    assert_eq!(upload(&declared["upload"], &bytes).await, 200);
    let nats = world.app.nats.client().await;
    let mut stored_events = nats
        .subscribe(events::kind_filter(EventKind::ArtifactStored))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let completed = world.complete(&id).await;
    assert_eq!(completed.status(), 200);
    let event = tokio::time::timeout(Duration::from_secs(5), stored_events.next())
        .await
        .expect("artifact.stored within 5 s")
        .unwrap();
    let event: Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(event["kind"], "artifact.stored");
    assert_eq!(event["artifact_id"], id.as_str());
    assert_eq!(event["run_id"], run.as_str());
    assert_eq!(event["project_id"], world.project.as_str());
    assert_eq!(event["size"], bytes.len());
    let artifact: Value = completed.json().await.unwrap();
    assert_eq!(artifact["state"], "stored");
    assert_eq!(artifact["size"], bytes.len());
    assert_eq!(artifact["sha256"], sha256_hex(&bytes));
    assert_eq!(artifact["name"], "login failed.png");
    assert_eq!(artifact["run_id"], run.as_str());
    assert!(artifact["result_id"].is_null());
    // Completing twice is harmless.
    assert_eq!(world.complete(&id).await.status(), 200);

    let list: Value = world
        .app
        .get_as(&world.owner, &format!("/api/v1/runs/{run}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(list["next_cursor"].is_null());

    let location = world.download_location(&world.owner, &id).await;
    assert!(location.starts_with("http://"), "{location}");
    let downloaded = reqwest::get(&location).await.unwrap();
    assert_eq!(downloaded.status(), 200);
    match store {
        BlobStoreKind::Disk => {
            let headers = downloaded.headers();
            let disposition = headers["content-disposition"].to_str().unwrap();
            assert!(disposition.starts_with("attachment;"), "{disposition}");
            assert!(disposition.contains("login failed.png"), "{disposition}");
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["content-type"], "image/png");
        }
        // The signed URL asks the store to serve it as an attachment (s3s-fs ignores
        // the override; S3 and MinIO honour it).
        BlobStoreKind::S3 => assert!(
            location.contains("response-content-disposition=attachment"),
            "{location}"
        ),
    }
    assert!(
        downloaded.bytes().await.unwrap() == bytes,
        "the download differs"
    );
    // Following the redirect with an ordinary client gets the same bytes.
    let followed = reqwest::Client::new()
        .get(world.app.url(&format!("/api/v1/artifacts/{id}/download")))
        .bearer_auth(&world.owner)
        .send()
        .await
        .unwrap();
    assert!(followed.bytes().await.unwrap() == bytes);
    assert_eq!(world.app.blob_keys(), vec![id]);
}

async fn large_artifacts_round_trip_in_parts(store: BlobStoreKind) {
    let world = World::new(store, &SMALL_PARTS).await;
    let run = world.run().await;
    let bytes = content(11 << 20, 3);
    let declared = world
        .declare(&world.owner, &run, "video.webm", &bytes)
        .await;
    assert_eq!(declared.status(), 201);
    let declared: Value = declared.json().await.unwrap();
    if store == BlobStoreKind::S3 {
        let parts = declared["upload"]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2]["size"], (11 << 20) - 2 * 5_242_880);
    }
    assert_eq!(upload(&declared["upload"], &bytes).await, 200);
    let id = declared["id"].as_str().unwrap();
    let completed = world.complete(id).await;
    assert_eq!(completed.status(), 200, "{:?}", completed.text().await);
    let downloaded = reqwest::Client::new()
        .get(world.app.url(&format!("/api/v1/artifacts/{id}/download")))
        .bearer_auth(&world.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(downloaded.bytes().await.unwrap() == bytes);
}

/// Changes the signature of a signed URL (either store's spelling) by one character.
fn tamper(url: &str) -> String {
    for name in ["sig=", "X-Amz-Signature="] {
        if let Some(start) = url.find(name) {
            let at = start + name.len();
            let original = url.as_bytes()[at];
            let replacement = if original == b'a' { 'b' } else { 'a' };
            let mut tampered = url.to_owned();
            tampered.replace_range(at..at + 1, &replacement.to_string());
            return tampered;
        }
    }
    panic!("no signature in {url}")
}

async fn tampered_or_other_object_urls_are_refused(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let bytes = content(1000, 1);
    let first = world.declared(&run, "a.png", &bytes).await;
    let second = world.store(&run, "b.png", &content(10, 2)).await;
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    let mut tampered = first["upload"].clone();
    tampered["url"] = json!(tamper(first["upload"]["url"].as_str().unwrap()));
    assert_eq!(upload(&tampered, &bytes).await, 403);

    // The first artifact's signature on the second's object.
    let mut other = first["upload"].clone();
    other["url"] = json!(first["upload"]["url"]
        .as_str()
        .unwrap()
        .replace(first_id, second_id));
    assert_eq!(upload(&other, &bytes).await, 403);

    // An upload URL is no download URL.
    let as_get = reqwest::get(first["upload"]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(as_get.status(), 403);

    // A download URL does not open another object, nor survive tampering.
    let location = world.download_location(&world.owner, second_id).await;
    assert_eq!(reqwest::get(tamper(&location)).await.unwrap().status(), 403);
    assert_eq!(
        reqwest::get(location.replace(second_id, first_id))
            .await
            .unwrap()
            .status(),
        403
    );
    // Nothing reached the first artifact.
    assert_eq!(world.complete(first_id).await.status(), 409);
    assert_eq!(upload(&first["upload"], &bytes).await, 200);
    assert_eq!(world.complete(first_id).await.status(), 200);
}

async fn expired_urls_are_refused(store: BlobStoreKind) {
    let world = World::new(store, &[("VERDICT_ARTIFACTS_URL_TTL", "1s")]).await;
    let run = world.run().await;
    let bytes = content(100, 4);
    let declared = world.declared(&run, "late.png", &bytes).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(upload(&declared["upload"], &bytes).await, 403);
    assert_eq!(
        world
            .complete(declared["id"].as_str().unwrap())
            .await
            .status(),
        409
    );
}

async fn wrong_size_or_checksum_is_refused_at_complete(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let bytes = content(4096, 5);

    // Fewer bytes than declared.
    let short = world.declared(&run, "short.png", &bytes).await;
    let short_id = short["id"].as_str().unwrap();
    let sent = upload(&short["upload"], &bytes[..4000]).await;
    // The S3 server already refuses bytes whose checksum is not the signed one.
    assert!(
        sent == 200 || (store == BlobStoreKind::S3 && sent == 400),
        "{sent}"
    );
    let refused = world.complete(short_id).await;
    assert_refused(sent, refused.status().as_u16());
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );

    // The right size, other bytes.
    let forged = world.declared(&run, "forged.png", &bytes).await;
    let forged_id = forged["id"].as_str().unwrap();
    let sent = upload(&forged["upload"], &content(4096, 6)).await;
    assert!(
        sent == 200 || (store == BlobStoreKind::S3 && sent == 400),
        "{sent}"
    );
    assert_refused(sent, world.complete(forged_id).await.status().as_u16());

    // More bytes than declared.
    let long = world.declared(&run, "long.png", &bytes).await;
    let mut more = bytes.clone();
    more.extend_from_slice(b"extra");
    let sent = upload(&long["upload"], &more).await;
    assert!(sent == 413 || sent == 400 || sent == 200, "{sent}");
    let long_id = long["id"].as_str().unwrap();
    let status = world.complete(long_id).await.status();
    assert!(status == 409 || status == 422, "{status}");

    for id in [short_id, forged_id, long_id] {
        let artifact: Value = world
            .app
            .get_as(&world.owner, &format!("/api/v1/artifacts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(artifact["state"], "pending", "{id}");
        let download = world
            .app
            .get_as(&world.owner, &format!("/api/v1/artifacts/{id}/download"))
            .await;
        assert_eq!(download.status(), 409);
    }
    // No mismatched bytes stay in the store.
    assert!(
        world.app.blob_keys().is_empty(),
        "{:?}",
        world.app.blob_keys()
    );
}

/// What `complete` answers after an upload of the wrong bytes: 422 when the store took
/// them; when the store refused them, 409 (nothing there) or 422 (s3s-fs keeps the
/// refused bytes, which complete then deletes).
fn assert_refused(upload_status: u16, complete_status: u16) {
    if upload_status == 200 {
        assert_eq!(complete_status, 422);
    } else {
        assert!(
            complete_status == 409 || complete_status == 422,
            "{complete_status}"
        );
    }
}

async fn other_projects_see_nothing(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let stored = world.store(&run, "secret.png", &content(64, 9)).await;
    let id = stored["id"].as_str().unwrap();
    let admin = world.app.admin_token().await;

    // A viewer of another project.
    let (_, other_owner) = world.app.user(&admin, "other@example.com").await;
    let other_project = world.app.project(&other_owner, "other").await;
    let (viewer_id, outsider) = world.app.user(&admin, "viewer@example.com").await;
    let put = world
        .app
        .send(
            Method::PUT,
            &other_owner,
            &format!("/api/v1/projects/{other_project}/members/{viewer_id}"),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(put.status(), 200);
    for path in [
        format!("/api/v1/artifacts/{id}"),
        format!("/api/v1/artifacts/{id}/download"),
        format!("/api/v1/runs/{run}/artifacts"),
    ] {
        let response = world.app.get_as(&outsider, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    assert_eq!(
        world.declare(&outsider, &run, "x.png", b"x").await.status(),
        404
    );
    let complete = world
        .app
        .post(
            &outsider,
            &format!("/api/v1/artifacts/{id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(complete.status(), 404);
    // Another project's own run does not open this one's artifacts either.
    let their_run = world.run_in(&other_owner, &other_project).await;
    let theirs = world
        .app
        .get_as(&other_owner, &format!("/api/v1/runs/{their_run}/artifacts"))
        .await;
    assert_eq!(theirs.json::<Value>().await.unwrap()["items"], json!([]));

    // A viewer of this project reads and downloads but does not write.
    let (member_id, member) = world.app.user(&admin, "member@example.com").await;
    world
        .app
        .send(
            Method::PUT,
            &world.owner,
            &format!("/api/v1/projects/{}/members/{member_id}", world.project),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(
        world
            .app
            .get_as(&member, &format!("/api/v1/artifacts/{id}"))
            .await
            .status(),
        200
    );
    world.download_location(&member, id).await;
    assert_eq!(
        world.declare(&member, &run, "x.png", b"x").await.status(),
        403
    );

    // Without a token: 401.
    assert_eq!(
        world
            .app
            .get(&format!("/api/v1/artifacts/{id}"))
            .await
            .status(),
        401
    );
}

async fn deleting_a_run_removes_its_blobs(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let doomed_run = world.run().await;
    let kept_run = world.run().await;
    let a = world.store(&doomed_run, "a.png", &content(100, 1)).await;
    let b = world.store(&doomed_run, "b.png", &content(200, 2)).await;
    let kept = world.store(&kept_run, "c.png", &content(300, 3)).await;
    let pending = world.declared(&doomed_run, "d.png", &content(10, 4)).await;
    assert_eq!(upload(&pending["upload"], &content(10, 4)).await, 200);
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    assert_eq!(world.app.blob_keys().len(), 4);

    world.delete_run(&doomed_run).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while world.app.blob_keys() != vec![kept_id.clone()] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "blobs left: {:?}",
            world.app.blob_keys()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for gone in [&a, &b, &pending] {
        let id = gone["id"].as_str().unwrap();
        let response = world
            .app
            .get_as(&world.owner, &format!("/api/v1/artifacts/{id}"))
            .await;
        assert_eq!(response.status(), 404);
    }
    let kept_now = world
        .app
        .get_as(&world.owner, &format!("/api/v1/artifacts/{kept_id}"))
        .await;
    assert_eq!(kept_now.status(), 200);
}

async fn the_sweeper_removes_abandoned_uploads_and_stray_blobs(store: BlobStoreKind) {
    let world = World::new(
        store,
        &[
            ("VERDICT_ARTIFACTS_UPLOAD_GRACE", "1s"),
            ("VERDICT_ARTIFACTS_SWEEP_INTERVAL", "200ms"),
        ],
    )
    .await;
    let run = world.run().await;
    let bytes = content(500, 8);
    let abandoned = world.declared(&run, "abandoned.png", &bytes).await;
    assert_eq!(upload(&abandoned["upload"], &bytes).await, 200);
    // A blob no row knows (left by a crash between the two deletions, or a restore).
    write_object(
        &world
            .app
            .blob_dir()
            .join("0196a000-0000-7000-8000-00000000dead"),
        b"stray",
    );
    let id = abandoned["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        let gone = world
            .app
            .get_as(&world.owner, &format!("/api/v1/artifacts/{id}"))
            .await
            .status()
            == 404;
        if gone && world.app.blob_keys().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left: {:?}",
            world.app.blob_keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the artifacts service again and waits until it answers (a command sent
/// before would find no responder).
async fn start_artifacts(app: &mut TestApp) {
    app.start(ARTIFACTS).await;
    app.wait_for_status("/readyz", 200, Duration::from_secs(10))
        .await;
}

/// Polls until the store holds exactly `expected` (sorted keys), for up to 20 s.
async fn wait_for_blobs(app: &TestApp, expected: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.blob_keys() != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "blobs: {:?}, expected {expected:?}",
            app.blob_keys()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_deletions_wait_for_a_stopped_artifacts_service(store: BlobStoreKind) {
    let mut world = World::new(store, &[]).await;
    let run = world.run().await;
    let stored = world.store(&run, "a.png", &content(100, 1)).await;
    world.app.stop(ARTIFACTS).await;
    world.delete_run(&run).await;
    // The event waits in JetStream for the durable consumer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        world.app.blob_keys(),
        vec![stored["id"].as_str().unwrap().to_owned()]
    );
    start_artifacts(&mut world.app).await;
    wait_for_blobs(&world.app, &[]).await;
}

async fn a_deletion_cut_short_by_a_crash_is_finished_at_restart(store: BlobStoreKind) {
    let mut world = World::new(
        store,
        &[
            ("VERDICT_ARTIFACTS_SWEEP_INTERVAL", "200ms"),
            ("VERDICT_ARTIFACTS_UPLOAD_GRACE", "1h"),
        ],
    )
    .await;
    let run = world.run().await;
    let doomed = world.store(&run, "a.png", &content(100, 1)).await;
    let kept = world.store(&run, "b.png", &content(100, 2)).await;
    world.app.stop(ARTIFACTS).await;
    // What a crash between the two steps of a deletion leaves: the row marked deleted
    // (committed), its blob still in the store.
    let database = world.app.data_dir().join("artifacts.db");
    let conn = rusqlite::Connection::open(&database).unwrap();
    let marked = conn
        .execute(
            "UPDATE artifacts SET state = 'deleted', deleted_at = 1 WHERE id = ?1",
            [doomed["id"].as_str().unwrap()],
        )
        .unwrap();
    assert_eq!(marked, 1);
    drop(conn);
    assert_eq!(world.app.blob_keys().len(), 2);
    start_artifacts(&mut world.app).await;
    wait_for_blobs(&world.app, &[kept["id"].as_str().unwrap().to_owned()]).await;
    // The row goes right after its blob, in a step of its own.
    let conn = rusqlite::Connection::open(&database).unwrap();
    let started = std::time::Instant::now();
    loop {
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM artifacts", [], |row| row.get(0))
            .unwrap();
        if rows == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{rows} rows remain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Behind docker-compose or Kubernetes the service reaches the store under one name and
/// clients under another; the URLs clients get name theirs, and work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_name_the_public_endpoint_when_one_is_set() {
    let mut world = World::new(BlobStoreKind::S3, &[]).await;
    let internal = world.app.s3.as_ref().unwrap().endpoint();
    let public = internal.replace("127.0.0.1", "localhost");
    world.app.stop(ARTIFACTS).await;
    world.app.set("VERDICT_S3_PUBLIC_ENDPOINT", &public);
    start_artifacts(&mut world.app).await;

    let run = world.run().await;
    let bytes = content(10_000, 3);
    let declared = world.store(&run, "shot.png", &bytes).await;
    let upload_url = declared["upload"]["url"].as_str().unwrap();
    assert!(
        upload_url.starts_with(&format!("{public}/")),
        "{upload_url}"
    );
    let id = declared["id"].as_str().unwrap();
    let location = world.download_location(&world.owner, id).await;
    assert!(location.starts_with(&format!("{public}/")), "{location}");
    let downloaded = reqwest::get(&location).await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(downloaded.bytes().await.unwrap() == bytes);
}

async fn names_are_relative_paths_and_downloads_offer_the_last_segment(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let bytes = content(1000, 3);
    let name = "screenshots/login.cy.ts/lögin \"1\".png";
    let stored = world.store(&run, name, &bytes).await;
    let id = stored["id"].as_str().unwrap();
    assert_eq!(world.artifact(id).await["name"], name);

    // The last segment, as a safe ASCII fallback and in RFC 6266 UTF-8 form.
    let expected =
        "attachment; filename=\"l_gin _1_.png\"; filename*=UTF-8''l%C3%B6gin%20%221%22.png";
    let location = world.download_location(&world.owner, id).await;
    let downloaded = reqwest::get(&location).await.unwrap();
    assert_eq!(downloaded.status(), 200);
    match store {
        BlobStoreKind::Disk => {
            assert_eq!(downloaded.headers()["content-disposition"], expected);
        }
        // s3s-fs ignores the override; the signed URL asks for it.
        BlobStoreKind::S3 => {
            let url = reqwest::Url::parse(&location).unwrap();
            let asked = url
                .query_pairs()
                .find(|(key, _)| key == "response-content-disposition")
                .map(|(_, value)| value.into_owned());
            assert_eq!(asked.as_deref(), Some(expected), "{location}");
        }
    }
    assert!(downloaded.bytes().await.unwrap() == bytes);
}

async fn names_that_are_not_normalised_relative_paths_are_refused(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let deep = vec!["d"; 17].join("/");
    for bad in [
        "../escape.png",
        "screens/../../escape.png",
        "./login.png",
        "/etc/passwd",
        "screens//login.png",
        "screens/",
        "screens\\login.png",
        "screens/login\u{7}.png",
        deep.as_str(),
    ] {
        let refused = world.declare(&world.owner, &run, bad, b"x").await;
        assert_eq!(refused.status(), 400, "{bad:?}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "name", "{bad:?}: {problem}");
    }
    let listed: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

/// Names of the artifacts in a list page.
fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

async fn a_runs_artifacts_are_listed_by_name_prefix(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let other_run = world.run().await;
    for name in [
        "screens/b.png",
        "screens/a.png",
        "screensaver.png",
        "logs/screens/x.txt",
        "screens/sub/c.png",
        "screens/a.png",
    ] {
        assert_eq!(
            world.declare(&world.owner, &run, name, b"x").await.status(),
            201
        );
    }
    assert_eq!(
        world
            .declare(&world.owner, &other_run, "screens/0.png", b"x")
            .await
            .status(),
        201
    );

    let first: Value = world
        .list(&run, &[("prefix", "screens/"), ("limit", "2")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&first), ["screens/a.png", "screens/a.png"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = world
        .list(
            &run,
            &[("prefix", "screens/"), ("limit", "2"), ("cursor", cursor)],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&second), ["screens/b.png", "screens/sub/c.png"]);
    assert!(second["next_cursor"].is_null());

    let partial: Value = world
        .list(&run, &[("prefix", "screens")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(partial["items"].as_array().unwrap().len(), 5);
    let all: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
}

async fn an_invalid_prefix_is_refused_naming_it(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let long = "p".repeat(1025);
    for bad in [
        "",
        "/screens",
        "../",
        "screens//",
        "a\\b",
        "a\nb",
        long.as_str(),
    ] {
        let refused = world.list(&run, &[("prefix", bad)]).await;
        assert_eq!(refused.status(), 400, "{bad:?}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["field"], "prefix",
            "{bad:?}: {problem}"
        );
    }
}

/// What a lost `run.deleted` leaves behind: rows of a run the runs service no longer
/// has. Made here without any stream: the rows are moved, while the artifacts service is
/// stopped, to a run id the runs service never had.
async fn artifacts_of_a_run_that_runs_no_longer_has_are_not_served(store: BlobStoreKind) {
    let mut world = World::new(store, &[]).await;
    let run = world.run().await;
    let stored = world.store(&run, "screens/a.png", &content(100, 1)).await;
    let pending = world.declared(&run, "screens/b.png", &content(10, 2)).await;
    assert_eq!(upload(&pending["upload"], &content(10, 2)).await, 200);
    let kept_run = world.run().await;
    let kept = world.store(&kept_run, "kept.png", &content(10, 3)).await;
    let (stored_id, pending_id, kept_id) = (
        stored["id"].as_str().unwrap(),
        pending["id"].as_str().unwrap(),
        kept["id"].as_str().unwrap(),
    );

    world.app.stop(ARTIFACTS).await;
    let gone_run = "0196a000-0000-7000-8000-0000000000aa";
    let conn = rusqlite::Connection::open(world.app.data_dir().join("artifacts.db")).unwrap();
    let moved = conn
        .execute(
            "UPDATE artifacts SET run_id = ?1 WHERE run_id = ?2",
            [gone_run, run.as_str()],
        )
        .unwrap();
    assert_eq!(moved, 2);
    drop(conn);
    start_artifacts(&mut world.app).await;

    for path in [
        format!("/api/v1/artifacts/{stored_id}"),
        format!("/api/v1/artifacts/{stored_id}/download"),
        format!("/api/v1/artifacts/{pending_id}"),
        format!("/api/v1/runs/{gone_run}/artifacts"),
        format!("/api/v1/runs/{gone_run}/artifacts?prefix=screens/"),
    ] {
        let response = world.app.get_as(&world.owner, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    assert_eq!(world.complete(pending_id).await.status(), 404);
    // Artifacts of runs that exist are served as before.
    assert_eq!(world.artifact(kept_id).await["state"], "stored");
    world.download_location(&world.owner, kept_id).await;
}

async fn artifact_reads_answer_503_while_runs_is_unavailable(store: BlobStoreKind) {
    let mut world = World::new(store, &[("VERDICT_BUS_RETRY_BUDGET", "300ms")]).await;
    let run = world.run().await;
    let stored = world.store(&run, "a.png", &content(100, 1)).await;
    let id = stored["id"].as_str().unwrap();
    world.app.stop(RUNS).await;
    for path in [
        format!("/api/v1/artifacts/{id}"),
        format!("/api/v1/artifacts/{id}/download"),
    ] {
        let response = world.app.get_as(&world.owner, &path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
    }
    world.app.start(RUNS).await;
    assert_eq!(world.artifact(id).await["state"], "stored");
}

/// Each presigned part URL binds its part's size (a signed `Content-Length`), so a
/// client cannot store more than it declared (and was charged to its quota for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_part_urls_refuse_parts_of_another_size() {
    let world = World::new(BlobStoreKind::S3, &SMALL_PARTS).await;
    let run = world.run().await;
    let bytes = content(11 << 20, 5);
    let declared = world.declared(&run, "video.webm", &bytes).await;
    let parts = declared["upload"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for part in parts {
        let url = part["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-SignedHeaders=content-length"), "{url}");
    }
    assert!(!declared["upload"]["headers"]
        .as_object()
        .unwrap()
        .contains_key("content-length"));
    let http = reqwest::Client::new();
    let send = |url: &str, size: usize| {
        let mut request = http.put(url);
        for (name, value) in declared["upload"]["headers"].as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        request.body(content(size, 6)).send()
    };
    for (part, size) in [(0, 6 << 20), (0, 4 << 20), (2, 5 << 20), (2, 0), (2, 1000)] {
        // Refused with 403, or, for a large body, by closing the connection while the
        // client is still sending it.
        match send(parts[part]["url"].as_str().unwrap(), size).await {
            Ok(refused) => assert_eq!(refused.status(), 403, "part {part} with {size} bytes"),
            Err(err) => assert!(size > 1 << 20, "part {part} with {size} bytes: {err}"),
        }
    }
    // No part was stored.
    let id = declared["id"].as_str().unwrap();
    assert_eq!(world.complete(id).await.status(), 409);
    assert_eq!(upload(&declared["upload"], &bytes).await, 200);
    assert_eq!(world.complete(id).await.status(), 200);
}

/// Puts a file where the blob store keeps an object, as other software (or a crash)
/// would leave it.
fn write_object(path: &std::path::Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Buckets are shared: the sweeper lists and removes only below Verdict's key prefix,
/// even objects named like Verdict's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_leaves_objects_outside_its_prefix_alone() {
    let world = World::new(
        BlobStoreKind::S3,
        &[
            ("VERDICT_ARTIFACTS_UPLOAD_GRACE", "1s"),
            ("VERDICT_ARTIFACTS_SWEEP_INTERVAL", "200ms"),
        ],
    )
    .await;
    let run = world.run().await;
    let stored = world.store(&run, "a.png", &content(100, 1)).await;
    let id = stored["id"].as_str().unwrap();
    assert_eq!(world.app.blob_keys(), vec![id.to_owned()]);
    let bucket = world.app.s3.as_ref().unwrap().bucket_dir();
    let foreign = [
        bucket.join("other-app/report.pdf"),
        bucket.join("0196a000-0000-7000-8000-00000000beef"),
        // Below the prefix, but no id Verdict would generate.
        world.app.blob_dir().join("README.txt"),
    ];
    for path in &foreign {
        write_object(path, b"not Verdict's");
    }
    let stray = world
        .app
        .blob_dir()
        .join("0196a000-0000-7000-8000-00000000dead");
    write_object(&stray, b"stray");

    // Once the sweeper has removed the stray below the prefix, it has seen the rest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while stray.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no sweep");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in &foreign {
        assert!(path.exists(), "{} was deleted", path.display());
    }
    assert!(world.app.blob_dir().join(id).exists());
}

/// Objects stored before the key prefix existed keep their keys (in their rows): they
/// are still served and still deleted with their run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_before_the_prefix_are_still_served_and_deleted() {
    let mut world = World::new(BlobStoreKind::S3, &[]).await;
    let run = world.run().await;
    let bytes = content(1000, 4);
    let stored = world.store(&run, "old.png", &bytes).await;
    let id = stored["id"].as_str().unwrap();
    // What an older version left: the object at the bucket's root, its key in the row.
    world.app.stop(ARTIFACTS).await;
    let legacy = world.app.s3.as_ref().unwrap().bucket_dir().join(id);
    std::fs::rename(world.app.blob_dir().join(id), &legacy).unwrap();
    let conn = rusqlite::Connection::open(world.app.data_dir().join("artifacts.db")).unwrap();
    let moved = conn
        .execute("UPDATE artifacts SET object_key = ?1 WHERE id = ?1", [id])
        .unwrap();
    assert_eq!(moved, 1);
    drop(conn);
    start_artifacts(&mut world.app).await;

    let location = world.download_location(&world.owner, id).await;
    let downloaded = reqwest::get(&location).await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(downloaded.bytes().await.unwrap() == bytes);
    world.delete_run(&run).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while legacy.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old object stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_prefix_filter() {
    let app = TestApp::spawn().await;
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let parameters = document["paths"]["/api/v1/runs/{run}/artifacts"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let prefix = parameters
        .iter()
        .find(|parameter| parameter["name"] == "prefix")
        .expect("a prefix parameter");
    assert_eq!(prefix["in"], "query");
    assert_eq!(prefix["required"], false);
}

async fn a_batch_is_declared_and_completed_with_one_request_each(store: BlobStoreKind) {
    let world = World::new(store, &[]).await;
    let run = world.run().await;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("spec-1/test-failed-1.png", content(3000, 1)),
        ("spec-1/trace.zip", content(5000, 2)),
        ("spec-2/test-failed-1.png", content(7000, 3)),
    ];
    let declarations: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (*name, bytes.as_slice()))
        .collect();

    let response = world.declare_batch(&run, &declarations).await;
    assert_eq!(response.status(), 201);
    let declared: Value = response.json().await.unwrap();
    let items = declared["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (item, (_, bytes)) in items.iter().zip(&files) {
        assert_eq!(upload(&item["upload"], bytes).await, 200);
    }
    let ids: Vec<&str> = items
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    let completed = world.complete_batch(&run, &ids).await;

    let answered: Vec<(&str, u64, &str, &str)> = completed
        .iter()
        .map(|entry| {
            (
                entry["id"].as_str().unwrap(),
                entry["status"].as_u64().unwrap(),
                entry["artifact"]["name"].as_str().unwrap(),
                entry["artifact"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, u64, &str, &str)> = ids
        .iter()
        .zip(&files)
        .map(|(id, (name, _))| (*id, 200, *name, "stored"))
        .collect();
    assert_eq!(answered, expected);
    let listed: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(names(&listed).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_refused_declaration_declares_nothing_and_names_it() {
    let world = World::new(
        BlobStoreKind::Disk,
        &[("VERDICT_ARTIFACTS_MAX_SIZE", "10000")],
    )
    .await;
    let run = world.run().await;
    let small = content(100, 1);
    let large = content(10_001, 2);

    let bad_name = world
        .declare_batch(&run, &[("a.png", &small), ("../b.png", &small)])
        .await;
    assert_eq!(bad_name.status(), 400);
    let problem: Value = bad_name.json().await.unwrap();
    assert!(
        problem.to_string().contains("artifacts[1].name"),
        "{problem}"
    );

    let too_large = world
        .declare_batch(
            &run,
            &[("a.png", &small), ("b.png", &small), ("c.png", &large)],
        )
        .await;
    assert_eq!(too_large.status(), 413);
    let problem: Value = too_large.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("artifacts[2]: "),
        "{problem}"
    );

    let names: Vec<String> = (0..101).map(|i| format!("f{i}.png")).collect();
    let over_the_limit: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), small.as_slice()))
        .collect();
    let too_many = world.declare_batch(&run, &over_the_limit).await;
    assert_eq!(too_many.status(), 400);
    let problem: Value = too_many.json().await.unwrap();
    assert!(
        problem.to_string().contains("1 to 100 items, not 101"),
        "{problem}"
    );

    let listed: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_project_quota_declares_nothing() {
    let world = World::new(
        BlobStoreKind::Disk,
        &[("VERDICT_ARTIFACTS_PROJECT_QUOTA", "10000")],
    )
    .await;
    let run = world.run().await;
    let half = content(6000, 1);

    let refused = world
        .declare_batch(&run, &[("a.png", &half), ("b.png", &half)])
        .await;
    assert_eq!(refused.status(), 413);

    let listed: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
    // Nothing of the refused batch was charged to the quota.
    assert_eq!(
        world
            .declare_batch(&run, &[("a.png", &half)])
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_batch_answers_each_artifact_on_its_own() {
    let world = World::new(BlobStoreKind::Disk, &[]).await;
    let run = world.run().await;
    let other_run = world.run().await;
    let bytes = content(4096, 5);
    let declared: Value = world
        .declare_batch(
            &run,
            &[
                ("good.png", &bytes),
                ("forged.png", &bytes),
                ("missing.png", &bytes),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let items = declared["items"].as_array().unwrap();
    assert_eq!(upload(&items[0]["upload"], &bytes).await, 200);
    assert_eq!(upload(&items[1]["upload"], &content(4096, 6)).await, 200);
    let elsewhere = world.declared(&other_run, "elsewhere.png", &bytes).await;
    let ids: Vec<&str> = items
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .chain([elsewhere["id"].as_str().unwrap()])
        .collect();

    let completed = world.complete_batch(&run, &ids).await;

    let statuses: Vec<u64> = completed
        .iter()
        .map(|entry| entry["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 422, 409, 404]);
    assert_eq!(completed[0]["artifact"]["state"], "stored");
    for entry in &completed[1..] {
        assert!(
            entry["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{entry}"
        );
        assert!(entry.get("artifact").is_none(), "{entry}");
    }
    assert_eq!(world.artifact(ids[1]).await["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_another_projects_run_are_refused() {
    let world = World::new(BlobStoreKind::Disk, &[]).await;
    let run = world.run().await;
    let stored = world.store(&run, "secret.png", &content(64, 9)).await;
    let admin = world.app.admin_token().await;
    let (_, outsider) = world.app.user(&admin, "outsider@example.com").await;
    let bytes = content(64, 1);

    let declared = world
        .app
        .post(
            &outsider,
            &format!("/api/v1/runs/{run}/artifacts/batch"),
            json!({ "artifacts": [{
                "name": "x.png", "content_type": "image/png",
                "size": bytes.len(), "sha256": sha256_hex(&bytes),
            }] }),
        )
        .await;
    let completed = world
        .app
        .post(
            &outsider,
            &format!("/api/v1/runs/{run}/artifacts/complete"),
            json!({ "ids": [stored["id"]] }),
        )
        .await;

    assert_eq!(declared.status(), 404);
    assert_eq!(completed.status(), 404);
    let listed: Value = world.list(&run, &[]).await.json().await.unwrap();
    assert_eq!(names(&listed), ["secret.png"]);
}
