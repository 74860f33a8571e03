#!/usr/bin/env python3
"""`ckpt diff` and `ckpt series` judged by PyTorch: for each pair the fixture generator wrote,
the added, removed and changed tensors, every figure (max and mean |a - b|, relative L2, cosine,
elements outside the tolerance) per tensor and per module, and the exit status; for a run of
checkpoints, their order and each tensor's norm and drift, as torch computes them."""
import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402


def close(x, y, rel=1e-9, abs_=1e-12):
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(float(x), float(y), rel_tol=rel, abs_tol=abs_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    res = Results()
    with open(os.path.join(a.fixtures, 'expected.json')) as f:
        expected = json.load(f)['__compare__']

    for pair in expected['pairs']:
        where = '%s vs %s (atol %g rtol %g)' % (pair['a'], pair['b'], pair['atol'], pair['rtol'])
        cmd = [a.ckpt, 'diff', os.path.join(a.fixtures, pair['a']), os.path.join(a.fixtures, pair['b']), '--json',
               '--atol', repr(pair['atol']), '--rtol', repr(pair['rtol'])]
        for m in pair['map']:
            cmd += ['--map', m]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        res.check(p.returncode == (0 if pair['equal'] else 1), where,
                  'exit %d, expected %d; stderr %s' % (p.returncode, 0 if pair['equal'] else 1, p.stderr.strip()))
        if p.returncode not in (0, 1):
            continue
        doc = json.loads(p.stdout)
        res.check(doc['equal'] == pair['equal'], where, 'equal %r' % doc['equal'])
        res.check(doc['removed'] == pair['removed'], where, 'removed %r, torch %r' % (doc['removed'], pair['removed']))
        res.check(doc['added'] == pair['added'], where, 'added %r, torch %r' % (doc['added'], pair['added']))
        got = {t['name']: t for t in doc['tensors']}
        res.check(sorted(got) == sorted(pair['tensors']), where, 'compared %r, torch %r' % (sorted(got), sorted(pair['tensors'])))
        for name, want in pair['tensors'].items():
            t = got.get(name)
            if not res.check(t is not None, where, 'no entry for %s' % name):
                continue
            res.check(t['status'] == want['status'], where, '%s status %s, torch %s' % (name, t['status'], want['status']))
            if want['status'] == 'shape_changed':
                continue
            res.check(t['identical'] == want['identical'], where, '%s identical %r' % (name, t['identical']))
            for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine'):
                res.check(close(t[key], want[key]), where, '%s %s: ckpt %r, torch %r' % (name, key, t[key], want[key]))
            for key in ('outside_tolerance', 'non_finite_mismatches'):
                res.check(t[key] == want[key], where, '%s %s: ckpt %r, torch %r' % (name, key, t[key], want[key]))
        modules = {m['name']: m for m in doc['modules']}
        for name, want in pair['modules'].items():
            m = modules.get(name)
            if not res.check(m is not None, where, 'no module %r' % name):
                continue
            for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine'):
                res.check(close(m[key], want[key]), where, 'module %s %s: ckpt %r, torch %r' % (name, key, m[key], want[key]))
            res.check(m['outside_tolerance'] == want['outside_tolerance'], where, 'module %s outside' % name)
        # Modules come most changed first.
        rels = [m['relative_l2'] if m['relative_l2'] is not None else float('inf') for m in doc['modules']]
        res.check(rels == sorted(rels, reverse=True), where, 'modules not ordered by change: %r' % rels)

    # The text form says the same, and errors exit 2.
    first = expected['pairs'][0]
    p = subprocess.run([a.ckpt, 'diff', os.path.join(a.fixtures, first['a']), os.path.join(a.fixtures, first['b'])],
                       capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 1 and 'weights differ' in p.stdout and 'head2.weight' in p.stdout, 'text diff', p.stdout[-400:])
    res.check('metadata epoch: 1 -> 5' in p.stdout, 'text diff metadata', p.stdout[-400:])
    p = subprocess.run([a.ckpt, 'diff', os.path.join(a.fixtures, first['a']), os.path.join(a.fixtures, 'no-such-file.pth')],
                       capture_output=True, text=True, timeout=60)
    res.check(p.returncode == 2 and 'no-such-file.pth' in p.stderr, 'missing file', 'exit %d %s' % (p.returncode, p.stderr))
    p = subprocess.run([a.ckpt, 'diff', os.path.join(a.fixtures, first['a']), os.path.join(a.fixtures, first['b']),
                        '--map', 'nonsense'], capture_output=True, text=True, timeout=60)
    res.check(p.returncode == 2 and 'OLD=NEW' in p.stderr, 'bad --map', 'exit %d %s' % (p.returncode, p.stderr))

    # Series: given in name order, put in epoch order; norms and drifts as torch computes them.
    series = expected['series']
    p = subprocess.run([a.ckpt, 'series', '--json'] + [os.path.join(a.fixtures, f) for f in series['files']],
                       capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series', p.stderr):
        doc = json.loads(p.stdout)
        order = [os.path.relpath(c['file'], a.fixtures) for c in doc['checkpoints']]
        res.check(order == series['order'], 'series order', '%r, expected %r' % (order, series['order']))
        res.check([c['epoch'] for c in doc['checkpoints']] == series['epochs'], 'series epochs')
        layers = {l['name']: l for l in doc['layers']}
        res.check(sorted(layers) == sorted(series['layers']), 'series layers', '%r' % sorted(layers))
        for name, want in series['layers'].items():
            got = layers.get(name, {})
            for key in ('norm', 'drift_from_first', 'drift_from_previous'):
                values = got.get(key, [])
                res.check(len(values) == len(want[key]) and all(close(x, y, abs_=1e-9) for x, y in zip(values, want[key])),
                          'series %s %s' % (name, key), 'ckpt %r, torch %r' % (values, want[key]))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
