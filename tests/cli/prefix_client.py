#!/usr/bin/env python3
"""prefix_client.py -- checks of prefix KV reuse (driven by prefix.sh; stdlib only).
The same request sequence runs against a server with reuse (the default) and one with
--prefix-cache 0; every reply must be identical (temperature 0), and the reuse server's
counters must show hits and reused tokens that the sequence implies."""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("QUARREL_BIN", "build/quarrel")
SHARED = os.environ.get("QUARREL_SHARED", "../shared")
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
servers = []


def fail(msg):
    for p in servers:
        if p.poll() is None:
            p.kill()
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def start(*extra):
    log = tempfile.NamedTemporaryFile(prefix="prefix-", suffix=".log", delete=False)
    p = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", "2", "--parallel", "3", *extra],
                         stdout=subprocess.DEVNULL, stderr=log)
    servers.append(p)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(log.name, encoding="utf-8", errors="replace").read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            fail("server exited early: " + text)
        time.sleep(0.05)
    fail("server did not start")


def generate(port, prompt, n=24):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/api/generate", json.dumps({"prompt": prompt, "temperature": 0, "max_tokens": n}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        fail(f"/api/generate -> {r.status}: {body[:200]!r}")
    return json.loads(body)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for name in ("queries", "hits", "tokens_reused"):
        m = re.search(rf"^quarrel_prefix_cache_{name}_total (\d+)$", text, re.M)
        if not m:
            fail(f"/metrics lacks quarrel_prefix_cache_{name}_total")
        out[name] = int(m.group(1))
    m = re.search(r"^quarrel_kv_cache_usage_ratio (\S+)$", text, re.M)
    out["kv_ratio"] = float(m.group(1))
    return out


SYSTEM = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park "
          "with her friends. One day, she found a big red ball under a tree. ")


def run_sequence(port):
    """The replies of a fixed request sequence; the order of the concurrent part is
    irrelevant because each reply is compared by its prompt."""
    out = {}
    # turn 1 and turn 2 of one chat: turn 2's prompt is turn 1's prompt + reply + more
    p1 = "Once upon a time, there was a little girl named Lily."
    r1 = generate(port, p1)
    out["turn1"] = r1["text"]
    p2 = p1 + r1["text"] + " Then her mom said"
    out["turn2"] = generate(port, p2)["text"]
    # three at once sharing a long system prompt: reuse across slots
    prompts = [SYSTEM + tail for tail in ("Lily said", "The ball was", "Her friend Tom")]
    res = {}

    def one(p):
        res[p] = generate(port, p)["text"]
    ts = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    for p in prompts:
        if p not in res:
            fail("a concurrent request did not finish")
        out[p] = res[p]
    # the same prompt again: everything but the last token is reused
    out["again"] = generate(port, p2)["text"]
    # an early divergence: a new first word
    out["diverge"] = generate(port, "Twice" + p1[4:])["text"]
    return out


def main():
    _, port_on = start()
    _, port_off = start("--prefix-cache", "0")
    with_reuse = run_sequence(port_on)
    without = run_sequence(port_off)
    for k in without:
        if with_reuse[k] != without[k]:
            fail(f"reply {k!r} differs with reuse:\n  {with_reuse[k]!r}\n  without: {without[k]!r}")
    m_on, m_off = metrics(port_on), metrics(port_off)
    if m_off["queries"] or m_off["hits"] or m_off["tokens_reused"]:
        fail(f"--prefix-cache 0 still counts reuse: {m_off}")
    if m_on["queries"] != 7:
        fail(f"7 requests, {m_on['queries']} prefix queries")
    # turn 2, at least two of the three system-prompt requests, and the repeat must hit
    if m_on["hits"] < 4:
        fail(f"expected >= 4 prefix hits, got {m_on}")
    # the repeat alone reuses len(p2 tokens) - 1; turn 2 reuses at least turn 1's prompt
    if m_on["tokens_reused"] < 60:
        fail(f"too few reused tokens: {m_on}")
    if m_on["kv_ratio"] != 0:
        fail(f"idle server reports KV usage {m_on['kv_ratio']} (kept prefixes are free cells)")
    print(f"prefix: identical replies with and without reuse; {m_on}")
    for p in servers:
        p.terminate()
        p.wait(10)


main()
