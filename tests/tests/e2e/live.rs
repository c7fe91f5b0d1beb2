//! Live view: viewers over WebSocket see every event of a run in order, without gaps,
//! across reconnects, gateways and realtime replicas; slow viewers are cut loose; only
//! those with a role in the project may watch.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use verdict_testkit::{Component, LiveClient, Received, TestApp};

const WAIT: Duration = Duration::from_secs(20);

/// A project with a reporter token and a viewer's access token.
struct Live {
    app: TestApp,
    admin: String,
    project: String,
    reporter: String,
    reporter_id: String,
}

impl Live {
    async fn new(overrides: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with(overrides).await;
        let admin = app.admin_token().await;
        let project = app.project(&admin, "web").await;
        let (reporter_id, reporter) = app.api_token(&admin, &project, "reporter").await;
        Self {
            app,
            admin,
            project,
            reporter,
            reporter_id,
        }
    }

    async fn run(&self) -> String {
        let response = self
            .app
            .post(
                &self.reporter,
                &format!("/api/v1/projects/{}/runs", self.project),
                json!({ "name": "live" }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let run: Value = response.json().await.unwrap();
        run["id"].as_str().unwrap().to_owned()
    }

    /// Posts `count` results named `test-<first>`... in one batch.
    async fn post(&self, run: &str, first: usize, count: usize) {
        let results: Vec<Value> = (first..first + count)
            .map(|i| {
                let status = if i % 10 == 0 { "failed" } else { "passed" };
                json!({ "suite": "live", "name": format!("test-{i}"), "status": status })
            })
            .collect();
        let response = self
            .app
            .post(
                &self.reporter,
                &format!("/api/v1/runs/{run}/results"),
                json!({ "results": results }),
            )
            .await;
        assert_eq!(response.status(), 202);
    }

    async fn finish(&self, run: &str) {
        let response = self
            .app
            .post(
                &self.reporter,
                &format!("/api/v1/runs/{run}/finish"),
                json!({}),
            )
            .await;
        assert_eq!(response.status(), 202);
    }

    /// A viewer on the app's gateway subscribed to the run; returns it with the `seq` it
    /// starts at.
    async fn viewer(&self, run: &str) -> (LiveClient, u64) {
        viewer_at(&self.app.url(""), &self.admin, run, None).await
    }
}

async fn viewer_at(base: &str, token: &str, run: &str, since: Option<u64>) -> (LiveClient, u64) {
    let viewer = LiveClient::connect(base, Some(token))
        .await
        .expect("socket");
    subscribed(viewer, run, since).await
}

/// Subscribes `viewer` to the run; returns it with the `seq` it starts at.
async fn subscribed(mut viewer: LiveClient, run: &str, since: Option<u64>) -> (LiveClient, u64) {
    viewer.subscribe(&format!("run:{run}"), since).await;
    let subscribed = viewer.json(WAIT).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["channel"], format!("run:{run}"));
    (viewer, subscribed["seq"].as_u64().unwrap())
}

/// Reads a run channel's events until `run.finished`, checking that `seq` goes up by
/// one from `after`. Returns the events.
async fn events_until_finished(viewer: &mut LiveClient, after: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut last = after;
    loop {
        let message = viewer.json(WAIT).await;
        assert_eq!(message["type"], "event", "{message}");
        let seq = message["seq"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "gap or repeat after seq {last}");
        last = seq;
        let finished = message["event"]["kind"] == "run.finished";
        events.push(message);
        if finished {
            return events;
        }
    }
}

fn tests_in(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["event"]["kind"] == "test.finished")
        .map(|e| e["event"]["tests"].as_array().unwrap().len())
        .sum()
}

#[tokio::test]
async fn fifty_viewers_of_a_run_see_every_event_in_order_and_the_finish() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let mut viewers = Vec::new();
    for _ in 0..50 {
        viewers.push(live.viewer(&run).await);
    }
    for batch in 0..20 {
        live.post(&run, batch * 50, 50).await;
    }
    live.finish(&run).await;
    let mut seen = Vec::new();
    for (mut viewer, start) in viewers {
        let events = events_until_finished(&mut viewer, start).await;
        assert_eq!(tests_in(&events), 1000);
        let finished = &events.last().unwrap()["event"];
        assert_eq!(finished["counts"]["total"], 1000);
        assert_eq!(finished["counts"]["failed"], 100);
        seen.push(events);
    }
    assert!(
        seen.windows(2).all(|pair| pair[0] == pair[1]),
        "viewers saw different events"
    );
}

#[tokio::test]
async fn a_viewer_asking_for_deflate_gets_the_same_events_compressed() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let (mut plain, plain_start) = live.viewer(&run).await;
    let deflated = LiveClient::connect_deflated(&live.app.url(""), Some(&live.admin))
        .await
        .expect("socket");
    let (mut deflated, deflated_start) = subscribed(deflated, &run, None).await;
    for batch in 0..3 {
        live.post(&run, batch * 50, 50).await;
    }
    live.finish(&run).await;
    let plain_events = events_until_finished(&mut plain, plain_start).await;
    let deflated_events = events_until_finished(&mut deflated, deflated_start).await;
    assert_eq!(tests_in(&deflated_events), 150);
    assert_eq!(deflated_events, plain_events);
}

#[tokio::test]
async fn an_unknown_encoding_or_parameter_is_refused_naming_it() {
    let live = Live::new(&[]).await;
    for (query, field) in [("?encoding=gzip", "encoding"), ("?compress=1", "compress")] {
        let refused = LiveClient::open(&live.app.url(""), Some(&live.admin), query).await;
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
            panic!("{query} was not refused");
        };
        assert_eq!(response.status(), 400);
        let problem: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_gets_a_problem_naming_what_is_missing() {
    let live = Live::new(&[]).await;
    let response = live
        .app
        .http
        .get(live.app.url("/api/v1/live"))
        .bearer_auth(&live.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "/api/v1/live is a WebSocket: the request needs `Connection: upgrade`"
    );
}

#[tokio::test]
async fn a_viewer_that_reconnects_with_since_gets_exactly_the_missed_events() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let (mut steady, start) = live.viewer(&run).await;
    let (mut leaving, _) = live.viewer(&run).await;
    live.post(&run, 0, 10).await;
    let first = leaving.json(WAIT).await;
    let last_seen = first["seq"].as_u64().unwrap();
    drop(leaving);
    for batch in 1..5 {
        live.post(&run, batch * 10, 10).await;
    }
    live.finish(&run).await;
    let all = events_until_finished(&mut steady, start).await;

    let (mut back, resumed_at) =
        viewer_at(&live.app.url(""), &live.admin, &run, Some(last_seen)).await;
    assert_eq!(
        resumed_at, last_seen,
        "a replay starts where the viewer was"
    );
    let missed = events_until_finished(&mut back, last_seen).await;
    let expected: Vec<Value> = all
        .into_iter()
        .filter(|e| e["seq"].as_u64().unwrap() > last_seen)
        .collect();
    assert_eq!(missed, expected);
}

#[tokio::test]
async fn a_viewer_too_far_behind_gets_a_snapshot_instead_of_a_replay() {
    let live = Live::new(&[("VERDICT_LIVE_REPLAY_LIMIT", "2")]).await;
    let run = live.run().await;
    for batch in 0..5 {
        live.post(&run, batch * 10, 10).await;
    }
    live.finish(&run).await;
    let mut viewer = LiveClient::connect(&live.app.url(""), Some(&live.admin))
        .await
        .unwrap();
    // Until the finish is sequenced, the channel's head moves; wait for it.
    let head = loop {
        viewer.subscribe(&format!("run:{run}"), Some(0)).await;
        let subscribed = viewer.json(WAIT).await;
        let snapshot = &subscribed["snapshot"];
        assert_eq!(subscribed["type"], "subscribed");
        if snapshot["run"]["status"] == "failed" {
            assert_eq!(snapshot["run"]["counts"]["total"], 50);
            assert_eq!(snapshot["failures"].as_array().unwrap().len(), 5);
            break subscribed["seq"].as_u64().unwrap();
        }
        viewer
            .send(json!({ "type": "unsubscribe", "channel": format!("run:{run}") }))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(head > 2, "the run has more frames than the replay limit");
}

#[tokio::test]
async fn a_run_snapshot_lists_the_latest_failures_newest_first() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    for batch in 0..5 {
        live.post(&run, batch * 50, 50).await;
    }
    // Every tenth result fails: 25 failures, of which the snapshot shows the last 20.
    let snapshot = loop {
        let mut viewer = live.app.live(&live.admin).await;
        viewer.subscribe(&format!("run:{run}"), None).await;
        let subscribed = viewer.json(WAIT).await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        if subscribed["snapshot"]["run"]["counts"]["total"] == 250 {
            break subscribed["snapshot"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = snapshot["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["name"].as_str().unwrap())
        .collect();
    let latest: Vec<String> = (5..25).rev().map(|n| format!("test-{}", n * 10)).collect();
    assert_eq!(names, latest);
}

#[tokio::test]
async fn viewers_on_two_gateways_see_the_same_events_and_outlive_one_gateway() {
    let mut live = Live::new(&[]).await;
    let second = live.app.spawn_gateway().await;
    let run = live.run().await;
    let (mut on_first, first_start) = live.viewer(&run).await;
    let (mut on_second, second_start) = viewer_at(&second, &live.admin, &run, None).await;
    live.post(&run, 0, 10).await;
    let first_event = on_first.json(WAIT).await;
    assert_eq!(first_event["seq"].as_u64(), Some(first_start + 1));
    let last_seen = first_event["seq"].as_u64().unwrap();

    live.app.stop(Component::Gateway).await;
    let (code, _) = on_first.closed(WAIT).await;
    assert_eq!(code, Some(1001), "a stopping gateway says it is going away");

    for batch in 1..4 {
        post_via(&second, &live, &run, batch * 10).await;
    }
    finish_via(&second, &live, &run).await;
    let on_second_events = events_until_finished(&mut on_second, second_start).await;
    let (mut moved, resumed_at) = viewer_at(&second, &live.admin, &run, Some(last_seen)).await;
    assert_eq!(resumed_at, last_seen);
    let resumed = events_until_finished(&mut moved, last_seen).await;
    let expected: Vec<Value> = on_second_events
        .into_iter()
        .filter(|e| e["seq"].as_u64().unwrap() > last_seen)
        .collect();
    assert_eq!(resumed, expected);
}

async fn post_via(base: &str, live: &Live, run: &str, first: usize) {
    let results: Vec<Value> = (first..first + 10)
        .map(|i| json!({ "name": format!("test-{i}"), "status": "passed" }))
        .collect();
    let response = live
        .app
        .http
        .post(format!("{base}/api/v1/runs/{run}/results"))
        .bearer_auth(&live.reporter)
        .json(&json!({ "results": results }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn finish_via(base: &str, live: &Live, run: &str) {
    let response = live
        .app
        .http
        .post(format!("{base}/api/v1/runs/{run}/finish"))
        .bearer_auth(&live.reporter)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn two_realtime_replicas_sequence_each_event_once() {
    let live = Live::new(&[]).await;
    let settings = verdict_realtime::Settings::from_env(&live.app.env()).unwrap();
    let stop = CancellationToken::new();
    let replica = tokio::spawn(verdict_realtime::run(settings, stop.clone()));
    let run = live.run().await;
    let (mut viewer, start) = live.viewer(&run).await;
    for batch in 0..20 {
        live.post(&run, batch * 25, 25).await;
    }
    live.finish(&run).await;
    let events = events_until_finished(&mut viewer, start).await;
    assert_eq!(tests_in(&events), 500);
    stop.cancel();
    replica.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_viewer_that_never_reads_is_cut_loose_while_others_get_everything() {
    let live = Live::new(&[
        ("VERDICT_LIVE_QUEUE", "4"),
        ("VERDICT_LIVE_WRITE_TIMEOUT", "2s"),
    ])
    .await;
    let run = live.run().await;
    let (mut slow, _) = live.viewer(&run).await;
    let (mut fast, start) = live.viewer(&run).await;
    let reader = tokio::spawn(async move { events_until_finished(&mut fast, start).await });
    // Enough frames to fill the slow socket's kernel buffers, then its queue.
    for batch in 0..60 {
        live.post(&run, batch * 1000, 1000).await;
    }
    live.finish(&run).await;
    let events = reader.await.unwrap();
    assert_eq!(tests_in(&events), 60_000);

    let mut cut_loose = false;
    loop {
        match slow.next(WAIT).await {
            Received::Json(message) if message["type"] == "lagged" => {
                assert_eq!(message["channel"], format!("run:{run}"));
                cut_loose = true;
                break;
            }
            Received::Json(message) => assert_eq!(message["type"], "event"),
            Received::Closed(_) => {
                cut_loose = true;
                break;
            }
            Received::Silent => break,
        }
    }
    assert!(cut_loose, "the slow viewer was neither lagged nor closed");
}

#[tokio::test]
async fn a_viewer_without_a_role_in_the_project_is_refused() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let (_, outsider) = live.app.user(&live.admin, "outsider@verdict.test").await;
    let mut viewer = live.app.live(&outsider).await;
    for channel in [format!("run:{run}"), format!("project:{}", live.project)] {
        viewer.subscribe(&channel, None).await;
        let refused = viewer.json(WAIT).await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["code"], "not_found", "{refused}");
    }
}

#[tokio::test]
async fn a_bad_token_is_refused_by_header_and_by_first_message() {
    let live = Live::new(&[]).await;
    let by_header = LiveClient::connect(&live.app.url(""), Some("not-a-token")).await;
    assert_refused_with(by_header, 401);
    let mut by_message = LiveClient::connect(&live.app.url(""), None).await.unwrap();
    by_message
        .send(json!({ "type": "auth", "token": "not-a-token" }))
        .await;
    let (code, error) = by_message.closed(WAIT).await;
    assert_eq!(code, Some(1008));
    assert_eq!(error.unwrap()["code"], "unauthorized");
}

#[tokio::test]
async fn a_token_sent_as_the_first_message_authenticates_the_socket() {
    let live = Live::new(&[]).await;
    let mut viewer = LiveClient::connect(&live.app.url(""), None).await.unwrap();
    viewer
        .send(json!({ "type": "auth", "token": live.admin }))
        .await;
    viewer
        .subscribe(&format!("project:{}", live.project), None)
        .await;
    let subscribed = viewer.json(WAIT).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert!(subscribed["snapshot"]["running"].is_array());
    let run = live.run().await;
    let started = viewer.json(WAIT).await;
    assert_eq!(started["event"]["kind"], "run.started");
    assert_eq!(started["event"]["run_id"], run);
}

#[tokio::test]
async fn revoking_the_token_of_a_connected_viewer_ends_its_access() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let (mut viewer, _) = viewer_at(&live.app.url(""), &live.reporter, &run, None).await;
    let response = live
        .app
        .send(
            reqwest::Method::DELETE,
            &live.admin,
            &format!(
                "/api/v1/projects/{}/tokens/{}",
                live.project, live.reporter_id
            ),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    let (code, error) = viewer.closed(WAIT).await;
    assert_eq!(code, Some(1008));
    assert_eq!(error.unwrap()["code"], "unauthorized");
}

#[tokio::test]
async fn limits_on_a_socket_end_it_with_an_error_frame() {
    let live = Live::new(&[
        ("VERDICT_LIVE_SUBSCRIPTIONS", "2"),
        ("VERDICT_LIVE_SOCKETS_PER_PRINCIPAL", "3"),
    ])
    .await;
    let mut viewer = live.app.live(&live.admin).await;
    for _ in 0..2 {
        let run = live.run().await;
        viewer.subscribe(&format!("run:{run}"), None).await;
        assert_eq!(viewer.json(WAIT).await["type"], "subscribed");
    }
    let run = live.run().await;
    viewer.subscribe(&format!("run:{run}"), None).await;
    let (code, error) = viewer.closed(WAIT).await;
    assert_eq!(code, Some(1008));
    assert_eq!(error.unwrap()["code"], "too_many_subscriptions");

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(live.app.live(&live.admin).await);
    }
    assert_refused_with(
        LiveClient::connect(&live.app.url(""), Some(&live.admin)).await,
        429,
    );
}

fn assert_refused_with(
    connected: Result<LiveClient, tokio_tungstenite::tungstenite::Error>,
    status: u16,
) {
    match connected {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), status)
        }
        Err(other) => panic!("expected HTTP {status}, got {other}"),
        Ok(_) => panic!("the socket was not refused"),
    }
}

#[tokio::test]
async fn sockets_beyond_the_per_address_limit_are_refused() {
    let live = Live::new(&[("VERDICT_LIVE_SOCKETS_PER_IP", "2")]).await;
    let _first = live.app.live(&live.admin).await;
    let _second = LiveClient::connect(&live.app.url(""), None).await.unwrap();
    assert_refused_with(LiveClient::connect(&live.app.url(""), None).await, 429);
}

#[tokio::test]
async fn subscribing_faster_than_the_budget_ends_the_socket() {
    let live = Live::new(&[("VERDICT_LIVE_SUBSCRIBE_RATE", "2/m")]).await;
    let run = live.run().await;
    let mut viewer = live.app.live(&live.admin).await;
    for _ in 0..2 {
        viewer.subscribe(&format!("run:{run}"), None).await;
    }
    viewer
        .subscribe(&format!("project:{}", live.project), None)
        .await;
    let (code, error) = viewer.closed(WAIT).await;
    assert_eq!(code, Some(1008));
    assert_eq!(error.unwrap()["code"], "too_many_requests");
}

#[tokio::test]
async fn an_oversized_client_message_closes_the_socket() {
    let live = Live::new(&[("VERDICT_LIVE_MESSAGE_LIMIT", "1024")]).await;
    let mut viewer = live.app.live(&live.admin).await;
    let huge = json!({ "type": "subscribe", "channel": format!("run:{}", "a".repeat(4000)) });
    viewer.send(huge).await;
    let (code, error) = viewer.closed(WAIT).await;
    assert_eq!(code, Some(1009));
    assert_eq!(error.unwrap()["code"], "message_too_large");
}

#[tokio::test]
async fn a_malformed_message_gets_an_error_naming_the_problem() {
    let live = Live::new(&[]).await;
    let mut viewer = live.app.live(&live.admin).await;
    viewer
        .send(json!({ "type": "subscribe", "channel": "run:a.b" }))
        .await;
    let error = viewer.json(WAIT).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_request");
    assert!(error["message"].as_str().unwrap().contains("channel id"));
    viewer.send(json!({ "type": "ping" })).await;
    assert_eq!(viewer.json(WAIT).await["type"], "pong");
}

#[tokio::test]
async fn a_viewer_that_stops_answering_pings_is_closed() {
    let live = Live::new(&[("VERDICT_LIVE_HEARTBEAT", "200ms")]).await;
    let run = live.run().await;
    let (mut viewer, _) = live.viewer(&run).await;
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, _) = viewer.closed(WAIT).await;
    assert_ne!(code, Some(1001));
}

#[tokio::test]
async fn a_frame_the_stream_refused_never_reaches_a_viewer() {
    let live = Live::new(&[]).await;
    let run = live.run().await;
    let (mut viewer, start) = live.viewer(&run).await;
    // A replica that lost a race: its append names a head the channel no longer has.
    let channel = verdict_contracts::live::Channel::Run(run.parse().unwrap());
    let stale = json!({ "type": "event", "channel": channel.to_string(), "seq": start + 1,
                        "event": { "kind": "run.deleted", "project_id": live.project, "run_id": run } });
    let js = async_nats::jetstream::new(live.app.nats.client().await);
    let refused = js
        .send_publish(
            channel.subject(),
            async_nats::jetstream::message::PublishMessage::build()
                .payload(stale.to_string().into())
                .header(
                    verdict_contracts::live::SEQ_HEADER,
                    (start + 1).to_string().as_str(),
                )
                .expected_last_subject_sequence(u64::MAX / 2),
        )
        .await
        .unwrap()
        .await;
    assert!(refused.is_err(), "the stream accepted a stale append");

    live.post(&run, 0, 10).await;
    let next = viewer.json(WAIT).await;
    assert_eq!(next["seq"].as_u64(), Some(start + 1));
    assert_eq!(next["event"]["kind"], "test.finished", "{next}");
}

#[tokio::test]
async fn a_run_channel_that_names_no_run_id_is_refused_naming_the_channel() {
    let live = Live::new(&[]).await;
    let mut viewer = live.app.live(&live.admin).await;
    viewer
        .send(json!({ "type": "subscribe", "channel": "run:no-such-run" }))
        .await;
    let error = viewer.json(WAIT).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_request");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`run:no-such-run` names no run"),
        "{message}"
    );
}
