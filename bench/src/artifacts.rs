//! Artifact throughput and the artifacts service's memory.
//!
//! * Local-disk store: a 256 MiB upload and download through the gateway (which
//!   proxies the artifacts service's signed `/blobs` URLs) against `cp` of the same file
//!   on the same disk.
//! * S3 (s3s-fs on loopback): the same file through the presigned URLs the API hands out
//!   against the plain SDK (`put_object` / `get_object`) on the same server.
//! * Peak RSS (`VmHWM`) of the artifacts service, run as its own `verdict serve
//!   artifacts` process, across a 1 GiB upload, its verification and its download.
//!
//! The artifacts service always runs as a separate process here, so its memory and CPU
//! are its own; the gateway, the other services and the client share the bench process.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use verdict_artifacts::aws_sdk_s3;
use verdict_contracts::ServiceName;
use verdict_testkit::{BlobStoreKind, Component, TestApp};

const MIB: u64 = 1 << 20;

pub async fn run(size_mib: u64, rss_mib: u64) -> anyhow::Result<()> {
    let work = tempfile::tempdir_in(std::env::current_dir()?.join("target"))
        .or_else(|_| tempfile::tempdir())?;
    let file = work.path().join("artifact.bin");
    let sha256 = write_file(&file, size_mib * MIB).await?;
    println!("## Artifacts: throughput and memory\n");
    println!(
        "{size_mib} MiB file of pseudo-random bytes in `{}`; the artifacts service runs as a separate `verdict serve artifacts` process.\n",
        work.path().display()
    );
    println!("| path | MiB/s | seconds | ratio to baseline |");
    println!("| --- | --- | --- | --- |");

    // Baselines: cp on the same disk, into the page cache, and synced to the disk (the
    // disk store syncs every upload before it answers).
    let copy = work.path().join("copy.bin");
    let started = Instant::now();
    let status = std::process::Command::new("cp")
        .arg(&file)
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "cp failed");
    let cp_cached = started.elapsed();
    std::fs::remove_file(&copy)?;
    let started = Instant::now();
    let status = std::process::Command::new("cp")
        .arg(&file)
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "cp failed");
    let status = std::process::Command::new("sync").arg(&copy).status()?;
    ensure!(status.success(), "sync failed");
    let cp = started.elapsed();
    std::fs::remove_file(&copy)?;
    row("`cp` (same disk, page cache)", size_mib, cp_cached, None);
    row("`cp` + `sync` of the copy (same disk)", size_mib, cp, None);

    // Local-disk store.
    {
        let bench = Bench::start(BlobStoreKind::Disk, &[]).await?;
        let (upload, complete, download) = bench.round_trip(&file, &sha256, &work).await?;
        row(
            "disk store: upload through the gateway (synced)",
            size_mib,
            upload,
            Some(cp),
        );
        row(
            "disk store: complete (digest recorded during the upload)",
            size_mib,
            complete,
            None,
        );
        row(
            "disk store: download through the gateway",
            size_mib,
            download,
            Some(cp_cached),
        );
        bench.stop().await;
    }

    // S3: presigned URLs against the plain SDK on the same server.
    {
        let bench = Bench::start(BlobStoreKind::S3, &[]).await?;
        let (upload, complete, download) = bench.round_trip(&file, &sha256, &work).await?;
        let settings = bench.s3_settings()?;
        let client = verdict_artifacts::s3_client(&settings);
        let started = Instant::now();
        client
            .put_object()
            .bucket(&settings.bucket)
            .key("sdk-baseline")
            .body(aws_sdk_s3::primitives::ByteStream::from_path(&file).await?)
            .send()
            .await
            .map_err(|err| {
                anyhow!(
                    "SDK put_object: {}",
                    aws_sdk_s3::error::DisplayErrorContext(err)
                )
            })?;
        let sdk_put = started.elapsed();
        let started = Instant::now();
        let mut object = client
            .get_object()
            .bucket(&settings.bucket)
            .key("sdk-baseline")
            .send()
            .await
            .map_err(|err| {
                anyhow!(
                    "SDK get_object: {}",
                    aws_sdk_s3::error::DisplayErrorContext(err)
                )
            })?;
        let target = work.path().join("sdk-download.bin");
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(&target).await?);
        while let Some(chunk) = object.body.try_next().await? {
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        let sdk_get = started.elapsed();
        std::fs::remove_file(&target)?;
        row("S3: plain SDK put_object", size_mib, sdk_put, None);
        row(
            "S3: presigned multipart upload (API URLs, 64 MiB parts)",
            size_mib,
            upload,
            Some(sdk_put),
        );
        row(
            "S3: complete (assemble + sha256 read back)",
            size_mib,
            complete,
            None,
        );
        row("S3: plain SDK get_object", size_mib, sdk_get, None);
        row(
            "S3: presigned GET via /download",
            size_mib,
            download,
            Some(sdk_get),
        );
        bench.stop().await;
    }
    std::fs::remove_file(&file)?;

    // Peak memory of the artifacts service across a large upload.
    let big = work.path().join("big.bin");
    let big_sha = write_file(&big, rss_mib * MIB).await?;
    let bench = Bench::start(
        BlobStoreKind::Disk,
        &[("VERDICT_ARTIFACTS_MAX_SIZE", &(rss_mib * MIB).to_string())],
    )
    .await?;
    let before = bench.peak_rss_kib()?;
    let (upload, complete, download) = bench.round_trip(&big, &big_sha, &work).await?;
    let after = bench.peak_rss_kib()?;
    bench.stop().await;
    println!(
        "\nPeak RSS (`VmHWM`) of the artifacts service process: {:.1} MiB after start, {:.1} MiB after a {rss_mib} MiB upload ({:.1} s), its verification ({:.1} s) and its download ({:.1} s) through the local-disk store.",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        upload.as_secs_f64(),
        complete.as_secs_f64(),
        download.as_secs_f64(),
    );
    Ok(())
}

/// One table row; the ratio is the baseline's time over this time (1.00x: as fast).
fn row(path: &str, size_mib: u64, took: Duration, baseline: Option<Duration>) {
    let seconds = took.as_secs_f64();
    if path.contains("complete") {
        println!("| {path} | | {seconds:.2} | |");
        return;
    }
    let ratio = baseline
        .map(|base| format!("{:.2}x", base.as_secs_f64() / seconds))
        .unwrap_or_else(|| "baseline".to_owned());
    println!(
        "| {path} | {:.0} | {seconds:.2} | {ratio} |",
        size_mib as f64 / seconds
    );
}

/// Writes `size` pseudo-random bytes (xorshift) and answers their SHA-256.
async fn write_file(path: &Path, size: u64) -> anyhow::Result<String> {
    let mut out =
        tokio::io::BufWriter::with_capacity(MIB as usize, tokio::fs::File::create(path).await?);
    let mut hasher = Sha256::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let n = left.min(MIB) as usize;
        hasher.update(&chunk[..n]);
        out.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    out.flush().await?;
    out.get_ref().sync_all().await?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

struct Bench {
    app: TestApp,
    token: String,
    run: String,
    child: Child,
}

impl Bench {
    /// The whole system in-process, except the artifacts service, which runs as its own
    /// `verdict serve artifacts` process against the same NATS and data directory.
    async fn start(store: BlobStoreKind, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut settings = crate::fixture::UNLIMITED_RATES.to_vec();
        settings.extend_from_slice(overrides);
        let mut app = TestApp::spawn_with_store(store, &settings).await;
        app.stop(Component::Service(ServiceName::Artifacts)).await;
        let mut command = Command::new(crate::process::verdict_binary()?);
        command
            .args(["serve", "artifacts"])
            .env("NATS_URL", app.nats.url())
            .env("VERDICT_DATA_DIR", app.data_dir())
            .env("VERDICT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in overrides {
            command.env(name, value);
        }
        if let Some(s3) = &app.s3 {
            command.envs(s3.settings());
        }
        let child = command
            .spawn()
            .context("starting verdict serve artifacts")?;
        app.wait_for_status("/readyz", 200, Duration::from_secs(30))
            .await;
        let admin = app.admin_token().await;
        let project = app.project(&admin, "bench").await;
        let created: Value = app
            .post(
                &admin,
                &format!("/api/v1/projects/{project}/runs"),
                json!({ "name": "bench" }),
            )
            .await
            .json()
            .await?;
        let run = created["id"].as_str().context("run id")?.to_owned();
        Ok(Self {
            app,
            token: admin,
            run,
            child,
        })
    }

    fn s3_settings(&self) -> anyhow::Result<verdict_artifacts::S3Settings> {
        let s3 = self.app.s3.as_ref().context("no S3 server")?;
        let env = verdict_settings::Env::from_pairs(s3.settings());
        match verdict_artifacts::Settings::from_env(&env)?.blobs {
            verdict_artifacts::BlobSettings::S3(settings) => Ok(settings),
            verdict_artifacts::BlobSettings::Disk(_) => Err(anyhow!("not S3 settings")),
        }
    }

    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the artifacts process ended")?;
        crate::process::memory_kib(pid, "VmHWM")
    }

    /// Declare, upload (streamed from the file), complete, download (streamed to a file);
    /// answers the three durations and checks the download's bytes.
    async fn round_trip(
        &self,
        file: &Path,
        sha256: &str,
        work: &tempfile::TempDir,
    ) -> anyhow::Result<(Duration, Duration, Duration)> {
        let size = tokio::fs::metadata(file).await?.len();
        let declared = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/runs/{}/artifacts", self.run),
                json!({ "name": "bench.bin", "content_type": "application/octet-stream", "size": size, "sha256": sha256 }),
            )
            .await;
        ensure!(
            declared.status() == 201,
            "declare: {}",
            declared.text().await?
        );
        let declared: Value = declared.json().await?;
        let id = declared["id"].as_str().context("id")?.to_owned();
        let target = &declared["upload"];
        let http = reqwest::Client::new();

        let started = Instant::now();
        let parts: Vec<(String, u64)> = match target.get("parts").and_then(Value::as_array) {
            Some(parts) => parts
                .iter()
                .map(|part| {
                    (
                        part["url"].as_str().unwrap_or_default().to_owned(),
                        part["size"].as_u64().unwrap_or_default(),
                    )
                })
                .collect(),
            None => vec![(target["url"].as_str().unwrap_or_default().to_owned(), size)],
        };
        let mut offset = 0;
        for (url, part_size) in parts {
            let mut source = tokio::fs::File::open(file).await?;
            source.seek(std::io::SeekFrom::Start(offset)).await?;
            let body =
                tokio_util::io::ReaderStream::with_capacity(source.take(part_size), 256 * 1024);
            let mut request = http
                .put(&url)
                .header("content-length", part_size)
                .body(reqwest::Body::wrap_stream(body));
            for (name, value) in target["headers"].as_object().context("headers")? {
                request = request.header(name, value.as_str().unwrap_or_default());
            }
            let response = request.send().await?;
            ensure!(
                response.status() == 200,
                "upload: {} {}",
                response.status(),
                response.text().await?
            );
            offset += part_size;
        }
        let upload = started.elapsed();

        let started = Instant::now();
        let completed = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/artifacts/{id}/complete"),
                json!({}),
            )
            .await;
        ensure!(
            completed.status() == 200,
            "complete: {}",
            completed.text().await?
        );
        let complete = started.elapsed();

        let started = Instant::now();
        let response = http
            .get(self.app.url(&format!("/api/v1/artifacts/{id}/download")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        ensure!(response.status() == 200, "download: {}", response.status());
        let copy = work.path().join("download.bin");
        let mut out = tokio::io::BufWriter::with_capacity(
            MIB as usize,
            tokio::fs::File::create(&copy).await?,
        );
        let mut stream = response.bytes_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        let download = started.elapsed();
        let got: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        ensure!(got == sha256, "the download differs from the upload");
        tokio::fs::remove_file(&copy).await?;
        Ok((upload, complete, download))
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM for a clean stop; kill_on_drop covers the rest.
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
