#!/usr/bin/env bash
# Memory and scrape benchmark: one release uniqd takes 10 million distinct addresses as NDJSON
# batches from `uniqd loadgen`, one million at a time; after each million it prints the
# process's RSS and the reported estimate. Then it times /metrics with the full sketch
# (wrk, one connection, 5 s). Needs wrk and python3.
#
#   benches/load/memory.sh            # STEPS=10 STEP=1000000
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-10}
STEP=${STEP:-1000000}
cargo build --release -q -p uniqd --bin uniqd
bin=${CARGO_TARGET_DIR:-target}/release/uniqd
# shellcheck source=ports.sh
source benches/load/ports.sh
ingest=$(free_port)
metrics=$(free_port)
"$bin" --listen "127.0.0.1:$ingest" --metrics-listen "127.0.0.1:$metrics" --log-level warn &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
wait_port "$metrics"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
# send <addresses> <offset>: distinct addresses as NDJSON batches of 1,000 lines.
send() {
    "$bin" loadgen --url "http://127.0.0.1:$ingest/logs" --metrics-url "" --addresses "$1" \
        --offset "$2" --mode batch --batch-lines 1000 --concurrency 4 --quiet >/dev/null
}
estimate() { curl -s "http://127.0.0.1:$metrics/metrics" | awk '$1 == "unique_ip_addresses" {print $2}'; }
echo "| distinct sent | RSS KiB | estimate | relative error |"
echo "|---:|---:|---:|---:|"
echo "| 0 | $(rss) | 0 | - |"
# The exact phase: 4,000 addresses (below the 4,096 threshold).
send 4000 0
echo "| 4,000 (exact phase) | $(rss) | $(estimate) | 0 |"
for step in $(seq "$STEPS"); do
    send "$STEP" $(((step - 1) * STEP + 4000))
    sent=$((step * STEP + 4000))
    est=$(estimate)
    python3 -c "print(f'| {$sent:,} | $(rss) | {$est:,} | {($est - $sent) / $sent * 100:+.3f}% |')"
done
echo
echo "GET /metrics with the full sketch (wrk -t1 -c1 -d5s):"
wrk -t1 -c1 -d5s --latency "http://127.0.0.1:$metrics/metrics" | grep -E "Latency|50%|99%|Requests/sec"
