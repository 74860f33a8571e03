#!/usr/bin/env python3
"""`ckpt tensors --stats --json` and `ckpt show` judged by PyTorch: for each fixture, PyTorch loads
the file and computes the same statistics (over non-NaN values, in float64; std unbiased as
torch.std) and the first values; the CLI must agree. The `tensors --json` document is checked field
by field (name, dtype, shape, numel, bytes, device, in that order) and as text: laid out exactly as
Python's json.dumps(indent=2, ensure_ascii=False) lays out the same values, since the CLI writes it
row by row rather than through a JSON library."""
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from torch_listing import classify, dtype_name, load_with_locations, saved_device  # noqa: E402

FILES = ['state_dict.pth', 'training_checkpoint.pth', 'full_model.pth', 'dtypes.pth', 'dtypes_legacy.pth',
         'views.pth', 'views_legacy.pth', 'cuda_saved.pth', 'nan_inf.pth', 'special_tensors.pth',
         'int_extremes.pth', 'weights.safetensors']


def is_exact(t):
    """Integer and bool tensors: their numbers are shown exactly, as ints (bools), not floats."""
    return not t.is_quantized and not t.is_floating_point() and not t.is_complex()


def same_exactly(got, want):
    """Equal values of equal Python types: 3 is not 3.0, True is not 1."""
    return len(got) == len(want) and all(type(g) is type(w) and g == w for g, w in zip(got, want))


def torch_stats(t):
    if t.is_quantized:
        t = t.dequantize()
    if t.is_sparse:
        t = t.to_dense()
    v = torch.view_as_real(t).flatten() if t.is_complex() else t.flatten()
    v = v.double()
    nan = torch.isnan(v)
    w = v[~nan]

    def figures(x):  # torch's: a NaN makes each nan; the norm of no values is 0
        f = {'l2': float(torch.linalg.norm(x))}
        if x.numel():
            f.update(min=float(x.min()), max=float(x.max()), mean=float(x.mean()),
                     std=float(x.std()) if x.numel() > 1 else None)
        return f

    s = {'nan': int(nan.sum()), 'inf': int(torch.isinf(w).sum()),
         'zero_fraction': float((w == 0).sum()) / v.numel() if v.numel() else None}
    s.update(figures(v))
    if s['nan']:
        s['without_nan'] = figures(w)  # labelled apart by ckpt
    return s


def check_without_nan(check, where, got, want):
    """A tensor holding NaN: the figures over its other values, under "without_nan"."""
    if 'without_nan' in want:
        g, w = got.get('without_nan') or {}, want['without_nan']
        check(all(close(g.get(k), w.get(k)) for k in ('min', 'max', 'mean', 'std', 'l2')),
              f'{where}: without_nan {g} != {w}')
    else:
        check('without_nan' not in got, f'{where}: without_nan only where there is a NaN')


def close(a, b):
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    if isinstance(b, float) and math.isinf(b):
        return a == ('inf' if b > 0 else '-inf')
    return a is not None and not isinstance(a, str) and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def tensors_of(path):
    if path.endswith('.safetensors'):
        return None
    obj = torch.load(path, map_location='cpu', weights_only=False)
    kind, _, tensors = classify(obj)
    return tensors


ROW_KEYS = ['name', 'dtype', 'shape', 'numel', 'bytes', 'device']
STATS_KEYS = ['min', 'max', 'mean', 'std', 'l2', 'zero_fraction', 'nan', 'inf']
# A floating-point number alone on its line, as a member's value or a list's element (dump(2) and
# json.dumps alike). Integers are left to be compared as text.
NUMBER_LINE = re.compile(r'^(\s*(?:"(?:[^"\\]|\\.)*": )?)-?\d+(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+)(,?)$', re.M)


def layout_problem(text):
    """Why `text` is not exactly json.dumps(indent=2, ensure_ascii=False) of what it holds plus a line
    break, else None. Floating-point numbers are compared as values, not as text: the two pick the
    exponent form differently between 1e15 and 1e16, and nlohmann's digits need not be the shortest."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        return 'not JSON: %s' % e
    want = json.dumps(doc, indent=2, ensure_ascii=False) + '\n'
    if NUMBER_LINE.sub(r'\1N\2', text) != NUMBER_LINE.sub(r'\1N\2', want):
        a, b = NUMBER_LINE.sub(r'\1N\2', text).splitlines(), NUMBER_LINE.sub(r'\1N\2', want).splitlines()
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return 'line %d: %r, json.dumps writes %r' % (at + 1, a[at] if at < len(a) else None,
                                                      b[at] if at < len(b) else None)
    return None


def run_json(ckpt, *args):
    """(exit status, text, document) of `ckpt tensors ARGS --json`; stdout must be UTF-8."""
    r = subprocess.run([ckpt, 'tensors', *args, '--json'], capture_output=True, timeout=120)
    text = r.stdout.decode('utf-8')
    return r.returncode, text, json.loads(text) if r.returncode == 0 else None


def stored_bytes(t):
    """What the file holds for `t`: a sparse tensor's indices and values, else numel * element size."""
    if t.is_sparse:
        return sum(p.numel() * p.element_size() for p in (t._indices(), t._values()))
    return t.numel() * t.element_size()


def device_of(t, locations):
    """Where `t` was saved: its storage's location (a sparse tensor's values'), 'meta' for a meta tensor."""
    if t.is_meta:
        return 'meta'
    if locations is None:
        return 'cpu'
    return saved_device(t._values() if t.is_sparse else t, locations)


def check_rows(check, where, rows, theirs, locations, stats):
    """Every row against PyTorch's tensor: the fields, their order, the rows' order."""
    check([r.get('name') for r in rows] == [n for n, _ in theirs],
          f'{where}: names {[r.get("name") for r in rows]} != {[n for n, _ in theirs]}')
    for row, (tname, t) in zip(rows, theirs):
        keys = ROW_KEYS + (['problem'] if 'problem' in row else []) + (['stats'] if stats else [])
        check(list(row) == keys, f'{where}: {tname}: fields {list(row)} != {keys}')
        want = {'dtype': dtype_name(t.dtype), 'shape': list(t.shape), 'numel': t.numel(), 'bytes': stored_bytes(t),
                'device': device_of(t, locations)}
        for k, w in want.items():
            check(row.get(k) == w and type(row.get(k)) is type(w), f'{where}: {tname}: {k} {row.get(k)!r} != {w!r}')
        if stats and 'error' not in row['stats']:
            extra = ['without_nan'] if row['stats'].get('nan') else []  # the figures over the other values
            check(list(row['stats']) == STATS_KEYS + extra, f'{where}: {tname}: stats fields {list(row["stats"])}')


def check_document(check, ckpt, name, path, theirs, locations):
    """`tensors --json`, with --stats and with --filter: the same rows, laid out as json.dumps would."""
    rc, text, plain = run_json(ckpt, path)
    rcs, text_stats, with_stats = run_json(ckpt, path, '--stats')
    if not check(rc == 0 and rcs == 0, f'{name}: tensors --json exit {rc}, with --stats {rcs}'):
        return
    for args, t in ((['--json'], text), (['--json', '--stats'], text_stats)):
        problem = layout_problem(t)
        check(problem is None, f'{name}: tensors {" ".join(args)} as text: {problem}')
    check(list(plain) == ['file', 'tensors'] and plain['file'] == path, f'{name}: top level {list(plain)}')
    check(plain['tensors'] == [{k: v for k, v in r.items() if k != 'stats'} for r in with_stats['tensors']],
          f'{name}: tensors --json and --json --stats list different rows')
    if theirs is not None:
        check_rows(check, f'{name} tensors --json', plain['tensors'], theirs, locations, False)
        check_rows(check, f'{name} tensors --json --stats', with_stats['tensors'], theirs, locations, True)
    # A filter keeps the rows whose name holds it, any case, in order; one matching nothing, none.
    for needle in ('WEIGHT', '.0', 'no such name'):
        rc, text, filtered = run_json(ckpt, path, '--filter', needle)
        want = [r for r in plain['tensors'] if needle.lower() in r['name'].lower()]
        check(rc == 0 and filtered == {'file': path, 'tensors': want} and layout_problem(text) is None,
              f'{name}: --filter {needle!r}: {text[:300]}')


def odd_names(folder):
    """A state dict whose names and values put the writer's escaping and numbers to the test: quotes,
    backslashes, control bytes, non-ASCII, a lone surrogate (invalid UTF-8 in the file), empty and
    scalar tensors, NaN, infinities, extremes of each width."""
    sd = collections.OrderedDict()
    sd['caf\u00e9.weight'] = torch.tensor([1e-7, 1e20, 123456789.0, -0.0], dtype=torch.float64)
    sd['quote"back\\slash'] = torch.tensor([5e-324, 1e150, 0.1, 2.5], dtype=torch.float64)
    sd['ctl\x01\x7f\x1f\t\n'] = torch.tensor([float('nan'), float('inf'), -float('inf'), 1.0])
    sd['lone\udcff surrogate \U0001F600'] = torch.zeros(3, 0)
    sd['int64'] = torch.tensor([2 ** 62, -2 ** 63], dtype=torch.int64)
    sd['bool'] = torch.tensor([True, False])
    sd['half'] = torch.tensor([65504, -1e-4, 6e-8], dtype=torch.float16)
    sd['bf16'] = torch.tensor([3.0e38, 1e-38], dtype=torch.bfloat16)
    sd['empty'] = torch.empty(0)
    sd['scalar'] = torch.tensor(3.5)
    sd['complex'] = torch.tensor([1 + 2j, -3.5j])
    sd['transposed'] = torch.arange(12.).reshape(3, 4).t()
    sd['all_nan'] = torch.full((4,), float('nan'))
    sd['big'] = torch.tensor([1.5e15, 9.99e15, 1e16], dtype=torch.float64)
    path = os.path.join(folder, 'odd_names.pth')
    torch.save(sd, path)
    # The names as the file holds them (UTF-8, surrogates passed through), as JSON can carry them.
    return path, [(k.encode('utf-8', 'surrogatepass').decode('utf-8', 'replace'), v) for k, v in sd.items()], sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    sys.path.insert(0, a.fixtures)
    results = Results()
    check = results.check

    # The document itself: every row's fields against PyTorch, and the text's layout.
    for name in FILES:
        path = os.path.join(a.fixtures, name)
        if name.endswith('.safetensors'):
            check_document(check, a.ckpt, name, path, None, None)
            continue
        obj, locations = load_with_locations(path)
        theirs = list(obj.items()) if name == 'special_tensors.pth' else classify(obj)[2]
        check_document(check, a.ckpt, name, path, theirs, locations)
    with tempfile.TemporaryDirectory() as folder:
        path, theirs, sd = odd_names(folder)
        check_document(check, a.ckpt, 'odd_names.pth', path, theirs, None)
        rc, text, doc = run_json(a.ckpt, path, '--stats')
        for row, (tname, t) in zip(doc['tensors'] if doc else [], theirs):
            got, want = row['stats'], torch_stats(t)
            for k in ('mean', 'std', 'l2', 'zero_fraction') + (() if is_exact(t) else ('min', 'max')):
                check(close(got.get(k), want.get(k)), f'odd_names.pth: {tname!r}: {k} {got.get(k)} != {want.get(k)}')
            if is_exact(t) and t.numel():
                check(same_exactly([got['min'], got['max']], [int(t.min()), int(t.max())]),
                      f'odd_names.pth: {tname!r}: extremes {got["min"]!r}, {got["max"]!r}')
            check(got['nan'] == want['nan'] and got['inf'] == want['inf'], f'odd_names.pth: {tname!r}: nan/inf')
            check_without_nan(check, f'odd_names.pth: {tname!r}', got, want)
        # ckpt show starts with the same fields and statistics as the row (its values aside).
        for row, key in zip(doc['tensors'] if doc else [], sd):
            r = subprocess.run([a.ckpt, 'show', path, key.encode('utf-8', 'surrogatepass'), '--limit', '0', '--json'],
                               capture_output=True, timeout=60)
            shown = json.loads(r.stdout.decode('utf-8')) if r.returncode == 0 else {}
            shown.get('stats', {}).pop('over', None)
            head = {k: v for k, v in shown.items() if k in row}
            check(list(head) == list(row) and head == row and layout_problem(r.stdout.decode('utf-8')) is None,
                  f'odd_names.pth: show {row["name"]!r}: {head} != the row {row}')
        # No tensors: an empty list, as dump writes one.
        for what, obj in (('an empty state dict', collections.OrderedDict()), ('an empty list', [])):
            empty = os.path.join(folder, 'empty.pth')
            torch.save(obj, empty)
            rc, text, _ = run_json(a.ckpt, empty)
            check(rc == 0 and text == '{\n  "file": %s,\n  "tensors": []\n}\n' % json.dumps(empty), f'{what}: {text!r}')

    for name in FILES:
        path = os.path.join(a.fixtures, name)
        r = subprocess.run([a.ckpt, 'tensors', path, '--stats', '--json'], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f'{name}: exit {r.returncode}: {r.stderr}')
        if r.returncode:
            continue
        rows = {row['name']: row for row in json.loads(r.stdout)['tensors']}
        if name == 'special_tensors.pth':
            theirs = list(torch.load(path, map_location='cpu', weights_only=False).items())
        elif name == 'weights.safetensors':
            expected = json.load(open(os.path.join(a.fixtures, 'expected.json')))['__safetensors__'][name]['tensors']
            check(sorted(rows) == sorted(e[0] for e in expected), f'{name}: names')
            continue
        else:
            theirs = tensors_of(path)
        for tname, t in theirs:
            row = rows.get(tname)
            check(row is not None, f'{name}: {tname} missing')
            if row is None:
                continue
            got = row['stats']
            if t.is_meta:
                check('error' in got, f'{name}: {tname}: a meta tensor has no statistics')
                continue
            want = torch_stats(t)
            dense = t.to_dense() if t.is_sparse else t
            for k in ('min', 'max', 'mean', 'std', 'l2', 'zero_fraction'):
                if is_exact(t) and k in ('min', 'max') and t.numel():
                    # Integer extremes exactly, as ints: a double would round them past 2^53.
                    w = int(dense.min() if k == 'min' else dense.max())
                    check(same_exactly([got.get(k)], [w]), f'{name}: {tname}: {k} {got.get(k)!r} != {w!r} exactly')
                    continue
                check(close(got.get(k), want.get(k)), f'{name}: {tname}: {k} {got.get(k)} != {want.get(k)}')
            check(got['nan'] == want['nan'] and got['inf'] == want['inf'], f'{name}: {tname}: nan/inf counts')
            check_without_nan(check, f'{name}: {tname}', got, want)
            if is_exact(t):  # (meta tensors were passed over above)
                # ckpt show: an integer or bool tensor's values exactly, of the types tolist() gives.
                r = subprocess.run([a.ckpt, 'show', path, tname, '--limit', '50', '--json'], capture_output=True,
                                   text=True, timeout=60)
                want_values = dense.flatten()[:50].tolist()
                shown = json.loads(r.stdout)['values'] if r.returncode == 0 else None
                check(shown is not None and same_exactly(shown, want_values),
                      f'{name}: show {tname}: {shown} != {want_values} exactly')
        # ckpt show: a complex tensor's values as [real, imaginary] pairs, as view_as_real().tolist().
        for tname, t in theirs:
            if t.is_complex():
                r = subprocess.run([a.ckpt, 'show', path, tname, '--limit', '4', '--json'], capture_output=True,
                                   text=True, timeout=60)
                shown = json.loads(r.stdout) if r.returncode == 0 else {}
                want = torch.view_as_real(t.to(torch.complex128)).flatten(0, -2)[:4].tolist()
                check(len(shown.get('values', [])) == len(want) and all(
                    close(x, y) for p, q in zip(shown['values'], want) for x, y in zip(p, q)) and
                    shown['stats'].get('over') == 'real and imaginary parts together',
                    f'{name}: show {tname}: {shown.get("values")} != {want}')
        # ckpt show: the first values of the first tensor, as PyTorch lists them.
        tname, t = theirs[0]
        r = subprocess.run([a.ckpt, 'show', path, tname, '--limit', '5', '--json'], capture_output=True, text=True,
                           timeout=60)
        check(r.returncode == 0, f'{name}: show {tname}: exit {r.returncode}: {r.stderr}')
        if r.returncode == 0 and not t.is_meta:
            shown = [v for x in json.loads(r.stdout)['values'] for v in (x if isinstance(x, list) else [x])]
            dense = t.dequantize() if t.is_quantized else (t.to_dense() if t.is_sparse else t)
            flat = (torch.view_as_real(dense) if dense.is_complex() else dense).flatten().double()[:len(shown)].tolist()
            check(all(close(x, y) for x, y in zip(shown, flat)), f'{name}: show {tname}: {shown} != {flat}')
    # Element types torch 1.x has no storage class for (tests/fixtures/newer_dtypes.py): dtype, shape,
    # statistics and values against the generator's account, torch's own where it has the types.
    newer = json.load(open(os.path.join(a.fixtures, 'expected.json')))['__newer_dtypes__']
    path = os.path.join(a.fixtures, 'newer_dtypes.pth')
    r = subprocess.run([a.ckpt, 'tensors', path, '--stats', '--json'], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f'newer_dtypes.pth: exit {r.returncode}: {r.stderr}')
    rows = {row['name']: row for row in json.loads(r.stdout)['tensors']} if r.returncode == 0 else {}
    check(list(rows) == list(newer['tensors']), f'newer_dtypes.pth: tensors {list(rows)}')
    for tname, e in newer['tensors'].items():
        row = rows.get(tname)
        if not check(row is not None and row['dtype'] == e['dtype'] and row['shape'] == e['shape'],
                     f'newer_dtypes.pth: {tname}: {row and (row["dtype"], row["shape"])} != {e["dtype"]}, {e["shape"]}'):
            continue
        exact = e['dtype'].startswith('uint')  # integers: values and extremes exactly, up to 2^64 - 1
        ints = [v for x in e['values'] for v in (x if isinstance(x, list) else [x])] if exact else []
        flat = [float(v) for x in e['values'] for v in (x if isinstance(x, list) else [x])]
        want = torch_stats(torch.tensor(flat, dtype=torch.float64))
        got = row['stats']
        for k in ('min', 'max', 'mean', 'std', 'l2', 'zero_fraction'):
            if exact and k in ('min', 'max'):
                w = min(ints) if k == 'min' else max(ints)
                check(same_exactly([got.get(k)], [w]), f'newer_dtypes.pth: {tname}: {k} {got.get(k)!r} != {w!r} exactly')
                continue
            check(close(got.get(k), want.get(k)), f'newer_dtypes.pth: {tname}: {k} {got.get(k)} != {want.get(k)} '
                  f'({newer["judge"]})')
        check(got['nan'] == want['nan'] and got['inf'] == want['inf'], f'newer_dtypes.pth: {tname}: nan/inf counts')
        r = subprocess.run([a.ckpt, 'show', path, tname, '--limit', '1000', '--json'], capture_output=True, text=True,
                           timeout=60)
        shown = json.loads(r.stdout)['values'] if r.returncode == 0 else None
        if exact:
            check(shown is not None and same_exactly(shown, ints), f'newer_dtypes.pth: show {tname}: {shown} != {ints} exactly')
            continue
        if e['dtype'].startswith('complex'):  # [real, imaginary] per element, as view_as_real().tolist()
            check(shown is not None and all(isinstance(p, list) and len(p) == 2 for p in shown),
                  f'newer_dtypes.pth: show {tname}: {shown} are not [real, imaginary] pairs')
            shown = [v for p in shown or [] for v in p]
        same = shown is not None and len(shown) == len(flat) and all(
            (x is None and math.isnan(y)) or close(x, y) for x, y in zip(shown, flat))
        check(same, f'newer_dtypes.pth: show {tname}: {shown} != {flat}')
    # Histograms: the counts torch.histc gives over the finite values, range from their min to max.
    for name, key, bins in (('state_dict.pth', 'fc1.weight', 10), ('nan_inf.pth', 'dirty', 4),
                            ('dtypes.pth', 'bfloat16', 7), ('special_tensors.pth', 'q', 5)):
        path = os.path.join(a.fixtures, name)
        r = subprocess.run([a.ckpt, 'show', path, key, '--histogram', str(bins), '--json'], capture_output=True,
                           text=True, timeout=60)
        if not check(r.returncode == 0, f'histogram {name} {key}: {r.stderr}'):
            continue
        h = json.loads(r.stdout)['histogram']
        t = torch.load(path, map_location='cpu', weights_only=False)[key]
        t = (t.dequantize() if t.is_quantized else t).double().flatten()
        t = t[torch.isfinite(t)]
        want = torch.histc(t, bins=bins, min=float(t.min()), max=float(t.max())).long().tolist()
        check(h['counts'] == want and close(h['low'], float(t.min())) and close(h['high'], float(t.max())),
              f'histogram {name} {key}: {h} != {want}')
    r = subprocess.run([a.ckpt, 'show', os.path.join(a.fixtures, 'training_checkpoint.pth'), 'model_config', '--json'],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and json.loads(r.stdout)['value'] == {'input_size': 10, 'hidden_size': 50, 'output_size': 2},
          f'show model_config: {r.stdout} {r.stderr}')
    r = subprocess.run([a.ckpt, 'show', os.path.join(a.fixtures, 'state_dict.pth'), 'no.such.key'],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and r.stderr.startswith('ckpt: ') and 'no.such.key' in r.stderr, f'missing key: {r.stderr}')
    r = subprocess.run([a.ckpt, 'tensors', os.path.join(a.fixtures, 'training_checkpoint.pth'), '--filter', 'FC2', '--json'],
                       capture_output=True, text=True, timeout=60)
    check([row['name'] for row in json.loads(r.stdout)['tensors']] == ['fc2.weight', 'fc2.bias'], f'filter: {r.stdout}')
    # Text: a table with a header, statistics in aligned columns; a filter that matches nothing says so.
    path = os.path.join(a.fixtures, 'training_checkpoint.pth')
    r = subprocess.run([a.ckpt, 'tensors', path, '--stats'], capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    sd = torch.load(path, weights_only=False)['model_state_dict']
    check(r.returncode == 0 and lines[0].split() == ['name', 'dtype', 'shape', 'device', 'min', 'max', 'mean', 'std', 'l2',
                                                     'zeros', '%', 'nan', 'inf'] and
          len({l.index('float32') for l in lines[1:]}) == 1 and [l.split()[0] for l in lines[1:]] == list(sd),
          f'tensors --stats text table: {r.stdout}')
    r = subprocess.run([a.ckpt, 'tensors', path, '--filter', 'zzz'], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "no tensor name contains 'zzz'" in r.stdout, f'filter matching nothing: {r.stdout!r}')
    # show without --json: text, the values as torch has them.
    r = subprocess.run([a.ckpt, 'show', path, 'fc2.bias'], capture_output=True, text=True, timeout=60)
    first = [float(v) for v in r.stdout.split('):', 1)[1].split(',')] if '):' in r.stdout else []
    check(r.returncode == 0 and not r.stdout.lstrip().startswith('{') and 'fc2.bias  float32  [2]' in r.stdout and
          len(first) == 2 and all(abs(x - y) <= 1e-5 * max(1, abs(y)) for x, y in zip(first, sd['fc2.bias'].tolist())),
          f'show text: {r.stdout}')
    r = subprocess.run([a.ckpt, 'show', path, 'epoch'], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and r.stdout.strip() == 'epoch (int): %d' % torch.load(path, weights_only=False)['epoch'],
          f'show a value as text: {r.stdout!r}')
    empty_norm_text(check, a.ckpt, os.path.join(a.fixtures, 'views.pth'))
    with tempfile.TemporaryDirectory() as folder:
        quantized_show(check, a.ckpt, folder)
        slash_show(check, a.ckpt, folder)
    return results.finish()


def empty_norm_text(check, ckpt, path):
    """An empty tensor's L2 in the text of `tensors --stats` and `show` is torch.linalg.norm's (0, as
    the window and the JSON give it), not the "-" of the figures torch has none of (min, max)."""
    sd = torch.load(path, weights_only=False)
    empty = [k for k, t in sd.items() if t.numel() == 0]
    check(empty, f'{path}: no empty tensor to test')
    r = subprocess.run([ckpt, 'tensors', path, '--stats'], capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    header = re.split(r'\s{2,}', lines[0].strip()) if lines else []
    rows = {cells[0]: cells for cells in (re.split(r'\s{2,}', l.strip()) for l in lines[1:])}
    for key in empty:
        want = float(torch.linalg.norm(sd[key]))
        cells = rows.get(key, [])
        got = cells[header.index('l2')] if 'l2' in header and len(cells) == len(header) else None
        check(got is not None and got != '-' and float(got) == want,
              f'tensors --stats: {key}: l2 {got!r}, torch.linalg.norm {want!r}\n{r.stdout}')
        r = subprocess.run([ckpt, 'show', path, key], capture_output=True, text=True, timeout=60)
        m = re.search(r'  l2 (\S+)', r.stdout)
        check(r.returncode == 0 and m and m.group(1) != '-' and float(m.group(1)) == want,
              f'show {key}: l2 {m.group(1) if m else None!r}, torch.linalg.norm {want!r}: {r.stdout}')


def quantized_show(check, ckpt, folder):
    """ckpt show and tensors --stats read a quantized tensor as tensor.dequantize() does, to the bit:
    each value shown is its float32 (computed in float64 and rounded once, about one in six was a
    unit in the last place off), and the statistics are those of its values."""
    sys.path.insert(0, HERE)
    from test_export_vs_torch import quantized_tensors
    path = os.path.join(folder, 'quantized.pth')
    torch.save(quantized_tensors(), path)
    rc, _, doc = run_json(ckpt, path, '--stats')
    rows = {row['name']: row for row in doc['tensors']} if doc else {}
    for key, t in torch.load(path).items():
        want = t.dequantize()
        r = subprocess.run([ckpt, 'show', path, key, '--limit', str(want.numel()), '--json'], capture_output=True,
                           text=True, timeout=120)
        shown = json.loads(r.stdout)['values'] if r.returncode == 0 else []
        got = torch.tensor(shown, dtype=torch.float64) if shown else torch.empty(0, dtype=torch.float64)
        wanted = want.flatten().double()
        same = got.shape == wanted.shape and bool((got.float().double() == got).all()) and bool((got == wanted).all())
        check(same, f'quantized {key} ({t.qscheme()}): show gives tensor.dequantize()\'s float32 values, every one '
              f'({int((got != wanted).sum()) if got.shape == wanted.shape else "a different count of"} differ)')
        st, ref = (rows.get(key) or {}).get('stats', {}), torch_stats(want)
        check(all(close(st.get(k), ref.get(k)) for k in ('min', 'max', 'mean', 'std', 'l2', 'zero_fraction')) and
              st.get('min') == float(want.min()) and st.get('max') == float(want.max()),
              f'quantized {key}: tensors --stats are those of tensor.dequantize(): {st} vs {ref}')


def slash_show(check, ckpt, folder):
    """A top-level key that holds '/' is found as written before the text is read as a path; where it
    is both (and they differ), the one taken is said, in text and in --json."""
    path = os.path.join(folder, 'slash.pth')
    torch.save({'encoder/layer_0/kernel': torch.arange(4.), 'a/b': torch.arange(3.) + 10,
                'a': {'b': torch.arange(2.) + 20, 'c': torch.arange(2.) + 30}, '': torch.tensor([7.])}, path)
    theirs = torch.load(path)
    for key, want, both in (('encoder/layer_0/kernel', theirs['encoder/layer_0/kernel'], False),
                            ('a/b', theirs['a/b'], True), ('a/c', theirs['a']['c'], False), ('', theirs[''], True)):
        r = subprocess.run([ckpt, 'show', path, key, '--json'], capture_output=True, text=True, timeout=60)
        shown = json.loads(r.stdout) if r.returncode == 0 else {}
        note = shown.get('note', '')
        check(shown.get('values') == want.tolist() and shown.get('shape') == list(want.shape) and
              (("'%s'" % key) in note and 'taken' in note if both else 'note' not in shown),
              f'show {key!r}: the entry torch.load gives under that key{", and a note says which" if both else ""}: '
              f'{r.stdout[:300]} {r.stderr}')
        t = subprocess.run([ckpt, 'show', path, key], capture_output=True, text=True, timeout=60)
        notes = [line for line in t.stdout.splitlines() if line.startswith('note: ')]
        check(t.returncode == 0 and (len(notes) == 1 and 'taken' in notes[0] if both else not notes),
              f'show {key!r} as text: {"a note says which entry" if both else "no note"}: {t.stdout[:300]} {t.stderr}')


if __name__ == '__main__':
    sys.exit(main())
