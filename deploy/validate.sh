#!/usr/bin/env bash
# Validate everything under deploy/ that can be validated offline, without a
# Docker engine or a Kubernetes cluster.
#
#   bash deploy/validate.sh          (from the repository root; CI does this)
#
# Required: promtool (Debian package `prometheus`), python3 with PyYAML
# (Debian `python3-yaml` or `pip install pyyaml`).
# Optional, used when present, reported as SKIP otherwise:
#   amtool               (Debian `prometheus-alertmanager`)  Alertmanager config + routing
#   kubernetes-validate  (PyPI `kubernetes-validate`)        core Kubernetes schemas
#   kustomize or kubectl                                     cross-check of render.py
#   docker compose / docker-compose (Debian `docker-compose`) compose file model
# Every step runs even after a failure; the exit status is non-zero if any
# step failed. The last line is "validate: N passed, N failed, N skipped".
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1   # keep deploy/ free of __pycache__

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -f Cargo.toml || ! -d deploy ]]; then
    echo "validate.sh: cannot find the repository root" >&2
    exit 2
fi

passed=0
failed=0
skipped=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: run a check, indent its output, count the result.
# NB: `set -e` does not apply inside a function called from `if`, so the
# multi-command check functions below end every command with `|| return 1`.
run() {
    local name=$1
    shift
    echo "==> $name"
    echo "    \$ $*"
    if "$@" >"$tmp/out" 2>&1; then
        sed 's/^/    /' "$tmp/out"
        echo "PASS  $name"
        passed=$((passed + 1))
    else
        local rc=$?
        sed 's/^/    /' "$tmp/out"
        echo "FAIL  $name (exit $rc)"
        failed=$((failed + 1))
    fi
}

skip() {
    echo "==> $1"
    echo "SKIP  $1: $2"
    skipped=$((skipped + 1))
}

# ------------------------------------------------------------ prerequisites
missing=()
command -v promtool >/dev/null 2>&1 || missing+=("promtool (apt-get install prometheus)")
command -v python3 >/dev/null 2>&1 || missing+=("python3")
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import yaml' 2>/dev/null; then
    missing+=("PyYAML (apt-get install python3-yaml, or pip install pyyaml)")
fi
if ((${#missing[@]})); then
    printf 'validate.sh: missing required tool: %s\n' "${missing[@]}" >&2
    exit 2
fi
echo "promtool: $(promtool --version 2>&1 | head -n1)"
echo "python3:  $(python3 --version 2>&1), PyYAML $(python3 -c 'import yaml; print(yaml.__version__)')"
echo

# ------------------------------------------------------------- Prometheus
# rule_files in a config are relative to the config file, so these work
# from the repository root.
for cfg in deploy/prometheus/prometheus.yml deploy/prometheus/prometheus.compose.yml; do
    run "promtool check config $cfg" promtool check config "$cfg"
done

rule_files=(deploy/prometheus/alerts.yml deploy/prometheus/quota.yml deploy/prometheus/groups.yml deploy/prometheus/testdata/quota-fixture.yml)
run "promtool check rules (${#rule_files[@]} files)" promtool check rules "${rule_files[@]}"

test_files=(deploy/prometheus/*.test.yml)
run "promtool test rules (${#test_files[@]} files)" promtool test rules "${test_files[@]}"

# Every PromQL expression of the dashboard (variables substituted) and the
# rules, parsed by Prometheus' own parser: wrap each in a recording rule.
gen_expr_rules() {
    python3 - "$tmp/exprs.rules.yml" <<'EOF'
import sys, yaml
sys.path.insert(0, "deploy")
import extract_promql
exprs = [e for _, e in extract_promql.all_exprs()]
assert exprs, "no expressions extracted"
rules = [{"record": f"validate:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
with open(sys.argv[1], "w") as f:
    yaml.safe_dump({"groups": [{"name": "extracted", "rules": rules}]}, f, width=1000)
print(f"{len(exprs)} distinct expressions extracted by deploy/extract_promql.py")
EOF
    [[ $? -eq 0 ]] || return 1
    promtool check rules "$tmp/exprs.rules.yml"
}
run "PromQL syntax of every extracted expression (dashboard + rules)" gen_expr_rules

run "PrometheusRule manifests are generated from the rule files (no drift)" \
    python3 deploy/kubernetes/gen_prometheusrules.py --check

# ------------------------------------------------------------ Alertmanager
if command -v amtool >/dev/null 2>&1; then
    run "amtool check-config deploy/prometheus/alertmanager.yml" \
        amtool check-config deploy/prometheus/alertmanager.yml
    am_routes() {
        local am=deploy/prometheus/alertmanager.yml
        amtool config routes test --config.file="$am" --verify.receivers=uniqd-oncall-email \
            alertname=UniqdDown severity=critical job=uniqd || return 1
        amtool config routes test --config.file="$am" --verify.receivers=uniqd-oncall-email \
            alertname=UniqdVisitorQuotaExceeded severity=critical job=uniqd || return 1
        amtool config routes test --config.file="$am" --verify.receivers=uniqd-team-email \
            alertname=UniqdIngestErrorRatioHigh severity=warning job=uniqd || return 1
        amtool config routes test --config.file="$am" --verify.receivers=uniqd-team-email \
            alertname=UniqdVisitorQuota80Percent severity=info job=uniqd || return 1
        amtool config routes test --config.file="$am" --verify.receivers=uniqd-team-email \
            alertname=SomethingUnlabelled || return 1
    }
    run "amtool routing: critical -> on-call, warning/info/other -> team" am_routes
else
    skip "amtool check-config" "amtool not installed (Debian package prometheus-alertmanager)"
fi

# ------------------------------------------------------ structure (Python)
run "YAML/JSON parse, metric names, dashboard, compose, Dockerfile, Kubernetes structure" \
    python3 deploy/check_deploy.py
# The Rust test (tests/openapi.rs) reads the OpenAPI document with a YAML 1.2 parser; the
# Python tools users point at it (schemathesis, openapi generators) use PyYAML's stricter 1.1.
run "docs/openapi.yaml loads with PyYAML" \
    python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' docs/openapi.yaml

list_exprs() {
    python3 deploy/extract_promql.py >"$tmp/exprs.txt" || return 1
    local n
    n=$(wc -l <"$tmp/exprs.txt")
    echo "deploy/extract_promql.py prints $n expressions, e.g.:"
    head -n 3 "$tmp/exprs.txt"
    [[ $n -ge 10 ]]
}
run "deploy/extract_promql.py lists the expressions one per line" list_exprs

# ------------------------------------------------------------- Kubernetes
# The kustomizations: the base, each overlay, and the redis overlay with the
# metrics-token component (as a user's overlay listing it would). Rendered
# offline by deploy/kubernetes/render.py (the subset of kustomize they use);
# when kustomize or kubectl is installed its own build must give the same
# objects.
kust_dirs=(deploy/kubernetes deploy/kubernetes/overlays/redis deploy/kubernetes/overlays/state-file)
kust_component=deploy/kubernetes/components/metrics-token
render_all() {
    local d i=0
    for d in "${kust_dirs[@]}"; do
        python3 deploy/kubernetes/render.py "$d" --core >"$tmp/k8s-$i.yaml" || return 1
        echo "$d: $(grep -c '^kind:' "$tmp/k8s-$i.yaml") core objects"
        i=$((i + 1))
    done
    python3 deploy/kubernetes/render.py deploy/kubernetes/overlays/redis --component "$kust_component" \
        --core >"$tmp/k8s-$i.yaml" || return 1
    echo "overlays/redis + $kust_component: $(grep -c '^kind:' "$tmp/k8s-$i.yaml") core objects"
}
run "kustomizations render (deploy/kubernetes/render.py: base, overlays, component)" render_all

kustomize_cmd=()
if command -v kustomize >/dev/null 2>&1; then
    kustomize_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    kustomize_cmd=(kubectl kustomize)
fi
if ((${#kustomize_cmd[@]})); then
    kustomize_same() {
        local d
        for d in "${kust_dirs[@]}"; do
            "${kustomize_cmd[@]}" "$d" >"$tmp/kustomize.yaml" || return 1
            python3 deploy/kubernetes/render.py "$d" --compare "$tmp/kustomize.yaml" || return 1
        done
        # A component is listed by a kustomization, by a relative path.
        mkdir -p "$tmp/with-component"
        printf 'resources: [%s]\ncomponents: [%s]\n' \
            "$(realpath --relative-to="$tmp/with-component" deploy/kubernetes/overlays/redis)" \
            "$(realpath --relative-to="$tmp/with-component" "$kust_component")" \
            >"$tmp/with-component/kustomization.yaml"
        "${kustomize_cmd[@]}" "$tmp/with-component" >"$tmp/kustomize.yaml" || return 1
        python3 deploy/kubernetes/render.py deploy/kubernetes/overlays/redis --component "$kust_component" \
            --compare "$tmp/kustomize.yaml"
    }
    run "${kustomize_cmd[*]} builds the same objects as render.py" kustomize_same
else
    skip "kustomize build" "neither kustomize nor kubectl is installed (render.py rendered the overlays)"
fi

if command -v kubernetes-validate >/dev/null 2>&1; then
    run "kubernetes-validate --strict (every rendered core object: Deployments, Services, PDB, NetworkPolicies, Secret, PVC)" \
        kubernetes-validate --strict --quiet "$tmp"/k8s-*.yaml
else
    skip "kubernetes schema validation" \
        "kubernetes-validate not installed (pip install kubernetes-validate); kubeconform is not reachable from here"
fi

# ------------------------------------------------------ optional validators
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
fi
if ((${#compose[@]})); then
    compose_config() {
        local f=deploy/compose/docker-compose.yml
        "${compose[@]}" -f "$f" config -q || return 1
        "${compose[@]}" -f "$f" --profile traffic config -q || return 1
        "${compose[@]}" -f "$f" --profile scale config -q || return 1
        "${compose[@]}" -f "$f" --profile traffic --profile scale config --services
    }
    run "${compose[*]} config (default, traffic, scale profiles)" compose_config
else
    skip "compose config" "neither 'docker compose' nor 'docker-compose' is installed"
fi

skip "docker build / compose up / kubectl apply" "need a Docker engine or a cluster: not validated here"

echo
echo "validate: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
