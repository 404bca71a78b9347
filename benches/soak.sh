#!/usr/bin/env bash
# Soak test: SOAK_SECONDS (default 300) of mixed valid and invalid traffic from wrk against a
# release build of uniqd, sampling the process's RSS, open file descriptors and the ingest
# counters every SOAK_SAMPLE seconds (default 30), then SIGTERM while wrk still runs and a
# restart from the state file. Prints Markdown tables for docs/reliability.md.
#
#   benches/soak.sh                      # 5 minutes
#   SOAK_SECONDS=30 benches/soak.sh      # a quick look
#
# Needs wrk (apt-get install -y wrk). Everything runs on 127.0.0.1; the server is stopped at
# the end (and on any failure).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SOAK_SECONDS:-300}
sample=${SOAK_SAMPLE:-30}
connections=${SOAK_CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "soak: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }

nice -n 10 cargo build --release -q -p uniqd
bin=target/release/uniqd
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts uniqd in the background; sets pid, ingest and metrics from its startup log line.
starts=0
start() {
    starts=$((starts + 1))
    local log=$work/uniqd-$starts.log
    "$bin" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --log-format json \
        --max-object-size 4KiB --state-file "$work/state" --state-interval 2s \
        2>"$log" &
    pid=$!
    local line=
    for _ in $(seq 200); do
        line=$(grep '"uniqd listening"' "$log" || true)
        [[ -n $line ]] && break
        sleep 0.05
    done
    [[ -n $line ]] || { echo "soak: uniqd did not start" >&2; cat "$log" >&2; exit 1; }
    ingest=$(sed -E 's/.*"ingest_addr":"([^"]+)".*/\1/' <<<"$line")
    metrics=$(sed -E 's/.*"metrics_addr":"([^"]+)".*/\1/' <<<"$line")
}

metric() { # metric NAME_WITH_LABELS: value from /metrics
    curl -s "http://$metrics/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }

row() { # row ELAPSED
    local ok bad
    ok=$(metric 'uniqd_ingest_requests_total{outcome="accepted"}')
    bad=0
    for outcome in bad_request payload_too_large unsupported_media_type not_found method_not_allowed request_timeout unauthorized; do
        bad=$((bad + $(metric "uniqd_ingest_requests_total{outcome=\"$outcome\"}")))
    done
    echo "| $1 | $(rss_kib) | $(fds) | $ok | $bad | $(metric unique_ip_addresses) |"
}

start
echo "uniqd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), pid $pid, wrk -t1 -c$connections for ${seconds}s"
echo
echo "| elapsed (s) | RSS (KiB) | open fds | requests accepted | requests rejected (4xx) | unique_ip_addresses |"
echo "|---:|---:|---:|---:|---:|---:|"
row 0
nice -n 5 wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s -s benches/soak.lua "http://$ingest" \
    >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
for ((t = sample; t <= seconds; t += sample)); do
    sleep "$sample"
    row "$t"
done
wait "$wrk_pid"
sleep 1
row "end"
echo
echo '```'
sed -n '/Requests\/sec/p;/Non-2xx/p;/Socket errors/p;/requests in/p;/Latency/p' "$work/wrk.txt"
echo '```'

# Graceful shutdown under load: SIGTERM 3 s into a 10 s wrk run.
wrk -t1 -c"$connections" -d10s -s benches/soak.lua "http://$ingest" >"$work/wrk2.txt" 2>&1 &
wrk_pid=$!
sleep 3
before=$(metric unique_ip_addresses)
started=$(date +%s.%N)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
stopped=$(date +%s.%N)
pid=
wait "$wrk_pid" || true
start
after=$(metric unique_ip_addresses)
echo
echo "SIGTERM under load: exit status $status after $(awk -v a="$started" -v b="$stopped" 'BEGIN { printf "%.2f", b - a }') s;" \
    "unique_ip_addresses $before scraped just before SIGTERM, $after after restarting from the state file."
if ((status != 0)) || ((after < before)); then
    echo "soak: FAILED" >&2
    exit 1
fi
kill -TERM "$pid"
wait "$pid" || true
pid=
