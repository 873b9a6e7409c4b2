#!/usr/bin/env bash
# Build and run the ATF v4 reader fuzz target on the stable toolchain, without cargo-fuzz.
#
#   fuzz/run.sh [SECONDS]      (default 10)
#
# Builds `read_events` the way `cargo fuzz build --sanitizer none` does (SanitizerCoverage
# flags through RUSTFLAGS, `--cfg fuzzing`, debug assertions and overflow checks on, an
# explicit --target so build scripts and proc-macros are not instrumented), seeds
# fuzz/corpus/read_events with a few valid events, and runs libFuzzer for SECONDS.
# Exits non-zero if the build fails or the fuzzer finds a crash; the input that crashed is
# saved under fuzz/artifacts/read_events/.
#
# Environment: ADA_FUZZ_TARGET_DIR (default fuzz/target), extra libFuzzer flags after SECONDS.
set -euo pipefail

secs="${1:-10}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [[ "$secs" -eq 0 ]]; then
    echo "usage: $0 [SECONDS] [libFuzzer flags...]  (SECONDS a positive integer, got '$secs')" >&2
    exit 2
fi
shift || true

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${ADA_FUZZ_TARGET_DIR:-$here/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
if [[ -z "$triple" ]]; then
    echo "run.sh: cannot determine the host target triple from 'rustc -vV'" >&2
    exit 2
fi

export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

echo "run.sh: building read_events for $triple in $target_dir" >&2
CARGO_TARGET_DIR="$target_dir" cargo build --release \
    --manifest-path "$here/Cargo.toml" --target "$triple" --bin read_events

bin="$target_dir/$triple/release/read_events"
corpus="$here/corpus/read_events"
artifacts="$here/artifacts/read_events"
mkdir -p "$corpus" "$artifacts"

# Seeds: valid varint-delimited Events (the same bytes as ada-atf/tests/wire.rs), a two-event
# stream, a torn tail, and a manifest.
call='\x19\x08\x01\x10\x07\x1a\x08\x08\x01\x10\x80\xca\xb5\xee\x01\x62\x09\x0a\x04main\x10\x80\x20'
end='\x11\x08\x02\x1a\x00\x5a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01'
custom='\x17\x08\x03\x10\x01\x1a\x02\x10\x03\x20\x09\x28\x02\x30\x01\x82\x01\x06\x0a\x01m\x12\x01\xab'
lost='\x0e\x08\x04\x1a\x00\x7a\x08\x08\x01\x10\x05\x1a\x02bp'
regs='\x14\x08\x05\x1a\x00\x6a\x0e\x1a\x06\x0a\x02x0\x10\x2a\x1a\x04\x0a\x02sp'
printf "$call" >"$corpus/seed_function_call"
printf "$end" >"$corpus/seed_trace_end"
printf "$custom" >"$corpus/seed_custom"
printf "$lost" >"$corpus/seed_events_lost"
printf "$regs" >"$corpus/seed_registers"
printf "$call$end$custom$lost$regs" >"$corpus/seed_stream"
printf "$call\x19\x08\x01\x10" >"$corpus/seed_torn_tail"
printf '%s' '{"os":"linux","arch":"x86_64","pid":1,"sessionId":2,"timeStartNs":3,"timeEndNs":4,"eventCount":0,"bytesWritten":0,"modules":[],"complete":true,"threads":[{"threadId":0,"lanes":[{"lane":"index","written":1,"persisted":1,"dropped":0,"discarded":0}]}]}' >"$corpus/seed_manifest"
printf '%s\n' '{"window_id":1,"start_ns":1,"end_ns":2,"first_mark_ns":1,"last_event_ns":2,"total_events":3,"marked_events":1,"mark_seen":true}' >"$corpus/seed_window"

echo "run.sh: fuzzing for ${secs}s (corpus $corpus)" >&2
status=0
"$bin" -max_total_time="$secs" -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" "$corpus" || status=$?
if [[ $status -ne 0 ]]; then
    echo "run.sh: the fuzzer failed (exit $status); crashing inputs are in $artifacts/" >&2
    exit "$status"
fi
echo "run.sh: no crash in ${secs}s" >&2
