#!/usr/bin/env bash
# Build and run ADA's fuzz targets on the stable toolchain, without cargo-fuzz:
#   read_events    the ATF v4 reader (events.bin, trace.json, window_metadata.jsonl bytes)
#   drain_records  the drain's record parsers over untrusted ring bytes, and one LaneDrain
#                  over a heap lane whose ring headers, queues and words come from the input
#
#   fuzz/run.sh [SECONDS] [libFuzzer flags...]      (default 10)
#
# Builds the targets the way `cargo fuzz build --sanitizer none` does (SanitizerCoverage
# flags through RUSTFLAGS, `--cfg fuzzing`, debug assertions and overflow checks on, an
# explicit --target so build scripts and proc-macros are not instrumented), seeds
# fuzz/corpus/<target> with a few valid inputs, and runs libFuzzer on each target in turn,
# splitting SECONDS evenly between them (at least 1 s each). Exits non-zero if the build fails
# or the fuzzer finds a crash; the input that crashed is saved under fuzz/artifacts/<target>/.
#
# Environment: ADA_FUZZ_TARGET_DIR (default fuzz/target); ADA_FUZZ_TARGETS (space-separated
# subset of the targets above, default all of them).
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

all_targets=(read_events drain_records)
read -r -a targets <<<"${ADA_FUZZ_TARGETS:-${all_targets[*]}}"
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "run.sh: ADA_FUZZ_TARGETS names no target" >&2
    exit 2
fi
bins=()
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in
    *" $t "*) bins+=(--bin "$t") ;;
    *)
        echo "run.sh: unknown target '$t' in ADA_FUZZ_TARGETS (known: ${all_targets[*]})" >&2
        exit 2
        ;;
    esac
done
per=$((secs / ${#targets[@]}))
if [[ $per -lt 1 ]]; then per=1; fi

echo "run.sh: building ${targets[*]} for $triple in $target_dir" >&2
CARGO_TARGET_DIR="$target_dir" cargo build --release \
    --manifest-path "$here/Cargo.toml" --target "$triple" "${bins[@]}"

seed_read_events() {
    local corpus="$1" call end custom lost regs
    # Valid varint-delimited Events (the same bytes as ada-atf/tests/wire.rs), a two-event
    # stream, a torn tail, a manifest and a window line.
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
}

seed_drain_records() {
    local corpus="$1" index detail_mark detail_call
    zeros() { head -c "$1" /dev/zero; }
    # Valid ring records (layouts in ada-ringpool/src/record.rs): an index record (Call at
    # ts 1, function 2, thread 3), a marked detail Mark with message "hi" (48 bytes), and a
    # detail Call with one register and 3 stack bytes (56 bytes, 5 of them padding).
    index='\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0'
    detail_mark='\x30\0\0\0\x04\0\0\x01\x05\0\0\0\0\0\0\0\x06\0\0\0\0\0\0\0\x07\0\0\0\x02\0\0\0'
    detail_mark+='\0\0\x02\0\0\0\0\0hi\0\0\0\0\0\0'
    detail_call='\x38\0\0\0\x01\0\x01\0\x08\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0\x07\0\0\0\x03\0\0\0'
    detail_call+='\x2a\0\0\0\0\0\0\0\x03\0\0\0\0\0\0\0\xaa\xbb\xcc\0\0\0\0\0'
    printf "$index" >"$corpus/seed_index"
    printf "$index$index$index\x01\x02" >"$corpus/seed_index_torn"
    printf "$detail_mark" >"$corpus/seed_detail_mark"
    printf "$detail_call$detail_mark" >"$corpus/seed_detail_two"
    # Drain scenarios (layout in fuzz_targets/drain_records.rs): one index ring whose active
    # fill holds two records; two detail rings, ring 0 submitted (marked, one record) and
    # ring 1 active in its second generation (one record).
    { printf '\0\0\0\0\0\0\0\x40\0'; printf "$index$index"; } >"$corpus/seed_drain_index"
    {
        printf '\x03\x01\x01\0\x04\0\0\0\x30\0\x01\x01\0\0\x38\0'
        printf "$detail_mark"
        zeros 208
        printf "$detail_call"
    } >"$corpus/seed_drain_detail"
}

status=0
for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    artifacts="$here/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    "seed_$t" "$corpus"
    echo "run.sh: fuzzing $t for ${per}s (corpus $corpus)" >&2
    "$target_dir/$triple/release/$t" -max_total_time="$per" -artifact_prefix="$artifacts/" \
        -print_final_stats=1 "$@" "$corpus" || status=$?
    if [[ $status -ne 0 ]]; then
        echo "run.sh: the fuzzer failed on $t (exit $status); crashing inputs are in $artifacts/" >&2
        exit "$status"
    fi
done
echo "run.sh: no crash in ${per}s each (${targets[*]})" >&2
