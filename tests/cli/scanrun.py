"""`ckpt scan` of one file, and torch's own weights_only verdict on it: shared by the scan tests."""
import json
import subprocess

import torch


def scanner(ckpt):
    """scan(path, *extra) -> CompletedProcess (bytes), and scan_json(path) -> (exit code, report)."""
    def scan(path, *extra):
        return subprocess.run([ckpt, 'scan', path] + list(extra), capture_output=True, timeout=120)

    def scan_json(path):
        r = scan(path, '--json')
        return r.returncode, json.loads(r.stdout)

    return scan, scan_json


def refused_by_torch(path):
    """What torch.load(weights_only=True) says when it refuses the file; None when it loads it."""
    try:
        torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any refusal
        return str(e)
    return None
