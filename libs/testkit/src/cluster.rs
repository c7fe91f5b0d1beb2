//! The scaled deployment on loopback, every part its own process: three nats-server
//! nodes in one JetStream cluster (`deploy/nats/nats.conf`, each process with its own
//! NATS user, streams R3), every service as `verdict serve <service>`, two gateways, and
//! haproxy (`deploy/haproxy.cfg`) in front of them. The deployment's own configuration
//! files are what runs here, so these tests check them too.
//!
//! ```ignore
//! let cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
//! let response = cluster.http.get(cluster.url("/readyz")).send().await?;
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use verdict_contracts::ServiceName;

use crate::app::{ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::nats::workspace_root;
use crate::ports::free_port;

/// How long any one part may take to start or stop before the test fails.
const PART_DEADLINE: Duration = Duration::from_secs(30);
/// haproxy's `inter` in deploy/haproxy.cfg, with a margin.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(2200);

/// One nats-server node of the cluster.
struct NatsNode {
    name: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    process: Option<Process>,
}

/// A gateway: its fixed port (haproxy's configuration names it), its admin listener's
/// port and its process.
struct GatewayNode {
    port: u16,
    admin_port: u16,
    process: Option<Process>,
}

/// A child process whose output goes to a log file in the cluster's directory.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    /// Where this process's own output starts in the log (a restart appends).
    log_start: u64,
}

impl Process {
    fn spawn(mut command: Command, name: &str, logs: &Path) -> Self {
        let path = logs.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("log file");
        let log_start = log.metadata().map(|meta| meta.len()).unwrap_or(0);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Self {
            name: name.to_owned(),
            child,
            log: path,
            log_start,
        }
    }

    /// Waits until this process has logged a line containing `needle`.
    async fn wait_for_line(&mut self, needle: &str) {
        let deadline = Instant::now() + PART_DEADLINE;
        loop {
            let log = std::fs::read(&self.log).unwrap_or_default();
            let own =
                String::from_utf8_lossy(log.get(self.log_start as usize..).unwrap_or_default());
            if own.lines().any(|line| line.contains(needle)) {
                return;
            }
            if let Some(status) = self.exited() {
                panic!("{} exited with {status}: {own}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log `{needle}` within {PART_DEADLINE:?}; see {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = tokio::time::timeout(PART_DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop within {PART_DEADLINE:?}", self.name))
            .expect("wait for the process");
        assert!(status.success(), "{} stopped with {status}", self.name);
    }

    /// SIGKILL, as a crash would.
    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// The cluster. Every process dies with it (and with the test process).
pub struct TestCluster {
    pub http: reqwest::Client,
    dir: Option<TempDir>,
    verdict: PathBuf,
    nats: Vec<NatsNode>,
    services: HashMap<ServiceName, Process>,
    /// Each service's admin listener port, kept across restarts.
    service_admin_ports: HashMap<ServiceName, u16>,
    gateways: Vec<GatewayNode>,
    haproxy: Option<Process>,
    lb_port: u16,
}

impl TestCluster {
    /// Starts every part, each running `verdict` (the path of the `verdict` command to
    /// run, e.g. `env!("CARGO_BIN_EXE_verdict-cluster-node")`), and returns once haproxy
    /// answers `/readyz` with 200.
    pub async fn start(verdict: impl Into<PathBuf>) -> Self {
        verdict_telemetry::install_tls_provider();
        let verdict = verdict.into();
        let dir = tempfile::tempdir().expect("cluster directory");
        std::fs::create_dir_all(dir.path().join("logs")).expect("log directory");
        let nats = (1..=3)
            .map(|n| NatsNode {
                name: format!("nats-{n}"),
                client_port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                process: None,
            })
            .collect();
        let gateways = (0..2)
            .map(|_| GatewayNode {
                port: free_port(),
                admin_port: free_port(),
                process: None,
            })
            .collect();
        let mut cluster = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            dir: Some(dir),
            verdict,
            nats,
            services: HashMap::new(),
            service_admin_ports: ServiceName::ALL
                .iter()
                .map(|service| (*service, free_port()))
                .collect(),
            gateways,
            haproxy: None,
            lb_port: 0,
        };
        for node in 0..3 {
            cluster.start_nats(node);
        }
        for node in 0..3 {
            cluster.wait_for_nats(node).await;
        }
        for service in ServiceName::ALL {
            cluster.start_service(service).await;
        }
        for gateway in 0..2 {
            cluster.start_gateway(gateway).await;
        }
        cluster.start_haproxy().await;
        cluster
            .wait_for_status(&cluster.url("/readyz"), 200, PART_DEADLINE)
            .await;
        cluster
    }

    /// haproxy's address: where clients (and WebSocket viewers) connect.
    pub fn lb_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb_port)
    }

    /// `path` through haproxy.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.lb_url())
    }

    /// Each gateway's own address, in haproxy's order (gateway-1, gateway-2).
    pub fn gateway_urls(&self) -> Vec<String> {
        self.gateways
            .iter()
            .map(|gateway| format!("http://127.0.0.1:{}", gateway.port))
            .collect()
    }

    /// The metrics URL of every Verdict process's admin listener, by part name (`auth`,
    /// …, `gateway-1`, `gateway-2`).
    pub fn metrics_urls(&self) -> Vec<(String, String)> {
        let services = ServiceName::ALL.iter().map(|service| {
            (
                service.as_str().to_owned(),
                self.service_admin_ports[service],
            )
        });
        let gateways = self
            .gateways
            .iter()
            .enumerate()
            .map(|(index, gateway)| (format!("gateway-{}", index + 1), gateway.admin_port));
        services
            .chain(gateways)
            .map(|(name, port)| (name, format!("http://127.0.0.1:{port}/metrics")))
            .collect()
    }

    /// Where every process writes its log.
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }

    /// The lines of the nats-server logs that report a process using a subject its NATS
    /// user may not.
    pub fn permission_violations(&self) -> Vec<String> {
        self.nats
            .iter()
            .flat_map(|node| {
                std::fs::read_to_string(self.log_dir().join(format!("{}.log", node.name)))
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains("Permissions Violation"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// A NATS client as the operator (`admin` user), with every node as a seed.
    pub async fn nats_client(&self) -> async_nats::Client {
        let seeds: Vec<String> = self
            .nats
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect();
        async_nats::ConnectOptions::with_user_and_password("admin".into(), password("admin"))
            .connect(seeds)
            .await
            .expect("connect to the cluster")
    }

    /// The node (0, 1 or 2) that leads `stream` now.
    pub async fn stream_leader(&self, stream: &str) -> usize {
        let js = async_nats::jetstream::new(self.nats_client().await);
        let info = js
            .get_stream(stream)
            .await
            .expect("stream")
            .info()
            .await
            .expect("stream info")
            .clone();
        let leader = info.cluster.and_then(|c| c.leader).expect("a leader");
        self.nats
            .iter()
            .position(|node| node.name == leader)
            .expect("the leader is one of ours")
    }

    /// Has the leader of `stream`'s consumer `consumer` step down, as an operator or a
    /// node's lame-duck mode would; returns once another node leads it.
    pub async fn step_down_consumer(&self, stream: &str, consumer: &str) {
        let js = async_nats::jetstream::new(self.nats_client().await);
        // None while the consumer has no leader (its info requests time out then).
        let leader = |js: async_nats::jetstream::Context| async move {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                js.get_consumer_from_stream(consumer, stream).await.ok()?;
            let info = consumer.info().await.ok()?.clone();
            info.cluster.and_then(|cluster| cluster.leader)
        };
        let before = leader(js.clone()).await.expect("a consumer leader");
        let answer: serde_json::Value = js
            .request(format!("CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}"), &())
            .await
            .expect("stepdown answered");
        assert_eq!(answer["success"], true, "stepdown refused: {answer}");
        let deadline = Instant::now() + PART_DEADLINE;
        loop {
            match leader(js.clone()).await {
                Some(now) if now != before => return,
                _ => {
                    assert!(Instant::now() < deadline, "{before} still leads {consumer}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The node (0, 1 or 2) the process whose NATS connection is called `name` (e.g.
    /// `verdict-runs`) is connected to now.
    pub async fn node_serving(&self, name: &str) -> usize {
        for (index, node) in self.nats.iter().enumerate() {
            if node.process.is_none() {
                continue;
            }
            let url = format!("http://127.0.0.1:{}/connz?limit=1024", node.monitor_port);
            let connz: serde_json::Value = self
                .http
                .get(&url)
                .send()
                .await
                .and_then(|response| response.error_for_status())
                .expect("nats monitoring")
                .json()
                .await
                .expect("connz document");
            let connections = connz["connections"].as_array().cloned().unwrap_or_default();
            if connections.iter().any(|c| c["name"] == name) {
                return index;
            }
        }
        panic!("no node serves a connection named {name}")
    }

    /// Kills nats-server node `node` with SIGKILL.
    pub async fn kill_nats(&mut self, node: usize) {
        let process = self.nats[node].process.take().expect("node is running");
        process.kill().await;
    }

    /// Stops `service` (SIGTERM, graceful), starts it again and waits until it answers,
    /// every gateway is ready again and haproxy has had a health check to see it (the
    /// upgrade procedure of deploy/README.md).
    pub async fn restart_service(&mut self, service: ServiceName) {
        let process = self.services.remove(&service).expect("service is running");
        process.stop().await;
        self.start_service(service).await;
        for url in self.gateway_urls() {
            self.wait_for_status(&format!("{url}/readyz"), 200, PART_DEADLINE)
                .await;
        }
        tokio::time::sleep(HEALTH_CHECK_INTERVAL).await;
    }

    /// Stops `service` gracefully (SIGTERM) and leaves it stopped.
    pub async fn stop_service(&mut self, service: ServiceName) {
        let process = self.services.remove(&service).expect("service is running");
        process.stop().await;
    }

    /// Upgrades gateway `index` as an operator would: drained in haproxy, stopped
    /// gracefully, started, and put back once haproxy sees it healthy.
    pub async fn restart_gateway(&mut self, index: usize) {
        let server = format!("gateways/gateway-{}", index + 1);
        self.haproxy_command(&format!("set server {server} state drain"))
            .await;
        self.wait_for_idle_gateway(index).await;
        let process = self.gateways[index]
            .process
            .take()
            .expect("gateway is running");
        process.stop().await;
        self.start_gateway(index).await;
        self.haproxy_command(&format!("set server {server} state ready"))
            .await;
        self.wait_for_haproxy_status(index, "UP").await;
    }

    /// Kills gateway `index` with SIGKILL; haproxy is not told.
    pub async fn kill_gateway(&mut self, index: usize) {
        let process = self.gateways[index]
            .process
            .take()
            .expect("gateway is running");
        process.kill().await;
    }

    /// Polls `url` until it answers `status`, or panics after `within`.
    pub async fn wait_for_status(&self, url: &str, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.http.get(url).send().await;
            if matches!(&answer, Ok(response) if response.status().as_u16() == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GET {url} does not answer {status} after {within:?} ({answer:?}); logs in {}",
                self.log_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("cluster directory").path()
    }

    fn nats_url(&self, user: &str) -> String {
        self.nats
            .iter()
            .map(|node| {
                format!(
                    "nats://{user}:{}@127.0.0.1:{}",
                    password(user),
                    node.client_port
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn start_nats(&mut self, index: usize) {
        let binary = verdict_bus::server::find_binary(&[workspace_root().join(".tools/bin")])
            .unwrap_or_else(|err| panic!("{err}"));
        let node = &self.nats[index];
        let mut command = Command::new(binary);
        verdict_bus::server::die_with_parent(&mut command, libc::SIGKILL);
        command
            .arg("-c")
            .arg(workspace_root().join("deploy/nats/nats.conf"))
            .env("NATS_SERVER_NAME", &node.name)
            .env("NATS_LISTEN", format!("127.0.0.1:{}", node.client_port))
            .env(
                "NATS_MONITOR_LISTEN",
                format!("127.0.0.1:{}", node.monitor_port),
            )
            .env(
                "NATS_CLUSTER_LISTEN",
                format!("127.0.0.1:{}", node.cluster_port),
            )
            .env("NATS_STORE_DIR", self.dir().join(&node.name));
        for (n, peer) in self.nats.iter().enumerate() {
            command.env(
                format!("NATS_ROUTE_{}", n + 1),
                format!("nats://127.0.0.1:{}", peer.cluster_port),
            );
        }
        for user in NATS_USERS {
            command.env(
                format!("VERDICT_NATS_PASSWORD_{}", user.to_ascii_uppercase()),
                password(user),
            );
        }
        let name = node.name.clone();
        self.nats[index].process = Some(Process::spawn(command, &name, &self.log_dir()));
    }

    /// Waits until the node's JetStream is current with the cluster.
    async fn wait_for_nats(&mut self, index: usize) {
        let port = self.nats[index].monitor_port;
        self.wait_for_status(
            &format!("http://127.0.0.1:{port}/healthz"),
            200,
            PART_DEADLINE,
        )
        .await;
        let node = &mut self.nats[index];
        if let Some(status) = node.process.as_mut().and_then(Process::exited) {
            panic!(
                "{} exited with {status}; another process may hold its ports",
                node.name
            );
        }
    }

    /// The settings every Verdict process of the cluster shares.
    fn verdict_command(&self, user: &str) -> Command {
        let mut command = Command::new(&self.verdict);
        verdict_bus::server::die_with_parent(&mut command, libc::SIGKILL);
        command
            .env("NATS_URL", self.nats_url(user))
            .env("VERDICT_DATA_DIR", self.dir().join("data"))
            .env("VERDICT_STREAM_REPLICAS", "3")
            .env("VERDICT_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("VERDICT_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Behind haproxy every client has haproxy's address; limits per address
            // would throttle the whole test.
            .env("VERDICT_RATE_LOGIN", "100000/m")
            .env("VERDICT_RATE_READ", "100000/s")
            .env("VERDICT_RATE_WRITE", "100000/s")
            .env("VERDICT_TRUSTED_PROXIES", "127.0.0.1")
            .env("VERDICT_LOG", "info")
            .env("NO_COLOR", "1");
        command
    }

    /// Starts `service`; returns once it answers `$SRV.PING`.
    pub async fn start_service(&mut self, service: ServiceName) {
        let mut command = self.verdict_command(service.as_str());
        command.args(["serve", service.as_str()]).env(
            "VERDICT_ADMIN_LISTEN",
            format!("127.0.0.1:{}", self.service_admin_ports[&service]),
        );
        let name = service.as_str();
        let mut process = Process::spawn(command, name, &self.log_dir());
        let client = self.nats_client().await;
        let deadline = Instant::now() + PART_DEADLINE;
        loop {
            let ping = client.request(service.ping_subject(), "".into());
            if tokio::time::timeout(Duration::from_secs(1), ping)
                .await
                .is_ok_and(|answer| answer.is_ok())
            {
                break;
            }
            if let Some(status) = process.exited() {
                panic!(
                    "{name} exited with {status}; see {}",
                    self.log_dir().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} does not answer $SRV.PING; see {}",
                self.log_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.services.insert(service, process);
    }

    /// Starts gateway `index` on its port; returns once it is ready.
    async fn start_gateway(&mut self, index: usize) {
        let port = self.gateways[index].port;
        let admin_port = self.gateways[index].admin_port;
        let mut command = self.verdict_command("gateway");
        command
            .args(["serve", "gateway"])
            .env("VERDICT_LISTEN", format!("127.0.0.1:{port}"))
            .env("VERDICT_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"));
        let name = format!("gateway-{}", index + 1);
        let mut process = Process::spawn(command, &name, &self.log_dir());
        process.wait_for_line("gateway listening").await;
        self.gateways[index].process = Some(process);
        self.wait_for_status(
            &format!("http://127.0.0.1:{port}/readyz"),
            200,
            PART_DEADLINE,
        )
        .await;
    }

    /// Starts haproxy on a free port; another one is tried when something took it
    /// between choosing and binding.
    async fn start_haproxy(&mut self) {
        for _ in 0..5 {
            self.lb_port = free_port();
            let mut command = Command::new(find_haproxy());
            verdict_bus::server::die_with_parent(&mut command, libc::SIGKILL);
            command
                .arg("-db")
                .arg("-f")
                .arg(workspace_root().join("deploy/haproxy.cfg"))
                .env("VERDICT_LB_BIND", format!("127.0.0.1:{}", self.lb_port))
                .env("VERDICT_LB_ADMIN_SOCKET", self.admin_socket());
            for (index, gateway) in self.gateways.iter().enumerate() {
                command.env(
                    format!("VERDICT_GATEWAY_{}", index + 1),
                    format!("127.0.0.1:{}", gateway.port),
                );
            }
            let mut process = Process::spawn(command, "haproxy", &self.log_dir());
            // haproxy binds, or exits, at once; the admin socket appears once it runs.
            let deadline = Instant::now() + PART_DEADLINE;
            while process.exited().is_none()
                && tokio::net::UnixStream::connect(self.admin_socket())
                    .await
                    .is_err()
            {
                assert!(Instant::now() < deadline, "haproxy does not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if process.exited().is_none() {
                self.haproxy = Some(process);
                return;
            }
        }
        panic!("haproxy could not start; see {}", self.log_dir().display());
    }

    fn admin_socket(&self) -> PathBuf {
        self.dir().join("haproxy.sock")
    }

    /// One command on haproxy's runtime API; returns its answer.
    async fn haproxy_command(&self, command: &str) -> String {
        let mut socket = tokio::net::UnixStream::connect(self.admin_socket())
            .await
            .expect("haproxy admin socket");
        socket
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to haproxy");
        let mut answer = String::new();
        socket
            .read_to_string(&mut answer)
            .await
            .expect("read from haproxy");
        answer
    }

    /// The live WebSockets gateway `index` holds, from its metrics.
    async fn live_sockets(&self, index: usize) -> u64 {
        let url = format!(
            "http://127.0.0.1:{}/metrics",
            self.gateways[index].admin_port
        );
        let Ok(response) = self.http.get(url).send().await else {
            return 0;
        };
        let metrics = response.text().await.unwrap_or_default();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("verdict_live_sockets "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |sockets| sockets as u64)
    }

    /// What haproxy's health checks make of gateway `index` now (`UP`, `DOWN`, `UP 1/3`
    /// while it is failing checks, …).
    pub async fn haproxy_status(&self, index: usize) -> String {
        self.haproxy_server(index).await.0
    }

    /// The `show stat` row of gateway `index`: (status, current sessions).
    async fn haproxy_server(&self, index: usize) -> (String, u64) {
        let stats = self.haproxy_command("show stat").await;
        let name = format!("gateway-{}", index + 1);
        stats
            .lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.len() > 17 && fields[0] == "gateways" && fields[1] == name)
            .map(|fields| (fields[17].to_owned(), fields[4].parse().unwrap_or(0)))
            .unwrap_or_else(|| panic!("haproxy does not list {name}: {stats}"))
    }

    async fn wait_for_haproxy_status(&self, index: usize, status: &str) {
        let deadline = Instant::now() + PART_DEADLINE;
        loop {
            let (current, _) = self.haproxy_server(index).await;
            if current == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy still sees gateway-{} as {current}",
                index + 1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until haproxy has no request in progress on gateway `index` but its live
    /// WebSockets (those last as long as the viewer watches; the gateway's stop closes
    /// them with 1001 and the viewers reconnect through haproxy to another gateway).
    async fn wait_for_idle_gateway(&self, index: usize) {
        let deadline = Instant::now() + PART_DEADLINE;
        while self.haproxy_server(index).await.1 > self.live_sockets(index).await {
            assert!(
                Instant::now() < deadline,
                "gateway-{} never idles",
                index + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // A failed test keeps its logs.
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("cluster logs kept in {}", dir.keep().join("logs").display());
            }
        }
    }
}

/// The NATS users of `deploy/nats/nats.conf`.
const NATS_USERS: [&str; 7] = [
    "gateway",
    "auth",
    "runs",
    "artifacts",
    "realtime",
    "notify",
    "admin",
];

fn password(user: &str) -> String {
    format!("{user}-password-for-tests")
}

fn find_haproxy() -> PathBuf {
    [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
    .unwrap_or_else(|| panic!("haproxy not found; run deploy/install-deps.sh"))
}
