// openid-client (the certified OpenID Connect relying party for JavaScript)
// as a public client app uses it, for e2e/tests/e2e/keycloak.rs. One JSON line out.
//
//   node openid_client.mjs refresh ISSUER CLIENT_ID REFRESH_TOKEN [TOKEN_BASE]
//   node openid_client.mjs revoke  ISSUER CLIENT_ID TOKEN [TOKEN_BASE]
//
// Discovery at ISSUER (plain HTTP on 127.0.0.1, hence allowInsecureRequests);
// TOKEN_BASE, when given, replaces the origin of the token and revocation
// endpoints (a second Envoy in front of the same Keycloak).
import * as client from 'openid-client';

const [command, issuer, clientId, token, tokenBase] = process.argv.slice(2);
const options = { execute: [client.allowInsecureRequests] };

function rebase(url) {
  if (!tokenBase || !url) return url;
  const u = new URL(url);
  const base = new URL(tokenBase);
  u.protocol = base.protocol;
  u.host = base.host;
  return u.href;
}

try {
  const discovered = await client.discovery(new URL(issuer), clientId, undefined, client.None(), options);
  const metadata = discovered.serverMetadata();
  const config = new client.Configuration(
    { ...metadata, token_endpoint: rebase(metadata.token_endpoint), revocation_endpoint: rebase(metadata.revocation_endpoint) },
    clientId,
    undefined,
    client.None(),
  );
  client.allowInsecureRequests(config);
  if (command === 'refresh') {
    const tokens = await client.refreshTokenGrant(config, token);
    console.log(JSON.stringify({
      ok: true,
      keys: Object.keys(tokens).sort(),
      refresh_token: tokens.refresh_token,
      access_token: tokens.access_token,
    }));
  } else if (command === 'revoke') {
    await client.tokenRevocation(config, token, { token_type_hint: 'refresh_token' });
    console.log(JSON.stringify({ ok: true }));
  } else {
    throw new Error(`unknown command ${command}`);
  }
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    name: e.name,
    code: e.code ?? null,
    message: e.message,
    cause: e.cause?.message ?? null,
  }));
}
