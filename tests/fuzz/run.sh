#!/usr/bin/env bash
# run.sh BUILD_DIR SECONDS — runs every libFuzzer target in BUILD_DIR (fuzz_*, not the
# *_replay drivers) for SECONDS each. Each target starts from a scratch copy of its seed
# corpus (tests/fuzz/corpus/<target>/), so new inputs never land in the committed corpus.
# Prints each target's execution count; exits 1 if any target found a crash (the crash
# input is kept in the scratch dir, whose path is printed).
set -u
build=${1:?usage: run.sh BUILD_DIR SECONDS}
secs=${2:?usage: run.sh BUILD_DIR SECONDS}
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/quarrel-fuzz.XXXXXX")
status=0
found=0
for bin in "$build"/fuzz_*; do
    name=$(basename "$bin")
    case $name in *_replay) continue ;; esac
    [ -x "$bin" ] || continue
    found=1
    work=$scratch/$name
    mkdir -p "$work/corpus" "$work/artifacts"
    [ -d "$root/tests/fuzz/corpus/$name" ] && cp "$root/tests/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null
    log=$work/log.txt
    "$bin" "$work/corpus" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    if [ $rc -ne 0 ] || ls "$work/artifacts"/* >/dev/null 2>&1; then
        echo "$name: FAILED (exit $rc) after ${execs:-?} executions; log and inputs in $work"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
        status=1
    else
        echo "$name: ok, ${execs:-?} executions in ${secs}s"
    fi
done
[ $found -eq 1 ] || { echo "run.sh: no fuzz_* binaries in $build (build with -DQUARREL_FUZZ=ON)"; exit 1; }
[ $status -eq 0 ] && rm -rf "$scratch"
exit $status
