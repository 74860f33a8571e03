#!/usr/bin/env bash
# Quick start: install the dependencies, build, and open Checkpoint Studio on the bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
example="${1:-resources/examples/simple_nn_checkpoint.pth}"
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
    echo "run-gui: no display; starting under xvfb-run" >&2
    exec xvfb-run -a build/release/bin/checkpoint-studio "$example"
fi
exec build/release/bin/checkpoint-studio "$example"
