#!/usr/bin/env python3
"""Checkpoints for tst_runreview, written by real torch into --out, with torch's own account of them
in --out/expected.json.

- run/epoch_0.pth .. epoch_5.pth: a run whose state dict holds more moving weights than the chart
  draws at first, a BatchNorm counter (num_batches_tracked, in the thousands), a weight absent at
  epoch 2, one holding a NaN at epoch 3, and weights that have no drift to draw (absent from the
  first checkpoint, or NaN after it). expected.json "selection": the eight floating tensors with
  the largest finite drift from the first checkpoint over the run, by torch; "runs": per tensor,
  the runs of epochs at which torch's drift from the first is a finite number (the chart's line
  segments);
- run/broken.pth: the first half of a checkpoint (a truncated save); run/notes.pth: a text file;
- order/: epochs 0, 1 and 2 and final.pth, which records no epoch, given in the middle;
- opt_a.pth, opt_b.pth: SGD with two param groups, then lr x0.1, momentum 0.9 -> 0.5 in group 1 and
  an 'epoch' entry 1 -> 2; expected.json "optimizer" has the changes as Python prints the values."""
import argparse
import json
import os

import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
ap.add_argument('--out', required=True)
out = ap.parse_args().out
run = os.path.join(out, 'run')
os.makedirs(run, exist_ok=True)
torch.manual_seed(0)

EPOCHS = 6
base = {'w%d.weight' % i: torch.randn(8, 8) for i in range(10)}
steps = {k: torch.randn(8, 8) * (0.05 * (i + 1)) for i, k in enumerate(base)}
gap_base, gap_step = torch.randn(16), torch.randn(16) * 2.0
blown_base, blown_step = torch.randn(16), torch.randn(16) * 3.0
files, sds = [], []
for ep in range(EPOCHS):
    sd = {k: v + ep * steps[k] for k, v in base.items()}
    sd['bn.num_batches_tracked'] = torch.tensor(1000 * ep + 1000)
    if ep != 2:
        sd['gap.weight'] = gap_base + ep * gap_step
    blown = blown_base + ep * blown_step
    if ep == 3:
        blown[0] = float('nan')
    sd['blown.weight'] = blown
    if ep > 0:
        sd['late.weight'] = torch.randn(4) * 100  # absent from the first: no drift from it
    dead = torch.randn(4)
    if ep > 0:
        dead[1] = float('nan')  # NaN after the first: its drift is nan
    sd['dead.weight'] = dead
    f = os.path.join(run, 'epoch_%d.pth' % ep)
    torch.save({'epoch': ep, 'state_dict': sd}, f)
    files.append(f)
    sds.append(sd)

# Torch's drift from the first checkpoint, per tensor and epoch (None where there is none).
drift = {}
for name in sds[-1].keys() | sds[0].keys():
    row = []
    for sd in sds:
        if name not in sd or name not in sds[0]:
            row.append(None)
            continue
        d = float((sd[name].double() - sds[0][name].double()).norm())
        row.append(d if d == d and d != float('inf') else None)
    drift[name] = row
floating = [n for n in drift if sds[-1][n].is_floating_point()]
score = {n: max([d for d in drift[n] if d is not None], default=None) for n in floating}
ranked = sorted((n for n in floating if score[n] is not None), key=lambda n: -score[n])
runs = {}
for n in ('gap.weight', 'blown.weight'):
    segs, cur = [], []
    for ep, d in enumerate(drift[n]):
        if d is None:
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(ep)
    if cur:
        segs.append(cur)
    runs[n] = segs

with open(files[-1], 'rb') as f:
    data = f.read()
broken = os.path.join(run, 'broken.pth')
with open(broken, 'wb') as f:
    f.write(data[: len(data) // 2])
notes = os.path.join(run, 'notes.pth')
with open(notes, 'w') as f:
    f.write('not a checkpoint\n')

order = os.path.join(out, 'order')
os.makedirs(order, exist_ok=True)
w = torch.randn(3, 3)
given = []
for name, obj in (('ep0.pth', {'epoch': 0, 'state_dict': {'w': w}}), ('ep1.pth', {'epoch': 1, 'state_dict': {'w': w + 1}}),
                  ('final.pth', {'w': w + 5}), ('ep2.pth', {'epoch': 2, 'state_dict': {'w': w + 2}})):
    torch.save(obj, os.path.join(order, name))
    given.append(os.path.join(order, name))

torch.manual_seed(1)
m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
opt = torch.optim.SGD([{'params': m[0].parameters(), 'lr': 0.1}, {'params': m[1].parameters(), 'lr': 0.01, 'momentum': 0.9}],
                      lr=0.5)
x = torch.randn(8, 4)


def step():
    opt.zero_grad()
    m(x).pow(2).mean().backward()
    opt.step()


step()
before = [dict(g) for g in opt.state_dict()['param_groups']]
torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 1}, os.path.join(out, 'opt_a.pth'))
for g in opt.param_groups:
    g['lr'] *= 0.1
opt.param_groups[1]['momentum'] = 0.5
step()
after = [dict(g) for g in opt.state_dict()['param_groups']]
torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 2}, os.path.join(out, 'opt_b.pth'))
changes = []
for i, (ga, gb) in enumerate(zip(before, after)):
    for k in ga:
        if k != 'params' and ga[k] != gb[k]:
            changes.append('group %d: %s %r -> %r' % (i, k, ga[k], gb[k]))

with open(os.path.join(out, 'expected.json'), 'w') as f:
    json.dump({'run': files, 'unreadable': [broken, notes], 'selection': ranked[:8], 'runs': runs,
               'counter': 'bn.num_batches_tracked', 'nothing_to_draw': ['late.weight', 'dead.weight'],
               'order': {'given': given, 'ordered': [given[0], given[1], given[2], given[3]]},
               'optimizer': {'changes': changes, 'a': os.path.join(out, 'opt_a.pth'), 'b': os.path.join(out, 'opt_b.pth')}},
              f, indent=1)
