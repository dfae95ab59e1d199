#!/usr/bin/env python3
"""serve_mix.py -- 32 concurrent clients with interleaved streams on one `quarrel serve`
(stories260K, --parallel 6, so continuous batching mixes prompts, prefill chunks and decode
steps of different requests in the same forward passes). The clients are a mix of SSE
/api/stream, streamed /v1/chat/completions and WebSocket /ws generations over 8 different
prompts with different lengths, all at temperature 0 with ignore_eos. Each must get exactly
what the same request gets when it is served alone: the same token ids (/api/stream and /ws
report them; chat streams their token strings via logprobs) and the same text, bit for bit
(no near-tie excuse: see serve_util.same_as_solo). Also checks that the streams really overlapped (at least 4
requests between their first and last token at one instant) and that the server is idle,
with every KV cell free, afterwards. Driven by serve_mix.sh; every wait is bounded."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (WebSocket, check, cleanup, jreq, metric, req, same_as_solo,  # noqa: E402
                        solo_margins, start, wait_metric, ws_collect)

PROMPTS = ["Once upon a time", "The cat sat on the", "Tom had a red ball", "One day, Lily went to",
           "The sun was hot and", "A little dog ran", "Mom said to Ben", "There was a big tree"]
N_CLIENTS = 32
PARALLEL = 6


def body(p):
    """The request for prompt index p: lengths differ so requests leave and join mid-flight."""
    return {"prompt": PROMPTS[p], "temperature": 0, "max_tokens": 10 + 4 * (p % 4), "ignore_eos": True}


def chat_body(p):
    b = body(p)
    return {"messages": [{"role": "user", "content": b.pop("prompt")}], **b, "stream": True, "logprobs": True}


def sse_events(port, path, payload, stamps):
    """Streams an SSE reply; returns the data payloads and appends (time) per data event."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    check(r.status == 200, f"{path}: status {r.status}")
    out, buf = [], b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for ln in ev.split(b"\n"):
                if ln.startswith(b"data: "):
                    out.append(ln[6:].decode())
                    if b'"role"' not in ln:   # a chat stream opens with its role before it runs
                        stamps.append(time.time())
    c.close()
    return out


def run_api(port, p, stamps):
    ev = [json.loads(e) for e in sse_events(port, "/api/stream", body(p), stamps)]
    check(ev and ev[-1]["type"] == "done", f"/api/stream {p}: no done event")
    return sum((e["token_ids"] for e in ev[:-1]), []), "".join(e["text"] for e in ev[:-1])


def run_chat(port, p, stamps):
    data = sse_events(port, "/v1/chat/completions", chat_body(p), stamps)
    check(data and data[-1] == "[DONE]", f"chat {p}: no [DONE]")
    chunks = [json.loads(d) for d in data[:-1]]
    toks = [t["token"] for c in chunks for t in ((c["choices"][0].get("logprobs") or {}).get("content") or [])]
    return toks, "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


def run_ws(port, p, stamps):
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": dict(body(p), id=f"g{p}")})
    got, other = ws_collect(ws, [f"g{p}"], stamps)
    ws.s.close()
    pieces, ids, final = got[f"g{p}"]
    check(not other and final["finish_reason"] == "length", f"ws {p}: {other} {final}")
    return ids, "".join(pieces)


KINDS = [("api", run_api), ("chat", run_chat), ("ws", run_ws)]


def main():
    p, port, _ = start("--parallel", str(PARALLEL), "-c", "256")

    # alone: one request at a time (ids and text; token strings and top-2 gaps with logprobs)
    solo_raw, solo_chat = {}, {}
    for i in range(len(PROMPTS)):
        ids, text = run_api(port, i, [])
        check(len(ids) == body(i)["max_tokens"], f"solo {i}: {len(ids)} tokens")
        toks, gaps = solo_margins(port, body(i))
        check(len(toks) == len(ids) and "".join(toks) == text, f"solo {i}: completions and /api/stream disagree")
        solo_raw[i] = (ids, text, gaps)
        toks, gaps = solo_margins(port, dict(chat_body(i), stream=False))
        solo_chat[i] = (toks, gaps)

    # together: 32 clients released at once
    results, errors = [None] * N_CLIENTS, []
    spans = [None] * N_CLIENTS
    barrier = threading.Barrier(N_CLIENTS)

    def client(k):
        kind, fn = KINDS[k % 3]
        pi = k % len(PROMPTS)
        stamps = []
        try:
            barrier.wait(30)
            results[k] = (kind, pi, fn(port, pi, stamps))
            spans[k] = (stamps[0], stamps[-1]) if stamps else None
        except BaseException as e:   # check() raises SystemExit in a thread: report it here
            errors.append(f"client {k} ({kind}): {e!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(N_CLIENTS)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not errors, "; ".join(errors[:4]))
    check(all(r is not None for r in results), "a client did not finish")
    for k, (kind, pi, (toks, text)) in enumerate(results):
        name = f"client {k} ({kind}, prompt {pi})"
        if kind == "chat":
            same_as_solo(name, toks, *solo_chat[pi])
            check(text == "".join(solo_chat[pi][0]), f"{name}: text {text!r} != alone")
        else:
            same_as_solo(name, toks, solo_raw[pi][0], solo_raw[pi][2])
            check(text == solo_raw[pi][1], f"{name}: text {text!r} != alone {solo_raw[pi][1]!r}")
    # the streams interleaved: at some instant at least 4 were between first and last event
    overlap = max(sum(1 for s in spans if s and s[0] <= t < s[1]) for t in (s[0] for s in spans if s))
    check(overlap >= 4, f"at most {overlap} streams overlapped")
    check(wait_metric(port, "quarrel_requests_running", 0, 5), "requests still running")
    check(metric(port, "quarrel_kv_cache_usage_ratio") == 0, "KV cells left in use")
    check(metric(port, 'quarrel_webui_errors_total{type="disconnected"}') == 0, "a client was counted as gone")
    check(req(port, "GET", "/healthz")[0] == 200, "server unhealthy")
    print(f"serve_mix: {N_CLIENTS} clients (api/chat/ws) equal their solo runs exactly; "
          f"{overlap} streams overlapped; {time.time() - t0:.1f} s together")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
