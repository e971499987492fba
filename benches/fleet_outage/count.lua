-- Counts a wrk run's answers by kind: 200, the service's own 503, the load balancer's 503
-- (no server available), anything else; and prints them when the run is done.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = { ok = 0, app_503 = 0, no_server = 0, other = 0 }
end

function response(status, headers, body)
  if status == 200 then
    counts.ok = counts.ok + 1
  elseif status == 503 and body and body:find("No server is available", 1, true) then
    counts.no_server = counts.no_server + 1
  elseif status == 503 then
    counts.app_503 = counts.app_503 + 1
  else
    counts.other = counts.other + 1
  end
end

function done(summary, latency, requests)
  local total = { ok = 0, app_503 = 0, no_server = 0, other = 0 }
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do
      total[k] = total[k] + v
    end
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  io.write(string.format("requests=%d ok=%d app_503=%d no_server=%d other=%d socket_errors=%d\n",
    summary.requests, total.ok, total.app_503, total.no_server, total.other, socket))
end
