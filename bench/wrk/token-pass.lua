-- A refresh that azp-bridge reads and passes unchanged: the token's azp is
-- the caller itself (~1 KB form body).
dofile("common.lua")
wrk.method = "POST"
wrk.path = TOKEN_PATH
wrk.headers["Content-Type"] = FORM
wrk.body = fixture("pass.form")
