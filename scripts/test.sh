#!/usr/bin/env bash
# Builds everything and runs every test (unit, model, view, CLI and PyTorch-interop), then builds
# the format layer, the CLI and their tests with AddressSanitizer and UndefinedBehaviorSanitizer
# and runs those again. Installs missing Debian packages first, so it works on a fresh machine
# and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev
if [ "${CKPT_SKIP_SANITIZERS:-0}" != 1 ]; then
    cmake --preset asan-format >/dev/null
    cmake --build --preset asan-format
    ctest --preset asan-format
fi
