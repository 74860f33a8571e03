#!/usr/bin/env python3
"""`ckpt export` judged by PyTorch and numpy: every dtype and layout written to .npy loads with
numpy.load to the values torch.load gives; .csv reads back with numpy.loadtxt; writes never touch
an input, never replace a file without --force, and leave no temporary file behind."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from results import Results  # noqa: E402


def reference(t):
    if t.is_quantized:
        t = t.dequantize()
    if t.is_sparse:
        t = t.to_dense()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def as_int(text):
    """A .csv field as the integer it spells, or the text itself when it is not an integer."""
    try:
        return int(text)
    except ValueError:
        return text


def quantized_tensors():
    """Quantized tensors of every scheme and integer type, large enough that a value computed in
    another precision than torch's float32 (or by another of its loops) would show."""
    g = torch.Generator().manual_seed(71)
    x = torch.randn(203, 37, generator=g) * 3
    scales = torch.rand(203, generator=g, dtype=torch.float64) * 0.1 + 0.001
    zeros = torch.randint(-10, 10, (203,), generator=g)
    cols = torch.rand(37, generator=g, dtype=torch.float64) * 0.1 + 0.001
    return {
        'pt_qint8': torch.quantize_per_tensor(x, 0.1, 3, torch.qint8),
        'pt_quint8': torch.quantize_per_tensor(x, 0.0731, 128, torch.quint8),
        'pt_qint32': torch.quantize_per_tensor(x * 1e6, 0.0131, 12345, torch.qint32),
        'pt_qint32_big': torch.quantize_per_tensor(x * 1e8, 0.3, -123457, torch.qint32),
        'pt_qint8_transposed': torch.quantize_per_tensor(x, 0.0123, -5, torch.qint8).t(),
        'pc_qint8': torch.quantize_per_channel(x, scales, zeros, 0, torch.qint8),
        'pc_quint8': torch.quantize_per_channel(x, scales, zeros + 128, 0, torch.quint8),
        'pc_qint32': torch.quantize_per_channel(x * 1e6, scales, zeros * 1000 + 1234567, 0, torch.qint32),
        'pc_qint8_axis1': torch.quantize_per_channel(x, cols, torch.randint(-10, 10, (37,), generator=g), 1,
                                                     torch.qint8),
        'pc_quint8_float_qparams': torch.quantize_per_channel(x, scales.float(), torch.randn(203, generator=g),
                                                              0, torch.quint8),
    }


def same_bits(got, want):
    return got.dtype == want.dtype and got.shape == want.shape and np.array_equal(
        got.reshape(-1).view(np.uint32), np.ascontiguousarray(want).reshape(-1).view(np.uint32))


def quantized_cases(res, ckpt, out):
    """Dequantized values are tensor.dequantize()'s float32 bits, every one (computed in float64
    and rounded once, about one in six is a unit in the last place off)."""
    path = os.path.join(out, 'quantized.pth')
    torch.save(quantized_tensors(), path)
    for key, t in torch.load(path).items():
        dest = os.path.join(out, 'quantized-%s.npy' % key)
        r = subprocess.run([ckpt, 'export', path, key, '-o', dest], capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, 'quantized %s exported' % key, r.stderr):
            continue
        got, want = np.load(dest), t.dequantize().numpy()
        res.check(same_bits(got, want), 'quantized %s (%s): .npy is tensor.dequantize() bit for bit' % (key, t.qscheme()),
                  '%d of %d differ' % (int((got != want).sum()) if got.shape == want.shape else -1, want.size))


def csv_layout_cases(res, ckpt, out):
    """A .csv is rows of columns: a tensor of more than two dimensions is written with a row for each
    index of its leading dimensions, and a note says how; 0-d, 1-d and 2-d tensors are written as
    they are, without one."""
    path = os.path.join(out, 'layouts.pth')
    torch.save({'t3': torch.arange(24.).reshape(2, 3, 4), 't4': torch.arange(60.).reshape(5, 1, 3, 4),
                'i3': torch.arange(24).reshape(2, 3, 4), 'm': torch.arange(6.).reshape(2, 3),
                'v': torch.arange(5.), 's': torch.tensor(2.5)}, path)
    for key, t in torch.load(path).items():
        dest = os.path.join(out, 'layouts-%s.csv' % key)
        r = subprocess.run([ckpt, 'export', path, key, '-o', dest], capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, 'layouts %s .csv' % key, r.stderr):
            continue
        got = np.loadtxt(dest, delimiter=',', ndmin=2)
        rows = int(np.prod(t.shape[:-1])) if t.dim() > 1 else 1
        want = t.double().numpy().reshape(rows, -1)
        notes = [line for line in r.stdout.splitlines() if line.startswith('note: ')]
        if t.dim() > 2:
            said = ('%d rows of %d values' % (rows, t.shape[-1]) in notes[0] and str(list(t.shape)) in notes[0]
                    if len(notes) == 1 else False)
        else:
            said = not notes
        res.check(got.shape == want.shape and np.array_equal(got, want), 'layouts %s .csv: values row by row' % key,
                  '%s vs %s' % (got.shape, want.shape))
        res.check(said, 'layouts %s (%d-d) .csv: %s' % (key, t.dim(), 'a note says the rows and columns' if t.dim() > 2
                                                       else 'no note'), '%r' % notes)


def slash_key_cases(res, ckpt, out):
    """A key that holds '/' names its entry as it is written before it is read as a path; where the
    text is both, the output says which was taken."""
    path = os.path.join(out, 'slash.pth')
    torch.save({'encoder/layer_0/kernel': torch.arange(4.), 'a/b': torch.arange(3.) + 10,
                'a': {'b': torch.arange(2.) + 20, 'c': torch.arange(2.) + 30}}, path)
    theirs = torch.load(path)
    for key, want, taken in (('encoder/layer_0/kernel', theirs['encoder/layer_0/kernel'], None),
                             ('a/b', theirs['a/b'], 'a/b'), ('a/c', theirs['a']['c'], None)):
        dest = os.path.join(out, 'slash-%d.npy' % len(want))
        r = subprocess.run([ckpt, 'export', path, key, '-o', dest], capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, 'export %r from a file whose keys hold /' % key, r.stderr):
            continue
        notes = [line for line in r.stdout.splitlines() if line.startswith('note: ')]
        said = any("'%s'" % taken in n and 'path' in n for n in notes) if taken else not notes
        res.check(np.array_equal(np.load(dest), want.numpy()) and said,
                  'export %r: the entry torch.load gives under it%s' % (key, ', and a note says which' if taken else ''),
                  '%r' % notes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))  # the subclass fixture's class
    res = Results()
    out = tempfile.mkdtemp(prefix='ckpt-export-')

    def export(src, key, dest, *extra):
        return subprocess.run([a.ckpt, 'export', os.path.join(a.fixtures, src), key, '-o', dest, *extra],
                              capture_output=True, text=True, timeout=60)

    for src in ('dtypes.pth', 'views.pth', 'special_tensors.pth', 'nan_inf.pth', 'int_extremes.pth'):
        theirs = torch.load(os.path.join(a.fixtures, src), map_location='cpu', weights_only=False)
        for key, t in theirs.items():
            if t.is_meta:
                continue
            dest = os.path.join(out, '%s-%s.npy' % (src, key))
            r = export(src, key, dest)
            if not res.check(r.returncode == 0, '%s %s' % (src, key), r.stderr):
                continue
            got, want = np.load(dest), reference(t)
            res.check(got.dtype == want.dtype and got.shape == want.shape and
                      np.array_equal(got, want, equal_nan=True), '%s %s .npy' % (src, key),
                      '%s %s vs %s %s' % (got.dtype, got.shape, want.dtype, want.shape))
            # What the file holds that is not the tensor as stored is said (numpy has no bfloat16).
            notes = [line for line in r.stdout.splitlines() if line.startswith('note: ')]
            said = {'quantized': t.is_quantized, 'sparse': t.is_sparse,
                    'bfloat16': t.dtype == torch.bfloat16 and not t.is_quantized}
            res.check(all(any(word in n for n in notes) == want_said for word, want_said in said.items()),
                      '%s %s: a note exactly where the file is not the tensor as stored' % (src, key), '%r' % notes)
    for src, key in (('dtypes.pth', 'float64'), ('dtypes.pth', 'int32'), ('views.pth', 'narrow'),
                     ('training_checkpoint.pth', 'fc1.weight')):
        dest = os.path.join(out, '%s-%s.csv' % (src, key))
        r = export(src, key, dest)
        if not res.check(r.returncode == 0, '%s %s csv' % (src, key), r.stderr):
            continue
        obj = torch.load(os.path.join(a.fixtures, src), map_location='cpu', weights_only=False)
        t = obj['model_state_dict'][key] if 'model_state_dict' in obj else obj[key]
        got = np.loadtxt(dest, delimiter=',', ndmin=2)
        want = t.double().numpy().reshape(-1, t.shape[-1])
        res.check(got.shape == want.shape and np.allclose(got, want, rtol=1e-7, atol=0), '%s %s .csv' % (src, key))

    # Integers in .csv exactly, int64 at its ends and past 2^53 (a double in between would round).
    theirs = torch.load(os.path.join(a.fixtures, 'int_extremes.pth'), weights_only=False)
    for key in ('int64', 'int64_strided', 'int32', 'step'):
        dest = os.path.join(out, 'int_extremes-%s.csv' % key)
        r = export('int_extremes.pth', key, dest)
        if not res.check(r.returncode == 0, 'int_extremes.pth %s csv' % key, r.stderr):
            continue
        want = theirs[key].reshape(-1, theirs[key].shape[-1] if theirs[key].dim() else 1).tolist()
        got = [[as_int(x) for x in line.split(',')] for line in open(dest).read().splitlines()]
        res.check(got == want, 'int_extremes.pth %s .csv exactly' % key, '%s vs %s' % (got, want))
    # Types numpy lacks are widened, exactly, and said so.
    for key, word in (('f8_e4m3fn', 'float8_e4m3fn'), ('f8_e5m2', 'float8_e5m2'), ('c32', 'complex32'), ('u16', None)):
        r = export('newer_dtypes.pth', key, os.path.join(out, 'widened-%s.npy' % key))
        notes = [l for l in r.stdout.splitlines() if l.startswith('note: ')]
        res.check(r.returncode == 0 and (any(word in n for n in notes) if word else not notes),
                  'newer_dtypes.pth %s .npy: %s' % (key, 'widened and said so' if word else 'no note'), '%r' % notes)
    # The unsigned types torch 1.x lacks: .npy in numpy's own uint16/32/64, .csv exactly, up to 2^64 - 1.
    newer = json.load(open(os.path.join(a.fixtures, 'expected.json')))['__newer_dtypes__']['tensors']
    for key, e in newer.items():
        if not e['dtype'].startswith('uint'):
            continue
        dest = os.path.join(out, 'newer-%s' % key)
        r1, r2 = export('newer_dtypes.pth', key, dest + '.npy'), export('newer_dtypes.pth', key, dest + '.csv')
        if not res.check(r1.returncode == 0 and r2.returncode == 0, 'newer_dtypes.pth %s' % key, r1.stderr + r2.stderr):
            continue
        got = np.load(dest + '.npy')
        res.check(got.dtype == np.dtype(e['dtype']) and list(got.shape) == e['shape'] and
                  got.flatten().tolist() == e['values'], 'newer_dtypes.pth %s .npy as numpy.%s' % (key, e['dtype']),
                  '%s %s %s' % (got.dtype, got.shape, got.flatten().tolist()))
        csv = [as_int(x) for line in open(dest + '.csv').read().splitlines() for x in line.split(',')]
        res.check(csv == e['values'], 'newer_dtypes.pth %s .csv exactly' % key, str(csv))

    quantized_cases(res, a.ckpt, out)
    csv_layout_cases(res, a.ckpt, out)
    slash_key_cases(res, a.ckpt, out)

    # Safety of writes.
    src_path = os.path.abspath(os.path.join(a.fixtures, 'views.pth'))
    before = open(src_path, 'rb').read()
    link = os.path.join(out, 'same-file.npy')
    os.symlink(src_path, link)
    r = subprocess.run([a.ckpt, 'export', src_path, 'base', '-o', link, '--force'], capture_output=True, text=True)
    res.check(r.returncode == 1 and 'input file' in r.stderr, 'input never overwritten', r.stderr)
    res.check(open(src_path, 'rb').read() == before, 'input unchanged')
    existing = os.path.join(out, 'existing.npy')
    with open(existing, 'wb') as f:
        f.write(b'keep me')
    r = export('views.pth', 'base', existing)
    res.check(r.returncode == 1 and 'already exists' in r.stderr, 'no replace without --force', r.stderr)
    res.check(open(existing, 'rb').read() == b'keep me', 'existing file kept')
    r = export('views.pth', 'base', existing, '--force')
    res.check(r.returncode == 0 and np.array_equal(np.load(existing), reference(torch.load(src_path, weights_only=False)['base'])),
              'replaced with --force', r.stderr)
    r = export('views.pth', 'base', os.path.join(out, 'no-such-dir', 'x.npy'))
    res.check(r.returncode == 1 and 'no-such-dir' in r.stderr, 'missing folder is a clear error', r.stderr)
    r = export('views.pth', 'nothing', os.path.join(out, 'x.npy'))
    res.check(r.returncode == 1 and "no tensor named 'nothing'" in r.stderr, 'missing key', r.stderr)
    r = export('special_tensors.pth', 'meta', os.path.join(out, 'meta.npy'))
    res.check(r.returncode == 1 and 'no data' in r.stderr, 'meta tensor refused', r.stderr)
    # A sharded checkpoint's shards are its inputs too: exporting over one (here through a .npy
    # name linked to it) is refused, --force or not.
    shards = os.path.join(out, 'shards')
    shutil.copytree(os.path.join(a.fixtures, 'sharded'), shards)
    shard = os.path.join(shards, 'model-00002-of-00002.bin')
    before = open(shard, 'rb').read()
    link = os.path.join(shards, 'shard2.npy')
    os.symlink(shard, link)
    r = subprocess.run([a.ckpt, 'export', os.path.join(shards, 'pytorch_model.bin.index.json'), 'fc1.bias', '-o', link,
                        '--force'], capture_output=True, text=True)
    res.check(r.returncode == 1 and 'input file' in r.stderr and open(shard, 'rb').read() == before,
              'a shard of the file is never overwritten', r.stderr)
    leftovers = [f for f in os.listdir(out) if f.startswith('.')]
    res.check(not leftovers, 'no temporary files left', str(leftovers))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
