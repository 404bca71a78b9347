#!/usr/bin/env python3
"""Print every PromQL expression used by the shipped dashboards and rules.

    python3 deploy/extract_promql.py                # one expression per line
    python3 deploy/extract_promql.py --with-source  # "<source>\t<expression>"
    python3 deploy/extract_promql.py --job uniqd    # value for the $job variable

Sources:
  * deploy/grafana/dashboards/*.json: every panel target `expr` (rows and
    nested panels included) and every annotation query `expr`. Grafana variables are substituted so that each
    line is plain PromQL a real Prometheus can evaluate: $job / ${job} -> the
    --job value (default "uniqd"), $__rate_interval -> 1m,
    $__interval / $__range -> 5m.
  * every Prometheus rule file under deploy/prometheus/ (top-level `groups:`,
    test fixtures in testdata/ excluded): alerting and recording rule `expr`.

Multi-line expressions are folded onto one line (whitespace outside string
literals collapsed). Duplicates are printed once, first occurrence wins.
The list is derived from the files on every run, so it cannot drift; an
end-to-end test can feed each line to Prometheus' /api/v1/query.

Needs PyYAML (Debian: python3-yaml).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent


def fold(expr: str) -> str:
    """Collapse runs of whitespace outside string literals to one space."""
    out: list[str] = []
    quote = None
    pending_space = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c.isspace():
            pending_space = True
        else:
            if pending_space and out:
                out.append(" ")
            pending_space = False
            if c in "\"'`":
                quote = c
            out.append(c)
        i += 1
    return "".join(out)


def substitute_grafana_vars(expr: str, job: str) -> str:
    subs = {
        "job": job,
        "__rate_interval": "1m",
        "__interval": "5m",
        "__range": "5m",
    }
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in subs:
            raise ValueError(f"unknown Grafana variable ${name} in: {expr}")
        return subs[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def _walk_panels(panels):
    for p in panels or []:
        yield p
        yield from _walk_panels(p.get("panels"))


def dashboard_files() -> list[Path]:
    return sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def rule_files() -> list[Path]:
    files = []
    for p in sorted((DEPLOY / "prometheus").glob("*.y*ml")):
        if p.name.endswith((".test.yml", ".test.yaml")):
            continue
        doc = yaml.safe_load(p.read_text())
        if isinstance(doc, dict) and "groups" in doc:
            files.append(p)
    return files


def dashboard_exprs(path: Path, job: str = "uniqd", raw: bool = False):
    """Yield (source, expression) for every panel target of a dashboard."""
    dash = json.loads(path.read_text())
    rel = path.relative_to(REPO)
    for panel in _walk_panels(dash.get("panels")):
        for t in panel.get("targets") or []:
            expr = t.get("expr")
            if not expr:
                continue
            if not raw:
                expr = substitute_grafana_vars(expr, job)
            yield f"{rel}:panel {panel.get('id')} {panel.get('title')!r} ref {t.get('refId')}", fold(expr)
    for a in (dash.get("annotations") or {}).get("list") or []:
        expr = a.get("expr")
        if not expr:
            continue
        if not raw:
            expr = substitute_grafana_vars(expr, job)
        yield f"{rel}:annotation {a.get('name')!r}", fold(expr)


def rule_exprs(path: Path):
    """Yield (source, expression) for every rule of a rule file."""
    doc = yaml.safe_load(path.read_text())
    rel = path.relative_to(REPO)
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record")
            kind = "alert" if "alert" in r else "record"
            yield f"{rel}:{g.get('name')}:{kind} {name}", fold(str(r["expr"]))


def all_exprs(job: str = "uniqd"):
    seen = set()
    for d in dashboard_files():
        for src, e in dashboard_exprs(d, job):
            if e not in seen:
                seen.add(e)
                yield src, e
    for f in rule_files():
        for src, e in rule_exprs(f):
            if e not in seen:
                seen.add(e)
                yield src, e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--with-source", action="store_true", help="prefix each line with its source and a tab")
    ap.add_argument("--job", default="uniqd", help="value substituted for the dashboard's $job variable")
    args = ap.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    for src, e in all_exprs(args.job):
        print(f"{src}\t{e}" if args.with_source else e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
