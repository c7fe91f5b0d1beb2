#!/usr/bin/env bash
# The scaled deployment on one machine, every part its own process on loopback: three
# nats-server nodes in a JetStream cluster (deploy/nats/nats.conf, streams R3), auth,
# runs, artifacts, realtime x2, notify, gateway x2 (`verdict serve <part>`), and haproxy
# (deploy/haproxy.cfg) serving the API. Each Verdict process has its admin listener
# (`/metrics`) on a port of its own, 19464 and up in the order started (auth, runs,
# artifacts, realtime, realtime, notify, gateway-1, gateway-2). The e2e tests start the
# same topology (libs/testkit/src/cluster.rs). Ctrl-C stops everything.
#
# Usage: deploy/local-cluster.sh [DIR]    (state and logs; default ./data/cluster)
# Settings: VERDICT_LB_PORT (3003), VERDICT_ADMIN_PASSWORD (generated and printed once
# when unset), VERDICT_BIN (a prebuilt `verdict`; else built in release mode).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(mkdir -p "${1:-$root/data/cluster}" && cd "${1:-$root/data/cluster}" && pwd)"
logs="$dir/logs"
mkdir -p "$logs"
export PATH="$("$root/deploy/install-deps.sh"):$PATH"

verdict="${VERDICT_BIN:-}"
if [ -z "$verdict" ]; then
  cargo build --release --locked --quiet -p verdict-cli --bin verdict --manifest-path "$root/Cargo.toml"
  verdict="$root/target/release/verdict"
fi

lb_port="${VERDICT_LB_PORT:-3003}"
client_ports=(14222 14223 14224)
cluster_ports=(16222 16223 16224)
monitor_ports=(18222 18223 18224)
gateway_ports=(13004 13005)
admin_port=19464

# One password per NATS user, kept with the cluster's state.
declare -A passwords
for user in gateway auth runs artifacts realtime notify admin; do
  file="$dir/nats-password-$user"
  [ -s "$file" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$file"
  passwords[$user]="$(cat "$file")"
  export "VERDICT_NATS_PASSWORD_${user^^}=${passwords[$user]}"
done

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping" >&2
  # Verdict processes and haproxy first, NATS last, so services drain cleanly.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

start() {
  local name="$1"
  shift
  "$@" >>"$logs/$name.log" 2>&1 &
  pids+=("$!")
}

for n in 0 1 2; do
  NATS_SERVER_NAME="nats-$((n + 1))" \
  NATS_LISTEN="127.0.0.1:${client_ports[$n]}" \
  NATS_MONITOR_LISTEN="127.0.0.1:${monitor_ports[$n]}" \
  NATS_CLUSTER_LISTEN="127.0.0.1:${cluster_ports[$n]}" \
  NATS_ROUTE_1="nats://127.0.0.1:${cluster_ports[0]}" \
  NATS_ROUTE_2="nats://127.0.0.1:${cluster_ports[1]}" \
  NATS_ROUTE_3="nats://127.0.0.1:${cluster_ports[2]}" \
  NATS_STORE_DIR="$dir/nats-$((n + 1))" \
    start "nats-$((n + 1))" nats-server -c "$root/deploy/nats/nats.conf"
done
for n in 0 1 2; do
  until curl -sf "http://127.0.0.1:${monitor_ports[$n]}/healthz" >/dev/null; do sleep 0.2; done
done

nats_url() {
  local user="$1" urls=()
  for port in "${client_ports[@]}"; do
    urls+=("nats://$user:${passwords[$user]}@127.0.0.1:$port")
  done
  (IFS=,; echo "${urls[*]}")
}

export VERDICT_DATA_DIR="$dir/data" VERDICT_STREAM_REPLICAS=3 VERDICT_TRUSTED_PROXIES=127.0.0.1
export VERDICT_PUBLIC_URL="${VERDICT_PUBLIC_URL:-http://127.0.0.1:$lb_port}"
# Each process writes the id it registered on the bus with to a file of its own, which
# `verdict healthcheck` reads (the two realtime processes share the data directory), and
# serves its metrics on an admin port of its own.
mkdir -p "$dir/instances"
services=(auth runs artifacts realtime-1 realtime-2 notify)
for name in "${services[@]}"; do
  part="${name%-[0-9]}"
  NATS_URL="$(nats_url "$part")" VERDICT_INSTANCE_FILE="$dir/instances/$name" \
    VERDICT_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    start "$name" "$verdict" serve "$part"
  admin_port=$((admin_port + 1))
done
for n in 0 1; do
  NATS_URL="$(nats_url gateway)" VERDICT_LISTEN="127.0.0.1:${gateway_ports[$n]}" \
    VERDICT_INSTANCE_FILE="$dir/instances/gateway-$((n + 1))" \
    VERDICT_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    start "gateway-$((n + 1))" "$verdict" serve gateway
  admin_port=$((admin_port + 1))
done

# The probes of a container deployment: each service's own process answers on the bus,
# each gateway is ready.
for name in "${services[@]}"; do
  part="${name%-[0-9]}"
  until NATS_URL="$(nats_url "$part")" VERDICT_INSTANCE_FILE="$dir/instances/$name" \
    "$verdict" healthcheck "$part" >/dev/null 2>&1; do sleep 0.2; done
done
for port in "${gateway_ports[@]}"; do
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
done

VERDICT_LB_BIND="127.0.0.1:$lb_port" \
VERDICT_GATEWAY_1="127.0.0.1:${gateway_ports[0]}" \
VERDICT_GATEWAY_2="127.0.0.1:${gateway_ports[1]}" \
VERDICT_LB_ADMIN_SOCKET="$dir/haproxy.sock" \
  start haproxy haproxy -db -f "$root/deploy/haproxy.cfg"

until curl -sf "http://127.0.0.1:$lb_port/readyz" >/dev/null; do sleep 0.5; done
echo "Verdict is ready on http://127.0.0.1:$lb_port (logs in $logs; the first admin's password, if generated, is in $logs/auth.log)" >&2
wait
