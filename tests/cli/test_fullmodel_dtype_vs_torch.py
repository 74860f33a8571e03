#!/usr/bin/env python3
"""`ckpt convert FULL.pth --to full-model --dtype D` judged by PyTorch: the model torch.load gives
holds what torch.load(FULL.pth).to(D) holds, every parameter and buffer (non-persistent ones
too; integer buffers and plain tensor attributes as they were) bit for bit, its LSTM's
_flat_weights are its parameters, and it computes the same output. Made here, in a temp folder."""
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


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 32, padding_idx=0)
        self.lstm = nn.LSTM(32, 32, num_layers=2, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(64, 32)
        self.ln = nn.LayerNorm(32)
        self.head = nn.Linear(32, 100, bias=False)
        self.head.weight = self.emb.weight  # tied
        self.register_buffer('position_ids', torch.arange(64).unsqueeze(0))  # int64
        self.register_buffer('cache', torch.linspace(-1, 1, 4), persistent=False)
        self.plain = torch.ones(3)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.head(self.ln(self.proj(h))) + self.cache.sum()


def same_bits(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))
    return torch.equal(a, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    args = ap.parse_args()
    res = Results()
    x = torch.tensor([[1, 5, 9, 3], [7, 2, 0, 4]])
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        src = os.path.join(tmp, 'lm_full.pth')
        torch.save(LM().eval(), src)
        for name, dtype in [('bfloat16', torch.bfloat16), ('float16', torch.float16), ('float64', torch.float64)]:
            out = os.path.join(tmp, 'lm_%s.pth' % name)
            r = subprocess.run([args.ckpt, 'convert', src, '--to', 'full-model', '--dtype', name, '-o', out],
                               capture_output=True, text=True, timeout=120)
            if not res.check(r.returncode == 0, '%s: converted' % name, r.stderr):
                continue
            ref = torch.load(src).to(dtype)
            got = torch.load(out)
            want = dict(ref.named_parameters())
            want.update(dict(ref.named_buffers()))
            have = dict(got.named_parameters())
            have.update(dict(got.named_buffers()))
            res.check(sorted(have) == sorted(want), '%s: the same parameters and buffers' % name)
            bad = [k for k in want if k in have and not same_bits(have[k], want[k])]
            res.check(not bad, '%s: every parameter and buffer is torch.load(...).to(%s), bit for bit' % (name, name),
                      ', '.join('%s %s vs %s' % (k, have[k].dtype, want[k].dtype) for k in bad))
            res.check(got.cache.dtype == dtype and got._non_persistent_buffers_set == {'cache'},
                      '%s: the non-persistent buffer is cast and stays non-persistent' % name, str(got.cache.dtype))
            res.check(got.plain.dtype == ref.plain.dtype, '%s: a plain tensor attribute stays as Module.to leaves it'
                      % name, str(got.plain.dtype))
            res.check(got.head.weight is got.emb.weight, '%s: the tied weight stays one parameter' % name)
            res.check(all(a.data_ptr() == b.data_ptr() and a.dtype == b.dtype
                          for a, b in zip(got.lstm._flat_weights, got.lstm.parameters())),
                      '%s: the LSTM\'s _flat_weights are its parameters' % name)
            try:
                with torch.no_grad():
                    y_ref = ref(x)
            except RuntimeError as e:
                # float16 on torch 1.13's CPU: torch's own cast model cannot run; the file alike.
                try:
                    with torch.no_grad():
                        got(x)
                    res.check(False, '%s: torch cannot run it here (%s); neither can the file' % (name, e), 'it ran')
                except RuntimeError:
                    res.check(True, '%s: neither torch\'s model nor the file runs on this CPU' % name)
                continue
            with torch.no_grad():
                y = got(x)
            res.check(y.dtype == y_ref.dtype and torch.equal(y, y_ref), '%s: the forward pass gives torch\'s output'
                      % name, str((y.double() - y_ref.double()).abs().max()))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
