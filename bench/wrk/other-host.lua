-- Requests to another service behind the same Envoy (goal 5 of issue 27:
-- "a request to another host"), alternating: a GET of an order and a ~1 KB
-- form POST, both with the Host of another service. The shipped
-- configuration has one virtual host ("*") and one cluster, so they take the
-- same routes as other.lua's requests; what differs for a filter on every
-- route is that neither path nor authority is Keycloak's. azp-bridge decides
-- on method and path before it reads the authority or the route's cluster, so
-- these cost it what other.lua's POST costs; the variants show it stays so.
dofile("common.lua")
local requests
local n = 0

function init(args)
  local host = { ["Host"] = "orders.internal" }
  requests = {
    wrk.format("GET", "/api/orders/42", host),
    wrk.format("POST", "/api/orders", { ["Host"] = "orders.internal", ["Content-Type"] = FORM }, fixture("other.form")),
  }
end

function request()
  n = n + 1
  return requests[n % 2 + 1]
end
