#!/usr/bin/env python3
"""vs_llama.py — Quarrel against llama.cpp's llama-bench, side by side, one markdown table.

For every model and thread count it runs `quarrel bench --json` and, right after it,
`llama-bench -o json` with the same prompt/generation lengths and repetitions, so the two
see the same machine state. Prints one row per (model, threads): pp and tg tok/s (mean ±
std) of both, the ratios, our decode GB/s and the probe's read bandwidth of the same run.
Needs a llama.cpp build (not part of Quarrel's build or tests; see docs/performance.md).

usage: bench/llama/vs_llama.py QUARREL_BIN LLAMA_BENCH [-p 512] [-n 128] [-r 2] [-t 1,2] MODEL.gguf...
(Decode at a context depth: llama-bench at c392e50 has no -d; see bench/llama/tg_depth.c.)
"""
import argparse
import json
import os
import subprocess
import sys
import time


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def quarrel(bin_, model, t, a):
    cmd = [bin_, "bench", "-m", model, "-p", str(a.p), "-n", str(a.n), "-t", str(t), "-r", str(a.r), "--json"]
    j = run_json(cmd)
    return {"pp": (j["pp_tok_s"], j["pp_tok_s_std"]), "tg": (j["tg_tok_s"], j["tg_tok_s_std"]),
            "gbps": j["effective_gbps"], "probe": j["probe_gbps"]}


def llama(bin_, model, t, a):
    cmd = [bin_, "-m", model, "-t", str(t), "-p", str(a.p), "-n", str(a.n), "-r", str(a.r), "-o", "json"]
    res = {}
    for row in run_json(cmd):
        key = "pp" if row["n_gen"] == 0 else "tg"
        res[key] = (row["avg_ts"], row["stddev_ts"])
    return res


def fmt(ms):
    return "%.1f ± %.1f" % ms if ms else "-"


def ratio(a, b):
    return "%.2fx" % (a[0] / b[0]) if a and b and b[0] > 0 else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("quarrel")
    ap.add_argument("llama_bench")
    ap.add_argument("models", nargs="+")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=2)
    ap.add_argument("-t", default="1,2")
    a = ap.parse_args()
    print("%s UTC, load average %.2f before the run; -p %d -n %d -r %d" %
          (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), os.getloadavg()[0], a.p, a.n, a.r))
    print()
    print("| model | threads | pp%d Quarrel | pp%d llama.cpp | pp ratio | tg%d Quarrel | tg%d llama.cpp"
          " | tg ratio | Quarrel decode GB/s | probe GB/s | efficiency |" % (a.p, a.p, a.n, a.n))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in a.models:
        for t in [int(x) for x in a.t.split(",")]:
            q = quarrel(a.quarrel, m, t, a)
            ll = llama(a.llama_bench, m, t, a)
            print("| %s | %d | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.0f %% |" % (
                os.path.basename(m), t, fmt(q["pp"]), fmt(ll.get("pp")), ratio(q["pp"], ll.get("pp")),
                fmt(q["tg"]), fmt(ll.get("tg")), ratio(q["tg"], ll.get("tg")), q["gbps"], q["probe"],
                100.0 * q["gbps"] / q["probe"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
