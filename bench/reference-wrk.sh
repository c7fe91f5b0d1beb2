#!/usr/bin/env bash
# The reference implementation under wrk, the way issue #15 measured it: 2 threads,
# 8 connections, batches of 500 results, 10 s. It tells whether the machine or the load
# generator sets the reference's figure in `verdict-bench ingest` (see BENCHMARKS.md).
#
# Usage: bench/reference-wrk.sh REFERENCE_DIR suite|one
#   suite: a new run every 40 batches (runs of 20 000 results, names repeating)
#   one:   every batch into one run
# Needs wrk, node (the reference's run.sh installs its packages), curl and python3.
set -euo pipefail
reference=$(cd "$1" && pwd)
mode=$2
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - "$work/body.json" <<'PY'
import json, sys
results = []
for i in range(500):
    result = {"suite": f"suite {i % 50}", "name": f"test {i} of the suite",
              "status": "passed", "duration_ms": i % 1000}
    if i % 10 == 0:
        result.update(status="failed", message=f"assertion failed after {i} ms")
    results.append(result)
json.dump({"results": results}, open(sys.argv[1], "w"))
PY

port=$((39200 + RANDOM % 500))
mkdir "$work/data"
bash "$reference/run.sh" "$port" "$work/data" >"$work/reference.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
token=$(node "$reference/token.js")

case $mode in
  suite) runs=120 per_run=40 ;;
  one) runs=1 per_run=1000000000 ;;
  *) echo "mode must be suite or one" >&2; exit 2 ;;
esac
for _ in $(seq "$runs"); do
  curl -sf -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"wrk"}' "http://127.0.0.1:$port/api/v1/projects/bench/runs" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
done >"$work/runs.txt"

cat >"$work/post.lua" <<LUA
local runs = {}
for line in io.lines("$work/runs.txt") do runs[#runs + 1] = line end
local body = io.open("$work/body.json"):read("*a")
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $token"}
local threads = 0
local sent = 0
function setup(thread) thread:set("first", threads * 60); threads = threads + 1 end
request = function()
  local run = runs[math.min(#runs, (first or 0) + math.floor(sent / $per_run) + 1)]
  sent = sent + 1
  return wrk.format("POST", "/api/v1/runs/" .. run .. "/results", headers, body)
end
LUA
wrk -t2 -c8 -d10s -s "$work/post.lua" "http://127.0.0.1:$port" |
  awk '/requests in/ { print } /Requests\/sec/ { print; printf "results/s: %.0f\n", $2 * 500 } /Non-2xx/ { print }'
