"""Structural checks of the container and observability files that need no Docker daemon.

Run by scripts/check-deploy.sh inside its venv (PyYAML) with the repository root as argument.
Prints one line per check and exits 1 listing every failure. What it proves:

- compose.yaml: every service has an image or a build whose context and Dockerfile exist; every
  depends_on target exists with a valid condition; every bind-mounted file exists; long-running
  services have a healthcheck (or disable it with a reason: the worker serves no HTTP); the
  MongoDB members, the replica-set init script and MONGODB_URI name the same hosts; the dhara
  services carry the fixed environment names; JWT_SECRET has no default; NGINX's upstreams are
  the API services on the port the image listens on; the trusted proxy is NGINX's address.
- Dockerfile: multi-stage, non-root, HEALTHCHECK, ENTRYPOINT dhara; every COPY source exists and
  is not excluded by .dockerignore; the config file of DHARA_ENV exists.
- alerts.yml, alerts.test.yml and the Grafana dashboard: every metric name in every PromQL
  expression (and every test input series) is one that src/metrics.rs registers (or `up`);
  every alert has a runbook annotation whose anchor is a heading of deploy/README-ops.md and a
  unit test that expects it to fire.
- It writes the dashboard's expressions as recording rules into a temporary file (argument 2)
  so that the shell script can have promtool parse them.
"""

import json
import re
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1])
dashboard_rules_out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
deploy = root / "deploy"
obs = deploy / "observability"
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


# --- metric names registered by src/metrics.rs ------------------------------------------------

metrics_rs = (root / "src/metrics.rs").read_text()
registered: set[str] = set()
for m in re.finditer(r'(HistogramOpts::new|Opts::new|IntGauge::new|by_kind)\(\s*"([a-z_:][a-z0-9_:]*)"', metrics_rs):
    name = m.group(2)
    if m.group(1) == "HistogramOpts::new":
        registered.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    else:
        registered.add(name)
# Series Prometheus itself attaches to every target.
known = registered | {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
print(f"src/metrics.rs registers {len(registered)} series names")
check(
    {"http_request_duration_seconds_bucket", "email_queue_depth", "cache_hits_total"} <= registered,
    "the metric-name parser finds src/metrics.rs's metrics",
)

KEYWORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "inf", "nan", "Inf", "NaN", "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (no full parser: strings, label matchers, ranges and
    grouping clauses are removed, then identifiers not called as functions remain)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        before = e[m.start() - 1] if m.start() else " "
        if before.isdigit() or before in ".$":
            continue
        if re.match(r"\s*\(", e[m.end():]) or m.group(0) in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


check(
    metric_names('sum by (le) (rate(a_bucket{x="y"}[5m])) / on(i) group_left(j) b > 0.5e3 unless c offset 5m')
    == {"a_bucket", "b", "c"},
    "the PromQL name extractor keeps metrics and drops functions, labels and keywords",
)


def check_names(where: str, expr: str) -> None:
    unknown = metric_names(expr) - known
    check(not unknown, f"{where}: metrics exist ({', '.join(sorted(unknown)) or 'all known'})")


# --- alerts.yml, its unit tests and the runbook -------------------------------------------------

alerts = yaml.safe_load((obs / "alerts.yml").read_text())
tests = yaml.safe_load((obs / "alerts.test.yml").read_text())
runbook = (deploy / "README-ops.md").read_text()
headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", runbook, re.M)}
tested = {
    t["alertname"]
    for case in tests["tests"]
    for t in case.get("alert_rule_test", [])
    if t.get("exp_alerts")
}
print("alerts.yml")
alert_names = []
for group in alerts["groups"]:
    for rule in group["rules"]:
        name = rule.get("alert") or rule.get("record")
        alert_names.append(name)
        check_names(name, rule["expr"])
        if "alert" in rule:
            anchor = f"runbook-{name.lower()}"
            check(
                rule.get("annotations", {}).get("runbook") == f"deploy/README-ops.md#{anchor}",
                f"{name}: runbook annotation names deploy/README-ops.md#{anchor}",
            )
            check(anchor in headings, f"{name}: deploy/README-ops.md has the heading ### {anchor}")
            check(name in tested, f"{name}: alerts.test.yml expects it to fire")
            check(rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{name}: severity label")
check(len(alert_names) == len(set(alert_names)), "alert names are unique")
for case in tests["tests"]:
    for s in case.get("input_series", []):
        check_names(f"alerts.test.yml series {s['series'][:60]}", s["series"])

# --- the Grafana dashboard ----------------------------------------------------------------------

print("grafana-dashboard.json")
dash = json.loads((obs / "grafana-dashboard.json").read_text())
check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36, "schemaVersion is set")
check(any(i.get("name") == "DS_PROMETHEUS" for i in dash.get("__inputs", [])), "declares the DS_PROMETHEUS input")
ids = [p["id"] for p in dash["panels"]]
check(len(ids) == len(set(ids)), "panel ids are unique")
exprs = []
for p in dash["panels"]:
    check(p.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}", f"panel '{p['title']}' uses ${{DS_PROMETHEUS}}")
    for t in p.get("targets", []):
        exprs.append(t["expr"])
        check_names(f"panel '{p['title']}' {t['refId']}", t["expr"])
titles = " ".join(p["title"].lower() for p in dash["panels"])
for needed in ["request rate", "error ratio", "p95", "admission", "mongodb", "cache hit", "reminder lag", "emails", "queue depth"]:
    check(needed in titles, f"a panel covers {needed}")
if dashboard_rules_out:
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": e.replace("$__rate_interval", "5m").replace("$__interval", "1m")}
        for i, e in enumerate(exprs)
    ]
    dashboard_rules_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

# --- compose.yaml ---------------------------------------------------------------------------------

print("compose.yaml")
compose = yaml.safe_load((deploy / "compose.yaml").read_text())
services = compose["services"]
for name, svc in services.items():
    check("image" in svc or "build" in svc, f"{name}: has an image or a build")
    if "build" in svc:
        ctx = (deploy / svc["build"]["context"]).resolve()
        check((ctx / svc["build"].get("dockerfile", "Dockerfile")).is_file(), f"{name}: build context has its Dockerfile")
    deps = svc.get("depends_on", {})
    for dep, spec in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
        check(dep in services, f"{name}: depends_on {dep} exists")
        check(
            spec.get("condition") in {"service_healthy", "service_completed_successfully", "service_started"},
            f"{name}: depends_on {dep} has a condition",
        )
        if spec.get("condition") == "service_healthy":
            hc = services.get(dep, {}).get("healthcheck", {})
            check(bool(hc.get("test")) and not hc.get("disable"), f"{name}: {dep} has the healthcheck it waits for")
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        if src.startswith("."):
            check((deploy / src).exists(), f"{name}: mounted {src} exists")
    one_shot = svc.get("restart") == "no"
    hc = svc.get("healthcheck", {})
    if not one_shot:
        check(bool(hc.get("test")) or (hc.get("disable") and name == "worker"), f"{name}: has a healthcheck")

mongos = [n for n in services if re.fullmatch(r"mongo\d", n)]
check(len(mongos) == 3, "three MongoDB members")
for n in mongos:
    svc = services[n]
    check(svc["image"].startswith("mongo:8"), f"{n}: MongoDB 8")
    check("--replSet" in svc["command"] and "rs0" in svc["command"], f"{n}: member of rs0")
init_js = (deploy / "mongo/init-replica.js").read_text()
init_hosts = set(re.findall(r'host: "([^"]+)"', init_js))
check(init_hosts == {f"{n}:27017" for n in mongos}, "init-replica.js initiates exactly the three members")
check("replSetInitiate" in init_js and "PRIMARY" in init_js, "init-replica.js initiates and waits for a primary")

dhara = {n: s for n, s in services.items() if s.get("image") == "dhara:local"}
apis = [n for n, s in dhara.items() if s.get("command") == ["serve", "--no-worker"]]
workers = [n for n, s in dhara.items() if s.get("command") == ["worker"]]
check(len(apis) == 3, f"three API instances (serve --no-worker): {apis}")
check(len(workers) == 1, "one worker")
check(dhara.get("indexes", {}).get("command") == ["indexes"], "a one-shot `dhara indexes`")
check(
    dhara["indexes"]["depends_on"].get("mongo-init", {}).get("condition") == "service_completed_successfully",
    "indexes waits for the replica set",
)
for n in apis + workers:
    check(
        dhara[n]["depends_on"].get("indexes", {}).get("condition") == "service_completed_successfully",
        f"{n}: starts after indexes",
    )
for n, s in dhara.items():
    env = s["environment"]
    for key in ["MONGODB_URI", "MONGODB_DATABASE", "REDIS_URL", "JWT_SECRET", "SMTP_URL", "DHARA_ENV"]:
        check(key in env, f"{n}: sets {key}")
    check(env["DHARA_ENV"] == "production", f"{n}: DHARA_ENV=production")
    check(re.fullmatch(r"\$\{JWT_SECRET:\?[^}]+\}", env["JWT_SECRET"]) is not None, f"{n}: JWT_SECRET must be given (no default)")
    uri_hosts = set(re.match(r"mongodb://([^/]+)/", env["MONGODB_URI"]).group(1).split(","))
    check(uri_hosts == init_hosts and "replicaSet=rs0" in env["MONGODB_URI"], f"{n}: MONGODB_URI names rs0's members")
check((root / "config/production.toml").is_file(), "config/production.toml exists (DHARA_ENV=production needs it)")

nginx = services["nginx"]
nginx_conf = (deploy / "nginx/compose.conf").read_text()
upstreams = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx_conf, re.M))
dockerfile = (root / "Dockerfile").read_text()
port = re.search(r"\bPORT=(\d+)", dockerfile).group(1)
check(upstreams == {(n, port) for n in apis}, f"nginx upstreams are the API services on port {port}")
check("include snippets/dhara-proxy.conf;" in nginx_conf, "nginx uses the repo's proxy snippet")
nginx_ip = nginx["networks"]["dhara"]["ipv4_address"]
check(
    all(s["environment"].get("DHARA_HTTP__TRUSTED_PROXIES") == nginx_ip for s in dhara.values()),
    "the services trust forwarded addresses from NGINX's address only",
)
subnet = compose["networks"]["dhara"]["ipam"]["config"][0]["subnet"]
check(nginx_ip.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0], "NGINX's address is in the network's subnet")

# --- Dockerfile ---------------------------------------------------------------------------------

print("Dockerfile")
stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.M | re.I)
check(len(stages) >= 2 and stages[0][0] == "rust:1-bookworm", "multi-stage, built on rust:1-bookworm")
check(stages[-1][0] in {"debian:bookworm-slim", "gcr.io/distroless/cc-debian12"}, "slim runtime stage")
user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
check(bool(user) and not user[-1].startswith(("root", "0")), "runs as a non-root user")
check(re.search(r"^HEALTHCHECK .*/health", dockerfile, re.M | re.S) is not None, "HEALTHCHECK on /health")
check('ENTRYPOINT ["dhara"]' in dockerfile and 'CMD ["serve", "--no-worker"]' in dockerfile, "ENTRYPOINT dhara, CMD serve --no-worker")
check(f"EXPOSE {port}" in dockerfile, f"EXPOSE {port}, the port it listens on")
check("--locked" in dockerfile, "cargo build --locked")
ignored = [
    line.strip().rstrip("/")
    for line in (root / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
for m in re.finditer(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+(\S+)$", dockerfile, re.M):
    for src in m.group(1).split():
        check((root / src).exists(), f"COPY {src}: exists")
        check(src.rstrip("/") not in ignored, f"COPY {src}: not excluded by .dockerignore")
for needed in ["src/main.rs", "build.rs", "Cargo.lock"]:
    check(needed.split("/")[0] not in ignored, f".dockerignore keeps {needed}")

print()
if failures:
    print(f"check_deploy.py: {len(failures)} failure(s):")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print("check_deploy.py: all structural checks passed")
