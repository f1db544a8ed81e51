// A typed client for the Gatehouse API: openapi-fetch over the definitions
// generated from Gatehouse's /openapi.json (schema.d.ts). Every path,
// request body and response body is checked by the TypeScript compiler;
// errors come back as the `{error: {code, message, details?}}` envelope.

import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
/** The SPEC §2 error envelope. */
export type ErrorEnvelope = components["schemas"]["ErrorEnvelope"];

/**
 * A client for one Gatehouse surface: the management API at `baseUrl`
 * (your `public_url`), or an app's own hostname (`https://<app hostname>`)
 * for minting connect tokens. `token` is an access key, a personal access
 * token or a connect token, sent as `Authorization: Bearer`.
 */
export function gatehouse(baseUrl: string, token?: string): Client<paths> {
  return createClient<paths>({
    baseUrl,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
}
