#!/usr/bin/env python3
"""serve_util.py -- helpers shared by the `quarrel serve` end-to-end tests (stdlib only):
start a real server on --port 0 and read its port from the "listening on" line, HTTP/JSON/SSE
requests, /metrics reads, bounded waits, and a minimal RFC 6455 client (masked frames out,
raw frames for malformed-input tests). fail() kills every server started here and exits 1."""
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


def start(*extra, env=None, model=MODEL, scheme="http", tag="serve", tmpdir=None):
    """Starts `quarrel serve [-m model] --port 0 -t 2 EXTRA...` (model=None: no -m) and waits
    for its "listening on SCHEME://HOST:PORT" line. Returns (process, port, log path)."""
    log = tempfile.NamedTemporaryFile(prefix=tag + "-", suffix=".log", delete=False, dir=tmpdir)
    args = [BIN, "serve", *(["-m", model] if model else []), "--port", "0", "-t", "2", *extra]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, **(env or {})))
    servers.append(p)
    logs.append(log.name)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(log.name, encoding="utf-8", errors="replace").read()
        m = re.search(r"listening on " + scheme + r"://[0-9.]+:(\d+)", text)
        if m:
            return p, int(m.group(1)), log.name
        if p.poll() is not None:
            fail("server exited early: " + text)
        time.sleep(0.05)
    fail("server did not start")


def keys_cli(keys_file, *args):
    """Runs `quarrel keys ARGS --keys-file KEYS_FILE`; returns its stdout (a new key, a list)."""
    r = subprocess.run([BIN, "keys", *args, "--keys-file", keys_file], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"quarrel keys {args}: {r.stderr}")
    return r.stdout.strip()


def run_tests(name, tests):
    """Runs each test function in order, timing each on stderr."""
    t0 = time.time()
    for t in tests:
        t1 = time.time()
        t()
        print(f"{name}: {t.__name__} ok ({time.time() - t1:.1f} s)", file=sys.stderr)
    print(f"{name}: all ok ({time.time() - t0:.1f} s)", file=sys.stderr)


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
        """The next text message as JSON; the server's heartbeat pings are answered."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            if b0 & 0x0F == 9:
                self.s.sendall(ws_frame(0x8A, payload))
                continue
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


def ws_collect(ws, ids, stamps=None):
    """Reads /ws messages until every generation id in ids has its complete message; returns
    {id: (pieces, token_ids, final payload)} and the other messages in order. Appends the
    arrival time of each generation message to stamps, if given."""
    out = {i: ([], [], None) for i in ids}
    other = []
    while any(v[2] is None for v in out.values()):
        m = ws.recv()
        p = m.get("payload", {})
        if stamps is not None and m["type"] == "inference":
            stamps.append(time.time())
        if m["type"] == "inference" and p.get("id") in out:
            pieces, tids, _ = out[p["id"]]
            if p["complete"]:
                pieces.append(p["token"])
                out[p["id"]] = (pieces, tids, p)
            else:
                pieces.append(p["token"])
                tids.append(p["token_id"])
        else:
            other.append(m)
    return out, other



def cleanup():
    """Kills the servers still running and removes their logs."""
    for proc in servers:
        if proc.poll() is None:
            proc.kill()
    for name in logs:
        if os.path.exists(name):
            os.unlink(name)


# Attention sums each sequence's cells in position order with lanes by position, and a
# token's attention path depends only on its position, so a request's logits are bit-identical
# alone or batched, wherever its cells sit: concurrent runs must equal solo runs exactly,
# even at near-ties (the margins are reported to show how close a flip would have been).


def solo_margins(port, payload):
    """Runs payload (a /v1/completions or /v1/chat/completions body; "messages" picks chat)
    alone with top-2 logprobs. Returns (token strings, top-1 minus top-2 logprob per step)."""
    chat = "messages" in payload
    body = dict(payload, stream=False)
    body.update({"logprobs": True, "top_logprobs": 2} if chat else {"logprobs": 2})
    st, _, o = jreq(port, "POST", "/v1/chat/completions" if chat else "/v1/completions", body)
    check(st == 200, f"solo logprobs run: {st} {o}")
    lp = o["choices"][0]["logprobs"]
    if chat:
        toks = [t["token"] for t in lp["content"]]
        tops = [[x["logprob"] for x in t["top_logprobs"]] for t in lp["content"]]
    else:
        toks = lp["tokens"]
        tops = [sorted(t.values(), reverse=True) for t in lp["top_logprobs"]]
    return toks, [t[0] - t[1] if len(t) > 1 else float("inf") for t in tops]


def same_as_solo(name, got, solo, margins):
    """got, solo: the token sequences (ids or strings) of one request run concurrently and
    alone. They must be equal; a difference names its step and the solo top-2 gap there."""
    i = next((k for k, (x, y) in enumerate(zip(got, solo)) if x != y), None)
    if i is None:
        check(len(got) == len(solo), f"{name}: {len(got)} tokens, alone {len(solo)}")
        return True
    gap = margins[i] if i < len(margins) else float("inf")
    fail(f"{name}: token {i} is {got[i]!r}, alone {solo[i]!r} (solo top-2 gap {gap:.4g}): "
         f"{got[:i + 2]} vs {solo[:i + 2]}")
