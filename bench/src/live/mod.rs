//! Live fan-out: N WebSocket viewers of one run while results are posted at a steady
//! rate, first through a Verdict gateway (its own `verdict serve gateway` process, so its
//! memory and CPU can be read), then, as the reference, through nats-server's own
//! WebSocket listener serving the same frames (bridged from the bus unchanged), and
//! last through the floor (`floor.rs`): a process that only writes each frame to every
//! socket, the least any server could do on this machine with these viewers.

mod floor;
mod socket;
mod viewers;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use verdict_testkit::ports::free_port;
use verdict_testkit::TestApp;

use crate::fixture::Reporting;
use crate::process::{cpu_seconds, memory_kib, verdict_binary};
use crate::stats::{ms, Summary};
pub use floor::serve as serve_floor;
use viewers::{Tally, Viewer};

pub struct Plan {
    pub viewers: usize,
    /// Results posted per second.
    pub rate: usize,
    pub batch: usize,
    pub seconds: u64,
    /// One viewer in this many times its frames.
    pub sample_every: usize,
    /// Viewers of the gateway ask for `encoding=deflate`.
    pub deflate: bool,
    /// Further viewers of the gateway that subscribe and never read again.
    pub stalled: usize,
}

/// What one phase measured.
struct Figures {
    name: &'static str,
    ready: u64,
    kib_per_viewer: f64,
    frames_per_second: f64,
    cores: f64,
    latency: Option<Summary>,
    lagged: u64,
    /// How much the server's resident memory grew while results were posted.
    growth_kib: u64,
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    raise_fd_limit()?;
    let unlimited = "1000000";
    let Reporting {
        app,
        admin,
        project,
        reporter,
    } = Reporting::start().await;

    let gateway_port = free_port();
    let gateway_admin_port = free_port();
    let mut gateway = Command::new(verdict_binary()?)
        .args(["serve", "gateway"])
        .env("NATS_URL", app.nats.url())
        .env("VERDICT_LISTEN", format!("127.0.0.1:{gateway_port}"))
        .env(
            "VERDICT_ADMIN_LISTEN",
            format!("127.0.0.1:{gateway_admin_port}"),
        )
        .env("VERDICT_RATE_READ", "1000000/s")
        .env("VERDICT_LIVE_SOCKETS_PER_PRINCIPAL", unlimited)
        .env("VERDICT_LIVE_SOCKETS_PER_IP", unlimited)
        .env("VERDICT_MAX_CONNECTIONS", unlimited)
        .env("VERDICT_MAX_CONNECTIONS_PER_IP", unlimited)
        .env("VERDICT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting verdict serve gateway")?;
    let gateway_url = format!("http://127.0.0.1:{gateway_port}");
    wait_ready(&app, &gateway_url).await?;
    let gateway_pid = gateway.id().context("gateway exited")?;

    let mut reference = NatsReference::start().await?;
    let reference_pid = reference.child.id().context("nats-server exited")?;

    let load = Load {
        app: &app,
        reporter: &reporter,
        project: &project,
        plan: &plan,
    };
    let ours = {
        let run = load.create_run().await?;
        let channel = format!("run:{run}");
        let (address, admin) = (format!("127.0.0.1:{gateway_port}"), admin.clone());
        let name = if plan.deflate {
            "Verdict gateway, deflate"
        } else {
            "Verdict gateway"
        };
        let deflate = plan.deflate;
        let mut stalled = JoinSet::new();
        for _ in 0..plan.stalled {
            let (address, admin, channel) = (address.clone(), admin.clone(), channel.clone());
            stalled.spawn(Viewer::stall(address, admin, channel, deflate));
        }
        let (figures, _viewers) = load
            .phase(name, gateway_pid, &run, move |viewer| {
                viewer.verdict(address.clone(), admin.clone(), channel.clone(), deflate)
            })
            .await?;
        if plan.stalled > 0 {
            let metrics_url = format!("http://127.0.0.1:{gateway_admin_port}/metrics");
            report_stalled(&app, &metrics_url, plan.stalled).await?;
        }
        figures
    };
    let theirs = {
        let run = load.create_run().await?;
        let subject = verdict_contracts::live::Channel::Run(run.parse()?).view_subject();
        reference.bridge(&app, &subject).await?;
        let address = reference.websocket_address();
        load.phase(
            "nats-server WebSocket",
            reference_pid,
            &run,
            move |viewer| viewer.nats(address.clone(), subject.clone()),
        )
        .await?
        .0
    };
    let floor = {
        let run = load.create_run().await?;
        let subject = verdict_contracts::live::Channel::Run(run.parse()?).view_subject();
        let mut floor = Floor::start(&app, &subject, plan.deflate).await?;
        let floor_pid = floor.child.id().context("the floor exited")?;
        let (address, deflate) = (floor.address.clone(), plan.deflate);
        let (figures, _viewers) = load
            .phase("floor: bare writes", floor_pid, &run, move |viewer| {
                viewer.verdict(address.clone(), String::new(), String::new(), deflate)
            })
            .await?;
        floor.child.kill().await.ok();
        figures
    };
    report(&plan, &[ours, theirs, floor]);
    gateway.kill().await.ok();
    reference.child.kill().await.ok();
    Ok(())
}

struct Load<'a> {
    app: &'a TestApp,
    reporter: &'a str,
    project: &'a str,
    plan: &'a Plan,
}

impl Load<'_> {
    async fn create_run(&self) -> anyhow::Result<String> {
        let created: Value = self
            .app
            .post(
                self.reporter,
                &format!("/api/v1/projects/{}/runs", self.project),
                json!({ "name": "live" }),
            )
            .await
            .json()
            .await?;
        Ok(created["id"].as_str().context("run id")?.to_owned())
    }

    /// Opens the viewers, reads the server's memory before and after, then posts for
    /// the planned time and counts what the viewers received.
    async fn phase<F, Fut>(
        &self,
        name: &'static str,
        server_pid: u32,
        run: &str,
        watch: F,
    ) -> anyhow::Result<(Figures, JoinSet<anyhow::Result<()>>)>
    where
        F: Fn(Viewer) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let plan = self.plan;
        let batches = (plan.rate * plan.seconds as usize).div_ceil(plan.batch);
        let acks: Arc<Vec<OnceLock<Instant>>> =
            Arc::new((0..batches).map(|_| OnceLock::new()).collect());
        let tally = Arc::new(Tally::default());
        let before = memory_kib(server_pid, "VmRSS")?;
        let mut viewers = JoinSet::new();
        for index in 0..plan.viewers {
            viewers.spawn(watch(Viewer {
                tally: tally.clone(),
                acks: acks.clone(),
                sample: index % plan.sample_every == 0,
            }));
            // Connecting in waves keeps the listen backlog from overflowing.
            if index % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let started = Instant::now();
        while tally.ready.load(Ordering::Relaxed) < plan.viewers as u64
            && started.elapsed() < Duration::from_secs(120)
        {
            if let Some(Ok(Err(err))) = viewers.try_join_next() {
                eprintln!("{name}: a viewer failed: {err:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready = tally.ready.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = memory_kib(server_pid, "VmRSS")?;
        let kib_per_viewer = after.saturating_sub(before) as f64 / ready.max(1) as f64;

        let rss_before_posting = memory_kib(server_pid, "VmRSS")?;
        let cpu_before = cpu_seconds(server_pid)?;
        let frames_before = tally.frames.load(Ordering::Relaxed);
        let window = Instant::now();
        self.post(run, &acks).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let elapsed = window.elapsed().as_secs_f64();
        let frames = tally.frames.load(Ordering::Relaxed) - frames_before;
        let cpu = cpu_seconds(server_pid)? - cpu_before;
        let growth_kib = memory_kib(server_pid, "VmRSS")?.saturating_sub(rss_before_posting);
        let latencies = tally.latencies();
        let figures = Figures {
            name,
            ready,
            kib_per_viewer,
            frames_per_second: frames as f64 / elapsed,
            cores: cpu / elapsed,
            latency: (!latencies.is_empty()).then(|| Summary::of(latencies)),
            lagged: tally.lagged.load(Ordering::Relaxed),
            growth_kib,
        };
        Ok((figures, viewers))
    }

    /// Posts batches named `b<batch>-<n>` at the planned rate, noting each 202.
    async fn post(&self, run: &str, acks: &Arc<Vec<OnceLock<Instant>>>) -> anyhow::Result<()> {
        let plan = self.plan;
        let every = Duration::from_secs_f64(plan.batch as f64 / plan.rate as f64);
        let mut tick = tokio::time::interval(every);
        let mut posts = JoinSet::new();
        for batch in 0..acks.len() {
            tick.tick().await;
            let results: Vec<Value> = (0..plan.batch)
                .map(|n| json!({ "suite": "live", "name": format!("b{batch}-{n}"), "status": "passed" }))
                .collect();
            let request = self
                .app
                .http
                .post(self.app.url(&format!("/api/v1/runs/{run}/results")))
                .bearer_auth(self.reporter)
                .json(&json!({ "results": results }));
            let acks = acks.clone();
            posts.spawn(async move {
                let response = request.send().await?;
                ensure!(
                    response.status() == 202,
                    "post answered {}",
                    response.status()
                );
                let _ = acks[batch].set(Instant::now());
                Ok(())
            });
        }
        while let Some(posted) = posts.join_next().await {
            posted??;
        }
        Ok(())
    }
}

/// A nats-server with a WebSocket listener, fed the run's frames from the bus.
struct NatsReference {
    child: Child,
    client_port: u16,
    websocket_port: u16,
    _dir: tempfile::TempDir,
}

impl NatsReference {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (client_port, websocket_port) = (free_port(), free_port());
        let config = dir.path().join("reference.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{client_port}\nmax_payload: 8MB\nwebsocket {{\n  listen: \"127.0.0.1:{websocket_port}\"\n  no_tls: true\n}}\n"
            ),
        )?;
        let tools = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/bin"));
        let binary = verdict_bus::server::find_binary(&[tools])?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let reference = Self {
            child,
            client_port,
            websocket_port,
            _dir: dir,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", websocket_port))
            .await
            .is_err()
        {
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "reference nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(reference)
    }

    fn websocket_address(&self) -> String {
        format!("127.0.0.1:{}", self.websocket_port)
    }

    /// Republishes every frame of `subject` from the bus to the reference server,
    /// headers and bytes unchanged.
    async fn bridge(&self, app: &TestApp, subject: &str) -> anyhow::Result<()> {
        let source = app.nats.client().await;
        let target = async_nats::connect(format!("127.0.0.1:{}", self.client_port)).await?;
        let mut frames = source.subscribe(subject.to_owned()).await?;
        source.flush().await?;
        tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let headers = frame.headers.unwrap_or_default();
                if target
                    .publish_with_headers(frame.subject, headers, frame.payload)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(())
    }
}

/// The floor server (`verdict-bench live-floor`) as a child process.
struct Floor {
    child: Child,
    address: String,
}

impl Floor {
    async fn start(app: &TestApp, subject: &str, deflate: bool) -> anyhow::Result<Self> {
        let port = free_port();
        let nats = app.nats.url();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["live-floor", "--nats", &nats, "--subject", subject])
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if deflate {
            command.arg("--deflate");
        }
        let child = command.spawn().context("starting the floor")?;
        let address = format!("127.0.0.1:{port}");
        let started = Instant::now();
        // The floor listens once subscribed; this probe is a connection it drops.
        while tokio::net::TcpStream::connect(&address).await.is_err() {
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "the floor did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { child, address })
    }
}

/// What became of the viewers that stopped reading, as the gateway's metrics tell.
async fn report_stalled(app: &TestApp, metrics_url: &str, stalled: usize) -> anyhow::Result<()> {
    let metrics = app.http.get(metrics_url).send().await?.text().await?;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    eprintln!(
        "{stalled} stalled viewers; the gateway told {} sockets `lagged`; {} sockets open after posting.",
        value("verdict_live_lagged_total"),
        value("verdict_live_sockets"),
    );
    Ok(())
}

async fn wait_ready(app: &TestApp, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let ready = app
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return Ok(());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway process never got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ten thousand viewers and their server ends need more than the default 1024 files.
pub(crate) fn raise_fd_limit() -> anyhow::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed by pointer.
    unsafe {
        ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0,
            "getrlimit failed"
        );
        limit.rlim_cur = limit.rlim_max;
        ensure!(
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0,
            "setrlimit failed"
        );
    }
    Ok(())
}

fn report(plan: &Plan, phases: &[Figures]) {
    println!(
        "{} viewers of one run; {} results/s posted in batches of {} for {} s; one viewer in {} timed.\n",
        plan.viewers, plan.rate, plan.batch, plan.seconds, plan.sample_every
    );
    println!("| server | viewers ready | memory per viewer | frames delivered/s | server cores used | frames/s per core | 202 → viewer p50 | p99 | max | lagged | memory growth while posting |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for phase in phases {
        let per_core = phase.frames_per_second / phase.cores.max(0.01);
        let (p50, p99, max) = match &phase.latency {
            Some(summary) => (ms(summary.p50), ms(summary.p99), ms(summary.max)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {:.1} KiB | {:.0} | {:.2} | {:.0} | {} | {} | {} | {} | {:.1} MiB |",
            phase.name,
            phase.ready,
            phase.kib_per_viewer,
            phase.frames_per_second,
            phase.cores,
            per_core,
            p50,
            p99,
            max,
            phase.lagged,
            phase.growth_kib as f64 / 1024.0
        );
    }
    if let [ours, theirs, floor] = phases {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let per_core = |f: &Figures| f.frames_per_second / f.cores.max(0.01);
        let p99 = |f: &Figures| f.latency.as_ref().map_or(f64::NAN, |s| s.p99.as_secs_f64());
        println!(
            "\nVerdict / nats-server: memory per viewer {:.2}x, frames/s per core {:.2}x, p99 {:.2}x.",
            ratio(ours.kib_per_viewer, theirs.kib_per_viewer),
            ratio(per_core(ours), per_core(theirs)),
            ratio(p99(ours), p99(theirs)),
        );
        println!(
            "Verdict / floor: frames/s per core {:.2}x, p99 {:.2}x.",
            ratio(per_core(ours), per_core(floor)),
            ratio(p99(ours), p99(floor)),
        );
    }
}
