// A real OpenID provider (node's oidc-provider) on loopback, for Gatehouse's
// OAuth2 tests and the "Connecting OAuth2 accounts" walkthrough.
//
// Configured like a strict real provider: PKCE (S256) required, refresh
// tokens (rotated on use), a userinfo endpoint, RFC 9207 `iss` in the
// authorization response, and the library's development sign-in and
// consent forms (any login and password sign in; the login becomes the
// account, and `<login>@example.com` its email unless it is an email).
//
// Settings (environment):
//   PORT               port to listen on (default 0: any free port)
//   CLIENTS            JSON array of OAuth2 clients: {client_id,
//                      client_secret, redirect_uris, token_endpoint_auth_method}
//   ACCESS_TOKEN_TTL   access token lifetime in seconds (default 3600)
//   REFRESHED_ACCESS_TOKEN_TTL  lifetime of an access token issued by the
//                      refresh_token grant (default ACCESS_TOKEN_TTL)
//   REFRESH_TOKEN_TTL  refresh token lifetime in seconds (default 86400)
//
// Prints one JSON line when ready: {"issuer": "...", "port": N}.
//
// For the tests, GET /test/stats answers how many token requests succeeded
// and failed, and GET /test/secrets every token and code this provider
// issued (so a test can prove none of them leaked anywhere).

import http from 'node:http';
import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.CLIENTS || '[]').map((c) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...c,
}));
const accessTtl = Number(process.env.ACCESS_TOKEN_TTL || 3600);
const refreshedAccessTtl = Number(process.env.REFRESHED_ACCESS_TOKEN_TTL || accessTtl);
const refreshTtl = Number(process.env.REFRESH_TOKEN_TTL || 86400);

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients,
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
    },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: id.includes('@') ? id : `${id}@example.com`,
            email_verified: true,
            name: id,
          };
        },
      };
    },
    // Every client that may refresh gets a refresh token, rotated on use.
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: (ctx) =>
        ctx?.oidc?.params?.grant_type === 'refresh_token' ? refreshedAccessTtl : accessTtl,
      RefreshToken: refreshTtl,
      AuthorizationCode: 60,
      Grant: refreshTtl,
      Interaction: 600,
      Session: 3600,
      IdToken: 3600,
    },
    cookies: { keys: ['gatehouse-test-provider-cookie-key'] },
  });
  const stats = { token_success: 0, token_error: 0 };
  const issued = new Set();
  provider.on('grant.success', () => { stats.token_success += 1; });
  provider.on('grant.error', () => { stats.token_error += 1; });
  for (const model of ['access_token', 'refresh_token', 'authorization_code']) {
    provider.on(`${model}.saved`, (token) => { issued.add(token.jti); });
  }
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === '/test/stats' || req.url === '/test/secrets') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.url === '/test/stats' ? stats : [...issued]));
      return;
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});
