#!/usr/bin/env bash
# The CLI against a torch 2.x, on a Debian 12 machine without a GPU: Debian 13 (trixie)'s
# libtorch-dev and python3-torch (2.6) are unpacked into a folder, never installed, and run here
# through trixie's own loader. It builds ckpt and its compute module against that LibTorch (no Qt),
# writes the fixtures with that PyTorch (a 2.x writer: byteorder and serialization_id records,
# weights_only=True by default), and runs every CLI test that PyTorch judges. The GPU check
# (scripts/gpu-check.sh) does the same with a CUDA build on a GPU; this one catches what changes
# with torch 2.x long before a GPU is at hand.
#
#   scripts/torch2-check.sh [--root DIR] [--keep-going]
#     --root  where trixie's packages are unpacked (default build/torch2/root; about 1 GiB, reused)
#
# Needs Debian's package archive (deb.debian.org) once, for the download. Exit 0 when every test
# passed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/torch2
root=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        *) echo "torch2-check: unknown option $1" >&2; exit 2 ;;
    esac
done
root=${root:-$work/root}
mkdir -p "$work" "$root"
work=$(cd "$work" && pwd)
root=$(cd "$root" && pwd)
log() { echo "torch2-check: $*"; }

# 1. trixie's packages, downloaded with apt into a private state folder and unpacked.
if [ ! -x "$root/usr/bin/python3.13" ] || [ ! -f "$root/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake" ]; then
    apt=$work/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        > "$apt/sources.list"
    o=(-oDir::Etc::SourceList="$apt/sources.list" -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists="$apt/lists"
       -oDir::Cache="$apt/cache" -oDebug::NoLocking=1)
    log "fetching trixie's package lists"
    apt-get "${o[@]}" update > "$work/apt.log" 2>&1
    # The closure of what torch needs at run time, less what only installing would need.
    apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
        --no-enhances libtorch-dev libtorch2.6 python3-torch python3-numpy python3-pil python3.13 2>/dev/null |
        grep -v '^ ' | grep -v '^<' | sort -u |
        grep -v -E '^(perl|perl-base|perl-modules.*|libperl.*|adduser|dpkg|debconf|cdebconf|base-passwd|tar|coreutils|sensible-utils|mime-support|libllvm.*|libamd.*|libhsa.*|libdrm.*|libdebian-installer.*|libtorch-test|libbenchmark.*|ca-certificates|openssl)$' \
        > "$work/packages.txt"
    log "downloading $(wc -l < "$work/packages.txt") packages"
    (cd "$apt/debs" && apt-get "${o[@]}" download $(cat "$work/packages.txt") >> "$work/apt.log" 2>&1)
    log "unpacking into $root"
    for f in "$apt/debs"/*.deb; do dpkg -x "$f" "$root"; done
fi
lib=$root/usr/lib/x86_64-linux-gnu
paths=$lib:$root/lib/x86_64-linux-gnu:$lib/openblas-pthread:$lib/blas:$lib/lapack

# 2. Wrappers: trixie's Python, and the ckpt built below, each run through trixie's loader.
cat > "$work/python" <<EOF
#!/bin/sh
export PYTHONHOME=$root/usr
exec $lib/ld-linux-x86-64.so.2 --library-path $paths $root/usr/bin/python3.13 "\$@"
EOF
cat > "$work/ckpt" <<EOF
#!/bin/sh
export CKPT_COMPUTE_MODULE=$work/build/bin/libckpt_compute.so
exec $lib/ld-linux-x86-64.so.2 --library-path $paths $work/build/bin/ckpt "\$@"
EOF
chmod +x "$work/python" "$work/ckpt"
log "$("$work/python" -c 'import torch, numpy; print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__)')"

# 3. The CLI against that LibTorch. Its headers and libraries are copied to a prefix of their own,
# so that neither CMake nor the compiler can pick Debian 12's LibTorch 1.13 instead.
prefix=$work/libtorch
if [ ! -f "$prefix/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake" ]; then
    mkdir -p "$prefix/include" "$prefix/lib/x86_64-linux-gnu"
    for d in ATen c10 caffe2 kineto torch; do cp -r "$root/usr/include/$d" "$prefix/include/"; done
    cp -a "$lib"/libtorch*.so* "$lib"/libc10*.so* "$lib"/libshm*.so* "$prefix/lib/x86_64-linux-gnu/"
    mkdir -p "$prefix/lib/x86_64-linux-gnu/cmake"
    cp -r "$lib/cmake/Torch" "$lib/cmake/Caffe2" "$prefix/lib/x86_64-linux-gnu/cmake/"
fi
t=$prefix/lib/x86_64-linux-gnu
v=$prefix/include/torch/csrc/api/include/torch/version.h
log "building ckpt against LibTorch $(awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$v")"
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_GUI=OFF -DCKPT_BUILD_TESTS=OFF \
    -DTorch_DIR="$t/cmake/Torch" -DCaffe2_DIR="$t/cmake/Caffe2" -DTORCH_LIBRARY="$t/libtorch.so" \
    -Dc10_LIBRARY="$t/libc10.so" > "$work/configure.log" 2>&1 || { log "configure failed: $work/configure.log"; exit 1; }
cmake --build "$work/build" --target ckpt ckpt_compute -j "$(nproc)" > "$work/build.log" 2>&1 ||
    { log "build failed: $work/build.log"; exit 1; }
if ! readelf -d "$work/build/bin/libckpt_compute.so" | grep -q 'libtorch_cpu.so.2'; then
    log "the compute module did not link trixie's LibTorch: $(readelf -d "$work/build/bin/libckpt_compute.so" | grep torch_cpu)"
    exit 1
fi
log "$("$work/ckpt" devices | tr '\n' ' ')"

# 4. Fixtures by that PyTorch, and every CLI test it judges.
"$work/python" tests/fixtures/generate_fixtures.py --out "$work/fixtures" > "$work/fixtures.log" 2>&1 ||
    { log "fixtures failed: $work/fixtures.log"; exit 1; }
status=0
for t in info convert predict tensors export optimizer diff; do
    if "$work/python" "tests/cli/test_${t}_vs_torch.py" --ckpt "$work/ckpt" --fixtures "$work/fixtures" > "$work/$t.log" 2>&1; then
        log "PASS $t: $(tail -1 "$work/$t.log")"
    else
        log "FAIL $t: $(tail -1 "$work/$t.log") (see $work/$t.log)"
        status=1
    fi
done
exit $status
