use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use verdict_contracts::bus_access::BusUser;
use verdict_contracts::ServiceName;
use verdict_settings::Env;
use verdict_telemetry::admin::AdminListener;

use crate::{TestNats, TestS3};

/// Which blob store the artifacts service of a test app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStoreKind {
    /// Local disk under the data directory, served by the artifacts service (default).
    Disk,
    /// A real S3 server (s3s-fs) started for the test.
    S3,
}

/// A part of the system the harness can start and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Gateway,
    Service(ServiceName),
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), String>>,
}

/// The whole system on a test's own nats-server: every service in-process, the gateway
/// on a free port, each with its own database in a temporary data directory, and the
/// process's admin listener (`/metrics` of every part) on another free port, as
/// `verdict up` runs them.
pub struct TestApp {
    pub nats: TestNats,
    pub http: reqwest::Client,
    address: SocketAddr,
    admin: SocketAddr,
    admin_stop: CancellationToken,
    data_dir: TempDir,
    overrides: Vec<(String, String)>,
    running: HashMap<Component, Running>,
    extra_gateways: Vec<Running>,
    /// The S3 server of an app started with [`BlobStoreKind::S3`].
    pub s3: Option<TestS3>,
}

/// The first administrator every test app starts with.
pub const ADMIN_EMAIL: &str = "admin@verdict.test";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

impl TestApp {
    /// Starts nats-server, every service and the gateway; returns once every service
    /// answers on the bus and the gateway is ready.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Like [`TestApp::spawn`], with some settings changed for every component.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        Self::spawn_with_store(BlobStoreKind::Disk, overrides).await
    }

    /// Like [`TestApp::spawn_with`], with artifacts in the given kind of blob store.
    pub async fn spawn_with_store(store: BlobStoreKind, overrides: &[(&str, &str)]) -> Self {
        verdict_telemetry::install_tls_provider();
        let s3 = match store {
            BlobStoreKind::Disk => None,
            BlobStoreKind::S3 => Some(TestS3::start().await),
        };
        let mut settings: Vec<(String, String)> =
            s3.as_ref().map(TestS3::settings).unwrap_or_default();
        settings.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let nats = TestNats::start().await;
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let admin = AdminListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the admin listener binds");
        let admin_stop = CancellationToken::new();
        let admin_address = admin.local_addr();
        tokio::spawn(admin.serve(admin_stop.clone()));
        let mut app = Self {
            nats,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Shorter than the gateway's header read timeout (10 s), which also
                // closes idle keep-alive connections: a request sent on a connection
                // the gateway is just closing would fail.
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: admin_address,
            admin_stop,
            data_dir,
            overrides: settings,
            running: HashMap::new(),
            extra_gateways: Vec::new(),
            s3,
        };
        for service in ServiceName::ALL {
            app.launch(Component::Service(service)).await;
        }
        for service in ServiceName::ALL {
            app.wait_until_answering(service).await;
        }
        app.launch(Component::Gateway).await;
        app.wait_for_status("/readyz", 200, Duration::from_secs(10))
            .await;
        app
    }

    /// Like [`TestApp::spawn_with_store`], with the S3 store's public endpoint named
    /// `s3.invalid` (a name nothing resolves, RFC 6761): only transfers that stay inside
    /// the deployment, through the internal endpoint, can work. On local disk, the same
    /// as `spawn_with_store`.
    pub async fn spawn_internal_only(store: BlobStoreKind, overrides: &[(&str, &str)]) -> Self {
        let mut settings = overrides.to_vec();
        if store == BlobStoreKind::S3 {
            settings.push(("VERDICT_S3_PUBLIC_ENDPOINT", "http://s3.invalid:9"));
        }
        Self::spawn_with_store(store, &settings).await
    }

    /// The settings every component reads: this test's NATS (as the administrator) and
    /// data directory.
    pub fn env(&self) -> Env {
        self.env_as(BusUser::Admin)
    }

    /// The settings `component` runs with: signed in to NATS as its own bus user.
    pub fn env_of(&self, component: Component) -> Env {
        self.env_as(match component {
            Component::Gateway => BusUser::Gateway,
            Component::Service(service) => BusUser::Service(service),
        })
    }

    fn env_as(&self, user: BusUser) -> Env {
        Env::from_pairs([
            ("NATS_URL", self.nats.url_as(user)),
            (
                "VERDICT_DATA_DIR",
                self.data_dir.path().display().to_string(),
            ),
            ("VERDICT_LISTEN", "127.0.0.1:0".to_owned()),
            ("VERDICT_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
            ("VERDICT_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            // Tests sign in many times from one address; the login limit has its own test.
            ("VERDICT_RATE_LOGIN", "10000/m".to_owned()),
        ])
        .with(self.overrides.clone())
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// The directory holding the artifact blobs: below the default key prefix in the
    /// bucket directory of the S3 server, or the local-disk store's objects.
    pub fn blob_dir(&self) -> std::path::PathBuf {
        match &self.s3 {
            Some(s3) => s3.bucket_dir().join(verdict_artifacts::DEFAULT_S3_PREFIX),
            None => self.data_dir.path().join("artifacts").join("objects"),
        }
    }

    /// The keys of the artifact blobs in the app's blob store (the names of the files in
    /// [`TestApp::blob_dir`]), sorted.
    pub fn blob_keys(&self) -> Vec<String> {
        crate::s3::file_names(&self.blob_dir())
    }

    /// Deletes one blob behind the services' back, as a lost disk or a bucket emptied
    /// by hand would.
    pub fn remove_blob(&self, key: &str) {
        let path = self.blob_dir().join(key);
        std::fs::remove_file(&path)
            .unwrap_or_else(|err| panic!("removing {}: {err}", path.display()));
    }

    /// Starts one more gateway on the same bus; returns its base URL. It stops with the app.
    pub async fn spawn_gateway(&mut self) -> String {
        let settings = verdict_gateway::Settings::from_env(&self.env_of(Component::Gateway))
            .expect("gateway settings");
        let gateway = verdict_gateway::Gateway::bind(settings)
            .await
            .expect("the second gateway binds");
        let url = format!("http://{}", gateway.local_addr());
        let stop = CancellationToken::new();
        let task = spawn(gateway.serve(stop.clone()));
        self.extra_gateways.push(Running { stop, task });
        url
    }

    /// Changes one setting for the components started from now on (restart one to give
    /// it the new value).
    pub fn set(&mut self, name: &str, value: &str) {
        self.overrides.retain(|(key, _)| key != name);
        self.overrides.push((name.to_owned(), value.to_owned()));
    }

    /// Starts one component (again) and, for a service, waits until it answers on the
    /// bus. The gateway keeps its port across restarts when it had one.
    pub async fn start(&mut self, component: Component) {
        self.launch(component).await;
        if let Component::Service(service) = component {
            self.wait_until_answering(service).await;
        }
    }

    /// Waits until an instance of `service` answers `$SRV.PING`; panics when the
    /// service stopped on its way up, or after 15 s.
    pub async fn wait_until_answering(&self, service: ServiceName) {
        let client = self.nats.client().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let ping = client.request(service.ping_subject(), "".into());
            if matches!(
                tokio::time::timeout(Duration::from_secs(1), ping).await,
                Ok(Ok(_))
            ) {
                return;
            }
            let component = Component::Service(service);
            if self
                .running
                .get(&component)
                .is_none_or(|running| running.task.is_finished())
            {
                panic!("{component:?} is not running, so it never answers");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service} does not answer $SRV.PING within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts one component without waiting for it.
    async fn launch(&mut self, component: Component) {
        let env = self.env_of(component);
        let stop = CancellationToken::new();
        let task = match component {
            Component::Gateway => {
                let mut settings =
                    verdict_gateway::Settings::from_env(&env).expect("gateway settings");
                if self.address.port() != 0 {
                    settings.listen = self.address;
                }
                let gateway = verdict_gateway::Gateway::bind(settings)
                    .await
                    .expect("the gateway binds");
                self.address = gateway.local_addr();
                spawn(gateway.serve(stop.clone()))
            }
            Component::Service(ServiceName::Auth) => spawn(verdict_auth::run(
                verdict_auth::Settings::from_env(&env).expect("auth settings"),
                stop.clone(),
            )),
            Component::Service(ServiceName::Runs) => spawn(verdict_runs::run(
                verdict_runs::Settings::from_env(&env).expect("runs settings"),
                stop.clone(),
            )),
            Component::Service(ServiceName::Artifacts) => spawn(verdict_artifacts::run(
                verdict_artifacts::Settings::from_env(&env).expect("artifacts settings"),
                stop.clone(),
            )),
            Component::Service(ServiceName::Realtime) => spawn(verdict_realtime::run(
                verdict_realtime::Settings::from_env(&env).expect("realtime settings"),
                stop.clone(),
            )),
            Component::Service(ServiceName::Notify) => spawn(verdict_notify::run(
                verdict_notify::Settings::from_env(&env).expect("notify settings"),
                stop.clone(),
            )),
        };
        self.running.insert(component, Running { stop, task });
    }

    /// Stops one component gracefully and waits until it has.
    pub async fn stop(&mut self, component: Component) {
        let running = self
            .running
            .remove(&component)
            .unwrap_or_else(|| panic!("{component:?} is not running"));
        running.stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(15), running.task)
            .await
            .unwrap_or_else(|_| panic!("{component:?} did not stop within 15 s"));
        ended
            .expect("component task")
            .unwrap_or_else(|err| panic!("{component:?} stopped with an error: {err}"));
    }

    /// Kills one component at once, without any shutdown, as a crash would: its tasks
    /// are dropped mid-flight and its connections close.
    pub async fn kill(&mut self, component: Component) {
        let running = self
            .running
            .remove(&component)
            .unwrap_or_else(|| panic!("{component:?} is not running"));
        running.task.abort();
        let _ = running.task.await;
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `path` on the admin listener (`/metrics`).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The metrics of every part, as a Prometheus server scrapes them.
    pub async fn scrape(&self) -> String {
        let response = self
            .http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .expect("GET /metrics on the admin listener");
        assert_eq!(response.status(), 200, "GET /metrics on the admin listener");
        response.text().await.expect("the metrics")
    }

    /// A live viewer on the app's gateway, authenticated by header.
    pub async fn live(&self, token: &str) -> crate::LiveClient {
        crate::LiveClient::connect(&self.url(""), Some(token))
            .await
            .expect("live socket opens")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// Polls `path` until it answers `status`, or panics after `within`.
    pub async fn wait_for_status(
        &self,
        path: &str,
        status: u16,
        within: Duration,
    ) -> reqwest::Response {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let response = self.get(path).await;
            if response.status().as_u16() == status {
                return response;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "GET {path} still answers {} after {within:?}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for running in self.running.values().chain(&self.extra_gateways) {
            running.stop.cancel();
        }
        self.admin_stop.cancel();
    }
}

fn spawn<E: std::fmt::Display>(
    task: impl Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<Result<(), String>> {
    tokio::spawn(async move { task.await.map_err(|err| err.to_string()) })
}
