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

list_exprs() {
    python3 deploy/extract_promql.py >"$tmp/exprs.txt" || return 1
    local n
    n=$(wc -l <"$tmp/exprs.txt")
    echo "deploy/extract_promql.py prints $n expressions, e.g.:"
    head -n 3 "$tmp/exprs.txt"
    [[ $n -ge 10 ]]
}
run "deploy/extract_promql.py lists the expressions one per line" list_exprs

# ------------------------------------------------------ optional validators
if command -v kubernetes-validate >/dev/null 2>&1; then
    run "kubernetes-validate --strict (Deployment, Service)" \
        kubernetes-validate --strict deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml
else
    skip "kubernetes schema validation" \
        "kubernetes-validate not installed (pip install kubernetes-validate); kubeconform is not reachable from here"
fi

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
