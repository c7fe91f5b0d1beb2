//! The system a benchmark loads: everything in-process on a fresh nats-server, with a
//! project and a reporter token.

use verdict_testkit::TestApp;

/// The load generator is one client sending everything: rate limits out of its way.
pub const UNLIMITED_RATES: [(&str, &str); 2] = [
    ("VERDICT_RATE_READ", "1000000/s"),
    ("VERDICT_RATE_WRITE", "1000000/s"),
];

pub struct Reporting {
    pub app: TestApp,
    /// An administrator's access token.
    pub admin: String,
    pub project: String,
    /// A reporter API token of the project.
    pub reporter: String,
}

impl Reporting {
    pub async fn start() -> Self {
        let app = TestApp::spawn_with(&UNLIMITED_RATES).await;
        let admin = app.admin_token().await;
        let project = app.project(&admin, "bench").await;
        let (_, reporter) = app.api_token(&admin, &project, "reporter").await;
        Self {
            app,
            admin,
            project,
            reporter,
        }
    }
}
