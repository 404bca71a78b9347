#!/usr/bin/env bash
# Runs the cargo-fuzz targets one after the other, each for SECONDS (default 600), at the
# lowest CPU priority and with one libFuzzer job, and prints one Markdown table row per
# target for docs/reliability.md.
#
#   crates/fuzz/run.sh                    # every target, 10 minutes each
#   crates/fuzz/run.sh 30 parse_line      # one target, 30 seconds
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). The
# committed seeds (seeds/<target>) are read-only inputs; what the fuzzer finds goes to
# corpus/<target> (not committed), crashes to artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(parse_line ndjson_batch json_batch clf_line field_map state_file redis_hll syslog_stream)
fi
fuzz_dir=crates/fuzz
log_dir=$fuzz_dir/logs
mkdir -p "$log_dir"

# Debug assertions on (-a): integer overflow and the standard library's checks panic.
nice -n 19 cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" -a

echo "| target | seconds | executions | exec/s | coverage (edges) | features | corpus (files) | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
status=0
for target in "${targets[@]}"; do
    corpus=$fuzz_dir/corpus/$target
    artifacts=$fuzz_dir/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    log=$log_dir/$target.log
    # -jobs=1 runs one fuzzing process whose output libFuzzer writes to fuzz-0.log.
    rm -f fuzz-0.log
    if ! nice -n 19 cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" -a "$target" \
        "$corpus" "$fuzz_dir/seeds/$target" -- \
        -jobs=1 -workers=1 -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" >/dev/null 2>&1; then
        status=1
    fi
    mv -f fuzz-0.log "$log" 2>/dev/null || true
    # The last status line: "#N DONE cov: C ft: F corp: K/..." (or the last "#N ..." line).
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    rate=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$last")
    files=$(find "$corpus" -type f | wc -l)
    crashes=$(find "$artifacts" -type f | wc -l)
    ((crashes == 0)) || status=1
    echo "| \`$target\` | $seconds | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $crashes |"
done
exit "$status"
