#!/usr/bin/env python3
"""The CLI's text output (not --json) as a user reads it, judged by PyTorch and Python:

- numbers as torch prints them: NaN and the infinities as nan, inf, -inf in `show`, `tensors`,
  `info` and `diff` text, never JSON's null and "inf" (which --json keeps);
- count options (--limit, --histogram, --top, --repeat) refuse what makes no sense, with a sentence;
- `tensors --filter` ignores case in every script, as Python's str.casefold does;
- text tables align their columns by terminal columns (wide CJK characters, combining marks), as
  measured with Python's unicodedata;
- `convert`'s default output names do not repeat a suffix the input's name already carries;
- a command that needs the compute module, run where it cannot be loaded, fails with one line that
  says what could not be loaded and where it was looked for, and the README's exit status.
The numbers come from torch loading the same files; the names from tests/fixtures/generate_fixtures.py."""
import argparse
import collections
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from results import Results  # noqa: E402
import torch  # noqa: E402
from torch_listing import dtype_name  # noqa: E402


def run(ckpt, *args, timeout=120):
    """(exit status, stdout, stderr) of `ckpt ARGS`, as text."""
    r = subprocess.run([ckpt, *args], capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode('utf-8', 'replace'), r.stderr.decode('utf-8', 'replace')


def word(x):
    """A number as torch prints it in a summary: six significant digits, nan, inf, -inf (C's %g,
    which Python's % operator follows)."""
    return '%.6g' % x


def agrees(text, x, rel=1e-5):
    """Whether `text` is the number `x` to six digits, or the word torch prints for it."""
    if math.isnan(x) or math.isinf(x):
        return text == word(x)
    try:
        return abs(float(text) - x) <= rel * max(1.0, abs(x))
    except ValueError:
        return False


def torch_stats(t, without_nan=False):
    """min, max, mean, std, l2 in float64 as torch gives them (nan where the tensor holds a NaN), or
    over the values that are not NaN (`ckpt`'s line "without the NaN values")."""
    v = torch.view_as_real(t).flatten().double() if t.is_complex() else t.flatten().double()
    w = v[~torch.isnan(v)] if without_nan else v
    return {'min': float(w.min()), 'max': float(w.max()), 'mean': float(w.mean()),
            'std': float(w.std()) if w.numel() > 1 else float('nan'), 'l2': float(w.pow(2).sum().sqrt())}


def columns(text):
    """Terminal columns of `text`: 0 for combining marks and format characters (not the soft hyphen)
    and Hangul medial vowels and final consonants, 2 for East Asian wide and fullwidth, else 1."""
    width = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ('Mn', 'Me') or (cat == 'Cf' and ch != '\u00ad') or 0x1160 <= ord(ch) <= 0x11FF:
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ('W', 'F') else 1
    return width


def cell_columns(line, cells):
    """The terminal column at which each of `cells` starts in `line` (found in order), or None."""
    starts, at = [], 0
    for cell in cells:
        i = line.find(cell, at)
        if i < 0:
            return None
        starts.append(columns(line[:i]))
        at = i + len(cell)
    return starts


# --- numbers ------------------------------------------------------------------------------------

def check_numbers(res, ckpt, fixtures, work):
    path = os.path.join(fixtures, 'nan_inf.pth')
    sd = torch.load(path, weights_only=True)
    for key, t in sd.items():
        rc, out, err = run(ckpt, 'show', path, key)
        lines = out.splitlines()
        if not res.check(rc == 0 and len(lines) >= 3, 'show %s' % key, err + out):
            continue
        stats = dict(re.findall(r'\b(min|max|mean|std|l2) (\S+)', lines[1]))
        want = torch_stats(t)
        res.check(all(agrees(stats.get(k, ''), x) for k, x in want.items()), 'show %s: statistics as torch' % key,
                  '%s, torch %r' % (lines[1], want))
        if bool(torch.isnan(t).any()):  # the figures over the other values, on a line of their own
            rest = dict(re.findall(r'\b(min|max|mean|std|l2) (\S+)', lines[2]))
            want = torch_stats(t, without_nan=True)
            res.check(lines[2].startswith('  without the NaN values: ') and
                      all(agrees(rest.get(k, ''), x) for k, x in want.items()),
                      'show %s: the figures without the NaN values' % key, '%s, torch %r' % (lines[2], want))
            del lines[2]
        values = ', '.join(word(x) for x in t.double().tolist())
        res.check(lines[2] == '  values (the first %d of %d): %s' % (t.numel(), t.numel(), values),
                  'show %s: values as torch prints them' % key, '%r, torch %r' % (lines[2], values))
        res.check('null' not in out and '"' not in out, 'show %s: no JSON words in the text' % key, out)
        # --json keeps JSON's convention: NaN is null, an infinity the string "inf" or "-inf".
        rc, out, err = run(ckpt, 'show', path, key, '--json')
        got = json.loads(out)['values'] if rc == 0 else None
        want_json = [None if math.isnan(x) else ('inf' if x > 0 else '-inf') if math.isinf(x) else x
                     for x in t.double().tolist()]
        res.check(got == want_json, 'show %s --json: null and "inf" for NaN and infinity' % key, out[-300:])

    # The table of `tensors --stats`: the same words.
    rc, out, err = run(ckpt, 'tensors', path, '--stats')
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    for key, t in sd.items():
        cells = rows.get(key, [])
        want = torch_stats(t)
        res.check(len(cells) >= 9 and all(agrees(c, want[k]) for c, k in zip(cells[4:9], ('min', 'max', 'mean', 'std', 'l2'))),
                  'tensors --stats %s: statistics as torch' % key, '%r, torch %r' % (cells, want))

    # The histogram's range, from the finite values.
    rc, out, err = run(ckpt, 'show', path, 'dirty', '--histogram', '3')
    m = re.search(r'histogram \[(\S+), (\S+)\]: \[(.*)\]', out)
    t = sd['dirty'].double()
    finite = t[torch.isfinite(t)]
    counts = torch.histc(finite, bins=3, min=float(finite.min()), max=float(finite.max())).long().tolist()
    res.check(m is not None and agrees(m.group(1), float(finite.min())) and agrees(m.group(2), float(finite.max())) and
              [int(c) for c in m.group(3).split(',')] == counts, 'show --histogram as text', out)

    # A complex tensor's [real, imaginary] pairs, and values that are not tensors.
    obj = {'z': torch.tensor([complex(1.5, float('nan')), complex(float('inf'), -2.0)]),
           'loss': float('nan'), 'best': float('-inf'), 'history': [0.5, float('inf'), float('nan')], 'lr': 0.001}
    first = os.path.join(work, 'values_a.pth')
    torch.save(obj, first)
    loaded = torch.load(first, weights_only=False)  # written just above (torch 1.13's weights_only reader has no floats)
    rc, out, err = run(ckpt, 'show', first, 'z')
    pairs = ', '.join('[%s, %s]' % (word(re_), word(im)) for re_, im in torch.view_as_real(loaded['z']).double().tolist())
    res.check(rc == 0 and out.splitlines()[-1].endswith('): ' + pairs), 'show a complex tensor as text', out)
    for key in ('loss', 'best', 'history', 'lr'):
        v = loaded[key]
        text = repr(v)  # nan, inf, -inf
        rc, out, err = run(ckpt, 'show', first, key)
        res.check(rc == 0 and out == '%s (%s): %s\n' % (key, type(v).__name__, text), 'show %s as text' % key,
                  '%r, Python %r' % (out, text))
        rc, out, err = run(ckpt, 'info', first)
        res.check(rc == 0 and '\n  %s: %s\n' % (key, text) in out, 'info: metadata %s as text' % key, out[-600:])
    # diff: metadata that changed, in the same words.
    second = os.path.join(work, 'values_b.pth')
    torch.save(dict(obj, loss=0.25), second)
    rc, out, err = run(ckpt, 'diff', first, second)
    res.check('\nmetadata loss: %s -> %s\n' % (repr(loaded['loss']), repr(0.25)) in out, 'diff: metadata as text', out)


def check_python_values(res, ckpt, fixtures, work):
    """Values that are not tensors read as Python prints what torch.load returns: True, None,
    tuples, OrderedDict, Namespace(...), escapes in strings (repr_values.pth, written by
    tests/fixtures/repr_fixtures.py); a bool tensor's values as torch prints them."""
    path = os.path.join(fixtures, 'repr_values.pth')
    with open(os.path.join(fixtures, 'expected.json')) as f:
        reprs = json.load(f)['__repr__']['repr']
    rc, info, err = run(ckpt, 'info', path)
    res.check(rc == 0, 'info repr_values.pth', err)
    for key, text in reprs.items():
        # `show` of a tensor gives its statistics and values (test_tensors_vs_torch); a tensor kept as
        # metadata (best_acc1 = tensor(76.1300)) is in info's metadata as torch prints it.
        if not text.startswith('tensor('):
            rc, out, err = run(ckpt, 'show', path, key)
            res.check(rc == 0 and out.split('): ', 1)[-1] == text + '\n', 'show %s as Python prints it' % key,
                      '%r, Python %r' % (out, text))
        if len(text) < 90:  # info cuts a long value to one line
            res.check('\n  %s: %s\n' % (key, text) in info, 'info: metadata %s as Python prints it' % key,
                      'Python %r' % text)
    # A call the pickle asks for is written with the full name of what it calls, never run: a
    # payload must not read as a harmless main(...) or system(...).
    rc, out, err = run(ckpt, 'info', os.path.join(fixtures, 'os_system.pth'))
    res.check(rc == 0 and "\n  payload: posix.system('touch " in out, 'info: a call shown with its full name', out)
    # diff: a changed config in the same words.
    first, second = os.path.join(work, 'cfg_a.pth'), os.path.join(work, 'cfg_b.pth')
    a, b = {'cfg': {'act': 'relu', 'bias': True, 'sizes': (64, 32)}}, {'cfg': {'act': 'gelu', 'bias': None, 'sizes': (64,)}}
    torch.save(a, first)
    torch.save(b, second)
    rc, out, err = run(ckpt, 'diff', first, second)
    res.check('\nmetadata cfg: %r -> %r\n' % (a['cfg'], b['cfg']) in out, 'diff: a changed config as Python prints it', out)
    # A tuple that became a list is a change (JSON alone cannot tell them apart).
    third = os.path.join(work, 'cfg_c.pth')
    torch.save({'cfg': dict(a['cfg'], sizes=[64, 32])}, third)
    rc, out, err = run(ckpt, 'diff', first, third)
    res.check("\nmetadata cfg: %r -> %r\n" % (a['cfg'], dict(a['cfg'], sizes=[64, 32])) in out,
              'diff: a tuple that became a list is a change', out)
    # A bool tensor: True and False, as torch prints them.
    flags = torch.tensor([True, False, True])
    path = os.path.join(work, 'flags.pth')
    torch.save({'mask': flags}, path)
    rc, out, err = run(ckpt, 'show', path, 'mask')
    want = ', '.join(str(x) for x in flags.tolist())
    res.check(rc == 0 and out.splitlines()[2].endswith('): ' + want), 'show a bool tensor as text', '%r, torch %r' % (out, want))


# --- count options -------------------------------------------------------------------------------

def check_counts(res, ckpt, fixtures):
    path = os.path.join(fixtures, 'nan_inf.pth')
    predict = os.path.join(fixtures, 'state_dict.pth')
    refused = [
        (['show', path, 'dirty', '--limit', '-3'], '--limit', '0 or more'),
        (['show', path, 'dirty', '--limit', 'many'], '--limit', '0 or more'),
        (['show', path, 'dirty', '--histogram', '0'], '--histogram', 'from 1 to 1000000'),
        (['show', path, 'dirty', '--histogram', '-4'], '--histogram', 'from 1 to 1000000'),
        (['show', path, 'dirty', '--histogram', '1000001'], '--histogram', 'from 1 to 1000000'),
        (['predict', predict, '--input', '1,2,3,4,5,6,7,8,9,10', '--top', '0'], '--top', '1 or more'),
        (['predict', predict, '--input', '1,2,3,4,5,6,7,8,9,10', '--top', '-2'], '--top', '1 or more'),
        (['predict', predict, '--input', '1,2,3,4,5,6,7,8,9,10', '--repeat', '0'], '--repeat', 'from 1 to 10000'),
        (['predict', predict, '--input', '1,2,3,4,5,6,7,8,9,10', '--repeat', '-1'], '--repeat', 'from 1 to 10000'),
    ]
    for args, option, rule in refused:
        rc, out, err = run(ckpt, *args)
        value = args[-1]
        res.check(rc == 2 and err.startswith('ckpt: %s: ' % option) and rule in err and '(not %s)' % value in err
                  and not out, 'ckpt %s %s %s refused' % (args[0], option, value), 'exit %d: %s' % (rc, err.strip()))
    # 0 values: the summary and the statistics, no list of values.
    rc, out, err = run(ckpt, 'show', path, 'dirty', '--limit', '0')
    res.check(rc == 0 and len(out.splitlines()) == 3 and ' min ' in out and 'values (' not in out, 'show --limit 0', out)
    rc, out, err = run(ckpt, 'show', path, 'dirty', '--limit', '2')
    res.check(rc == 0 and 'values (the first 2 of 7)' in out, 'show --limit 2', out)
    rc, out, err = run(ckpt, 'predict', predict, '--input', '1,2,3,4,5,6,7,8,9,10', '--top', '1', '--json')
    res.check(rc == 0 and len(json.loads(out)['outputs'][0]['top']) == 1, 'predict --top 1', err)
    # The help says what each count allows.
    rc, out, err = run(ckpt, 'show', '--help')
    res.check(rc == 0 and '0: none' in out and '1 to 1000000 bins' in out, 'show --help says what 0 means', out)
    rc, out, err = run(ckpt, 'predict', '--help')
    res.check(rc == 0 and '1 or more' in out and '1 to 10000' in out, 'predict --help says the bounds', out)


# --- filter --------------------------------------------------------------------------------------

def check_filter(res, ckpt, fixtures):
    path = os.path.join(fixtures, 'unicode_names.pth')
    names = list(torch.load(path, weights_only=True))
    needles = ['ÜBER', 'über', 'σBLOCK', 'ΣBLOCK', 'ς', 'ΛΌΓΟΣ', 'STRASSE', 'ß', 'привет', 'ПрИвЕт', 'ĺŐž', 'ǄUNGLA',
               'ǆ', 'élan', 'ｆｕｌｌ', 'ＦＵＬＬ', '注意力', 'EMOJI😀', 'CAFE\u0301', 'WEIGHT', 'no such name']
    for needle in needles:
        want = [n for n in names if needle.casefold() in n.casefold()]
        rc, out, err = run(ckpt, 'tensors', path, '--filter', needle, '--json')
        got = [r['name'] for r in json.loads(out)['tensors']] if rc == 0 else None
        res.check(got == want, 'tensors --filter %r: as str.casefold' % needle, '%r, Python %r' % (got, want))
        if needle != 'no such name':
            res.check(len(want) > 0, 'filter %r finds a name (the test means something)' % needle)
    # Text output too, and a filter that finds nothing says so in the user's words.
    rc, out, err = run(ckpt, 'tensors', path, '--filter', 'ÜBER')
    res.check(rc == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ['Über.weight', 'über.bias'],
              'tensors --filter ÜBER as text', out)
    rc, out, err = run(ckpt, 'tensors', path, '--filter', 'Ω')
    res.check(rc == 0 and out == "no tensor name contains 'Ω'\n", 'a filter that finds nothing', out)


# --- table columns -------------------------------------------------------------------------------

def check_columns(res, ckpt, fixtures, work):
    path = os.path.join(fixtures, 'unicode_names.pth')
    sd = torch.load(path, weights_only=True)
    rows = [(n, [n, dtype_name(t.dtype), '[%s]' % ', '.join(str(d) for d in t.shape), 'cpu']) for n, t in sd.items()]
    header = ['name', 'dtype', 'shape', 'device']

    def aligned(where, lines, indent):
        starts = [cell_columns(lines[0], header)]
        starts += [cell_columns(line, cells) for line, (_, cells) in zip(lines[1:], rows)]
        ok = len(lines) == len(rows) + 1 and all(s is not None and s == starts[0] for s in starts) and \
            all(line.startswith(indent) for line in lines)
        res.check(ok, where + ': columns aligned by terminal width',
                  '\n'.join('%r %r' % (s, line) for s, line in zip(starts, lines)))

    rc, out, err = run(ckpt, 'tensors', path)
    aligned('tensors', out.splitlines(), '')
    rc, out, err = run(ckpt, 'tensors', path, '--stats')
    lines = out.splitlines()
    aligned('tensors --stats', lines, '')
    # The statistics columns too: each row's min starts where the header's does.
    header_min = columns(lines[0][:lines[0].index(' min ') + 1]) if ' min ' in lines[0] else None
    mins = [columns(line[:m.start(1)]) for line in lines[1:] for m in [re.search(r' cpu +(\S)', line)] if m]
    res.check(len(mins) == len(sd) and all(m == header_min for m in mins), 'tensors --stats: statistics in one column',
              '%r, header %r' % (mins, header_min))
    rc, out, err = run(ckpt, 'info', path)
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('  name ')), None)
    aligned('info', lines[start:start + len(rows) + 1] if start is not None else [], '  ')

    # diff: the modules' table pads names to 32 columns.
    changed = collections.OrderedDict((n, t + 1 if n != 'plain.weight' else t) for n, t in sd.items())
    other = os.path.join(work, 'unicode_changed.pth')
    torch.save(changed, other)
    rc, out, err = run(ckpt, 'diff', path, other)
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('modules that changed')), None)
    end = next((i for i, line in enumerate(lines) if line.startswith('tensors that are not identical')), len(lines))
    module_lines = lines[start + 1:end] if start is not None else []
    modules = {n.rsplit('.', 1)[0] for n in sd if n != 'plain.weight'}
    res.check(rc == 1 and len(module_lines) == len(modules) and
              all(columns(line[:line.index(' rel ')]) == 2 + 32 for line in module_lines),
              'diff: module names padded to 32 terminal columns', '\n'.join(module_lines) or out)


# --- convert's default names ---------------------------------------------------------------------

def check_output_names(res, ckpt, fixtures, work):
    folder = os.path.join(work, 'names')
    os.mkdir(folder)
    source = torch.load(os.path.join(fixtures, 'state_dict.pth'), weights_only=True)

    def convert(name, *args):
        rc, out, err = run(ckpt, 'convert', os.path.join(folder, name), *args, '--json', timeout=300)
        doc = json.loads(out) if rc == 0 else {}
        return os.path.basename(doc.get('output', '')) or err.strip()

    for name in ('model_safetensors.pth', 'x_state_dict.pth', 'x_state_dict_fp16.pth', 'w_fp16.pth', 'checkpoint.pth',
                 'net_torchscript.pth', 'plain.pth'):
        torch.save(source, os.path.join(folder, name))
    before = {n: open(os.path.join(folder, n), 'rb').read() for n in os.listdir(folder)}
    cases = [
        # A suffix the stem carries is not repeated.
        (('model_safetensors.pth', '--to', 'safetensors'), 'model_safetensors.safetensors'),
        (('w_fp16.pth', '--to', 'state-dict', '--dtype', 'float16'), 'w_fp16_state_dict.pth'),
        (('net_torchscript.pth', '--to', 'torchscript'), 'net_torchscript.pt'),
        # ... and when that would be the input's own name, a number keeps them apart.
        (('x_state_dict.pth', '--to', 'state-dict'), 'x_state_dict_2.pth'),
        (('x_state_dict_fp16.pth', '--to', 'state-dict', '--dtype', 'float16'), 'x_state_dict_fp16_2.pth'),
        (('checkpoint.pth', '--to', 'checkpoint'), 'checkpoint_2.pth'),
        # Other names as before.
        (('plain.pth', '--to', 'state-dict'), 'plain_state_dict.pth'),
        (('plain.pth', '--to', 'safetensors', '--dtype', 'bfloat16'), 'plain_safetensors_bf16.safetensors'),
        (('x_state_dict.pth', '--to', 'safetensors'), 'x_state_dict_safetensors.safetensors'),
        (('model_safetensors.safetensors', '--to', 'state-dict'), 'model_safetensors_state_dict.pth'),
    ]
    for args, want in cases:
        got = convert(*args)
        res.check(got == want, 'convert %s: default output name' % ' '.join(args), '%r, expected %r' % (got, want))
    res.check(all(open(os.path.join(folder, n), 'rb').read() == b for n, b in before.items()),
              'convert: no input was written over')
    # What was written is what torch saved.
    written = os.path.join(folder, 'x_state_dict_2.pth')
    back = torch.load(written, weights_only=True) if os.path.exists(written) else {}
    res.check(list(back) == list(source) and all(torch.equal(back[k], source[k]) for k in source),
              'convert: x_state_dict_2.pth holds the state dict')


# --- without the compute module ------------------------------------------------------------------

def check_no_compute_module(res, ckpt, fixtures, work):
    """`ckpt` copied alone into a folder (no libckpt_compute.so beside it, none in ../lib): every
    command that needs numbers fails as other failures do, with one line on stderr naming the
    module and where it was looked for, no escaped newline in it, an input file named or none (never
    an empty name), and the exit status README gives; nothing on stdout. Commands that need no
    numbers still work."""
    lone = os.path.join(work, 'lonebin')
    os.mkdir(lone)
    binary = os.path.join(lone, 'ckpt')
    shutil.copy2(ckpt, binary)
    env = {k: v for k, v in os.environ.items() if k != 'CKPT_COMPUTE_MODULE'}
    fixtures = os.path.abspath(fixtures)
    sd = os.path.join(fixtures, 'state_dict.pth')
    ck = os.path.join(fixtures, 'training_checkpoint.pth')
    key = next(iter(torch.load(sd, weights_only=True)))
    npy = os.path.join(work, 'lone.npy')
    cases = [
        (('tensors', sd, '--stats'), 1),
        (('tensors', sd, '--stats', '--json'), 1),
        (('show', sd, key), 1),
        (('export', sd, key, '-o', npy), 1),
        (('diff', sd, ck), 2),  # README: diff exits 2 when it cannot compare
        (('series', sd, ck), 2),  # README: series exits 2 when it cannot compare, as diff
        (('predict', os.path.join(fixtures, 'predict_package.pth'), '--input', ','.join(['0.5'] * 10)), 1),
        (('devices',), 1),
    ]
    for args, want in cases:
        r = subprocess.run([binary, *args], capture_output=True, timeout=120, env=env, cwd=work)
        out, err = r.stdout.decode('utf-8', 'replace'), r.stderr.decode('utf-8', 'replace')
        lines = err.splitlines()
        where = os.path.join(lone, 'libckpt_compute.so')
        res.check(r.returncode == want and out == '' and len(lines) == 1 and lines[0].startswith('ckpt: ') and
                  not lines[0].startswith('ckpt: : ') and 'cannot load the compute module libckpt_compute.so' in lines[0] and
                  where + ' (not found)' in lines[0] and '\\x0a' not in lines[0],
                  'without the compute module: ckpt %s fails with one line, exit %d' % (args[0], want),
                  'exit %d, stdout %r, stderr %r' % (r.returncode, out[:300], err[:600]))
        if args[0] in ('tensors', 'show', 'export', 'predict'):
            res.check(lines[:1] and lines[0].startswith('ckpt: %s: ' % args[1]),
                      'without the compute module: ckpt %s names its file' % args[0], err)
    res.check(not os.path.exists(npy), 'without the compute module: export writes nothing')
    r = subprocess.run([binary, 'tensors', sd], capture_output=True, timeout=120, env=env)
    res.check(r.returncode == 0 and key in r.stdout.decode(), 'without the compute module: tensors without --stats works',
              r.stderr.decode())

    # The man page: CKPT_COMPUTE_MODULE is loaded *instead of* the installed module. A wrong path is an
    # error naming the variable, not a quiet fallback to the module beside the program.
    wrong = os.path.join(work, 'no-such-module.so')
    r = subprocess.run([ckpt, 'tensors', sd, '--stats'], capture_output=True, timeout=120,
                       env=dict(env, CKPT_COMPUTE_MODULE=wrong))
    err = r.stderr.decode('utf-8', 'replace')
    res.check(r.returncode == 1 and r.stdout == b'' and len(err.splitlines()) == 1 and
              'CKPT_COMPUTE_MODULE=' + wrong + ' (not found)' in err,
              'a wrong CKPT_COMPUTE_MODULE is an error naming it, not a fallback to the bundled module',
              'exit %d, stderr %r' % (r.returncode, err[:400]))


def check_usage_errors(res, ckpt, fixtures, work):
    """README: a mistake in the command line exits 2 with one sentence on stderr, before any file is
    read, whatever option it is in: a value outside an option's choices, two options that exclude each
    other, an option given twice, a missing file. CLI11's own wording ("files is required", "At Most 1
    required but received 2", an option named twice) is replaced by a sentence that says what to do."""
    sd = os.path.abspath(os.path.join(fixtures, 'state_dict.pth'))
    pkg = os.path.abspath(os.path.join(fixtures, 'predict_package.pth'))
    cases = [
        (('predict', pkg, '--input-file', 'a.png', '--input-file', 'b.png'), '--input-file is given 2 times; it takes one value'),
        (('predict', pkg, '--device', 'tpu', '--input', '1'), "a device is cpu, cuda or cuda:N (not 'tpu')"),
        (('convert', sd, '--to', 'state-dict', '--dtype', 'int8'), 'int8 not in'),
        (('convert', sd, '--to', 'torchscript', '--arch', 'a.pt', '--arch-spec', '[]'), 'excludes'),
        (('diff', sd, sd, '--atol', '-1'), 'the absolute tolerance is a number, 0 or more'),
        (('info',), 'a checkpoint file is required'),
        (('scan',), 'at least one checkpoint file is required'),
    ]
    for args, says in cases:
        r = subprocess.run([os.path.abspath(ckpt), *args], capture_output=True, timeout=120, cwd=work)
        err = r.stderr.decode('utf-8', 'replace')
        lines = err.splitlines()
        res.check(r.returncode == 2 and r.stdout == b'' and len(lines) == 2 and lines[0].startswith('ckpt: ') and
                  says in lines[0] and 'At Most' not in err and 'files is required' not in err and
                  err.count('--atol') <= 1 and lines[1] == 'Run with --help for more information.',
                  'usage error: ckpt %s exits 2 with one sentence' % ' '.join(args[:1] + args[2:]),
                  'exit %d, stderr %r' % (r.returncode, err[:400]))


def check_state_dict_line(res, ckpt, fixtures, work):
    """`info`'s State dict line counts as English does ("1 tensor"), and a model with no tensors at all
    (a TorchScript module of functions only) says so instead of printing an empty table's header."""
    class NoWeights(torch.nn.Module):
        def forward(self, x):
            return x * 2

    empty = os.path.join(work, 'no_weights.pt')
    torch.jit.script(NoWeights()).save(empty)
    one = os.path.join(work, 'one_tensor.pth')
    torch.save({'w': torch.zeros(3)}, one)
    assert len(torch.jit.load(empty).state_dict()) == 0 and len(torch.load(one)) == 1
    rc, out, err = run(ckpt, 'info', empty)
    line = next((l for l in out.splitlines() if l.startswith('State dict:')), '')
    res.check(rc == 0 and line.endswith('empty: the model holds no tensors') and 'name  dtype' not in out,
              'info: a TorchScript module without tensors says its state dict is empty', out + err)
    rc, out, err = run(ckpt, 'info', one)
    line = next((l for l in out.splitlines() if l.startswith('State dict:')), '')
    res.check(rc == 0 and ' 1 tensor, 3 elements' in line, 'info: one tensor is "1 tensor"', line + err)


def check_parameter_counts(res, ckpt, fixtures, work):
    """`info` says how many parameters the model has as model.parameters() counts them (a tied weight
    once, buffers never) and, where the file records requires_grad (a model saved whole), how many
    train; `--json` carries both. A state dict cannot say which tensors are buffers: the line says so."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                            torch.nn.Linear(8 * 6 * 6, 4))
    m.register_buffer('extra', torch.zeros(5))
    for p in m[0].parameters():
        p.requires_grad_(False)  # a frozen stem
    total = sum(p.numel() for p in m.parameters())
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    whole = os.path.join(work, 'frozen_whole.pth')
    torch.save(m, whole)
    rc, out, err = run(ckpt, 'info', whole)
    line = next((l for l in out.splitlines() if l.startswith('Parameters:')), '')
    res.check(rc == 0 and line == 'Parameters: %d, %d trainable (requires_grad)' % (total, trainable),
              'info: a whole model\'s parameters and trainable ones as torch counts them',
              '%r; torch: %d, %d trainable' % (line, total, trainable))
    rc, out, err = run(ckpt, 'info', whole, '--json')
    sd = json.loads(out)['state_dict'] if rc == 0 else {}
    res.check(sd.get('parameters') == total and sd.get('trainable_parameters') == trainable and sd.get('parameters_exact'),
              'info --json: parameters and trainable_parameters as torch counts them',
              '%r; torch: %d, %d' % ({k: sd.get(k) for k in ('parameters', 'trainable_parameters', 'parameters_exact')},
                                      total, trainable))
    plain = os.path.join(work, 'frozen_state_dict.pth')
    torch.save(m.state_dict(), plain)
    rc, out, err = run(ckpt, 'info', plain)
    line = next((l for l in out.splitlines() if l.startswith('Parameters:')), '')
    # BatchNorm's buffers are known by name; the module's own 'extra' buffer cannot be told apart.
    res.check(rc == 0 and line.startswith('Parameters: %d (estimated' % (total + 5)) and 'trainable' not in line,
              'info: a state dict\'s parameter count is called an estimate, without a trainable count', line)
    # One tensor saved alone is no model: its elements are said, and no parameter estimate.
    single = os.path.join(work, 'one_tensor.pth')
    t = torch.randn(6, 7)
    torch.save(t, single)
    rc, out, err = run(ckpt, 'info', single)
    res.check(rc == 0 and 'Kind:     tensor' in out and '1 tensor, %d elements' % t.numel() in out
              and not any(l.startswith('Parameters:') for l in out.splitlines()),
              'info: a lone tensor says its elements, without a parameter line', out)


def check_out_dir_is_made(res, ckpt, fixtures, work):
    """README's `convert ... --out-dir out/` works in a fresh folder: the folder is made; a file in
    its place is refused by name."""
    out_dir = os.path.join(work, 'fresh', 'out')
    sd = os.path.join(fixtures, 'state_dict.pth')
    rc, out, err = run(ckpt, 'convert', sd, '--to', 'safetensors', '--out-dir', out_dir)
    written = os.path.join(out_dir, 'state_dict_safetensors.safetensors')
    res.check(rc == 0 and os.path.isfile(written), 'convert --out-dir makes a missing folder', out + err)
    blocker = os.path.join(work, 'a_file')
    open(blocker, 'w').close()
    rc, out, err = run(ckpt, 'convert', sd, '--to', 'safetensors', '--out-dir', blocker)
    res.check(rc == 1 and ('--out-dir %s: this is a file, not a folder' % blocker) in err,
              'convert --out-dir naming a file is refused', err)


def check_text_file_quote(res, ckpt, fixtures, work):
    """A text file given as a checkpoint (a CSV of results) is named so, its opening quoted as Python's
    repr quotes it: the newline escaped, so the error stays the one line README promises."""
    text = 'epoch,train_loss,val_loss\n1,0.52,0.61\n2,0.44,0.57\n3,0.40,0.55\n'
    path = os.path.join(work, 'results.pth')
    with open(path, 'w') as f:
        f.write(text)
    rc, out, err = run(ckpt, 'info', path)
    quoted = repr(text[:40])[:-1] + '\u2026' + "'"
    res.check(rc == 1 and len(err.splitlines()) == 1 and 'this is a text file, not a checkpoint (starts with %s)' % quoted in err,
              'a text file\'s opening is quoted on one line, as Python\'s repr', err)


def check_hostile_shapes_stay_fast(res, ckpt, fixtures, work):
    """Small hostile files for code that walks values: a preprocessing entry that holds itself, or
    lists shared 4-fold 40 levels deep (4^40 paths), reach predict's 'not applied' note; a dict of
    torch.ScriptObject values whose tuples are shared at every level (2^40 paths) reaches the packed
    weight namer of info and scan. Each finishes at once, with its exit status, not a crash or hang."""
    sd = torch.nn.Sequential(torch.nn.Linear(2, 2)).state_dict()
    cyclic = []
    cyclic.append(cyclic)
    shared = [1]
    for _ in range(40):
        shared = [shared, shared, shared, shared]
    cases = []
    for name, value in (('cyclic', cyclic), ('shared', shared)):
        path = os.path.join(work, 'pre_%s.pth' % name)
        torch.save({'model_state_dict': sd, 'preprocessing': {'x': value}}, path)
        cases.append((('predict', path, '--input', '1,2'), 0, 'not applied: preprocessing.x'))

    def binunicode(text):
        b = text.encode()
        return b'X' + len(b).to_bytes(4, 'little') + b
    # {'w': ScriptObject(...) built from ((t, t), (t, t)) ... 40 levels: each level's tuple twice.
    p = b'\x80\x02}' + binunicode('w') + b'ctorch\nScriptObject\n)\x81' + b'K\x01q\x000'
    for i in range(1, 41):
        p += b'h' + bytes([i - 1]) + b'h' + bytes([i - 1]) + b'\x86q' + bytes([i]) + (b'0' if i < 40 else b'')
    p += binunicode('foo') + b'\x86bs.'
    packed = os.path.join(work, 'packed_shared.pkl')
    with open(packed, 'wb') as f:
        f.write(p)
    cases += [(('info', packed), 0, 'Format:'), (('scan', packed), 0, 'torch.ScriptObject')]
    for args, want, says in cases:
        try:
            r = subprocess.run([ckpt, *args], capture_output=True, timeout=60)
            rc, out = r.returncode, r.stdout.decode('utf-8', 'replace') + r.stderr.decode('utf-8', 'replace')
        except subprocess.TimeoutExpired:
            rc, out = 'timeout', ''
        res.check(rc == want and says in out, 'hostile shape: ckpt %s %s finishes' % (args[0], os.path.basename(args[1])),
                  'exit %s: %s' % (rc, out[-300:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    res = Results()
    work = tempfile.mkdtemp(prefix='ckpt-cli-text-')
    try:
        for check in (check_numbers, check_python_values, check_columns, check_output_names):
            check(res, a.ckpt, a.fixtures, work)
        check_no_compute_module(res, a.ckpt, a.fixtures, work)
        check_counts(res, a.ckpt, a.fixtures)
        check_filter(res, a.ckpt, a.fixtures)
        check_usage_errors(res, a.ckpt, a.fixtures, work)
        check_state_dict_line(res, a.ckpt, a.fixtures, work)
        check_parameter_counts(res, a.ckpt, a.fixtures, work)
        check_out_dir_is_made(res, a.ckpt, a.fixtures, work)
        check_text_file_quote(res, a.ckpt, a.fixtures, work)
        check_hostile_shapes_stay_fast(res, a.ckpt, a.fixtures, work)
    finally:
        shutil.rmtree(work)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
