// What a platform's backend does with Gatehouse, typed end to end: create
// an app, deploy a version with one requirement, and mint a connect token
// for an end user on the app's own hostname. Checked by `tsc --noEmit`.

import { gatehouse } from "./client";

export async function connectUser(publicUrl: string, accessKey: string, environmentId: string) {
  const api = gatehouse(publicUrl, accessKey);

  const { data: app, error } = await api.POST("/v1/apps", {
    body: { name: "Acme Agent", environment_id: environmentId },
  });
  if (error) throw new Error(`${error.error.code}: ${error.error.message}`);

  const { data: version } = await api.POST("/v1/apps/{id}/versions", {
    params: { path: { id: app.data.id } },
    body: {
      requirements: [
        {
          name: "openai",
          type: "connection",
          spec: { type: "connection", data: { type: "dynamiq.connections.OpenAI" } },
        },
      ],
    },
  });
  if (!version) throw new Error("creating the version failed");
  await api.POST("/v1/apps/{id}/deployments", {
    params: { path: { id: app.data.id } },
    body: { version_id: version.data.id },
  });

  const onApp = gatehouse(`https://${app.data.hostname}`, accessKey);
  const { data: minted } = await onApp.POST("/v1/connect/tokens", {
    body: { user_id: "customer-7421", ttl_seconds: 3600 },
  });
  if (!minted) throw new Error("minting failed");
  // The hosted connect page for this end user, and when the token expires.
  return { url: minted.url, expiresAt: minted.expires_at };
}
