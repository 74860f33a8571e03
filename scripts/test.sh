#!/usr/bin/env bash
# Builds everything and runs every test (unit, model, view, CLI and PyTorch-interop), then builds
# the format layer, the CLI and their tests with AddressSanitizer and UndefinedBehaviorSanitizer
# and runs those again. Installs missing Debian packages first, so it works on a fresh machine
# and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A one-shot build compiles as a unity build: source files of a target are compiled in batches, so
# LibTorch's and Qt's headers are parsed once per batch rather than once per file (a cold build of
# the dev tree: 635 s of wall time without, about 555 s with, on 2 cores). Incremental work is better
# served without it: CKPT_UNITY_BUILD=OFF scripts/test.sh, or `cmake --preset dev` in a new tree.
unity="-DCMAKE_UNITY_BUILD=${CKPT_UNITY_BUILD:-ON}"
cmake --preset dev "$unity" >/dev/null
cmake --build --preset dev
ctest --preset dev
if [ "${CKPT_SKIP_SANITIZERS:-0}" != 1 ]; then
    cmake --preset asan-format "$unity" >/dev/null
    cmake --build --preset asan-format
    ctest --preset asan-format
fi
