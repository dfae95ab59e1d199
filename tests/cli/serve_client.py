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
  4. 8 concurrent clients (4 slots) each get what they get alone (batching mixes nothing);
  5. a client that disconnects mid-stream (or mid-generate) frees its slot quickly;
  6. per-request timeout; 4xx JSON errors (malformed, wrong types, empty, too long, 413,
     negative max_tokens, n=2, 404, 405);
  7. interactive requests run before batch ones; queue full -> 503 + Retry-After
     (--parallel 1 --queue-size 2);
  8. SIGTERM with a stream in flight -> exit 0 within the shutdown grace.
Malformed WebSocket frames (unmasked, RSV1, reserved opcode, stray continuation, fragmented
ping, bad UTF-8, over the size limit, bad control length, truncated then gone) get their
RFC 6455 close codes and free the session.
Metrics along the way: connections_active back to 1 (the scrape) after streams and WebSockets
close; errors_total{type} counts each 4xx, timeout, disconnect and 503; the queue-time and
inference-duration histograms count every accounted request; `promtool check metrics`
accepts /metrics (Debian package prometheus).
Every wait is bounded; servers are killed on any failure."""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("QUARREL_BIN", "build/quarrel")
SHARED = os.environ.get("QUARREL_SHARED", "../shared")
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
GOLDEN = json.load(open(os.path.join(SHARED, "golden", "stories260K", "story.json")))
servers = []
logs = []


def fail(msg):
    for p in servers:
        if p.poll() is None:
            p.kill()
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def start(*extra, env=None):
    log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)
    p = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", "2", *extra],
                         stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, **(env or {})))
    servers.append(p)
    logs.append(log.name)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(log.name, encoding="utf-8", errors="replace").read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m:
            return p, int(m.group(1)), log.name
        if p.poll() is not None:
            fail("server exited early: " + text)
        time.sleep(0.05)
    fail("server did not start")


def req(port, method, path, body=None, raw=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, dict(r.getheaders()), payload


def jreq(port, method, path, body=None, **kw):
    st, hd, payload = req(port, method, path, body, **kw)
    try:
        return st, hd, json.loads(payload)
    except ValueError:
        fail(f"{path}: not JSON: {payload[:200]!r}")


def sse(port, path, body):
    """Returns the list of data payloads of an SSE response."""
    st, hd, payload = req(port, "POST", path, body)
    check(st == 200, f"{path} stream status {st}: {payload[:200]!r}")
    check(hd.get("Content-Type", "").startswith("text/event-stream"), f"{path} content type {hd}")
    return [ln[6:] for ln in payload.decode("utf-8").split("\n") if ln.startswith("data: ")]


def metric(port, name):
    st, _, payload = req(port, "GET", "/metrics")
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", payload.decode(), re.M)
    check(m, f"metric {name} missing")
    return float(m.group(1))


def metrics_text(port):
    st, _, payload = req(port, "GET", "/metrics")
    check(st == 200, f"/metrics -> {st}")
    return payload.decode()


def promtool_check(port):
    """The whole /metrics body must pass `promtool check metrics` (format and lint)."""
    check(shutil.which("promtool"), "promtool missing (Debian package prometheus; run scripts/deps.sh)")
    body = metrics_text(port).encode()
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    check(r.returncode == 0, f"promtool check metrics: {r.stdout.decode()} {r.stderr.decode()}")


def wait_until(fn, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return False


def wait_metric(port, name, want, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if metric(port, name) == want:
            return True
        time.sleep(0.05)
    return False


def open_stream(port, body, path=b"/api/stream"):
    """Raw socket request (a stream by default); returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps(body).encode()
    s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return s


def read_until(s, marker, seconds=30):
    buf = b""
    deadline = time.time() + seconds
    while marker not in buf and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return marker in buf


class WebSocket:
    """Just enough RFC 6455 client: masked text frames out, unmasked frames in."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(4096)
            check(chunk, "ws: connection closed during the handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        check(head.startswith(b"HTTP/1.1 101"), f"ws handshake: {head[:60]!r}")
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        check(b"Sec-WebSocket-Accept: " + want in head, "ws: wrong Sec-WebSocket-Accept")

    def send(self, obj):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        mask = os.urandom(4)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            check(chunk, "ws: connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        payload = self._read(n)
        check(b0 & 0x0F == 1, f"ws: unexpected opcode {b0 & 0x0F}")
        return json.loads(payload)


def ws_frame(b0, payload, length=None, masked=True):
    """One client frame: first byte b0 (FIN, opcode), payload masked unless masked=False;
    length overrides the declared payload length."""
    n = len(payload) if length is None else length
    m = 0x80 if masked else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n < 65536:
        hdr = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if not masked:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(x ^ key[i % 4] for i, x in enumerate(payload))


def ws_close_code(ws, data):
    """Sends raw bytes on an open WebSocket, then reads server frames until the server's close
    frame and EOF (bounded by the socket timeout); returns the close status code or None."""
    ws.s.settimeout(10)
    ws.s.sendall(data)
    buf, code = ws.buf, None
    while True:
        while len(buf) >= 2 and code is None:
            n, off = buf[1] & 0x7F, 2
            if n == 126:
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                break
            if buf[0] & 0x0F == 8:
                code = int.from_bytes(buf[off:off + 2], "big") if n >= 2 else 0
            buf = buf[off + n:]
        try:
            chunk = ws.s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    ws.s.close()
    return code


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

    # WebSocket /ws: streamed and whole inferences, status, errors, stop
    ws = WebSocket(port)
    check(metric(port, "quarrel_webui_connections_active") == 2, "a WebSocket session is an open connection")
    ws.send({"type": "inference", "payload": {"prompt": prompt, "temperature": 0, "max_tokens": 64}})
    pieces = []
    while True:
        m = ws.recv()
        if m["type"] != "token":
            break
        pieces.append(m["payload"]["text"])
    check(m["type"] == "done" and "".join(pieces) == want, f"ws stream text {''.join(pieces)!r} {m}")
    check(m["payload"]["tokens_generated"] == 64, f"ws summary {m}")
    ws.send({"type": "inference", "payload": {"prompt": prompt, "temperature": 0, "max_tokens": 64, "stream": False}})
    m = ws.recv()
    check(m["type"] == "done" and m["payload"]["text"] == want, f"ws whole text {m}")
    ws.send({"type": "status"})
    m = ws.recv()
    check(m["type"] == "status" and m["payload"]["busy"] is False, f"ws status {m}")
    ws.send(b"not json")
    check(ws.recv()["type"] == "error", "ws: bad JSON must answer an error")
    ws.send({"type": "inference", "payload": {"prompt": ""}})
    check(ws.recv()["type"] == "error", "ws: empty prompt must answer an error")
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "token", "ws: long inference produced no token")
    ws.send({"type": "stop"})
    while True:
        m = ws.recv()
        if m["type"] != "token":
            break
    check(m["type"] == "done" and m["payload"]["finish_reason"] == "cancelled", f"ws stop {m}")
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: stopped inference still running")
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "token", "ws: second long inference produced no token")
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
    # ... also while an inference runs (its slot must be freed)
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "token", "ws: long inference produced no token")
    code = ws_close_code(ws, ws_frame(0x89, b"x", length=126))   # declared 126 bytes, 2-byte length missing
    # 0: a close without a status, sent only if a token frame was half-written at that moment
    check(code in (1002, 0), f"ws bad control length mid-inference: close code {code}")
    check(wait_metric(port, "quarrel_requests_running", 0, 3), "ws: protocol error left its inference running")
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "Once", "max_tokens": 1900, "ignore_eos": True}})
    check(ws.recv()["type"] == "token", "ws: long inference produced no token")
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

    # 4. concurrency: 8 clients, 4 slots, each must get exactly its solo text
    prompts = ["Once upon a time", "The cat sat", "Tom had a red ball", "One day, Lily went",
               "The sun was hot", "A little dog", "Mom said", "There was a big tree"]
    bodies = [{"prompt": q, "temperature": 0, "max_tokens": 24 + 4 * i} for i, q in enumerate(prompts)]
    solo = [jreq(port, "POST", "/api/generate", b)[2]["text"] for b in bodies]
    got = [None] * len(bodies)

    def client(i):
        st, _, o = jreq(port, "POST", "/api/generate", bodies[i])
        got[i] = o.get("text") if st == 200 else f"status {st}"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(len(bodies)):
        check(got[i] == solo[i], f"concurrent client {i} got {got[i]!r}, alone {solo[i]!r}")

    # 5. a client that goes away mid-stream frees its slot within a step or two
    before = metric(port, 'quarrel_webui_tokens_total{kind="generated"}')
    s = open_stream(port, {"prompt": "Once upon a time", "temperature": 0.8, "max_tokens": 1900, "ignore_eos": True})
    check(read_until(s, b'"type":"token"'), "long stream produced no token")
    check(metric(port, "quarrel_requests_running") == 1, "the long stream is not running")
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
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
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
        for proc in servers:
            if proc.poll() is None:
                proc.kill()
        for name in logs:
            os.unlink(name)
