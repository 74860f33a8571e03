#!/usr/bin/env python3
"""Empty numpy arrays in a checkpoint, judged by numpy and torch.

Pickle protocol 2 (what torch.save writes) has no opcode for an empty bytes: it pickles one as a
call `bytes()`, and numpy's reduce of an empty array keeps exactly that as the array's data. Such an
array must read as what torch.load gives back (an empty ndarray of its dtype and shape), printed by
`ckpt info` as numpy's repr prints it, not as an opaque `_reconstruct(...)` call. Zip and legacy
files, and a plain pickle of protocol 2 and 4, are made here, into a temporary folder.

Usage:  /usr/bin/python3 test_empty_numpy_vs_numpy.py --ckpt PATH/TO/ckpt
Prints one line per failure and `N passed, M failed` last; exits 1 on failure.
"""
import argparse
import collections
import json
import os
import pickle
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from results import Results  # noqa: E402

ARRAYS = collections.OrderedDict([
    ('empty_f64', np.zeros(0)),
    ('empty_f32_0x3', np.zeros((0, 3), dtype='float32')),
    ('empty_i64', np.zeros(0, dtype='int64')),
    ('empty_bool_2x0x1', np.zeros((2, 0, 1), dtype=bool)),
    ('empty_u8_3x0', np.zeros((3, 0), dtype='uint8')),
    ('empty_c64', np.zeros(0, dtype='complex64')),
    ('empty_be_f8', np.zeros(0, dtype='>f8')),
    ('empty_fortran', np.asfortranarray(np.zeros((0, 2), dtype='int16'))),
    ('full', np.arange(3, dtype='int32')),  # beside them, as it was
])


def content(weights=True):
    # Beside a model's weights, as a training script keeps them: the arrays are entries of the
    # checkpoint, not its state dict. (pickle.dump of a tensor nests a torch.save in it: none there.)
    extra = dict(model_state_dict=torch.nn.Linear(2, 2).state_dict()) if weights else dict(tags=['run'])
    return dict(epoch=1, **extra, **ARRAYS)


def check_file(res, ckpt, path, how):
    r = subprocess.run([ckpt, 'info', path], capture_output=True, text=True, timeout=60)
    lines = {line.split(':', 1)[0].strip(): line.split(':', 1)[1].strip() for line in r.stdout.splitlines()
             if line.startswith('  ') and ':' in line}
    j = subprocess.run([ckpt, 'info', '--json', path], capture_output=True, text=True, timeout=60)
    meta = json.loads(j.stdout).get('metadata', {}) if j.returncode == 0 else {}
    if how.startswith('pickle'):
        with open(path, 'rb') as f:
            loaded = pickle.load(f)
    else:
        loaded = torch.load(path)
    for key, a in ARRAYS.items():
        theirs = loaded[key]
        res.check(isinstance(theirs, np.ndarray), '%s %s: torch.load gives an ndarray' % (how, key), type(theirs).__name__)
        res.check(lines.get(key) == repr(theirs), '%s %s: printed as numpy prints it' % (how, key),
                  '%r, numpy %r (%s)' % (lines.get(key), repr(theirs), r.stderr.strip()))
        t = meta.get(key, {}).get('__tensor__', {}) if isinstance(meta.get(key), dict) else {}
        res.check(t.get('dtype') == theirs.dtype.name and t.get('shape') == list(theirs.shape) and
                  t.get('class') == 'numpy.ndarray',
                  '%s %s: an ndarray of numpy\'s dtype and shape in info --json' % (how, key),
                  '%r, numpy %s %r' % (meta.get(key), theirs.dtype.name, list(theirs.shape)))
    res.check(r.returncode == 0 and j.returncode == 0, '%s: read' % how, r.stderr + j.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ckpt', required=True, help='path to the ckpt binary')
    args = ap.parse_args()
    ckpt = os.path.abspath(args.ckpt)
    res = Results()
    with tempfile.TemporaryDirectory(prefix='ckpt-empty-numpy-') as folder:
        files = []
        for how, kw in (('zip', {}), ('legacy', {'_use_new_zipfile_serialization': False})):
            path = os.path.join(folder, how + '.pth')
            torch.save(content(), path, **kw)
            files.append((path, how))
        for protocol in (2, 4):
            path = os.path.join(folder, 'protocol%d.pkl' % protocol)
            with open(path, 'wb') as f:
                pickle.dump(content(weights=False), f, protocol=protocol)
            files.append((path, 'pickle protocol %d' % protocol))
        for path, how in files:
            try:
                check_file(res, ckpt, path, how)
            except Exception as e:  # a harness problem must not hide the other files
                res.check(False, path, 'harness error: %s: %s' % (type(e).__name__, e))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
