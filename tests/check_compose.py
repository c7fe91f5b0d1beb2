"""Checks the rules docker-compose.yml promises, on `docker-compose config` output.

usage: check_compose.py RENDERED_YAML
Prints nothing and exits 0 when every rule holds; otherwise prints each broken rule
and exits 1. The file's validity itself is checked by `docker-compose config`.
"""
import re
import sys

import yaml

with open(sys.argv[1]) as f:
    services = yaml.safe_load(f)["services"]
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


def seconds(duration):
    """`1m30s`, `60s`, `1m` as docker-compose writes durations."""
    total = 0
    for number, unit in re.findall(r"(\d+)(h|ms|m|s)", str(duration)):
        total += int(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


nats = {name: service for name, service in services.items() if name.startswith("nats-")}
expect(len(nats) == 3, "three NATS nodes")
for name, service in nats.items():
    # Lame duck mode (nats.conf: lame_duck_duration 30s, grace 5s) before the kill.
    expect(service.get("stop_signal") == "SIGUSR2", f"{name}: stops in lame duck mode")
    expect(seconds(service.get("stop_grace_period", "10s")) >= 40, f"{name}: grace outlasts lame duck mode")
    monitor = service.get("environment", {}).get("NATS_MONITOR_LISTEN", "")
    expect(monitor.startswith("127.0.0.1:"), f"{name}: monitoring on loopback only")
    expect(not any("8222" in str(port) for port in service.get("ports", [])), f"{name}: monitoring not published")

verdict = {
    name: service
    for name, service in services.items()
    if str(service.get("image", "")).startswith("verdict") or "build" in service
}
for name, service in verdict.items():
    kind = service["command"][0]
    test = service.get("healthcheck", {}).get("test", [])
    expect(
        test == ["CMD", "/usr/local/bin/verdict", "healthcheck", kind],
        f"{name}: healthcheck is `verdict healthcheck {kind}` (got {test})",
    )

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
