#!/usr/bin/env python3
"""Offline structural checks of everything under deploy/ (called by validate.sh).

    python3 deploy/check_deploy.py            # all checks
    python3 deploy/check_deploy.py --list     # names of the checks

Each check prints "ok: ..." lines; a failure prints "FAIL: ..." and the
script exits 1 after running every check. Needs only PyYAML.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extract_promql  # noqa: E402

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent

# Series Prometheus itself attaches to every scrape target.
PROMETHEUS_SYNTHETIC = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "start", "end", "atan2",
}

failures: list[str] = []


def ok(msg: str) -> None:
    print(f"  ok: {msg}")


def fail(msg: str) -> None:
    print(f"  FAIL: {msg}")
    failures.append(msg)


def expect(cond: bool, msg: str) -> None:
    (ok if cond else fail)(msg)


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def load_yaml(p: Path):
    return yaml.safe_load(p.read_text())


# --------------------------------------------------------------------- helpers
def exported_metrics() -> set[str]:
    names = set()
    for line in (DEPLOY / "exported-metrics.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split()[0])
    return names


def recorded_metrics() -> set[str]:
    names = set()
    for f in extract_promql.rule_files():
        for g in load_yaml(f)["groups"]:
            for r in g["rules"]:
                if "record" in r:
                    names.add(r["record"])
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (lexical, no parser).

    Strips string literals, label matchers, range/subquery brackets and the
    label lists of by/without/on/ignoring/group_*; what is left that looks
    like an identifier and is not a function call or keyword is a metric.
    """
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        prev = s[m.start() - 1] if m.start() > 0 else " "
        if prev.isdigit() or prev == ".":
            continue  # exponent / duration suffix
        if s[m.end():].lstrip().startswith("("):
            continue  # function or aggregation operator
        if tok.lower() in PROMQL_KEYWORDS:
            continue
        names.add(tok)
    return names


# ---------------------------------------------------------------------- checks
def check_yaml_parses() -> None:
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))
    for p in files:
        try:
            docs = list(yaml.safe_load_all(p.read_text()))
            expect(bool(docs) and all(d is not None for d in docs), f"{rel(p)} parses as YAML ({len(docs)} doc)")
        except yaml.YAMLError as e:
            fail(f"{rel(p)} is not valid YAML: {e}")
    expect(len(files) >= 15, f"{len(files)} YAML files found under deploy/")


def check_dashboards() -> None:
    files = extract_promql.dashboard_files()
    expect(bool(files), "at least one dashboard JSON exists")
    ds = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    ds_uids = {d["uid"] for d in ds["datasources"]}
    expect(ds_uids == {"prometheus"}, "provisioned datasource uid is 'prometheus'")
    for f in files:
        text = f.read_text()
        try:
            dash = json.loads(text)
        except json.JSONDecodeError as e:
            fail(f"{rel(f)} is not valid JSON: {e}")
            continue
        ok(f"{rel(f)} parses as JSON")
        expect("${DS_" not in text and "__inputs" not in dash,
               f"{rel(f)} has no ${{DS_...}} import inputs")
        expect(isinstance(dash.get("uid"), str) and 0 < len(dash["uid"]) <= 40, f"{rel(f)} has a uid (<= 40 chars)")
        expect(isinstance(dash.get("schemaVersion"), int) and 36 <= dash["schemaVersion"] <= 41,
               f"{rel(f)} schemaVersion {dash.get('schemaVersion')} is in 36..41")
        expect(dash.get("id") in (None,), f"{rel(f)} has no instance-specific numeric id")
        panels = list(extract_promql._walk_panels(dash.get("panels")))
        ids = [p.get("id") for p in panels]
        expect(len(ids) == len(set(ids)) and None not in ids, f"{rel(f)} panel ids are unique ({len(ids)} panels)")
        # The datasource is a template variable (type datasource, Prometheus) whose default is
        # the provisioned uid; every panel, query, variable and annotation goes through it.
        variables = (dash.get("templating") or {}).get("list") or []
        ds_vars = [v for v in variables if v.get("type") == "datasource"]
        expect(len(ds_vars) == 1 and ds_vars[0].get("name") == "datasource"
               and ds_vars[0].get("query") == "prometheus"
               and (ds_vars[0].get("current") or {}).get("value") in ds_uids,
               f"{rel(f)} has a Prometheus datasource variable defaulting to the provisioned uid")
        ds_ref = "${datasource}"
        bad_ds = []
        for p in panels:
            if p.get("type") == "row":
                continue
            for obj in [p] + list(p.get("targets") or []):
                d = obj.get("datasource")
                if not (isinstance(d, dict) and d.get("uid") == ds_ref and d.get("type") == "prometheus"):
                    bad_ds.append(f"panel {p.get('id')}")
        for obj in [v for v in variables if v.get("type") == "query"] + [
                a for a in (dash.get("annotations") or {}).get("list") or [] if a.get("expr")]:
            d = obj.get("datasource")
            if not (isinstance(d, dict) and d.get("uid") == ds_ref):
                bad_ds.append(f"variable/annotation {obj.get('name')}")
            gp = p.get("gridPos") or {}
            if not all(k in gp for k in ("x", "y", "w", "h")) or gp["x"] + gp["w"] > 24:
                fail(f"{rel(f)} panel {p.get('id')} has a bad gridPos {gp}")
            if not p.get("targets"):
                fail(f"{rel(f)} panel {p.get('id')} {p.get('title')!r} has no query")
            refs = [t.get("refId") for t in p.get("targets") or []]
            if len(refs) != len(set(refs)):
                fail(f"{rel(f)} panel {p.get('id')} has duplicate refIds")
        cells: dict[tuple[int, int], object] = {}
        overlaps = set()
        for p in panels:
            gp = p.get("gridPos") or {}
            for x in range(gp.get("x", 0), gp.get("x", 0) + gp.get("w", 0)):
                for y in range(gp.get("y", 0), gp.get("y", 0) + gp.get("h", 0)):
                    if (x, y) in cells:
                        overlaps.add((cells[(x, y)], p.get("id")))
                    cells[(x, y)] = p.get("id")
        expect(not overlaps, f"{rel(f)} panels do not overlap" + (f" ({sorted(overlaps)})" if overlaps else ""))
        expect(not bad_ds, f"{rel(f)} every panel, query, variable and annotation uses the ${{datasource}} variable"
               + (f" (bad: {sorted(set(bad_ds))})" if bad_ds else ""))
        titles = " | ".join(p.get("title", "") for p in panels).lower()
        exprs = " ".join(t.get("expr", "") for p in panels for t in p.get("targets") or [])
        for what, needle in [
            ("unique IPs via max()", "max(unique_ip_addresses"),
            ("requests/s by outcome", "sum by (outcome) (rate(uniqd_ingest_requests_total"),
            ("lines/s by outcome", "sum by (outcome) (rate(uniqd_ingest_lines_total"),
            ("latency p50", "histogram_quantile(0.5,"),
            ("latency p90", "histogram_quantile(0.9,"),
            ("latency p99", "histogram_quantile(0.99,"),
            ("counter phase", "uniqd_estimator_phase"),
            ("relative standard error", "uniqd_estimator_relative_standard_error"),
        ]:
            expect(needle in exprs, f"{rel(f)} has a panel for {what}")
        expect("error ratio" in titles, f"{rel(f)} has an error ratio panel")
        types = {p.get("type") for p in panels}
        expect({"stat", "timeseries"} <= types, f"{rel(f)} has stat and time series panels")


def check_metric_names() -> None:
    allowed_exported = exported_metrics()
    allowed = allowed_exported | PROMETHEUS_SYNTHETIC | recorded_metrics()
    used: dict[str, set[str]] = {}
    for src, expr in extract_promql.all_exprs():
        names = metric_names(expr)
        if not names:
            # only constants, e.g. vector(1000000)
            continue
        unknown = names - allowed
        if unknown:
            fail(f"{src}: unknown metric name(s) {sorted(unknown)} in {expr}")
        for n in names:
            used.setdefault(n, set()).add(src)
    # dashboard variables (label_values(metric, label) is not PromQL)
    for f in extract_promql.dashboard_files():
        dash = json.loads(f.read_text())
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            for m in re.finditer(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,", q):
                if m.group(1) not in allowed:
                    fail(f"{rel(f)} variable {v.get('name')}: unknown metric {m.group(1)}")
                used.setdefault(m.group(1), set()).add(f"{rel(f)} variable {v.get('name')}")
    # rule unit tests feed series by name; they must be real names too
    for t in sorted((DEPLOY / "prometheus").glob("*.test.yml")):
        for case in load_yaml(t).get("tests") or []:
            for s in case.get("input_series") or []:
                name = re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)", s["series"]).group(1)
                if name not in allowed:
                    fail(f"{rel(t)} test {case.get('name')!r}: unknown metric {name}")
    ok(f"every metric name in dashboards, rules and rule tests is exported by uniqd, "
       f"Prometheus-generated or a recording rule ({len(used)} names used)")
    unused = sorted(allowed_exported - set(used))
    expect(not unused, "every exported metric is used by a panel or rule"
           + (f" (unused: {unused})" if unused else ""))
    # the extractor itself must not see unsubstituted Grafana variables
    leftovers = [e for _, e in extract_promql.all_exprs() if "$" in e]
    expect(not leftovers, "extracted expressions contain no Grafana variables")


def check_prometheus_configs() -> None:
    for name, target in [("prometheus.yml", "127.0.0.1:9102"), ("prometheus.compose.yml", "uniqd:9102")]:
        p = DEPLOY / "prometheus" / name
        cfg = load_yaml(p)
        jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
        j = jobs.get("uniqd")
        expect(j is not None, f"{rel(p)} has scrape job 'uniqd'")
        if j:
            targets = [t for sc in j.get("static_configs", []) for t in sc["targets"]]
            expect(target in targets, f"{rel(p)} job uniqd scrapes {target}")
            expect(j.get("metrics_path", "/metrics") == "/metrics", f"{rel(p)} job uniqd uses /metrics")
        for rf in cfg.get("rule_files", []):
            expect((p.parent / rf).is_file(), f"{rel(p)} rule file {rf} exists next to it")
        expect({"alerts.yml", "quota.yml"} <= set(cfg.get("rule_files", [])),
               f"{rel(p)} loads alerts.yml and quota.yml")
    compose_cfg = load_yaml(DEPLOY / "prometheus/prometheus.compose.yml")
    expect(compose_cfg["scrape_configs"][0]["scrape_interval"] == "5s",
           "compose Prometheus scrapes uniqd every 5s")
    alerts = {r["alert"]: r for g in load_yaml(DEPLOY / "prometheus/alerts.yml")["groups"]
              for r in g["rules"] if "alert" in r}
    for a in ["UniqdDown", "UniqdIngestErrorRatioHigh", "UniqdScrapeSlow", "UniqdVisitorQuota80Percent",
              "UniqdVisitorQuota90Percent", "UniqdVisitorQuotaExceeded"]:
        expect(a in alerts and "severity" in alerts[a].get("labels", {}), f"alert {a} exists with a severity")
    # every alert must be exercised by a unit test, firing at least once
    fired, named = set(), set()
    for t in sorted((DEPLOY / "prometheus").glob("*.test.yml")):
        for case in load_yaml(t).get("tests") or []:
            for a in case.get("alert_rule_test") or []:
                named.add(a["alertname"])
                if a.get("exp_alerts"):
                    fired.add(a["alertname"])
    missing = sorted(set(alerts) - fired)
    expect(not missing, "every alert has a unit test where it fires" + (f" (missing: {missing})" if missing else ""))


def check_compose() -> None:
    p = DEPLOY / "compose/docker-compose.yml"
    c = load_yaml(p)
    svcs = c.get("services", {})
    base = {n for n, s in svcs.items() if not s.get("profiles")}
    expect({"uniqd", "prometheus", "grafana"} <= base, f"{rel(p)} default services: {sorted(base)}")
    for n, s in svcs.items():
        expect("image" in s or "build" in s, f"service {n} has an image or build")
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("."):
                expect((p.parent / src).exists(), f"service {n} mounts existing path {src}")
        for ports in s.get("ports", []):
            expect(re.fullmatch(r"\d+:\d+", str(ports)) is not None, f"service {n} port mapping {ports!r} is HOST:CONTAINER")
        b = s.get("build")
        if b:
            ctx = p.parent / b["context"]
            expect((ctx / "Cargo.toml").is_file(), f"service {n} build context {b['context']} is the repo root")
            expect((ctx / b["dockerfile"]).is_file(), f"service {n} dockerfile {b['dockerfile']} exists")
        for dep in (s.get("depends_on") or {}):
            expect(dep in svcs, f"service {n} depends on existing service {dep}")
    u = svcs.get("uniqd", {})
    expect({"5000:5000", "9102:9102"} <= set(map(str, u.get("ports", []))), "uniqd publishes 5000 and 9102")
    expect(u.get("read_only") is True and "ALL" in u.get("cap_drop", []), "uniqd runs read-only with no capabilities")
    prom = svcs.get("prometheus", {})
    expect(any("prometheus.compose.yml:/etc/prometheus/prometheus.yml" in v for v in prom.get("volumes", [])),
           "prometheus mounts prometheus.compose.yml as its config")
    expect(all(any(f"{r}:/etc/prometheus/{r}" in v for v in prom.get("volumes", []))
               for r in ("alerts.yml", "quota.yml")), "prometheus mounts alerts.yml and quota.yml next to it")
    g = svcs.get("grafana", {})
    env = g.get("environment", {})
    expect(env.get("GF_AUTH_ANONYMOUS_ENABLED") == "true" and env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer",
           "grafana allows anonymous viewers")
    prov = load_yaml(DEPLOY / "grafana/provisioning/dashboards/uniqd.yml")
    dash_path = prov["providers"][0]["options"]["path"]
    expect(any(v.endswith(f":{dash_path}:ro") and v.startswith("../grafana/dashboards") for v in g.get("volumes", [])),
           f"grafana mounts the dashboards where the provider looks ({dash_path})")
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    expect(home.startswith(dash_path + "/") and (DEPLOY / "grafana/dashboards" / Path(home).name).is_file(),
           "grafana home dashboard path points at a shipped dashboard")
    ds = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    expect(ds["url"] == "http://prometheus:9090" and "prometheus" in svcs, "grafana datasource points at the prometheus service")
    t = svcs.get("traffic", {})
    cmd = [str(x) for x in t.get("command", [])]
    expect(t.get("profiles") == ["traffic"], "traffic service is in profile 'traffic'")
    expect(cmd[:1] == ["loadgen"] and cmd[cmd.index("--url") + 1] == "http://uniqd:5000/logs"
           and cmd[cmd.index("--metrics-url") + 1] == "http://uniqd:9102/metrics"
           and cmd[cmd.index("--addresses") + 1] == "1000000" and cmd[cmd.index("--rate") + 1] == "2000",
           "traffic runs `uniqd loadgen --url http://uniqd:5000/logs --metrics-url http://uniqd:9102/metrics --addresses 1000000 --rate 2000`")
    expect((t.get("healthcheck") or {}).get("disable") is True, "traffic disables the image healthcheck")
    scale = {n: s for n, s in svcs.items() if "scale" in (s.get("profiles") or [])}
    replicas = [n for n, s in scale.items() if (s.get("environment") or {}).get("UNIQD_REDIS_URL") == "redis://redis:6379"]
    expect(len(replicas) >= 2, f"scale profile has >= 2 uniqd replicas with UNIQD_REDIS_URL ({replicas})")
    expect("redis" in scale and re.match(r"(valkey/valkey|redis):", scale["redis"].get("image", "")) is not None,
           "scale profile has a redis/valkey service named redis")
    published = [str(pm).split(":")[0] for s in svcs.values() for pm in s.get("ports", [])]
    expect(len(published) == len(set(published)), "no host port is published twice")


def check_dockerfile() -> None:
    p = DEPLOY / "docker/Dockerfile"
    lines, cur = [], ""
    for raw in p.read_text().splitlines():
        if raw.lstrip().startswith("#") and not cur:
            continue
        cur += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
    froms = [a for i, a in instr if i == "FROM"]
    expect(len(froms) >= 2, f"{rel(p)} is multi-stage ({len(froms)} stages)")
    expect(froms and froms[0].startswith("rust:"), f"{rel(p)} builds in a rust image")
    expect(froms and froms[-1].startswith("gcr.io/distroless/cc-debian12:nonroot"),
           f"{rel(p)} final stage is distroless/cc-debian12:nonroot")
    runs = " ".join(a for i, a in instr if i == "RUN")
    expect("cargo build --release --locked -p uniqd" in runs, f"{rel(p)} runs cargo build --release --locked -p uniqd")
    final = instr[max(k for k, (i, _) in enumerate(instr) if i == "FROM"):]
    users = [a for i, a in final if i == "USER"]
    expect(bool(users) and users[-1].split(":")[0] not in ("0", "root"), f"{rel(p)} final stage runs as non-root ({users})")
    exposes = " ".join(a for i, a in final if i == "EXPOSE").split()
    expect({"5000", "9102"} <= set(exposes), f"{rel(p)} exposes 5000 and 9102")
    hc = [a for i, a in final if i == "HEALTHCHECK"]
    expect(bool(hc) and '["/uniqd", "healthcheck", "--url", "http://127.0.0.1:9102/healthz"]' in hc[0],
           f"{rel(p)} HEALTHCHECK is exec-form `/uniqd healthcheck --url .../healthz`")
    ep = [a for i, a in final if i == "ENTRYPOINT"]
    expect(ep == ['["/uniqd"]'], f"{rel(p)} ENTRYPOINT is [\"/uniqd\"]")
    ign = DEPLOY / "docker/Dockerfile.dockerignore"
    pats = [l.strip() for l in ign.read_text().splitlines() if l.strip() and not l.startswith("#")]
    expect(pats[:1] == ["*"] and {"!Cargo.toml", "!Cargo.lock", "!crates/"} <= set(pats),
           f"{rel(ign)} allow-lists the workspace")
    for needed in ("Cargo.toml", "Cargo.lock", "crates"):
        expect((REPO / needed).exists(), f"build input {needed} exists in the repo")


def _cli_env_names() -> set[str]:
    """Every UNIQD_* variable the binary reads (the `env = "..."` of its clap arguments)."""
    names = set()
    for f in (REPO / "crates/uniqd/src/cli").rglob("*.rs"):
        names |= set(re.findall(r'env\s*=\s*"(UNIQD_[A-Z0-9_]+)"', f.read_text()))
    return names


def _by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def _uniqd_deployment(objs: list[dict]) -> dict:
    return next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "uniqd")


def _env(dep: dict) -> dict[str, dict]:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in c.get("env", [])}


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def _check_rendering(name: str, objs: list[dict], cli_env: set[str]) -> None:
    """What every rendering (base, overlays) must satisfy."""
    kinds = _by_kind(objs)
    dep = _uniqd_deployment(objs)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    env = _env(dep)
    unknown = sorted(n for n in env if n.startswith("UNIQD_") and n not in cli_env)
    expect(not unknown, f"{name}: every UNIQD_* variable of the Deployment is one uniqd reads"
           + (f" (unknown: {unknown})" if unknown else ""))
    secrets = {o["metadata"]["name"]: o for o in kinds.get("Secret", [])}
    for n, e in env.items():
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            sec = secrets.get(ref["name"])
            expect(sec is None or ref["key"] in {**(sec.get("data") or {}), **(sec.get("stringData") or {})},
                   f"{name}: {n} reads key {ref['key']} of Secret {ref['name']}"
                   + (" (shipped)" if sec else " (created by the operator, documented)"))
    others = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o is not dep]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for o in kinds.get(kind, []):
            sel = o["spec"].get("selector") if kind == "Service" else (
                o["spec"].get("selector") or o["spec"].get("podSelector") or {}).get("matchLabels")
            mine = o["metadata"]["name"] == "uniqd"
            target = dep if mine else next((d for d in others if o["metadata"]["name"] == d["metadata"]["name"]), None)
            expect(target is not None and _selects(sel, target["spec"]["template"]["metadata"]["labels"]),
                   f"{name}: {kind} {o['metadata']['name']} selects the pods of its Deployment")
            if mine:
                expect(not any(_selects(sel, d["spec"]["template"]["metadata"]["labels"]) for d in others),
                       f"{name}: {kind} uniqd selects no other Deployment's pods")
    expect(len(kinds.get("PodDisruptionBudget", [])) >= 1 and len(kinds.get("NetworkPolicy", [])) >= 1,
           f"{name}: has a PodDisruptionBudget and a NetworkPolicy")
    # Every NetworkPolicy port is one its pods declare (by name or number).
    for np in kinds.get("NetworkPolicy", []):
        sel = np["spec"]["podSelector"].get("matchLabels", {})
        pods = [d for d in [dep] + others if _selects(sel, d["spec"]["template"]["metadata"]["labels"])]
        declared = {(p.get("name"), p["containerPort"]) for d in pods
                    for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        names = {n for n, _ in declared} | {n for _, n in declared}
        ports = [p["port"] for r in np["spec"].get("ingress", []) for p in r.get("ports", [])]
        expect(bool(ports) and all(p in names for p in ports),
               f"{name}: NetworkPolicy {np['metadata']['name']} ports {ports} are ports of its pods")


def check_kubernetes() -> None:
    import importlib.util
    spec = importlib.util.spec_from_file_location("render", DEPLOY / "kubernetes/render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    k = DEPLOY / "kubernetes"
    base_dir = k / "base"
    kust = load_yaml(base_dir / "kustomization.yaml")
    for r in kust["resources"]:
        expect((base_dir / r).is_file(), f"kustomization resource base/{r} exists")
    cli_env = _cli_env_names()
    expect({"UNIQD_INGEST_TOKEN", "UNIQD_METRICS_TOKEN", "UNIQD_REDIS_URL", "UNIQD_STATE_FILE"} <= cli_env,
           f"the CLI reads the variables the manifests set ({len(cli_env)} UNIQD_* found)")
    base = render.render(base_dir)
    top = render.render(k)
    expect(render.compare(base, top) == [], "deploy/kubernetes renders exactly the base")
    docs = {d["kind"]: d for d in base}
    dep = docs.get("Deployment", {})
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    expect(spec.get("replicas") == 1, "Deployment has 1 replica")
    expect(spec.get("selector", {}).get("matchLabels", {}).items()
           <= spec.get("template", {}).get("metadata", {}).get("labels", {}).items(),
           "Deployment selector matches its pod labels")
    expect(pod.get("terminationGracePeriodSeconds") == 30, "terminationGracePeriodSeconds is 30")
    psc = pod.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
           "pod runs as non-root with seccomp RuntimeDefault")
    c = (pod.get("containers") or [{}])[0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    expect(ports == {"ingest": 5000, "metrics": 9102}, f"container ports {ports}")
    lp, rp = c.get("livenessProbe", {}).get("httpGet", {}), c.get("readinessProbe", {}).get("httpGet", {})
    expect(lp.get("path") == "/healthz" and ports.get(lp.get("port"), lp.get("port")) == 9102, "liveness probe GET /healthz on 9102")
    expect(rp.get("path") == "/readyz" and ports.get(rp.get("port"), rp.get("port")) == 9102, "readiness probe GET /readyz on 9102")
    res = c.get("resources", {})
    expect(res.get("requests") == {"cpu": "500m", "memory": "32Mi"} and res.get("limits") == {"memory": "64Mi"},
           f"resources {res}")
    csc = c.get("securityContext", {})
    expect(csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True
           and csc.get("capabilities", {}).get("drop") == ["ALL"], "container: no privilege escalation, read-only root, drop ALL")
    env = _env(dep)
    tokens = {n: (env.get(n, {}).get("valueFrom") or {}).get("secretKeyRef") or {}
              for n in ("UNIQD_INGEST_TOKEN", "UNIQD_METRICS_TOKEN")}
    expect(all(r.get("name") == "uniqd-tokens" and r.get("optional") is True for r in tokens.values())
           and tokens["UNIQD_INGEST_TOKEN"].get("key") == "ingest-token"
           and tokens["UNIQD_METRICS_TOKEN"].get("key") == "metrics-token",
           "tokens come from the optional Secret uniqd-tokens (ingest-token, metrics-token)")
    svc = docs.get("Service", {})
    sports = {p["name"]: p["port"] for p in svc.get("spec", {}).get("ports", [])}
    expect(sports == {"ingest": 5000, "metrics": 9102}, f"Service ports {sports}")
    sm = docs.get("ServiceMonitor", {})
    sel = sm.get("spec", {}).get("selector", {}).get("matchLabels", {})
    expect(bool(sel) and sel.items() <= svc.get("metadata", {}).get("labels", {}).items(), "ServiceMonitor selects the Service")
    eps = sm.get("spec", {}).get("endpoints", [])
    expect(bool(eps) and eps[0].get("port") in sports and eps[0].get("path", "/metrics") == "/metrics",
           "ServiceMonitor scrapes the Service's metrics port at /metrics")
    expect("authorization" not in eps[0], "the base ServiceMonitor sends no token (components/metrics-token does)")
    jl = sm.get("spec", {}).get("jobLabel")
    expect(jl is not None and svc.get("metadata", {}).get("labels", {}).get(jl) == "uniqd",
           "ServiceMonitor job label resolves to 'uniqd' (what the rules select)")
    pdb = docs.get("PodDisruptionBudget", {}).get("spec", {})
    expect(pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb,
           "PodDisruptionBudget: maxUnavailable 1 (a single replica can still be drained)")
    np_ = docs.get("NetworkPolicy", {}).get("spec", {})
    rules = {p["port"]: r for r in np_.get("ingress", []) for p in r.get("ports", [])}
    expect(np_.get("policyTypes") == ["Ingress"] and set(rules) == {"ingest", "metrics"},
           "NetworkPolicy admits only the ingest and metrics ports")
    prom = (rules.get("metrics") or {}).get("from", [{}])[0]
    expect(prom.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "prometheus"}
           and "kubernetes.io/metadata.name" in prom.get("namespaceSelector", {}).get("matchLabels", {}),
           "metrics port: only Prometheus pods of one namespace (the documented assumption)")
    quota = load_yaml(base_dir / "prometheusrule-quota.yaml")
    expect(quota["spec"]["groups"][0]["rules"][0].get("record") == "uniqd:visitor_quota",
           "the documented quota patch path /spec/groups/0/rules/0/expr is uniqd:visitor_quota")
    img = kust.get("images", [{}])[0]
    expect(c.get("image", "").split(":")[0] == img.get("name"), "kustomization images: entry matches the container image")
    _check_rendering("base", base, cli_env)

    # overlays/redis: >= 2 replicas, UNIQD_REDIS_URL from a Secret pointing at the Redis Service.
    redis = render.render(k / "overlays/redis")
    _check_rendering("overlays/redis", redis, cli_env)
    rdep = _uniqd_deployment(redis)
    expect(rdep["spec"]["replicas"] >= 2, f"overlays/redis: {rdep['spec']['replicas']} uniqd replicas")
    ref = ((_env(rdep).get("UNIQD_REDIS_URL") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    sec = next((o for o in redis if o["kind"] == "Secret" and o["metadata"]["name"] == ref.get("name")), {})
    url = (sec.get("stringData") or {}).get(ref.get("key"), "")
    m = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)", url)
    rsvc = next((o for o in redis if o["kind"] == "Service" and m and o["metadata"]["name"] == m.group(1)), None)
    expect(rsvc is not None and any(p["port"] == int(m.group(2)) for p in rsvc["spec"]["ports"]),
           f"overlays/redis: UNIQD_REDIS_URL from Secret {ref.get('name')} ({url}) names the Redis Service and port")
    rnp = next((o for o in redis if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "uniqd-redis"), {})
    froms = [f.get("podSelector", {}).get("matchLabels", {}) for r in rnp.get("spec", {}).get("ingress", [])
             for f in r.get("from", [])]
    expect(froms and all(_selects(f, rdep["spec"]["template"]["metadata"]["labels"]) for f in froms),
           "overlays/redis: only uniqd's pods may reach Redis")

    # overlays/state-file: Recreate, one replica, the state file on the PVC, writable.
    state = render.render(k / "overlays/state-file")
    _check_rendering("overlays/state-file", state, cli_env)
    sdep = _uniqd_deployment(state)
    spod = sdep["spec"]["template"]["spec"]
    expect(sdep["spec"]["strategy"] == {"type": "Recreate"} and sdep["spec"]["replicas"] == 1,
           "overlays/state-file: one replica, strategy Recreate")
    path = (_env(sdep).get("UNIQD_STATE_FILE") or {}).get("value", "")
    mounts = {m_["name"]: m_["mountPath"] for m_ in spod["containers"][0].get("volumeMounts", [])}
    vols = {v["name"]: v for v in spod.get("volumes", [])}
    pvcs = {o["metadata"]["name"] for o in state if o["kind"] == "PersistentVolumeClaim"}
    expect(any(str(Path(path).parent) == mp and (vols.get(n, {}).get("persistentVolumeClaim") or {}).get("claimName") in pvcs
               for n, mp in mounts.items()),
           f"overlays/state-file: UNIQD_STATE_FILE {path} is on a mounted PersistentVolumeClaim")
    expect(spod["securityContext"].get("fsGroup") == spod["securityContext"].get("runAsGroup"),
           "overlays/state-file: fsGroup makes the volume writable by uniqd")

    # components/metrics-token: Prometheus sends the token the Deployment reads.
    comp = render.render(k / "overlays/redis", [k / "components/metrics-token"])
    _check_rendering("overlays/redis + components/metrics-token", comp, cli_env)
    csm = next(o for o in comp if o["kind"] == "ServiceMonitor")
    cred = ((csm["spec"]["endpoints"][0].get("authorization") or {}).get("credentials")) or {}
    want = tokens["UNIQD_METRICS_TOKEN"]
    expect(csm["spec"]["endpoints"][0].get("authorization", {}).get("type") == "Bearer"
           and cred.get("name") == want.get("name") and cred.get("key") == want.get("key"),
           "components/metrics-token: the ServiceMonitor sends the Secret key UNIQD_METRICS_TOKEN reads")


CHECKS = [
    ("yaml", check_yaml_parses),
    ("dashboards", check_dashboards),
    ("metric-names", check_metric_names),
    ("prometheus", check_prometheus_configs),
    ("compose", check_compose),
    ("dockerfile", check_dockerfile),
    ("kubernetes", check_kubernetes),
]


def main() -> int:
    if "--list" in sys.argv[1:]:
        print("\n".join(n for n, _ in CHECKS))
        return 0
    for name, fn in CHECKS:
        print(f"[{name}]")
        try:
            fn()
        except Exception as e:  # a crash in a check is a failure, not a traceback
            fail(f"check {name} crashed: {type(e).__name__}: {e}")
    if failures:
        print(f"check_deploy: {len(failures)} check(s) failed")
        return 1
    print("check_deploy: all structural checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
