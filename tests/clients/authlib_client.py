"""Authlib (OAuth 2 / OpenID Connect for Python) as a public client app uses
it, for e2e/tests/e2e/keycloak.rs. One JSON line out.

    python authlib_client.py refresh ISSUER CLIENT_ID REFRESH_TOKEN [TOKEN_BASE]
    python authlib_client.py revoke  ISSUER CLIENT_ID TOKEN [TOKEN_BASE]
"""
import json
import sys
from urllib.parse import urlsplit, urlunsplit

import requests
from authlib.integrations.requests_client import OAuth2Session


def rebase(url, base):
    if not base:
        return url
    u, b = urlsplit(url), urlsplit(base)
    return urlunsplit((b.scheme, b.netloc, u.path, u.query, u.fragment))


def main(command, issuer, client_id, token, token_base=None):
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    if metadata["issuer"] != issuer:
        raise ValueError("issuer mismatch in discovery")
    session = OAuth2Session(client_id, token_endpoint_auth_method="none")
    if command == "refresh":
        tokens = session.refresh_token(rebase(metadata["token_endpoint"], token_base), refresh_token=token)
        # expires_at is Authlib's own (from expires_in), not Keycloak's.
        keys = sorted(k for k in tokens.keys() if k != "expires_at")
        return {"ok": True, "keys": keys, "refresh_token": tokens["refresh_token"],
                "access_token": tokens["access_token"]}
    if command == "revoke":
        resp = session.revoke_token(rebase(metadata["revocation_endpoint"], token_base), token=token,
                                    token_type_hint="refresh_token")
        return {"ok": resp.status_code == 200, "status": resp.status_code}
    raise ValueError(f"unknown command {command}")


if __name__ == "__main__":
    try:
        print(json.dumps(main(*sys.argv[1:])))
    except Exception as e:  # the test reads the failure from the JSON line
        print(json.dumps({"ok": False, "name": type(e).__name__, "message": str(e)}))
