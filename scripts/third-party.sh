#!/usr/bin/env bash
# Copies the headers the build needs from this machine's packages (nlohmann-json3-dev,
# libcli11-dev, zlib1g-dev) into DIR/include, for a machine that has a compiler and LibTorch but no
# package manager (the GPU check's machine). Build there with -DCKPT_THIRD_PARTY_DIR=DIR, or give
# scripts/gpu-check.sh --third-party DIR.
#   scripts/third-party.sh DIR
set -euo pipefail
dir=${1:?usage: scripts/third-party.sh DIR}
mkdir -p "$dir/include"
for h in /usr/include/nlohmann /usr/include/CLI; do
    [ -d "$h" ] || { echo "third-party: $h is missing (apt-get install nlohmann-json3-dev libcli11-dev)" >&2; exit 1; }
    cp -r "$h" "$dir/include/"
done
for h in zlib.h zconf.h; do
    f=""
    for c in /usr/include/$h /usr/include/*-linux-gnu/$h; do
        [ -f "$c" ] && { f=$c; break; }
    done
    [ -n "$f" ] || { echo "third-party: $h is missing (apt-get install zlib1g-dev)" >&2; exit 1; }
    cp "$f" "$dir/include/"
done
echo "third-party headers in $dir/include: $(ls "$dir/include" | tr '\n' ' ')"
