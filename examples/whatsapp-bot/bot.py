#!/usr/bin/env python3
"""A WhatsApp-style clinic bot on agentcache (standard library HTTP server +
the Python client in clients/python).

POST /webhook with {"instance": "...", "messages": [{"id": "wamid...", "from":
"5511...", "text": {"body": "..."}}]}. For each message: inbound() routes it
(the clinic from the prewarmed "instances" map), claims it and returns the
context cut to a token budget; a stand-in LLM answers (deterministic, with a
configurable latency and failure rate); outbound() stores the reply with the
completed claim; the reply goes to the provider endpoint; reply_sent() marks
it. A re-delivered webhook whose reply is stored but unsent gets that reply
(the LLM never runs twice) — unless it was stored in the last 2 s, when its
worker is still sending it; a failed LLM call fails the claim and answers 500,
so the provider re-delivers and the message is retried. A resender thread
delivers replies stored by a worker that died before sending them.

    python3 bot.py --dsn "dbname=app" --port 8080 --provider http://127.0.0.1:9090/send
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import psycopg  # noqa: E402

import agentcache  # noqa: E402


class LLMError(Exception):
    pass


def stand_in_llm(context, route, message_id, attempt, latency, failure_rate):
    """Deterministic: the answer depends on the clinic and the last user turn;
    it fails for a fixed share of (message, attempt) pairs."""
    time.sleep(latency)
    h = int(hashlib.sha256(f"{message_id}:{attempt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < failure_rate:
        raise LLMError(f"stand-in LLM failed on attempt {attempt}")
    clinic = (route or {}).get("name", "the clinic")
    last = next((t.content for t in reversed(context) if t.role == "user"), "")
    return f"[{clinic}] About \"{last}\": we will confirm your appointment shortly."


class Bot:
    def __init__(self, dsn, provider_url, latency=0.0, failure_rate=0.0, max_tokens=2000, resend_after=2.0):
        self.dsn = dsn
        self.resend_after = resend_after
        self.provider_url = provider_url
        self.latency = latency
        self.failure_rate = failure_rate
        self.max_tokens = max_tokens

    def send(self, message_id, to, text):
        body = json.dumps({"message_id": message_id, "to": to, "text": text}).encode()
        req = urllib.request.Request(self.provider_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def process(self, ac, instance, m):
        sender = m["from"]
        session = f"wa:{sender}"
        with ac.handle(instance, m["id"], session, m["text"]["body"], max_tokens=self.max_tokens, keep_system=True,
                       start_on_user=True) as msg:
            if msg.acquired:
                state = ac.dedup_state(m["id"])
                text = stand_in_llm(msg.context, msg.route, m["id"], state.attempts, self.latency, self.failure_rate)
                msg.reply(text)
                self.send(m["id"], sender, text)
                msg.sent()
            elif msg.inbound.dedup == "duplicate" and msg.inbound.reply is not None:
                # stored but not sent: unless it was stored just now (its worker is
                # sending it), that worker died after storing it: send it now
                stored = datetime.datetime.fromisoformat(msg.inbound.reply["at"])
                age = (datetime.datetime.now(datetime.timezone.utc) - stored).total_seconds()
                if age >= self.resend_after:
                    # mark and send in one transaction: reply_sent is true for one
                    # caller only (the resender holds the row while it sends), and
                    # a failed send rolls the mark back
                    with ac.conn.transaction():
                        if ac.reply_sent(m["id"]):
                            self.send(m["id"], sender, msg.inbound.reply["content"])
            # in_progress: another worker has it; the provider will get its reply

    def handle_webhook(self, payload):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            ac = agentcache.Client(conn)
            for m in payload.get("messages", []):
                self.process(ac, payload["instance"], m)

    def resend_once(self, older_than="2 seconds"):
        """Delivers due replies stored but never sent; returns how many."""
        n = 0
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            ac = agentcache.Client(conn)
            with conn.transaction():
                for p in ac.pending_replies(older_than, 50):
                    self.send(p.message_id, p.session_id.removeprefix("wa:"), p.content)
                    ac.reply_sent(p.message_id)
                    n += 1
        return n

    def resender(self, interval, stop):
        while not stop.wait(interval):
            try:
                self.resend_once()
            except Exception as e:  # keep resending; the next round retries
                print(f"resender: {e}", file=sys.stderr, flush=True)


def serve(bot, port):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/webhook":
                self.send_error(404)
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                bot.handle_webhook(payload)
                self.send_response(200)
            except Exception as e:
                print(f"webhook failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--provider", required=True, help="the provider's send endpoint (POST JSON)")
    ap.add_argument("--latency", type=float, default=0.2, help="stand-in LLM latency, seconds")
    ap.add_argument("--failure-rate", type=float, default=0.1, help="share of LLM calls that fail")
    ap.add_argument("--resend-interval", type=float, default=1.0)
    a = ap.parse_args()
    bot = Bot(a.dsn, a.provider, a.latency, a.failure_rate)
    stop = threading.Event()
    threading.Thread(target=bot.resender, args=(a.resend_interval, stop), daemon=True).start()
    server = serve(bot, a.port)
    print(f"listening on 127.0.0.1:{a.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main()
