//! The scaled deployment survives the failures and upgrades it is built for: a NATS node
//! killed, every part restarted in turn, a gateway killed, all while a CI job keeps
//! reporting results through haproxy and viewers watch the run live through it. Every
//! part is its own process (see `TestCluster`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use verdict_contracts::auth::API_TOKEN_CACHE_SECS;
use verdict_contracts::{streams, ServiceName};
use verdict_testkit::{
    access_token, LiveClient, Received, TestCluster, ADMIN_EMAIL, ADMIN_PASSWORD,
};

/// Results per posted batch.
const BATCH: usize = 10;

/// Tries `attempt` until it succeeds, as a client retries through a failover; after
/// 30 s the last refusal fails the test, naming `what`.
async fn retried<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(refusal) => assert!(Instant::now() < deadline, "{what}: {refusal:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A CI job's view of the cluster: a reporter token and the run it reports to.
#[derive(Clone)]
struct Job {
    http: reqwest::Client,
    base: String,
    admin: String,
    token: String,
    run_id: String,
}

impl Job {
    async fn start(cluster: &TestCluster) -> Self {
        let http = cluster.http.clone();
        let base = cluster.lb_url();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = access_token(&login);
        let created = |path: &str, body: Value| {
            let request = http
                .post(format!("{base}{path}"))
                .bearer_auth(&admin)
                .json(&body);
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 201);
                response.json::<Value>().await.unwrap()
            }
        };
        created("/api/v1/projects", json!({"slug": "web", "name": "Web"})).await;
        let token = created(
            "/api/v1/projects/web/tokens",
            json!({"name": "ci", "role": "reporter"}),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let run = created("/api/v1/projects/web/runs", json!({"name": "nightly"})).await;
        Self {
            http,
            base,
            admin,
            token,
            run_id: run["id"].as_str().unwrap().to_owned(),
        }
    }

    /// A new viewer API token of the project.
    async fn viewer_token(&self) -> String {
        let response = self
            .http
            .post(format!("{}/api/v1/projects/web/tokens", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({"name": "dashboard", "role": "viewer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        created["token"].as_str().unwrap().to_owned()
    }

    /// Finishes the run (retried like a post), so viewers see its end.
    async fn finish(&self) {
        retried("finish refused", || async {
            let finished = self
                .http
                .post(format!("{}/api/v1/runs/{}/finish", self.base, self.run_id))
                .bearer_auth(&self.token)
                .json(&json!({}))
                .send()
                .await
                .map(|response| response.status().as_u16());
            match finished {
                Ok(202) => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }

    /// Posts result batch `n`; the answer's status, or the transport error.
    async fn post_batch(&self, n: usize) -> Result<u16, String> {
        let results: Vec<Value> = batch_ids(n)
            .map(|id| json!({"id": id, "name": id, "status": "passed"}))
            .collect();
        self.http
            .post(format!("{}/api/v1/runs/{}/results", self.base, self.run_id))
            .bearer_auth(&self.token)
            .header("idempotency-key", format!("batch-{n}"))
            .json(&json!({ "results": results }))
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|err| err.to_string())
    }

    /// Reads the run; the answer's status, or the transport error.
    async fn read_run(&self) -> Result<u16, String> {
        self.http
            .get(format!("{}/api/v1/runs/{}", self.base, self.run_id))
            .bearer_auth(&self.token)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|err| err.to_string())
    }

    /// Posts batch `n` until it is accepted, as a CI reporter retries a failed post.
    async fn post_until_accepted(&self, n: usize) {
        retried(&format!("batch {n} still refused"), || async {
            match self.post_batch(n).await {
                Ok(202) => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }

    /// `GET /api/v1/status` of one gateway, as the administrator.
    async fn status_of(&self, gateway: &str) -> Value {
        let response = self
            .http
            .get(format!("{gateway}/api/v1/status"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "status of {gateway}");
        response.json().await.unwrap()
    }

    /// How many whole batches the run holds.
    async fn batches_stored(&self) -> usize {
        let run = self.get(&format!("/api/v1/runs/{}", self.run_id)).await;
        run["counts"]["total"].as_u64().unwrap() as usize / BATCH
    }

    /// Reads `path`, retrying what a failover may answer meanwhile (a timeout, a 5xx),
    /// as a dashboard would; any other answer than 200 fails at once.
    async fn get(&self, path: &str) -> Value {
        let response = retried(&format!("GET {path}"), || async {
            match self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .send()
                .await
            {
                Ok(response) if response.status().is_server_error() => {
                    Err(response.status().as_u16().to_string())
                }
                Ok(response) => Ok(response),
                Err(err) => Err(err.to_string()),
            }
        })
        .await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// How many times each result id is stored, once the run holds `expected` results.
    async fn stored_ids(&self, expected: usize) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.get(&format!("/api/v1/runs/{}", self.run_id)).await;
            let total = run["counts"]["total"].as_u64().unwrap() as usize;
            if total >= expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the run holds {total} results, {expected} accepted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut stored = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/runs/{}/results?limit=500", self.run_id);
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&path).await;
            for result in page["items"].as_array().unwrap() {
                *stored
                    .entry(result["id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return stored,
            }
        }
    }
}

fn batch_ids(n: usize) -> impl Iterator<Item = String> {
    (0..BATCH).map(move |i| format!("b{n:05}-r{i}"))
}

/// What a reporting loop saw.
#[derive(Default)]
struct Load {
    /// Batches answered 202.
    accepted: Vec<usize>,
    /// Every request that did not get a 202: (batch, status or error).
    failures: Vec<(usize, String)>,
}

/// Posts batches one after another until `stop`, reading the run back after each (a
/// query through runs and auth, which the post may answer from caches); a batch that
/// fails is sent again (same ids, same Idempotency-Key), as a CI reporter retries.
fn report_until(job: Job, stop: Arc<AtomicBool>) -> JoinHandle<Load> {
    tokio::spawn(async move {
        let mut load = Load::default();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            match job.post_batch(n).await {
                Ok(202) => {
                    load.accepted.push(n);
                    n += 1;
                }
                Ok(status) => load.failures.push((n, format!("POST: {status}"))),
                Err(err) => load.failures.push((n, format!("POST: {err}"))),
            }
            match job.read_run().await {
                Ok(200) => {}
                Ok(status) => load.failures.push((n, format!("GET: {status}"))),
                Err(err) => load.failures.push((n, format!("GET: {err}"))),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        load
    })
}

/// Stops the reporting loop and returns what it saw.
async fn stop_reporting(stop: &AtomicBool, reporter: JoinHandle<Load>) -> Load {
    stop.store(true, Ordering::Relaxed);
    reporter.await.unwrap()
}

fn assert_no_failed_request(load: &Load) {
    assert!(
        load.failures.is_empty(),
        "failed requests: {:?}",
        load.failures
    );
}

/// Waits until the run holds the results of at least `at_least` batches. After a NATS
/// node dies, that takes a stream leader election and the ingest consumer catching up
/// with the new leader: 10 to 20 s here alone, and once over 20 s with the whole suite
/// running beside it on the two cores.
async fn wait_for_accepted(job: &Job, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let run = job.get(&format!("/api/v1/runs/{}", job.run_id)).await;
        if run["counts"]["total"].as_u64().unwrap() as usize >= at_least * BATCH {
            return;
        }
        assert!(Instant::now() < deadline, "ingest is not progressing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every result of every accepted batch is stored exactly once, and nothing else is.
async fn assert_stored_exactly_once(job: &Job, load: &Load) {
    let expected: BTreeSet<String> = load.accepted.iter().flat_map(|&n| batch_ids(n)).collect();
    let stored = job.stored_ids(expected.len()).await;
    let duplicated: Vec<_> = stored.iter().filter(|(_, &count)| count > 1).collect();
    assert!(
        duplicated.is_empty(),
        "stored more than once: {duplicated:?}"
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "accepted but not stored: {missing:?}");
    // The batch in flight when the loop stopped may have been stored without its 202.
    let unexpected: Vec<_> = stored.keys().filter(|id| !expected.contains(*id)).collect();
    assert!(unexpected.len() <= BATCH, "never accepted: {unexpected:?}");
}

/// What a live viewer saw from its first subscription to the run's finish.
#[derive(Debug, Default)]
struct Watched {
    /// Event frames received, replays included.
    events: usize,
    reconnects: usize,
    /// Anything a viewer must not see: a `seq` that is not the last one plus one, a
    /// snapshot where it asked for a replay, `lagged`, silence.
    gaps: Vec<String>,
    /// The longest time from a socket ending to the next subscription answered.
    longest_outage: Duration,
    finished: bool,
}

/// Watches the job's run through haproxy until `run.finished`, reconnecting with
/// `since` whenever the socket ends, as a browser does.
fn watch(job: &Job, token: String, subscribed: Arc<AtomicUsize>) -> JoinHandle<Watched> {
    let (base, channel) = (job.base.clone(), format!("run:{}", job.run_id));
    tokio::spawn(async move {
        let mut watched = Watched::default();
        let mut last: Option<u64> = None;
        let mut lost_at: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let Ok(mut viewer) = LiveClient::connect(&base, Some(&token)).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            viewer.subscribe(&channel, last).await;
            match viewer.next(Duration::from_secs(30)).await {
                Received::Json(answer) if answer["type"] == "subscribed" => {
                    if last.is_some() && !answer["snapshot"].is_null() {
                        watched
                            .gaps
                            .push(format!("a snapshot instead of a replay after {last:?}"));
                    }
                    if last.is_none() {
                        subscribed.fetch_add(1, Ordering::Relaxed);
                    }
                    last = answer["seq"].as_u64();
                }
                Received::Json(answer) if answer["type"] == "error" => {
                    // The realtime service restarting: try again, as a browser would.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                _ => continue,
            }
            if let Some(lost) = lost_at.take() {
                watched.longest_outage = watched.longest_outage.max(lost.elapsed());
                watched.reconnects += 1;
            }
            loop {
                match viewer.next(Duration::from_secs(30)).await {
                    Received::Json(message) if message["type"] == "event" => {
                        let seq = message["seq"].as_u64().unwrap();
                        if Some(seq) != last.map(|last| last + 1) {
                            watched.gaps.push(format!("seq {seq} after {last:?}"));
                        }
                        last = Some(seq);
                        watched.events += 1;
                        if message["event"]["kind"] == "run.finished" {
                            watched.finished = true;
                            return watched;
                        }
                    }
                    Received::Json(message) => {
                        watched.gaps.push(format!("unexpected {message}"));
                        break;
                    }
                    Received::Closed(_) => break,
                    Received::Silent => {
                        watched.gaps.push(format!("silent for 30 s after {last:?}"));
                        return watched;
                    }
                }
            }
            lost_at = Some(Instant::now());
        }
        watched
    })
}

/// `count` viewers of the job's run, four viewer tokens sharing them; returns once each
/// is subscribed.
async fn viewers(job: &Job, count: usize) -> Vec<JoinHandle<Watched>> {
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(job.viewer_token().await);
    }
    let subscribed = Arc::new(AtomicUsize::new(0));
    let viewers = (0..count)
        .map(|n| watch(job, tokens[n % tokens.len()].clone(), subscribed.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while subscribed.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "viewers could not subscribe");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    viewers
}

/// Every viewer saw the finish, without a gap.
async fn watched_to_the_end(viewers: Vec<JoinHandle<Watched>>) -> Vec<Watched> {
    let mut all = Vec::new();
    for viewer in viewers {
        let watched = viewer.await.unwrap();
        assert!(watched.gaps.is_empty(), "a viewer saw gaps: {watched:?}");
        assert!(
            watched.finished,
            "a viewer never saw the finish: {watched:?}"
        );
        all.push(watched);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_continues_when_the_stream_leaders_nats_node_is_killed() {
    let mut cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = report_until(job.clone(), stop.clone());
    wait_for_accepted(&job, 10).await;

    let leader = cluster.stream_leader("VERDICT_INGEST").await;
    cluster.kill_nats(leader).await;
    let killed_at = job.batches_stored().await;
    wait_for_accepted(&job, killed_at + 20).await;

    let load = stop_reporting(&stop, reporter).await;
    assert_stored_exactly_once(&job, &load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_continues_when_the_runs_consumer_changes_leader() {
    let cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = report_until(job.clone(), stop.clone());
    wait_for_accepted(&job, 10).await;

    cluster
        .step_down_consumer(streams::INGEST.name, streams::INGEST_CONSUMER)
        .await;
    let moved_at = job.batches_stored().await;
    wait_for_accepted(&job, moved_at + 20).await;

    let load = stop_reporting(&stop, reporter).await;
    assert_no_failed_request(&load);
    assert_stored_exactly_once(&job, &load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_part_fails_no_request_and_loses_viewers_nothing() {
    let mut cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let watchers = viewers(&job, 200).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = report_until(job.clone(), stop.clone());
    wait_for_accepted(&job, 5).await;

    for service in ServiceName::ALL {
        cluster.restart_service(service).await;
    }
    for gateway in 0..2 {
        cluster.restart_gateway(gateway).await;
    }
    let after = job.batches_stored().await;
    wait_for_accepted(&job, after + 5).await;

    let load = stop_reporting(&stop, reporter).await;
    assert_no_failed_request(&load);
    assert_stored_exactly_once(&job, &load).await;
    job.finish().await;
    for watched in watched_to_the_end(watchers).await {
        // Both gateways restarted: every viewer had to move at least once.
        assert!(
            watched.reconnects >= 1,
            "a viewer never reconnected: {watched:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_succeeding_and_viewers_move_when_a_gateway_is_killed() {
    let mut cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let watchers = viewers(&job, 40).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = report_until(job.clone(), stop.clone());
    wait_for_accepted(&job, 5).await;

    cluster.kill_gateway(0).await;
    let after = job.batches_stored().await;
    wait_for_accepted(&job, after + 20).await;

    let load = stop_reporting(&stop, reporter).await;
    assert_no_failed_request(&load);
    assert_stored_exactly_once(&job, &load).await;
    job.finish().await;
    let watched = watched_to_the_end(watchers).await;
    let moved = watched.iter().filter(|w| w.reconnects > 0).count();
    assert!(moved > 0, "no viewer was on the killed gateway");
    for watched in &watched {
        assert!(
            watched.longest_outage < Duration::from_secs(5),
            "a viewer took too long to come back: {watched:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_stays_within_its_nats_permissions() {
    let cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let watcher = viewers(&job, 1).await;
    for n in 0..3 {
        assert_eq!(job.post_batch(n).await, Ok(202));
    }
    job.stored_ids(3 * BATCH).await;
    let finished = job
        .http
        .post(format!("{}/api/v1/runs/{}/finish", job.base, job.run_id))
        .bearer_auth(&job.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 202);
    job.get(&format!("/api/v1/runs/{}/artifacts", job.run_id))
        .await;
    watched_to_the_end(watcher).await;

    assert_eq!(cluster.permission_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_nats_node_dies_reconnects_to_another_and_keeps_consuming() {
    let mut cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    assert_eq!(job.post_batch(0).await, Ok(202));
    job.stored_ids(BATCH).await;

    let node = cluster.node_serving("verdict-runs").await;
    cluster.kill_nats(node).await;
    for n in 1..=3 {
        job.post_until_accepted(n).await;
    }

    let stored = job.stored_ids(4 * BATCH).await;
    assert_eq!(stored.len(), 4 * BATCH);
    assert_ne!(cluster.node_serving("verdict-runs").await, node);
}

/// The services a status document reports down.
fn down_in(status: &Value) -> BTreeSet<String> {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|service| service["health"] == "down")
        .map(|service| {
            assert_eq!(service["instances"], json!([]), "{service}");
            service["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Every gateway answers `/readyz` with 200 and reports exactly `down` as down.
async fn assert_gateways_ready_reporting(cluster: &TestCluster, job: &Job, down: &[&str]) {
    let expected: BTreeSet<String> = down.iter().map(|name| (*name).to_owned()).collect();
    for gateway in cluster.gateway_urls() {
        let ready = cluster
            .http
            .get(format!("{gateway}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status(),
            200,
            "{gateway} not ready with {down:?} down"
        );
        assert_eq!(
            down_in(&job.status_of(&gateway).await),
            expected,
            "{gateway}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_stay_ready_and_accept_results_while_artifacts_and_then_auth_are_stopped() {
    let mut cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let job = Job::start(&cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = report_until(job.clone(), stop.clone());
    wait_for_accepted(&job, 5).await;

    cluster.stop_service(ServiceName::Artifacts).await;
    assert_gateways_ready_reporting(&cluster, &job, &["artifacts"]).await;
    let at = job.batches_stored().await;
    wait_for_accepted(&job, at + 10).await;

    cluster.stop_service(ServiceName::Auth).await;
    let auth_stopped = Instant::now();
    assert_gateways_ready_reporting(&cluster, &job, &["artifacts", "auth"]).await;
    // Longer than a gateway trusts an API token's grant without asking auth: the
    // reporter goes on through the outage on the grants auth confirmed before.
    let outage = Duration::from_secs(API_TOKEN_CACHE_SECS as u64 + 5);
    tokio::time::sleep(outage.saturating_sub(auth_stopped.elapsed())).await;
    let at = job.batches_stored().await;
    wait_for_accepted(&job, at + 10).await;
    // Each gateway's haproxy checks kept seeing it ready all along.
    for gateway in 0..2 {
        assert_eq!(cluster.haproxy_status(gateway).await, "UP");
    }

    cluster.start_service(ServiceName::Auth).await;
    cluster.start_service(ServiceName::Artifacts).await;
    assert_gateways_ready_reporting(&cluster, &job, &[]).await;
    let at = job.batches_stored().await;
    wait_for_accepted(&job, at + 5).await;

    let load = stop_reporting(&stop, reporter).await;
    assert_no_failed_request(&load);
    assert_stored_exactly_once(&job, &load).await;
    // Discovery (the gateways' status) stays within every process's NATS permissions.
    assert_eq!(cluster.permission_violations(), Vec::<String>::new());
}
