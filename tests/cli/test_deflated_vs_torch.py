#!/usr/bin/env python3
"""A torch file re-zipped with every record deflated (as re-zipping tools write it), judged by
PyTorch: `ckpt tensors --stats` gives torch's figures and `ckpt convert` (to .pth and to
.safetensors) writes torch's tensors; and a pass over many large deflated storages holds one at a
time: the peak memory of `tensors --stats` over eight 96 MiB storages stays below half of what
holding them all would take (each storage is inflated while its figures are computed, then let go)."""
import argparse
import collections
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402

import torch  # noqa: E402

MiB = 1 << 20


def deflate_copy(src, dst):
    """`src` re-zipped with every record deflated, as the fixtures' deflated.pth is made."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            copy = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            copy.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(copy, zin.read(info.filename))


def small_state_dict():
    """Storages shared by views, several dtypes, a NaN, a 0-d tensor and an empty one."""
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8) * 0.37 - 5.0
    base[2, 3] = float('nan')
    wide = torch.linspace(-2.5, 7.25, 30, dtype=torch.float64)
    return collections.OrderedDict([
        ('base', base), ('row', base[1]), ('narrow', base[1:4, 2:6]), ('transposed', base.t()),
        ('wide', wide), ('wide_tail', wide[10:]),
        ('half', torch.linspace(-1, 1, 17).half()), ('ints', torch.arange(-7, 20, dtype=torch.int64)),
        ('scalar', torch.tensor(3.5)), ('empty', torch.zeros(0, 3))])


def big_state_dict(count, mib):
    """`count` float64 storages of `mib` MiB each, values that deflate well but differ per storage."""
    n = mib * MiB // 8
    return collections.OrderedDict(
        ('layer%d.weight' % i, (torch.arange(n, dtype=torch.float64) % (251 + i)) * 0.5 - i) for i in range(count))


def torch_stats(t):
    v = t.double().flatten()
    nan = torch.isnan(v)
    f = {'nan': int(nan.sum()), 'l2': float(torch.linalg.norm(v))}
    if v.numel():
        f.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()))
        if v.numel() > 1:
            f['std'] = float(v.std())
    return f


def close(a, b):
    if isinstance(b, float) and math.isnan(b):
        return a is None or (isinstance(a, float) and math.isnan(a))  # JSON writes a NaN as null
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def read_safetensors(path):
    """The safetensors layout parsed by hand (Debian has no safetensors package)."""
    dtypes = {'F32': torch.float32, 'F16': torch.float16, 'F64': torch.float64, 'I64': torch.int64}
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    out = {}
    for name, h in header.items():
        b, e = h['data_offsets']
        raw = bytearray(data[8 + n + b:8 + n + e])
        t = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.zeros(0, dtype=torch.uint8)
        out[name] = t.view(dtypes[h['dtype']]).reshape(h['shape']).clone()
    return out


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        torch.nan_to_num(a.double(), nan=1e300), torch.nan_to_num(b.double(), nan=1e300))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    check = res.check
    with tempfile.TemporaryDirectory() as work:
        # Figures and conversion against torch.
        plain = os.path.join(work, 'plain.pth')
        torch.save(small_state_dict(), plain)
        src = os.path.join(work, 'deflated.pth')
        deflate_copy(plain, src)
        with zipfile.ZipFile(src) as z:
            check(all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist()), 'the input is not deflated')
        theirs = torch.load(src)
        r = subprocess.run([a.ckpt, 'tensors', src, '--stats', '--json'], capture_output=True, text=True, timeout=120)
        rows = json.loads(r.stdout)['tensors'] if r.returncode == 0 else []
        check([row['name'] for row in rows] == list(theirs), f'tensors --stats: exit {r.returncode}, rows {rows}')
        for row in rows:
            t = theirs[row['name']]
            want, got = torch_stats(t), row['stats']
            for k, w in want.items():
                check(close(got.get(k), w), f"stats {row['name']}: {k} {got.get(k)!r} != torch's {w!r}")
        for target in ('out.pth', 'out.safetensors'):
            out = os.path.join(work, target)
            r = subprocess.run([a.ckpt, 'convert', src, '-o', out, '--to',
                                'safetensors' if target.endswith('.safetensors') else 'state-dict'],
                               capture_output=True, text=True, timeout=120)
            if not check(r.returncode == 0, f'convert to {target}: exit {r.returncode}: {r.stderr}'):
                continue
            back = read_safetensors(out) if target.endswith('.safetensors') else torch.load(out)
            check(sorted(back) == sorted(theirs), f'convert to {target}: names {sorted(back)}')
            for name, t in theirs.items():
                check(name in back and same(back[name], t), f'convert to {target}: {name} differs from torch.load')

        # Eight deflated 96 MiB storages (768 MiB inflated): statistics over all of them hold one
        # at a time. The baseline is the same command on the small file (LibTorch's pages alike).
        count, mib = 8, 96
        big_plain = os.path.join(work, 'big_plain.pth')
        torch.save(big_state_dict(count, mib), big_plain)  # its tensors freed at once: this process stays small
        big = os.path.join(work, 'big_deflated.pth')
        deflate_copy(big_plain, big)
        os.remove(big_plain)
        check(os.path.getsize(big) < count * mib * MiB // 20, f'the big file deflates to {os.path.getsize(big)} bytes')

        def peak(path):
            """(exit status, stdout, peak resident MiB) of `tensors PATH --stats --json`. The peak is
            the process's own VmHWM, read until it exits: wait4's ru_maxrss would include this
            Python's memory, which a forked child carries up to its exec."""
            with tempfile.TemporaryFile() as out:
                p = subprocess.Popen([a.ckpt, 'tensors', path, '--stats', '--json'], stdout=out,
                                     stderr=subprocess.DEVNULL)
                hwm = 0
                while p.poll() is None:
                    try:
                        with open('/proc/%d/status' % p.pid) as f:
                            for line in f:
                                if line.startswith('VmHWM:'):
                                    hwm = max(hwm, int(line.split()[1]))
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.005)
                out.seek(0)
                return p.returncode, out.read(), hwm / 1024.0

        rc0, _, base = peak(src)
        rc, out, top = peak(big)
        check(rc0 == 0 and rc == 0, f'tensors --stats: exit {rc0}, {rc}')
        if rc == 0:
            rows = json.loads(out)['tensors']
            want = big_state_dict(count, mib)
            for row in rows:
                w = torch_stats(want[row['name']])
                check(all(close(row['stats'].get(k), v) for k, v in w.items()),
                      f"big {row['name']}: {row['stats']} != torch's {w}")
            check(len(rows) == count, f'big: {len(rows)} rows')
        held = top - base
        check(held < count * mib / 2,
              f'tensors --stats of {count} deflated {mib} MiB storages took {held:.0f} MiB over the baseline '
              f'({base:.0f} MiB): more than half of holding them all ({count * mib} MiB)')
        print(f'peak {top:.0f} MiB, baseline {base:.0f} MiB, {held:.0f} MiB for {count} x {mib} MiB deflated storages')
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
