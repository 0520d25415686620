-- wrk script for bench/bench_ingest.py: POST real report frames to the webhook the way
-- Kannel's post-url does, each request with a new gateway message id.
--   wrk ... -s bench/wrk_inbound.lua http://127.0.0.1:PORT -- SECRET FRAMES_FILE
-- FRAMES_FILE has one "msisdn hexframe" line per frame. An optional third argument paces
-- each connection: that many milliseconds between its requests. At the end one line
-- "RESULT {json}" carries the counts and latency percentiles (microseconds).

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function unhex(text)
  return (text:gsub("..", function(pair) return string.char(tonumber(pair, 16)) end))
end

local function urlencode(text)
  return (text:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  secret = urlencode(args[1])
  frames = {}
  for line in io.lines(args[2]) do
    local msisdn, hex = line:match("^(%S+) (%x+)$")
    table.insert(frames, { urlencode(msisdn), unhex(hex), msisdn })
  end
  counter = 0
  if args[3] then
    local pause = tonumber(args[3])
    delay = function() return pause end
  end
  -- The headers smsbox sends with an 8-bit MO (e2e/README.md), beside the query's escapes.
  now_ts = os.time()
  local now = os.date("!%Y-%m-%d %H:%M:%S", now_ts)
  now_escaped = now:gsub(" ", "+")
  headers = {
    ["Connection"] = "keep-alive",
    ["User-Agent"] = "Kannel/1.4.5",
    ["Content-Type"] = "application/octet-stream",
    ["X-Kannel-To"] = "+447700900000",
    ["X-Kannel-Time"] = now,
    ["Date"] = now,
    ["X-Kannel-SMSC"] = "bench",
    ["X-Kannel-Coding"] = "1",
    ["X-Kannel-Service"] = "default",
  }
end

function request()
  counter = counter + 1
  local frame = frames[(counter * 7 + tid) % #frames + 1]
  local id = "w" .. tid .. "-" .. counter
  local path = "/sms/kannel/inbound?secret=" .. secret .. "&from=" .. frame[1]
    .. "&to=%2B447700900000&smsc=bench&id=" .. id .. "&time=" .. now_escaped
    .. "&ts=" .. now_ts .. "&coding=1&udh="
  headers["X-Kannel-From"] = frame[3]
  return wrk.format("POST", path, headers, frame[2])
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors,
    latency:percentile(50), latency:percentile(99)))
end
