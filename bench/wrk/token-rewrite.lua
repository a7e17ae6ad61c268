-- A refresh that azp-bridge rewrites: the public client "mobile" refreshes a
-- token issued to the confidential client "admin" (~1 KB form body).
dofile("common.lua")
wrk.method = "POST"
wrk.path = TOKEN_PATH
wrk.headers["Content-Type"] = FORM
wrk.body = fixture("rewrite.form")
