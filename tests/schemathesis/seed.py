"""Creates what a useful fuzzing run needs on a fresh Gatehouse and prints
it as shell assignments (ids and tokens only, all of them [A-Za-z0-9._-]).

Usage: seed.py BASE_URL INIT_JSON

INIT_JSON is the output of `gatehouse init --json`. Everything goes
through the public API, as the README's walkthrough does: keys for the
runs and a PAT, an app in the sandbox environment with three requirements
(API key, OAuth2 connection, action-connector account), deployed, an OAuth2
provider for each of the last two, a webhook (to a closed port, so its
deliveries fail and are logged), connect tokens minted on the app's
hostname, and one connection submitted with one of them.
"""

import json
import sys
import time
import urllib.request
from urllib.error import HTTPError

base, init_path = sys.argv[1], sys.argv[2]
with open(init_path) as f:
    init = json.load(f)
bootstrap = init["access_key"]["token"]
sandbox = init["environments"]["sandbox"]


def call(method, path, token, body=None, host=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req) as resp:
            text = resp.read()
    except HTTPError as err:
        sys.exit(f"seed: {method} {path} answered {err.code}: {err.read().decode()}")
    return json.loads(text) if text else None


every_scope = [
    "keys:read", "keys:write", "apps:read", "apps:write", "connections:read",
    "connections:write", "connections:reveal", "connect:write", "end_users:read",
    "end_users:write", "audit:read", "webhooks:read", "webhooks:write",
    "projects:read", "projects:write",
]


def key(name):
    return call("POST", "/v1/access-keys", bootstrap, {"name": name, "scopes": every_scope})["data"]


fuzz = key("schemathesis")  # the management run's key
doomed = key("schemathesis-doomed")  # the final run's key, which it may revoke or rotate away
# A PAT for the PAT and member routes (an access key may not use them);
# that run may revoke it.
pat = call("POST", "/v1/personal-access-tokens", init["owner"]["personal_access_token"],
           {"name": "schemathesis", "scopes": every_scope})["data"]

app = call("POST", "/v1/apps", bootstrap, {"name": "Fuzz Agent", "environment_id": sandbox})["data"]
version = call("POST", f"/v1/apps/{app['id']}/versions", bootstrap, {"requirements": [
    {"name": "openai", "type": "connection",
     "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}},
    {"name": "google", "type": "connection",
     "spec": {"type": "connection", "data": {"type": "dynamiq.connections.GoogleOAuth2"}}},
    {"name": "mail", "type": "action_connector_account",
     "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}},
]})["data"]
requirement = {r["name"]: r["id"] for r in version["requirements"]}
call("POST", f"/v1/apps/{app['id']}/deployments", bootstrap, {"version_id": version["id"]})
for name, target in [("Fuzz mail", {"app_slug": "gmail"}),
                     ("Fuzz Google", {"connection_type": "dynamiq.connections.GoogleOAuth2"})]:
    call("POST", "/v1/oauth2-providers", bootstrap, {
        "name": name, "environment_id": sandbox, **target,
        "authorize_url": "https://oauth.example.com/authorize",
        "token_url": "https://oauth.example.com/token",
        "client_id": "gatehouse", "client_secret": "fuzz-client-secret", "scopes": ["email"],
    })
webhook = call("POST", "/v1/webhooks", bootstrap, {
    "environment_id": sandbox, "url": "http://127.0.0.1:9/hooks", "events": ["connection.created"],
})["data"]

# Two connect tokens for the same end user: one for the connect run, one
# for the final run (which may revoke it with DELETE /v1/connect/session).
mint = lambda: call("POST", "/v1/connect/tokens", bootstrap, {"user_id": "fuzz-user"}, host=app["hostname"])
connect_token, doomed_connect_token = mint()["token"], mint()["token"]
call("POST", f"/v1/connect/requirements/{requirement['openai']}/credentials", connect_token,
     {"type": "dynamiq.connections.OpenAI", "config": {"api_key": "sk-fuzz"}})

# The connection.created event is delivered (and fails) within seconds.
delivery = None
for _ in range(100):
    deliveries = call("GET", f"/v1/webhooks/{webhook['id']}/deliveries", bootstrap)["data"]
    if deliveries:
        delivery = deliveries[0]["id"]
        break
    time.sleep(0.1)
if delivery is None:
    sys.exit("seed: the webhook's first delivery did not happen within 10 s")

for name, value in {
    "FUZZ_KEY": fuzz["token"],
    "FUZZ_KEY_ID": fuzz["id"],
    "DOOMED_KEY": doomed["token"],
    "FUZZ_PAT": pat["token"],
    "SANDBOX": sandbox,
    "APP_ID": app["id"],
    "APP_HOST": app["hostname"],
    "WEBHOOK_ID": webhook["id"],
    "DELIVERY_ID": delivery,
    "OPENAI_REQ": requirement["openai"],
    "GOOGLE_REQ": requirement["google"],
    "MAIL_REQ": requirement["mail"],
    "CONNECT_TOKEN": connect_token,
    "DOOMED_CONNECT_TOKEN": doomed_connect_token,
}.items():
    print(f"{name}={value}")
