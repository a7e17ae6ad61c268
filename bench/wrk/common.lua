-- Shared by the wrk scripts (wrk runs with bench/wrk as its working directory).

-- A request body from bench/fixtures (written by fixtures/make.py).
function fixture(name)
  local f = assert(io.open("../fixtures/" .. name, "rb"))
  local body = f:read("*a")
  f:close()
  return body
end

FORM = "application/x-www-form-urlencoded"
-- Keycloak's authority in the bench, without the proxy's port (which
-- changes per run): what the `authorities` variant lists, matched exactly.
wrk.headers["Host"] = "127.0.0.1"
TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"

-- One machine-readable line for bench/run.sh:
-- BENCH_RESULT requests duration_us p50_us p99_us socket_errors non_2xx_3xx
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end

