#!/usr/bin/env python3
"""auth_client.py -- `quarrel serve` access control end to end on loopback (driven by
auth.sh; stdlib only, plus the openssl CLI for a self-signed certificate). Real servers on
--port 0 with a key file made by `quarrel keys`:
  A (keys, --cors-origins http://good.example): open endpoints stay open; no key, a bad,
    malformed, revoked or query-string key -> 401 + WWW-Authenticate: Bearer in the error
    shape; Bearer and X-API-Key work; rotation within and past a 3 s grace; a key created
    after start works after SIGHUP (logged "keys_reloaded" reason SIGHUP); a key revoked
    after start stops working once the file's change is seen; WebSocket auth by subprotocol
    (echoed), by first message, refused for a bad key / a request before auth (UNAUTHORIZED
    then close 1008) and a bad subprotocol key (401); rpm burst -> 429 + Retry-After (HTTP)
    and RATE_LIMITED (WS); tpm -> 429 after a long generation; CORS preflight and simple
    requests for an allowed and a disallowed origin; security headers once per response;
    /metrics counters (promtool accepts it); no key in the log.
  B (--max-conns-per-ip 2, --metrics-auth 1, no CORS list): third connection -> 429,
    /metrics needs a key, no Access-Control-Allow-Origin for any origin.
  C (--tls-cert/--tls-key, --cors-origins '*'): HTTPS with the self-signed cert as CA, WSS
    with subprotocol auth and an inference, ACAO "*" without credentials.
  Startup: an explicit missing or world-readable key file is refused with one line."""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import BIN, MODEL, check, ws_frame, cleanup, keys_cli, wait_until  # noqa: E402
from serve_util import start as serve_start  # noqa: E402

TMP = tempfile.mkdtemp(prefix="quarrel-auth-")
KEYS = os.path.join(TMP, "keys.json")


def keys(*args):
    return keys_cli(KEYS, *args)


def start(*extra, scheme="http"):
    return serve_start("--parallel", "2", *extra, scheme=scheme, tag="auth", tmpdir=TMP)


def conn(port, tls_ctx=None):
    if tls_ctx:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=tls_ctx)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def req(port, method, path, body=None, headers=None, tls_ctx=None):
    c = conn(port, tls_ctx)
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheaders(), data


def hget(hdrs, name):
    vals = [v for k, v in hdrs if k.lower() == name.lower()]
    return vals[0] if vals else None


def hcount(hdrs, name):
    return sum(1 for k, _ in hdrs if k.lower() == name.lower())


def bearer(k):
    return {"Authorization": "Bearer " + k}


def expect_401(port, path, headers=None, method="GET", body=None, what=""):
    st, hd, data = req(port, method, path, body, headers)
    check(st == 401, f"{what} {method} {path}: {st} {data[:200]!r}")
    check((hget(hd, "WWW-Authenticate") or "").startswith("Bearer"), f"{what}: no WWW-Authenticate: {hd}")
    e = json.loads(data)["error"]
    check(e["code"] == 401 and e["type"] == "authentication_error" and e["message"], f"{what}: error shape {e}")


def ok(port, path, key, method="GET", body=None, how="bearer"):
    h = bearer(key) if how == "bearer" else {"X-API-Key": key}
    st, hd, data = req(port, method, path, body, h)
    check(st == 200, f"{method} {path} with a good key ({how}): {st} {data[:200]!r}")
    return json.loads(data) if data[:1] == b"{" else data


GEN = {"prompt": "Once upon a time", "max_tokens": 1, "temperature": 0}


class WS:
    """A minimal RFC 6455 client over TCP or TLS, with optional subprotocols and headers."""

    def __init__(self, port, protocols=None, tls_ctx=None, expect=101):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s = tls_ctx.wrap_socket(s, server_hostname="localhost") if tls_ctx else s
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "Sec-WebSocket-Protocol: %s\r\n" % ", ".join(protocols) if protocols else ""
        self.s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (key, extra)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(4096)
            check(chunk, "ws: closed during the handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        self.status = int(self.head.split(" ")[1])
        check(self.status == expect, f"ws handshake {self.status}, want {expect}: {self.head}")
        if expect == 101:
            want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            check("Sec-WebSocket-Accept: " + want.decode() in self.head, "ws: wrong accept")
        else:
            self.s.close()

    def protocol(self):
        m = re.search(r"^Sec-WebSocket-Protocol: (.*)$", self.head, re.M | re.I)
        return m.group(1).strip() if m else None

    def send(self, obj):
        self.s.sendall(ws_frame(0x81, json.dumps(obj).encode()))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        return b0 & 0x0F, self._read(n)

    def recv(self):
        while True:
            op, payload = self.frame()
            if op == 9:
                self.s.sendall(ws_frame(0x8A, payload))
                continue
            if op == 8:
                return {"type": "_close", "code": int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0}
            return json.loads(payload)

    def infer(self, gid, max_tokens=2):
        self.send({"type": "inference", "payload": {"id": gid, "prompt": "Once upon a time", "max_tokens": max_tokens,
                                                    "temperature": 0, "stream": False}})
        while True:
            m = self.recv()
            if m["type"] == "error" or (m["type"] == "inference" and m["payload"].get("complete")):
                return m

    def close(self):
        try:
            self.s.sendall(ws_frame(0x88, (1000).to_bytes(2, "big")))
            while self.recv()["type"] != "_close":
                pass
        except (EOFError, OSError):
            pass
        self.s.close()


def unauthorized_then_close(ws, what):
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "UNAUTHORIZED", f"{what}: {m}")
    m = ws.recv()
    check(m == {"type": "_close", "code": 1008}, f"{what}: then {m}, want close 1008")
    ws.s.close()


def metric(port, name, headers=None):
    st, _, data = req(port, "GET", "/metrics", headers=headers)
    check(st == 200, f"/metrics {st}")
    m = re.search("^" + re.escape(name) + r" (\S+)$", data.decode(), re.M)
    check(m, f"metric {name} missing")
    return float(m.group(1))


def main():
    # startup refusals: an explicit file must load
    r = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "0", "--keys-file", os.path.join(TMP, "none.json")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "none.json" in r.stderr and r.stderr.count("\n") == 1, f"missing keys file: {r.stderr}")
    k_all = keys("create", "--name", "all")
    k_lim = keys("create", "--name", "lim", "--rpm", "3")
    k_tok = keys("create", "--name", "tok", "--tpm", "20")
    k_rot = keys("create", "--name", "rot")
    k_rev = keys("create", "--name", "rev")
    k_gone = keys("create", "--name", "gone")
    keys("revoke", "rev")
    os.chmod(KEYS, 0o644)
    r = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "0", "--keys-file", KEYS], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 1 and "chmod 600" in r.stderr, f"world-readable keys file: {r.stderr}")
    os.chmod(KEYS, 0o600)

    pa, A, log_a = start("--keys-file", KEYS, "--cors-origins", "http://good.example")

    # open endpoints stay open
    for path in ("/healthz", "/readyz", "/version", "/openapi.json", "/docs", "/", "/metrics"):
        st, hd, _ = req(A, "GET", path)
        check(st == 200, f"open {path} -> {st}")
        check(hcount(hd, "X-Content-Type-Options") == 1 and hget(hd, "Referrer-Policy") == "no-referrer",
              f"{path}: security headers {hd}")
    # keyed endpoints
    for path, method, body in (("/v1/models", "GET", None), ("/api/models", "GET", None),
                               ("/api/generate", "POST", GEN), ("/v1/chat/completions", "POST", GEN),
                               ("/api/metrics", "GET", None)):
        expect_401(A, path, method=method, body=body, what="no key")
    expect_401(A, "/v1/models", bearer("qk-00000000-" + "A" * 43), what="unknown key")
    expect_401(A, "/v1/models", bearer("nonsense"), what="malformed key")
    expect_401(A, "/v1/models", {"X-API-Key": k_all[:-1] + ("A" if k_all[-1] != "A" else "B")}, what="one char off")
    expect_401(A, "/v1/models", bearer(k_rev), what="revoked key")
    expect_401(A, "/v1/models?api_key=" + k_all, what="query-string key")
    expect_401(A, "/v1/models", {"Authorization": "Basic " + k_all}, what="not Bearer")
    check(ok(A, "/v1/models", k_all)["data"], "Bearer")
    check(ok(A, "/v1/models", k_all, how="x-api-key")["data"], "X-API-Key")
    check(ok(A, "/api/generate", k_all, "POST", GEN)["tokens_generated"] == 1, "generate with a key")

    # rotation with a 3 s grace (SIGHUP loads it at once; the file change would be seen
    # within a second anyway)
    k_rot2 = keys("rotate", "rot", "--grace", "3s")
    t_rot = time.time()
    pa.send_signal(signal.SIGHUP)
    check(k_rot2 != k_rot, "rotate kept the key")
    deadline = time.time() + 5
    while req(A, "GET", "/v1/models", headers=bearer(k_rot2))[0] != 200:
        check(time.time() < deadline, "the rotated key did not start working (file change not seen)")
        time.sleep(0.2)
    check(time.time() - t_rot < 2.5, "the rotated key took too long to load to test the grace period")
    ok(A, "/v1/models", k_rot)   # the old key within its grace
    time.sleep(max(0.0, t_rot + 3.5 - time.time()))
    expect_401(A, "/v1/models", bearer(k_rot), what="old key past its grace")
    ok(A, "/v1/models", k_rot2)

    # SIGHUP: a key created after start; a key revoked after start
    k_late = keys("create", "--name", "late")
    keys("revoke", "gone")
    pa.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while open(log_a).read().count("reason=\"SIGHUP\"") < 2:
        check(time.time() < deadline, "no keys_reloaded line after SIGHUP")
        time.sleep(0.05)
    ok(A, "/v1/models", k_late)
    expect_401(A, "/v1/models", bearer(k_gone), what="revoked after start")

    # WebSocket: subprotocol, first message, refusals
    ws = WS(A, protocols=["quarrel.key." + k_all])
    check(ws.protocol() == "quarrel.key." + k_all, f"subprotocol not echoed: {ws.head}")
    m = ws.infer("p1")
    check(m["type"] == "inference" and m["payload"]["tokens_generated"] == 2, f"ws subprotocol inference {m}")
    ws.close()
    ws = WS(A)
    ws.send({"type": "auth", "payload": {"api_key": k_all}})
    check(ws.recv() == {"type": "auth", "payload": {"ok": True}}, "auth ack")
    ws.send({"type": "status", "payload": {}})
    check(ws.recv()["type"] == "status", "status after auth")
    m = ws.infer("f1")
    check(m["type"] == "inference" and m["payload"]["complete"], f"ws first-message inference {m}")
    ws.close()
    ws = WS(A)
    ws.send({"type": "auth", "payload": {"api_key": k_rev}})
    unauthorized_then_close(ws, "ws revoked key")
    ws = WS(A)
    ws.send({"type": "inference", "payload": {"prompt": "x"}})
    unauthorized_then_close(ws, "ws inference before auth")
    WS(A, protocols=["quarrel.key.qk-00000000-" + "B" * 43], expect=401)

    # rpm: 3 per minute for "lim" (HTTP and WebSocket share the bucket)
    for i in range(3):
        ok(A, "/v1/completions", k_lim, "POST", GEN)
    st, hd, data = req(A, "POST", "/v1/completions", GEN, bearer(k_lim))
    check(st == 429, f"4th request in a minute: {st} {data[:200]!r}")
    check(int(hget(hd, "Retry-After") or 0) >= 1, f"Retry-After {hget(hd, 'Retry-After')}")
    e = json.loads(data)["error"]
    check(e["code"] == 429 and e["type"] == "rate_limit_error", f"429 shape {e}")
    check(req(A, "POST", "/api/generate", GEN, bearer(k_lim))[0] == 429, "/api shares the rpm bucket")
    ws = WS(A, protocols=["quarrel.key." + k_lim])
    m = ws.infer("r1")
    check(m["type"] == "error" and m["payload"]["code"] == "RATE_LIMITED", f"ws over rpm {m}")
    ws.close()
    ok(A, "/v1/completions", k_all, "POST", GEN)   # other keys are not affected

    # tpm: 20 generated tokens per minute for "tok": 30 tokens drain it
    o = ok(A, "/api/generate", k_tok, "POST", dict(GEN, max_tokens=30, ignore_eos=True))
    check(o["tokens_generated"] == 30, f"long generation {o}")
    st, hd, data = req(A, "POST", "/api/generate", GEN, bearer(k_tok))
    check(st == 429 and int(hget(hd, "Retry-After") or 0) >= 1, f"over tpm: {st} {hd} {data[:200]!r}")
    check(b"generated tokens" in data, f"tpm message {data!r}")

    # CORS: allowed and disallowed origins
    pre = {"Origin": "http://good.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    st, hd, _ = req(A, "OPTIONS", "/v1/chat/completions", headers=pre)
    check(st == 204 and hget(hd, "Access-Control-Allow-Origin") == "http://good.example", f"preflight good {st} {hd}")
    allow = (hget(hd, "Access-Control-Allow-Headers") or "").lower()
    check(all(x in allow for x in ("authorization", "content-type", "x-api-key")), f"allow-headers {allow}")
    check("POST" in (hget(hd, "Access-Control-Allow-Methods") or "") and int(hget(hd, "Access-Control-Max-Age") or 0) > 0,
          f"preflight methods/max-age {hd}")
    check(hget(hd, "Access-Control-Allow-Credentials") == "true" and "Origin" in (hget(hd, "Vary") or ""),
          f"credentials/Vary for an explicit origin {hd}")
    st, hd, _ = req(A, "OPTIONS", "/v1/chat/completions", headers=dict(pre, Origin="http://evil.example"))
    check(st == 204 and not any(k.lower().startswith("access-control-") for k, _ in hd), f"preflight evil {hd}")
    st, hd, _ = req(A, "GET", "/healthz", headers={"Origin": "http://good.example"})
    check(hget(hd, "Access-Control-Allow-Origin") == "http://good.example", f"simple request good {hd}")
    st, hd, _ = req(A, "GET", "/v1/models", headers=dict(bearer(k_all), Origin="http://evil.example"))
    check(st == 200 and hget(hd, "Access-Control-Allow-Origin") is None, f"simple request evil {hd}")
    st, hd, _ = req(A, "GET", "/v1/models", headers={"Origin": "http://good.example"})
    check(st == 401 and hget(hd, "Access-Control-Allow-Origin") == "http://good.example",
          "a 401 to an allowed origin must be readable by it")

    # metrics and logs
    check(metric(A, "quarrel_auth_failures_total") >= 10, "auth failures not counted")
    check(metric(A, 'quarrel_rate_limited_total{limit="rpm"}') >= 3, "rpm refusals not counted")
    check(metric(A, 'quarrel_rate_limited_total{limit="tpm"}') >= 1, "tpm refusals not counted")
    if subprocess.run(["which", "promtool"], capture_output=True).returncode == 0:
        body = req(A, "GET", "/metrics")[2]
        r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
        check(r.returncode == 0, f"promtool: {r.stdout.decode()} {r.stderr.decode()}")
    text = open(log_a).read()
    for k in (k_all, k_lim, k_tok, k_rot, k_rot2, k_late, k_rev):
        check(k[12:] not in text, "a key's secret is in the server log")

    # B: per-IP connections, /metrics behind the key, no CORS list
    pb, B, _ = start("--keys-file", KEYS, "--max-conns-per-ip", "2", "--metrics-auth", "1")
    expect_401(B, "/metrics", what="metrics-auth")
    check(metric(B, "quarrel_auth_failures_total", bearer(k_all)) >= 1, "/metrics with a key")
    st, hd, _ = req(B, "GET", "/healthz", headers={"Origin": "http://good.example"})
    check(hget(hd, "Access-Control-Allow-Origin") is None, "ACAO without --cors-origins")
    def hold():
        """A keep-alive connection whose request was answered 200: the server counts it. The
        slots of connections closed just before may be released a little later: retry."""
        deadline = time.time() + 10
        while True:
            h = socket.create_connection(("127.0.0.1", B), timeout=10)
            h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while b"}" not in got:
                chunk = h.recv(4096)
                if not chunk:
                    break
                got += chunk
            if got.startswith(b"HTTP/1.1 200"):
                return h
            h.close()
            check(time.time() < deadline, f"could not hold a connection: {got[:80]!r}")
            time.sleep(0.2)

    held = [hold(), hold()]
    st, hd, data = req(B, "GET", "/healthz")
    check(st == 429 and int(hget(hd, "Retry-After") or 0) >= 1, f"3rd connection from one IP: {st} {data[:100]!r}")
    for s in held:
        s.close()
    check(wait_until(lambda: req(B, "GET", "/healthz")[0] == 200, 5), "connection slots not released")
    check(metric(B, 'quarrel_rate_limited_total{limit="ip"}', bearer(k_all)) >= 1, "ip refusals not counted")

    # C: TLS with a self-signed certificate made here
    cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True, timeout=60)
    check(r.returncode == 0, f"openssl: {r.stderr.decode()}")
    pc, C, _ = start("--keys-file", KEYS, "--tls-cert", cert, "--tls-key", key, "--cors-origins", "*", scheme="https")
    ctx = ssl.create_default_context(cafile=cert)
    st, hd, _ = req(C, "GET", "/healthz", headers={"Origin": "http://any.example"}, tls_ctx=ctx)
    check(st == 200 and hget(hd, "Access-Control-Allow-Origin") == "*" and
          hget(hd, "Access-Control-Allow-Credentials") is None, f"https /healthz {st} {hd}")
    st, _, data = req(C, "GET", "/v1/models", headers=bearer(k_all), tls_ctx=ctx)
    check(st == 200, f"https with a key {st}")
    check(req(C, "GET", "/v1/models", tls_ctx=ctx)[0] == 401, "https without a key")
    try:   # plain HTTP to the TLS port gets no HTTP answer
        st = req(C, "GET", "/healthz")[0]
        check(False, f"plain HTTP on the TLS port answered {st}")
    except (http.client.HTTPException, OSError):
        pass
    ws = WS(C, protocols=["quarrel.key." + k_all], tls_ctx=ctx)
    m = ws.infer("t1", max_tokens=4)
    check(m["type"] == "inference" and m["payload"]["tokens_generated"] == 4, f"wss inference {m}")
    ws.close()
    ws = WS(C, tls_ctx=ctx)
    ws.send({"type": "auth", "payload": {"api_key": "qk-bad"}})
    unauthorized_then_close(ws, "wss bad key")

    for p in (pa, pb, pc):
        p.send_signal(signal.SIGTERM)
    for p in (pa, pb, pc):
        check(p.wait(timeout=30) == 0, "server exit status on SIGTERM")
    cleanup()
    print("auth: ok")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
        shutil.rmtree(TMP, ignore_errors=True)
