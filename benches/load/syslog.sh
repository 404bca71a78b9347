#!/usr/bin/env bash
# Syslog load benchmark: uniqd's syslog listener against a bare receiver that only counts
# messages (benches/src/bin/bare_syslog.rs), side by side in one run, alternating A B A B, with
# the sender (benches/src/bin/syslog_flood.rs) on the same machine.
#
#   benches/load/syslog.sh                    # udp and tcp, 3 rounds of 10 s each
#   ROUNDS=5 DURATION=20 benches/load/syslog.sh udp
#   UNIQD_ARGS="--syslog-receive-buffer 208KiB" BARE_ARGS="--receive-buffer 212992" \
#       benches/load/syslog.sh udp        # the kernel's default buffer instead of 8 MiB
#
# The sender sends nginx-style messages (RFC 3164 header, the JSON log_format of docs/syslog.md,
# random IPv4 addresses) flat out for DURATION seconds from SENDER_THREADS threads (default 2:
# one is the limit, as the kernel's loopback delivery runs in the sender's context), each over
# SOCKETS sockets (UDP, 64 datagrams per sendmmsg) or connections (TCP, newline framing). The figure is what the receiver counted, read after it has drained: uniqd's
# uniqd_syslog_messages_received_total (and, of those, accepted), the bare receiver's own count.
# Over UDP the kernel drops what the receiver cannot keep up with, so "received" is the
# receiver's throughput and "loss" how far the sender outran it; over TCP the sender is
# back-pressured.
# Prints a table of medians (messages/s sent, received, accepted; loss; the server's CPU time
# per message, from /proc) and the ratio uniqd / bare, the median of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-$(nproc)}
SOCKETS=${SOCKETS:-4}
SENDER_THREADS=${SENDER_THREADS:-2}
UNIQD_ARGS=${UNIQD_ARGS:-}
BARE_ARGS=${BARE_ARGS:-}
transports=("$@")
((${#transports[@]})) || transports=(udp tcp)

command -v curl >/dev/null || { echo "curl not found: apt-get install curl" >&2; exit 1; }
cargo build --release -q -p uniqd --bin uniqd -p uniqd-benches --bin bare-syslog --bin syslog-flood
bin=${CARGO_TARGET_DIR:-target}/release
UNIQD_BIN=${UNIQD_BIN:-$bin/uniqd}

# shellcheck source=ports.sh
source benches/load/ports.sh

work=$(mktemp -d)
results=$work/results
trap 'rm -rf "$work"; [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null; true' EXIT

# start_server <bare|uniqd> <udp|tcp>: starts it in the background; sets $pid, $port, $mport.
start_server() {
    port=$(free_port)
    case $1 in
    bare)
        rm -f "$work/count"
        # shellcheck disable=SC2086  # BARE_ARGS is a list of flags
        "$bin/bare-syslog" "--$2" "127.0.0.1:$port" --count-file "$work/count" \
            --workers "$WORKERS" $BARE_ARGS &
        pid=$!
        for _ in $(seq 100); do [[ -s $work/count ]] && break; sleep 0.1; done
        ;;
    uniqd)
        mport=$(free_port)
        # shellcheck disable=SC2086  # UNIQD_ARGS is a list of flags
        "$UNIQD_BIN" --listen "127.0.0.1:$(free_port)" --metrics-listen "127.0.0.1:$mport" \
            --workers "$WORKERS" --log-level warn --syslog-listen "$2://127.0.0.1:$port" \
            $UNIQD_ARGS &
        pid=$!
        wait_port "$mport"
        ;;
    esac
    [[ $2 == tcp ]] && wait_port "$port"
    return 0
}

# counts <bare|uniqd> <transport>: prints "received accepted" so far.
counts() {
    case $1 in
    bare) local n; n=$(cat "$work/count"); echo "$n $n" ;;
    uniqd)
        curl -s "http://127.0.0.1:$mport/metrics" | awk -v t="$2" '
            $1 == "uniqd_syslog_messages_received_total{transport=\"" t "\"}" { r = $2 }
            $1 == "uniqd_syslog_messages_total{transport=\"" t "\",outcome=\"accepted\"}" { a = $2 }
            END { printf "%d %d\n", r, a }'
        ;;
    esac
}

# settled <server> <transport>: polls until the received count stops moving (the receiver has
# drained what the kernel held), then prints the counts.
settled() {
    local last="" now
    for _ in $(seq 100); do
        sleep 0.2
        now=$(counts "$1" "$2")
        [[ $now == "$last" ]] && break
        last=$now
    done
    echo "$now"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

stop_server() {
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
}

echo "machine: $(nproc) cores, $(uname -r); workers=$WORKERS rounds=$ROUNDS duration=${DURATION}s sockets=$SOCKETS sender_threads=$SENDER_THREADS" >&2
for transport in "${transports[@]}"; do
    for round in $(seq "$ROUNDS"); do
        for server in bare uniqd; do
            start_server "$server" "$transport"
            # Warm-up: one second of traffic, then settle.
            "$bin/syslog-flood" "--$transport" "127.0.0.1:$port" --seconds 1 --sockets "$SOCKETS" \
                --threads "$SENDER_THREADS" >/dev/null
            read -r r0 a0 < <(settled "$server" "$transport")
            ticks=$(cpu_ticks)
            sent=$("$bin/syslog-flood" "--$transport" "127.0.0.1:$port" --seconds "$DURATION" \
                --sockets "$SOCKETS" --threads "$SENDER_THREADS" | awk '{ print $2 }')
            read -r r1 a1 < <(settled "$server" "$transport")
            cpu=$(awk -v a="$ticks" -v b="$(cpu_ticks)" 'BEGIN { print (b - a) / 100 }')
            stop_server
            line="sent=$sent received=$((r1 - r0)) accepted=$((a1 - a0)) cpu_s=$cpu"
            echo "$transport round $round $server: $line" >&2
            echo "$transport $server $line" >>"$results"
        done
    done
done

python3 - "$results" "$DURATION" <<'PY'
import statistics, sys
duration = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    transport, server, *fields = line.split()
    r = {k: float(v) for k, v in (f.split("=") for f in fields)}
    r["cpu_us"] = r["cpu_s"] * 1e6 / max(r["received"], 1)
    r["loss"] = 1 - r["received"] / max(r["sent"], 1)
    rows.setdefault((transport, server), []).append(r)
med = lambda t, s, k: statistics.median(r[k] for r in rows[(t, s)])
print("| transport | server | sent msg/s | received msg/s | accepted msg/s | loss | server CPU µs per message |")
print("|---|---|---:|---:|---:|---:|---:|")
transports = list(dict.fromkeys(t for t, _ in rows))
for t in transports:
    for s in ("bare", "uniqd"):
        print(f"| {t} | {s} | {med(t, s, 'sent') / duration:,.0f} | {med(t, s, 'received') / duration:,.0f} | "
              f"{med(t, s, 'accepted') / duration:,.0f} | {med(t, s, 'loss'):.1%} | {med(t, s, 'cpu_us'):.2f} |")
print()
print("| transport | received uniqd / bare (median of rounds) | per-round ratios | CPU per message uniqd / bare |")
print("|---|---:|---|---:|")
for t in transports:
    pairs = list(zip(rows[(t, "bare")], rows[(t, "uniqd")]))
    ratios = [u["received"] / max(b["received"], 1) for b, u in pairs]
    cpu = [u["cpu_us"] / b["cpu_us"] for b, u in pairs]
    print(f"| {t} | {statistics.median(ratios):.3f} | {', '.join(f'{x:.3f}' for x in ratios)} | "
          f"{statistics.median(cpu):.2f} |")
PY
