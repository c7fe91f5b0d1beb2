//! `verdict healthcheck <service>`: the exec probe of a service's container. It runs with
//! the service's own settings (its NATS user, its data directory) and succeeds only
//! while that very process answers on the bus.

use std::process::Output;

use verdict_contracts::bus_access::BusUser;
use verdict_contracts::ServiceName;
use verdict_testkit::{Component, TestApp};

/// Runs `verdict healthcheck <service>` with the settings `user`'s process runs with
/// (the app's data directory, NATS as that user), as an exec probe in its container
/// would; `extra` settings on top.
async fn healthcheck(
    app: &TestApp,
    service: &str,
    user: BusUser,
    extra: &[(&str, &str)],
) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict-cluster-node"))
        .args(["healthcheck", service])
        .env("NATS_URL", app.nats.url_as(user))
        .env("VERDICT_DATA_DIR", app.data_dir())
        .env_remove("NATS_URL_FILE")
        .env_remove("VERDICT_INSTANCE_FILE")
        .envs(extra.iter().copied())
        .output()
        .await
        .expect("run verdict healthcheck")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_running_service_is_healthy() {
    let app = TestApp::spawn().await;
    for service in ServiceName::ALL {
        let output = healthcheck(&app, service.as_str(), BusUser::Service(service), &[]).await;
        assert!(output.status.success(), "{service}: {}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(&format!("{service} instance")), "{stdout}");
    }
    let gateway = healthcheck(&app, "gateway", BusUser::Gateway, &[]).await;
    assert!(gateway.status.success(), "{}", stderr(&gateway));
}

#[tokio::test]
async fn a_stopped_service_is_unhealthy_and_says_it_is_not_registered() {
    let mut app = TestApp::spawn().await;
    app.stop(Component::Service(ServiceName::Runs)).await;
    let output = healthcheck(&app, "runs", BusUser::Service(ServiceName::Runs), &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("runs is not registered"),
        "{}",
        stderr(&output)
    );
}

/// Stops runs and leaves its instance file behind, as a process that crashed does
/// (an in-process "kill" would leave the bus registration's tasks answering).
async fn crash_runs(app: &mut TestApp) {
    let file = app.data_dir().join("verdict-runs.instance");
    let id = std::fs::read_to_string(&file).expect("runs wrote its instance id");
    app.stop(Component::Service(ServiceName::Runs)).await;
    std::fs::write(&file, id).unwrap();
}

#[tokio::test]
async fn a_crashed_service_is_unhealthy_though_its_instance_file_remains() {
    let mut app = TestApp::spawn().await;
    crash_runs(&mut app).await;
    let output = healthcheck(&app, "runs", BusUser::Service(ServiceName::Runs), &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not answer"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn another_instance_of_the_same_service_does_not_make_this_one_healthy() {
    let mut app = TestApp::spawn().await;
    // This container's process dies; a replacement elsewhere writes its id elsewhere.
    crash_runs(&mut app).await;
    let elsewhere = app.data_dir().join("elsewhere.instance");
    app.set("VERDICT_INSTANCE_FILE", elsewhere.to_str().unwrap());
    app.start(Component::Service(ServiceName::Runs)).await;

    let own = healthcheck(&app, "runs", BusUser::Service(ServiceName::Runs), &[]).await;
    assert_eq!(own.status.code(), Some(1), "{}", stderr(&own));
    let replacement = healthcheck(
        &app,
        "runs",
        BusUser::Service(ServiceName::Runs),
        &[("VERDICT_INSTANCE_FILE", elsewhere.to_str().unwrap())],
    )
    .await;
    assert!(replacement.status.success(), "{}", stderr(&replacement));
}

#[tokio::test]
async fn an_unknown_service_name_is_refused_naming_the_known_ones() {
    let app = TestApp::spawn().await;
    let output = healthcheck(&app, "nats", BusUser::Gateway, &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("auth, runs, artifacts, realtime, notify, gateway"),
        "{}",
        stderr(&output)
    );
}
