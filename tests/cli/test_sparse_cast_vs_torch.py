#!/usr/bin/env python3
"""`ckpt convert --dtype` on sparse COO tensors judged by PyTorch: what torch.load reads from the
output is what torch's own `.to(dtype)` gives (a state dict's tensors one by one, a full model by
Module.to): the values cast, bit for bit, the indices kept (int64, unchanged), the size and the
layout kept; integer sparse tensors and the dense ones as torch leaves or casts them. The inputs
are made here by torch.save, into a temporary folder."""
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

DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16, 'float64': torch.float64}


def cast(t, dtype):
    """What torch's .to(dtype) of a state dict or module does to one tensor: floating ones cast."""
    return t.to(dtype) if t.is_floating_point() else t


def same(mine, theirs):
    """Equal to the bit as torch holds them: layout, dtype, size, and for sparse tensors the
    indices and values as saved (not coalesced)."""
    if mine.layout != theirs.layout or mine.dtype != theirs.dtype or mine.shape != theirs.shape:
        return False
    if theirs.layout == torch.sparse_coo:
        return (mine._indices().dtype == theirs._indices().dtype and torch.equal(mine._indices(), theirs._indices())
                and torch.equal(mine._values(), theirs._values()))
    return torch.equal(mine, theirs)


def describe(t):
    return '%s %s %s' % (t.layout, t.dtype, list(t.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-sparse-cast-')
    torch.manual_seed(0)
    idx = torch.tensor([[0, 1, 2, 0], [2, 0, 1, 2]])  # (0, 2) twice: uncoalesced, as saved
    sd = {
        'dense': torch.randn(2, 3),
        'coo': torch.sparse_coo_tensor(idx, torch.randn(4) * 1e3, (3, 4)),
        'coo64': torch.sparse_coo_tensor(idx, torch.randn(4, dtype=torch.float64) / 3, (3, 4)),
        'coo_hybrid': torch.sparse_coo_tensor(idx[:1], torch.randn(4, 2), (3, 2)),
        'coo_int': torch.sparse_coo_tensor(idx, torch.tensor([1, 2, 3, 4]), (3, 4)),
        'steps': torch.tensor(7),
    }
    sd_path = os.path.join(tmp, 'sparse_sd.pth')
    torch.save(sd, sd_path)

    model = nn.Linear(4, 3)
    model.register_buffer('mask', torch.sparse_coo_tensor(idx, torch.rand(4), (3, 4)))
    model_path = os.path.join(tmp, 'sparse_model.pth')
    torch.save(model, model_path)

    for name, dtype in DTYPES.items():
        out = os.path.join(tmp, 'sd_%s.pth' % name)
        r = subprocess.run([a.ckpt, 'convert', sd_path, '--to', 'state-dict', '--dtype', name, '-o', out],
                           capture_output=True, text=True, timeout=120)
        if res.check(r.returncode == 0, 'state dict --dtype ' + name, r.stderr):
            got = torch.load(out)  # written by ckpt from a file made here
            res.check(list(got) == list(sd), 'state dict --dtype %s: keys' % name, list(got))
            for k, t in sd.items():
                want = cast(t, dtype)
                res.check(k in got and same(got[k], want), 'state dict --dtype %s: %s' % (name, k),
                          '%s, torch gives %s' % (describe(got[k]) if k in got else 'missing', describe(want)))

        out = os.path.join(tmp, 'model_%s.pth' % name)
        r = subprocess.run([a.ckpt, 'convert', model_path, '--to', 'full-model', '--dtype', name, '-o', out],
                           capture_output=True, text=True, timeout=120)
        if res.check(r.returncode == 0, 'full model --dtype ' + name, r.stderr):
            got = torch.load(out)  # written by ckpt from a file made here
            want = torch.load(model_path).to(dtype)
            for k, t in want.state_dict().items():
                mine = got.state_dict().get(k)
                res.check(mine is not None and same(mine, t), 'full model --dtype %s: %s' % (name, k),
                          '%s, torch gives %s' % (describe(mine) if mine is not None else 'missing', describe(t)))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
