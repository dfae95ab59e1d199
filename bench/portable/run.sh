#!/usr/bin/env bash
# run.sh — inside an unpacked bench/portable/pack.sh bundle (as its bench/run.sh): the
# native checks and the benchmarks on this machine, everything printed and appended to
# OUT_DIR/log.txt as it happens.
#   usage: bash bench/run.sh [OUT_DIR (./out)]
# In order: the CPU; test_matmul, test_ops, test_act_quant (every kernel set the CPU has,
# against the scalar reference) and test_golden_quant under each set; the tinyllama
# Q4_K_M, Q4_0 and Q8_0 models synthesized (/tmp/synth; kept if present); the matmul
# kernels alone at 1 thread with each set, after the synthesis so that nothing else runs;
# Quarrel against llama-bench (when the bundle has it) at THREADS; the serving sweep.
# Knobs (environment): THREADS ("2 P", P = physical cores), REPS (2), SERVE (1: run the
# serving sweep), CLIENTS ("1 32"). Not a test.
set -u
B=$(cd "$(dirname "$0")/.." && pwd)
O=${1:-$PWD/out}
mkdir -p "$O"
exec > >(tee -a "$O/log.txt") 2>&1
T0=$SECONDS
step() { echo "=== [$((SECONDS - T0)) s] $*"; }
LD=$B/lib/ld-linux-x86-64.so.2
W=$B/wrap
mkdir -p "$W"
for f in "$B"/bin/*; do   # each binary through the carried loader and libraries
  printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$LD" "$B/lib" "$f" > "$W/$(basename "$f")"
done
if [ -x "$B/llama/llama-bench" ]; then   # its CPU backends are found in the current directory
  printf '#!/bin/sh\ncd %s && exec %s --library-path %s:%s ./llama-bench "$@"\n' "$B/llama" "$LD" "$B/lib" "$B/llama" \
    > "$W/llama-bench"
fi
chmod +x "$W"/*
export QUARREL_SHARED=$B/shared XDG_CONFIG_HOME=/tmp/quarrel-portable-xdg PYTHONUNBUFFERED=1
P=$(lscpu -p=core,socket | grep -v '^#' | sort -u | wc -l)
THREADS=${THREADS:-"2 $P"}
REPS=${REPS:-2}

step machine
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L[123]|Flags)'
echo "physical cores: $P"

step "synthesis (background, until the kernels)"
mkdir -p /tmp/synth
SYN=()
for ty in Q4_K_M Q4_0 Q8_0; do
  f=/tmp/synth/tinyllama-$ty.gguf
  [ -f "$f" ] && continue
  "$W/quarrel" synth --shape tinyllama-1.1b --type "$ty" --threads 4 -o "$f" > "/tmp/synth/$ty.log" 2>&1 &
  SYN+=($!)
done

step "native checks"
for t in test_matmul test_ops test_act_quant; do
  timeout 300 "$W/$t" > "$O/$t.txt" 2>&1
  echo "$t: rc $? ($(grep -E 'PASSED|FAILED' "$O/$t.txt" | tail -1))"
done
for isa in avx512 avx2 scalar; do
  QUARREL_CPU=$isa timeout 300 "$W/test_golden_quant" > "$O/golden_$isa.txt" 2>&1
  echo "test_golden_quant QUARREL_CPU=$isa: rc $?"
  grep -v -e skip -e '^\[' "$O/golden_$isa.txt"
done

# Only these PIDs: a bare `wait` would also wait for the tee above, forever.
[ ${#SYN[@]} -gt 0 ] && wait "${SYN[@]}"
step "synthesis done"
M="/tmp/synth/tinyllama-Q4_K_M.gguf /tmp/synth/tinyllama-Q4_0.gguf /tmp/synth/tinyllama-Q8_0.gguf"
ls -la $M

step "kernels alone, 1 thread, W 5632 x 2048, each set"
for isa in avx2 avx512; do
  QUARREL_CPU=$isa timeout 180 "$W/bench_matmul" -t 1 -b 1,64,512 -r 3 -x Q4_K Q6_K Q4_0 Q8_0 Q5_K Q3_K Q2_K
done

if [ -x "$W/llama-bench" ]; then
  step "against llama.cpp"
  timeout 900 python3 "$B/bench/llama/vs_llama.py" "$W/quarrel" "$W/llama-bench" -p 512 -n 128 -r "$REPS" \
    -t "$(echo $THREADS | tr ' ' ',')" $M
else
  step "quarrel bench (no llama.cpp in the bundle)"
  for m in $M; do for t in $THREADS; do
    timeout 300 "$W/quarrel" bench -m "$m" -p 512 -n 128 -t "$t" -r "$REPS" | grep -E 'pp512|tg128|efficiency'
  done; done
fi

if [ "${SERVE:-1}" = 1 ]; then
  step "serving, $P threads"
  PARALLEL=16 CLIENTS=${CLIENTS:-"1 32"} MODE=chat MAX_TOKENS=32 THREADS=$P \
    timeout 600 bash "$B/bench/serve_sweep.sh" "$W" /tmp/synth/tinyllama-Q4_K_M.gguf
fi
step end
