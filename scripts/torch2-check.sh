#!/usr/bin/env bash
# The CLI against a torch 2.x, on a Debian 12 machine without a GPU: Debian 13 (trixie)'s
# libtorch-dev and python3-torch (2.6) are unpacked into a folder, never installed, and run here
# through trixie's own loader. It builds ckpt and its compute module against that LibTorch (no Qt),
# writes the fixtures with that PyTorch (a 2.x writer: byteorder and serialization_id records,
# weights_only=True by default), and runs every CLI test that PyTorch judges. The GPU check
# (scripts/gpu-check.sh) does the same with a CUDA build on a GPU; this one catches what changes
# with torch 2.x long before a GPU is at hand.
#
# With --cuda it takes trixie's CUDA build instead (contrib's libtorch-cuda-dev and
# python3-torch-cuda, non-free's CUDA 12.4 toolkit), lays the toolkit out as NVIDIA's installer
# does (bin/nvcc, include, lib64, nvvm), and configures ckpt the way the GPU check does, with
# nvcc and CUDA's CMake modules: the CUDA half of building against a CUDA LibTorch, and the CPU
# path and the "no CUDA device" answers of such a build, checked on a machine without a GPU.
#
#   scripts/torch2-check.sh [--cuda] [--root DIR]
#     --cuda  the CUDA build of LibTorch and PyTorch (about 8 GiB unpacked; build/torch2-cuda)
#     --root  where trixie's packages are unpacked (default build/torch2[-cuda]/root, reused)
#
# Needs Debian's package archive (deb.debian.org) once, for the download. Exit 0 when every test
# passed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/torch2
root=""
cuda=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --cuda) cuda=1; shift ;;
        *) echo "torch2-check: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ $cuda -eq 1 ]; then
    work=build/torch2-cuda
    components="main contrib non-free"
    # nvidia-cudnn only downloads cuDNN from NVIDIA when installed: cuDNN is looked for below.
    wanted="libtorch-cuda-dev libtorch-cuda-2.6 python3-torch-cuda nvidia-cuda-toolkit nvidia-cuda-dev"
    skip="nvidia-cudnn|libtorch-cuda-test|nvidia-cuda-gdb|nvidia-nsight.*|nvidia-visual-profiler|nvidia-profiler|nvidia-openjdk.*|openjdk.*|default-jre.*|java.*"
else
    components="main"
    wanted="libtorch-dev libtorch2.6 python3-torch"
    skip="libtorch-test"
fi
root=${root:-$work/root}
mkdir -p "$work" "$root"
work=$(cd "$work" && pwd)
root=$(cd "$root" && pwd)
log() { echo "torch2-check: $*"; }

# 1. trixie's packages, downloaded with apt into a private state folder and unpacked.
if [ ! -x "$root/usr/bin/python3.13" ] || [ ! -f "$root/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake" ]; then
    apt=$work/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie $components" \
        > "$apt/sources.list"
    # An empty package status: what this machine has installed must not make apt pick its versions.
    : > "$apt/status"
    o=(-oDir::Etc::SourceList="$apt/sources.list" -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists="$apt/lists"
       -oDir::Cache="$apt/cache" -oDir::State::status="$apt/status" -oDebug::NoLocking=1)
    log "fetching trixie's package lists"
    apt-get "${o[@]}" update > "$work/apt.log" 2>&1
    # The closure of what torch needs at run time, less what only installing would need.
    apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
        --no-enhances $wanted python3-numpy python3-pil python3.13 2>/dev/null |
        grep -v '^ ' | grep -v '^<' | sort -u |
        grep -v -E "^(perl|perl-base|perl-modules.*|libperl.*|adduser|dpkg|debconf|cdebconf|base-passwd|tar|coreutils|sensible-utils|mime-support|libllvm.*|libamd.*|libhsa.*|libdrm.*|libdebian-installer.*|$skip|libbenchmark.*|ca-certificates|openssl)\$" \
        > "$work/packages.txt"
    log "downloading $(wc -l < "$work/packages.txt") packages"
    (cd "$apt/debs" && apt-get "${o[@]}" download $(cat "$work/packages.txt") >> "$work/apt.log" 2>&1)
    log "unpacking into $root"
    for f in "$apt/debs"/*.deb; do dpkg -x "$f" "$root"; done
fi
lib=$root/usr/lib/x86_64-linux-gnu
paths=$lib:$root/lib/x86_64-linux-gnu:$root/usr/lib:$lib/openblas-pthread:$lib/blas:$lib/lapack

# 1b. With --cuda: the toolkit in NVIDIA's own layout, which is what LibTorch's CMake files and
# nvcc expect (Debian spreads it over /usr and points nvcc at /etc/nvcc.profile). Hard links: no
# second copy of the libraries.
cmake_cuda=()
if [ $cuda -eq 1 ]; then
    toolkit=$work/cuda
    if [ ! -x "$toolkit/bin/nvcc" ]; then
        rm -rf "$toolkit"
        mkdir -p "$toolkit/bin/crt" "$toolkit/nvvm/bin" "$toolkit/nvvm/libdevice" "$toolkit/include" "$toolkit/lib64"
        for b in bin2c cu++filt cudafe++ fatbinary nvlink nvprune ptxas; do cp -l "$root/usr/bin/$b" "$toolkit/bin/"; done
        cp -l "$root/usr/lib/nvidia-cuda-toolkit/bin/nvcc" "$toolkit/bin/"
        cp -l "$root/usr/lib/nvidia-cuda-toolkit/bin/crt/"* "$toolkit/bin/crt/"
        cp -l "$root/usr/lib/nvidia-cuda-toolkit/bin/cicc" "$toolkit/nvvm/bin/"
        cp -l "$root/usr/lib/nvidia-cuda-toolkit/libdevice/"* "$toolkit/nvvm/libdevice/"
        # The headers and libraries of nvidia-cuda-dev, found by its file list.
        for f in $(dpkg -c "$work"/apt/debs/nvidia-cuda-dev_*.deb | awk '{print $6}' | grep -v '/$'); do
            case "$f" in
                ./usr/include/*) d=$toolkit/include/${f#./usr/include/} ;;
                ./usr/lib/x86_64-linux-gnu/pkgconfig/*) continue ;;
                ./usr/lib/x86_64-linux-gnu/*) d=$toolkit/lib64/${f#./usr/lib/x86_64-linux-gnu/} ;;
                *) continue ;;
            esac
            mkdir -p "$(dirname "$d")"
            cp -P -l "$root/${f#./}" "$d" 2>/dev/null || cp -P "$root/${f#./}" "$d"
        done
        cp -P -l "$lib"/libcudart.so* "$lib"/libnvToolsExt.so* "$lib"/libnvrtc*.so* "$toolkit/lib64/" 2>/dev/null || true
        [ -e "$toolkit/lib64/libnvToolsExt.so" ] || ln -s libnvToolsExt.so.1 "$toolkit/lib64/libnvToolsExt.so"
        cat > "$toolkit/bin/nvcc.profile" <<'PROFILE'
TOP              = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"
CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
PROFILE
    fi
    log "$("$toolkit/bin/nvcc" --version | tail -2 | head -1)"
    paths=$toolkit/lib64:$paths
    # cuDNN is not in Debian's archive (nvidia-cudnn downloads it when installed). LibTorch's CUDA
    # library needs it to load at all; one this machine has (a CUDA toolkit's) will do, since no
    # cuDNN function runs without a GPU.
    cudnn=$(ldconfig -p | awk '/libcudnn\.so\.9 / && !found {print $NF; found = 1}')  # reads it all: no SIGPIPE
    [ -n "$cudnn" ] || { log "no libcudnn.so.9 on this machine: LibTorch's CUDA library cannot load"; exit 1; }
    paths=$paths:$(dirname "$cudnn")
    log "cuDNN from $cudnn"
    cmake_cuda=(-DCMAKE_CUDA_COMPILER="$toolkit/bin/nvcc" -DCUDAToolkit_ROOT="$toolkit" -DCUDA_TOOLKIT_ROOT_DIR="$toolkit"
                -DC10_CUDA_LIBRARY="$work/libtorch/lib/x86_64-linux-gnu/libc10_cuda.so")
fi

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
    -Dc10_LIBRARY="$t/libc10.so" "${cmake_cuda[@]}" > "$work/configure.log" 2>&1 || { log "configure failed: $work/configure.log"; exit 1; }
cmake --build "$work/build" --target ckpt ckpt_compute -j "$(nproc)" > "$work/build.log" 2>&1 ||
    { log "build failed: $work/build.log"; exit 1; }
want=libtorch_cpu.so.2
[ $cuda -eq 1 ] && want=libtorch_cuda.so.2
if ! readelf -d "$work/build/bin/libckpt_compute.so" | grep -q "$want"; then
    log "the compute module did not link trixie's LibTorch ($want): $(readelf -d "$work/build/bin/libckpt_compute.so" | grep torch)"
    exit 1
fi
log "$("$work/ckpt" devices | tr '\n' ' ')"

# 4. Fixtures by that PyTorch, and every CLI test it judges.
"$work/python" tests/fixtures/generate_fixtures.py --out "$work/fixtures" > "$work/fixtures.log" 2>&1 ||
    { log "fixtures failed: $work/fixtures.log"; exit 1; }
status=0
# scan: there the weights_only verdict must agree with that PyTorch's torch.load both ways.
for t in info convert predict tensors export optimizer diff scan; do
    test=tests/cli/test_${t}_vs_torch.py
    [ -f "$test" ] || test=tests/cli/test_${t}.py
    if "$work/python" "$test" --ckpt "$work/ckpt" --fixtures "$work/fixtures" > "$work/$t.log" 2>&1; then
        log "PASS $t: $(tail -1 "$work/$t.log")"
    else
        log "FAIL $t: $(tail -1 "$work/$t.log") (see $work/$t.log)"
        status=1
    fi
done
# With --cuda: the GPU check itself, which must run its CPU parts and then say that nothing ran on
# a GPU (exit 2), not fail and not claim a pass.
if [ $cuda -eq 1 ]; then
    gpu=0
    scripts/gpu-check.sh --python "$work/python" --ckpt "$work/ckpt" > "$work/gpu-check.log" 2>&1 || gpu=$?
    if [ $gpu -eq 2 ] && grep -q '^== NOT CHECKED: no CUDA device; CPU parts passed' "$work/gpu-check.log"; then
        log "PASS gpu-check: $(tail -1 "$work/gpu-check.log")"
    else
        log "FAIL gpu-check (exit $gpu): $(tail -1 "$work/gpu-check.log") (see $work/gpu-check.log)"
        status=1
    fi
fi
exit $status
