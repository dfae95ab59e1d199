#!/usr/bin/env python3
"""limits_client.py -- checks driven by limits.sh (stdlib only), on real servers on --port 0:
  1. --max-conns 2: with two keep-alive connections held, a third connection's request is
     answered 503 + Retry-After in the error shape (not a silent close); once they close,
     requests work again.
  2. A WebSocket authenticated with key "doomed" (subprotocol), another with key "fine":
     revoking "doomed" and sending SIGHUP ends the first session with UNAUTHORIZED then
     close 1008 within a few seconds; the second keeps answering.
  3. Key "tok" (--tpm 20): a streamed WebSocket generation whose connection is dropped
     after 25 tokens still charges them: the key's next request is refused (429)."""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import check, cleanup, start, keys_cli, wait_until  # noqa: E402
import auth_client  # noqa: E402
from auth_client import WS, req, hget, bearer, unauthorized_then_close  # noqa: E402

os.rmdir(auth_client.TMP)   # made when auth_client is imported; unused here

TMP = tempfile.mkdtemp(prefix="quarrel-limits-")
KEYS = os.path.join(TMP, "keys.json")


def keys(*args):
    return keys_cli(KEYS, *args)


def hold(port):
    """A keep-alive connection whose request was answered 200 (so the server counts it)."""
    h = socket.create_connection(("127.0.0.1", port), timeout=10)
    h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"}" not in got:
        chunk = h.recv(4096)
        check(chunk, f"held connection closed: {got[:80]!r}")
        got += chunk
    check(got.startswith(b"HTTP/1.1 200"), f"held connection: {got[:80]!r}")
    return h


def max_conns():
    _, port, _ = start("--max-conns", "2")
    held = [hold(port), hold(port)]
    st, hd, data = req(port, "GET", "/healthz")
    check(st == 503, f"3rd connection with --max-conns 2: {st} {data[:200]!r}")
    check(int(hget(hd, "Retry-After") or 0) >= 1, f"503 without Retry-After: {hd}")
    e = json.loads(data)["error"]
    check(e["code"] == 503 and "connections" in e["message"], f"503 error shape {e}")
    for h in held:
        h.close()
    check(wait_until(lambda: req(port, "GET", "/healthz")[0] == 200, 5),
          "connections not released after the held ones closed")


def revoked_ws(proc, port):
    doomed, fine = keys("create", "--name", "doomed"), keys("create", "--name", "fine")
    proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while req(port, "GET", "/v1/models", headers=bearer(fine))[0] != 200:
        check(time.time() < deadline, "new keys not loaded after SIGHUP")
        time.sleep(0.1)
    ws_d = WS(port, protocols=["quarrel.key." + doomed])
    ws_f = WS(port, protocols=["quarrel.key." + fine])
    m = ws_d.infer("d1")
    check(m["type"] == "inference" and m["payload"]["complete"], f"doomed key before revocation: {m}")
    keys("revoke", "doomed")
    proc.send_signal(signal.SIGHUP)
    ws_d.s.settimeout(5)
    try:
        unauthorized_then_close(ws_d, "ws whose key was revoked")
    except OSError:
        check(False, "a session whose key was revoked stayed open 5 s after the reload")
    m = ws_f.infer("f1")
    check(m["type"] == "inference" and m["payload"]["complete"], f"other key's session after the reload: {m}")
    ws_f.close()


def cut_ws_charged(port):
    tok = keys("create", "--name", "tok", "--tpm", "20")
    deadline = time.time() + 5
    while req(port, "GET", "/v1/models", headers=bearer(tok))[0] != 200:
        check(time.time() < deadline, "key 'tok' not loaded (file change)")
        time.sleep(0.2)
    ws = WS(port, protocols=["quarrel.key." + tok])
    ws.send({"type": "inference", "payload": {"id": "long", "prompt": "Once upon a time", "max_tokens": 400,
                                              "ignore_eos": True, "temperature": 0, "stream": True}})
    n = 0
    while n < 25:
        m = ws.recv()
        check(m["type"] == "inference" and not m["payload"].get("complete"), f"stream ended early: {m}")
        n += 1
    ws.s.close()   # the connection drops mid-generation: the job is cancelled
    gen = {"prompt": "Once upon a time", "max_tokens": 1, "temperature": 0}
    deadline = time.time() + 5
    while True:   # the cancel lands within a step; the charge when the job ends
        st, hd, data = req(port, "POST", "/api/generate", gen, bearer(tok))
        if st == 429:
            break
        check(st == 200 and time.time() < deadline, f"tokens of a dropped ws generation were not charged: {st} {data[:200]!r}")
        time.sleep(0.2)
    check(b"generated tokens" in data, f"429 for another reason: {data[:200]!r}")


def main():
    max_conns()
    keys("create", "--name", "admin")
    proc, port, _ = start("--keys-file", KEYS, "--parallel", "2")
    revoked_ws(proc, port)
    cut_ws_charged(port)
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=30) == 0, "server exit status on SIGTERM")
    print("limits: ok")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
        shutil.rmtree(TMP, ignore_errors=True)
