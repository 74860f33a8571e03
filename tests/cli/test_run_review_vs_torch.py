#!/usr/bin/env python3
"""Comparing the checkpoints of a training run, judged by PyTorch on files torch writes into a temp
folder: `ckpt series` leaves out a file it cannot read (naming it and why) and keeps the others,
orders files that record no epoch where they were given, `tensors --stats` and `show` give torch's
figures for a tensor holding NaN, `diff` gives cosine exactly 1 for identical tensors (never past 1),
names an integer buffer's change, and reports optimizer hyper-parameters."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402


def run(a, *args):
    return subprocess.run([a.ckpt, *args], capture_output=True, text=True, timeout=120)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def write_run(folder, epochs=4):
    """A short run, one checkpoint per epoch as the usual training loop saves them."""
    torch.manual_seed(0)
    m = Net()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    files, sds = [], []
    for ep in range(epochs):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        f = os.path.join(folder, 'epoch_%02d.pth' % ep)
        torch.save({'epoch': ep, 'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()}, f)
        files.append(f)
        sds.append({k: v.clone() for k, v in m.state_dict().items()})
    return files, sds


def check_unreadable_left_out(a, res, tmp):
    files, sds = write_run(os.path.join(tmp, 'run'))
    truncated = os.path.join(tmp, 'run', 'epoch_99.pth')
    with open(files[-1], 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[: len(data) // 2])
    text = os.path.join(tmp, 'run', 'notes.pth')
    with open(text, 'w') as f:
        f.write('not a checkpoint\n')
    given = files[:2] + [truncated] + files[2:] + [text]
    p = run(a, 'series', '--json', *given)
    res.check(p.returncode == 2, 'series with unreadable files exits 2 (README)', 'rc %d %s' % (p.returncode, p.stderr))
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        res.check(False, 'series with unreadable files still writes JSON', p.stdout[:300] + p.stderr)
        return
    got = [c['file'] for c in doc['checkpoints']]
    res.check(got == files, 'series keeps the readable checkpoints, in epoch order', '%r' % got)
    skipped = {s['file']: s['reason'] for s in doc.get('skipped', [])}
    res.check(set(skipped) == {truncated, text}, 'series JSON lists the files left out', '%r' % skipped)
    for f, why in skipped.items():
        res.check(f in why and len(why) > len(f) + 2, 'the reason names the file and what is wrong', why)
    for f in (truncated, text):
        res.check(f in p.stderr, 'stderr names the file left out', p.stderr)
    # The figures of the rest are torch's.
    w = 'fc.weight'
    layer = next(l for l in doc['layers'] if l['name'] == w)
    want = [float((sd[w].double() - sds[0][w].double()).norm()) for sd in sds]
    res.check(all(math.isclose(g, e, rel_tol=1e-9, abs_tol=1e-12) for g, e in zip(layer['drift_from_first'], want)),
              'series drift of the readable checkpoints is torch\'s', '%r vs %r' % (layer['drift_from_first'], want))
    t = run(a, 'series', *given)
    res.check(t.returncode == 2, 'series text with unreadable files exits 2', 'rc %d' % t.returncode)
    res.check(all(('left out, cannot be read: ' in t.stdout and f in t.stdout) for f in (truncated, text)),
              'series text names each file left out', t.stdout[:600])
    res.check(all(f in t.stdout for f in files), 'series text still lists the good checkpoints', t.stdout[:600])
    # Nothing readable: exit 2, each named.
    q = run(a, 'series', truncated, text)
    res.check(q.returncode == 2 and truncated in q.stderr and text in q.stderr and q.stdout == '',
              'series of unreadable files only exits 2 naming each', 'rc %d %r' % (q.returncode, q.stderr))


def check_order_without_epoch(a, res, tmp):
    folder = os.path.join(tmp, 'order')
    os.mkdir(folder)
    torch.manual_seed(1)
    w = torch.randn(4, 4)
    names = []
    # As given: epoch 3, a final state dict (no epoch), epoch 1, epoch 2.
    for name, obj in (('c_ep3.pth', {'epoch': 3, 'state_dict': {'w': w + 3}}),
                      ('b_final.pth', {'w': w + 10}),
                      ('a_ep1.pth', {'epoch': 1, 'state_dict': {'w': w + 1}}),
                      ('d_ep2.pth', {'epoch': 2, 'state_dict': {'w': w + 2}})):
        torch.save(obj, os.path.join(folder, name))
        names.append(os.path.join(folder, name))
    p = run(a, 'series', '--json', *names)
    if not res.check(p.returncode == 0, 'series of a run with a file without epoch', p.stderr):
        return
    doc = json.loads(p.stdout)
    order = [os.path.basename(c['file']) for c in doc['checkpoints']]
    # The epoch files sorted among the places they hold; the one without an epoch keeps its place
    # (second) rather than go first as the baseline of every drift.
    want = ['a_ep1.pth', 'b_final.pth', 'd_ep2.pth', 'c_ep3.pth']
    res.check(order == want, 'a file without an epoch keeps the place it was given', '%r, expected %r' % (order, want))
    res.check('no epoch' in doc.get('ordering', '') and 'b_final.pth' in doc.get('ordering', ''),
              'ordering says which file records no epoch', '%r' % doc.get('ordering'))
    res.check(any('no epoch' in n for n in doc['checkpoints'][1]['notes']), 'its notes say it records no epoch',
              '%r' % doc['checkpoints'][1]['notes'])
    first = torch.load(os.path.join(folder, want[0]), weights_only=True)['state_dict']['w']
    last = torch.load(os.path.join(folder, want[-1]), weights_only=True)['state_dict']['w']
    layer = doc['layers'][0]
    res.check(math.isclose(layer['drift_from_first'][-1], float((last.double() - first.double()).norm()), rel_tol=1e-9),
              'drift is from the first epoch checkpoint', '%r' % layer['drift_from_first'])
    t = run(a, 'series', *names)
    res.check(t.returncode == 0 and 'records no epoch' in t.stdout and 'b_final.pth' in t.stdout.split('\n')[0],
              'series text says how the files were ordered', t.stdout[:400])
    # All with epochs: the order is by epoch, nothing said of files without one.
    q = run(a, 'series', '--json', names[0], names[2], names[3])
    doc = json.loads(q.stdout)
    res.check([os.path.basename(c['file']) for c in doc['checkpoints']] == ['a_ep1.pth', 'd_ep2.pth', 'c_ep3.pth'] and
              'no epoch' not in doc.get('ordering', 'no epoch'), 'a run with every epoch is ordered by it',
              '%r' % doc.get('ordering'))


def check_cosine(a, res, tmp):
    torch.manual_seed(2)
    w = torch.randn(300, 7, dtype=torch.float64)
    sa = {'same': w, 'zero': torch.zeros(5), 'other': torch.randn(50)}
    sb = {'same': w.clone(), 'zero': torch.ones(5) * 0.1, 'other': sa['other'] * 2 + torch.randn(50) * 0.1}
    # The reviewer's case: float64 torch.cosine_similarity of a tensor with itself rounds short of 1.
    fa, fb = os.path.join(tmp, 'cos_a.pth'), os.path.join(tmp, 'cos_b.pth')
    sb['same'][0, 0] += 1  # the module 'same' differs only there; 'ident' below is byte-identical
    sa['ident'] = torch.randn(1000, dtype=torch.float64)
    sb['ident'] = sa['ident'].clone()
    torch.save(sa, fa)
    torch.save(sb, fb)
    p = run(a, 'diff', '--json', fa, fb)
    doc = json.loads(p.stdout)
    t = {e['name']: e for e in doc['tensors']}
    torch_cos = lambda k: float(F.cosine_similarity(sa[k].double().flatten(), sb[k].double().flatten(), dim=0))
    res.check(t['ident']['cosine'] == 1.0, 'identical tensors have cosine exactly 1', '%r' % t['ident']['cosine'])
    for k in ('same', 'other'):
        c = t[k]['cosine']
        res.check(c <= 1.0 and math.isclose(c, torch_cos(k), rel_tol=1e-12), 'cosine of %s is torch\'s' % k,
                  '%r, torch %r' % (c, torch_cos(k)))
    # Every module's and tensor's cosine stays within [-1, 1].
    res.check(all(e['cosine'] is None or -1.0 <= e['cosine'] <= 1.0 for e in doc['tensors'] + doc['modules']),
              'no cosine past 1', '%r' % [e['cosine'] for e in doc['tensors'] + doc['modules']])
    txt = run(a, 'diff', fa, fb).stdout
    res.check('1 - ' not in txt, 'diff text never says "1 - 2.2e-16"', txt)


def check_integer_buffer(a, res, tmp):
    torch.manual_seed(3)
    bn = nn.BatchNorm1d(4)
    bn.train()
    for _ in range(6):
        bn(torch.randn(8, 4))
    sa = {'bn.' + k: v.clone() for k, v in bn.state_dict().items()}
    sa['fc.weight'] = torch.randn(3, 3)
    sb = {k: v.clone() for k, v in sa.items()}
    sb['bn.num_batches_tracked'] += 1
    sb['fc.weight'] += 1
    fa, fb = os.path.join(tmp, 'bn_a.pth'), os.path.join(tmp, 'bn_b.pth')
    torch.save(sa, fa)
    torch.save(sb, fb)
    p = run(a, 'diff', fa, fb)
    line = next((l for l in p.stdout.splitlines() if l.strip().startswith('bn ')), '')
    want = 'num_batches_tracked %d -> %d' % (int(sa['bn.num_batches_tracked']), int(sb['bn.num_batches_tracked']))
    res.check(want in line and 'only an integer buffer changed' in line and 'rel 0' not in line and 'cos 1' not in line,
              'a module changed only through its counter says so', '%r (want %r)\n%s' % (line, want, p.stdout))
    doc = json.loads(run(a, 'diff', '--json', fa, fb).stdout)
    mod = next(m for m in doc['modules'] if m['name'] == 'bn')
    res.check(mod.get('integer_changes') == [want], 'JSON module lists its integer change', '%r' % mod.get('integer_changes'))


def check_optimizer(a, res, tmp):
    torch.manual_seed(4)
    m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    opt = torch.optim.SGD([{'params': m[0].parameters(), 'lr': 0.1}, {'params': m[1].parameters(), 'lr': 0.01, 'momentum': 0.9}],
                          lr=0.5)
    x = torch.randn(8, 4)

    def step():
        opt.zero_grad()
        m(x).pow(2).mean().backward()
        opt.step()

    step()
    ga = [dict(g) for g in opt.state_dict()['param_groups']]
    fa, fb = os.path.join(tmp, 'opt_a.pth'), os.path.join(tmp, 'opt_b.pth')
    torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict()}, fa)
    for g in opt.param_groups:
        g['lr'] *= 0.1
    opt.param_groups[1]['momentum'] = 0.5
    step()
    gb = [dict(g) for g in opt.state_dict()['param_groups']]
    torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict()}, fb)
    want = ['group %d: %s %r -> %r' % (i, k, x[k], y[k]) for i, (x, y) in enumerate(zip(ga, gb))
            for k in x if k != 'params' and x[k] != y[k]]
    p = run(a, 'diff', fa, fb)
    res.check(all('  ' + w in p.stdout for w in want), 'diff text names each hyper-parameter change',
              '%r\n%s' % (want, p.stdout))
    doc = json.loads(run(a, 'diff', '--json', fa, fb).stdout)
    res.check(doc['optimizer'].get('changes') == want, 'diff JSON lists the optimizer changes', '%r' % doc['optimizer'])
    q = run(a, 'diff', fa, fa)
    res.check('optimizer: unchanged' in q.stdout, 'equal optimizers are said unchanged', q.stdout)
    # Adam with one layer frozen for a step: its parameters record fewer steps.
    opt2 = torch.optim.Adam(m.parameters(), lr=1e-3)
    opt2.zero_grad()
    m(x).pow(2).mean().backward()
    opt2.step()
    opt2.zero_grad()
    m(x).pow(2).mean().backward()
    for prm in m[0].parameters():
        prm.grad = None
    opt2.step()
    fc = os.path.join(tmp, 'adam.pth')
    torch.save({'model': m.state_dict(), 'optimizer': opt2.state_dict()}, fc)
    steps = [float(s['step']) for s in opt2.state_dict()['state'].values()]
    doc = json.loads(run(a, 'diff', '--json', fc, fc).stdout)
    o = doc['optimizer']['a']
    res.check(o['step'] == max(steps) and o['step_min'] == min(steps), 'optimizer step range is torch\'s',
              '%r vs %r' % (o, steps))
    t = run(a, 'diff', fc, fc).stdout
    res.check('step %g..%g' % (min(steps), max(steps)) in t, 'diff text gives the step as min..max', t)


def check_nan_stats(a, res, tmp):
    torch.manual_seed(5)
    w = torch.randn(6, 5)
    w[0, 0] = float('nan')
    w[1, 1] = float('inf')
    f = os.path.join(tmp, 'naninf.pth')
    torch.save({'w': w}, f)
    doc = json.loads(run(a, 'tensors', f, '--stats', '--json').stdout)
    st = doc['tensors'][0]['stats']
    v = w.double()
    for k, fig in (('min', v.min()), ('max', v.max()), ('mean', v.mean()), ('std', v.std()), ('l2', torch.linalg.norm(v))):
        res.check(math.isnan(float(fig)) and st.get(k) is None, 'stats of a tensor holding NaN: %s is torch\'s nan' % k,
                  'ckpt %r, torch %r' % (st.get(k), float(fig)))
    rest = v[~torch.isnan(v)]
    wn = st.get('without_nan') or {}
    res.check(wn.get('min') == float(rest.min()) and wn.get('max') == 'inf' and st['nan'] == 1 and st['inf'] == 1,
              'the figures without the NaN values are labelled apart', '%r' % st)
    text = run(a, 'show', f, 'w').stdout
    res.check('min nan  max nan  mean nan  std nan  l2 nan' in text and 'without the NaN values: min ' in text,
              'show says torch\'s nan, then the figures without the NaN values', text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, 'run'))
        for check in (check_unreadable_left_out, check_order_without_epoch, check_cosine, check_integer_buffer,
                      check_optimizer, check_nan_stats):
            try:
                check(a, res, tmp)
            except Exception as e:  # one part's failure must not hide the others'
                res.check(False, check.__name__, '%s: %s' % (type(e).__name__, e))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
