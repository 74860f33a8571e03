#!/usr/bin/env python3
"""Statistics, differences and series at the edges of the number range, judged by PyTorch.

The fixtures (tests/fixtures/stats_extremes.py, written by torch): float64 near 1e300 and its
largest value, subnormals of float64, float32, float16 and bfloat16, the largest float16/bfloat16,
-0.0, all-NaN, all-inf, +inf with -inf, single elements, empty tensors, int64 at its ends, uint8,
bool and complex; a pair of files whose differences pass float64's range (1e308 against -1e308);
a run of checkpoints whose norms do.

Each figure of `ckpt tensors --stats --json`, `ckpt show --json` (statistics, values, histogram),
`ckpt diff --json` and `ckpt series --json` is compared with torch computing it here, on the
tensors torch loads from the same files, in float64 on the values divided by a power of two
(exact) and multiplied back: the figure itself, where torch's plain float64 sums overflow
(std inf for [1e300, -1e300, 1e300]) or underflow (norm 0 for [5e-324, 1e-323]). Integer tensors
are judged on Python's exact integers. Tolerance: a figure made of n float64 values is a sum of n
terms (then a division or a square root), each rounded once: relative error at most about n
units of float64's last place (2^-52), allowed 16 n of them here; a mean may lose that much
relative to the values' own magnitude (cancellation: 1.7e308 - 1.7e308); below 2^-1022 float64
spaces its values 2^-1074 apart, so one such unit more. Extremes, counts and the zero fraction
must be equal; an integer tensor's mean exactly the correctly rounded mean of its integers.

With --report, prints each figure as the product gives it beside torch's plain and exact ones.
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
sys.dont_write_bytecode = True
from results import Results  # noqa: E402

import torch  # noqa: E402
import stats_extremes as X  # noqa: E402

EPS = sys.float_info.epsilon
SUBNORMAL_UNIT = 5e-324
FIGURES = ('min', 'max', 'mean', 'std', 'l2', 'zero_fraction')


def decode(v):
    """A JSON figure as a float: null is NaN, "inf"/"-inf" are infinities; anything else as is."""
    if v is None:
        return X.NAN
    if v in ('inf', '-inf'):
        return float(v)
    return v


def encoding_ok(got, want):
    """NaN must come as null, an infinity as "inf"/"-inf", a number as a JSON number (not a bool)."""
    if isinstance(want, float) and math.isnan(want):
        return got is None
    if isinstance(want, float) and math.isinf(want):
        return got == ('inf' if want > 0 else '-inf')
    return isinstance(got, (int, float)) and not isinstance(got, bool)


def agrees(got, want, n, magnitude=0.0):
    """`got` (JSON) is torch's `want` within what n float64 roundings allow (see the docstring)."""
    if not encoding_ok(got, want):
        return False
    if not math.isfinite(want):
        return True
    tol = 16 * max(n, 1) * EPS * max(abs(want), magnitude) + SUBNORMAL_UNIT
    return abs(got - want) <= tol


def same_float(got, want):
    """Equal, -0.0 told from 0.0."""
    if not encoding_ok(got, want):
        return False
    if not math.isfinite(want):
        return True
    return got == want and math.copysign(1, got) == math.copysign(1, want)


def magnitude_of(t):
    """The mean |value| of the finite values: what a mean's rounding error is relative to."""
    v = X.values_of(t)
    v = v[torch.isfinite(v)]
    if not v.numel():
        return 0.0
    k = X.exponent_of(v)
    return X.ldexp(float(X.scaled(v.abs(), k).mean()), k)


def run(ckpt, *args):
    r = subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def text(v):
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v)


def check_stats(res, ckpt, fixtures, report):
    path = os.path.join(fixtures, 'extremes', 'stats.pth')
    tensors = torch.load(path, weights_only=True)
    rc, out, err = run(ckpt, 'tensors', path, '--stats', '--json')
    if not res.check(rc == 0, 'tensors --stats --json', err):
        return
    rows = {r['name']: r for r in json.loads(out)['tensors']}
    res.check(list(rows) == list(tensors), 'tensors --stats: names', '%r' % list(rows))
    lines = []
    for name, t in tensors.items():
        got = row_stats = rows.get(name, {}).get('stats', {})
        plain, exact = X.figures(t)
        n = exact['count'] - exact['nan']
        where = 'stats.pth %s (%s)' % (name, str(t.dtype).replace('torch.', ''))
        if exact['nan']:
            # torch's own figures of a tensor holding a NaN are nan (null); those over its other
            # values, judged below, are under "without_nan".
            v = X.values_of(t)
            torch_figs = {'min': v.min(), 'max': v.max(), 'mean': v.mean(), 'std': v.std(), 'l2': torch.linalg.norm(v)}
            res.check(all(math.isnan(float(f)) and got.get(k) is None for k, f in torch_figs.items()), where,
                      'a tensor holding NaN: torch says nan, ckpt %r' % got)
            got = dict(got, **got.get('without_nan', {}))
        for key in ('nan', 'inf'):
            res.check(got.get(key) == exact[key], where, '%s %r, torch %r' % (key, got.get(key), exact[key]))
        zf = exact['zero_fraction']
        res.check(got.get('zero_fraction') is None if math.isnan(zf) else got.get('zero_fraction') == zf,
                  where, 'zero_fraction %r, torch %r' % (got.get('zero_fraction'), zf))
        if X.is_integral(t):
            for key in ('min', 'max'):  # Python ints, exactly
                res.check(type(got.get(key)) is int and got.get(key) == exact[key], where,
                          '%s %r, exactly %r' % (key, got.get(key), exact[key]))
            res.check(got.get('mean') == exact['mean'], where,
                      'mean %r, the correctly rounded mean of the integers %r' % (got.get('mean'), exact['mean']))
        else:
            for key in ('min', 'max'):
                res.check(same_float(got.get(key), exact[key]), where, '%s %r, torch %r' % (key, got.get(key), exact[key]))
            res.check(agrees(got.get('mean'), exact['mean'], n, magnitude_of(t)), where,
                      'mean %r, torch %r' % (got.get('mean'), exact['mean']))
        for key in ('std', 'l2'):
            res.check(agrees(got.get(key), exact[key], n), where, '%s %r, torch %r' % (key, got.get(key), exact[key]))
        lines.append((name, str(t.dtype).replace('torch.', ''), got, plain, exact))

        # ckpt show: the same statistics as the row, each value as torch holds it (-0.0 and
        # subnormals exactly, complex as [real, imaginary]), and the histogram torch.histc counts.
        rc, out, err = run(ckpt, 'show', path, name, '--json', '--limit', '100', '--histogram', '8')
        if not res.check(rc == 0, 'show ' + name, err):
            continue
        shown = json.loads(out)
        stats = dict(shown.get('stats', {}))
        stats.pop('over', None)
        res.check(stats == row_stats, where, 'show statistics %r differ from the row %r' % (stats, row_stats))
        values = shown.get('values', [])
        want = (torch.view_as_real(t) if t.is_complex() else t).reshape(-1).tolist() if t.numel() else []
        flat = [v for x in values for v in (x if isinstance(x, list) else [x])]
        if X.is_integral(t):
            ok = flat == want and all(type(a) is type(b) for a, b in zip(flat, want))
        else:
            ok = len(flat) == len(want) and all(same_float(a, b) for a, b in zip(flat, want))
        res.check(ok, where, 'show values %r, torch %r' % (flat, want))
        h = X.histogram(t, 8)
        got_h = shown.get('histogram')
        if h is not None:
            res.check(got_h is not None and got_h['counts'] == h['counts'] and got_h['low'] == h['low'] and
                      got_h['high'] == h['high'], where, 'histogram %r, torch.histc %r' % (got_h, h))
        elif t.numel() and n and exact['inf'] < n:
            # A constant past 2^54 (v - 1 == v + 1): torch.histc refuses; the product counts every
            # value in the middle bin, where torch.histc puts a constant it can count.
            v = float(X.values_of(t)[0])
            small = torch.histc(torch.full((t.numel(),), 2.5, dtype=torch.float64), bins=8, min=2.5, max=2.5)
            res.check(got_h is not None and got_h['counts'] == [int(c) for c in small] and
                      got_h['low'] < v < got_h['high'], where, 'histogram of a constant %r: %r' % (v, got_h))
    if report:
        print('%-22s %-11s %-6s %-26s %-26s %s' % ('tensor', 'dtype', 'figure', 'ckpt', 'torch (exact)',
                                                    'torch plain float64'))
        for name, dtype, got, plain, exact in lines:
            for key in FIGURES:
                mark = '' if text(plain[key]) == text(exact[key]) else '   <- plain differs'
                print('%-22s %-11s %-6s %-26s %-26s %s%s' % (name, dtype, key, text(got.get(key)),
                                                             text(exact[key]), text(plain[key]), mark))


def check_diff(res, ckpt, fixtures, report):
    a_path = os.path.join(fixtures, 'extremes', 'diff_a.pth')
    b_path = os.path.join(fixtures, 'extremes', 'diff_b.pth')
    a, b = torch.load(a_path, weights_only=True), torch.load(b_path, weights_only=True)
    rc, out, err = run(ckpt, 'diff', a_path, b_path, '--json', '--atol', '0', '--rtol', '0')
    if not res.check(rc == 1, 'diff of the extremes: exit 1', 'exit %d %s' % (rc, err)):
        return
    doc = json.loads(out)
    got = {t['name']: t for t in doc['tensors']}
    sums = {}
    rows = []
    for name in a:
        s = X.diff_sums(a[name], b[name], 0.0, 0.0)
        sums.setdefault(name.rsplit('.', 1)[0], []).append(s)
        want = X.diff_figures(s)
        plain = X.plain_diff_figures(a[name], b[name], 0.0, 0.0)
        t = got.get(name, {})
        n = s['finite']
        for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine', 'norm_a', 'norm_b'):
            res.check(agrees(t.get(key), want[key], n), 'diff ' + name, '%s %r, torch %r' % (key, t.get(key), want[key]))
        for key in ('outside_tolerance', 'non_finite_mismatches'):
            res.check(t.get(key) == want[key], 'diff ' + name, '%s %r, torch %r' % (key, t.get(key), want[key]))
        rows.append((name, t, plain, want))
    modules = {m['name']: m for m in doc['modules']}
    for name, ss in sums.items():
        want = X.diff_figures(X.merged(ss))
        m = modules.get(name, {})
        n = sum(s['finite'] for s in ss)
        for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine', 'norm_a', 'norm_b'):
            res.check(agrees(m.get(key), want[key], n), 'diff module ' + name,
                      '%s %r, torch %r' % (key, m.get(key), want[key]))
        res.check(m.get('outside_tolerance') == want['outside_tolerance'], 'diff module ' + name, 'outside')
        rows.append(('module ' + name, m, None, want))
    # Most changed first: relative changes in order, an infinite one ("inf") first.
    rels = [decode(m['relative_l2']) for m in doc['modules']]
    res.check(rels == sorted(rels, reverse=True), 'diff modules ordered by change', '%r' % rels)
    if report:
        print('\n%-20s %-15s %-24s %-24s %s' % ('diff', 'figure', 'ckpt', 'torch (exact)', 'torch plain float64'))
        for name, t, plain, want in rows:
            for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine', 'norm_a', 'norm_b'):
                p = text(plain[key]) if plain else '-'
                print('%-20s %-15s %-24s %-24s %s' % (name, key, text(t.get(key)), text(want[key]), p))


def check_series(res, ckpt, fixtures, report):
    files = sorted(glob.glob(os.path.join(fixtures, 'extremes', 'run', '*.pth')))
    states = [torch.load(f, weights_only=True)['state_dict'] for f in files]
    want = X.series_figures(states)
    rc, out, err = run(ckpt, 'series', '--json', *reversed(files))
    if not res.check(rc == 0, 'series of the extremes', err):
        return
    doc = json.loads(out)
    res.check([c['epoch'] for c in doc['checkpoints']] == [1, 2, 3], 'series order', out[:300])
    layers = {l['name']: l for l in doc['layers']}
    for name, w in want.items():
        for key, values in w.items():
            got = layers.get(name, {}).get(key, [])
            n = states[0][name].numel() * 2
            res.check(len(got) == len(values) and all(agrees(g, v, n) for g, v in zip(got, values)),
                      'series %s %s' % (name, key), 'ckpt %r, torch %r' % (got, values))
            if report:
                print('series %-8s %-20s ckpt %-50s torch %s' % (name, key, text(got), text(values)))
    # For the record: what torch's plain norms say.
    if report:
        for name in want:
            print('series %-8s %-20s torch plain float64 %s' % (
                name, 'norm', text([float(s[name].double().norm()) for s in states])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    ap.add_argument('--report', action='store_true', help='print every figure beside torch\'s')
    a = ap.parse_args()
    res = Results()
    check_stats(res, a.ckpt, a.fixtures, a.report)
    check_diff(res, a.ckpt, a.fixtures, a.report)
    check_series(res, a.ckpt, a.fixtures, a.report)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
