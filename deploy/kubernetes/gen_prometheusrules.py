#!/usr/bin/env python3
"""Generate the PrometheusRule manifests from the plain Prometheus rule files.

    python3 deploy/kubernetes/gen_prometheusrules.py          # (re)write
    python3 deploy/kubernetes/gen_prometheusrules.py --check  # exit 1 on drift

deploy/prometheus/alerts.yml -> deploy/kubernetes/base/prometheusrule.yaml
deploy/prometheus/quota.yml  -> deploy/kubernetes/base/prometheusrule-quota.yaml

The rule files stay the single source of truth (promtool checks and unit
tests run on them); validate.sh runs --check so the Kubernetes copies cannot
drift. Change the quota on a cluster with a kustomize patch on
prometheusrule-quota.yaml, not by editing the generated file.
"""
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
PAIRS = [
    ("prometheus/alerts.yml", "kubernetes/base/prometheusrule.yaml", "uniqd"),
    ("prometheus/quota.yml", "kubernetes/base/prometheusrule-quota.yaml", "uniqd-visitor-quota"),
]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)


def render(src: str, name: str) -> str:
    groups = yaml.safe_load((DEPLOY / src).read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "uniqd"}},
        "spec": {"groups": groups},
    }
    header = (
        f"# GENERATED from deploy/{src} by deploy/kubernetes/gen_prometheusrules.py.\n"
        "# Do not edit: change the source file and re-run the script.\n"
        "# Prometheus Operator CRD; your Prometheus' ruleSelector may need extra\n"
        "# labels (kube-prometheus-stack: `release: <helm release>`).\n"
    )
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def main() -> int:
    check = "--check" in sys.argv[1:]
    drift = False
    for src, dst, name in PAIRS:
        want = render(src, name)
        path = DEPLOY / dst
        have = path.read_text() if path.exists() else None
        if check:
            # Compare the documents, not the text, so a different PyYAML
            # version's formatting is not reported as drift.
            if have is None or yaml.safe_load(have) != yaml.safe_load(want):
                print(f"DRIFT: deploy/{dst} is not generated from deploy/{src}; "
                      "run python3 deploy/kubernetes/gen_prometheusrules.py", file=sys.stderr)
                drift = True
            else:
                print(f"ok: deploy/{dst} matches deploy/{src}")
        elif have != want:
            path.write_text(want)
            print(f"wrote deploy/{dst}")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
