-- wrk script for benchmarks/serving.py: POST one JSON body, optionally with a bearer key, and print
-- one machine-readable line at the end.
--   BENCH_BODY  the request body (JSON)
--   BENCH_AUTH  the Authorization header's value; none when unset or empty
-- The last line wrk prints is
--   BENCH_RESULT {"requests": N, "duration_us": D, "non_2xx_3xx": S, "connect": C, "read": R,
--                 "write": W, "timeout": T, "p50_us": P50, "p99_us": P99}

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
