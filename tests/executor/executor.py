#!/usr/bin/env python3
"""A custom-step executor for Landlord's tests: a real process that speaks
the executor protocol (worker/src/steps/http_step.rs) with the behaviours
the tests need, chosen by the URL path Landlord is configured to call:

  /done          answers done at once
  /fail          answers a permanent failure
  /garbage       answers 200 with HTML
  /slow?ms=N     accepts, calls back done after N ms
  /twice         accepts, calls back done twice (the second must be refused)
  /once-silent   the first call for a key accepts and never calls back (the
                 executor is then killed in the test); later calls, also
                 after a restart, answer done
  /undo          answers done to an undo

Usage: executor.py STATE_DIR. Prints the port it listens on, then serves.
Every call and every callback's answer is appended to STATE_DIR/log.jsonl;
the keys /once-silent has seen are in STATE_DIR/seen (kept across restarts).
"""

import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATE = sys.argv[1]
LOCK = threading.Lock()


def log(entry):
    with LOCK, open(os.path.join(STATE, "log.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def seen_before(key):
    path = os.path.join(STATE, "seen")
    with LOCK:
        seen = open(path).read().split() if os.path.exists(path) else []
        if key in seen:
            return True
        with open(path, "a") as f:
            f.write(key + "\n")
        return False


def call_back(callback, key, report, delay_ms=0):
    time.sleep(delay_ms / 1000)
    req = urllib.request.Request(
        callback["url"],
        data=json.dumps(report).encode(),
        headers={"content-type": "application/json",
                 "landlord-callback-token": callback["token"]},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            code = resp.status
    except urllib.error.HTTPError as e:
        code = e.code
    log({"callback": code, "key": key})


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        key = self.headers.get("idempotency-key")
        log({"path": url.path, "key": key, "action": body["action"],
             "tenant": body["tenant"], "attempt": body["attempt"],
             "header_matches": key == body["idempotency_key"]})
        callback = body.get("callback")
        done = {"status": "done", "output": {"applied": key, "by": url.path}}
        if url.path in ("/done", "/undo"):
            self.answer(200, done)
        elif url.path == "/fail":
            self.answer(200, {"status": "failed", "error": "quota exceeded",
                              "transient": False})
        elif url.path == "/garbage":
            self.answer(200, "<html>gateway says hi</html>", "text/html")
        elif url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            self.answer(202, {"status": "accepted"})
            threading.Thread(target=call_back, args=(callback, key, done, ms)).start()
        elif url.path == "/twice":
            self.answer(202, {"status": "accepted"})

            def both():
                call_back(callback, key, done, 200)
                call_back(callback, key, done)
            threading.Thread(target=both).start()
        elif url.path == "/once-silent":
            if seen_before(key):
                self.answer(200, done)
            else:
                self.answer(202, {"status": "accepted"})
        else:
            self.answer(404, {"error": "no such behaviour"})


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
