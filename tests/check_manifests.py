"""Checks the rules the Kubernetes manifests promise, on `kubectl kustomize` output.

usage: check_manifests.py RENDERED_YAML
Prints nothing and exits 0 when every rule holds; otherwise prints each broken rule
and exits 1. The schemas themselves are checked by kubernetes-validate.
"""
import sys

import yaml

with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


workloads = [
    d for kind in ("Deployment", "StatefulSet", "Job") for d in by_kind.get(kind, {}).values()
]
for workload in workloads:
    name = f'{workload["kind"]}/{workload["metadata"]["name"]}'
    pod = workload["spec"]["template"]["spec"]
    expect(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
    for container in pod["containers"]:
        where = f'{name} container {container["name"]}'
        security = container.get("securityContext", {})
        expect(security.get("readOnlyRootFilesystem") is True, f"{where}: read-only root")
        expect(security.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
        expect(security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drops all capabilities")
        resources = container.get("resources", {})
        expect("cpu" in resources.get("requests", {}), f"{where}: cpu request")
        expect("memory" in resources.get("requests", {}), f"{where}: memory request")
        expect("memory" in resources.get("limits", {}), f"{where}: memory limit")

for workload in workloads:
    name = f'{workload["kind"]}/{workload["metadata"]["name"]}'
    pod = workload["spec"]["template"]["spec"]
    # Nothing of Verdict (or NATS, MinIO) talks to the Kubernetes API.
    expect(pod.get("automountServiceAccountToken") is False, f"{name}: no service account token")
    for volume in pod.get("volumes", []):
        if "emptyDir" in volume:
            expect(
                (volume["emptyDir"] or {}).get("sizeLimit"),
                f'{name}: emptyDir {volume["name"]} has a sizeLimit',
            )

# An autoscaled Deployment leaves its replica count to the autoscaler: a `replicas` in
# the manifest would reset it at every apply.
for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
    target = hpa["spec"]["scaleTargetRef"]
    scaled = by_kind.get(target["kind"], {}).get(target["name"], {})
    expect(scaled, f'HPA {hpa["metadata"]["name"]} targets an existing {target["kind"]}')
    expect(
        "replicas" not in scaled.get("spec", {}),
        f'{target["kind"]}/{target["name"]}: no replicas (HPA {hpa["metadata"]["name"]} owns them)',
    )

# NATS nodes (and so JetStream replicas) on different hosts, strictly.
nats_pod = by_kind.get("StatefulSet", {}).get("nats", {}).get("spec", {}).get("template", {}).get("spec", {})
expect(
    any(
        constraint.get("topologyKey") == "kubernetes.io/hostname"
        and constraint.get("whenUnsatisfiable") == "DoNotSchedule"
        for constraint in nats_pod.get("topologySpreadConstraints", [])
    ),
    "NATS nodes spread across hosts with DoNotSchedule",
)

# Backend services are probed with `verdict healthcheck <service>` (they serve no HTTP),
# and the instance id it reads is written where the container can write.
for service in ("auth", "runs", "artifacts", "realtime", "notify"):
    workload = by_kind.get("StatefulSet", {}).get(service) or by_kind.get("Deployment", {}).get(service, {})
    pod = workload.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            expect(
                command == ["/usr/local/bin/verdict", "healthcheck", service],
                f"{service}: {probe} runs `verdict healthcheck {service}` (got {command})",
            )
for workload in workloads:
    pod = workload["spec"]["template"]["spec"]
    for container in pod["containers"]:
        if container.get("image") is None or "verdict" not in container["image"]:
            continue
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        instance_file = env.get("VERDICT_INSTANCE_FILE") or "/data/"
        mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
        expect(
            any(instance_file.startswith(mount.rstrip("/") + "/") for mount in mounts),
            f'{workload["metadata"]["name"]}: instance file {instance_file} on a writable volume',
        )

for stateless in ("gateway", "realtime"):
    expect(stateless in by_kind.get("Deployment", {}), f"{stateless} is a Deployment")
    expect(stateless in by_kind.get("HorizontalPodAutoscaler", {}), f"{stateless} has an HPA")
    expect(stateless in by_kind.get("PodDisruptionBudget", {}), f"{stateless} has a PDB")
for stateful in ("auth", "runs", "artifacts", "notify", "nats"):
    sts = by_kind.get("StatefulSet", {}).get(stateful)
    expect(sts is not None, f"{stateful} is a StatefulSet")
    if sts:
        expect(sts["spec"].get("volumeClaimTemplates"), f"{stateful} keeps its data on a PVC")
expect(by_kind.get("StatefulSet", {}).get("nats", {}).get("spec", {}).get("replicas") == 3, "3 NATS nodes")
for sts in ("auth", "runs", "artifacts", "notify"):
    replicas = by_kind.get("StatefulSet", {}).get(sts, {}).get("spec", {}).get("replicas")
    expect(replicas == 1, f"{sts}: one writer per SQLite file")

gateway = by_kind.get("Deployment", {}).get("gateway", {})
for container in gateway.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
    expect(container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "gateway readiness on /readyz")
    expect(container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "gateway liveness on /healthz")

# Every Verdict process is scraped by an in-cluster Prometheus on its admin listener,
# which no Service exposes (so no Ingress can).
for workload in workloads:
    template = workload["spec"]["template"]
    name = f'{workload["kind"]}/{workload["metadata"]["name"]}'
    if template["metadata"].get("labels", {}).get("verdict.dev/nats-client") != "true":
        continue
    annotations = template["metadata"].get("annotations", {})
    expect(annotations.get("prometheus.io/scrape") == "true", f"{name}: scraped by Prometheus")
    ports = {
        port.get("name"): port["containerPort"]
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
    }
    expect(str(ports.get("metrics")) == annotations.get("prometheus.io/port"),
           f"{name}: the scraped port is its metrics port")
for service in by_kind.get("Service", {}).values():
    for port in service["spec"].get("ports", []):
        expect(port.get("targetPort") not in ("metrics", 9464) and port["port"] != 9464,
               f"Service {service['metadata']['name']} exposes the metrics port")

# Only the gateway (and an in-cluster S3 its presigned URLs name) is reachable from
# outside: every Ingress backend is one of those.
for ingress in by_kind.get("Ingress", {}).values():
    annotations = ingress["metadata"].get("annotations", {})
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]["name"]
            expect(backend in ("gateway", "minio"), f"Ingress {ingress['metadata']['name']} exposes {backend}")
            if backend == "gateway":
                timeout = int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60"))
                expect(timeout >= 3600, "WebSockets through the Ingress stay open an hour")
policies = by_kind.get("NetworkPolicy", {})
deny = policies.get("default-deny", {}).get("spec", {})
expect(deny.get("podSelector") == {} and sorted(deny.get("policyTypes", [])) == ["Egress", "Ingress"], "default deny")
for policy in policies.values():
    spec = policy["spec"]
    for rule in spec.get("ingress", []):
        if "from" not in rule:
            target = spec["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
            ports = sorted(p["port"] for p in rule.get("ports", []))
            open_to_all = (target, ports)
            expect(open_to_all in (("gateway", [3003]), ("minio", [9000])),
                   f"NetworkPolicy {policy['metadata']['name']} opens {open_to_all} to everyone")

# NATS monitoring is reachable only by what scrapes it: not published on a Service.
for service in by_kind.get("Service", {}).values():
    ports = [port.get("port") for port in service["spec"].get("ports", [])]
    expect(8222 not in ports, f"Service {service['metadata']['name']} publishes NATS monitoring")



def selects(policy, name):
    selector = policy["spec"]["podSelector"]
    if selector == {} or selector.get("matchLabels", {}).get("app.kubernetes.io/name") == name:
        return True
    return any(
        term["key"] == "app.kubernetes.io/name" and term["operator"] == "In" and name in term["values"]
        for term in selector.get("matchExpressions", [])
    )


def egress_ports(name):
    return {
        port["port"]
        for policy in policies.values()
        if selects(policy, name)
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


# Blob bytes: artifacts checks and deletes them, the gateways upload imported reports,
# runs reads them; all through the store's internal endpoint.
for name in ("artifacts", "gateway", "runs"):
    expect(443 in egress_ports(name), f"{name} reaches S3 over HTTPS")
    if "minio" in by_kind.get("StatefulSet", {}):
        expect(9000 in egress_ports(name), f"{name} reaches the in-cluster MinIO")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
