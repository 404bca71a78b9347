-- wrk script: single-log POSTs to /logs, one JSON object (~90 bytes) per request, each with a
-- random IPv4 address. The requests are built once per wrk thread (a pool of 65,536 random
-- addresses, cycled), so wrk spends its CPU on the sockets, not on Lua string building; both
-- servers of a comparison get the same stream.
--   wrk -t1 -c64 -d10s -s benches/load/single.lua http://127.0.0.1:5000/logs
local pool, n, i = {}, 65536, 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000003)
  local headers = { ["Content-Type"] = "application/json" }
  for k = 1, n do
    local body = string.format(
      '{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"%d.%d.%d.%d","url":"/page/%d"}',
      math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254),
      math.random(0, 99))
    pool[k] = wrk.format("POST", wrk.path, headers, body)
  end
end

function request()
  i = i % n + 1
  return pool[i]
end

function done(summary, latency, requests)
  -- One machine-readable line for benches/load/run.sh.
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.requests / seconds, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout))
end
