#!/usr/bin/env python3
"""Inputs for tst_windowstats, written by torch 1.13: a state dict of tensors with NaN, +inf, -inf,
all NaN, empty, int, bool, bfloat16 and float16, a non-contiguous (permuted) one, and an Adam
checkpoint whose state holds a NaN. expected.json says what torch says of each:

  * `torch`: the figures torch gives the tensor's values in float64 (t.double().min(), .max(),
    .mean(), .std(), torch.linalg.norm): nan as soon as one value is NaN (what `ckpt tensors
    --stats` writes, and the window must show);
  * `without_nan`: the same over the values that are not NaN (where there are NaN values);
  * `nonfinite`: how many values are NaN or infinite (what a histogram leaves out);
  * `mean_order`, `min_order`: the tensors' names in the order torch.sort(stable=True) puts their
    torch means (minimums), ascending and descending: where nan sorts;
  * `flat`: the permuted tensor's values in row-major order (flatten().tolist()).
"""
import argparse
import collections
import json
import math
import os

import torch


def number(x):
    """JSON has no NaN or infinity: those become the strings 'nan', 'inf', '-inf'; None stays."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return 'nan'
    if math.isinf(x):
        return 'inf' if x > 0 else '-inf'
    return x


def figures(v):
    """torch's min, max, mean, std (unbiased) and L2 norm of the float64 values `v`."""
    nan = float('nan')
    return collections.OrderedDict([
        ('min', number(v.min()) if v.numel() else None),   # torch has no min of nothing
        ('max', number(v.max()) if v.numel() else None),
        ('mean', number(v.mean()) if v.numel() else number(nan)),
        ('std', number(v.std()) if v.numel() > 1 else number(nan)),
        ('l2', number(torch.linalg.norm(v))),
    ])


def describe(t):
    v = t.flatten().double()
    nan = torch.isnan(v)
    d = collections.OrderedDict([
        ('count', v.numel()),
        ('nan', int(nan.sum())),
        ('inf', int(torch.isinf(v).sum())),
        ('nonfinite', int((~torch.isfinite(v)).sum())),
        ('torch', figures(v)),
    ])
    if d['nan']:
        d['without_nan'] = figures(v[~nan])
    return d


def order(names, keys, descending):
    """`names` in the order torch.sort (stable) puts `keys`: nan last ascending, first descending."""
    _, idx = torch.sort(torch.tensor(keys, dtype=torch.float64), descending=descending, stable=True)
    return [names[i] for i in idx.tolist()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    g = torch.Generator().manual_seed(5)
    nan, inf = float('nan'), float('inf')
    tensors = collections.OrderedDict([
        ('with_nan', torch.tensor([-2.0, nan, inf, 1.5, nan, 0.25])),
        ('pos_inf', torch.tensor([1.0, inf, 3.0])),
        ('neg_inf', torch.tensor([-inf, 2.0, 4.0, 0.0])),
        ('both_inf', torch.tensor([inf, -inf, 1.0])),
        ('all_nan', torch.full((4,), nan)),
        ('empty', torch.empty(0)),
        ('ints', torch.tensor([[7, -3, 12], [0, 5, 9]], dtype=torch.int64)),
        ('flags', torch.tensor([True, False, True, True])),
        ('bf16_nan', torch.tensor([0.5, nan, -1.25, 3.0, inf], dtype=torch.bfloat16)),
        ('fp16_nan', torch.tensor([nan, 2.0, -0.5, 65504.0], dtype=torch.float16)),
        ('plain', torch.randn(3, 4, generator=g)),
        ('permuted', torch.arange(120, dtype=torch.float32).reshape(4, 5, 6).permute(2, 0, 1)),
    ])
    assert not tensors['permuted'].is_contiguous()
    torch.save(tensors, os.path.join(out, 'stats.pth'))

    names = list(tensors)
    described = collections.OrderedDict((k, describe(t)) for k, t in tensors.items())

    def key(name, figure):
        f = described[name]['torch'][figure]
        return float(f) if f is not None else nan  # no min of an empty tensor: sorted as nan

    expected = collections.OrderedDict([
        ('tensors', described),
        ('mean_order', {'ascending': order(names, [key(n, 'mean') for n in names], False),
                        'descending': order(names, [key(n, 'mean') for n in names], True)}),
        ('min_order', {'ascending': order(names, [key(n, 'min') for n in names], False),
                       'descending': order(names, [key(n, 'min') for n in names], True)}),
        ('flat', tensors['permuted'].flatten().tolist()),
    ])

    # An Adam checkpoint whose exp_avg of one parameter holds a NaN (a step that blew up).
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3, generator=g)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    sd['state'][0]['exp_avg'][0, 1] = nan
    sd['state'][2]['exp_avg_sq'][1, 2] = inf
    torch.save({'model': model.state_dict(), 'optimizer': sd}, os.path.join(out, 'adam_nan.pth'))
    state = collections.OrderedDict()
    for pid, st in sd['state'].items():
        state[str(pid)] = collections.OrderedDict((k, describe(v)) for k, v in st.items() if torch.is_tensor(v) and v.dim() > 0)
    expected['adam_state'] = state

    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)


if __name__ == '__main__':
    main()
