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
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402


def close(x, y, rel=1e-9, abs_=1e-12):
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(float(x), float(y), rel_tol=rel, abs_tol=abs_)


def figure(key, v):
    """A figure as ckpt writes it in JSON: NaN as null, an infinity as "inf" or "-inf". The
    generator's figures (expected.json holds no Infinity) give an infinite relative change as None."""
    return 'inf' if key == 'relative_l2' and v is None else v


def same_figure(got, want):
    if isinstance(got, str) or isinstance(want, str):
        return got == want
    return close(got, want)


def describe_pair_tensor(a, b, atol, rtol):
    """The figures the fixture generator gives, for one pair of tensors torch holds."""
    sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
    from compare_fixtures import figures, sums
    return figures(sums(a, b, atol, rtol))


def as_json(v):
    """A float as ckpt writes it in JSON: NaN as null, an infinity as "inf" or "-inf"."""
    if math.isnan(v):
        return None
    if math.isinf(v):
        return 'inf' if v > 0 else '-inf'
    return v


def same_json_figure(got, want):
    if want is None or isinstance(want, str):
        return got == want
    return not isinstance(got, str) and close(got, want)


def norm(t):
    """torch's L2 norm of a tensor, in float64 (inf or nan where the tensor holds them)."""
    import torch
    return torch.linalg.norm(t.double()).item()


def run_series(a, folder, prefix, objs):
    """Saves each object as FOLDER/PREFIXk.pth and runs `ckpt series --json` over them."""
    import torch
    files = []
    for k, obj in enumerate(objs):
        files.append(os.path.join(folder, '%s%d.pth' % (prefix, k)))
        torch.save(obj, files[-1])
    return files, subprocess.run([a.ckpt, 'series', '--json'] + files, capture_output=True, text=True, timeout=120)


def check_divergence(a, res):
    """A run whose weight went to inf, then NaN: every norm and drift is what torch computes (inf,
    nan), never 0 or the norm of the finite rest; diff puts the diverged module first and says so."""
    import torch
    tmp = tempfile.mkdtemp(prefix='ckpt-diverge-')
    g = torch.Generator().manual_seed(11)
    w0, bias, other = torch.randn(3, generator=g), torch.randn(1, generator=g), torch.randn(4, generator=g)
    w1 = w0.clone()
    w1[1] = float('inf')
    w2 = w1.clone()
    w2[0] = 5.0                  # the infinity where it was: torch's w2 - w1 is NaN there
    w3 = w0.clone()
    w3[1] = float('nan')
    w3[2] = float('-inf')
    run = [{'fc.weight': w0, 'fc.bias': bias, 'other.weight': other},
           {'fc.weight': w1, 'fc.bias': bias, 'other.weight': other * 3},
           {'fc.weight': w2, 'fc.bias': bias, 'other.weight': other * 4},
           {'fc.weight': w3, 'other.weight': other * 5}]
    files, p = run_series(a, tmp, 'n', run)
    if res.check(p.returncode == 0, 'series of a diverging run', p.stderr):
        layers = {l['name']: l for l in json.loads(p.stdout)['layers']}
        for name in ('fc.weight', 'other.weight'):
            ts = [sd[name] for sd in run]
            want = {'norm': [norm(t) for t in ts],
                    'drift_from_first': [norm(t.double() - ts[0].double()) for t in ts],
                    'drift_from_previous': [norm(t.double() - ts[max(k - 1, 0)].double()) for k, t in enumerate(ts)],
                    'nan_count': [int(torch.isnan(t).sum()) for t in ts],
                    'inf_count': [int(torch.isinf(t).sum()) for t in ts]}
            got = layers.get(name, {})
            for key in ('norm', 'drift_from_first', 'drift_from_previous'):
                values, expect = got.get(key, []), [as_json(v) for v in want[key]]
                res.check(len(values) == len(expect) and all(same_json_figure(x, y) for x, y in zip(values, expect)),
                          'diverging series %s %s' % (name, key), 'ckpt %r, torch %r' % (values, expect))
                why = got.get('reasons', {}).get(key)
                res.check(why == ['nan' if math.isnan(v) else None for v in want[key]],
                          'diverging series %s reasons %s: "nan" where the figure is NaN' % (name, key), '%r' % why)
            for key in ('nan_count', 'inf_count'):
                res.check(got.get(key) == want[key], 'diverging series %s %s' % (name, key),
                          'ckpt %r, torch %r' % (got.get(key), want[key]))
        res.check(math.isinf(norm(w1.double() - w0.double())) and
                  math.isnan(norm(w2.double() - w1.double())), 'torch gives inf, then nan, for these drifts')
    p = subprocess.run([a.ckpt, 'series'] + files, capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series text of a diverging run', p.stderr):
        res.check('NaN or Inf values at checkpoint 1 (1 Inf), 2 (1 Inf), 3 (1 NaN, 1 Inf)' in p.stdout
                  and ' inf ' in p.stdout and ' nan' in p.stdout,
                  'series text gives inf and nan and says where the tensor holds them', p.stdout)

    # diff of the first two: fc gained an infinity. The per-tensor figures stay over the finite
    # positions (the mismatch counted apart), but the norms are torch's and the module comes first,
    # flagged, though `other` changed more by relative L2.
    p = subprocess.run([a.ckpt, 'diff', files[0], files[1], '--json'], capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 1, 'diff of a diverged pair: exit 1', p.stderr + p.stdout[-300:]):
        doc = json.loads(p.stdout)
        mods = doc['modules']
        flags = [(m['name'], m.get('diverged')) for m in mods]
        res.check(flags == [('fc', True), ('other', False)], 'diff puts the diverged module first', '%r' % flags)
        fc = {m['name']: m for m in mods}.get('fc', {})
        a_fc = torch.cat([w0, bias]).double()
        b_fc = torch.cat([w1, bias]).double()
        for key, want in (('tensor_norm_a', norm(a_fc)), ('tensor_norm_b', norm(b_fc))):
            res.check(same_json_figure(fc.get(key), as_json(want)), 'diverged module ' + key,
                      'ckpt %r, torch %r' % (fc.get(key), want))
        res.check(fc.get('non_finite') == {'a': {'nan': 0, 'inf': 0}, 'b': {'nan': 0, 'inf': int(torch.isinf(b_fc).sum())}},
                  'diverged module non_finite counts', '%r' % fc.get('non_finite'))
        t = {t['name']: t for t in doc['tensors']}.get('fc.weight', {})
        for key, want in (('tensor_norm_a', norm(w0)), ('tensor_norm_b', norm(w1))):
            res.check(same_json_figure(t.get(key), as_json(want)), 'diverged tensor ' + key,
                      'ckpt %r, torch %r' % (t.get(key), want))
        res.check(t.get('status') == 'different' and t.get('non_finite_mismatches') == 1,
                  'diverged tensor is different with 1 mismatch', '%r' % t)
    p = subprocess.run([a.ckpt, 'diff', files[0], files[1]], capture_output=True, text=True, timeout=120)
    lines = p.stdout.splitlines()
    fc_line = [l for l in lines if l.strip().startswith('fc ')]
    other_line = [l for l in lines if l.strip().startswith('other ')]
    res.check(fc_line and other_line and lines.index(fc_line[0]) < lines.index(other_line[0]) and
              'diverged: 1 NaN/Inf mismatch' in fc_line[0] and fc_line[0].endswith('-> inf'),
              'diff text lists the diverged module first, flagged, with its norm going to inf', p.stdout)
    res.check(any(l.strip().startswith('fc.weight ') and '(1 NaN/Inf mismatch)' in l and l.endswith('-> inf')
                  for l in lines), 'diff text gives the tensor\'s norm going to inf', p.stdout)


def check_epoch_order(a, res):
    """Epochs saved as a 0-d tensor (int or float) or a whole float order the run as an int does;
    an epoch that is not a whole number orders nothing and is said."""
    import torch
    tmp = tempfile.mkdtemp(prefix='ckpt-epochs-')
    epochs = {'a': torch.tensor(5), 'b': torch.tensor(1), 'c': 3.0, 'd': torch.tensor(4.0), 'e': torch.tensor([2])}
    files = []
    for n, ep in epochs.items():
        files.append(os.path.join(tmp, n + '.pth'))
        torch.save({'epoch': ep, 'state_dict': {'w': torch.ones(2) * float(ep)}}, files[-1])
    # What Python makes of each: int() of a tensor or float holding a whole number.
    want = sorted(epochs, key=lambda n: int(epochs[n]))
    p = subprocess.run([a.ckpt, 'series', '--json'] + files, capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series of tensor and float epochs', p.stderr):
        doc = json.loads(p.stdout)
        order = [os.path.splitext(os.path.basename(c['file']))[0] for c in doc['checkpoints']]
        res.check(order == want, 'series orders by epochs saved as tensors and floats', '%r, expected %r' % (order, want))
        res.check([c['epoch'] for c in doc['checkpoints']] == [int(epochs[n]) for n in want],
                  'series reads epochs saved as tensors and floats', '%r' % [c['epoch'] for c in doc['checkpoints']])
    frac = os.path.join(tmp, 'frac.pth')
    torch.save({'epoch': 2.5, 'state_dict': {'w': torch.ones(2)}}, frac)
    p = subprocess.run([a.ckpt, 'series', '--json', frac, files[0]], capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series with a fractional epoch', p.stderr):
        c = {os.path.basename(c['file']): c for c in json.loads(p.stdout)['checkpoints']}.get('frac.pth', {})
        res.check(c.get('epoch') is None and any('2.5' in n and 'not a whole number' in n for n in c.get('notes', [])),
                  'series says an epoch that is not a whole number rather than round it', '%r' % c)
    p = subprocess.run([a.ckpt, 'series', frac, files[0]], capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 0 and 'epoch 2.5 is not a whole number' in p.stdout,
              'series text says an epoch that is not a whole number', p.stdout)


def check_hostile_names_and_unreadable(a, res):
    """A tensor name holding a line break cannot forge a line of diff's or series' verdict; a tensor
    whose storage record is missing makes the files not comparable whole (exit 2), not different."""
    import torch
    import zipfile
    tmp = tempfile.mkdtemp(prefix='ckpt-hostile-diff-')
    forged = 'weights are equal (atol 0, rtol 0)'
    first, second = os.path.join(tmp, 'nl_a.pth'), os.path.join(tmp, 'nl_b.pth')
    torch.save({'w\n' + forged: torch.ones(2)}, first)
    torch.save({'v': torch.ones(2)}, second)
    for cmd in (['diff', first, second], ['series', first, second]):
        p = subprocess.run([a.ckpt] + cmd, capture_output=True, text=True, timeout=120)
        lines = p.stdout.splitlines()
        res.check(p.returncode in (0, 1) and not any(l.strip() == forged for l in lines) and
                  any('w\\x0a' + forged in l for l in lines),
                  '%s: a name with a line break is written escaped on one line' % cmd[0], p.stdout)
    # The same file twice, with one storage record taken out of the archive.
    whole, cut = os.path.join(tmp, 'whole.pth'), os.path.join(tmp, 'cut.pth')
    torch.save({'w': torch.ones(2), 'v': torch.zeros(3)}, whole)
    with zipfile.ZipFile(whole) as z:
        records = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    # torch numbers storages in pickling order: data/1 is v's.
    with zipfile.ZipFile(cut, 'w') as z:
        for name, data in records:
            if not name.endswith('/data/1'):
                z.writestr(name, data)
    p = subprocess.run([a.ckpt, 'diff', cut, cut], capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 2 and 'could not be read' in p.stdout and 'weights differ' not in p.stdout,
              'diff: an unreadable tensor makes the comparison incomplete (exit 2), not different',
              'exit %d: %s%s' % (p.returncode, p.stdout, p.stderr))
    p = subprocess.run([a.ckpt, 'diff', cut, whole], capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 2, 'diff: unreadable against readable, the rest equal: exit 2',
              'exit %d: %s' % (p.returncode, p.stdout))


def check_prefix_that_is_part_of_the_names(a, res):
    """A Hugging Face model saved without its tied lm_head.weight has every key under "model.";
    the same model saved with it has no common prefix. The names pair as they are (not with
    "model." set aside, which pairs none), the one only one side holds is listed, and every figure
    is torch's; series follows the same names across such a run."""
    import torch
    tmp = tempfile.mkdtemp(prefix='ckpt-hfprefix-')
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(50, 8, generator=g)
    body = {'model.embed_tokens.weight': emb, 'model.layers.0.q_proj.weight': torch.randn(8, 8, generator=g),
            'model.norm.weight': torch.ones(8)}
    with_head = dict(body)
    with_head['lm_head.weight'] = emb  # tied: one storage
    tuned = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in body.items()}
    fa, fb, fc = (os.path.join(tmp, n) for n in ('full.pth', 'nohead.pth', 'tuned.pth'))
    torch.save(with_head, fa)
    torch.save(body, fb)
    torch.save(tuned, fc)
    p = subprocess.run([a.ckpt, 'diff', fa, fb, '--json'], capture_output=True, text=True, timeout=120)
    doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
    res.check(sorted(t['name'] for t in doc.get('tensors', [])) == sorted(body),
              'diff pairs "model." names as they are when one file has the tied head',
              '%r %s' % ([t['name'] for t in doc.get('tensors', [])], p.stderr))
    res.check(doc.get('removed') == ['lm_head.weight'] and doc.get('added') == [],
              'diff lists the head only one file holds', 'removed %r added %r' % (doc.get('removed'), doc.get('added')))
    res.check(all(t['status'] == 'identical' for t in doc.get('tensors', [])), 'equal weights are identical')
    p = subprocess.run([a.ckpt, 'diff', fa, fc, '--json'], capture_output=True, text=True, timeout=120)
    doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
    got = {t['name']: t for t in doc.get('tensors', [])}
    res.check(sorted(got) == sorted(body), 'diff of a fine-tuned file without the head pairs every name', '%r' % sorted(got))
    for name, t in got.items():
        want = describe_pair_tensor(with_head[name], tuned[name], 1e-8, 1e-5)
        res.check(close(t['max_abs_diff'], want['max_abs_diff']) and close(t['relative_l2'], want['relative_l2']),
                  'diff figures with the head on one side: ' + name, 'ckpt %r, torch %r' % (t, want))
    p = subprocess.run([a.ckpt, 'series', '--json', fa, fb, fc], capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series over files with and without the tied head', p.stderr):
        layers = {l['name']: l for l in json.loads(p.stdout)['layers']}
        emb_layer = layers.get('model.embed_tokens.weight', {})
        res.check(sorted(layers) == sorted(with_head), 'series names as they are', '%r' % sorted(layers))
        res.check(len(emb_layer.get('norm', [])) == 3 and all(x is not None for x in emb_layer['norm']),
                  'series finds the embedding in every file', '%r' % emb_layer)
        if len(emb_layer.get('norm', [])) == 3 and all(x is not None for x in emb_layer['norm']):
            res.check(close(emb_layer['norm'][2], norm(tuned['model.embed_tokens.weight'])) and
                      close(emb_layer['drift_from_first'][2], norm(tuned['model.embed_tokens.weight'] - emb)),
                      'series figures of the embedding are torch\'s', '%r' % emb_layer)


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
                res.check(same_figure(t[key], figure(key, want[key])), where,
                          '%s %s: ckpt %r, torch %r' % (name, key, t[key], want[key]))
            for key in ('outside_tolerance', 'non_finite_mismatches'):
                res.check(t[key] == want[key], where, '%s %s: ckpt %r, torch %r' % (name, key, t[key], want[key]))
        modules = {m['name']: m for m in doc['modules']}
        for name, want in pair['modules'].items():
            m = modules.get(name)
            if not res.check(m is not None, where, 'no module %r' % name):
                continue
            for key in ('max_abs_diff', 'mean_abs_diff', 'relative_l2', 'cosine'):
                res.check(same_figure(m[key], figure(key, want[key])), where,
                          'module %s %s: ckpt %r, torch %r' % (name, key, m[key], want[key]))
            res.check(m['outside_tolerance'] == want['outside_tolerance'], where, 'module %s outside' % name)
        # Modules come diverged first (a NaN/Inf mismatch: their figures over the finite positions
        # can read 0), then most changed.
        keys = [(m['non_finite_mismatches'] > 0, float(m['relative_l2'])) for m in doc['modules']]  # inf is "inf"
        res.check(keys == sorted(keys, reverse=True), where, 'modules not ordered by divergence, change: %r' % keys)
        res.check(all(m.get('diverged') == (m['non_finite_mismatches'] > 0) for m in doc['modules']), where,
                  'module diverged flags')

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

    # A file against its own conversions: to a state dict (same bytes: identical, exit 0) and to
    # float16 (figures as torch computes them between the two files it loads).
    import tempfile
    import torch
    tmp = tempfile.mkdtemp(prefix='ckpt-diff-')
    base = os.path.join(a.fixtures, first['a'])
    sd_out, half_out = os.path.join(tmp, 'sd.pth'), os.path.join(tmp, 'half.safetensors')
    p1 = subprocess.run([a.ckpt, 'convert', base, '--to', 'state-dict', '-o', sd_out], capture_output=True, text=True, timeout=120)
    p2 = subprocess.run([a.ckpt, 'convert', base, '--to', 'safetensors', '--dtype', 'float16', '-o', half_out],
                        capture_output=True, text=True, timeout=120)
    if res.check(p1.returncode == 0 and p2.returncode == 0, 'conversions for diff', p1.stderr + p2.stderr):
        p = subprocess.run([a.ckpt, 'diff', base, sd_out, '--json'], capture_output=True, text=True, timeout=120)
        doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
        res.check(p.returncode == 0 and doc.get('equal') and all(t['status'] == 'identical' for t in doc['tensors']),
                  'diff with its own state-dict conversion', p.stdout[-300:] + p.stderr)
        p = subprocess.run([a.ckpt, 'diff', base, half_out, '--json', '--atol', '1e-3', '--rtol', '1e-3'],
                           capture_output=True, text=True, timeout=120)
        doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
        a_sd = torch.load(base, weights_only=False)['model_state_dict']
        # The safetensors file, read back by torch from its own bytes (no safetensors package here).
        with open(half_out, 'rb') as f:
            header_len = int.from_bytes(f.read(8), 'little')
            header = json.loads(f.read(header_len))
            payload = f.read()
        for t in doc.get('tensors', []):
            info = header.get(t['name'])
            if not res.check(info is not None, 'half conversion has ' + t['name']):
                continue
            begin, end = info['data_offsets']
            b = torch.frombuffer(bytearray(payload[begin:end]), dtype=torch.float16).reshape(info['shape'])
            want = describe_pair_tensor(a_sd[t['name']], b, 1e-3, 1e-3)
            for key in ('max_abs_diff', 'relative_l2', 'cosine'):
                res.check(close(t[key], want[key]), 'diff with its float16 conversion: ' + t['name'] + ' ' + key,
                          'ckpt %r, torch %r' % (t[key], want[key]))
            res.check(t['outside_tolerance'] == want['outside_tolerance'], 'float16 conversion outside: ' + t['name'])
            res.check(t['dtype'] == ['float32', 'float16'], 'float16 conversion dtypes: ' + t['name'], str(t['dtype']))

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

    # Series over a run whose tensors come and go and change shape: every tensor any checkpoint
    # holds is listed; where a checkpoint lacks it, or two checkpoints hold it in different shapes,
    # the figure is null with its reason, and the others are what torch computes.
    tmp = tempfile.mkdtemp(prefix='ckpt-series-')
    g = torch.Generator().manual_seed(7)
    w0, w1, w2 = torch.randn(2, generator=g), torch.randn(3, generator=g), torch.randn(3, generator=g)
    h1, h2 = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    run = [{'epoch': 0, 'state_dict': {'w': w0}},
           {'epoch': 1, 'state_dict': {'w': w1, 'head': h1}},
           {'epoch': 2, 'state_dict': {'w': w2, 'head': h2}}]
    files, p = run_series(a, tmp, 'e', run)
    if res.check(p.returncode == 0, 'series with a tensor added and a shape changed', p.stderr):
        layers = {l['name']: l for l in json.loads(p.stdout)['layers']}
        res.check(sorted(layers) == ['head', 'w'], 'series lists tensors the first checkpoint lacks', '%r' % sorted(layers))
        want = {
            'w': {'present': [True, True, True], 'shape': [[2], [3], [3]],
                  'norm': [norm(w0), norm(w1), norm(w2)],
                  'drift_from_first': [0.0, None, None],
                  'drift_from_previous': [0.0, None, norm(w2.double() - w1.double())],
                  'reasons': {'norm': [None, None, None],
                              'drift_from_first': [None, 'shape changed', 'shape changed'],
                              'drift_from_previous': [None, 'shape changed', None]}},
            'head': {'present': [False, True, True], 'shape': [None, [4, 2], [4, 2]],
                     'norm': [None, norm(h1), norm(h2)],
                     'drift_from_first': [None, None, None],
                     'drift_from_previous': [None, None, norm(h2.double() - h1.double())],
                     'reasons': {'norm': ['absent', None, None],
                                 'drift_from_first': ['absent', 'absent from the first checkpoint',
                                                      'absent from the first checkpoint'],
                                 'drift_from_previous': ['absent', 'absent from the previous checkpoint', None]}}}
        for name, w in want.items():
            got = layers.get(name, {})
            for key in ('present', 'shape', 'reasons'):
                res.check(got.get(key) == w[key], 'series %s %s' % (name, key), 'ckpt %r, expected %r' % (got.get(key), w[key]))
            for key in ('norm', 'drift_from_first', 'drift_from_previous'):
                values = got.get(key, [])
                res.check(len(values) == len(w[key]) and all(close(x, y) for x, y in zip(values, w[key])),
                          'series %s %s' % (name, key), 'ckpt %r, torch %r' % (values, w[key]))
    p = subprocess.run([a.ckpt, 'series'] + files, capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'series text with a tensor added and a shape changed', p.stderr):
        res.check('nan' not in p.stdout and '  head\n' in p.stdout and 'absent from checkpoint 0' in p.stdout
                  and 'shape changed from [2] to [3] at checkpoint 1' in p.stdout and 'n/c' in p.stdout,
                  'series text says absent and shape changed, not nan', p.stdout)
        res.check(('%.4g' % norm(w1)) in p.stdout, 'series text gives the norm after a shape change', p.stdout)

    # A checkpoint and its safetensors copy: the epoch, losses and config kept in __metadata__ are
    # the same values, not "absent"; a value that really differs is still reported.
    tmp = tempfile.mkdtemp(prefix='ckpt-diff-sf-')
    src = os.path.join(a.fixtures, 'training_checkpoint.pth')
    copy = os.path.join(tmp, 'copy.safetensors')
    p = subprocess.run([a.ckpt, 'convert', src, '--to', 'safetensors', '-o', copy], capture_output=True, text=True, timeout=120)
    if res.check(p.returncode == 0, 'convert to safetensors for diff', p.stderr):
        p = subprocess.run([a.ckpt, 'diff', src, copy, '--json'], capture_output=True, text=True, timeout=120)
        doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
        keys = [m['key'] for m in doc.get('metadata', [])]
        want = torch.load(src, weights_only=False)
        res.check(p.returncode == 0 and not any(k in keys for k in ('epoch', 'train_loss', 'val_loss', 'model_config')),
                  'diff checkpoint vs its safetensors copy: metadata read from __metadata__', '%r' % doc.get('metadata'))
        bumped = os.path.join(tmp, 'bumped.pth')
        p = subprocess.run([a.ckpt, 'convert', copy, '--to', 'checkpoint', '--epoch', str(want['epoch'] + 1), '-o', bumped],
                           capture_output=True, text=True, timeout=120)
        p = subprocess.run([a.ckpt, 'diff', copy, bumped, '--json'], capture_output=True, text=True, timeout=120)
        doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
        epoch = [m for m in doc.get('metadata', []) if m['key'] == 'epoch']
        res.check(epoch and epoch[0]['a'] == want['epoch'] and epoch[0]['b'] == want['epoch'] + 1,
                  'diff: an epoch that differs between a safetensors file and a checkpoint is reported', '%r' % doc.get('metadata'))
    # Tolerances torch.isclose refuses (NaN, which would pass every file, and negative ones) are
    # command-line mistakes; a key mapping that gives two of a's names one name is refused, naming
    # both; a NaN/Inf mismatch is said in the text as in the JSON.
    mlp_a, mlp_b = os.path.join(tmp, 'mlp_a.pth'), os.path.join(tmp, 'mlp_b.pth')
    torch.manual_seed(71)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    torch.save(net.state_dict(), mlp_a)
    changed = {k: v.clone() for k, v in net.state_dict().items()}
    changed['0.bias'][:2] = torch.tensor([float('nan'), float('inf')])
    torch.save(changed, mlp_b)
    for opt, value in (('--atol', 'nan'), ('--atol', '-1'), ('--rtol', '-0.5'), ('--rtol', 'NaN')):
        try:
            torch.isclose(torch.ones(1), torch.ones(1), **{opt[2:]: float(value)})
            torch_took = True
        except RuntimeError:
            torch_took = False
        p = subprocess.run([a.ckpt, 'diff', mlp_a, mlp_b, opt, value], capture_output=True, text=True, timeout=120)
        res.check(p.returncode == 2 and opt in p.stderr and '0 or more' in p.stderr and
                  (torch_took is False or value.lower() == 'nan'),
                  'diff %s %s: refused (exit 2), as torch.isclose refuses it' % (opt, value), p.stderr.strip())
    p = subprocess.run([a.ckpt, 'diff', mlp_a, mlp_b, '--atol', 'inf'], capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 1, 'diff --atol inf: taken, as torch.isclose takes it; the NaN still differs', p.stdout[-300:])
    p = subprocess.run([a.ckpt, 'diff', mlp_a, mlp_a, '--map', '0.=2.'], capture_output=True, text=True, timeout=120)
    res.check(p.returncode == 2 and '0.weight' in p.stderr and '2.weight' in p.stderr and 'same name' in p.stderr,
              'diff --map that gives two keys one name: refused, naming both', p.stderr.strip() + p.stdout[-300:])
    p = subprocess.run([a.ckpt, 'diff', mlp_a, mlp_b], capture_output=True, text=True, timeout=120)
    pj = subprocess.run([a.ckpt, 'diff', mlp_a, mlp_b, '--json'], capture_output=True, text=True, timeout=120)
    bias = [t for t in json.loads(pj.stdout)['tensors'] if t['name'] == '0.bias'] if pj.returncode == 1 else []
    nf = bias[0]['non_finite_mismatches'] if bias else None
    want_nf = int((~torch.isclose(net.state_dict()['0.bias'], changed['0.bias'], equal_nan=True) &
                   ~(torch.isfinite(net.state_dict()['0.bias']) & torch.isfinite(changed['0.bias']))).sum())
    res.check(nf == want_nf == 2 and ('(%d NaN/Inf mismatches)' % want_nf) in p.stdout,
              'diff text says the NaN/Inf mismatches the JSON counts', p.stdout[-400:])

    check_divergence(a, res)
    check_epoch_order(a, res)
    check_prefix_that_is_part_of_the_names(a, res)

    # Metadata equal to Python is equal to diff: a config whose pickle shares one long string
    # (written once, referred to again) against the same config with two equal strings.
    text = 'a long description ' * 100
    shared = os.path.join(tmp, 'shared.pth')
    unshared = os.path.join(tmp, 'unshared.pth')
    weights = {'fc.weight': torch.ones(2, 2)}
    torch.save({'model_state_dict': weights, 'model_config': {'desc': text, 'again': text}}, shared)
    torch.save({'model_state_dict': weights, 'model_config': {'desc': text, 'again': ''.join(list(text))}}, unshared)
    with open(shared, 'rb') as f1, open(unshared, 'rb') as f2:
        res.check(f1.read() != f2.read(), 'the shared and unshared configs pickle differently')
    want_equal = torch.load(shared)['model_config'] == torch.load(unshared)['model_config']
    p = subprocess.run([a.ckpt, 'diff', shared, unshared, '--json'], capture_output=True, text=True, timeout=120)
    doc = json.loads(p.stdout) if p.returncode in (0, 1) else {}
    res.check(want_equal and p.returncode == 0 and not [m for m in doc.get('metadata', []) if m['key'] == 'model_config'],
              'diff: a config sharing a string equals the same config unshared, as in Python', p.stdout[-600:] + p.stderr)
    check_hostile_names_and_unreadable(a, res)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
