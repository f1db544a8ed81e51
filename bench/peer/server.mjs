// The peer of bench/run's P4: node's oidc-provider issuing RS256 JWT access
// tokens, to compare Gatehouse's CPU per minted connect token with.
//
//   node server.mjs PORT
//
// Listens on 127.0.0.1:PORT with one confidential client (`bench` /
// `bench-secret`, client_secret_basic) allowed the client_credentials grant.
// A token request naming the resource `urn:gatehouse:bench` (RFC 8707 resource
// indicator) gets an access token in the JWT format, signed RS256 with an
// RSA-2048 key generated at start-up (the same kind of key and algorithm
// Gatehouse signs connect tokens with):
//
//   POST /token  Authorization: Basic YmVuY2g6YmVuY2gtc2VjcmV0
//   grant_type=client_credentials&resource=urn:gatehouse:bench&scope=api
//
// Prints one JSON line when ready: {"issuer": "...", "port": N}.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: node server.mjs PORT\n');
  process.exit(2);
}

const RESOURCE = 'urn:gatehouse:bench';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' };

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'api',
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  cookies: { keys: ['gatehouse-bench-peer-cookie-key'] },
});

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
