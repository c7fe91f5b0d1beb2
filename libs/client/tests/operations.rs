//! Every operation of the API through the client against a real system: each answers
//! its typed document, and each kind of refusal arrives as a typed problem.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use verdict_client::{
    ArtifactFile, Client, Error, ImportReport, NewToken, ResultFilter, RunFilter, UploadSource,
};
use verdict_contracts::artifacts::{ArtifactNamePrefix, ArtifactState, NewArtifact};
use verdict_contracts::auth::{CreateProject, CreateUser, Role};
use verdict_contracts::ids::{ArtifactId, ImportId, ProjectId, RunId, UserId};
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::triage::{RunSelection, Window};
use verdict_contracts::runs::{
    FinishRun, ImportState, NewRun, ReportKind, ResultBatchInput, ResultInput, ResultStatus, Run,
    RunStatus,
};
use verdict_testkit::{BlobStoreKind, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

fn parse<T: TryFrom<String, Error = String>>(text: &str) -> T {
    T::try_from(text.to_owned()).unwrap()
}

fn problem(error: &Error) -> &verdict_client::Problem {
    error
        .problem()
        .unwrap_or_else(|| panic!("expected a problem, got {error}"))
}

/// The app and a client signed in as its administrator.
async fn admin() -> (TestApp, Client) {
    let app = TestApp::spawn().await;
    let anonymous = Client::builder(app.url("")).build().unwrap();
    let pair = anonymous
        .login(parse(ADMIN_EMAIL), parse(ADMIN_PASSWORD))
        .await
        .unwrap();
    let client = anonymous.with_token(pair.access_token);
    (app, client)
}

async fn project(client: &Client, slug: &str) -> ProjectId {
    client
        .create_project(&CreateProject {
            slug: parse(slug),
            name: parse(slug),
        })
        .await
        .unwrap()
        .id
}

fn result(name: &str, status: &str) -> ResultInput {
    ResultInput {
        suite: Some("suite".into()),
        name: name.into(),
        status: status.into(),
        ..ResultInput::default()
    }
}

async fn run_named(client: &Client, name: &str, attributes: &[(&str, &str)]) -> Run {
    let attributes = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let run = NewRun {
        name: name.to_owned(),
        attributes,
        started_at: None,
        ..NewRun::default()
    };
    client.create_run("web", &run).await.unwrap()
}

async fn finished(client: &Client, run_id: RunId) -> Run {
    for _ in 0..200 {
        let run = client.run(run_id).await.unwrap();
        if run.status != RunStatus::Running {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("run {run_id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refresh_and_sign_out() {
    let app = TestApp::spawn().await;
    let anonymous = Client::builder(app.url("")).build().unwrap();
    let wrong = anonymous
        .login(parse(ADMIN_EMAIL), parse("not the password"))
        .await
        .unwrap_err();
    assert_eq!(problem(&wrong).status, 401);
    assert_eq!(problem(&wrong).kind, "urn:verdict:problem:unauthorized");

    let pair = anonymous
        .login(parse(ADMIN_EMAIL), parse(ADMIN_PASSWORD))
        .await
        .unwrap();
    assert_eq!(pair.token_type, "Bearer");
    let me = anonymous.with_token(&pair.access_token).me().await.unwrap();
    assert_eq!((me.email.as_str(), me.is_admin), (ADMIN_EMAIL, true));
    assert_eq!(
        anonymous.me().await.unwrap_err().status(),
        Some(StatusCode::UNAUTHORIZED)
    );

    let renewed = anonymous.refresh(&pair.refresh_token).await.unwrap();
    assert_ne!(renewed.refresh_token, pair.refresh_token);
    anonymous.logout(&renewed.refresh_token).await.unwrap();
    let spent = anonymous.refresh(&renewed.refresh_token).await.unwrap_err();
    assert_eq!(spent.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(!anonymous.jwks().await.unwrap().keys.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_users_and_keys() {
    let (_app, admin) = admin().await;
    let user = admin
        .create_user(&CreateUser {
            email: parse("dev@example.com"),
            name: parse("Dev"),
            password: parse("a-long-password"),
        })
        .await
        .unwrap();
    let taken = admin
        .create_user(&CreateUser {
            email: parse("dev@example.com"),
            name: parse("Dev"),
            password: parse("a-long-password"),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.status(), Some(StatusCode::CONFLICT));

    let dev_pair = admin
        .login(parse("dev@example.com"), parse("a-long-password"))
        .await
        .unwrap();
    let dev = admin.with_token(dev_pair.access_token);
    assert_eq!(
        dev.rotate_keys().await.unwrap_err().status(),
        Some(StatusCode::FORBIDDEN)
    );
    assert!(!admin.rotate_keys().await.unwrap().kid.is_empty());

    let disabled = admin.set_user_disabled(user.id, true).await.unwrap();
    assert!(disabled.disabled);
    let unknown = admin
        .set_user_disabled(UserId::generate(), true)
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_members_and_tokens() {
    let (app, admin) = admin().await;
    let id = project(&admin, "web").await;
    let duplicate = admin
        .create_project(&CreateProject {
            slug: parse("web"),
            name: parse("again"),
        })
        .await
        .unwrap_err();
    assert_eq!(problem(&duplicate).status, 409);

    let listed = admin.list_projects(&PageRequest::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(admin.project("web").await.unwrap().id, id);
    let missing = admin.project("nowhere").await.unwrap_err();
    assert_eq!(problem(&missing).kind, "urn:verdict:problem:not-found");

    let (user_id, _) = app
        .user(&app.admin_token().await, "member@example.com")
        .await;
    let user_id: UserId = user_id.parse().unwrap();
    let member = admin
        .put_member("web", user_id, Role::Maintainer)
        .await
        .unwrap();
    assert_eq!(member.role, Role::Maintainer);
    admin.delete_member("web", user_id).await.unwrap();
    let gone = admin.delete_member("nowhere", user_id).await.unwrap_err();
    assert_eq!(gone.status(), Some(StatusCode::NOT_FOUND));

    let created = admin
        .create_token(
            "web",
            &NewToken {
                name: parse("ci"),
                role: Role::Reporter,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert!(created.token.starts_with("vdt_"));
    let tokens = admin
        .list_tokens("web", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(tokens.items[0].id, created.id);
    let reporter = admin.with_token(&created.token);
    let forbidden = reporter
        .list_tokens("web", &PageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(forbidden.status(), Some(StatusCode::FORBIDDEN));
    admin.revoke_token("web", created.id).await.unwrap();
    let revoked = reporter.project("web").await.unwrap_err();
    assert_eq!(revoked.status(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_results_history_and_flaky_tests() {
    let (_app, admin) = admin().await;
    project(&admin, "web").await;
    let run = run_named(&admin, "nightly", &[("branch", "main")]).await;
    let refused = admin
        .post_results(
            run.id,
            &ResultBatchInput {
                results: vec![result("ok", "passed"), result("typo", "PASS")],
            },
        )
        .await
        .unwrap_err();
    let refused = problem(&refused);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.errors[0].field, "results[1].status");

    let batch = ResultBatchInput {
        results: vec![
            result("adds", "passed"),
            result("divides", "failed"),
            ResultInput {
                attempt: Some(1),
                ..result("retries", "failed")
            },
            ResultInput {
                attempt: Some(2),
                ..result("retries", "passed")
            },
        ],
    };
    assert_eq!(
        admin.post_results(run.id, &batch).await.unwrap().accepted,
        4
    );
    admin
        .finish_run(run.id, &FinishRun::default())
        .await
        .unwrap();
    let done = finished(&admin, run.id).await;
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!((done.counts.total, done.counts.flaky), (3, 1));

    let filter = RunFilter {
        status: Some(RunStatus::Failed),
        attributes: BTreeMap::from([("branch".to_owned(), "main".to_owned())]),
        ..RunFilter::default()
    };
    let runs = admin
        .list_runs("web", &filter, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    let failures = admin
        .list_results(
            run.id,
            &ResultFilter {
                status: Some(ResultStatus::Failed),
                ..ResultFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let divides = failures.items.iter().find(|r| r.name == "divides").unwrap();
    let history = admin
        .test_history("web", &divides.test_key, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(history.items[0].run_id, run.id);
    let window = |runs| RunSelection {
        window: Window::Runs(runs),
        ..RunSelection::default()
    };
    let flaky = admin
        .flaky_tests("web", &window(10), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(flaky.items[0].name, "retries");
    let bad_window = admin
        .flaky_tests("web", &window(0), &PageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(problem(&bad_window).errors[0].field, "window");

    admin.delete_run(run.id).await.unwrap();
    assert_eq!(
        admin.run(run.id).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_become_runs() {
    let (_app, admin) = admin().await;
    project(&admin, "web").await;
    let junit = r#"<testsuite name="unit" tests="2" failures="1">
        <testcase classname="math" name="adds"/>
        <testcase classname="math" name="divides"><failure message="by zero"/></testcase>
    </testsuite>"#;
    let import = admin
        .create_import(
            "web",
            &ImportReport {
                kind: ReportKind::Junit,
                body: junit.as_bytes().to_vec().into(),
                name: Some("imported".into()),
                attributes: BTreeMap::from([("ci".to_owned(), "yes".to_owned())]),
            },
        )
        .await
        .unwrap();
    let mut state = admin.import(import.id).await.unwrap();
    for _ in 0..200 {
        if state.status != ImportState::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        state = admin.import(import.id).await.unwrap();
    }
    assert_eq!(state.status, ImportState::Done);
    assert_eq!(state.counts.map(|c| (c.total, c.failed)), Some((2, 1)));
    let run = admin.run(import.run_id).await.unwrap();
    assert_eq!(run.attributes.get("ci").map(String::as_str), Some("yes"));
    let unknown = admin.import(ImportId::generate()).await.unwrap_err();
    assert_eq!(unknown.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_upload_list_and_download() {
    let (_app, admin) = admin().await;
    project(&admin, "web").await;
    let run = run_named(&admin, "e2e", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("login.png");
    std::fs::write(&screenshot, b"\x89PNG pretend").unwrap();
    let stored = admin
        .upload_file(
            run.id,
            &ArtifactFile {
                path: screenshot.clone(),
                name: parse("screens/login.png"),
                content_type: parse("image/png"),
                result_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.state, ArtifactState::Stored);
    assert_eq!(
        admin.artifact(stored.id).await.unwrap().name.as_str(),
        "screens/login.png"
    );
    let prefix: ArtifactNamePrefix = parse("screens/");
    let listed = admin
        .list_artifacts(run.id, Some(&prefix), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(admin
        .download_url(stored.id)
        .await
        .unwrap()
        .path()
        .starts_with("/blobs/"));
    assert_eq!(
        &admin.download(stored.id).await.unwrap()[..],
        b"\x89PNG pretend"
    );

    // Bytes other than the declared ones are refused by the server's check.
    let source = UploadSource::read(&screenshot).await.unwrap();
    let declared = admin
        .declare_artifact(
            run.id,
            &NewArtifact {
                name: parse("other.png"),
                content_type: parse("image/png"),
                size: source.size,
                sha256: parse(&"0".repeat(64)),
                result_id: None,
            },
        )
        .await
        .unwrap();
    admin.upload(&declared.upload, &source).await.unwrap();
    let mismatch = admin.complete_artifact(declared.id).await.unwrap_err();
    assert_eq!(problem(&mismatch).status, 422);
    let unknown = admin.artifact(ArtifactId::generate()).await.unwrap_err();
    assert_eq!(unknown.status(), Some(StatusCode::NOT_FOUND));
}

/// A file above the in-memory limit, to an S3 store that takes it in three parts: the
/// client streams each part's range from disk to its own URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_streamed_to_s3_part_by_part() {
    let app = TestApp::spawn_with_store(
        BlobStoreKind::S3,
        &[
            ("VERDICT_S3_MULTIPART_THRESHOLD", "6291456"),
            ("VERDICT_S3_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let admin = Client::builder(app.url(""))
        .token(app.admin_token().await)
        .build()
        .unwrap();
    project(&admin, "web").await;
    let run = run_named(&admin, "video", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.webm");
    let bytes: Vec<u8> = (0..(11u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let stored = admin
        .upload_file(
            run.id,
            &ArtifactFile {
                path,
                name: parse("videos/login.webm"),
                content_type: parse("video/webm"),
                result_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (stored.state, stored.size),
        (ArtifactState::Stored, 11 << 20)
    );
    assert!(admin.download(stored.id).await.unwrap()[..] == bytes[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_documents() {
    let (app, admin) = admin().await;
    let client = Client::builder(app.url("")).build().unwrap();
    client.healthz().await.unwrap();
    let ready = client.readyz().await.unwrap();
    assert_eq!(
        ready.checks.get("jetstream").map(String::as_str),
        Some("ok")
    );
    let status = admin.status().await.unwrap();
    assert_eq!(status.status, "ok");
    // auth, runs, artifacts, realtime, notify and the gateway.
    assert_eq!(status.services.len(), 6);
    assert!(status.services.iter().all(|s| s.instances.len() == 1));
    let refused = client.status().await.unwrap_err();
    assert_eq!(problem(&refused).status, 401);
    let openapi = client.openapi().await.unwrap();
    assert!(openapi["paths"]["/api/v1/runs/{run}/results"].is_object());
    let versions = client.version().await.unwrap();
    assert!(!versions.gateway.is_empty());
}
