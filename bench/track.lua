-- wrk script: POST /track with 5-event batches, every event id unique; counts 202 and 503.
-- Arguments after `--`: the Origin header (the Worker checks it on every POST), and how many
-- distinct visitors the events come from (default 2000).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  origin = args[1]
  visitors = tonumber(args[2]) or 2000
  n = 0
  accepted = 0
  busy = 0
  other = 0
end

function request()
  n = n + 1
  local events = {}
  for k = 1, 5 do
    events[k] = string.format(
      '{"eventId":"w%d-%d-%d","type":"pageview","timestamp":1795700000000,"sessionId":"s%d-%d","visitorId":"v%d","url":"https://acme.example/pricing","path":"/pricing"}',
      id, n, k, id, n % 500, n % visitors)
  end
  local headers = {["Content-Type"] = "text/plain"}
  if origin then headers["Origin"] = origin end
  return wrk.format("POST", "/track", headers, '{"v":1,"events":[' .. table.concat(events, ",") .. ']}')
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status == 503 then busy = busy + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local a, b, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    b = b + t:get("busy")
    o = o + t:get("other")
  end
  io.write(string.format("ACCEPTED_EVENTS %d\nBUSY_REQUESTS %d\nOTHER_REQUESTS %d\nP99_MS %.2f\nP50_MS %.2f\nSECONDS %.2f\n",
    a * 5, b, o, latency:percentile(99) / 1000, latency:percentile(50) / 1000, summary.duration / 1e6))
end
