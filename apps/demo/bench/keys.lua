-- wrk script of the cluster benchmark (cluster.bench.ts):
--   wrk ... -s keys.lua <url> -- <keys> <first>
-- asks /api?key=user000001 .. user<keys> in a fixed order, starting at <first> and
-- wrapping around, so every contender gets the same key sequence (each round goes on
-- where the contender's last round stopped).
-- The done() line is what the benchmark reads (wrk's own --latency table is for humans).

local keys, next_key = 1, 1

function init(args)
  keys = tonumber(args[1])
  next_key = tonumber(args[2])
end
function request()
  local path = string.format("/api?key=user%06d", next_key)
  next_key = next_key % keys + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
