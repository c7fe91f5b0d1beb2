//! The bodies deliveries carry: Verdict's JSON, a Slack incoming-webhook message, and
//! the commit statuses of GitHub and GitLab.

use serde_json::{json, Value};
use verdict_contracts::notify::{WebhookEvent, WebhookFormat};
use verdict_contracts::runs::triage::RunNews;
use verdict_contracts::runs::{Run, RunStatus, TestResult};

/// Failures a message names at most.
pub const FIRST_FAILURES: usize = 5;
/// Characters of a failure message quoted at most.
const MESSAGE_CHARS: usize = 300;
/// GitHub refuses longer status descriptions.
const DESCRIPTION_CHARS: usize = 140;

/// A finished run and what a message says about it.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run: Run,
    /// The latest failures, newest first.
    pub failures: Vec<TestResult>,
    /// The run's page, when the public URL is known.
    pub url: Option<String>,
    /// Its new failure signatures and flaky tests, when a webhook asks for them.
    pub news: RunNews,
}

impl RunReport {
    /// The events this report is delivered for.
    pub fn events(&self) -> Vec<WebhookEvent> {
        let mut events = vec![WebhookEvent::RunFinished];
        if self.run.status == RunStatus::Failed {
            events.push(WebhookEvent::RunFailed);
        }
        if !self.news.new_failures.is_empty() {
            events.push(WebhookEvent::FailureNew);
        }
        if !self.news.flaky_tests.is_empty() {
            events.push(WebhookEvent::TestFlaky);
        }
        events
    }

    fn summary(&self) -> String {
        let counts = &self.run.counts;
        let mut parts = vec![format!("{} passed", counts.passed)];
        for (count, label) in [
            (counts.failed, "failed"),
            (counts.errored, "errored"),
            (counts.skipped, "skipped"),
            (counts.flaky, "flaky"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {label}"));
            }
        }
        format!("{} of {} tests", parts.join(", "), counts.total)
    }
}

/// The body of a webhook delivery of `event` in `format`.
pub fn webhook_body(
    event: WebhookEvent,
    format: WebhookFormat,
    report: &RunReport,
    timestamp: &str,
) -> Vec<u8> {
    let body = match format {
        WebhookFormat::Verdict => verdict_json(event, report, timestamp),
        WebhookFormat::Slack => slack(event, report),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn verdict_json(event: WebhookEvent, report: &RunReport, timestamp: &str) -> Value {
    let failures: Vec<Value> = report
        .failures
        .iter()
        .take(FIRST_FAILURES)
        .map(|failure| {
            json!({
                "test_key": failure.test_key,
                "suite": failure.suite,
                "name": failure.name,
                "status": failure.status,
                "message": failure.message.as_deref().map(|m| clip(m, MESSAGE_CHARS)),
            })
        })
        .collect();
    let mut data = json!({ "run": report.run, "failures": failures, "url": report.url });
    match event {
        WebhookEvent::FailureNew => {
            let new_failures: Vec<Value> = report
                .news
                .new_failures
                .iter()
                .map(|group| {
                    json!({
                        "signature": group.signature,
                        "pattern": group.pattern,
                        "failures": group.failures,
                        "test_keys": group.test_keys,
                    })
                })
                .collect();
            data["new_failures"] = Value::Array(new_failures);
        }
        WebhookEvent::TestFlaky => data["flaky_tests"] = json!(report.news.flaky_tests),
        WebhookEvent::RunFinished | WebhookEvent::RunFailed => {}
    }
    json!({
        "type": event.as_str(),
        "timestamp": timestamp,
        "data": data,
    })
}

/// Slack's mrkdwn treats these three as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn slack(event: WebhookEvent, report: &RunReport) -> Value {
    let run = &report.run;
    let title = match &report.url {
        Some(url) => format!("<{}|{}>", url, escape(&run.name)),
        None => format!("*{}*", escape(&run.name)),
    };
    let headline = format!(
        "{} {}: {}",
        title,
        run.status.as_str(),
        escape(&report.summary())
    );
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": headline },
    })];
    if !report.failures.is_empty() {
        let lines: Vec<String> = report
            .failures
            .iter()
            .take(FIRST_FAILURES)
            .map(|failure| {
                let name = match &failure.suite {
                    Some(suite) => format!("{suite} › {}", failure.name),
                    None => failure.name.clone(),
                };
                let message = failure
                    .message
                    .as_deref()
                    .map(|m| format!(": {}", escape(&clip(m.lines().next().unwrap_or(""), 150))))
                    .unwrap_or_default();
                format!("• `{}`{}", escape(&name), message)
            })
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("*First failures*\n{}", lines.join("\n")) },
        }));
    }
    let news = match event {
        WebhookEvent::FailureNew => Some((
            "New failure signatures",
            report
                .news
                .new_failures
                .iter()
                .map(|group| {
                    format!(
                        "• `{}` ({} failed)",
                        escape(&clip(&group.pattern, 150)),
                        group.failures
                    )
                })
                .collect::<Vec<_>>(),
        )),
        WebhookEvent::TestFlaky => Some((
            "Flaky tests",
            report
                .news
                .flaky_tests
                .iter()
                .map(|key| format!("• `{}`", escape(key)))
                .collect(),
        )),
        WebhookEvent::RunFinished | WebhookEvent::RunFailed => None,
    };
    if let Some((title, lines)) = news {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("*{title}*\n{}", lines.join("\n")) },
        }));
    }
    if let Some(url) = &report.url {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("<{url}|Open the run in Verdict>") }],
        }));
    }
    json!({
        "text": format!("{} {}: {}", run.name, run.status.as_str(), report.summary()),
        "blocks": blocks,
    })
}

/// A commit status provider's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    GitHub,
    GitLab,
}

/// The commit status request for a finished run: its path below the API's base URL
/// and its body. `repository` is `owner/name` (GitHub) or the project's id or path
/// (GitLab).
pub fn commit_status(
    provider: ProviderKind,
    repository: &str,
    sha: &str,
    context: &str,
    report: &RunReport,
) -> (String, Vec<u8>) {
    let description = clip(&report.summary(), DESCRIPTION_CHARS - 1);
    let (path, body) = match provider {
        ProviderKind::GitHub => {
            let state = match report.run.status {
                RunStatus::Passed => "success",
                RunStatus::Failed => "failure",
                RunStatus::Interrupted => "error",
                RunStatus::Running => "pending",
            };
            (
                format!("/repos/{repository}/statuses/{sha}"),
                json!({ "state": state, "target_url": report.url, "description": description, "context": context }),
            )
        }
        ProviderKind::GitLab => {
            let state = match report.run.status {
                RunStatus::Passed => "success",
                RunStatus::Failed => "failed",
                RunStatus::Interrupted => "canceled",
                RunStatus::Running => "running",
            };
            let project = percent_encoding::utf8_percent_encode(
                repository,
                percent_encoding::NON_ALPHANUMERIC,
            );
            (
                format!("/projects/{project}/statuses/{sha}"),
                json!({ "state": state, "name": context, "target_url": report.url, "description": description }),
            )
        }
    };
    (path, serde_json::to_vec(&body).unwrap_or_default())
}

/// Whether a run attribute can name a commit: 7 to 64 hex digits.
pub fn is_commit_sha(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a run attribute can name a repository in a URL path: `owner/name` or a
/// GitLab path or id, without dots-only segments.
pub fn is_repository(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .split('/')
            .all(|segment| !segment.is_empty() && segment.chars().any(|c| c != '.'))
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use verdict_contracts::runs::triage::FailureGroup;
    use verdict_contracts::runs::{Counts, ResultStatus};

    use super::*;

    const RUN: &str = "0192a24d-0000-7000-8000-000000000001";

    fn report(status: RunStatus) -> RunReport {
        RunReport {
            run: Run {
                id: RUN.parse().unwrap(),
                project_id: verdict_contracts::ids::ProjectId::generate(),
                name: "nightly <main>".into(),
                status,
                attributes: BTreeMap::new(),
                started_at: "2026-12-06T00:00:00Z".into(),
                finished_at: Some("2026-12-06T00:01:00Z".into()),
                duration_ms: Some(60_000),
                counts: Counts {
                    total: 10,
                    passed: 8,
                    failed: 2,
                    ..Counts::default()
                },
                build_key: None,
                shards: None,
            },
            failures: vec![TestResult {
                id: "r".into(),
                run_id: RUN.parse().unwrap(),
                test_key: "k".into(),
                suite: Some("checkout".into()),
                name: "pays".into(),
                status: ResultStatus::Failed,
                attempt: 1,
                duration_ms: None,
                started_at: None,
                message: Some("expected 200\nstack".into()),
                trace: None,
                stdout: None,
                stderr: None,
                attributes: BTreeMap::new(),
            }],
            url: Some(format!("https://verdict.example/runs/{RUN}")),
            news: RunNews::default(),
        }
    }

    fn news() -> RunNews {
        RunNews {
            new_failures: vec![FailureGroup {
                signature: "sig-1".into(),
                pattern: "expected <n>".into(),
                example: None,
                failures: 2,
                test_keys: vec!["checkout::pays".into()],
                new_signature: true,
                regressions: 0,
                baseline_run_id: None,
            }],
            flaky_tests: vec!["login::works".into()],
        }
    }

    #[test]
    fn a_run_with_new_signatures_and_flaky_tests_is_delivered_for_both() {
        let mut report = report(RunStatus::Failed);
        report.news = news();
        assert_eq!(
            report.events(),
            [
                WebhookEvent::RunFinished,
                WebhookEvent::RunFailed,
                WebhookEvent::FailureNew,
                WebhookEvent::TestFlaky
            ]
        );
    }

    #[test]
    fn news_bodies_carry_the_new_signatures_or_the_flaky_tests() {
        let mut report = report(RunStatus::Failed);
        report.news = news();
        let body = |event| -> Value {
            serde_json::from_slice(&webhook_body(event, WebhookFormat::Verdict, &report, "t"))
                .unwrap()
        };
        let new = body(WebhookEvent::FailureNew);
        assert_eq!(new["type"], "failure.new");
        assert_eq!(new["data"]["new_failures"][0]["pattern"], "expected <n>");
        assert_eq!(
            new["data"]["new_failures"][0]["test_keys"],
            json!(["checkout::pays"])
        );
        let flaky = body(WebhookEvent::TestFlaky);
        assert_eq!(flaky["type"], "test.flaky");
        assert_eq!(flaky["data"]["flaky_tests"], json!(["login::works"]));
        assert!(body(WebhookEvent::RunFinished)["data"]
            .get("flaky_tests")
            .is_none());
        let slack: Value = serde_json::from_slice(&webhook_body(
            WebhookEvent::TestFlaky,
            WebhookFormat::Slack,
            &report,
            "t",
        ))
        .unwrap();
        assert!(slack.to_string().contains("login::works"), "{slack}");
    }

    #[test]
    fn a_failed_run_is_delivered_as_finished_and_as_failed() {
        assert_eq!(
            report(RunStatus::Failed).events(),
            [WebhookEvent::RunFinished, WebhookEvent::RunFailed]
        );
        assert_eq!(
            report(RunStatus::Passed).events(),
            [WebhookEvent::RunFinished]
        );
    }

    #[test]
    fn the_verdict_body_names_its_type_and_carries_the_run() {
        let body = webhook_body(
            WebhookEvent::RunFailed,
            WebhookFormat::Verdict,
            &report(RunStatus::Failed),
            "2026-12-06T00:01:00Z",
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "run.failed");
        assert_eq!(body["data"]["run"]["id"], RUN);
        assert_eq!(body["data"]["failures"][0]["name"], "pays");
        assert_eq!(
            body["data"]["url"],
            format!("https://verdict.example/runs/{RUN}")
        );
    }

    #[test]
    fn the_slack_message_has_name_status_counts_failures_and_link() {
        let body = webhook_body(
            WebhookEvent::RunFailed,
            WebhookFormat::Slack,
            &report(RunStatus::Failed),
            "",
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["text"],
            "nightly <main> failed: 8 passed, 2 failed of 10 tests"
        );
        let headline = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            headline.starts_with(&format!(
                "<https://verdict.example/runs/{RUN}|nightly &lt;main&gt;> failed"
            )),
            "{headline}"
        );
        let failures = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            failures.contains("• `checkout › pays`: expected 200"),
            "{failures}"
        );
        assert!(!failures.contains("stack"));
    }

    #[test]
    fn commit_statuses_follow_each_providers_api() {
        let failed = report(RunStatus::Failed);
        let (path, body) = commit_status(
            ProviderKind::GitHub,
            "acme/shop",
            "abc1234",
            "verdict",
            &failed,
        );
        assert_eq!(path, "/repos/acme/shop/statuses/abc1234");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["state"], "failure");
        assert_eq!(body["context"], "verdict");
        let (path, body) = commit_status(
            ProviderKind::GitLab,
            "group/shop",
            "abc1234",
            "verdict",
            &failed,
        );
        assert_eq!(path, "/projects/group%2Fshop/statuses/abc1234");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["state"], "failed");
        assert_eq!(body["name"], "verdict");
    }

    #[test]
    fn only_plausible_commits_and_repositories_are_used_in_paths() {
        assert!(is_commit_sha("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_sha("main"));
        assert!(!is_commit_sha("../../x"));
        assert!(is_repository("acme/shop.web"));
        assert!(!is_repository("acme/../admin"));
        assert!(!is_repository("acme/shop?x=1"));
    }
}
