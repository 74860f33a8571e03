#!/usr/bin/env bash
# Builds the fuzz targets with clang + ASan + UBSan and runs each for SECONDS (default 600),
# seeded from the fixtures and, when present, ../shared/corpus. Crashes land in build/fuzz/crashes.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
targets="${2:-pickle zip legacy tar safetensors shardindex document}"
CC=clang CXX=clang++ cmake -S tests/fuzz -B build/fuzz -G Ninja >/dev/null
ninja -C build/fuzz >/dev/null
seeds=build/fuzz/seeds
mkdir -p "$seeds" build/fuzz/crashes
fixtures=build/dev/fixtures
[ -d "$fixtures" ] || { cmake --preset dev >/dev/null && cmake --build --preset dev --target ckpt_fixtures >/dev/null; }
for t in $targets; do
    mkdir -p "$seeds/$t"
    find "$fixtures" ../shared/corpus/files -maxdepth 2 -type f -size -4M 2>/dev/null | while read -r f; do
        cp -n "$f" "$seeds/$t/$(basename "$f")" 2>/dev/null || true
    done
    echo "== fuzz_$t for ${seconds}s"
    build/fuzz/fuzz_$t "$seeds/$t" -dict=tests/fuzz/pickle.dict -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=1048576 -artifact_prefix=build/fuzz/crashes/"$t"- -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+ *DONE|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Done)" || true
done
