#!/usr/bin/env python3
"""prefix_client.py -- checks of prefix KV reuse (driven by prefix.sh; stdlib only).
The same request sequence runs against a server with reuse (the default) and one with
--prefix-cache 0; every reply must be identical (temperature 0), text and per-token
logprobs with their alternatives (so bit-identical logits), and the reuse server's
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


def complete(port, prompt, n=24):
    """The reply through /v1/completions with 3 logprobs per token: (text, signature). The
    signature holds the text and every token's logprob and alternatives, which JSON writes
    with 17 significant digits: equal signatures mean bit-identical logits rows."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/completions", json.dumps({"prompt": prompt, "temperature": 0, "max_tokens": n,
                                                     "logprobs": 3}), {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        fail(f"/v1/completions -> {r.status}: {body[:200]!r}")
    ch = json.loads(body)["choices"][0]
    if not ch["logprobs"] or not ch["logprobs"]["token_logprobs"]:
        fail(f"no logprobs in {ch}")
    return ch["text"], json.dumps([ch["text"], ch["logprobs"]], sort_keys=True)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for name in ("queries", "hits", "tokens_reused", "evicted_tokens"):
        m = re.search(rf"^quarrel_prefix_cache_{name}_total (\d+)$", text, re.M)
        if not m:
            fail(f"/metrics lacks quarrel_prefix_cache_{name}_total")
        out[name] = int(m.group(1))
    m = re.search(r"^quarrel_prefix_cache_tokens (\d+)$", text, re.M)
    if not m:
        fail("/metrics lacks the quarrel_prefix_cache_tokens gauge")
    out["cached"] = int(m.group(1))
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
    t1, out["turn1"] = complete(port, p1)
    p2 = p1 + t1 + " Then her mom said"
    out["turn2"] = complete(port, p2)[1]
    # three at once sharing a long system prompt: reuse across slots
    prompts = [SYSTEM + tail for tail in ("Lily said", "The ball was", "Her friend Tom")]
    res = {}

    def one(p):
        res[p] = complete(port, p)[1]
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
    out["again"] = complete(port, p2)[1]
    # an early divergence: a new first word
    out["diverge"] = complete(port, "Twice" + p1[4:])[1]
    return out


STORIES = ["Tom had a little dog named Max. Max liked to run and jump in the garden every morning. ",
           "There was a big tree in the forest. Birds lived in the tree and sang songs all day. ",
           "Sue wanted to bake a cake for her mom. She got flour, eggs and sugar from the kitchen. ",
           "A small boat sailed on the blue sea. The sun was warm and the fish were happy. ",
           "Ben found a shiny stone on the road. He put it in his pocket and ran home to show Dad. "]


def reference(port_off, prompts, n=24):
    return {p: complete(port_off, p, n)[1] for p in prompts}


def check_same(got, want, what):
    for p, text in want.items():
        if got[p] != text:
            fail(f"{what}: reply to {p[:40]!r}... differs with the cache:\n  {got[p]!r}\n  without: {text!r}")


def many_prefixes(port_off):
    """More distinct prefixes than slots (2): all stay cached after their requests end, and
    each story's second turn reuses its whole first turn (prompt + reply)."""
    _, port = start("--parallel", "2")
    first = {st: complete(port, st) for st in STORIES}
    before = metrics(port)
    second, want_reused = {}, 0
    for st in STORIES:
        p2 = st + first[st][0] + " Then"
        second[p2] = complete(port, p2)[1]
        want_reused += generate(port, st, 0)["usage"]["prompt_tokens"]   # at least turn 1's prompt
    after = metrics(port)
    check_same({st: first[st][1] for st in STORIES}, reference(port_off, STORIES), "many prefixes, turn 1")
    check_same(second, reference(port_off, list(second)), "many prefixes, turn 2")
    # every second turn and every prompt-only repeat is a hit
    if after["hits"] - before["hits"] != 2 * len(STORIES):
        fail(f"{len(STORIES)} prefixes over 2 slots: expected {2 * len(STORIES)} hits, got {before} -> {after}")
    if after["tokens_reused"] - before["tokens_reused"] < want_reused:
        fail(f"second turns reused {after['tokens_reused'] - before['tokens_reused']} tokens, < {want_reused}")
    if after["evicted_tokens"] != 0 or after["cached"] == 0:
        fail(f"the default limit should keep all {len(STORIES)} stories: {after}")
    return after


def small_limit(port_off):
    """A 60-token limit: older prefixes are evicted (LRU), replies stay identical, the gauge
    stays within the limit once idle, and the most recent prefix still hits."""
    _, port = start("--parallel", "2", "--prefix-cache-tokens", "60")
    first = {st: complete(port, st) for st in STORIES}
    got = {st: first[st][1] for st in STORIES}
    m = metrics(port)
    if m["evicted_tokens"] == 0 or not 0 < m["cached"] <= 60:
        fail(f"a 60-token cache after {len(STORIES)} stories: {m}")
    last = STORIES[-1] + first[STORIES[-1]][0] + " Then"
    got[last] = complete(port, last)[1]
    m2 = metrics(port)
    if m2["hits"] <= m["hits"]:
        fail(f"the most recent prefix did not survive eviction: {m} -> {m2}")
    check_same(got, reference(port_off, list(got)), "small limit")


def cells_on_demand():
    """A cache as large as the KV cache (2 slots x 128 cells): once stories fill it, running
    requests need its cells; leaves are evicted for them, no request fails, replies stay
    identical."""
    _, port = start("--parallel", "2", "-c", "128", "--prefix-cache-tokens", "256")
    got = {}
    for st in STORIES:
        got[st] = complete(port, st, 40)[1]
    m = metrics(port)
    res = {}

    def one(p):
        res[p] = complete(port, p, 40)[1]
    prompts = [st.replace(".", "!") * 2 for st in STORIES[:4]]
    ts = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    if len(res) != len(prompts):
        fail("a request failed while the cache had to give up cells")
    got.update(res)
    m2 = metrics(port)
    if m2["evicted_tokens"] <= m["evicted_tokens"]:
        fail(f"running requests got cells without evicting cached ones? {m} -> {m2}")
    _, port_off128 = start("--parallel", "2", "-c", "128", "--prefix-cache", "0")   # the same context limit
    ref = {p: complete(port_off128, p, 40)[1] for p in got}
    check_same(got, ref, "eviction for running requests")


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
    if m_on["cached"] == 0:
        fail(f"an idle server with finished requests caches nothing: {m_on}")
    many = many_prefixes(port_off)
    small_limit(port_off)
    cells_on_demand()
    print(f"prefix: identical replies with and without reuse; {m_on}; many prefixes {many}")
    for p in servers:
        p.terminate()
        p.wait(10)


main()
