#!/usr/bin/env python3
"""serve_logs.py -- what `quarrel serve` writes to its log about requests (driven by
serve_logs.sh): by default prompts, chat messages (HTTP and WebSocket) and generated text
appear only as "[redacted N bytes]"; with --log-prompts (or QUARREL_LOG_PROMPTS=1) they
appear as sent and generated. Credentials never appear in either mode: an Authorization
or X-Api-Key header is named in the request line with the value "[redacted]". A bad
QUARREL_LOG_PROMPTS value is a usage error (exit 2)."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import BIN, MODEL, WebSocket, check, cleanup, start, ws_collect  # noqa: E402
import http.client  # noqa: E402

SECRETS = ("sk-quarrel-secret-7Qx", "apikey-quarrel-9Zr")
PROMPT, CHAT_TEXT, WS_PROMPT = "Zebras dance on the hill", "Penguins like cold fish", "Walruses sing at night"


def traffic(port):
    """Generates through /api/generate, /v1/chat/completions and /ws with credentials; returns
    the generated /api text."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    hdr = {"Content-Type": "application/json", "Authorization": "Bearer " + SECRETS[0], "X-Api-Key": SECRETS[1]}
    c.request("POST", "/api/generate", json.dumps({"prompt": PROMPT, "temperature": 0, "max_tokens": 12}), hdr)
    r = c.getresponse()
    gen = json.loads(r.read())["text"]
    check(r.status == 200 and gen, "generate failed")
    c.request("POST", "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": CHAT_TEXT}],
                                                          "max_tokens": 8}), hdr)
    r = c.getresponse()
    check(r.status == 200, f"chat {r.status} {r.read()[:100]!r}")
    r.read()
    c.close()
    ws = WebSocket(port)
    ws.send({"type": "inference", "payload": {"prompt": WS_PROMPT, "max_tokens": 4, "id": "w"}})
    ws_collect(ws, ["w"])
    ws.s.close()
    return gen


def stop(p, log):
    p.send_signal(signal.SIGTERM)
    check(p.wait(15) == 0, "server exit status")
    return open(log, encoding="utf-8").read()


def main():
    # default: redacted
    p, port, log = start("--log-format", "json")
    gen = traffic(port)
    text = stop(p, log)
    for s in SECRETS + (PROMPT, CHAT_TEXT, WS_PROMPT) + ((gen.strip(),) if len(gen.strip()) >= 12 else ()):
        check(s not in text, f"default log contains {s!r}")
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    prompts = [ln for ln in lines if ln.get("event") == "prompt"]
    check(len(prompts) == 3, f"{len(prompts)} prompt lines, want 3")
    check(prompts[0]["prompt"] == f"[redacted {len(PROMPT)} bytes]", f"redacted prompt {prompts[0]}")
    check(prompts[1]["messages"] == f"[redacted {len(CHAT_TEXT) + len('user')} bytes]", f"messages {prompts[1]}")
    gens = [ln for ln in lines if ln.get("event") == "generation"]
    check(len(gens) == 3 and all(g["text"].startswith("[redacted") for g in gens), f"generation lines {gens}")
    reqs = [ln for ln in lines if ln.get("event") == "request" and ln.get("path") == "/api/generate"]
    check(reqs and reqs[0].get("Authorization") == "[redacted]" and reqs[0].get("X-Api-Key") == "[redacted]",
          f"credential headers in the request line: {reqs}")

    # --log-prompts: prompts, messages and generated text as they are; credentials still not
    p, port, log = start("--log-prompts", "--log-format", "json")
    gen = traffic(port)
    text = stop(p, log)
    for s in SECRETS:
        check(s not in text, f"--log-prompts log contains the credential {s!r}")
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    prompts = [ln for ln in lines if ln.get("event") == "prompt"]
    check([ln.get("prompt") for ln in prompts] == [PROMPT, None, WS_PROMPT], f"logged prompts {prompts}")
    check(prompts[1]["messages"] == [{"role": "user", "content": CHAT_TEXT}], f"logged messages {prompts[1]}")
    check(any(ln.get("event") == "generation" and ln.get("text") == gen for ln in lines), "generated text not logged")

    # the environment variable, in the text format
    p, port, log = start(env={"QUARREL_LOG_PROMPTS": "1"})
    traffic(port)
    text = stop(p, log)
    check(PROMPT in text and WS_PROMPT in text, "QUARREL_LOG_PROMPTS=1 did not log prompts")
    check(not any(s in text for s in SECRETS), "text log contains a credential")
    r = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "0"], env=dict(os.environ, QUARREL_LOG_PROMPTS="maybe"),
                       capture_output=True, timeout=30)
    check(r.returncode == 2 and b"QUARREL_LOG_PROMPTS" in r.stderr, f"bad QUARREL_LOG_PROMPTS: {r.returncode} {r.stderr}")
    print("serve_logs: prompts redacted by default, logged with --log-prompts; credentials never")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
