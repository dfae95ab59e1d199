#!/usr/bin/env python3
"""models_more_client.py -- the model registry's follow-ups on loopback (driven by
models_more.sh; stdlib only). Each part runs its own `quarrel serve` over a temporary
--models-dir of symlinks to ../shared/models (story = stories260K, tiny = llama-2-tiny-random,
gqa = llama-gqa-spm512-Q4_0) plus broken.gguf (not a GGUF):
  W  a lazy load asked over /ws runs off the WebSocket reactor: with every load slowed to
     LOAD_DELAY s (QUARREL_TEST_LOAD_DELAY_MS), a session streaming on a loaded model keeps
     getting tokens with no gap near the load time, a third session's status request is
     answered at once, and the loading session's generation then runs to its end; a stop
     for a generation still waiting for its model ends it as "cancelled"; a model that fails
     to load gives INFERENCE_ERROR.
  M  quarrel_webui_requests_total is labelled with the model each request addressed (by
     value per model, endpoint and status; "" for unknown names); promtool passes.
  X  --max-loaded 2: a failed load evicts nothing; while a third model loads both loaded
     ones stay loaded, and only once it is in is the least recently used one retired;
     draining versions are in quarrel_model_versions_draining and
     quarrel_models_memory_bytes{state="draining"}.
  D  --models-dir is rescanned: a file added later is served when a request names it
     (/api and /ws) and listed after SIGHUP; a removed file stays while loaded and is no
     longer listed once unloaded; then its name is a 404."""
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import SHARED, check, cleanup, promtool_check, metric, metrics_text  # noqa: E402
from serve_util import WebSocket, wait_until, run_tests  # noqa: E402
import models_client as mc  # noqa: E402  (start, stop, call, models, gen, Stream)

FILES = {"story": "stories260K.gguf", "tiny": "llama-2-tiny-random.gguf", "gqa": "llama-gqa-spm512-Q4_0.gguf"}
LOAD_DELAY = 2.0


def model_dir(tag, names, broken=False):
    d = os.path.join(mc.TMP, tag)
    os.makedirs(d)
    for n in names:
        link(d, n)
    if broken:
        with open(os.path.join(d, "broken.gguf"), "wb") as f:
            f.write(b"not a GGUF file")
    return d


def link(d, name):
    os.symlink(os.path.abspath(os.path.join(SHARED, "models", FILES[name])), os.path.join(d, name + ".gguf"))


def size(name):
    return os.path.getsize(os.path.join(SHARED, "models", FILES[name]))


def v1_ids(port):
    st, o = mc.call(port, "GET", "/v1/models")
    check(st == 200, f"/v1/models {st}")
    return [m["id"] for m in o["data"]]


def labelled(port, name, **labels):
    """The value of one labelled series (0 when absent)."""
    want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
    for line in metrics_text(port).splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    return 0.0


class WsReader(threading.Thread):
    """Reads one session's messages, stamping each with its arrival time."""

    def __init__(self, ws):
        super().__init__(daemon=True)
        self.ws, self.msgs, self.error = ws, [], None

    def run(self):
        try:
            while True:
                m = self.ws.recv()
                self.msgs.append((time.time(), m))
                if m["type"] == "inference" and m["payload"].get("complete") and m["payload"]["id"] == "last":
                    return
        except BaseException as e:  # noqa: BLE001  (closed by the test, or a failure it reports)
            self.error = e

    def final(self, gid):
        for _, m in self.msgs:
            if m["type"] == "inference" and m["payload"]["id"] == gid and m["payload"]["complete"]:
                return m["payload"]
        return None


# ---------------------------------------------------------------- W: loads off the reactor

def test_ws_lazy_off_reactor():
    d = model_dir("w", ["story", "tiny"], broken=True)
    p, port, log = mc.start("--models-dir", d, "--parallel", "2", "-c", "4096",
                            env={"QUARREL_TEST_LOAD_DELAY_MS": str(int(LOAD_DELAY * 1000))})
    mc.gen(port, "story", "Hello", 2)   # story loaded (over HTTP: a connection thread waits)
    a = WebSocket(port)
    ra = WsReader(a)
    ra.start()
    a.send({"type": "inference", "payload": {"prompt": "Once upon a time", "model": "story", "id": "last",
                                             "max_tokens": 4000, "ignore_eos": True, "temperature": 0}})
    check(wait_until(lambda: len(ra.msgs) >= 20, 30), f"session A does not stream: {ra.msgs[:3]} {ra.error}")
    b, c = WebSocket(port), WebSocket(port)
    rb = WsReader(b)
    rb.start()
    t_b = time.time()
    b.send({"type": "inference", "payload": {"prompt": "Once upon a time", "model": "tiny", "id": "last",
                                             "max_tokens": 8, "temperature": 0}})
    time.sleep(0.3)   # tiny is loading now
    t_c = time.time()
    c.send({"type": "status"})
    st = c.recv()
    t_st = time.time() - t_c
    check(st["type"] == "status" and t_st < 0.5 * LOAD_DELAY, f"status during another session's load took {t_st:.2f} s")
    check(wait_until(lambda: rb.final("last") is not None, 30), f"session B never completed: {rb.msgs} {rb.error}")
    fb = rb.final("last")
    t_done = next(t for t, m in rb.msgs if m["type"] == "inference")
    check(fb["finish_reason"] == "length" and fb["tokens_generated"] == 8, f"B's generation on tiny: {fb}")
    check(t_done - t_b >= LOAD_DELAY * 0.9, f"B got output {t_done - t_b:.2f} s after asking: was the load slowed?")
    # A during B's load: tokens kept coming (no gap anywhere near the load time)
    during = [t for t, m in ra.msgs if m["type"] == "inference" and t_b - 0.2 <= t <= t_b + LOAD_DELAY]
    check(ra.final("last") is None, "A ended before B's load did (too short to test)")
    gaps = [y - x for x, y in zip(during, during[1:])]
    check(len(during) >= 10 and max(gaps) < 0.5 * LOAD_DELAY,
          f"A's stream stalled during B's load: {len(during)} tokens, largest gap {max(gaps or [0]):.2f} s")
    print(f"models_more: W: {len(during)} tokens to A during B's {LOAD_DELAY:.1f} s load, largest gap "
          f"{max(gaps) * 1e3:.0f} ms; status answered in {t_st * 1e3:.0f} ms", file=sys.stderr)
    a.send({"type": "stop", "payload": {"id": "last"}})
    check(wait_until(lambda: ra.final("last") is not None, 30), "A did not end after stop")

    # a stop for a generation still waiting for its model; a model that does not load
    mc.call(port, "POST", "/api/models/tiny/unload")
    c.send({"type": "inference", "payload": {"prompt": "x", "model": "tiny", "id": "p", "max_tokens": 4}})
    c.send({"type": "status"})
    m = c.recv()
    check(m["type"] == "status" and m["payload"]["active"] == ["p"], f"pending generation in status: {m}")
    c.send({"type": "stop", "payload": {"id": "p"}})
    m = c.recv()
    check(m["type"] == "inference" and m["payload"]["id"] == "p" and m["payload"]["complete"]
          and m["payload"]["finish_reason"] == "cancelled" and m["payload"]["tokens_generated"] == 0,
          f"stop while pending: {m}")
    c.send({"type": "inference", "payload": {"prompt": "x", "model": "broken", "id": "bad"}})
    m = c.recv()
    check(m["type"] == "error" and m["payload"]["code"] == "INFERENCE_ERROR" and m["payload"]["request_id"] == "bad"
          and "could not be loaded" in m["payload"]["message"], f"broken model over /ws: {m}")
    # the cancelled one's load still ends (and is usable)
    check(wait_until(lambda: mc.models(port)["tiny"]["status"] == "loaded", 30), "tiny's load did not end")
    for s in (a, b, c):
        s.s.close()
    mc.stop(p, "W")


# ---------------------------------------------------------------- M: per-model labels

def test_metric_labels():
    d = model_dir("m", ["story", "tiny"])
    p, port, log = mc.start("--models-dir", d, "--parallel", "2")
    for _ in range(2):
        mc.gen(port, "story", "Hello", 2)
    mc.gen(port, None, "Hello", 2)          # the default model: story (first by name)
    mc.gen(port, "tiny.gguf", "Hello", 2)   # either spelling counts under the registry name
    st, _ = mc.call(port, "POST", "/v1/chat/completions",
                    {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    check(st == 200, f"chat on tiny {st}")
    s = mc.Stream(port, {"prompt": "Hello", "model": "tiny", "max_tokens": 3})
    s.start()
    s.join(60)
    check(s.status == 200, f"stream on tiny {s.status}")
    st, _ = mc.call(port, "POST", "/api/generate", {"prompt": "x", "model": "nope"})
    check(st == 404, f"unknown model {st}")
    st, _ = mc.call(port, "POST", "/api/models/tiny/unload")   # admin routes carry the model too
    check(st == 200, f"admin unload of tiny {st}")
    st, _ = mc.call(port, "POST", "/api/models/nope/load")
    check(st == 404, f"admin load of an unknown model {st}")
    want = {("story", "/api/generate", 200): 3, ("tiny", "/api/generate", 200): 1,
            ("tiny", "/v1/chat/completions", 200): 1, ("tiny", "/api/stream", 200): 1, ("", "/api/generate", 404): 1,
            ("tiny", "/api/stream", 404): 0, ("tiny", "other", 200): 1, ("", "other", 404): 1}
    for (model, ep, status), n in want.items():
        got = labelled(port, "quarrel_webui_requests_total", model=model, endpoint=ep, status=status)
        check(got == n, f"quarrel_webui_requests_total{{model={model!r},endpoint={ep},status={status}}} = {got}, want {n}")
    promtool_check(port)
    mc.stop(p, "M")


# ---------------------------------------------------------------- X: --max-loaded

def test_max_loaded():
    d = model_dir("x", ["story", "tiny", "gqa"], broken=True)
    p, port, log = mc.start("--models-dir", d, "--max-loaded", "2", "--parallel", "2",
                            env={"QUARREL_TEST_LOAD_DELAY_MS": "1000"})
    mc.gen(port, "story", "Hello", 2)
    mc.gen(port, "tiny", "Hello", 2)
    st, o = mc.call(port, "POST", "/api/generate", {"prompt": "x", "model": "broken"})
    check(st == 500, f"broken {st} {o}")
    ms = mc.models(port)
    check(ms["story"]["status"] == "loaded" and ms["tiny"]["status"] == "loaded"
          and metric(port, "quarrel_model_unloads_total") == 0 and metric(port, "quarrel_models_loaded") == 2,
          f"a failed load evicted a model: {[(n, m['status']) for n, m in ms.items()]}")
    check(labelled(port, "quarrel_models_memory_bytes", state="current") == size("story") + size("tiny")
          and labelled(port, "quarrel_models_memory_bytes", state="draining") == 0, "memory gauges, two loaded")
    # while gqa loads, story and tiny both still serve; then the LRU one (story) goes
    t = threading.Thread(target=lambda: mc.gen(port, "gqa", "Hello", 2), daemon=True)
    t.start()
    check(wait_until(lambda: mc.models(port)["gqa"]["status"] == "loading", 10), "gqa not loading")
    ms = mc.models(port)
    check(ms["story"]["status"] == "loaded" and ms["tiny"]["status"] == "loaded",
          f"room made before the load: {[(n, m['status']) for n, m in ms.items()]}")
    check(mc.gen(port, "story", "Hello", 2)["text"] is not None, "story serves during gqa's load")
    mc.gen(port, "tiny", "Hello", 2)   # now story is the least recently used
    t.join(30)
    ms = mc.models(port)
    check([ms[n]["status"] for n in ("gqa", "story", "tiny")] == ["loaded", "unloaded", "loaded"]
          and metric(port, "quarrel_model_unloads_total") == 1,
          f"after gqa's load: {[(n, m['status']) for n, m in ms.items()]}")
    # a draining version counts in the memory picture (outside the bound)
    s = mc.Stream(port, {"prompt": "Once upon a time", "model": "tiny", "max_tokens": 500, "ignore_eos": True,
                         "temperature": 0})
    s.start()
    check(s.first.wait(30) and s.done is None, "tiny stream did not start")
    st, o = mc.call(port, "POST", "/api/models/tiny/unload")
    check(st == 200 and o["status"] == "draining", f"unload of a busy model {st} {o}")
    check(metric(port, "quarrel_model_versions_draining") == 1
          and labelled(port, "quarrel_models_memory_bytes", state="draining") == size("tiny")
          and labelled(port, "quarrel_models_memory_bytes", state="current") == size("gqa")
          and metric(port, "quarrel_models_loaded") == 1, "gauges with a draining version")
    promtool_check(port)
    s.join(120)
    check(s.status == 200 and s.done, f"drained stream {s.status} {s.done}")
    check(wait_until(lambda: metric(port, "quarrel_model_versions_draining") == 0, 10), "drained version not freed")
    mc.stop(p, "X")


# ---------------------------------------------------------------- D: rescans

def test_rescan():
    d = model_dir("d", ["story"])
    p, port, log = mc.start("--models-dir", d)
    check(v1_ids(port) == ["story"], f"at start {v1_ids(port)}")
    # bogus names list the directory only while its mtime shows a change (a listing within
    # a second of the mtime counts as racy and is redone once)
    time.sleep(2.1)
    scans = metric(port, "quarrel_model_dir_scans_total")
    for i in range(30):
        st, o = mc.call(port, "POST", "/api/generate", {"prompt": "x", "model": f"nope-{i}"})
        check(st == 404, f"bogus name {i}: {st} {o}")
    more = metric(port, "quarrel_model_dir_scans_total") - scans
    check(0 <= more <= 1, f"30 unknown names on an unchanged directory listed it {more} times")
    link(d, "tiny")
    o = mc.gen(port, "tiny", "Hello", 2)   # unknown -> rescan -> served
    check(o["tokens_generated"] == 2, f"tiny after it appeared {o}")
    check(metric(port, "quarrel_model_dir_scans_total") > scans + more, "a changed directory is listed again")
    link(d, "gqa")
    p.send_signal(signal.SIGHUP)
    check(wait_until(lambda: v1_ids(port) == ["gqa", "story", "tiny"], 10), f"after SIGHUP {v1_ids(port)}")
    check(mc.models(port)["gqa"]["status"] == "unloaded", "a rescan loads nothing")
    os.unlink(os.path.join(d, "gqa.gguf"))
    os.unlink(os.path.join(d, "tiny.gguf"))
    p.send_signal(signal.SIGHUP)
    check(wait_until(lambda: v1_ids(port) == ["story", "tiny"], 10), f"gqa (unloaded) dropped, tiny (loaded) kept: "
          f"{v1_ids(port)}")
    check(mc.models(port)["tiny"]["status"] == "loaded" and mc.gen(port, "tiny", "Hello", 2), "tiny still serves")
    st, o = mc.call(port, "POST", "/api/models/tiny/unload")
    check(st == 200, f"unload {st} {o}")
    check(v1_ids(port) == ["story"], f"tiny listed after its unload: {v1_ids(port)}")
    st, o = mc.call(port, "POST", "/api/generate", {"prompt": "x", "model": "tiny"})
    check(st == 404, f"a removed model {st} {o}")
    # /ws finds a file added later too
    link(d, "gqa")
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": "Hello", "model": "gqa", "id": "g", "max_tokens": 2}})
    while True:
        m = ws.recv()
        check(m["type"] == "inference", f"ws on a new file: {m}")
        if m["payload"]["complete"]:
            break
    check(m["payload"]["tokens_generated"] == 2, f"ws on gqa {m}")
    ws.s.close()
    check("models_rescanned" in open(log, encoding="utf-8", errors="replace").read(), "rescans are logged")
    mc.stop(p, "D")


def main():
    run_tests("models_more", (test_ws_lazy_off_reactor, test_metric_labels, test_max_loaded, test_rescan))


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
        shutil.rmtree(mc.TMP, ignore_errors=True)
