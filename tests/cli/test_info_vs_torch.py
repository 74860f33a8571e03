#!/usr/bin/env python3
"""`ckpt info --json` judged by PyTorch.

Usage:  /usr/bin/python3 test_info_vs_torch.py --ckpt PATH/TO/ckpt --fixtures DIR

DIR is what tests/fixtures/generate_fixtures.py wrote.  For every well-formed
fixture listed in DIR/expected.json this runs `ckpt info --json FILE` and
compares the document with what torch.load(FILE) itself reports.  For every
hostile fixture it checks that ckpt fails cleanly or reads the file safely,
never crashes, never hangs, and never runs the file's code.

The hostile files are never given to torch.load or pickle.
Prints one line per failure and `N passed, M failed` last; exits 1 on failure.
"""
import argparse
import collections
import json
import math
import os
import subprocess
import sys
import tempfile
import zipfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from torch_listing import dtype_name, is_tensor_dict, saved_device  # noqa: E402
import torch  # noqa: E402
from results import Results  # noqa: E402

RUN_TIMEOUT = 60       # seconds for a well-formed file
HOSTILE_TIMEOUT = 20   # seconds for a hostile one


# --------------------------------------------------------------------------
# What PyTorch says
# --------------------------------------------------------------------------

def resolve(obj, path):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, (list, tuple)) and isinstance(key, int) and 0 <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def json_equal(got, want, rel=1e-12):
    """`got` (parsed JSON) equals the Python value `want`; tuples read as lists."""
    if isinstance(want, bool) or want is None:
        return got is want
    if isinstance(want, int):
        return type(got) is int and got == want
    if isinstance(want, float):
        return (isinstance(got, (int, float)) and not isinstance(got, bool)
                and math.isclose(got, want, rel_tol=rel, abs_tol=0.0))
    if isinstance(want, str):
        return got == want
    if isinstance(want, (list, tuple)):
        return (isinstance(got, list) and len(got) == len(want)
                and all(json_equal(g, w, rel) for g, w in zip(got, want)))
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(got) == {str(k) for k in want}
                and all(json_equal(got[str(k)], v, rel) for k, v in want.items()))
    return False


# --------------------------------------------------------------------------
# Running ckpt
# --------------------------------------------------------------------------

def run_ckpt(ckpt, path, timeout):
    """(returncode or None on timeout, stdout, stderr)"""
    try:
        proc = subprocess.run([ckpt, 'info', '--json', path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b'', e.stderr or b''
    return proc.returncode, proc.stdout, proc.stderr


def short(data, limit=300):
    text = data.decode('utf-8', 'replace').strip()
    return text if len(text) <= limit else text[:limit] + '...'


# --------------------------------------------------------------------------
# Well-formed fixtures
# --------------------------------------------------------------------------

def check_good(res, ckpt, name, path, expected):
    where = name
    if not res.check(os.path.isfile(path), where, 'fixture file is missing: %s' % path):
        return
    rc, out, err = run_ckpt(ckpt, path, RUN_TIMEOUT)
    if not res.check(rc is not None, where, 'ckpt info --json did not finish within %d s' % RUN_TIMEOUT):
        return
    if not res.check(rc == 0, where, 'ckpt info --json exited %s; stderr: %s' % (rc, short(err))):
        return
    try:
        doc = json.loads(out.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        res.check(False, where, 'stdout is not a JSON document (%s): %s' % (e, short(out)))
        return
    if not res.check(isinstance(doc, dict), where, 'the JSON document is not an object'):
        return

    from torch_listing import classify, load_with_locations
    obj, locations = load_with_locations(path)
    kind, sd_path, tensors = classify(obj)
    if kind == 'generic':
        sd_path, tensors = None, []  # no state dict: ckpt lists tensors elsewhere
    fmt = 'zip' if zipfile.is_zipfile(path) else 'legacy'

    # Cross-check the harness: expected.json was written by the same judge.
    res.check(expected.get('kind') == kind and expected.get('format') == fmt, where,
              'harness: torch says %s/%s but expected.json says %s/%s (regenerate the fixtures)'
              % (fmt, kind, expected.get('format'), expected.get('kind')))

    res.check(doc.get('format') == fmt, where, 'format: ckpt says %r, PyTorch file is %r' % (doc.get('format'), fmt))
    res.check(doc.get('kind') == kind, where, 'kind: ckpt says %r, expected %r' % (doc.get('kind'), kind))

    sd = doc.get('state_dict')
    if sd_path is None:
        # A generic object: no state dict is fine; one that is reported must be real.
        if sd is not None:
            got_path = sd.get('path') if isinstance(sd, dict) else None
            target = resolve(obj, got_path) if isinstance(got_path, list) else None
            if res.check(is_tensor_dict(target), where,
                         'state_dict.path %r does not lead to a dict of tensors in what torch loaded' % (got_path,)):
                check_tensors(res, where, sd, list(target.items()), locations)
        else:
            res.passed += 1
    else:
        if not res.check(isinstance(sd, dict), where, 'state_dict is %r, expected a state dict at %r' % (sd, sd_path)):
            return
        res.check(sd.get('path') == sd_path, where, 'state_dict.path: ckpt says %r, expected %r' % (sd.get('path'), sd_path))
        check_tensors(res, where, sd, tensors, locations)
        module = resolve(obj, sd_path)
        if isinstance(module, torch.nn.Module) and not isinstance(module, torch.jit.ScriptModule):
            # A pickled module tree tells parameters from buffers: the count is parameters()'s.
            want = sum(p.numel() for p in module.parameters())
            res.check(sd.get('parameters') == want and sd.get('parameters_exact') is True, where,
                      'state_dict.parameters: ckpt says %r (exact %r), model.parameters() has %d'
                      % (sd.get('parameters'), sd.get('parameters_exact'), want))

    if kind in ('training_checkpoint', 'inference_package'):
        check_metadata(res, where, doc, obj, kind)
    if kind == 'training_checkpoint':
        check_optimizer(res, where, doc, obj)
    if kind == 'full_model':
        names = [g.get('name', '') for g in doc.get('globals') or [] if isinstance(g, dict)]
        cls = type(obj).__module__ + '.' + type(obj).__qualname__
        res.check(cls in names, where, 'globals %r do not list the pickled class %s' % (names, cls))


def check_tensors(res, where, sd, tensors, locations):
    got = sd.get('tensors')
    if not res.check(isinstance(got, list), where, 'state_dict.tensors is not a list'):
        return
    got_by_name = {t.get('name'): t for t in got if isinstance(t, dict)}
    want_names = [n for n, _ in tensors]
    got_names = [t.get('name') for t in got if isinstance(t, dict)]
    res.check(sorted(got_names) == sorted(want_names), where,
              'tensor names: ckpt lists %r, PyTorch has %r' % (got_names, want_names))
    res.check(got_names == want_names, where,
              'tensor order: ckpt lists %r, the file order is %r' % (got_names, want_names))

    total_numel = total_bytes = 0
    for name, t in tensors:
        numel = t.numel()
        nbytes = numel * t.element_size()
        total_numel += numel
        total_bytes += nbytes
        g = got_by_name.get(name)
        if g is None:
            continue  # already reported by the name check
        tw = '%s [%s]' % (where, name)
        want = {
            'dtype': dtype_name(t.dtype),
            'shape': list(t.shape),
            'strides': list(t.stride()),
            'numel': numel,
            'bytes': nbytes,
            'device': saved_device(t, locations),
            'requires_grad': bool(t.requires_grad),
        }
        for field, value in want.items():
            res.check(field in g and json_equal(g[field], value), tw,
                      '%s: ckpt says %r, PyTorch says %r' % (field, g.get(field, '<missing>'), value))

    res.check(sd.get('elements') == total_numel, where,
              'state_dict.elements: ckpt says %r, sum of numel is %d' % (sd.get('elements'), total_numel))
    res.check(isinstance(sd.get('parameters'), int) and 0 <= sd['parameters'] <= total_numel, where,
              'state_dict.parameters: ckpt says %r, more than the %d elements' % (sd.get('parameters'), total_numel))
    res.check(sd.get('bytes') == total_bytes, where,
              'state_dict.bytes: ckpt says %r, sum of numel*element_size is %d' % (sd.get('bytes'), total_bytes))


METADATA_KEYS = ('epoch', 'train_loss', 'val_loss', 'model_config', 'class_names', 'input_mean', 'input_std')


def check_metadata(res, where, doc, obj, kind):
    meta = doc.get('metadata')
    if not res.check(isinstance(meta, dict), where, 'metadata is %r, expected an object' % (meta,)):
        return
    for key in METADATA_KEYS:
        if key not in obj:
            continue
        res.check(key in meta and json_equal(meta[key], obj[key]), where,
                  'metadata[%r]: ckpt says %r, PyTorch says %r' % (key, meta.get(key, '<missing>'), obj[key]))


def check_optimizer(res, where, doc, obj):
    opt = doc.get('optimizer')
    if not res.check(isinstance(opt, dict), where, 'optimizer is %r, expected the Adam state' % (opt,)):
        return
    want = obj['optimizer_state_dict']
    if 'path' in opt:
        res.check(opt['path'] == ['optimizer_state_dict'], where,
                  'optimizer.path: ckpt says %r, expected ["optimizer_state_dict"]' % (opt['path'],))
    groups = opt.get('param_groups')
    if not res.check(isinstance(groups, list) and len(groups) == len(want['param_groups']), where,
                     'optimizer.param_groups: ckpt says %r, PyTorch has %d group(s)'
                     % (groups, len(want['param_groups']))):
        return
    g0 = groups[0] if isinstance(groups[0], dict) else {}
    lr = want['param_groups'][0]['lr']
    res.check('lr' in g0 and json_equal(g0['lr'], lr), where,
              "optimizer.param_groups[0]['lr']: ckpt says %r, PyTorch says %r" % (g0.get('lr', '<missing>'), lr))
    if 'params' in g0:
        res.check(json_equal(g0['params'], want['param_groups'][0]['params']), where,
                  "optimizer.param_groups[0]['params']: ckpt says %r, PyTorch says %r"
                  % (g0['params'], want['param_groups'][0]['params']))
    state = opt.get('state')
    if isinstance(state, dict) and 'count' in state:
        res.check(state['count'] == len(want['state']), where,
                  'optimizer.state.count: ckpt says %r, PyTorch has %d' % (state['count'], len(want['state'])))


# --------------------------------------------------------------------------
# Hostile fixtures
# --------------------------------------------------------------------------

def check_hostile(res, ckpt, name, path, info):
    where = name
    if not res.check(os.path.isfile(path), where, 'fixture file is missing: %s' % path):
        return
    marker = info.get('marker')
    if marker and os.path.exists(marker):
        os.remove(marker)

    rc, out, err = run_ckpt(ckpt, path, HOSTILE_TIMEOUT)
    if marker:
        res.check(not os.path.exists(marker), where,
                  'SECURITY: the file\'s os.system payload ran (marker %s exists)' % marker)
    if not res.check(rc is not None, where, 'ckpt info --json did not finish within %d s' % HOSTILE_TIMEOUT):
        return
    if not res.check(rc >= 0, where, 'ckpt was killed by signal %d (crash); stderr: %s' % (-rc, short(err))):
        return

    if rc != 0:
        text = err.decode('utf-8', 'replace').strip()
        res.check('\n' not in text and text.startswith('ckpt: ') and path in text, where,
                  'exit %d: expected a one-line stderr message starting with "ckpt: " and naming %s; got: %s'
                  % (rc, path, short(err)))
        return

    # Exit 0: a safe reading must still be a JSON document.
    try:
        doc = json.loads(out.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        res.check(False, where, 'exit 0 but stdout is not a JSON document (%s): %s' % (e, short(out)))
        return
    res.check(isinstance(doc, dict), where, 'exit 0 but the JSON document is not an object')
    if not isinstance(doc, dict):
        return
    if info.get('tensor'):
        warnings = [w for w in doc.get('warnings') or [] if isinstance(w, str)]
        res.check(any(info['tensor'] in w for w in warnings), where,
                  'exit 0 but no warning mentions the tensor %r that runs past its storage; warnings: %r'
                  % (info['tensor'], warnings))
    # Text meant for a terminal carries no control bytes from the file (escapes come out as \xNN).
    if info.get('text_clean'):
        for args in (['info', path], ['tensors', '--stats', path], ['diff', path, path], ['scan', path]):
            p = subprocess.run([ckpt] + args, capture_output=True, timeout=HOSTILE_TIMEOUT)
            raw = [b for b in p.stdout + p.stderr if (b < 0x20 and b not in (0x0a, 0x09)) or b == 0x7f]
            named = args[0] in ('info', 'tensors')  # these list every key; diff and scan only what differs
            res.check(p.returncode == 0 and not raw and (b'\\x1b' in p.stdout or not named), where,
                      'ckpt %s: exit %d, control bytes %r in %r' % (args[0], p.returncode, raw[:5], p.stdout[:300]))
    # Tensors whose computation the file would make unbounded: refused with a reason, quickly.
    if info.get('refused'):
        p = subprocess.run([ckpt, 'tensors', '--stats', '--json', path], capture_output=True, timeout=HOSTILE_TIMEOUT)
        listing = json.loads(p.stdout.decode('utf-8')) if p.returncode == 0 else {}
        stats = {t['name']: t.get('stats', {}) for t in listing.get('tensors', [])}
        for name in info['refused']:
            res.check('refused' in (stats.get(name) or {}).get('error', ''), where,
                      'statistics of %s not refused: exit %d, %r' % (name, p.returncode, stats.get(name)))
    if marker:
        names = [g.get('name', '') for g in doc.get('globals') or [] if isinstance(g, dict)]
        res.check(any('system' in n for n in names), where,
                  'exit 0 but globals %r do not list the os.system call the file makes' % (names,))


# --------------------------------------------------------------------------

# Models for parameter_cases, at module level so that torch.save can pickle them whole.
class TiedLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(100, 16)
        self.layers = torch.nn.ModuleList([torch.nn.TransformerEncoderLayer(16, 2, 32) for _ in range(2)])
        self.lm_head = torch.nn.Linear(16, 100, bias=False)
        self.lm_head.weight = self.emb.weight


class SharedBlock(torch.nn.Module):
    """One block registered under two names (weight sharing across depth, ALBERT-style): torch's
    state_dict() lists it under both, parameters() counts it once."""
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.BatchNorm1d(6))
        self.second = self.first
        self.head = torch.nn.Linear(6, 2)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)


class ResNetLike(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.layer1 = torch.nn.Sequential(Block(16), Block(16))
        self.fc = torch.nn.Linear(16, 10)


def parameter_cases(res, ckpt):
    """state_dict.parameters is what sum(p.numel() for p in model.parameters()) says: tied weights
    (an lm_head sharing the embedding's) once, BatchNorm's running statistics not at all; elements
    is every tensor's count. Saved whole, the module tree says which tensors are buffers (exact);
    as a state dict only BatchNorm's buffers are known by name, and parameters_exact says so."""
    torch.manual_seed(81)
    with tempfile.TemporaryDirectory(prefix='ckpt-params-') as folder:
        for name, model in (('tied_lm', TiedLM()), ('resnet_like', ResNetLike()), ('shared_block', SharedBlock())):
            want = sum(p.numel() for p in model.parameters())
            elements = sum(t.numel() for t in model.state_dict().values())
            for how, obj in (('state dict', model.state_dict()), ('whole model', model)):
                path = os.path.join(folder, '%s_%s.pth' % (name, how.split()[0]))
                torch.save(obj, path)
                r = subprocess.run([ckpt, 'info', '--json', path], capture_output=True, text=True, timeout=60)
                sd = (json.loads(r.stdout).get('state_dict') or {}) if r.returncode == 0 else {}
                exact = how == 'whole model'
                res.check([t['name'] for t in sd.get('tensors', [])] == list(model.state_dict()),
                          'info --json %s (%s): the tensors state_dict() names, in its order' % (name, how),
                          repr([t['name'] for t in sd.get('tensors', [])]))
                res.check(sd.get('parameters') == want and sd.get('elements') == elements and
                          sd.get('parameters_exact') is exact,
                          'info --json %s (%s): parameters as model.parameters() counts them, elements every tensor\'s'
                          % (name, how), 'ckpt: parameters %r elements %r exact %r; torch: parameters() %d, '
                          'state dict elements %d; %s' % (sd.get('parameters'), sd.get('elements'),
                                                          sd.get('parameters_exact'), want, elements, r.stderr.strip()))
            res.check(want != elements, 'info --json %s: the case tells parameters from elements' % name)


def script_cases(res, ckpt, fixtures):
    """A TorchScript module's classes declare its parameters and buffers: state_dict.tensors is
    torch.jit.load(f).state_dict() key by key (a frozen module's constants after it), parameters is
    sum(p.numel() for p in parameters()), exact; without one class's code record, not exact."""
    for name in ('script_declared.pt', 'scripted.pt', 'frozen.pt', 'script_declared_partial.pt'):
        path = os.path.join(fixtures, name)
        if not res.check(os.path.isfile(path), name, 'fixture file is missing: %s' % path):
            continue
        partial = name.endswith('_partial.pt')
        loaded = torch.jit.load(path.replace('_partial', ''), map_location='cpu')
        want_keys = list(loaded.state_dict().keys())
        want = sum(p.numel() for p in loaded.parameters())
        r = subprocess.run([ckpt, 'info', '--json', path], capture_output=True, text=True, timeout=60)
        sd = (json.loads(r.stdout).get('state_dict') or {}) if r.returncode == 0 else {}
        got = [t.get('name') for t in sd.get('tensors') or [] if isinstance(t, dict)]
        if partial:
            res.check(sd.get('parameters_exact') is False and all(k in got for k in want_keys), name,
                      'info --json without a class\'s code record: exact %r, tensors %r; torch: %r; %s'
                      % (sd.get('parameters_exact'), got, want_keys, r.stderr.strip()))
            continue
        while got and got[-1].startswith('constants.'):
            got.pop()  # a frozen module's weights: constants, which state_dict() does not list
        res.check(got == want_keys, name, 'info --json state_dict.tensors: ckpt %r, torch state_dict() %r; %s'
                  % (got, want_keys, r.stderr.strip()))
        res.check(sd.get('parameters') == want and sd.get('parameters_exact') is True, name,
                  'info --json state_dict.parameters: ckpt %r (exact %r), torch parameters() %d'
                  % (sd.get('parameters'), sd.get('parameters_exact'), want))


class QM(torch.nn.Module):
    """The reviewers' model: an LSTM and a Linear, both dynamically quantized."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(16, 16, num_layers=1)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.fc(h)


def packed_tensors(sd):
    """[(name, tensor)] as ckpt names a quantized model's state dict, from torch's own objects: a
    tensor under its key; a tuple (a Linear's packed weight and bias) as key.0, key.1; a dynamic LSTM
    cell (a ScriptObject whose __getstate__ is ('quantized_dynamic', [bias_ih, bias_hh], [], [...],
    [packed ih, packed hh])) as key.weight_ih, key.weight_hh, key.bias_ih, key.bias_hh."""
    out = []
    for key, value in sd.items():
        if torch.is_tensor(value):
            out.append((key, value))
        elif isinstance(value, tuple):
            out += [('%s.%d' % (key, i), t) for i, t in enumerate(value) if torch.is_tensor(t)]
        elif isinstance(value, torch.ScriptObject):
            (kind, biases, _, _, packed), cls = value.__getstate__()
            assert kind == 'quantized_dynamic' and cls.endswith('.CellParamsBase'), cls
            weights = [p.__getstate__()[0][0] for p in packed]
            out += [(key + '.weight_ih', weights[0]), (key + '.weight_hh', weights[1]),
                    (key + '.bias_ih', biases[0]), (key + '.bias_hh', biases[1])]
    return out


def quantized_cases(res, ckpt):
    """A dynamically quantized model keeps its weights packed (torch.classes objects): its
    state_dict() file is a state dict whose tensors are named after torch's state_dict keys, and the
    whole model saved lists the same tensors, found in its module tree."""
    torch.manual_seed(91)
    q = torch.quantization.quantize_dynamic(QM().eval(), {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8)
    sd = q.state_dict()
    want = packed_tensors(sd)
    keys = list(sd.keys())
    with tempfile.TemporaryDirectory(prefix='ckpt-quant-') as folder:
        for how, obj in (('state dict', sd), ('whole model', q)):
            path = os.path.join(folder, 'quant_%s.pth' % how.split()[0])
            torch.save(obj, path)
            r = subprocess.run([ckpt, 'info', '--json', path], capture_output=True, text=True, timeout=60)
            doc = json.loads(r.stdout) if r.returncode == 0 else {}
            got = [t for t in (doc.get('state_dict') or {}).get('tensors') or [] if isinstance(t, dict)]
            expected = want
            if how == 'whole model':
                # The module keeps scale and zero_point as Python numbers, which state_dict() makes
                # into tensors: the file holds no tensor for them.
                assert isinstance(q.fc.scale, float) and isinstance(q.fc.zero_point, int)
                expected = [(n, t) for n, t in want if n not in ('fc.scale', 'fc.zero_point')]
            res.check(doc.get('kind') == ('state_dict' if how == 'state dict' else 'full_model'),
                      'quantized %s: kind' % how, '%r %s' % (doc.get('kind'), r.stderr.strip()))
            names = [t.get('name') for t in got]
            res.check(names == [n for n, _ in expected], 'quantized %s: tensors named after state_dict() keys' % how,
                      'ckpt %r, expected %r' % (names, [n for n, _ in expected]))
            res.check(all(any(n == k or n.startswith(k + '.') for k in keys) for n in names),
                      'quantized %s: every name starts with a key of model.state_dict()' % how, '%r vs %r' % (names, keys))
            for t, (n, theirs) in zip(got, expected):
                res.check(t.get('dtype') == dtype_name(theirs.dtype) and t.get('shape') == list(theirs.shape),
                          'quantized %s: %s dtype and shape' % (how, n),
                          '%r %r vs %s %s' % (t.get('dtype'), t.get('shape'), theirs.dtype, list(theirs.shape)))
            # Their values, as torch reads them (quantized weights dequantized).
            for n, theirs in expected:
                r = subprocess.run([ckpt, 'show', path, n, '--json', '--limit', '0'], capture_output=True, text=True,
                                   timeout=60)
                shown = json.loads(r.stdout) if r.returncode == 0 else {}
                stats = shown.get('stats') or shown.get('statistics') or {}
                value = theirs.dequantize() if theirs.is_quantized else theirs
                mean = float(value.double().mean())
                res.check(isinstance(stats.get('mean'), (int, float)) and math.isclose(stats['mean'], mean, rel_tol=1e-6, abs_tol=1e-9),
                          'quantized %s: %s mean as torch computes it' % (how, n), '%r vs %r %s' % (stats, mean, r.stderr.strip()))


def numpy_cases(res, ckpt):
    """numpy arrays come back from torch.load as numpy arrays: info prints them as numpy's repr
    does where numpy writes them on one line, else as a summary that says ndarray."""
    import numpy as np
    arrays = collections.OrderedDict([
        ('ints', np.array([3, -1, 12, 0], dtype=np.int64)),
        ('int32s', np.array([1, 10], dtype=np.int32)),
        ('bools', np.array([True, False, True])),
        ('weights', np.array([1.0, 0.5, 2.0, 1.0], dtype=np.float32)),
        ('halves', np.array([0.1, 0.25, 3.0])),
        ('eye', np.eye(4, dtype=np.int64)),
        ('tiny', np.array([1e-6, 1.0], dtype=np.float32)),
        ('long', np.arange(100, dtype=np.int64)),
    ])
    with tempfile.TemporaryDirectory(prefix='ckpt-numpy-') as folder:
        path = os.path.join(folder, 'numpy.pth')
        # Beside a model's weights, as training scripts keep a confusion matrix or class weights.
        torch.save(dict(model_state_dict=torch.nn.Linear(2, 2).state_dict(), epoch=1, **arrays), path)
        r = subprocess.run([ckpt, 'info', path], capture_output=True, text=True, timeout=60)
        lines = {line.split(':', 1)[0].strip(): line.split(':', 1)[1].strip() for line in r.stdout.splitlines()
                 if line.startswith('  ') and ':' in line}
        for key, a in arrays.items():
            text = repr(a)
            want = text if '\n' not in text and len(text) <= 75 and 'e-' not in text and 'e+' not in text else \
                '<ndarray %s %s>' % (a.dtype, list(a.shape))
            res.check(lines.get(key) == want, 'numpy array %s: printed as numpy does, or said to be an ndarray' % key,
                      '%r, numpy %r' % (lines.get(key), want))


def main():
    ap = argparse.ArgumentParser(description='Compare `ckpt info --json` with torch.load.')
    ap.add_argument('--ckpt', required=True, help='path to the ckpt binary')
    ap.add_argument('--fixtures', required=True, help='directory written by generate_fixtures.py')
    args = ap.parse_args()

    fixtures = os.path.abspath(args.fixtures)
    # full_model.pth pickles simple_nn.SimpleNN: make it importable for torch.load.
    for d in (os.path.normpath(os.path.join(HERE, '..', 'fixtures')), fixtures):
        if d not in sys.path:
            sys.path.insert(0, d)

    res = Results()
    ckpt = os.path.abspath(args.ckpt)
    expected_path = os.path.join(fixtures, 'expected.json')
    ok = res.check(os.path.isfile(ckpt) and os.access(ckpt, os.X_OK), 'setup', 'no ckpt executable at %s' % ckpt)
    ok = res.check(os.path.isfile(expected_path), 'setup',
                   '%s is missing: run tests/fixtures/generate_fixtures.py --out %s' % (expected_path, fixtures)) and ok
    if ok:
        with open(expected_path) as f:
            expected = json.load(f)
        for name, entry in expected.items():
            if name.startswith('__'):
                continue
            try:
                check_good(res, ckpt, name, os.path.join(fixtures, name), entry)
            except Exception as e:  # a harness problem must not hide the other files
                res.check(False, name, 'harness error: %s: %s' % (type(e).__name__, e))
        for name, info in expected.get('__hostile__', {}).items():
            try:
                check_hostile(res, ckpt, name, os.path.join(fixtures, name), info)
            except Exception as e:
                res.check(False, name, 'harness error: %s: %s' % (type(e).__name__, e))

    parameter_cases(res, ckpt)
    script_cases(res, ckpt, fixtures)
    quantized_cases(res, ckpt)
    numpy_cases(res, ckpt)

    # Mistakes in the command line exit 2 with a line that names them; help and version exit 0.
    sd = os.path.join(fixtures, 'state_dict.pth')
    for argv, says in ((['frobnicate', sd], "unknown command 'frobnicate'"), (['diff', sd], 'after is required'),
                       (['convert', sd, '--to', 'onnx'], 'onnx not in'), (['info'], 'file is required'),
                       (['convert', '--drop', 'fc2.*', sd, '--to', 'state-dict', '-o',
                         os.path.join(tempfile.mkdtemp(prefix='ckpt-usage-'), 'out.pth')], None)):
        r = subprocess.run([ckpt] + argv, capture_output=True, text=True, timeout=60)
        if says is None:  # --drop takes one pattern: the file after it is the positional one
            res.check(r.returncode == 0, 'usage: --drop takes one value, the file after it is the input', r.stderr)
            continue
        res.check(r.returncode == 2 and r.stderr.startswith('ckpt: ') and says in r.stderr,
                  'usage error exits 2: ckpt %s' % ' '.join(argv[:1]), 'rc %d: %s' % (r.returncode, r.stderr.strip()))
    # The tensor list is streamed into the rest of the document where a marker string stands: a file
    # whose keys read as that marker must still get its list in the right place.
    for key in ('\x01tensors\x01', 'other'):
        with tempfile.TemporaryDirectory(prefix='ckpt-marker-') as folder:
            path = os.path.join(folder, 'marker.pth')
            torch.save({key: {'w': torch.ones(2)}, 'epoch': 1, 'note': '\x01tensors\x01'}, path)
            r = subprocess.run([ckpt, 'info', '--json', path], capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        sd = doc.get('state_dict') or {}
        res.check(sd.get('path') == [key] and [t.get('name') for t in sd.get('tensors') or [] if isinstance(t, dict)]
                  == ['w'] and doc.get('metadata', {}).get('note') == '\x01tensors\x01',
                  'info --json with the list marker as a key (%r)' % key, r.stdout[:400] + r.stderr)
    for argv in (['--help'], ['info', '--help'], ['--version']):
        r = subprocess.run([ckpt] + argv, capture_output=True, text=True, timeout=60)
        res.check(r.returncode == 0 and r.stdout, 'ckpt %s exits 0' % ' '.join(argv), r.stderr)

    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
