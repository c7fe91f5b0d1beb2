//! Real browsers for dashboard tests and benchmarks: Debian's headless Chromium and Firefox
//! ESR, driven over WebDriver (fantoccini) through a chromedriver or geckodriver this
//! harness starts on a free port, with a fresh profile directory each time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Map, Value};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::ports::free_port;
use crate::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// Flags of a quiet, reproducible headless Chromium that runs as root in a container.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Arguments of a headless Firefox (geckodriver adds the preferences that keep an
/// automated Firefox quiet: no updates, no first-run pages).
const FIREFOX_ARGS: [&str; 1] = ["-headless"];

/// The window every session starts with, whatever the browser's own default.
pub const WINDOW_SIZE: (u32, u32) = (1280, 1000);

/// Which browser a session runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserKind {
    /// `VERDICT_CHROMIUM` (default `/usr/bin/chromium`) through `VERDICT_CHROMEDRIVER`
    /// (default `chromedriver` on `PATH`).
    Chromium,
    /// `VERDICT_FIREFOX` (default `/usr/bin/firefox-esr`) through `VERDICT_GECKODRIVER`
    /// (default `geckodriver` on `PATH`, else `.tools/bin/geckodriver`).
    Firefox,
}

impl BrowserKind {
    /// Its name in lower case, as screenshots are filed under.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chromium => "chromium",
            Self::Firefox => "firefox",
        }
    }

    fn driver(self) -> PathBuf {
        match self {
            Self::Chromium => std::env::var_os("VERDICT_CHROMEDRIVER")
                .map(PathBuf::from)
                .unwrap_or_else(|| "chromedriver".into()),
            Self::Firefox => crate::nats::installed_tool("VERDICT_GECKODRIVER", "geckodriver"),
        }
    }

    fn driver_args(self, port: u16) -> Vec<String> {
        match self {
            Self::Chromium => vec![format!("--port={port}")],
            Self::Firefox => vec![
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                // Each session's Firefox listens where the system puts it, so sessions
                // run side by side.
                "--marionette-port".into(),
                "0".into(),
            ],
        }
    }

    /// The session's capabilities: the browser binary, its arguments and `profile` as
    /// its profile directory.
    fn capabilities(self, profile: &Path, extra_args: &[&str]) -> Map<String, Value> {
        let capabilities = match self {
            Self::Chromium => {
                let mut args: Vec<String> =
                    CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
                args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
                args.push(format!("--user-data-dir={}", profile.display()));
                let binary = std::env::var("VERDICT_CHROMIUM")
                    .unwrap_or_else(|_| "/usr/bin/chromium".into());
                json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": { "args": args, "binary": binary },
                })
            }
            Self::Firefox => {
                allow_narrow_firefox_windows(profile);
                let mut args: Vec<String> = FIREFOX_ARGS.iter().map(|a| (*a).to_owned()).collect();
                args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
                args.extend(["-profile".to_owned(), profile.display().to_string()]);
                let binary = std::env::var("VERDICT_FIREFOX")
                    .unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
                json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {
                        "args": args,
                        "binary": binary,
                        "prefs": { "toolkit.legacyUserProfileCustomizations.stylesheets": true },
                        // Headless even where a display is configured.
                        "env": { "MOZ_HEADLESS": "1" },
                    },
                })
            }
        };
        match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

/// Lets a Firefox window be as narrow as a phone: its own style keeps a desktop window at
/// least 500 px wide, which `profile`'s user style lifts.
fn allow_narrow_firefox_windows(profile: &Path) {
    let chrome = profile.join("chrome");
    std::fs::create_dir_all(&chrome).expect("profile chrome directory");
    std::fs::write(
        chrome.join("userChrome.css"),
        ":root { --window-min-width: 0px !important; }\n",
    )
    .expect("userChrome.css");
}

pub struct Browser {
    pub client: Client,
    pub kind: BrowserKind,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts the browser's WebDriver server and a session in a fresh profile.
    pub async fn start(kind: BrowserKind) -> Self {
        Self::start_with(kind, &[]).await
    }

    /// Like [`Browser::start`], with more command-line arguments for the browser.
    pub async fn start_with(kind: BrowserKind, extra_args: &[&str]) -> Self {
        let port = free_port();
        let driver = kind.driver();
        let driver = Command::new(&driver)
            .args(kind.driver_args(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "starting {} (deploy/install-deps.sh installs it): {err}",
                    driver.display()
                )
            });
        let profile = tempfile::tempdir().expect("browser profile directory");
        let capabilities = kind.capabilities(profile.path(), extra_args);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if Instant::now() > deadline => {
                    panic!("no {} session: {err}", kind.name())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        client
            .set_window_size(WINDOW_SIZE.0, WINDOW_SIZE.1)
            .await
            .expect("window size");
        Self {
            client,
            kind,
            driver,
            _profile: profile,
        }
    }

    /// Saves a screenshot of the page as
    /// `target/browser-screenshots/<browser>/<name>.png` (build output, not committed);
    /// returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir().join(self.kind.name());
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Signs in to `app`'s dashboard as its first administrator, through the sign-in form.
    pub async fn sign_in(&self, app: &TestApp) {
        self.client
            .goto(&app.url("/login"))
            .await
            .expect("the sign-in page");
        for (field, value) in [("#email", ADMIN_EMAIL), ("#password", ADMIN_PASSWORD)] {
            self.element(field)
                .await
                .send_keys(value)
                .await
                .expect("typing into the sign-in form");
        }
        self.element("form button[type=submit]")
            .await
            .click()
            .await
            .expect("signing in");
        self.element("nav").await;
        let path = self.client.current_url().await.expect("current URL");
        assert_eq!(path.path(), "/", "signed in");
    }

    /// The first element matching `css`, waiting up to 5 s for it.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no element {css}: {err}"))
    }

    /// The text of the first element matching `css`, waiting up to 5 s for it.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.expect("element text")
    }

    /// Ends the browser session and its WebDriver server.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// `target/browser-screenshots` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-screenshots")
}
