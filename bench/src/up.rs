//! A fresh `verdict up` as its own process (release binary, its own nats-server child,
//! a new data directory): the system a user starts with one command.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use verdict_testkit::ports::free_port;

use crate::fixture::UNLIMITED_RATES;
use crate::process::verdict_binary;

const ADMIN_EMAIL: &str = "bench@verdict.local";
const ADMIN_PASSWORD: &str = "bench-password-0123";

/// A running `verdict up`; stopped with SIGTERM when [`UpSystem::stop`] is called,
/// killed when dropped.
pub struct UpSystem {
    child: Child,
    pub base_url: String,
    pub http: reqwest::Client,
    data_dir: tempfile::TempDir,
}

impl UpSystem {
    /// Starts `verdict up` on a free port with rate limits out of the way and waits
    /// until it is ready and every service answers. `VERDICT_LOG` is passed through (default `warn`).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&UNLIMITED_RATES).await
    }

    /// As [`UpSystem::start`], with these settings in the environment (and the default
    /// rate limits unless they set others).
    pub async fn start_with(settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let port = free_port();
        let mut command = Command::new(verdict_binary()?);
        command
            .arg("up")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .env_remove("NATS_URL")
            .env("VERDICT_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("VERDICT_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env(
                "VERDICT_LOG",
                std::env::var("VERDICT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().context("starting verdict up")?;
        let system = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()?,
            data_dir,
        };
        system.wait_ready().await?;
        Ok(system)
    }

    /// Waits until the gateway is ready and every service answers (each reports its
    /// version): `/readyz` alone does not wait for the services.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let ready = self.http.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) && self.every_service_answers().await {
                return Ok(());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "verdict up not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn every_service_answers(&self) -> bool {
        let Ok(response) = self.http.get(self.url("/api/v1/version")).send().await else {
            return false;
        };
        let versions: Value = response.json().await.unwrap_or_default();
        versions["services"]
            .as_object()
            .is_some_and(|services| services.values().all(Value::is_string))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Signs in as the administrator, creates a project and a reporter API token;
    /// returns `(project id, token)`.
    pub async fn reporter(&self) -> anyhow::Result<(String, String)> {
        let login: Value = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let admin = login["access_token"].as_str().context("access token")?;
        let project: Value = self
            .http
            .post(self.url("/api/v1/projects"))
            .bearer_auth(admin)
            .json(&json!({ "slug": "bench", "name": "bench" }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let project = project["id"].as_str().context("project id")?.to_owned();
        let token: Value = self
            .http
            .post(self.url(&format!("/api/v1/projects/{project}/tokens")))
            .bearer_auth(admin)
            .json(&json!({ "name": "bench", "role": "reporter" }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["token"].as_str().context("token")?.to_owned();
        Ok((project, token))
    }

    /// How often the runs service's ingest consumer was handed a message it had been
    /// handed before (JetStream delivers again what is not acknowledged in time).
    pub async fn ingest_redeliveries(&self) -> anyhow::Result<u64> {
        let path = self
            .data_dir
            .path()
            .join("nats")
            .join(verdict_cli::up::ADMIN_URL_FILE);
        let url = std::fs::read_to_string(path)?;
        let settings = verdict_bus::BusSettings::new(url.trim(), "verdict-bench");
        let client = verdict_bus::connect(&settings).await?;
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            async_nats::jetstream::new(client)
                .get_consumer_from_stream(
                    verdict_contracts::streams::INGEST_CONSUMER,
                    verdict_contracts::streams::INGEST.name,
                )
                .await?;
        let delivered = consumer.info().await?.delivered;
        Ok(delivered
            .consumer_sequence
            .saturating_sub(delivered.stream_sequence))
    }

    /// SIGTERM, then waits for the process (and so its nats-server) to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}
