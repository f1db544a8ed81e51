#!/usr/bin/env python3
"""A webhook receiver for Gatehouse's tests.

Every POST (other than to /_control) is a delivery: it is verified with
the `standardwebhooks` reference library against the secrets the test set,
recorded, and answered 500 while `fail` is above zero (each failure counts
it down), otherwise 204.

  POST /_control {"secrets": [...], "fail": N}   set secrets / failures
  GET  /_received                                 every delivery so far

Prints "listening on <port>" once it accepts connections, and exits when
its stdin closes.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
STATE = {"secrets": [], "fail": 0, "received": []}


def verify(body, headers, secrets):
    """(verified, error) of one delivery under any of `secrets`."""
    error = "no secret set"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True, None
        except WebhookVerificationError as e:
            error = str(e)
    return False, error


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/_received":
            return self.reply(404, {"error": "unknown path"})
        with LOCK:
            received = list(STATE["received"])
        self.reply(200, received)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_control":
            update = json.loads(body)
            with LOCK:
                for key in ("secrets", "fail"):
                    if key in update:
                        STATE[key] = update[key]
            return self.reply(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            secrets = list(STATE["secrets"])
        verified, error = verify(body, headers, secrets)
        with LOCK:
            failing = STATE["fail"] > 0
            if failing:
                STATE["fail"] -= 1
            status = 500 if failing else 204
            STATE["received"].append(
                {
                    "path": self.path,
                    "webhook_id": headers.get("webhook-id"),
                    "webhook_timestamp": headers.get("webhook-timestamp"),
                    "webhook_signature": headers.get("webhook-signature"),
                    "content_type": headers.get("content-type"),
                    "body": body.decode("utf-8", "replace"),
                    "verified": verified,
                    "error": error,
                    "answered": status,
                    "at": time.time(),
                }
            )
        # A 204 has no body: bytes after its head would be read as the
        # next response on a kept-alive connection.
        self.reply(status, None if status == 204 else {"ok": False})


def exit_with_parent():
    """Stops the receiver when the test that started it is gone (its
    stdin closes), even if the test never got to stop it."""
    sys.stdin.read()
    os._exit(0)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
