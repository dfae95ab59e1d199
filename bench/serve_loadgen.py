#!/usr/bin/env python3
"""serve_loadgen.py -- a small load generator for `quarrel serve` (stdlib only; not a test).
Starts the server at each --parallel value, fires N concurrent /api/generate requests of
T tokens (ignore_eos, fixed seeds) and prints aggregate tokens/s, wall time and mean latency.

  bench/serve_loadgen.py [--bin build/quarrel] [--model M] [--clients 8] [--tokens 256]
                         [--parallel 1,4,8] [--threads 2] [--cells 4096]

--cells is the total KV cells; each run gets cells / parallel per slot, so every run
has the same cache size."""
import argparse
import http.client
import json
import re
import subprocess
import threading
import time


def run(a, par):
    p = subprocess.Popen([a.bin, "serve", "-m", a.model, "--port", "0", "-t", str(a.threads), "--parallel", str(par),
                          "-c", str(a.cells // par), "--log-level", "warn"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        line = p.stderr.readline().decode()
        port = int(re.search(r"listening on http://[0-9.]+:(\d+)", line).group(1))
        res = []

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t = time.time()
            c.request("POST", "/api/generate", json.dumps({"prompt": "Once upon a time %d" % i,
                                                           "max_tokens": a.tokens, "ignore_eos": True, "seed": i}))
            o = json.loads(c.getresponse().read())
            res.append((o["tokens_generated"], time.time() - t))

        t0 = time.time()
        th = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        wall = time.time() - t0
        tok = sum(r[0] for r in res)
        print(f"parallel {par}: {a.clients} clients x {a.tokens} tokens: {tok / wall:.0f} tok/s aggregate, "
              f"wall {wall:.2f} s, mean latency {sum(r[1] for r in res) / len(res):.2f} s")
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/quarrel")
    ap.add_argument("--model", default="../shared/models/stories260K.gguf")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--parallel", default="1,4,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cells", type=int, default=4096)
    a = ap.parse_args()
    for par in (int(x) for x in a.parallel.split(",")):
        run(a, par)


if __name__ == "__main__":
    main()
