#!/usr/bin/env python3
"""The layering DESIGN.md promises, checked on the built programs: `ckpt` needs neither Qt nor
LibTorch to start (it loads the compute module only for commands that need numbers), and the
compute module is what brings LibTorch."""
import subprocess
import sys


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if "(NEEDED)" in line]


def main():
    ckpt, module = sys.argv[1], sys.argv[2]
    passed = failed = 0
    deps = needed(ckpt)
    for bad in ("libtorch", "libc10", "libQt6"):
        hits = [d for d in deps if d.startswith(bad)]
        if hits:
            print(f"FAIL: ckpt links {hits}")
            failed += 1
        else:
            passed += 1
    if any(d.startswith("libtorch") for d in needed(module)):
        passed += 1
    else:
        print("FAIL: the compute module does not link LibTorch")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
