-- azp-swap.lua: azp-bridge's credential swap written for Envoy's Lua filter
-- (LuaJIT), as a production script would be: the benchmark's Lua competitor.
--
-- On POST .../realms/{realm}/protocol/openid-connect/{token|revoke|logout}
-- with a form body, it reads the refresh token's (or, for revoke, the
-- token's) JWS payload, and when its `azp` is a configured confidential
-- client, the caller (Basic header or body client_id) is one of that
-- client's allowed callers and the token's `iss` is this realm, it drops the
-- caller's client_id / client_secret / client_assertion /
-- client_assertion_type and appends the target's client_id and
-- client_secret; every other byte of the body is forwarded as it came.
-- Anything it cannot read, it forwards unchanged (Keycloak decides).
-- Like azp-bridge (`"id_token": "drop"`, its default), it then takes the
-- id_token out of a bridged refresh's 2xx JSON answer, every other member
-- byte for byte (the new ID token is the confidential client's).
--
-- Envoy's Lua has no base64 decoder (only base64Escape, an encoder) and no
-- JSON: both are below. The signature is not checked: Keycloak does that
-- after the swap.
--
-- Lua environments are per worker thread; CLIENTS is built once per worker.

-- Configuration (as azp-bridge's plugin configuration in bench/run.sh).
-- A secret may come from the environment instead: client_secret_env = "NAME".
local CONFIG = {
  max_body_bytes = 65536,
  max_response_bytes = 65536,
  clients = {
    {
      client_id = "admin",
      client_secret = "bench-Secret/+&=",
      allowed_callers = { "mobile", "spa" },
      realms = { "demo" },
    },
    {
      client_id = "reporting",
      client_secret = "rep0rting-secret",
      allowed_callers = { "mobile" },
    },
  },
}

local byte, char, sub, find, match, gsub, format, lower =
  string.byte, string.char, string.sub, string.find, string.match, string.gsub, string.format, string.lower
local concat = table.concat
local unpack = unpack or table.unpack
local floor = math.floor

-- ---------------------------------------------------------------------------
-- Form encoding (application/x-www-form-urlencoded)

-- "%XX" (any case) -> byte, for gsub.
local HEX_PAIR = {}
do
  local digits = "0123456789abcdefABCDEF"
  for i = 1, #digits do
    for j = 1, #digits do
      local hi, lo = sub(digits, i, i), sub(digits, j, j)
      HEX_PAIR[hi .. lo] = char(tonumber(hi .. lo, 16))
    end
  end
end

-- Decodes '+' and %XX; nil when a '%' is not followed by two hex digits.
local function form_decode(s)
  if not find(s, "[%%+]") then
    return s
  end
  local p = find(s, "%", 1, true)
  while p do
    if not match(s, "^%x%x", p + 1) then
      return nil
    end
    p = find(s, "%", p + 3, true)
  end
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", HEX_PAIR))
end

-- Encodes as browsers encode form values (as azp-bridge does).
local function form_encode(s)
  return (gsub(s, "[^%w%*%-%._]", function(c)
    if c == " " then
      return "+"
    end
    return format("%%%02X", byte(c))
  end))
end

-- ---------------------------------------------------------------------------
-- base64 (standard and url alphabets)

local function decode_table(alphabet)
  local t = {}
  for i = 1, 64 do
    t[byte(alphabet, i)] = i - 1
  end
  return t
end
local B64URL = decode_table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
local B64STD = decode_table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

-- Decodes base64 with the given alphabet. Padding: "optional" (canonical
-- '=' padding or none, as JWS readers tolerate) or "required". Refuses
-- characters outside the alphabet and non-zero unused bits. nil on error.
local function b64_decode(s, alphabet, padding)
  local len = #s
  local pad = 0
  while pad < 2 and len > 0 and byte(s, len) == 61 do
    len, pad = len - 1, pad + 1
  end
  if pad > 0 and (len + pad) % 4 ~= 0 then
    return nil
  end
  if padding == "required" and (len + pad) % 4 ~= 0 then
    return nil
  end
  local rem = len % 4
  if rem == 1 then
    return nil
  end
  local out, n = {}, 0
  local full = len - rem
  for i = 1, full, 4 do
    local a, b, c, d = byte(s, i, i + 3)
    a, b, c, d = alphabet[a], alphabet[b], alphabet[c], alphabet[d]
    if not (a and b and c and d) then
      return nil
    end
    local v = ((a * 64 + b) * 64 + c) * 64 + d
    out[n + 1] = floor(v / 65536)
    out[n + 2] = floor(v / 256) % 256
    out[n + 3] = v % 256
    n = n + 3
  end
  if rem > 0 then
    local a, b, c = byte(s, full + 1, full + rem)
    a, b = alphabet[a], alphabet[b]
    if not (a and b) then
      return nil
    end
    if rem == 2 then
      if b % 16 ~= 0 then
        return nil
      end
      n = n + 1
      out[n] = a * 4 + floor(b / 16)
    else
      c = alphabet[c]
      if not c or c % 4 ~= 0 then
        return nil
      end
      local v = (a * 64 + b) * 64 + c
      out[n + 1] = floor(v / 1024)
      out[n + 2] = floor(v / 4) % 256
      n = n + 2
    end
  end
  -- string.char takes its bytes as arguments: in slices, to stay far below
  -- the C stack limit whatever the size.
  if n <= 4096 then
    return char(unpack(out, 1, n))
  end
  local parts = {}
  for i = 1, n, 4096 do
    parts[#parts + 1] = char(unpack(out, i, math.min(i + 4095, n)))
  end
  return concat(parts)
end

-- ---------------------------------------------------------------------------
-- JSON: only what reading two top-level string claims needs, but the whole
-- document is checked to be JSON (as azp-bridge's serde_json does), without
-- recursion, so no payload can exhaust the stack.

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- Reads the string starting at s[pos] == '"'. Returns its value (or true
-- when decode is false) and the position after it; nil if malformed.
local function json_string(s, pos, decode)
  local p = pos + 1
  local parts, n = nil, 0
  while true do
    local q = find(s, '[%z\1-\31"\\]', p)
    if not q then
      return nil
    end
    local c = byte(s, q)
    if c == 34 then
      if not decode then
        return true, q + 1
      end
      if not parts then
        return sub(s, p, q - 1), q + 1
      end
      parts[n + 1] = sub(s, p, q - 1)
      return concat(parts, "", 1, n + 1), q + 1
    elseif c ~= 92 then
      return nil -- a raw control character
    end
    local e = byte(s, q + 1)
    local piece, nextp
    if e == 117 then -- \uXXXX
      local hex = match(s, "^%x%x%x%x", q + 2)
      if not hex then
        return nil
      end
      local cp = tonumber(hex, 16)
      nextp = q + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local low = match(s, "^\\u(%x%x%x%x)", nextp)
        low = low and tonumber(low, 16)
        if not low or low < 0xDC00 or low > 0xDFFF then
          return nil
        end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
        nextp = nextp + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        return nil
      end
      piece = decode and utf8_char(cp)
    else
      piece = ESCAPES[e]
      if not piece then
        return nil
      end
      nextp = q + 2
    end
    if decode then
      parts = parts or {}
      parts[n + 1] = sub(s, p, q - 1)
      parts[n + 2] = piece
      n = n + 2
    end
    p = nextp
  end
end

local function skip_ws(s, pos)
  return match(s, "^[ \t\n\r]*()", pos)
end

-- Position after the scalar (number, true, false, null) at pos, or nil.
local function json_scalar(s, pos)
  local c = byte(s, pos)
  if c == 116 then
    return sub(s, pos, pos + 3) == "true" and pos + 4 or nil
  elseif c == 102 then
    return sub(s, pos, pos + 4) == "false" and pos + 5 or nil
  elseif c == 110 then
    return sub(s, pos, pos + 3) == "null" and pos + 4 or nil
  end
  local p = match(s, "^-?0()", pos) or match(s, "^-?[1-9]%d*()", pos)
  if not p then
    return nil
  end
  p = match(s, "^%.%d+()", p) or p
  return match(s, "^[eE][+-]?%d+()", p) or p
end

-- The member name at pos (decoded if asked, else true) and the position
-- after its `:`, or nil.
local function member_name(s, pos, decode)
  if byte(s, pos) ~= 34 then
    return nil
  end
  local name
  name, pos = json_string(s, pos, decode)
  if not name then
    return nil
  end
  pos = skip_ws(s, pos)
  if byte(s, pos) ~= 58 then
    return nil
  end
  return name, pos + 1
end

-- Position after the value at pos (any JSON value), or nil. Iterative.
local function json_skip(s, pos)
  local stack, depth = {}, 0
  while true do
    -- A value starts at pos.
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    local opened = false
    if c == 34 then
      local ok
      ok, pos = json_string(s, pos, false)
      if not ok then
        return nil
      end
    elseif c == 123 or c == 91 then
      local close = c == 123 and 125 or 93
      pos = skip_ws(s, pos + 1)
      if byte(s, pos) == close then
        pos = pos + 1
      else
        depth = depth + 1
        stack[depth] = c
        opened = true
        if c == 123 then
          local _
          _, pos = member_name(s, pos, false)
          if not pos then
            return nil
          end
        end
      end
    else
      pos = json_scalar(s, pos)
      if not pos then
        return nil
      end
    end
    -- After a value: close containers until one continues with ','.
    if not opened then
      while true do
        if depth == 0 then
          return pos
        end
        pos = skip_ws(s, pos)
        c = byte(s, pos)
        local top = stack[depth]
        if c == 44 then
          pos = pos + 1
          if top == 123 then
            local _
            _, pos = member_name(s, skip_ws(s, pos), false)
            if not pos then
              return nil
            end
          end
          break
        elseif c == (top == 123 and 125 or 93) then
          depth = depth - 1
          pos = pos + 1
        else
          return nil
        end
      end
    end
  end
end

-- azp (a string, required) and iss (a string or null, optional) of a JSON
-- object; nil if it is not such an object or names either claim twice.
local function read_claims(s)
  local pos = skip_ws(s, 1)
  if byte(s, pos) ~= 123 then
    return nil
  end
  pos = skip_ws(s, pos + 1)
  local azp, iss, seen_iss
  if byte(s, pos) ~= 125 then
    while true do
      local key
      key, pos = member_name(s, pos, true)
      if not key then
        return nil
      end
      pos = skip_ws(s, pos)
      if key == "azp" or key == "iss" then
        local value
        if byte(s, pos) == 34 then
          value, pos = json_string(s, pos, true)
          if not value then
            return nil
          end
        elseif key == "iss" and sub(s, pos, pos + 3) == "null" then
          pos = pos + 4
        else
          return nil
        end
        if key == "azp" then
          if azp then
            return nil
          end
          azp = value
        else
          if seen_iss then
            return nil
          end
          seen_iss, iss = true, value
        end
      else
        pos = json_skip(s, pos)
        if not pos then
          return nil
        end
      end
      pos = skip_ws(s, pos)
      local c = byte(s, pos)
      if c == 125 then
        break
      elseif c ~= 44 then
        return nil
      end
      pos = skip_ws(s, pos + 1)
    end
  end
  if not azp or skip_ws(s, pos + 1) <= #s then
    return nil
  end
  return azp, iss
end

-- The claims of a compact JWS, or nil and why not.
local function token_claims(token)
  local d1 = find(token, ".", 1, true)
  local d2 = d1 and find(token, ".", d1 + 1, true)
  if not d2 or find(token, ".", d2 + 1, true) then
    return nil, "token is not a compact JWS"
  end
  local json = b64_decode(sub(token, d1 + 1, d2 - 1), B64URL, "optional")
  if not json then
    return nil, "token payload is not base64url"
  end
  local azp, iss = read_claims(json)
  if not azp then
    return nil, "token payload has no string azp"
  end
  return azp, iss
end

-- A JSON object's text without its id_token member, or nil when it is not
-- one object, names a member twice or has no id_token (the answer then goes
-- as it came). Names and values keep their bytes; whitespace between them
-- goes, as azp-bridge writes them.
local function without_id_token(s)
  local pos = skip_ws(s, 1)
  if byte(s, pos) ~= 123 then
    return nil
  end
  pos = skip_ws(s, pos + 1)
  local kept, m, seen, found = {}, 0, {}, false
  if byte(s, pos) ~= 125 then
    while true do
      if byte(s, pos) ~= 34 then
        return nil
      end
      local name, name_end = json_string(s, pos, true)
      if not name or seen[name] then
        return nil
      end
      seen[name] = true
      local colon = skip_ws(s, name_end)
      if byte(s, colon) ~= 58 then
        return nil
      end
      local value_start = skip_ws(s, colon + 1)
      local value_end = json_skip(s, value_start)
      if not value_end then
        return nil
      end
      if name == "id_token" then
        found = true
      else
        m = m + 1
        kept[m] = sub(s, pos, name_end - 1) .. ":" .. sub(s, value_start, value_end - 1)
      end
      pos = skip_ws(s, value_end)
      local c = byte(s, pos)
      if c == 125 then
        break
      elseif c ~= 44 then
        return nil
      end
      pos = skip_ws(s, pos + 1)
    end
  end
  if not found or skip_ws(s, pos + 1) <= #s then
    return nil
  end
  return "{" .. concat(kept, ",", 1, m) .. "}"
end

-- ---------------------------------------------------------------------------
-- Configuration, compiled once per worker.

local function set_of(list)
  if not list then
    return nil
  end
  local set = {}
  for _, v in ipairs(list) do
    set[v] = true
  end
  return set
end

local CLIENTS = {}
for _, c in ipairs(CONFIG.clients) do
  local secret = c.client_secret or (c.client_secret_env and os.getenv(c.client_secret_env))
  assert(secret and secret ~= "", "azp-swap: no secret for client " .. c.client_id)
  CLIENTS[c.client_id] = {
    callers = set_of(c.allowed_callers),
    realms = set_of(c.realms),
    basic = c.auth_method == "client_secret_basic",
    -- What the body gets (client_secret_post).
    post_tail = "client_id=" .. form_encode(c.client_id) .. "&client_secret=" .. form_encode(secret),
    -- Set at first use (client_secret_basic): base64Escape needs a handle.
    basic_plain = form_encode(c.client_id) .. ":" .. form_encode(secret),
  }
end

local AUTH_PARAMETERS = { client_id = true, client_secret = true, client_assertion = true, client_assertion_type = true }
local TOKEN_PARAMETER = { token = "refresh_token", logout = "refresh_token", revoke = "token" }
local FORM = "application/x-www-form-urlencoded"

-- ---------------------------------------------------------------------------

local function caller_from_basic(value)
  value = match(value, "^%s*(.-)%s*$")
  local scheme, credentials = match(value, "^(%S+) (.*)$")
  if not scheme or lower(scheme) ~= "basic" then
    return false -- not Basic: no caller from the header
  end
  local plain = b64_decode(match(credentials, "^%s*(.-)%s*$"), B64STD, "required")
  local colon = plain and find(plain, ":", 1, true)
  return colon and form_decode(sub(plain, 1, colon - 1)) or nil
end

local function pass(handle, why)
  if why then
    handle:logWarn("azp-swap: token request forwarded unchanged: " .. why)
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get(":method") ~= "POST" then
    return
  end
  local content_type = headers:get("content-type")
  if not content_type or lower(match(content_type, "^%s*([^;]-)%s*;") or match(content_type, "^%s*(.-)%s*$")) ~= FORM then
    return
  end
  local path = headers:get(":path") or ""
  local query = find(path, "?", 1, true)
  if query then
    path = sub(path, 1, query - 1)
  end
  local realm, endpoint = match(path, "/realms/([^/]+)/protocol/openid%-connect/(%l+)$")
  local token_parameter = TOKEN_PARAMETER[endpoint]
  if not token_parameter then
    return
  end
  local declared = tonumber(headers:get("content-length") or "")
  if declared and declared > CONFIG.max_body_bytes then
    handle:respond({ [":status"] = "413", ["content-type"] = "application/json", ["cache-control"] = "no-store" },
      '{"error":"invalid_request","error_description":"Request body exceeds the azp-swap limit of '
        .. CONFIG.max_body_bytes .. ' bytes"}')
    return
  end
  -- The caller's Basic header, read while the headers are held.
  local authorization = headers:get("authorization")
  local basic_caller = false
  if authorization then
    basic_caller = caller_from_basic(authorization)
    if basic_caller == nil then
      return pass(handle, "authorization is not valid Basic")
    end
  end

  -- Buffers the whole body (headers wait).
  local buffer = handle:body()
  if not buffer then
    return
  end
  local size = buffer:length()
  if size > CONFIG.max_body_bytes then
    handle:respond({ [":status"] = "413", ["content-type"] = "application/json", ["cache-control"] = "no-store" },
      '{"error":"invalid_request","error_description":"Request body exceeds the azp-swap limit of '
        .. CONFIG.max_body_bytes .. ' bytes"}')
    return
  end
  local body = buffer:getBytes(0, size)

  -- Parse the form: raw segments, decoded names, raw values.
  local raws, names, values, n = {}, {}, {}, 0
  local seen = {}
  local pos = 1
  while true do
    local amp = find(body, "&", pos, true)
    local raw = sub(body, pos, amp and amp - 1 or -1)
    local eq = find(raw, "=", 1, true)
    local name = form_decode(eq and sub(raw, 1, eq - 1) or raw)
    if not name then
      return pass(handle, "malformed form encoding")
    end
    if raw ~= "" then
      if seen[name] then
        return -- a repeated parameter: Keycloak refuses the request itself
      end
      seen[name] = n + 1
    end
    n = n + 1
    raws[n], names[n], values[n] = raw, name, eq and sub(raw, eq + 1) or ""
    if not amp then
      break
    end
    pos = amp + 1
  end
  -- The decoded value of a parameter: nil if absent, false if malformed.
  local function value_of(name)
    local i = seen[name]
    if not i then
      return nil
    end
    return form_decode(values[i]) or false
  end

  local caller = basic_caller
  if not caller then
    caller = value_of("client_id")
    if caller == false then
      return pass(handle, "malformed client_id")
    end
  end
  if endpoint == "token" and value_of("grant_type") ~= "refresh_token" then
    return
  end
  local token = value_of(token_parameter)
  if token == nil then
    return
  elseif token == false then
    return pass(handle, "malformed token encoding")
  end
  local azp, iss = token_claims(token)
  if not azp then
    return pass(handle, iss)
  end
  if caller == azp then
    return -- the token is the caller's own
  end
  local client = CLIENTS[azp]
  if not client or not caller or not client.callers[caller] then
    return
  end
  if client.realms and not client.realms[realm] then
    return
  end
  local suffix = "/realms/" .. realm
  if not iss or sub(iss, -#suffix) ~= suffix then
    return
  end

  -- Swap: every segment but the caller's credentials, byte for byte.
  local kept, m = {}, 0
  for i = 1, n do
    if not AUTH_PARAMETERS[names[i]] then
      m = m + 1
      kept[m] = raws[i]
    end
  end
  local out = concat(kept, "&", 1, m)
  if client.basic then
    client.basic_header = client.basic_header or ("Basic " .. handle:base64Escape(client.basic_plain))
    headers:replace("authorization", client.basic_header)
  else
    out = (out ~= "" and out .. "&" or out) .. client.post_tail
    if authorization then
      headers:remove("authorization")
    end
  end
  -- Also sets Content-Length to the new length.
  buffer:setBytes(out)
  handle:streamInfo():dynamicMetadata():set("azp-swap", "bridged", true)
end

function envoy_on_response(handle)
  local bridged = handle:streamInfo():dynamicMetadata():get("azp-swap")
  if not (bridged and bridged.bridged) or not match(handle:headers():get(":status") or "", "^2%d%d$") then
    return
  end
  local buffer = handle:body()
  if not buffer or buffer:length() > CONFIG.max_response_bytes then
    return
  end
  local out = without_id_token(buffer:getBytes(0, buffer:length()))
  if out then
    buffer:setBytes(out)
  end
end
