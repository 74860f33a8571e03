#!/usr/bin/env python3
"""Judges files the tensor detail pane exported: each .npy must load with numpy to exactly the
tensor torch.load gives (the same reference as the CLI's export test), each .csv must read back
with numpy.loadtxt to its values. Usage: check_export.py FIXTURE KEY FILE [KEY FILE ...]"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cli'))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from test_export_vs_torch import reference  # noqa: E402


def main():
    fixture, pairs = sys.argv[1], sys.argv[2:]
    theirs = torch.load(fixture, map_location='cpu', weights_only=False)
    failures = 0
    for key, path in zip(pairs[::2], pairs[1::2]):
        want = reference(theirs[key])
        if path.endswith('.npy'):
            got = np.load(path)
            ok = got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want, equal_nan=True)
            detail = '%s %s vs %s %s' % (got.dtype, got.shape, want.dtype, want.shape)
        else:
            got = np.loadtxt(path, delimiter=',', ndmin=2)
            w = want.astype(np.float64).reshape(-1, want.shape[-1] if want.ndim else 1)
            ok = got.shape == w.shape and np.allclose(got, w, rtol=1e-7, atol=0, equal_nan=True)
            detail = '%s vs %s' % (got.shape, w.shape)
        print('%s %s %s: %s' % ('ok' if ok else 'FAIL', key, os.path.basename(path), detail))
        failures += not ok
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
