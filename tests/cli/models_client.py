#!/usr/bin/env python3
"""models_client.py -- the model registry of `quarrel serve` end to end on loopback (driven by
models.sh; stdlib only). Real servers on --port 0 over a temporary --models-dir of symlinks to
../shared/models (story = stories260K, gqa = llama-gqa-spm512-Q4_0, tiny = llama-2-tiny-random)
plus broken.gguf (not a GGUF) and a non-.gguf file that must be ignored:
  R (--max-loaded 2): names in /v1/models and /api/models, all unloaded at start; lazy load on
    first request (story's greedy text = the shared golden); LRU eviction of the idle least
    recently used model; with both loaded models busy, the LRU one drains (status "draining")
    and its running stream still ends complete; unknown model -> 404 on /api, /v1 (both
    routes, OpenAI error shape) and MODEL_NOT_FOUND on /ws; a file that fails to load -> 500
    naming the cause, its error in /api/models; admin unload then lazy reload (the next version);
    model metrics (quarrel_models_loaded, loads/unloads/load failures) and promtool.
  P (--preload --max-loaded 2, with -m too): -m's model and the first directory model are
    loaded at start, the rest not; -m's name is its file name.
  K (keys): admin routes: no key 401, non-admin key 403, admin key 200; reads need any key.
  L (no keys, --host 0.0.0.0): admin from loopback 200, from this host's non-loopback
    address 403; swap paths outside --models-dir 403, a missing file 400.
  S (--parallel 4): 8 concurrent streams on "story" with long outputs; "story" is swapped to
    gqa.gguf while they run: every stream completes (200) with exactly the old model's solo
    greedy text, requests after the swap give gqa's solo text (no stale prefix cache), the
    old version is freed once its streams end (only the new version in /api/models, its
    memory = gqa's file), quarrel_model_swaps_total counts it; a body-less swap reloads the
    path; a swap to a broken file is a 500 and keeps the current version; SIGTERM exits 0 (the server
    runs under ASan with leak detection in `make test`)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import BIN, SHARED, GOLDEN, check, fail, servers, logs, cleanup, promtool_check, metric  # noqa: E402
from serve_util import start as serve_start, run_tests, keys_cli  # noqa: E402
from serve_util import WebSocket, wait_until  # noqa: E402

TMP = tempfile.mkdtemp(prefix="quarrel-models-")
DIR = os.path.join(TMP, "models")
FILES = {"story": "stories260K.gguf", "gqa": "llama-gqa-spm512-Q4_0.gguf", "tiny": "llama-2-tiny-random.gguf"}


def setup_dir():
    os.makedirs(DIR)
    for name, f in FILES.items():
        os.symlink(os.path.abspath(os.path.join(SHARED, "models", f)), os.path.join(DIR, name + ".gguf"))
    with open(os.path.join(DIR, "broken.gguf"), "wb") as f:
        f.write(b"this is not a GGUF file at all")
    with open(os.path.join(DIR, "notes.txt"), "w") as f:
        f.write("ignored: not *.gguf\n")


def start(*args, env=None):
    return serve_start(*args, env=env, model=None, tag="models", tmpdir=TMP)


def stop(p, name):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail(f"{name}: no exit within 30 s of SIGTERM")
    check(rc == 0, f"{name}: exit status {rc} after SIGTERM (ASan leak report or crash?): see {logs[servers.index(p)]}")


def call(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=120):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    h = {"Content-Type": "application/json", **(headers or {})}
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    try:
        return r.status, json.loads(payload) if payload else None
    except ValueError:
        fail(f"{method} {path}: not JSON: {payload[:200]!r}")


def models(port, **kw):
    st, o = call(port, "GET", "/api/models", **kw)
    check(st == 200, f"/api/models -> {st} {o}")
    return {m["name"]: m for m in o["models"]}


def gen(port, model, prompt, n, **extra):
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0, **extra}
    if model is not None:
        body["model"] = model
    st, o = call(port, "POST", "/api/generate", body)
    check(st == 200, f"generate {model}: {st} {o}")
    return o


def is_error_shape(o, status):
    return isinstance(o, dict) and set(o) == {"error"} and o["error"]["code"] == status and o["error"]["message"]


class Stream(threading.Thread):
    """One /api/stream request read to its end: status, concatenated text, done event."""

    def __init__(self, port, body):
        super().__init__(daemon=True)
        self.port, self.body = port, body
        self.status, self.text, self.done, self.first = None, "", None, threading.Event()

    def run(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            c.request("POST", "/api/stream", body=json.dumps(self.body), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.status = r.status
            for line in r:
                line = line.decode("utf-8").rstrip("\n")
                if not line.startswith("data: "):
                    continue
                ev = json.loads(line[6:])
                if ev.get("type") == "token":
                    self.text += ev["text"]
                    self.first.set()
                elif ev.get("type") == "done":
                    self.done = ev
            c.close()
        except Exception as e:  # reported by the caller through status/done
            self.status = f"exception {e!r}"
        self.first.set()


def size(name):
    return os.path.getsize(os.path.join(SHARED, "models", FILES[name]))


# ---------------------------------------------------------------- R: registry, lazy, LRU

def test_registry():
    p, port, log = start("--models-dir", DIR, "--max-loaded", "2", "--parallel", "2")
    st, o = call(port, "GET", "/v1/models")
    check(st == 200 and [m["id"] for m in o["data"]] == ["broken", "gqa", "story", "tiny"], f"/v1/models {o}")
    ms = models(port)
    check(all(m["status"] == "unloaded" and m["loaded"] is False and m["memory_bytes"] == 0 and m["version"] is None
              for m in ms.values()), f"nothing loaded at start: {ms}")
    check(ms["story"]["path"] == os.path.join(DIR, "story.gguf"), f"story path {ms['story']}")
    check(metric(port, "quarrel_models_loaded") == 0, "models_loaded at start")

    # lazy: the first request loads story; its greedy text is the golden one
    o = gen(port, "story", GOLDEN["prompt"], len(GOLDEN["greedy"]))
    check(o["text"] == GOLDEN["greedy_text"], f"story greedy text {o['text']!r}")
    ms = models(port)
    s = ms["story"]
    check(s["status"] == "loaded" and s["loaded"] and s["version"] == 1 and s["memory_bytes"] == size("story")
          and s["architecture"] == "llama" and len(s["versions"]) == 1 and s["versions"][0]["status"] == "current",
          f"story after first use: {s}")
    check(ms["gqa"]["status"] == "unloaded", "gqa loaded too early")
    st, one = call(port, "GET", "/api/models/story.gguf")
    check(st == 200 and one["name"] == "story" and one["version"] == 1, f"/api/models/story.gguf {st} {one}")

    gen(port, "gqa", "Hello", 4)
    gen(port, "story", "Hello", 4)              # story is now more recent than gqa
    gen(port, "tiny", "Hello", 4)               # over --max-loaded 2: gqa (LRU, idle) goes
    ms = models(port)
    check([ms[n]["status"] for n in ("gqa", "story", "tiny")] == ["unloaded", "loaded", "loaded"],
          f"LRU eviction: {[(n, m['status']) for n, m in ms.items()]}")
    check(metric(port, "quarrel_models_loaded") == 2 and metric(port, "quarrel_model_unloads_total") == 1
          and metric(port, "quarrel_model_loads_total") == 3, "model metrics after an eviction")

    # both loaded models busy: the LRU one (story, whose stream started first) drains, never killed
    long_body = {"prompt": "Once upon a time", "max_tokens": 600, "ignore_eos": True, "temperature": 0}
    s_story = Stream(port, dict(long_body, model="story"))
    s_story.start()
    s_story.first.wait(60)
    s_tiny = Stream(port, dict(long_body, model="tiny"))
    s_tiny.start()
    s_tiny.first.wait(60)
    check(s_story.done is None and s_tiny.done is None, "streams ended before the eviction (too fast to test)")
    gen(port, "gqa", "Hello", 4)
    ms = models(port)
    check(ms["story"]["status"] == "draining" and ms["story"]["loaded"] is False
          and ms["story"]["versions"][0]["status"] == "draining" and ms["story"]["versions"][0]["running"] >= 1
          and ms["gqa"]["status"] == "loaded" and ms["tiny"]["status"] == "loaded",
          f"busy LRU model drains: {[(n, m['status']) for n, m in ms.items()]}")
    s_story.join(120)
    s_tiny.join(120)
    for name, s in (("story", s_story), ("tiny", s_tiny)):
        check(s.status == 200 and s.done and s.done["finish_reason"] == "length" and s.done["tokens_generated"] == 600,
              f"{name} stream across an eviction: {s.status} {s.done}")
    check(wait_until(lambda: models(port)["story"]["status"] == "unloaded", 10), "drained story not freed")

    # unknown names
    st, o = call(port, "POST", "/api/generate", {"prompt": "x", "model": "gpt-4"})
    check(st == 404 and is_error_shape(o, 404) and "gpt-4" in o["error"]["message"], f"/api/generate unknown {st} {o}")
    st, o = call(port, "POST", "/api/stream", {"prompt": "x", "model": "gpt-4"})
    check(st == 404 and is_error_shape(o, 404), f"/api/stream unknown {st} {o}")
    st, o = call(port, "POST", "/v1/completions", {"prompt": "x", "model": "gpt-4"})
    check(st == 404 and is_error_shape(o, 404), f"/v1/completions unknown {st} {o}")
    st, o = call(port, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "model": "gpt-4"})
    check(st == 404 and is_error_shape(o, 404), f"/v1/chat/completions unknown {st} {o}")
    st, o = call(port, "GET", "/api/models/gpt-4")
    check(st == 404 and is_error_shape(o, 404), f"/api/models/unknown {st} {o}")
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "x", "model": "gpt-4", "id": "u"}})
    m = ws.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "MODEL_NOT_FOUND" and m["payload"]["request_id"] == "u",
          f"ws unknown model {m}")
    ws.send({"type": "inference", "payload": {"prompt": "Once upon a time", "model": "story", "id": "k",
                                              "max_tokens": 4, "temperature": 0}})
    while True:   # /ws loads on demand too
        m = ws.recv()
        if m["type"] == "inference" and m["payload"]["complete"]:
            break
        check(m["type"] == "inference", f"ws lazy load: {m}")
    check(m["payload"]["finish_reason"] == "length", f"ws on story {m}")
    ws.s.close()

    # a file that does not load: a clear 500, the error kept in /api/models
    st, o = call(port, "POST", "/api/generate", {"prompt": "x", "model": "broken"})
    check(st == 500 and is_error_shape(o, 500) and "broken" in o["error"]["message"]
          and "could not be loaded" in o["error"]["message"], f"broken model {st} {o}")
    b = models(port)["broken"]
    check(b["status"] == "unloaded" and b["error"], f"broken in /api/models {b}")
    check(metric(port, "quarrel_model_load_failures_total") == 1, "load failure metric")

    # admin load, unload (loopback, no keys), then a lazy reload makes the next version
    st, o = call(port, "POST", "/api/models/gqa/load")
    check(st == 200 and o["status"] == "loaded", f"load {st} {o}")
    v = o["version"]
    st, o = call(port, "POST", "/api/models/gqa/load")
    check(st == 200 and o["version"] == v, f"load of a loaded model is a no-op {st} {o}")
    st, o = call(port, "POST", "/api/models/gqa/unload")
    check(st == 200 and o["status"] == "unloaded" and o["versions"] == [] and o["version"] is None, f"unload {st} {o}")
    gen(port, "gqa", "Hello", 2)
    g = models(port)["gqa"]
    check(g["status"] == "loaded" and g["version"] == v + 1, f"lazy reload after unload {g}")
    st, o = call(port, "POST", "/api/models/nope/load")
    check(st == 404 and is_error_shape(o, 404), f"load unknown {st} {o}")
    promtool_check(port)
    stop(p, "R")


# ---------------------------------------------------------------- P: preload with -m

def test_preload():
    m_path = os.path.join(SHARED, "models", "stories260K.gguf")
    p, port, log = start("-m", m_path, "--models-dir", DIR, "--preload", "--max-loaded", "2")
    ms = models(port)
    check(list(ms) == ["stories260K.gguf", "broken", "gqa", "story", "tiny"], f"registry order {list(ms)}")
    check([ms[n]["status"] for n in ms] == ["loaded", "unloaded", "loaded", "unloaded", "unloaded"]
          and ms["broken"]["error"], f"--preload within --max-loaded 2: {[(n, m['status']) for n, m in ms.items()]}")
    o = gen(port, None, GOLDEN["prompt"], len(GOLDEN["greedy"]))   # the default model is -m's
    check(o["text"] == GOLDEN["greedy_text"], "default model is -m's")
    stop(p, "P")
    # the environment variables name the same settings
    p, port, log = start(env={"QUARREL_MODELS_DIR": DIR, "QUARREL_PRELOAD": "1", "QUARREL_MAX_LOADED": "1"})
    ms = models(port)
    check([ms[n]["status"] for n in ms] == ["unloaded", "loaded", "unloaded", "unloaded"],
          f"QUARREL_* env: {[(n, m['status']) for n, m in ms.items()]}")
    stop(p, "P-env")
    r = subprocess.run([BIN, "serve", "--models-dir", os.path.join(TMP, "nowhere")], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 1 and "nowhere" in r.stderr, f"missing --models-dir: {r.returncode} {r.stderr}")


# ---------------------------------------------------------------- K, L: admin auth

def test_admin_auth():
    keys = os.path.join(TMP, "keys.json")

    def mk(*a):
        return keys_cli(keys, *a)
    admin = mk("create", "--name", "boss", "--admin")
    user = mk("create", "--name", "user")
    p, port, log = start("--models-dir", DIR, "--keys-file", keys)
    for op in ("load", "unload", "swap"):
        st, o = call(port, "POST", f"/api/models/story/{op}")
        check(st == 401 and is_error_shape(o, 401), f"{op} without a key {st} {o}")
        st, o = call(port, "POST", f"/api/models/story/{op}", headers={"Authorization": "Bearer " + user})
        check(st == 403 and is_error_shape(o, 403) and "admin" in o["error"]["message"], f"{op} non-admin {st} {o}")
    st, o = call(port, "POST", "/api/models/story/load", headers={"Authorization": "Bearer " + admin})
    check(st == 200 and o["status"] == "loaded", f"load with the admin key {st} {o}")
    st, o = call(port, "POST", "/api/models/story/swap", {}, headers={"X-API-Key": admin})
    check(st == 200 and o["version"] == 2, f"swap with the admin key {st} {o}")
    st, o = call(port, "GET", "/api/models", headers={"Authorization": "Bearer " + user})
    check(st == 200, f"reading /api/models needs any key: {st}")
    check(call(port, "GET", "/api/models")[0] == 401, "/api/models without a key")
    stop(p, "K")

    p, port, log = start("--models-dir", DIR, "--host", "0.0.0.0")
    st, o = call(port, "POST", "/api/models/story/load")
    check(st == 200, f"no keys, loopback admin {st} {o}")
    st, o = call(port, "POST", "/api/models/story/swap", {"path": "/etc/passwd"})
    check(st == 403 and is_error_shape(o, 403), f"swap outside the models dir {st} {o}")
    st, o = call(port, "POST", "/api/models/story/swap", {"path": "../models/../../story.gguf"})
    check(st == 403 and is_error_shape(o, 403), f"swap climbing out with .. {st} {o}")
    st, o = call(port, "POST", "/api/models/story/swap", {"path": "missing.gguf"})
    check(st == 400 and is_error_shape(o, 400), f"swap to a missing file {st} {o}")
    st, o = call(port, "POST", "/api/models/story/swap", {"path": 5})
    check(st == 400 and is_error_shape(o, 400), f"swap with a bad path field {st} {o}")
    ip = None
    for target in ("10.255.255.255", "192.0.2.1", "198.51.100.1"):
        try:   # this host's own non-loopback address: the route's source (no packet is sent)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((target, 9))
            ip = s.getsockname()[0]
            s.close()
            break
        except OSError:
            pass
    if ip and not ip.startswith("127."):
        st, o = call(port, "POST", "/api/models/story/load", host=ip)
        check(st == 403 and is_error_shape(o, 403) and "loopback" in o["error"]["message"],
              f"no keys, admin from {ip}: {st} {o}")
        check(call(port, "GET", "/api/models", host=ip)[0] == 200, "reads stay open without keys")
    else:
        print("models: no non-loopback address here; the remote half of the loopback rule is unchecked",
              file=sys.stderr)
    stop(p, "L")


# ---------------------------------------------------------------- S: swap under load

def test_swap_under_load():
    p, port, log = start("--models-dir", DIR, "--parallel", "4", "--queue-size", "16")
    prompt, n = "Once upon a time, there was a little", 240
    old = gen(port, "story", prompt, n, ignore_eos=True)["text"]
    new = gen(port, "gqa", prompt, n, ignore_eos=True)["text"]
    check(old != new, "the two models write the same text")
    body = {"prompt": prompt, "model": "story", "max_tokens": n, "ignore_eos": True, "temperature": 0}
    streams = [Stream(port, body) for _ in range(8)]
    for s in streams:
        s.start()
    # every stream admitted (each holds a reference to version 1) and some text out
    check(wait_until(lambda: models(port)["story"]["versions"][0]["running"] == 8, 30), "8 streams not admitted")
    check(wait_until(lambda: any(s.text for s in streams), 30), "no stream started")
    st, o = call(port, "POST", "/api/models/story/swap", {"path": "gqa.gguf"})
    check(st == 200 and o["version"] == 2 and o["path"] == os.path.join(DIR, "gqa.gguf"), f"swap {st} {o}")
    vs = {v["version"]: v for v in o["versions"]}
    check(vs.get(2, {}).get("status") == "current" and vs.get(1, {}).get("status") == "draining"
          and vs[1]["running"] > 0, f"the old version must still be running at the swap: {o['versions']}")
    check(o["status"] == "loaded" and o["memory_bytes"] == size("story") + size("gqa"), f"both versions mapped {o}")
    # new requests go to the new version at once, even the same prompt (no stale prefix cache)
    after = gen(port, "story", prompt, n, ignore_eos=True)["text"]
    check(after == new, f"after the swap: {after[:60]!r} vs gqa {new[:60]!r}")
    for s in streams:
        s.join(120)
    for i, s in enumerate(streams):
        check(s.status == 200 and s.done and s.done["finish_reason"] == "length" and s.done["tokens_generated"] == n,
              f"stream {i}: {s.status} {s.done}")
        check(s.text == old, f"stream {i} text differs from the old model's solo output: {s.text[:60]!r}")
    # the old version is freed once its last stream ended
    check(wait_until(lambda: [v["version"] for v in models(port)["story"]["versions"]] == [2], 10),
          f"old version not freed: {models(port)['story']}")
    s = models(port)["story"]
    check(s["memory_bytes"] == size("gqa") and s["version"] == 2, f"story after the swap {s}")
    check(metric(port, "quarrel_model_swaps_total") == 1, "swap metric")
    # a swap without a body reloads the current path
    st, o = call(port, "POST", "/api/models/story/swap")
    check(st == 200 and o["version"] == 3 and o["path"] == os.path.join(DIR, "gqa.gguf"), f"reload swap {st} {o}")
    check(gen(port, "story", prompt, 16)["text"] == gen(port, "gqa", prompt, 16)["text"], "after the reload swap")
    # a swap to a file that does not load: 500, and the current version stays
    st, o = call(port, "POST", "/api/models/story/swap", {"path": "broken.gguf"})
    check(st == 500 and is_error_shape(o, 500) and "could not be loaded" in o["error"]["message"], f"broken swap {st} {o}")
    s = models(port)["story"]
    check(s["status"] == "loaded" and s["version"] == 3 and s["error"], f"story after a failed swap {s}")
    check(gen(port, "story", prompt, 16)["text"] == gen(port, "gqa", prompt, 16)["text"], "after the failed swap")
    stop(p, "S")


def main():
    setup_dir()
    run_tests("models", (test_registry, test_preload, test_admin_auth, test_swap_under_load))
    cleanup()


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
