#!/usr/bin/env python3
"""Check uniqd's status page (GET / on the metrics port) in headless Chromium.

    python3 deploy/check_status_page.py                      # build, run, check
    python3 deploy/check_status_page.py --screenshot page.png  # also save a picture
    python3 deploy/check_status_page.py --uniqd target/release/uniqd

Starts the uniqd binary on free loopback ports (built with `cargo build -p
uniqd` unless --uniqd is given) with an exact threshold of 1,000, posts 1,500
distinct addresses (so the sketch phase and its error bound show), reads the
expected numbers from /status.json, then loads the page in headless Chromium
(Debian package `chromium`), lets its script poll for a few seconds of
virtual time, and asserts on the rendered DOM: the count (formatted and raw),
the phase, the error bound, an ingest rate computed from two polls, and the
"updated" state. The page must render with its Content-Security-Policy in
force, so it also proves the page needs nothing from elsewhere.

Exits 0 when every check passes; uniqd and Chromium are stopped either way.
"""
from __future__ import annotations

import argparse
import json
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 1000
DISTINCT = 1500
DEADLINE_S = 30
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def build_uniqd() -> Path:
    subprocess.run(["cargo", "build", "-q", "-p", "uniqd"], cwd=REPO, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"]) / "debug" / "uniqd"


def start_uniqd(binary: Path) -> tuple[subprocess.Popen, str, str]:
    """Runs uniqd on 127.0.0.1:0 and returns it with its ingest and metrics
    addresses, read from the structured "uniqd listening" log line."""
    proc = subprocess.Popen(
        [str(binary), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--log-format", "json", "--exact-threshold", str(THRESHOLD)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, encoding="utf-8",
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stderr], daemon=True).start()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "uniqd listening":
            return proc, record["ingest_addr"], record["metrics_addr"]
    proc.kill()
    raise SystemExit("uniqd did not log its addresses in time")


def post_ndjson(ingest: str, lines: list[str]) -> dict:
    body = "".join(json.dumps({"timestamp": "2020-06-24T15:27:00Z", "ip": ip, "url": "/"}) + "\n"
                   for ip in lines).encode()
    req = urllib.request.Request(f"http://{ingest}/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=DEADLINE_S) as resp:
        check(resp.status == 202, f"POST /logs with {len(lines)} lines answers 202")
        return json.load(resp)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=DEADLINE_S) as resp:
        return json.load(resp)


def chromium(args: list[str], url: str, binary: str) -> str:
    profile = tempfile.mkdtemp(prefix="uniqd-chromium-")
    try:
        out = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True, text=True, encoding="utf-8", timeout=120,
        )
        if out.returncode != 0:
            raise SystemExit(f"chromium exited {out.returncode}: {out.stderr[-2000:]}")
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def element(dom: str, id_: str) -> tuple[str, str] | None:
    """(attributes, text) of the element with this id in the dumped DOM."""
    m = re.search(rf'<(\w+)([^>]*\bid="{re.escape(id_)}"[^>]*)>([^<]*)</\1>', dom)
    return (m.group(2), m.group(3)) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uniqd", type=Path, help="uniqd binary (default: cargo build -p uniqd)")
    ap.add_argument("--chromium", default="chromium", help="Chromium binary (default: chromium)")
    ap.add_argument("--screenshot", type=Path, help="also save a PNG of the page here")
    args = ap.parse_args()
    if shutil.which(args.chromium) is None:
        raise SystemExit(f"{args.chromium} not found: apt-get install chromium")

    binary = args.uniqd or build_uniqd()
    proc, ingest, metrics = start_uniqd(binary)
    try:
        addresses = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(DISTINCT)]
        for start in range(0, DISTINCT, 500):
            post_ndjson(ingest, addresses[start:start + 500])
        post_ndjson(ingest, addresses[:100])  # repeats change nothing
        status = get_json(f"http://{metrics}/status.json")
        count = status["unique_ip_addresses"]
        check(status["phase"] == "sketch", f"status.json: sketch phase past {THRESHOLD}")
        check(abs(count - DISTINCT) <= 0.03 * DISTINCT, f"status.json: {count} is within 3% of {DISTINCT}")

        page = f"http://{metrics}/"
        dom = chromium(["--virtual-time-budget=4000", "--dump-dom"], page, args.chromium)
        shown = element(dom, "count")
        check(shown is not None and shown[1] == f"{count:,}", f"the page shows the count {count:,}: {shown}")
        check(shown is not None and f'data-value="{count}"' in shown[0], f"the count element carries {count}")
        phase = element(dom, "phase")
        check(phase is not None and phase[1] == "sketch (HyperLogLog)", f"the page shows the phase: {phase}")
        rse = status["relative_standard_error"]
        bound = element(dom, "bound")
        want = f"± {rse * 100:.1f} % ≈ ± {int(rse * count + 0.5):,}"  # JS Math.round
        check(bound is not None and bound[1] == want, f"the page shows the error bound {want!r}: {bound}")
        for rate in ("request-rate", "line-rate"):
            shown_rate = element(dom, rate)
            check(shown_rate is not None and re.fullmatch(r"\d[\d,]*(\.\d)?", shown_rate[1]) is not None,
                  f"the page shows a computed {rate}: {shown_rate}")
        state = element(dom, "state")
        check(state is not None and state[1].startswith("updated "), f"the page reports a fresh update: {state}")

        if args.screenshot:
            chromium(["--virtual-time-budget=4000", "--window-size=1000,760",
                      f"--screenshot={args.screenshot.resolve()}"], page, args.chromium)
            check(args.screenshot.is_file(), f"screenshot saved to {args.screenshot}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()

    print(f"check_status_page: {len(failures)} failed" if failures else "check_status_page: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
