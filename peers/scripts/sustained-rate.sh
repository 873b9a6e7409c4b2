#!/usr/bin/env bash
# The highest rate a traced process sustains without loss, per number of drain workers
# (issue 15, Deliver 5): `ada trace --drain-threads W -- ada workload --seq --threads T
# --events N --rate R` for each W and total rate, reading the drop count from `ada trace`'s
# summary. Every rate is paced (the workload never bursts above it) and runs ~SECONDS seconds.
#
# Usage: peers/scripts/sustained-rate.sh [ADA_BINARY] (default: target/release/ada; build it
# with `cargo build --release -p ada-cli`). Environment: THREADS (producers, default 8),
# WORKERS (default "1 2"), RATES (total events/s, default "1000000 2000000 3000000 4000000
# 6000000 8000000"), RUN_SECONDS (default 5), ROUNDS (default 2: a rate counts as sustained only
# if every round drops nothing).
set -euo pipefail
ada=${1:-target/release/ada}
threads=${THREADS:-8}
workers=${WORKERS:-"1 2"}
rates=${RATES:-"1000000 2000000 3000000 4000000 6000000 8000000"}
seconds=${RUN_SECONDS:-5}
rounds=${ROUNDS:-2}
[ -x "$ada" ] || { echo "no ada binary at $ada (cargo build --release -p ada-cli)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) CPUs, $(uname -r); producers: $threads; ${seconds}s per run, $rounds rounds"
printf '%-8s %-14s %-30s %s\n' workers "rate (ev/s)" "dropped per round" verdict
for w in $workers; do
  for r in $rates; do
    per=$((r / threads))
    events=$((per * seconds))
    drops=()
    for _ in $(seq "$rounds"); do
      rm -rf "$out/t"
      log=$("$ada" trace --drain-threads "$w" -o "$out/t" -- "$ada" workload --seq \
        --threads "$threads" --events "$events" --rate "$per" 2>&1) || true
      # The summary's per-thread lines: "index written/persisted/dropped".
      d=$(grep -oE 'index [0-9]+/[0-9]+/[0-9]+' <<<"$log" | awk -F/ '{s += $3} END {print s + 0}')
      n=$(grep -cE 'index [0-9]+/[0-9]+/[0-9]+' <<<"$log" || true)
      if [ "$n" -ne "$threads" ]; then d="?($n threads in summary)"; fi
      drops+=("$d")
    done
    verdict=sustained
    for d in "${drops[@]}"; do [ "$d" = 0 ] || verdict=lost; done
    printf '%-8s %-14s %-30s %s\n' "$w" "$r" "${drops[*]}" "$verdict"
  done
done
