#!/usr/bin/env python3
"""Module trees whose modules are shared through the pickle's memo, written by torch.save itself: a
module that is its own child twice over (a cycle with two ways round each time), and one module
reached through many parents (a wide DAG). `ckpt predict --show-arch` must answer at once, naming
the file and the shared module, where a walk of every path through the tree never ends."""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-shared-modules-')

    cyclic = nn.Sequential(nn.Linear(3, 2))
    cyclic.add_module('a', cyclic)  # torch lets a module hold itself; pickle's memo keeps one object
    cyclic.add_module('b', cyclic)
    cycle = os.path.join(tmp, 'cycle.pth')
    torch.save(cyclic, cycle)

    # Twenty levels of two parents sharing the level below (2^20 paths, one object a level), under
    # a Linear: few enough paths in all for the reader, which lists them.
    shared = nn.ReLU()
    for _ in range(20):
        shared = nn.Sequential(shared, shared)
    dag = os.path.join(tmp, 'dag.pth')
    torch.save(nn.Sequential(nn.Linear(3, 2), shared), dag)

    for path, shared_path in ((cycle, 'a'), (dag, '1' + '.0' * 19 + '.1')):
        name = os.path.basename(path)
        try:
            r = subprocess.run([a.ckpt, 'predict', path, '--show-arch'], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            res.check(False, name, 'ckpt predict --show-arch did not end within 60 s')
            continue
        res.check(r.returncode != 0, name, 'exit %d: %s' % (r.returncode, r.stdout))
        res.check(name in r.stderr and 'module %s is used twice' % shared_path in r.stderr, name, r.stderr)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
