#!/usr/bin/env bash
# HTTP load benchmark: uniqd against the bare-hyper baseline (benches/src/bin/bare_hyper.rs),
# side by side in one run, alternating A B A B, with wrk on the same machine.
#
#   benches/load/run.sh                 # all scenarios, 3 rounds of 10 s each
#   ROUNDS=5 DURATION=20s benches/load/run.sh single
#   UNIQD_ARGS="--top-pages-capacity 0" BARE_ARGS=--per-core benches/load/run.sh   # extra flags
#   BASELINE=/tmp/uniqd-before benches/load/run.sh   # another uniqd build as the baseline (A/B a change)
#   UNIQD_BIN=/tmp/uniqd-before BASELINE=/tmp/uniqd-before BARE_ARGS="--runtime per-core" \
#       benches/load/run.sh                          # one build, two sets of flags
#
# Scenarios: single (one ~90-byte JSON log per request, random IPv4, keep-alive, wrk -t1 -c64,
# flat out), single_rate (the same logs from `uniqd loadgen` at a fixed RATE requests/s, default
# 50000, over 64 connections: both servers under the same load, for latency), batch64k and
# batch1m (NDJSON bodies of 64 KiB / 1 MiB, 100-byte lines, wrk -t1 -c16). For the batches the
# baseline runs with --lines: it splits the body into lines and counts them.
# clf64k: 64 KiB text/plain bodies of combined-log-format lines of 100 bytes (issue target: at
# least 4 M lines/s).
# array64k: the same 100-byte logs as one JSON array per 64 KiB body (application/json; the
# issue's target: within 15% of batch64k's lines/s). gzip64k, zstd64k: batch64k's NDJSON
# bodies (655 lines) compressed (gzip -6 by python3's gzip module, zstd -3 by the zstd CLI),
# generated once per run into a temporary directory, sent with Content-Encoding (targets: at
# least 3 M and 5 M lines/s). The bare baseline does not decode: for these two compare
# lines/s with batch64k's, or use BASELINE=<an older uniqd> (which refuses them with 415).
# Prints a table of medians (requests/s, lines/s, p50, p99, the server's CPU time per request or
# line, from /proc) and the ratios uniqd / baseline,
# each the median of the per-round ratios (a round runs both servers back to back).
# Needs wrk (apt-get install wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
WORKERS=${WORKERS:-$(nproc)}
UNIQD_ARGS=${UNIQD_ARGS:-}
BARE_ARGS=${BARE_ARGS:-}
RATE=${RATE:-50000}
# The baseline server: `bare` (bare-hyper), or the path of another uniqd binary, started with the
# same flags as uniqd plus BARE_ARGS (the tables still call it "bare").
BASELINE=${BASELINE:-bare}
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(single single_rate batch64k batch1m array64k clf64k gzip64k zstd64k)

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p uniqd --bin uniqd -p uniqd-benches --bin bare-hyper
bin=${CARGO_TARGET_DIR:-target}/release
# UNIQD_BIN: measure this uniqd binary instead of the one just built (e.g. two topologies of
# one older build, with BASELINE set to the same binary and BARE_ARGS to the other flags).
UNIQD_BIN=${UNIQD_BIN:-$bin/uniqd}

# shellcheck source=ports.sh
source benches/load/ports.sh

# make_bodies <dir> <coding>: 8 NDJSON bodies of floor(65536 / 100) lines of 100 bytes with
# random IPv4 addresses, as logs.lua builds them, compressed with <coding> into dir/body-N.
make_bodies() {
    mkdir -p "$1"
    python3 - "$1" <<'PY'
import os, random, sys
for k in range(1, 9):
    lines = []
    for _ in range(65536 // 100):
        head = ('{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"%d.%d.%d.%d","url":"/page/%d'
                % (random.randint(1, 223), random.randint(0, 255), random.randint(0, 255),
                   random.randint(1, 254), random.randint(0, 99)))
        lines.append(head + "x" * (100 - len(head) - 3) + '"}\n')
    open(os.path.join(sys.argv[1], "body-%d" % k), "w").write("".join(lines))
PY
    local f
    for f in "$1"/body-*; do
        case $2 in
        gzip) python3 -c 'import gzip, sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(gzip.compress(d, 6))' "$f" ;;
        zstd) zstd -q -3 -f "$f" -o "$f.zst" && mv "$f.zst" "$f" ;;
        esac
    done
}
bodies=$(mktemp -d)
for scenario in "${scenarios[@]}"; do
    case $scenario in
    gzip64k) make_bodies "$bodies/gzip" gzip ;;
    zstd64k)
        command -v zstd >/dev/null || { echo "zstd not found: apt-get install zstd" >&2; exit 1; }
        make_bodies "$bodies/zstd" zstd
        ;;
    esac
done

# start_server <bare|uniqd> <scenario>: starts it in the background, sets $pid and $port.
start_server() {
    port=$(free_port)
    case $1 in
    bare)
        if [[ $BASELINE != bare ]]; then
            # shellcheck disable=SC2086  # UNIQD_ARGS and BARE_ARGS are lists of flags
            "$BASELINE" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$(free_port)" \
                --workers "$WORKERS" --log-level warn $UNIQD_ARGS $BARE_ARGS &
            pid=$!
            wait_port "$port"
            return
        fi
        local lines=()
        [[ $2 == single* ]] || lines=(--lines)
        # shellcheck disable=SC2086  # BARE_ARGS is a list of flags
        "$bin/bare-hyper" --listen "127.0.0.1:$port" --workers "$WORKERS" "${lines[@]}" $BARE_ARGS &
        ;;
    uniqd)
        # shellcheck disable=SC2086  # UNIQD_ARGS is a list of flags
        "$UNIQD_BIN" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$(free_port)" \
            --workers "$WORKERS" --log-level warn $UNIQD_ARGS &
        ;;
    esac
    pid=$!
    wait_port "$port"
}

# cpu_ticks: user + system CPU time of $pid so far, in clock ticks (1/100 s).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$pid/stat"
}

stop_server() {
    kill -TERM "$pid"
    wait "$pid" || true
}

# run_loadgen <duration>: `uniqd loadgen` at $RATE requests/s for <duration> (whole seconds),
# its report turned into a RESULT line like wrk's.
run_loadgen() {
    local seconds=${1%s}
    "$bin/uniqd" loadgen --url "http://127.0.0.1:$port/logs" --metrics-url "" --quiet \
        --rate "$RATE" --concurrency 64 --addresses $((RATE * seconds)) |
        awk '/^requests / { n = $2 } /^throughput / { rps = $2 }
             /^latency / { p50 = $3 * 1000; p99 = $9 * 1000 }
             /^requests / { split($0, a, "[(,]"); failed = a[3] + 0 }
             END { printf "RESULT requests=%d rps=%s p50_us=%d p99_us=%d errors=%d\n", n, rps, p50, p99, failed }'
}

# run_wrk <scenario> <duration>: prints wrk's (or loadgen's) RESULT line.
run_wrk() {
    local url=http://127.0.0.1:$port/logs
    case $1 in
    single) wrk -t1 -c64 -d"$2" -s benches/load/logs.lua "$url" ;;
    single_rate) run_loadgen "$2" ;;
    batch64k) BATCH_BYTES=65536 wrk -t1 -c16 -d"$2" -s benches/load/logs.lua "$url" ;;
    batch1m) BATCH_BYTES=1048576 wrk -t1 -c16 -d"$2" -s benches/load/logs.lua "$url" ;;
    clf64k) BATCH_BYTES=65536 SHAPE=clf wrk -t1 -c16 -d"$2" -s benches/load/logs.lua "$url" ;;
    array64k) BATCH_BYTES=65536 SHAPE=array wrk -t1 -c16 -d"$2" -s benches/load/logs.lua "$url" ;;
    gzip64k | zstd64k)
        BATCH_BYTES=65536 BODY_DIR=$bodies/${1%64k} ENCODING=${1%64k} \
            wrk -t1 -c16 -d"$2" -s benches/load/logs.lua "$url"
        ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
    esac | grep '^RESULT'
}

results=$(mktemp)
trap 'rm -f "$results"; rm -rf "$bodies"; [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null; true' EXIT
echo "machine: $(nproc) cores, $(uname -r); workers=$WORKERS rounds=$ROUNDS duration=$DURATION baseline=$BASELINE" >&2
for scenario in "${scenarios[@]}"; do
    for round in $(seq "$ROUNDS"); do
        for server in bare uniqd; do
            start_server "$server" "$scenario"
            run_wrk "$scenario" "$WARMUP" >/dev/null
            ticks=$(cpu_ticks)
            line=$(run_wrk "$scenario" "$DURATION")
            line="$line cpu_s=$(awk -v a="$ticks" -v b="$(cpu_ticks)" 'BEGIN { print (b - a) / 100 }')"
            stop_server
            echo "$scenario round $round $server: $line" >&2
            echo "$scenario $server $line" >>"$results"
        done
    done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    scenario, server, _, *fields = line.split()
    values = dict(f.split("=") for f in fields)
    rows.setdefault((scenario, server), []).append({k: float(v) for k, v in values.items()})
def med(scenario, server, key):
    return statistics.median(r[key] for r in rows[(scenario, server)] if key in r)
# Server CPU time (user + system) per request, or per line for batches.
for r in (r for rs in rows.values() for r in rs):
    units = r["requests"] * (r["lines_per_s"] / r["rps"] if "lines_per_s" in r else 1)
    r["cpu_us"] = r["cpu_s"] * 1e6 / units
print("| scenario | server | requests/s | lines/s | p50 µs | p99 µs | server CPU µs per request (line) | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
scenarios = list(dict.fromkeys(s for s, _ in rows))
for s in scenarios:
    for server in ("bare", "uniqd"):
        lines = med(s, server, "lines_per_s") if "lines_per_s" in rows[(s, server)][0] else med(s, server, "rps")
        print(f"| {s} | {server} | {med(s, server, 'rps'):,.0f} | {lines:,.0f} | "
              f"{med(s, server, 'p50_us'):,.0f} | {med(s, server, 'p99_us'):,.0f} | "
              f"{med(s, server, 'cpu_us'):,.3f} | "
              f"{sum(r['errors'] for r in rows[(s, server)]):.0f} |")
print()
print("| scenario | throughput uniqd / bare (median of rounds) | per-round throughput ratios "
      "| p99 uniqd / bare (median of rounds) | per-round p99 ratios | CPU per request uniqd / bare |")
print("|---|---:|---|---:|---|---:|")
for s in scenarios:
    key = "lines_per_s" if "lines_per_s" in rows[(s, "bare")][0] else "rps"
    pairs = list(zip(rows[(s, "bare")], rows[(s, "uniqd")]))
    per_round = [u[key] / b[key] for b, u in pairs]
    p99_round = [u["p99_us"] / b["p99_us"] for b, u in pairs]
    cpu_round = [u["cpu_us"] / b["cpu_us"] for b, u in pairs]
    print(f"| {s} | {statistics.median(per_round):.3f} | "
          f"{', '.join(f'{r:.3f}' for r in per_round)} | "
          f"{statistics.median(p99_round):.2f} | {', '.join(f'{r:.2f}' for r in p99_round)} | "
          f"{statistics.median(cpu_round):.2f} |")
PY
