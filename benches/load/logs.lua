-- wrk script: log POSTs to /logs, each with random IPv4 addresses.
--   wrk -t1 -c64 -d10s -s benches/load/logs.lua http://127.0.0.1:5000/logs
--   BATCH_BYTES=65536 wrk -t1 -c16 -d10s -s benches/load/logs.lua http://127.0.0.1:5000/logs
-- Without BATCH_BYTES (or with 0): one JSON object (~90 bytes) per request, from a pool of
-- 65,536 prebuilt requests. With BATCH_BYTES: NDJSON bodies of floor(BATCH_BYTES / 100) logs of
-- exactly 100 bytes each (the url is padded), from a pool of 8 prebuilt bodies. Requests are
-- built once per wrk thread and cycled, so wrk spends its CPU on the sockets, not on Lua string
-- building; both servers of a comparison get the same kind of stream. done() prints one
-- machine-readable RESULT line for benches/load/run.sh (lines/s too for batches).
-- SHAPE=array (with BATCH_BYTES): the same logs as one JSON array per body (`[l1,l2,...]`,
-- application/json), as Kong, APISIX, Vector and Fluent Bit batch them.
-- SHAPE=clf (with BATCH_BYTES): text/plain bodies of combined-log-format lines (nginx's and
-- Apache's default access log), each 100 bytes with its newline (the user agent is padded).
-- BODY_DIR (with BATCH_BYTES, CONTENT_TYPE and ENCODING): the bodies are the files
-- BODY_DIR/body-1 .. body-8, pre-generated (compressed) by run.sh, sent as they are with
-- `Content-Encoding: ENCODING`; lines per body is still floor(BATCH_BYTES / 100).
-- (Top-level code runs in every Lua state of wrk, including the one done() runs in.)
local batch_bytes = tonumber(os.getenv("BATCH_BYTES") or "0")
local shape = os.getenv("SHAPE") or "ndjson"
local body_dir = os.getenv("BODY_DIR")
local line_bytes = 100
local lines_per_body = batch_bytes > 0 and math.floor(batch_bytes / line_bytes) or 1
local pool, n, i = {}, batch_bytes > 0 and 8 or 65536, 0

local function log()
  return string.format(
    '{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"%d.%d.%d.%d","url":"/page/%d',
    math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254),
    math.random(0, 99))
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000003)
  if batch_bytes > 0 and body_dir then
    local headers = {
      ["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-ndjson",
      ["Content-Encoding"] = os.getenv("ENCODING") or "identity",
    }
    for k = 1, n do
      local file = assert(io.open(string.format("%s/body-%d", body_dir, k), "rb"))
      pool[k] = wrk.format("POST", wrk.path, headers, file:read("*a"))
      file:close()
    end
  elseif batch_bytes > 0 and shape == "array" then
    local headers = { ["Content-Type"] = "application/json" }
    for k = 1, n do
      local lines = {}
      for j = 1, lines_per_body do
        local head = log()
        -- 100 bytes with the comma, as the NDJSON line with its newline.
        lines[j] = head .. string.rep("x", line_bytes - #head - 3) .. '"}'
      end
      pool[k] = wrk.format("POST", wrk.path, headers, "[" .. table.concat(lines, ",") .. "]")
    end
  elseif batch_bytes > 0 and shape == "clf" then
    local headers = { ["Content-Type"] = "text/plain" }
    for k = 1, n do
      local lines = {}
      for j = 1, lines_per_body do
        local head = string.format(
          '%d.%d.%d.%d - - [24/Jun/2020:15:27:00 +0000] "GET /page/%d HTTP/1.1" 200 2326 "-" "',
          math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254),
          math.random(0, 99))
        lines[j] = head .. string.rep("x", line_bytes - #head - 2) .. '"\n'
      end
      pool[k] = wrk.format("POST", wrk.path, headers, table.concat(lines))
    end
  elseif batch_bytes > 0 then
    local headers = { ["Content-Type"] = "application/x-ndjson" }
    for k = 1, n do
      local lines = {}
      for j = 1, lines_per_body do
        local head = log()
        lines[j] = head .. string.rep("x", line_bytes - #head - 3) .. '"}\n'
      end
      pool[k] = wrk.format("POST", wrk.path, headers, table.concat(lines))
    end
  else
    local headers = { ["Content-Type"] = "application/json" }
    for k = 1, n do
      pool[k] = wrk.format("POST", wrk.path, headers, log() .. '"}')
    end
  end
end

function request()
  i = i % n + 1
  return pool[i]
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local batch = ""
  if batch_bytes > 0 then
    batch = string.format(" lines_per_s=%.0f", summary.requests * lines_per_body / seconds)
  end
  io.write(string.format(
    "RESULT requests=%d rps=%.1f%s p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.requests / seconds, batch,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout))
end
