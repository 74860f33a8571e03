#!/usr/bin/env bash
# The GPU check (issue 11): on a Linux machine with an NVIDIA GPU and a CUDA build of PyTorch for
# Python, with no Qt and no network. Builds the CLI against that PyTorch's LibTorch, makes the test
# fixtures with that PyTorch (a current 2.x writes byteorder, .data/serialization_id and
# .format_version records), and checks that
#   - `ckpt info` reads every fixture as that PyTorch lists it (tests/cli/test_info_vs_torch.py),
#   - that PyTorch loads every output of `ckpt convert` (tests/cli/test_convert_vs_torch.py),
#   - `ckpt predict --device cuda` agrees with --device cpu and with PyTorch's CUDA forward, and the
#     exported TorchScript runs on CUDA with the same outputs (scripts/gpu_check.py),
#   - and measures prediction latency on GPU and CPU side by side with PyTorch's.
# It prints one report (also written to build/gpu/report.txt) and exits 0 only when every check ran
# on a GPU and passed.
#
#   scripts/gpu-check.sh [--python python3] [--ckpt path/to/ckpt] [--third-party DIR]
#     --python       the interpreter whose torch to use (default: python3 on PATH)
#     --ckpt         use this ckpt instead of building one (its compute module beside it)
#     --third-party  folder with nlohmann/json.hpp and CLI/CLI.hpp when their packages are missing
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
ckpt=""
third=""
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --ckpt) ckpt="$2"; shift 2 ;;
        --third-party) third="$2"; shift 2 ;;
        *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
    esac
done
out=build/gpu
mkdir -p "$out"
report="$out/report.txt"
: > "$report"
say() { echo "$*" | tee -a "$report"; }
start=$(date +%s)

say "== Checkpoint Studio GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: not available')"
say "python: $("$python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())')"

if [ -z "$ckpt" ]; then
    args=(-S . -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_GUI=OFF -DCKPT_BUILD_TESTS=OFF
          -DCKPT_TORCH_FROM_PYTHON=ON -DPython3_EXECUTABLE="$(command -v "$python")")
    [ -n "$third" ] && args+=(-DCKPT_THIRD_PARTY_DIR="$third")
    # A CUDA LibTorch's CMake files look for the CUDA toolkit: point them at the one PyTorch names.
    cuda_home=$("$python" -c 'from torch.utils.cpp_extension import CUDA_HOME; print(CUDA_HOME or "")' 2>/dev/null || true)
    nvcc=$(command -v nvcc || true)
    [ -z "$nvcc" ] && [ -n "$cuda_home" ] && [ -x "$cuda_home/bin/nvcc" ] && nvcc=$cuda_home/bin/nvcc
    # Both CUDA modules LibTorch's files use (FindCUDAToolkit and the older FindCUDA) get the same
    # toolkit, so that a second CUDA elsewhere on the machine cannot be mixed in.
    [ -n "$nvcc" ] && args+=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc")")"
                             -DCUDA_TOOLKIT_ROOT_DIR="$(dirname "$(dirname "$nvcc")")")
    say "toolchain: $(c++ --version | head -1); cmake $(cmake --version | head -1 | awk '{print $3}'); nvcc ${nvcc:-none}"
    t0=$(date +%s)
    failed() {  # the log's end goes into the report: the machine may be gone before anyone reads the file
        say "FAIL $1 (see $2); its last lines:"
        tail -25 "$2" | tee -a "$report"
        exit 1
    }
    cmake "${args[@]}" > "$out/configure.log" 2>&1 || failed configure "$out/configure.log"
    cmake --build "$out/build" --target ckpt ckpt_compute -j "$(nproc)" > "$out/build.log" 2>&1 || failed build "$out/build.log"
    ckpt="$out/build/bin/ckpt"
    say "built ckpt against $(grep -m1 'LibTorch' "$out/configure.log" | sed 's/^-- //') in $(( $(date +%s) - t0 )) s"
fi

t0=$(date +%s)
"$python" tests/fixtures/generate_fixtures.py --out "$out/fixtures" > "$out/fixtures.log" 2>&1 ||
    { say "FAIL fixtures (see $out/fixtures.log)"; exit 1; }
say "fixtures written by this PyTorch in $(( $(date +%s) - t0 )) s"

status=0
run() {
    local name="$1"; shift
    local t0=$(date +%s)
    if "$@" > "$out/$name.log" 2>&1; then
        say "PASS $name: $(tail -1 "$out/$name.log") ($(( $(date +%s) - t0 )) s)"
    else
        say "FAIL $name: $(tail -1 "$out/$name.log") (see $out/$name.log); the failures:"
        grep -E '^FAIL|Error|Traceback' "$out/$name.log" | head -20 | tee -a "$report"
        status=1
    fi
}
run info "$python" tests/cli/test_info_vs_torch.py --ckpt "$ckpt" --fixtures "$out/fixtures"
run convert "$python" tests/cli/test_convert_vs_torch.py --ckpt "$ckpt" --fixtures "$out/fixtures"
predict=0
"$python" scripts/gpu_check.py --ckpt "$ckpt" --fixtures "$out/fixtures" --work "$out" > "$out/predict.log" 2>&1 || predict=$?
tee -a "$report" < "$out/predict.log"
if [ $predict -eq 2 ]; then
    say "== NOT CHECKED: no CUDA device; CPU parts $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
    exit 2
fi
[ $predict -eq 0 ] || status=1
say "== $( [ $status -eq 0 ] && echo PASSED || echo FAILED ) in $(( $(date +%s) - start )) s; report: $report"
exit $status
