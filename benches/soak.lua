-- wrk script for benches/soak.sh: a mix of valid and invalid POST /logs requests.
-- Shares (of 100): 55 valid single objects with one of 2^20 addresses, 10 NDJSON batches of
-- 20 lines with one bad line, and 35 invalid requests of eight kinds, two of which make the
-- server close the connection (413, 401-less here) so connection churn is part of the soak.

local counter = 0

local function address()
  local n = math.random(0, 1048575)
  return string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

local function line(ip)
  return '{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"' .. ip .. '","url":"/a"}'
end

local json = { ["Content-Type"] = "application/json" }
local ndjson = { ["Content-Type"] = "application/x-ndjson" }
local text = { ["Content-Type"] = "text/plain" }
local big = '{"ip":"10.0.0.1","pad":"' .. string.rep("x", 5000) .. '"}'

request = function()
  counter = counter + 1
  local r = math.random(1, 100)
  if r <= 55 then
    return wrk.format("POST", "/logs", json, line(address()))
  elseif r <= 65 then
    local lines = {}
    for i = 1, 20 do
      lines[i] = line(address())
    end
    lines[7] = '{"ip":"10.0.0.999"}'
    return wrk.format("POST", "/logs", ndjson, table.concat(lines, "\n"))
  elseif r <= 70 then
    return wrk.format("POST", "/logs", json, '{"ip": "1.2.3.4",, }')           -- invalid JSON
  elseif r <= 75 then
    return wrk.format("POST", "/logs", json, '{"ip":"999.1.1.1"}')             -- invalid address
  elseif r <= 80 then
    return wrk.format("POST", "/logs", json, '{"url":"/no-ip"}')               -- ip missing
  elseif r <= 85 then
    return wrk.format("POST", "/logs", json, '[{"ip":"10.0.0.1"}]')            -- not an object
  elseif r <= 90 then
    return wrk.format("POST", "/logs", text, line("10.0.0.2"))                 -- 415
  elseif r <= 94 then
    return wrk.format("GET", "/nowhere", nil, nil)                             -- 404
  elseif r <= 97 then
    return wrk.format("POST", "/logs", json, "")                               -- empty body
  else
    return wrk.format("POST", "/logs", json, big)                              -- 413, closes
  end
end
