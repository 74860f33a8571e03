#!/usr/bin/env python3
"""Small fixes judged by PyTorch 1.13, on inputs written here:
- `ckpt series` over an AveragedModel (SWA) file and plain ones says that n_averaged, the count of
  models averaged, is set aside (as `ckpt diff` does), with torch's count, rather than dropping it;
- packed quantized tensors (quint4x2, quint2x4): `tensors --json` and `show --json` give torch's
  element count, the bytes torch allocates for them, no problem, and the values torch's
  dequantize() gives;
- sparse CSR tensors (torch 1.13's _rebuild_sparse_csr_tensor) read as tensors: tensors and show
  give torch's shape, dtype, bytes and dense values, and convert carries them through so that
  torch.load gives an equal CSR tensor (--dtype casting its values only, as torch's .to does);
- `--dtype` takes the names torch and configs also use (fp16, half, bf16, double ...): the file torch
  loads holds what `.to(torch.half)` etc. gives; `-o` naming a folder is refused with a pointer to
  --out-dir, and nothing is written."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

NOTE = 'n_averaged (%d) is the count of models torch.optim.swa_utils.AveragedModel averaged, not a weight: set aside'


def run(ckpt, *args):
    p = subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def check_series_swa(r, ckpt, d):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    swa = torch.optim.swa_utils.AveragedModel(net)
    files = []
    for epoch in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        swa.update_parameters(net)
        path = os.path.join(d, 'run_%d.pth' % epoch)
        # The first two checkpoints are the plain model's, the last the averaged model's (SWA at the end).
        torch.save({'epoch': epoch, 'model': swa.state_dict() if epoch == 2 else net.state_dict()}, path)
        files.append(path)
    count = int(swa.n_averaged.item())
    code, out, err = run(ckpt, 'series', *files)
    r.check(code == 0, 'series: exit 0', err)
    r.check(NOTE % count in out, 'series: n_averaged of the SWA checkpoint said set aside, with its count', out[:3000])
    code, out, err = run(ckpt, 'series', '--json', *files)
    if r.check(code == 0, 'series --json: exit 0', err):
        j = json.loads(out)
        aside = [p.get('set_aside') or [] for p in j['checkpoints']]
        r.check(aside[:2] == [[], []], 'series --json: nothing set aside in the plain checkpoints', repr(aside))
        r.check(len(aside[2]) == 1 and aside[2][0]['name'] == 'n_averaged' and aside[2][0]['value'] == count and
                aside[2][0]['what'] == 'averaged_model_count', 'series --json: the SWA checkpoint sets n_averaged aside',
                repr(aside))
        names = [l['name'] for l in j['layers']]
        # Every layer of the model is there, once, aligned across the prefix; no n_averaged layer.
        r.check(sorted(names) == sorted(net.state_dict()),
                'series --json: the layers are the model\'s', repr(names))


def check_packed_quantized(r, ckpt, d):
    cases = [
        ('q4x2', torch.quint4x2, torch.arange(16.).reshape(2, 8) * 0.5 - 1, 0.5, 3),
        ('q4x2_odd', torch.quint4x2, torch.arange(6.).reshape(2, 3) + 1, 0.5, 1),  # rows padded in torch's allocation
        ('q2x4', torch.quint2x4, torch.arange(10.).reshape(2, 5) * 0.25, 0.25, 0),
        ('q4x2_1d', torch.quint4x2, torch.arange(5.), 1.0, 0),
    ]
    for name, dtype, x, scale, zp in cases:
        q = torch.quantize_per_tensor(x, scale, zp, dtype)
        path = os.path.join(d, name + '.pth')
        torch.save({'q': q}, path)
        q = torch.load(path)['q']
        want_bytes = q.storage().nbytes()
        deq = q.dequantize()
        code, out, err = run(ckpt, 'tensors', '--json', path)
        if r.check(code == 0, '%s: tensors --json exit 0' % name, err):
            t = json.loads(out)['tensors'][0]
            r.check(t['dtype'] == str(q.dtype).replace('torch.', '') and t['shape'] == list(q.shape),
                    '%s: dtype and shape as torch' % name, json.dumps(t))
            r.check(t['numel'] == q.numel(), '%s: numel %d (logical elements)' % (name, q.numel()), json.dumps(t))
            r.check(t['bytes'] == want_bytes, '%s: bytes %d, as torch allocates the packed elements' % (name, want_bytes),
                    json.dumps(t))
            r.check('problem' not in t, '%s: no problem' % name, json.dumps(t))
        code, out, err = run(ckpt, 'show', '--json', path, 'q')
        if r.check(code == 0, '%s: show --json exit 0' % name, err):
            t = json.loads(out)
            r.check(t.get('numel') == q.numel() and t.get('bytes') == want_bytes and 'problem' not in t,
                    '%s: show --json numel and bytes' % name, json.dumps(t)[:1000])
            got = t.get('values')
            r.check(got == deq.reshape(-1).tolist(), '%s: values as dequantize() gives them' % name,
                    '%r vs %r' % (got, deq.reshape(-1).tolist()))
            st = t.get('stats', {})
            r.check(st.get('min') == deq.min().item() and st.get('max') == deq.max().item(),
                    '%s: min and max as torch' % name, json.dumps(st))


def same_csr(mine, theirs):
    """Equal as torch holds them: layout, dtype, size, and crow/col indices and values as saved."""
    return (mine.layout == theirs.layout == torch.sparse_csr and mine.dtype == theirs.dtype and
            mine.shape == theirs.shape and mine.crow_indices().dtype == theirs.crow_indices().dtype and
            torch.equal(mine.crow_indices(), theirs.crow_indices()) and
            torch.equal(mine.col_indices(), theirs.col_indices()) and torch.equal(mine.values(), theirs.values()))


def check_sparse_csr(r, ckpt, d):
    torch.manual_seed(0)
    dense = torch.randn(4, 5) * (torch.rand(4, 5) > 0.6)
    sd = {'w': dense.to_sparse_csr(), 'w64': (dense.double() / 3).to_sparse_csr(), 'b': torch.randn(4)}
    path = os.path.join(d, 'csr_sd.pth')
    torch.save(sd, path)
    sd = torch.load(path)
    code, out, err = run(ckpt, 'tensors', '--json', path)
    if r.check(code == 0, 'csr: tensors --json exit 0', err):
        got = {t['name']: t for t in json.loads(out)['tensors']}
        r.check(sorted(got) == sorted(sd), 'csr: the state dict is its three tensors', repr(sorted(got)))
        for k in ('w', 'w64'):
            t, want = got.get(k, {}), sd[k]
            parts = (want.crow_indices(), want.col_indices(), want.values())
            r.check(t.get('shape') == list(want.shape) and t.get('dtype') == str(want.dtype).replace('torch.', '') and
                    t.get('numel') == want.numel() and 'problem' not in t,
                    'csr: tensors --json %s: shape, dtype, numel as torch' % k, json.dumps(t))
            r.check(t.get('bytes') == sum(p.numel() * p.element_size() for p in parts),
                    'csr: tensors --json %s: bytes of crow_indices, col_indices and values' % k, json.dumps(t))
    # info --json names the layout as torch does (torch.sparse_csr), as it says sparse_coo for COO.
    code, out, err = run(ckpt, 'info', '--json', path)
    if r.check(code == 0, 'csr: info --json exit 0', err):
        listed = {t['name']: t for t in json.loads(out)['state_dict']['tensors']}
        for k in ('w', 'w64', 'b'):
            want = 'strided' if sd[k].layout == torch.strided else str(sd[k].layout).replace('torch.', '')
            r.check(listed.get(k, {}).get('layout', 'strided') == want,
                    'csr: info --json %s: layout as torch names it' % k, json.dumps(listed.get(k)))
    code, out, err = run(ckpt, 'show', '--json', path, 'w')
    if r.check(code == 0, 'csr: show --json exit 0', err):
        t = json.loads(out)
        r.check(t.get('values') == sd['w'].to_dense().reshape(-1).tolist(), 'csr: show values as to_dense() gives',
                repr(t.get('values')))
    for dtype in (None, 'float16'):
        dest = os.path.join(d, 'csr_out_%s.pth' % dtype)
        extra = ['--dtype', dtype] if dtype else []
        p = subprocess.run([ckpt, 'convert', path, '--to', 'state-dict', '-o', dest, *extra], capture_output=True,
                           text=True, timeout=300)
        where = 'csr: convert --to state-dict %s' % ' '.join(extra)
        if r.check(p.returncode == 0, where + ': exit 0', p.stderr):
            back = torch.load(dest)  # written by ckpt from a file made here
            r.check(list(back) == list(sd), where + ': keys', repr(list(back)))
            for k, t in sd.items():
                want = t.to(getattr(torch, dtype)) if dtype and t.is_floating_point() else t
                ok = k in back and (same_csr(back[k], want) if want.layout == torch.sparse_csr
                                    else torch.equal(back[k], want) and back[k].dtype == want.dtype)
                r.check(ok, where + ': %s as torch' % k, repr(back.get(k)))


class _BadCsr:
    """A CSR tensor torch refuses to load (torch.save writes it; torch.load's check refuses it)."""

    def __init__(self, crow, col):
        self.crow, self.col = crow, col

    def __reduce__(self):
        return (torch._utils._rebuild_sparse_csr_tensor,
                (torch.sparse_csr, (torch.tensor(self.crow), torch.tensor(self.col), torch.tensor([1., 2.]), (2, 3))))


def check_bad_csr(r, ckpt, d):
    """convert refuses a CSR tensor whose indices torch rejects, rather than writing a file torch will
    not load and calling it verified; a valid one of the same shape still converts."""
    for name, crow, col in [('badcrow', [0, 5, 2], [0, 1]), ('badcol', [0, 1, 2], [0, 99999])]:
        path = os.path.join(d, 'csr_%s.pth' % name)
        torch.save({'sp': _BadCsr(crow, col), 'w': torch.ones(2)}, path)
        try:
            torch.load(path)
            refused = False
        except RuntimeError:
            refused = True
        r.check(refused, '%s: torch 1.13 refuses to load it' % name)
        out = os.path.join(d, 'csr_%s_out.pth' % name)
        code, _, err = run(ckpt, 'convert', path, '--to', 'state-dict', '-o', out)
        r.check(code != 0 and not os.path.exists(out) and "'sp'" in err and 'torch refuses to load' in err,
                '%s: convert refuses it, naming the tensor' % name, err)
    path = os.path.join(d, 'csr_fine.pth')
    torch.save({'sp': _BadCsr([0, 1, 2], [0, 2]), 'w': torch.ones(2)}, path)
    out = os.path.join(d, 'csr_fine_out.pth')
    code, _, err = run(ckpt, 'convert', path, '--to', 'state-dict', '-o', out)
    r.check(code == 0 and torch.equal(torch.load(out)['sp'].to_dense(), torch.load(path)['sp'].to_dense()),
            'a valid CSR tensor of the same shape converts, equal in torch', err)


def check_dtype_aliases(r, ckpt, d):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    src = os.path.join(d, 'aliases.pth')
    torch.save(model.state_dict(), src)
    for alias, dtype in (('fp16', torch.float16), ('half', torch.float16), ('bf16', torch.bfloat16),
                         ('double', torch.float64), ('fp32', torch.float32)):
        out = os.path.join(d, 'aliases_%s.pth' % alias)
        code, _, err = run(ckpt, 'convert', src, '--to', 'state-dict', '--dtype', alias, '-o', out)
        if r.check(code == 0, 'convert --dtype %s' % alias, err):
            got = torch.load(out)
            want = {k: v.to(dtype) for k, v in model.state_dict().items()}
            r.check(all(got[k].dtype == dtype and torch.equal(got[k], want[k]) for k in want),
                    'convert --dtype %s: torch loads what .to(%s) gives' % (alias, dtype),
                    str({k: v.dtype for k, v in got.items()}))
    code, _, err = run(ckpt, 'convert', src, '--to', 'state-dict', '--dtype', 'fp8')
    r.check(code != 0 and 'fp8' in err, 'convert --dtype fp8 is refused, naming it', err)
    # -o naming a folder: refused, said, and the folder left as it was.
    folder = os.path.join(d, 'a_folder')
    os.makedirs(folder)
    code, _, err = run(ckpt, 'convert', src, '--to', 'safetensors', '-o', folder)
    r.check(code == 1 and '--out-dir ' + folder in err and os.listdir(folder) == [],
            'convert -o FOLDER says to use --out-dir and writes nothing', err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')  # unused: the inputs are written here
    opts = ap.parse_args()
    r = Results()
    with tempfile.TemporaryDirectory() as d:
        check_series_swa(r, opts.ckpt, d)
        check_packed_quantized(r, opts.ckpt, d)
        check_sparse_csr(r, opts.ckpt, d)
        check_bad_csr(r, opts.ckpt, d)
        check_dtype_aliases(r, opts.ckpt, d)
    return r.finish()


if __name__ == '__main__':
    sys.exit(main())
