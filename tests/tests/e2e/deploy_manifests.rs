//! The deployment files are valid for the tools that will run them, checked offline
//! with those tools (installed by deploy/install-deps.sh): kustomize and the Kubernetes
//! schemas, docker-compose, haproxy and nats-server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tool(name: &str) -> PathBuf {
    let local = root().join(".tools/bin").join(name);
    if local.exists() {
        local
    } else {
        PathBuf::from(name)
    }
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?} (run deploy/install-deps.sh): {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `kubectl kustomize` of the example overlay, written to a file in `dir`.
fn rendered_example(dir: &Path) -> PathBuf {
    let output = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("k8s/overlays/example")));
    let file = dir.join("example.yaml");
    std::fs::write(&file, output.stdout).unwrap();
    file
}

#[test]
fn the_kubernetes_example_renders_and_matches_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = rendered_example(dir.path());

    run(Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&manifests));
}

#[test]
fn the_kubernetes_example_keeps_the_promised_rules() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = rendered_example(dir.path());

    run(Command::new(root().join(".tools/venv/bin/python"))
        .arg(root().join("tests/check_manifests.py"))
        .arg(&manifests));
}

#[test]
fn kubernetes_runs_the_same_nats_configuration_as_compose() {
    let deployed = std::fs::read_to_string(root().join("deploy/nats/nats.conf")).unwrap();
    let kubernetes = std::fs::read_to_string(root().join("k8s/base/nats/nats.conf")).unwrap();
    assert!(
        deployed == kubernetes,
        "k8s/base/nats/nats.conf differs from deploy/nats/nats.conf; copy it again"
    );
}

#[test]
fn the_nats_configuration_grants_exactly_the_bus_permissions_of_the_code() {
    let deployed = std::fs::read_to_string(root().join("deploy/nats/nats.conf")).unwrap();
    let generated = verdict_contracts::bus_access::deployment_authorization();
    assert!(
        deployed.ends_with(&generated),
        "deploy/nats/nats.conf must end with what `verdict bus-permissions` prints:\n{generated}"
    );
}

#[test]
fn the_compose_file_is_valid() {
    run(Command::new("docker-compose")
        .arg("--file")
        .arg(root().join("docker-compose.yml"))
        .args(["config", "--quiet"])
        .env("VERDICT_ADMIN_PASSWORD", "a-password"));
}

#[test]
fn the_compose_file_keeps_the_promised_rules() {
    let output = run(Command::new("docker-compose")
        .arg("--file")
        .arg(root().join("docker-compose.yml"))
        .arg("config")
        .env("VERDICT_ADMIN_PASSWORD", "a-password"));
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("compose.yaml");
    std::fs::write(&rendered, output.stdout).unwrap();

    run(Command::new(root().join(".tools/venv/bin/python"))
        .arg(root().join("tests/check_compose.py"))
        .arg(&rendered));
}

#[test]
fn the_haproxy_configuration_is_valid() {
    run(Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(root().join("deploy/haproxy.cfg"))
        .env("VERDICT_LB_BIND", "127.0.0.1:3003")
        .env("VERDICT_GATEWAY_1", "127.0.0.1:3004")
        .env("VERDICT_GATEWAY_2", "127.0.0.1:3005")
        .env("VERDICT_LB_ADMIN_SOCKET", "/tmp/verdict-haproxy-check.sock"));
}

#[test]
fn the_nats_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut check = Command::new(tool("nats-server"));
    check
        .arg("-c")
        .arg(root().join("deploy/nats/nats.conf"))
        .arg("-t")
        .env("NATS_SERVER_NAME", "nats-1")
        .env("NATS_LISTEN", "127.0.0.1:4222")
        .env("NATS_MONITOR_LISTEN", "127.0.0.1:8222")
        .env("NATS_CLUSTER_LISTEN", "127.0.0.1:6222")
        .env("NATS_STORE_DIR", dir.path());
    for n in 1..=3 {
        check.env(
            format!("NATS_ROUTE_{n}"),
            format!("nats://127.0.0.1:622{n}"),
        );
    }
    for user in [
        "GATEWAY",
        "AUTH",
        "RUNS",
        "ARTIFACTS",
        "REALTIME",
        "NOTIFY",
        "ADMIN",
    ] {
        check.env(format!("VERDICT_NATS_PASSWORD_{user}"), "secret");
    }
    run(&mut check);
}
