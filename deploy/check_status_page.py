#!/usr/bin/env python3
"""Check uniqd's status page (GET / on the metrics port) in headless Chromium.

    python3 deploy/check_status_page.py                      # build, run, check
    python3 deploy/check_status_page.py --screenshot page.png  # also save a picture
    python3 deploy/check_status_page.py --uniqd target/release/uniqd

Starts the uniqd binary on free loopback ports (built with `cargo build -p
uniqd` unless --uniqd is given) with an exact threshold of 1,000, posts 1,500
distinct addresses (so the sketch phase and its error bound show) on three
pages with known counts, and a batch with invalid lines; reads the expected
numbers from /status.json, /stats, /api/v1/unique and /readyz, then loads the
page in headless Chromium (Debian package `chromium`), lets its script poll
for a few seconds of virtual time, and asserts on the rendered DOM: the count
(formatted and raw), the phase, the error bound, an ingest rate computed from
two polls, the invalid lines and their share, each configured time window's
count and error bound, the top pages (path, count, share), the Redis sync
state ("off" here) and the "updated" state. When `redis-server` is installed,
a second uniqd syncing with one on a free loopback port shows "up" with the
age of its last sync, then "down" once that Redis is stopped. The page must
render with its Content-Security-Policy in force, so it also proves the page
needs nothing from elsewhere.

Exits 0 when every check passes; uniqd and Chromium are stopped either way.
"""
from __future__ import annotations

import argparse
import html
import json
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 1000
DISTINCT = 1500
INVALID = 40
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


def start_uniqd(binary: Path, *extra: str) -> tuple[subprocess.Popen, str, str]:
    """Runs uniqd on 127.0.0.1:0 and returns it with its ingest and metrics
    addresses, read from the structured "uniqd listening" log line."""
    proc = subprocess.Popen(
        [str(binary), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--log-format", "json", "--exact-threshold", str(THRESHOLD), *extra],
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


def page_of(i: int) -> str:
    """The page address number i requests: 300 on /a, 200 on /b, the rest on /."""
    return "/a" if i % 5 == 0 else "/b" if i % 5 == 1 and i < 1000 else "/"


def post_ndjson(ingest: str, lines: list[str], first: int = 0) -> dict:
    # An old timestamp counts at arrival in the time windows, so every window holds them all.
    body = "".join(json.dumps({"timestamp": "2020-06-24T15:27:00Z", "ip": ip, "url": page_of(first + i)})
                   + "\n" for i, ip in enumerate(lines)).encode()
    req = urllib.request.Request(f"http://{ingest}/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=DEADLINE_S) as resp:
        check(resp.status == 202, f"POST /logs with {len(lines)} lines answers 202")
        return json.load(resp)


def post_invalid(ingest: str, valid: list[str], invalid: int) -> None:
    """A batch of `valid` lines (page /) and `invalid` lines without a usable address: 400
    invalid_lines, the valid ones counted."""
    body = "".join(json.dumps({"ip": ip, "url": "/"}) + "\n" for ip in valid)
    body += "".join(json.dumps({"ip": f"not-an-address-{i}", "url": "/"}) + "\n" for i in range(invalid))
    req = urllib.request.Request(f"http://{ingest}/logs", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    try:
        urllib.request.urlopen(req, timeout=DEADLINE_S)
        check(False, "a batch with invalid lines answers 400")
    except urllib.error.HTTPError as e:
        answer = json.load(e)
        check(e.code == 400 and answer.get("error") == "invalid_lines" and answer.get("rejected") == invalid,
              f"a batch with {invalid} invalid lines answers 400 invalid_lines: {answer.get('message')}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()


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
    return (m.group(2), html.unescape(m.group(3))) if m else None


def text(dom: str, id_: str) -> str | None:
    e = element(dom, id_)
    return e[1] if e else None


def js_percent(part: int, whole: int) -> str:
    """The page's percent(): one decimal at most, en-US grouping."""
    v = round(part / whole * 100, 1) if whole else 0
    return (f"{v:,.1f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v):,}") + " %"


def js_bound(rse: float, count: int) -> str:
    """The page's errorBound() for a sketch estimate."""
    pct = round(rse * 100, 1)
    pct_s = f"{pct:.1f}".rstrip("0").rstrip(".")
    return f"± {pct_s} % ≈ ± {int(rse * count + 0.5):,}"  # JS Math.round


def check_redis_page(binary: Path, chromium_binary: str) -> None:
    """A uniqd syncing with a real redis-server: "up" with the age of the last sync, then
    "down" once the server is gone."""
    server = shutil.which("redis-server")
    if server is None:
        print("skip: redis-server not installed: the Redis up/down states are not checked")
        return
    port = free_port()
    redis = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        proc, ingest, metrics = start_uniqd(binary, "--redis-url", f"redis://127.0.0.1:{port}",
                                            "--redis-sync-interval", "200ms", "--redis-timeout", "500ms")
        post_ndjson(ingest, ["192.0.2.1", "192.0.2.2"])
        deadline = time.monotonic() + DEADLINE_S
        ready = get_json(f"http://{metrics}/readyz")
        while not (ready.get("redis") or {}).get("up") and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = get_json(f"http://{metrics}/readyz")
        check((ready.get("redis") or {}).get("up") is True, f"/readyz: Redis is up: {ready.get('redis')}")
        dom = chromium(["--virtual-time-budget=3000", "--dump-dom"], f"http://{metrics}/", chromium_binary)
        shown = element(dom, "redis")
        check(shown is not None and shown[1] == "up" and 'data-state="up"' in shown[0],
              f"the page shows Redis up: {shown}")
        age = text(dom, "redis-age")
        check(age is not None and re.fullmatch(r"\d+s ago", age) is not None, f"the page shows the last sync's age: {age}")

        redis.terminate()
        redis.wait(timeout=DEADLINE_S)
        deadline = time.monotonic() + DEADLINE_S
        while (get_json(f"http://{metrics}/readyz").get("redis") or {}).get("up") and time.monotonic() < deadline:
            time.sleep(0.1)
        dom = chromium(["--virtual-time-budget=3000", "--dump-dom"], f"http://{metrics}/", chromium_binary)
        shown = element(dom, "redis")
        check(shown is not None and shown[1] == "down" and 'data-state="down"' in shown[0]
              and 'class="down"' in shown[0], f"the page shows Redis down, highlighted: {shown}")
        age = text(dom, "redis-age")
        check(age is not None and re.fullmatch(r"(\d+[dhm] )*\d+s ago", age) is not None,
              f"the page still shows the last good sync's age: {age}")
    finally:
        if proc is not None:
            stop(proc)
        if redis.poll() is None:
            redis.kill()


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
            post_ndjson(ingest, addresses[start:start + 500], start)
        post_ndjson(ingest, addresses[:100])  # repeats change nothing
        post_invalid(ingest, addresses[:10], INVALID)
        status = get_json(f"http://{metrics}/status.json")
        count = status["unique_ip_addresses"]
        check(status["phase"] == "sketch", f"status.json: sketch phase past {THRESHOLD}")
        check(abs(count - DISTINCT) <= 0.03 * DISTINCT, f"status.json: {count} is within 3% of {DISTINCT}")
        check(status["ingest_lines_invalid_total"] == INVALID, f"status.json: {INVALID} invalid lines")
        check(status.get("windows") == ["5m", "1h", "24h"], f"status.json lists the default windows: {status.get('windows')}")
        stats = get_json(f"http://{metrics}/stats?limit=10")
        want_pages = Counter(page_of(i) for i in range(DISTINCT)) + Counter(page_of(i) for i in range(100))
        want_pages["/"] += 10  # the valid lines of the batch with invalid ones
        check({p["path"]: p["count"] for p in stats["pages"]} == dict(want_pages) and stats["error_bound"] == 0,
              f"/stats: the exact page counts {dict(want_pages)}")
        windows = {w: get_json(f"http://{metrics}/api/v1/unique?window={w}") for w in status["windows"]}
        check(all(abs(w["unique_ip_addresses"] - DISTINCT) <= 0.03 * DISTINCT for w in windows.values()),
              "/api/v1/unique: every window holds the addresses just sent")
        check("redis" not in get_json(f"http://{metrics}/readyz"), "/readyz has no redis member without --redis-url")

        page = f"http://{metrics}/"
        dom = chromium(["--virtual-time-budget=4000", "--dump-dom"], page, args.chromium)
        shown = element(dom, "count")
        check(shown is not None and shown[1] == f"{count:,}", f"the page shows the count {count:,}: {shown}")
        check(shown is not None and f'data-value="{count}"' in shown[0], f"the count element carries {count}")
        phase = element(dom, "phase")
        check(phase is not None and phase[1] == "sketch (HyperLogLog)", f"the page shows the phase: {phase}")
        rse = status["relative_standard_error"]
        bound = element(dom, "bound")
        want = js_bound(rse, count)
        check(bound is not None and bound[1] == want, f"the page shows the error bound {want!r}: {bound}")
        for rate in ("request-rate", "line-rate"):
            shown_rate = element(dom, rate)
            check(shown_rate is not None and re.fullmatch(r"\d[\d,]*(\.\d)?", shown_rate[1]) is not None,
                  f"the page shows a computed {rate}: {shown_rate}")

        invalid = element(dom, "invalid")
        check(invalid is not None and invalid[1] == str(INVALID) and f'data-value="{INVALID}"' in invalid[0],
              f"the page shows {INVALID} invalid lines: {invalid}")
        lines = status["ingest_lines_accepted_total"] + INVALID
        want = js_percent(INVALID, lines)
        check(text(dom, "invalid-ratio") == want,
              f"the page shows the invalid share {want!r} ({INVALID} of {lines}): {text(dom, 'invalid-ratio')!r}")

        for w, answer in windows.items():
            n = answer["unique_ip_addresses"]
            cell = element(dom, f"window-{w}")
            check(cell is not None and cell[1] == f"{n:,}" and f'data-value="{n}"' in cell[0],
                  f"the page shows window {w}: {n:,}: {cell}")
            want = "exact" if answer["exact"] else js_bound(answer["relative_standard_error"], n)
            check(text(dom, f"window-{w}-error") == want,
                  f"the page shows window {w}'s error bound {want!r}: {text(dom, f'window-{w}-error')!r}")
        check(text(dom, "windows-state") == "the window ending now: 5m, 1h, 24h",
              f"the page names the windows: {text(dom, 'windows-state')!r}")

        for i, p in enumerate(stats["pages"]):
            path, cnt = text(dom, f"page-{i}-path"), element(dom, f"page-{i}-count")
            share = js_percent(p["count"], stats["total_requests"])
            check(path == p["path"] and cnt is not None and cnt[1] == f"{p['count']:,}"
                  and f'data-value="{p["count"]}"' in cnt[0] and text(dom, f"page-{i}-share") == share,
                  f"the page shows top page {i + 1}: {p['path']} {p['count']:,} {share}: "
                  f"{path!r} {cnt} {text(dom, f'page-{i}-share')!r}")
        check(element(dom, f"page-{len(stats['pages'])}-path") is None, "the page shows no other top page")
        want = f"of {stats['total_requests']:,} requests with a URL"
        check(text(dom, "pages-state") == want, f"the page shows the requests total {want!r}: {text(dom, 'pages-state')!r}")
        # Every answer says whose addresses it counts ("local" here: no --redis-url).
        for scope, answer in (("windows-scope", next(iter(windows.values()))), ("pages-scope", stats)):
            want = f"(scope: {answer['scope']})"
            check(answer["scope"] == "local" and text(dom, scope) == want,
                  f"the page shows {scope} {want!r}: {text(dom, scope)!r}")

        redis = element(dom, "redis")
        check(redis is not None and redis[1] == "off (no --redis-url)" and 'data-state="off"' in redis[0],
              f"the page shows Redis off: {redis}")
        check(text(dom, "redis-age") == "—", f"no Redis sync age: {text(dom, 'redis-age')!r}")
        state = element(dom, "state")
        check(state is not None and state[1].startswith("updated "), f"the page reports a fresh update: {state}")

        if args.screenshot:
            chromium(["--virtual-time-budget=4000", "--window-size=1000,760",
                      f"--screenshot={args.screenshot.resolve()}"], page, args.chromium)
            check(args.screenshot.is_file(), f"screenshot saved to {args.screenshot}")
    finally:
        stop(proc)

    check_redis_page(binary, args.chromium)

    print(f"check_status_page: {len(failures)} failed" if failures else "check_status_page: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
