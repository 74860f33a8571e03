#!/usr/bin/env python3
"""`ckpt scan` on fixtures: exit 0 for clean files, 3 when a dangerous global is named, 1 when a
file cannot be read; JSON flags the dangerous global; nothing in any file is ever run."""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    expected = json.load(open(os.path.join(a.fixtures, "expected.json")))
    hostile = expected["__hostile__"]
    results = Results()
    check = results.check

    def scan(*files, js=False):
        cmd = [a.ckpt, "scan", *[os.path.join(a.fixtures, f) for f in files]] + (["--json"] if js else [])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    for f in ("state_dict.pth", "training_checkpoint.pth", "inference_package.pth", "legacy_state_dict.pth"):
        r = scan(f)
        check(r.returncode == 0, f"{f}: exit {r.returncode}, expected 0: {r.stderr}")
    for f in ("os_system.pth", "os_system_legacy.pth"):
        marker = hostile[f]["marker"]
        if os.path.exists(marker):
            os.remove(marker)
        r = scan(f, js=True)
        check(r.returncode == 3, f"{f}: exit {r.returncode}, expected 3")
        rep = json.loads(r.stdout)
        dangerous = [g["name"] for g in rep["globals"] if g["class"] == "dangerous"]
        check(dangerous == ["posix.system"], f"{f}: dangerous globals {dangerous}")
        check(rep["dangerous"] is True and rep["weights_only_loadable"] is False, f"{f}: verdict {rep}")
        check(not os.path.exists(marker), f"{f}: the payload ran (marker exists)")
    # Every hostile input that names a dangerous global is flagged; the others are not.
    for f, info in hostile.items():
        if info.get("expect") != "ok":
            continue
        r = scan(f)
        want = 3 if info.get("dangerous") else 0
        check(r.returncode == want, f"{f}: exit {r.returncode}, expected {want}: {r.stdout[:200]}")
    # `ckpt info` says the same in its text summary.
    for f, want in (("os_system.pth", "Security: DANGEROUS: posix.system"),
                    ("state_dict.pth", "Security: no dangerous globals; torch.load(weights_only=True) would accept it")):
        r = subprocess.run([a.ckpt, "info", os.path.join(a.fixtures, f)], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and want in r.stdout, f"info {f}: {want!r} not in the summary")
    r = scan("state_dict.pth", "os_system.pth")
    check(r.returncode == 3, f"mixed: exit {r.returncode}, expected 3")
    r = scan("truncated.pth", "os_system.pth")
    check(r.returncode == 1, f"unreadable file: exit {r.returncode}, expected 1")
    check(r.stderr.startswith("ckpt: ") and "truncated.pth" in r.stderr, f"error line: {r.stderr!r}")
    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
