#!/usr/bin/env bash
# serve_sweep.sh — `quarrel serve` under 1, 8, 32, 64 and 128 concurrent clients
# (bench/loadgen.c), printed as a markdown table. One server for the whole sweep.
#   usage: bench/serve_sweep.sh [BUILD_DIR (build)] [MODEL]
# MODEL defaults to /tmp/synth/tinyllama-Q4_K_M.gguf, synthesized (quarrel synth) when missing.
# Knobs (environment): CLIENTS ("1 8 32 64 128"), MODE (api | chat | ws; api),
# PROMPT_WORDS (16), MAX_TOKENS (16), PARALLEL (16 slots), CTX (256 cells per slot),
# THREADS (nproc), QUEUE (64: at 128 clients some are told 503, counted and retried),
# REQUESTS (requests per step; default max(clients, MIN_REQUESTS), MIN_REQUESTS 8),
# TIMEOUT (server --timeout, 3600 s).
# LLAMA_SERVER=/path/to/llama-server runs the same sweep against llama.cpp's server instead
# (same model, slots, context per slot and threads; MODE must be chat, LLAMA_PORT 18090).
# Not a test; numbers depend on the machine.
set -euo pipefail
BUILD=${1:-build}
MODEL=${2:-/tmp/synth/tinyllama-Q4_K_M.gguf}
CLIENTS=${CLIENTS:-"1 8 32 64 128"}
MODE=${MODE:-api}
PROMPT_WORDS=${PROMPT_WORDS:-16}
MAX_TOKENS=${MAX_TOKENS:-16}
PARALLEL=${PARALLEL:-16}
CTX=${CTX:-256}
THREADS=${THREADS:-$(nproc)}
QUEUE=${QUEUE:-64}
TIMEOUT=${TIMEOUT:-3600}

if [ ! -f "$MODEL" ]; then
  mkdir -p "$(dirname "$MODEL")"
  "$BUILD/quarrel" synth --shape tinyllama-1.1b --type Q4_K_M -o "$MODEL" >&2
fi
LOG=$(mktemp /tmp/serve-sweep.XXXXXX.log)
if [ -n "${LLAMA_SERVER:-}" ]; then
  [ "$MODE" = chat ] || { echo "serve_sweep: llama-server speaks MODE=chat only" >&2; exit 2; }
  PORT=${LLAMA_PORT:-18090}
  "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -np "$PARALLEL" -c $(( PARALLEL * CTX )) \
    -t "$THREADS" 2>"$LOG" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "serve_sweep: llama-server did not start" >&2; exit 1; }
else
  "$BUILD/quarrel" serve -m "$MODEL" --port 0 --parallel "$PARALLEL" -c "$CTX" -t "$THREADS" \
    --queue-size "$QUEUE" --timeout "$TIMEOUT" --log-level warn 2>"$LOG" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
  PORT=
  for _ in $(seq 600); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG")
    [ -n "$PORT" ] && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
fi
[ -n "$PORT" ] || { echo "serve_sweep: server did not start" >&2; exit 1; }

echo "server ${LLAMA_SERVER:-quarrel}, model $(basename "$MODEL"), mode $MODE, --parallel $PARALLEL -c $CTX -t $THREADS --queue-size $QUEUE," \
     "prompt $PROMPT_WORDS words, $MAX_TOKENS output tokens (ignore_eos)"
echo
# one untimed request loads the weights into the page cache
"$BUILD/bench_loadgen" --port "$PORT" --mode "$MODE" -c 1 -n 1 --prompt-words "$PROMPT_WORDS" --max-tokens 4 >/dev/null
"$BUILD/bench_loadgen" --md-header
status=0
for c in $CLIENTS; do
  min=${MIN_REQUESTS:-8}
  n=${REQUESTS:-$(( c > min ? c : min ))}
  "$BUILD/bench_loadgen" --port "$PORT" --mode "$MODE" -c "$c" -n "$n" --prompt-words "$PROMPT_WORDS" \
    --max-tokens "$MAX_TOKENS" --timeout "$TIMEOUT" --md || status=1
done
exit $status
