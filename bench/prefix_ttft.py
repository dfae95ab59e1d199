#!/usr/bin/env python3
"""prefix_ttft.py -- what the prefix cache buys, on a server with it and one with
--prefix-cache 0. stdlib only; not a test.
1. A chat's second turn: time to first token of turn 2, whose prompt is turn 1's
   ~N-token history + reply + a new question (--parallel 1).
2. N clients sharing one long system prompt (--parallel N): the system prompt (~N tokens)
   has been seen once; then N clients ask different questions after it at the same time.
   Mean and worst TTFT over the N.
Usage: bench/prefix_ttft.py BIN MODEL [HISTORY_TOKENS=1000] [THREADS=2] [CLIENTS=4]"""
import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time

BIN, MODEL = sys.argv[1], sys.argv[2]
N_HIST = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
THREADS = sys.argv[4] if len(sys.argv) > 4 else "2"
CLIENTS = int(sys.argv[5]) if len(sys.argv) > 5 else 4


def start(*extra, parallel=1):
    log = tempfile.NamedTemporaryFile(prefix="prefix-bench-", suffix=".log", delete=False)
    p = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", THREADS, "--parallel", str(parallel),
                          "-c", str(N_HIST + 512), *extra], stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(1200):
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log.name).read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            sys.exit("server exited: " + open(log.name).read())
        time.sleep(0.1)
    sys.exit("server did not start")


def count_tokens(port, text):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps({"prompt": text, "max_tokens": 1, "temperature": 0}),
              {"Content-Type": "application/json"})
    return json.loads(c.getresponse().read())["usage"]["prompt_tokens"]


def stream(port, prompt, n):
    """(seconds to the first streamed token, the whole text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.time()
    c.request("POST", "/api/stream", json.dumps({"prompt": prompt, "max_tokens": n, "temperature": 0}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    ttft, text = None, ""
    for line in r:
        line = line.decode().strip()
        if not line.startswith("data:"):
            continue
        ev = json.loads(line[5:])
        if ev.get("type") != "token":
            continue
        if ttft is None:
            ttft = time.time() - t0
        text += ev.get("text", "")
    return ttft, text


def turn_pair(port, history):
    _, reply = stream(port, history, 16)
    t2, _ = stream(port, history + reply + "\nUser: and then what happened?\nAssistant:", 4)
    return t2


p_on, port_on = start()
p_off, port_off = start("--prefix-cache", "0")
sentence = "The little robot walked through the quiet village and counted every star it saw. "
history = ""
while count_tokens(port_on, history + sentence) < N_HIST:
    history += sentence * 4
n = count_tokens(port_on, history)
t_on = turn_pair(port_on, history)
t_off = turn_pair(port_off, history)
print(f"history {n} tokens: second-turn TTFT {t_on * 1e3:.0f} ms with reuse, {t_off * 1e3:.0f} ms without "
      f"({t_off / t_on:.1f}x)")
for p in (p_on, p_off):
    p.terminate()
    p.wait(10)


def shared_system(port, system):
    """Mean and worst TTFT of CLIENTS concurrent questions after a system prompt seen once."""
    stream(port, system + "\nUser: hello\nAssistant:", 1)
    ttfts = [None] * CLIENTS

    def one(i):
        ttfts[i], _ = stream(port, system + f"\nUser: tell me story number {i + 1}.\nAssistant:", 4)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(ttfts) / len(ttfts), max(ttfts)


p_on, port_on = start(parallel=CLIENTS)
p_off, port_off = start("--prefix-cache", "0", parallel=CLIENTS)
mean_on, max_on = shared_system(port_on, history)
mean_off, max_off = shared_system(port_off, history)
print(f"{CLIENTS} clients sharing a {n}-token system prompt: TTFT mean {mean_on * 1e3:.0f} ms (worst "
      f"{max_on * 1e3:.0f}) with the cache, {mean_off * 1e3:.0f} ms (worst {max_off * 1e3:.0f}) without "
      f"({mean_off / mean_on:.1f}x)")
for p in (p_on, p_off):
    p.terminate()
    p.wait(10)
