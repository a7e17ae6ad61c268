-- Requests that are not token requests, alternating: a GET of the account
-- page and a ~1 KB form POST to another path.
dofile("common.lua")
local requests
local n = 0

function init(args)
  requests = {
    wrk.format("GET", "/realms/demo/account", {}),
    wrk.format("POST", "/api/orders", { ["Content-Type"] = FORM }, fixture("other.form")),
  }
end

function request()
  n = n + 1
  return requests[n % 2 + 1]
end
