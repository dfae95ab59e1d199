#!/usr/bin/env python3
"""serve_client.py -- end-to-end checks of `quarrel serve` on stories260K over loopback
(driven by serve.sh; stdlib only). Starts real server processes on --port 0, reads the
port from their "listening on http://127.0.0.1:PORT" line, and checks:
  1. probes (/healthz /readyz /version /api/health /v1/models), X-Request-Id, settings
     from QUARREL_* variables (flags win);
  2. /api/generate at temperature 0 returns llama.cpp's greedy text (golden story.json)
     and the same text as `quarrel run --temp 0`; /api/stream concatenates to it;
  3. /v1/completions and /v1/chat/completions, plain and streamed (ending in [DONE]);
     WebSocket /ws: streamed and whole inferences, status, errors, stop, close;
  4. 8 concurrent clients (4 slots) each get exactly the tokens they get alone (batching,
     cell placement and prefix reuse change no bit; see serve_util.same_as_solo);
  5. a client that disconnects mid-stream (or mid-generate) frees its slot quickly;
  6. per-request timeout; 4xx JSON errors (malformed, wrong types, empty, too long, 413,
     negative max_tokens, n=2, 404, 405);
  7. interactive requests run before batch ones; queue full -> 503 + Retry-After
     (--parallel 1 --queue-size 2);
  8. SIGTERM with a stream in flight -> exit 0 within the shutdown grace; WebSocket sessions
     get their generation's end and close code 1001.
Malformed WebSocket frames (unmasked, RSV1, reserved opcode, stray continuation, fragmented
ping, bad UTF-8, over the size limit, bad control length, truncated then gone) get their
RFC 6455 close codes and free the session.
Metrics along the way: connections_active back to 1 (the scrape) after streams and WebSockets
close; errors_total{type} counts each 4xx, timeout, disconnect and 503; the queue-time and
inference-duration histograms count every accounted request; `promtool check metrics`
accepts /metrics (Debian package prometheus).
Every wait is bounded; servers are killed on any failure."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import *  # noqa: E402,F401,F403
import serve_util  # noqa: E402

def main():
    prompt, want = GOLDEN["prompt"], GOLDEN["greedy_text"]
    run = subprocess.run([BIN, "run", "-m", MODEL, "-p", prompt, "--temp", "0", "-n", "64", "-t", "2"],
                         capture_output=True, timeout=120)
    check(run.returncode == 0, "quarrel run failed")
    run_text = run.stdout.decode()[:-1]   # run ends with a newline
    check(run_text == want, "quarrel run disagrees with the golden text")

    # settings from the environment; a flag wins over its variable
    p, port, log = start("--parallel", "4",
                         env={"QUARREL_PARALLEL": "3", "QUARREL_CTX": "2048", "QUARREL_LOG_FORMAT": "json"})
    health = jreq(port, "GET", "/api/health")[2]
    check(health["slots"] == 4 and health["slot_context"] == 2048, f"flags/env: {health}")

    # 1. probes
    for path in ("/healthz", "/readyz", "/api/health", "/version", "/v1/models"):
        st, hd, o = jreq(port, "GET", path)
        check(st == 200, f"{path} -> {st}")
        check(re.fullmatch(r"[0-9a-f]+", hd.get("X-Request-Id", "")), f"{path}: no X-Request-Id")
    check(jreq(port, "GET", "/version")[2]["version"], "version missing")
    check(jreq(port, "GET", "/v1/models")[2]["data"][0]["id"] == "stories260K.gguf", "/v1/models id")
    # /api/models: stories260K is llama2.c's 260K model: dim 64, 5 layers, 8 heads, 4 KV heads
    # (KV dim 32), FFN 172, vocab 512, untied output, all F32
    dim, n_layer, kv, ffn, vocab = 64, 5, 32, 172, 512
    n_params = 2 * vocab * dim + dim + n_layer * (2 * dim + 2 * dim * dim + 2 * dim * kv + 3 * dim * ffn)
    st, _, o = jreq(port, "GET", "/api/models")
    check(st == 200 and len(o["models"]) == 1, f"/api/models {st} {o}")
    mi = o["models"][0]
    check(mi["name"] == "stories260K.gguf" and mi["path"] == MODEL and mi["architecture"] == "llama"
          and mi["parameters"] == n_params and mi["quantization"] == "F32" and mi["loaded"] is True
          and mi["memory_bytes"] == os.path.getsize(MODEL) and mi["slot_context"] == 2048, f"/api/models {mi}")
    check(jreq(port, "GET", "/api/models/stories260K")[2] == mi, "/api/models/{name} without .gguf")
    st, _, o = jreq(port, "GET", "/api/models/llama-7b")
    check(st == 404 and o["error"]["code"] == 404, f"/api/models/unknown {st} {o}")
    st, _, payload = req(port, "GET", "/api/metrics")
    check(st == 200 and b"quarrel_requests_running" in payload, "/api/metrics alias")
    # the only open connection is the scrape itself
    check(wait_metric(port, "quarrel_webui_connections_active", 1, 5), "connections_active at rest is not 1")
    err = lambda t: metric(port, f'quarrel_webui_errors_total{{type="{t}"}}')
    check(all(err(t) == 0 for t in ("queue_full", "timeout", "internal", "disconnected")), "errors before any error")

    # 2. greedy golden text, non-streamed and streamed
    gen = {"prompt": prompt, "temperature": 0, "max_tokens": 64}
    st, _, o = jreq(port, "POST", "/api/generate", gen)
    check(st == 200, f"generate -> {st} {o}")
    check(o["text"] == want, f"generate text differs: {o['text']!r}")
    check(o["text"] == run_text, "generate differs from quarrel run")
    check(o["tokens_generated"] == 64 and o["finish_reason"] == "length", f"generate summary {o}")
    check(o["usage"] == {"prompt_tokens": 16, "completion_tokens": 64, "total_tokens": 80}, f"usage {o['usage']}")
    check(o["tokens_per_sec"] > 0, "tokens_per_sec")
    events = [json.loads(e) for e in sse(port, "/api/stream", gen)]
    check(all(e["type"] == "token" for e in events[:-1]) and events[-1]["type"] == "done", "stream event types")
    check("".join(e["text"] for e in events[:-1]) == want, "stream text differs")
    check(events[-1]["tokens_generated"] == 64 and events[-1]["usage"]["prompt_tokens"] == 16, "stream summary")
    check(all("\ufffd" not in e["text"] for e in events[:-1]), "stream split a character")
    check(sum((e["token_ids"] for e in events[:-1]), []) == GOLDEN["greedy"], "stream token_ids differ from golden")

    # 3. OpenAI-compatible
    st, _, o = jreq(port, "POST", "/v1/completions", {"prompt": prompt, "temperature": 0, "max_tokens": 64})
    check(st == 200 and o["object"] == "text_completion", f"completions {st} {o}")
    check(o["choices"][0]["text"] == want and o["choices"][0]["finish_reason"] == "length", "completions text")
    check(o["usage"]["completion_tokens"] == 64, "completions usage")
    data = sse(port, "/v1/completions", {"prompt": prompt, "temperature": 0, "max_tokens": 64, "stream": True})
    check(data[-1] == "[DONE]", "completions stream must end with [DONE]")
    chunks = [json.loads(d) for d in data[:-1]]
    check("".join(c["choices"][0]["text"] for c in chunks) == want, "completions stream text")
    check(chunks[-1]["choices"][0]["finish_reason"] == "length", "completions final chunk")

    chat = {"messages": [{"role": "system", "content": "Tell a story."},
                         {"role": "user", "content": "Once upon a time"}], "temperature": 0, "max_tokens": 40,
            "stop": ["zzz"]}
    st, _, o = jreq(port, "POST", "/v1/chat/completions", chat)
    check(st == 200 and o["object"] == "chat.completion", f"chat {st} {o}")
    content = o["choices"][0]["message"]["content"]
    check(o["choices"][0]["message"]["role"] == "assistant" and len(content) > 0, "chat message")
    # stories260K has no chat template: the server renders ChatML (template.h's definition)
    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in chat["messages"])
    chatml += "<|im_start|>assistant\n"
    ids = subprocess.run([BIN, "tokenize", "-m", MODEL, "--no-bos", "--special", "--ids", "-p", chatml],
                         capture_output=True, timeout=60).stdout.split()
    check(o["usage"]["prompt_tokens"] == len(ids), f"chat prompt tokens {o['usage']} vs {len(ids)}")
    run = subprocess.run([BIN, "run", "-m", MODEL, "--no-bos", "-p", chatml, "--temp", "0", "-n", "40", "-t", "2"],
                         capture_output=True, timeout=120)
    check(run.stdout.decode()[:-1] == content, f"chat content {content!r} differs from quarrel run")
    data = sse(port, "/v1/chat/completions", dict(chat, stream=True))
    check(data[-1] == "[DONE]", "chat stream must end with [DONE]")
    chunks = [json.loads(d) for d in data[:-1]]
    check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "chat stream opens with the role")
    check("".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == content, "chat stream text")
    check(chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"), "chat final chunk")

    # WebSocket /ws (the seed's protocol): streamed and whole inferences, status, errors, stop
    ws = WebSocket(port)
    # (earlier requests' connections are released asynchronously: wait, bounded)
    check(wait_metric(port, "quarrel_webui_connections_active", 2, 5), "a WebSocket session is an open connection")
    ws.send({"type": "inference", "payload": {"prompt": prompt, "temperature": 0, "max_tokens": 64}})
    got, other = ws_collect(ws, ["1"])   # the server numbers generations sent without an id
    pieces, tids, m = got["1"]
    check(not other and "".join(pieces) == want, f"ws stream text {''.join(pieces)!r} {other}")
    check(m["tokens_generated"] == 64 and len(tids) == 64 and m["finish_reason"] == "length", f"ws summary {m}")
    check(tids == GOLDEN["greedy"], f"ws token ids differ from llama.cpp's greedy ids: {tids[:8]}...")
    ws.send({"type": "inference", "payload": {"prompt": prompt, "temperature": 0, "max_tokens": 64, "stream": False,
                                              "id": "whole"}})
    m = ws.recv()
    check(m["type"] == "inference" and m["payload"]["complete"] and m["payload"]["text"] == want
          and m["payload"]["id"] == "whole", f"ws whole text {m}")
    ws.send({"type": "status"})
    m = ws.recv()
    check(m["type"] == "status" and m["payload"]["busy"] is False and m["payload"]["state"] == "idle"
          and m["payload"]["connected"] is True and m["payload"]["models"] == ["stories260K.gguf"], f"ws status {m}")
    ws.send(b"not json")
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "INVALID_REQUEST", f"ws: bad JSON must answer an error {m}")
    ws.send(b'{"type":"inference","payload":{"prompt":"a\\u0000b"}}')
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "INVALID_REQUEST" and "NUL" in m["payload"]["message"],
          f"ws: a NUL in a string must answer a plain error {m}")
    ws.send({"type": "inference", "payload": {"prompt": "", "id": "e"}})
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "INVALID_REQUEST" and m["payload"]["request_id"] == "e",
          f"ws: empty prompt must answer an error {m}")
    ws.send({"type": "inference", "payload": {"prompt": "x", "model": "gpt-4"}})
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "MODEL_NOT_FOUND", f"ws: unknown model {m}")
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True, "id": "L"}})
    check(ws.recv()["type"] == "inference", "ws: long inference produced no token")
    ws.send({"type": "stop", "payload": {"id": "L"}})
    while True:
        m = ws.recv()
        if m["type"] != "inference" or m["payload"]["complete"]:
            break
    check(m["type"] == "inference" and m["payload"]["finish_reason"] == "cancelled", f"ws stop {m}")
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: stopped inference still running")
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "inference", "ws: second long inference produced no token")
    ws.s.close()
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: inference of a closed socket still running")
    check(wait_metric(port, "quarrel_webui_connections_active", 1, 5), "closed WebSocket still counted")
    # the stopped and the abandoned ws inference
    check(wait_until(lambda: err("disconnected") == 2, 5), f"ws cancels: disconnected {err('disconnected')}")

    # malformed frames get the RFC 6455 close code, and the session is freed
    max_msg = 1 << 20   # ws.c's WS_MAX_MSG
    malformed = [
        ("unmasked client frame", ws_frame(0x81, b"{}", masked=False), 1002),
        ("ping with FIN=0", ws_frame(0x09, b"hi"), 1002),
        ("RSV1 without an extension", ws_frame(0xC1, b"{}"), 1002),
        ("reserved opcode 3", ws_frame(0x83, b"{}"), 1002),
        ("continuation without a start", ws_frame(0x80, b"{}"), 1002),
        ("invalid UTF-8 text", ws_frame(0x81, b"\xff\xfe{}"), 1007),
        ("message over the limit", ws_frame(0x81, b"a" * 64, length=max_msg + 1), 1009),
        # (declared lengths: the server closes as soon as it reads the header)
        ("fragments over the limit", ws_frame(0x01, b"a" * 1000) + ws_frame(0x80, b"a" * 64, length=max_msg - 999),
         1009),
    ]
    for name, data, want_code in malformed:
        code = ws_close_code(WebSocket(port), data)
        check(code == want_code, f"ws {name}: close code {code}, want {want_code}")
    # a message really over the limit (all its bytes sent): the client still reads the 1009
    # (the server drains what it will not read before closing; see ws.c's lingering close)
    for size in (max_msg + 10, 4 * max_msg):
        code = ws_close_code(WebSocket(port), ws_frame(0x81, b"a" * size))
        check(code == 1009, f"ws real {size}-byte message: close code {code}, want 1009")
    # ... also while an inference runs (its slot must be freed)
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "inference", "ws: long inference produced no token")
    code = ws_close_code(ws, ws_frame(0x89, b"x", length=126))   # declared 126 bytes, 2-byte length missing
    # 0: a close without a status, sent only if a token frame was half-written at that moment
    check(code in (1002, 0), f"ws bad control length mid-inference: close code {code}")
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: protocol error left its inference running")
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "inference", "ws: long inference produced no token")
    check(ws_close_code(ws, ws_frame(0x81, b"\xc3\x28")) == 1007, "ws bad UTF-8 mid-inference")
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: bad UTF-8 left its inference running")
    # a truncated frame, then the client vanishes
    ws = WebSocket(port)
    ws.s.sendall(ws_frame(0x81, b'{"type":"status"}')[:9])
    ws.s.close()
    check(wait_metric(port, "quarrel_webui_connections_active", 1, 5), "malformed WebSockets still counted")
    check(jreq(port, "GET", "/healthz")[0] == 200, "server unhealthy after malformed WebSocket frames")
    check(wait_until(lambda: err("disconnected") == 4, 5), f"ws protocol errors: disconnected {err('disconnected')}")

    st, _, o = jreq(port, "POST", "/api/generate", dict(gen, max_tokens=0))
    check(st == 200 and o["text"] == "" and o["tokens_generated"] == 0 and o["usage"]["prompt_tokens"] == 16,
          f"max_tokens 0: {o}")

    # stop strings end the text before the stop string
    st, _, o = jreq(port, "POST", "/api/generate", dict(gen, stop="park"))
    check(o["text"] == want[:want.index("park")] and o["finish_reason"] == "stop", f"stop string {o}")

    # 4. concurrency: 8 clients, 4 slots, each must get exactly its solo tokens
    prompts = ["Once upon a time", "The cat sat", "Tom had a red ball", "One day, Lily went",
               "The sun was hot", "A little dog", "Mom said", "There was a big tree"]
    bodies = [{"prompt": q, "temperature": 0, "max_tokens": 24 + 4 * i} for i, q in enumerate(prompts)]
    solo = [solo_margins(port, b) for b in bodies]
    got = [None] * len(bodies)

    def client(i):
        st, _, o = jreq(port, "POST", "/v1/completions", dict(bodies[i], logprobs=0))
        got[i] = o["choices"][0]["logprobs"]["tokens"] if st == 200 else f"status {st}"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(len(bodies)):
        check(isinstance(got[i], list), f"concurrent client {i}: {got[i]}")
        same_as_solo(f"concurrent client {i}", got[i], *solo[i])

    # 5. a client that goes away mid-stream frees its slot within a step or two
    before = metric(port, 'quarrel_webui_tokens_total{kind="generated"}')
    s = open_stream(port, {"prompt": "Once upon a time", "temperature": 0.8, "max_tokens": 1900, "ignore_eos": True})
    check(read_until(s, b'"type":"token"'), "long stream produced no token")
    check(wait_metric(port, "quarrel_requests_running", 1, 5), "the long stream is not running")
    s.close()
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "disconnected stream still running after 3 s")
    gen_after = metric(port, 'quarrel_webui_tokens_total{kind="generated"}') - before
    check(gen_after < 1900, f"disconnected stream generated all its tokens ({gen_after})")
    check(metric(port, "quarrel_kv_cache_usage_ratio") == 0, "KV cells not freed after disconnect")
    # the same for a non-streamed request whose client hangs up while it runs
    before = metric(port, 'quarrel_webui_tokens_total{kind="generated"}')
    s = open_stream(port, {"prompt": "Once upon a time", "max_tokens": 1900, "ignore_eos": True}, b"/api/generate")
    check(wait_metric(port, "quarrel_requests_running", 1, 5), "the long generate is not running")
    s.close()
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "disconnected generate still running after 3 s")
    gen_after = metric(port, 'quarrel_webui_tokens_total{kind="generated"}') - before
    check(gen_after < 1900, f"disconnected generate produced all its tokens ({gen_after})")
    check(wait_until(lambda: err("disconnected") == 6, 5), f"disconnects: disconnected {err('disconnected')}")

    # 6. per-request timeout, then bad requests
    st, _, o = jreq(port, "POST", "/api/generate", {"prompt": "Once", "max_tokens": 1900, "timeout": 1, "ignore_eos": True})
    check(st == 200 and o["finish_reason"] == "timeout", f"timeout {o}")
    # Counters move in MHD's request-completed callback, which can run after the client has
    # its response: poll (bounded) rather than read once.
    check(wait_until(lambda: err("timeout") == 1, 5), "errors_total{type=timeout} did not count the timeout")
    bad_before = err("bad_request")
    bad = [
        ("/api/generate", b"{not json", 400),
        ("/api/generate", b"[1,2]", 400),
        ("/api/generate", b"", 400),
        ("/api/generate", json.dumps({"prompt": 5}).encode(), 400),
        ("/api/generate", json.dumps({"prompt": ""}).encode(), 400),
        ("/api/generate", json.dumps({"prompt": "x", "temperature": "hot"}).encode(), 400),
        ("/api/generate", json.dumps({"prompt": "x", "max_tokens": -1}).encode(), 400),
        ("/api/generate", json.dumps({"prompt": "x", "stop": 3}).encode(), 400),
        ("/api/generate", json.dumps({"prompt": "Once upon a time " * 600}).encode(), 400),
        ("/api/generate", b"[" * 100 + b"]" * 100, 400),
        ("/api/generate", b'{"prompt":"Once\\u0000 upon"}', 400),   # valid JSON, but a NUL
        ("/api/generate", b"{\"prompt\":\"" + b"a" * (2 << 20) + b"\"}", 413),
        ("/v1/completions", json.dumps({"prompt": "x", "n": 2}).encode(), 400),
        ("/v1/chat/completions", json.dumps({"messages": "hi"}).encode(), 400),
        ("/v1/chat/completions", json.dumps({"messages": [{"role": "user"}]}).encode(), 400),
        ("/nope", b"{}", 404),
    ]
    for path, raw, code in bad:
        st, hd, payload = req(port, "POST", path, raw=raw)
        check(st == code, f"{path} {raw[:40]!r}: {st}, want {code}")
        e = json.loads(payload)["error"]
        check(e["code"] == code and e["message"] and e["type"], f"error shape {e}")
        if b"\\u0000" in raw:
            check("NUL" in e["message"] and "JSON_ALLOW_NUL" not in e["message"], f"NUL message {e}")
    check(req(port, "GET", "/api/generate")[0] == 405, "GET /api/generate must be 405")
    check(jreq(port, "GET", "/readyz")[0] == 200, "server unhealthy after bad requests")
    check(wait_until(lambda: err("bad_request") - bad_before == len(bad) + 1, 5),
          f"bad_request errors {err('bad_request') - bad_before}")
    check(err("internal") == 0 and err("queue_full") == 0, "unexpected internal/queue_full errors")

    # every accounted job is one observation of e2e, queue time and inference duration; every
    # sampled token after a request's first is one inter-token observation
    text = metrics_text(port)
    val = lambda name: float(re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M).group(1))
    n_e2e = val("quarrel_e2e_request_latency_seconds_count")
    check(n_e2e >= 20, f"e2e count {n_e2e}")
    for h in ("quarrel_request_queue_time_seconds", "quarrel_webui_inference_duration_seconds"):
        check(val(h + "_count") == n_e2e, f"{h}_count {val(h + '_count')} != e2e count {n_e2e}")
        check(val(h + '_bucket{le="+Inf"}') == n_e2e, f"{h} +Inf bucket")
    n_gen = val('quarrel_webui_tokens_total{kind="generated"}')
    n_itl = val("quarrel_inter_token_latency_seconds_count")
    # (abandoned streams sample tokens too but are not in tokens_total: only a lower bound)
    check(n_itl >= n_gen - n_e2e > 0, f"inter-token count {n_itl} vs {n_gen} tokens, {n_e2e} requests")
    check(val("quarrel_webui_inference_duration_seconds_sum") <= val("quarrel_e2e_request_latency_seconds_sum"),
          "inference duration exceeds end-to-end latency")
    check(re.search(r'^quarrel_webui_requests_total\{model="stories260K.gguf",endpoint="/api/generate",status="200"\} '
                    r'\d+$', text, re.M), "requests_total lacks {model,endpoint,status}")
    check(wait_metric(port, "quarrel_webui_connections_active", 1, 5), "connections_active did not return to 1")
    promtool_check(port)

    # JSON logs: one object per line with a request id, and no prompt text
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        fail("server ignored SIGTERM")
    check(rc == 0, f"server exit status {rc}")
    lines = open(log, encoding="utf-8").read().splitlines()
    reqs = [json.loads(ln) for ln in lines if ln.startswith("{")]
    check(any(r.get("event") == "request" and r.get("request_id") for r in reqs), "no JSON request log lines")
    check(not any("Lily" in ln for ln in lines), "a prompt leaked into the log")

    # 7. priorities and queue full -> 503 + Retry-After; 8. SIGTERM with work in flight
    p, port, log = start("--parallel", "1", "--queue-size", "2", "-c", "2048", "--shutdown-timeout", "1")
    s1 = open_stream(port, {"prompt": "Once upon a time", "temperature": 0.8, "max_tokens": 1900, "ignore_eos": True})
    check(read_until(s1, b'"type":"token"'), "first stream produced no token")
    done_at = {}

    def queued(name, prio):
        st, _, o = jreq(port, "POST", "/api/generate", {"prompt": "The cat", "max_tokens": 16, "priority": prio})
        done_at[name] = (time.time(), st)

    tb = threading.Thread(target=queued, args=("batch", "batch"))
    tb.start()
    check(wait_metric(port, "quarrel_requests_waiting", 1, 5), "batch request not queued")
    ti = threading.Thread(target=queued, args=("interactive", "interactive"))
    ti.start()
    check(wait_metric(port, "quarrel_requests_waiting", 2, 5), "interactive request not queued")
    st, hd, payload = req(port, "POST", "/api/generate", raw=json.dumps({"prompt": "x"}).encode())
    check(st == 503 and hd.get("Retry-After") == "1", f"queue full: {st} {hd}")
    check(json.loads(payload)["error"]["code"] == 503, "503 body")
    check(wait_metric(port, 'quarrel_webui_errors_total{type="queue_full"}', 1, 5), "queue_full error not counted")
    promtool_check(port)   # with a request running and two waiting
    s1.close()   # frees the slot: the interactive request must run first
    tb.join(30)
    ti.join(30)
    check(done_at.get("batch", (0, 0))[1] == 200 and done_at.get("interactive", (0, 0))[1] == 200, f"queued {done_at}")
    check(done_at["interactive"][0] < done_at["batch"][0], "the batch request ran before the interactive one")
    s1 = open_stream(port, {"prompt": "Once upon a time", "max_tokens": 1900, "ignore_eos": True})
    check(read_until(s1, b'"type":"token"'), "third stream produced no token")
    s2 = open_stream(port, {"prompt": "The cat", "max_tokens": 1900, "ignore_eos": True})
    check(wait_metric(port, "quarrel_requests_waiting", 1, 5), "fourth request not queued")
    ws_idle, ws_busy = WebSocket(port), WebSocket(port)
    ws_busy.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True, "id": "q"}})
    check(wait_metric(port, "quarrel_requests_waiting", 2, 5), "WebSocket inference not queued")
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    # WebSocket sessions: the queued generation ends (cancelled), then both get 1001
    m = ws_busy.recv()
    check(m["type"] == "inference" and m["payload"]["complete"] and m["payload"]["finish_reason"] == "cancelled",
          f"ws generation at shutdown: {m}")
    check(ws_close_code(ws_busy, b"") == 1001 and ws_close_code(ws_idle, b"") == 1001, "ws close code at shutdown")
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        fail("server with streams in flight ignored SIGTERM")
    check(rc == 0, f"server exit status {rc} after SIGTERM")
    check(time.time() - t0 < 10, "shutdown took longer than its grace")
    s1.close()
    s2.close()
    print("serve: all checks passed")


if __name__ == "__main__":
    try:
        main()
    finally:
        serve_util.cleanup()
