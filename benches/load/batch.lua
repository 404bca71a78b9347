-- wrk script: NDJSON batches to /logs. The body size comes from the environment variable
-- BATCH_BYTES (default 65536); every line is a log of exactly 100 bytes (the url is padded)
-- with a random IPv4 address, so a body holds floor(BATCH_BYTES / 100) lines. Eight distinct
-- bodies are built once per wrk thread and cycled. done() reports lines/s.
--   BATCH_BYTES=65536 wrk -t1 -c16 -d10s -s benches/load/batch.lua http://127.0.0.1:5000/logs
-- (Top-level code runs in every Lua state of wrk, including the one done() runs in.)
local line_bytes = 100
local lines_per_body = math.floor(tonumber(os.getenv("BATCH_BYTES") or "65536") / line_bytes)
local pool, n, i = {}, 8, 0

local function line()
  local head = string.format(
    '{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"%d.%d.%d.%d","url":"/page/%d',
    math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254),
    math.random(0, 99))
  return head .. string.rep("x", line_bytes - #head - 3) .. '"}\n'
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000003)
  local headers = { ["Content-Type"] = "application/x-ndjson" }
  for k = 1, n do
    local lines = {}
    for j = 1, lines_per_body do
      lines[j] = line()
    end
    pool[k] = wrk.format("POST", wrk.path, headers, table.concat(lines))
  end
end

function request()
  i = i % n + 1
  return pool[i]
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.1f lines_per_s=%.0f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.requests / seconds, summary.requests * lines_per_body / seconds,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout))
end
