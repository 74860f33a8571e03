#!/usr/bin/env bash
# Builds everything and runs every test (unit, model, view, CLI and PyTorch-interop).
# Installs missing Debian packages first, so it works on a fresh machine and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev
