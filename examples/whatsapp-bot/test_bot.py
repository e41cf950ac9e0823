"""A burst of webhooks with re-deliveries and a worker killed mid-burst:
every message gets exactly one reply (one stored assistant turn, one distinct
text at the provider; a repeated send of that same reply only where the
killed worker died between sending and reply_sent). Needs AGENTCACHE_TEST_DSN
(clients/run.sh sets it)."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DSN = os.environ.get("AGENTCACHE_TEST_DSN")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Provider:
    """The messaging provider's send endpoint: records every delivery."""

    def __init__(self):
        self.deliveries = []
        self.lock = threading.Lock()
        provider = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                d = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with provider.lock:
                    provider.deliveries.append(d)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_bot(port, provider_url, failure_rate):
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "bot.py"), "--dsn", DSN, "--port", str(port),
                          "--provider", provider_url, "--latency", "0.05", "--failure-rate", str(failure_rate),
                          "--resend-interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "listening" in p.stdout.readline()
    return p


def post(port, payload, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None  # 500, or the worker died: the provider re-delivers


@pytest.fixture
def db():
    if not DSN:
        pytest.fail("AGENTCACHE_TEST_DSN is not set: run clients/run.sh")
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS agentcache")
        c.execute("DROP TABLE IF EXISTS bot_integrations, bot_clinics")
        c.execute("CREATE TABLE bot_clinics (id int PRIMARY KEY, name text)")
        c.execute("CREATE TABLE bot_integrations (instance text PRIMARY KEY, clinic_id int REFERENCES bot_clinics)")
        c.execute("INSERT INTO bot_clinics VALUES (1, 'Clinica Boa Vida'), (2, 'Clinica Santa Clara')")
        c.execute("INSERT INTO bot_integrations VALUES ('evo-1', 1), ('evo-2', 2)")
        c.execute("SELECT agentcache.define_map('instances', 'SELECT i.instance, jsonb_build_object(''name'', c.name)"
                  " FROM bot_integrations i JOIN bot_clinics c ON c.id = i.clinic_id')")
        yield c


def test_burst_redeliveries_and_a_killed_worker(db):
    run = f"{random.getrandbits(32):08x}"
    provider = Provider()
    port = free_port()
    bot = start_bot(port, provider.url, failure_rate=0.2)
    rng = random.Random(7)
    senders = [f"55119{run}{i:02d}" for i in range(6)]
    for s in senders:
        db.execute("SELECT agentcache.add_turn(%s, 'system', 'You are the clinic assistant.')", (f"wa:{s}",))
    messages = [{"instance": f"evo-{1 + i % 2}",
                 "messages": [{"id": f"wamid.{run}.{i}", "from": senders[i % len(senders)],
                               "text": {"body": f"message {i}: can I book for Thursday?"}}]} for i in range(60)]
    # a burst with re-deliveries: every webhook 1-3 times, shuffled, 8 at a time;
    # the worker is killed (SIGKILL) a third of the way in and started again
    burst = [m for m in messages for _ in range(rng.randint(1, 3))]
    rng.shuffle(burst)
    done = [0]
    lock = threading.Lock()

    def deliver(payload):
        post(port, payload)
        with lock:
            done[0] += 1

    killed_at = None
    with ThreadPoolExecutor(8) as ex:
        futures = [ex.submit(deliver, m) for m in burst]
        while killed_at is None:
            with lock:
                if done[0] >= len(burst) // 3:
                    killed_at = done[0]
            time.sleep(0.01)
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        time.sleep(0.5)  # requests to the dead worker fail meanwhile
        bot = start_bot(port, provider.url, failure_rate=0.2)
        for f in futures:
            f.result()
    try:
        # the provider keeps re-delivering until each webhook is acknowledged
        # (200); a failed LLM call answers 500 and is retried
        for m in messages:
            for _ in range(50):
                if post(port, m) == 200:
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"{m['messages'][0]['id']} never succeeded")
        # replies stored by the killed worker but never sent: the resender sends them
        deadline = time.time() + 15
        while time.time() < deadline:
            pending = db.execute("SELECT count(*) FROM agentcache.dedup WHERE message_id LIKE %s AND reply_sent = false",
                                 (f"wamid.{run}.%",)).fetchone()[0]
            if pending == 0:
                break
            time.sleep(0.2)
        assert pending == 0, f"{pending} replies were never sent"
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait()

    ids = [m["messages"][0]["id"] for m in messages]
    # (the resender also delivers replies other tests in this database left unsent)
    ours = [d for d in provider.deliveries if d["message_id"] in set(ids)]
    by_id = {}
    for d in ours:
        by_id.setdefault(d["message_id"], set()).add(d["text"])
    missing = [i for i in ids if i not in by_id]
    assert not missing, f"no reply for {missing}"
    two_replies = {i: t for i, t in by_id.items() if len(t) != 1}
    assert not two_replies, f"messages answered with different replies: {two_replies}"
    # the same reply is sent twice only when a worker died after sending it and
    # before reply_sent (at-least-once delivery: providers take the message id
    # as an idempotency key); never more often than there were such deaths
    repeats = len(ours) - len(messages)
    assert repeats <= 8, f"{repeats} repeated sends for one killed worker (8 requests in flight)"
    # one stored reply per message: the LLM answer was stored once, never twice
    for s in senders:
        roles = [r[0] for r in db.execute("SELECT role FROM agentcache.turns WHERE session_id = %s ORDER BY seq",
                                          (f"wa:{s}",)).fetchall()]
        n = sum(1 for m in messages if m["messages"][0]["from"] == s)
        assert roles.count("user") == n and roles.count("assistant") == n, (s, roles)
    states = db.execute("SELECT state, count(*), sum(attempts) FROM agentcache.dedup WHERE message_id LIKE %s GROUP BY 1",
                        (f"wamid.{run}.%",)).fetchall()
    assert [(s, c) for s, c, _ in states] == [("completed", len(messages))]
    counts = {}
    for d in ours:
        counts[d["message_id"]] = counts.get(d["message_id"], 0) + 1
    once = sum(1 for i in ids if counts.get(i) == 1)
    print(f"\n{len(messages)} messages, {len(burst)} webhooks in the burst (worker killed after {killed_at}): "
          f"{len(ours)} deliveries at the provider, {once} messages delivered exactly once; "
          f"{states[0][2]} claim attempts (failed LLM calls and the killed worker's claims retried)")
