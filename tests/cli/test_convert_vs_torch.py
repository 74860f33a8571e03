#!/usr/bin/env python3
"""`ckpt convert` judged by PyTorch: every output is loaded by real torch.load (weights formats
through the weights-only allowlist), its keys, dtypes, shapes and values compared with what torch
itself reads from the source (or torch's own cast of it), SimpleNN.load_state_dict(strict=True)
accepts it, a re-saved full model computes the same model(x), the inference sidecar has the seed's
layout, a file converted and converted back equals the original, and broken inputs, existing
outputs and unwritable folders are refused with the folder left as it was."""
import argparse
import collections
import json
import math
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from results import Results  # noqa: E402
from simple_nn import SimpleNN  # noqa: E402
from torch._weights_only_unpickler import _get_allowed_globals  # noqa: E402

SEED_CHECKPOINT_KEYS = ['epoch', 'model_state_dict', 'optimizer_state_dict', 'train_loss', 'val_loss',
                        'model_config', 'timestamp', 'pytorch_version', 'additional_info']
CONFIG = {'input_size': 10, 'hidden_size': 50, 'output_size': 2}


class _AllowlistUnpickler(pickle.Unpickler):
    """torch 1.13's weights_only reader refuses BINFLOAT (any Python float) outright, a bug fixed in
    torch 2.0; where that alone stops it, the file is read with the same allowlist of globals."""

    def find_class(self, module, name):
        allowed = _get_allowed_globals()
        full = '%s.%s' % (module, name)
        if full not in allowed:
            raise pickle.UnpicklingError('global %s is not on the weights-only allowlist' % full)
        return allowed[full]


ALLOWLIST_PICKLE = types.SimpleNamespace(Unpickler=_AllowlistUnpickler, __name__='allowlist_pickle')


def load_weights_only(path):
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Unsupported operand 71' not in str(e):  # 71 = BINFLOAT
            raise
        return torch.load(path, pickle_module=ALLOWLIST_PICKLE)


def read_safetensors(path):
    """The safetensors layout parsed by hand (Debian has no safetensors package)."""
    dtypes = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'F64': torch.float64,
              'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8,
              'BOOL': torch.bool}
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n], object_pairs_hook=collections.OrderedDict)
    # The header as the safetensors library writes it: compact JSON (serde_json's escapes, which are
    # json.dumps's with ensure_ascii off), spaces up to a multiple of 8 bytes.
    text = data[8:8 + n].decode('utf-8')
    assert n % 8 == 0 and text.rstrip(' ') == json.dumps(header, separators=(',', ':'), ensure_ascii=False), \
        'header text is not compact JSON padded with spaces: %r' % text[:200]
    meta = header.pop('__metadata__', {})
    body = data[8 + n:]
    out = collections.OrderedDict()
    end = 0
    for name, h in header.items():
        b, e = h['data_offsets']
        assert b == end, 'gap or overlap before %s' % name
        end = e
        raw = bytearray(body[b:e])
        t = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.zeros(0, dtype=torch.uint8)
        out[name] = t.view(dtypes[h['dtype']]).reshape(h['shape']).clone()
    assert end == len(body), 'trailing bytes'
    return out, meta, n


def same_tensor(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        bits = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
                torch.bfloat16: torch.int16}[a.dtype]
        return torch.equal(a.contiguous().view(bits), b.contiguous().view(bits))
    return torch.equal(a, b)


def spec_of(model, prefix=''):
    """A tree of Sequentials as `--arch-spec` takes it: the leaves in run order under dotted names,
    with the options PyTorch stored on each (tuples as lists)."""
    layers = []
    for name, m in model.named_children():
        if isinstance(m, torch.nn.Sequential):
            layers += spec_of(m, prefix + name + '.')
            continue
        item = {'type': type(m).__name__, 'name': prefix + name}
        if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)) and m.bias is None:
            item['bias'] = False
        for k, v in vars(m).items():
            if not k.startswith('_') and k != 'training':
                item[k] = list(v) if isinstance(v, tuple) else v
        layers.append(item)
    return layers


# Module attributes the full-model writer stores that torch 1.13 does not: PReLU.init (torch >= 2.0).
NEWER_ATTRIBUTES = {'PReLU': {'init'}}


def module_tree_differences(a, b, path='model'):
    """Where two unpickled module trees differ: class, every attribute of __dict__ (type and value),
    parameters (nn.Parameter, requires_grad, bits) and buffers, children by name and order."""
    out = []
    if type(a) is not type(b):
        return ['%s: %s vs %s' % (path, type(a).__name__, type(b).__name__)]
    va, vb = vars(a), vars(b)
    # Attributes newer torch versions store (and older ones ignore) may be ours alone.
    extra = set(va) - set(vb) - NEWER_ATTRIBUTES.get(type(a).__name__, set())
    if extra or set(vb) - set(va):
        out.append('%s: attributes %s' % (path, sorted(extra | (set(vb) - set(va)))))
    for k in va:
        if k in ('_parameters', '_buffers', '_modules') or k not in vb:
            continue
        if type(va[k]) is not type(vb[k]) or va[k] != vb[k]:
            out.append('%s.%s: %r vs %r' % (path, k, va[k], vb[k]))
    for slot in ('_parameters', '_buffers'):
        if list(va[slot]) != list(vb[slot]):
            out.append('%s.%s: %s vs %s' % (path, slot, list(va[slot]), list(vb[slot])))
            continue
        for n, x in va[slot].items():
            y = vb[slot][n]
            if (x is None) != (y is None):
                out.append('%s.%s: None in one only' % (path, n))
            elif x is not None and (type(x) is not type(y) or x.requires_grad != y.requires_grad or
                                    not same_tensor(x.detach(), y.detach())):
                out.append('%s.%s: %s/%s vs %s/%s' % (path, n, type(x).__name__, x.requires_grad, type(y).__name__,
                                                      y.requires_grad))
    if list(va['_modules']) != list(vb['_modules']):
        out.append('%s: children %s vs %s' % (path, list(va['_modules']), list(vb['_modules'])))
    else:
        for n in va['_modules']:
            out += module_tree_differences(va['_modules'][n], vb['_modules'][n], '%s.%s' % (path, n))
    return out


def full_model_from_weights(res, convert, fx, out):
    """`--to full-model` from weights alone: a Sequential of standard torch.nn classes that torch.load
    turns into the same module tree torch pickled for the original, computing the same model(x)."""
    g = torch.Generator().manual_seed(11)
    inputs = {'predict_cnn': torch.rand(2, 3, 12, 12, generator=g), 'predict_zoo_mlp': torch.randn(3, 6, generator=g),
              'predict_zoo_conv1d': torch.randn(2, 2, 16, generator=g),
              'predict_zoo_deconv': torch.rand(2, 3, 5, 5, generator=g),
              'predict_zoo_embedding': torch.tensor([[1, 2, 3, 0, 9], [4, 4, 0, 0, 7]]),
              'predict_odd_names': torch.randn(2, 4, generator=g), 'predict_nested': torch.rand(2, 3, 8, 8, generator=g),
              'predict_zoo_rest1d': torch.randn(2, 2, 5, generator=g), 'predict_zoo_rest2d': torch.rand(2, 3, 6, 7, generator=g)}
    for name, x in inputs.items():
        ref = torch.load(os.path.join(fx, name + '.pth'), weights_only=False).eval()  # what is written: eval mode
        sd_file = name + '_state_dict.pth'
        dest = os.path.join(out, name + '-full.pth')
        spec = json.dumps(spec_of(ref))
        r, doc = convert(sd_file, '--to', 'full-model', '--arch-spec', spec, '-o', dest)
        if r.returncode != 0:
            continue
        model = torch.load(dest, weights_only=False)
        diffs = module_tree_differences(model, ref)
        res.check(not diffs, '%s: the module tree equals the one torch pickled' % name, '; '.join(diffs[:6]))
        with torch.no_grad():
            res.check(same_tensor(model(x), ref(x)), '%s: same model(x)' % name)
        sd, want = model.state_dict(), torch.load(os.path.join(fx, sd_file), weights_only=False)
        res.check(list(sd) == list(want) and all(same_tensor(sd[k], want[k]) for k in want),
                  '%s: state_dict() gives the source weights, in order' % name)
        ref.load_state_dict(sd, strict=True)

    # The seed's SimpleNN weights, no architecture given: an MLP read from the shapes (ReLU between).
    src = torch.load(os.path.join(fx, 'state_dict.pth'), weights_only=False)
    ref = SimpleNN(10, 50, 2).eval()
    ref.load_state_dict(src)
    x = torch.randn(4, 10, generator=g)
    for extra, dtype in (([], torch.float32), (['--dtype', 'bfloat16'], torch.bfloat16)):
        dest = os.path.join(out, 'simple-full-%s.pth' % str(dtype).split('.')[-1])
        r, doc = convert('state_dict.pth', '--to', 'full-model', '-o', dest, *extra)
        if r.returncode != 0:
            continue
        model = torch.load(dest, weights_only=False)
        res.check(isinstance(model, torch.nn.Sequential) and not model.training and
                  [type(m).__name__ for m in model] == ['Linear', 'ReLU', 'Linear'] and
                  all(isinstance(p, torch.nn.Parameter) and p.dtype == dtype for p in model.parameters()),
                  'SimpleNN weights %s: Sequential(Linear, ReLU, Linear) of %s parameters, eval mode' % (extra, dtype),
                  repr(model))
        res.check(any('ReLU' in w for w in doc['warnings']), 'SimpleNN weights: the chosen activation is said',
                  '%r' % doc['warnings'])
        cast = ref.to(dtype) if dtype != torch.float32 else ref
        with torch.no_grad():
            res.check(same_tensor(model(x.to(dtype)), cast(x.to(dtype))), 'SimpleNN weights %s: same model(x)' % extra)
        if dtype == torch.float32:
            SimpleNN(10, 50, 2).load_state_dict(model.state_dict(), strict=True)
            # Converted back, the state dict is the original's, tensor for tensor.
            back = os.path.join(out, 'simple-full-back.pth')
            r, doc = convert(dest, '--to', 'state-dict', '-o', back)
            if r.returncode == 0:
                got = load_weights_only(back)
                res.check(list(got) == list(src) and all(same_tensor(got[k], src[k]) for k in src),
                          'full model from weights converted back: the same state dict')
        ref = SimpleNN(10, 50, 2).eval()
        ref.load_state_dict(src)

    # A package with its own architecture spec: the spec builds the model; metadata listed as lost.
    package = torch.load(os.path.join(fx, 'predict_package_spec.pth'), weights_only=False)
    dest = os.path.join(out, 'package-full.pth')
    r, doc = convert('predict_package_spec.pth', '--to', 'full-model', '-o', dest)
    if r.returncode == 0:
        model = torch.load(dest, weights_only=False)
        types_ = [type(m).__name__ for m in model]
        res.check(types_ == [l['type'] for l in package['architecture']], 'package spec: its layers, in order',
                  '%s' % types_)
        sd = package['model_state_dict']
        h = torch.randn(3, sd['0.weight'].shape[1], generator=g)
        want = h
        for i, layer in enumerate(package['architecture']):
            n = layer.get('name', str(i))
            want = (torch.nn.functional.linear(want, sd[n + '.weight'], sd.get(n + '.bias'))
                    if layer['type'] == 'Linear' else getattr(torch, layer['type'].lower())(want))
        with torch.no_grad():
            res.check(torch.allclose(model(h), want, rtol=0, atol=1e-6), 'package spec: model(x) as the spec computes')
        res.check({l['entry'] for l in doc['lost']} >= {'class_names', 'architecture'},
                  'package spec: the entries a full model cannot hold are listed', '%r' % doc['lost'])
    # A DataParallel state dict, its prefix stripped on the way.
    dest = os.path.join(out, 'dp-full.pth')
    r, doc = convert('conv_dataparallel.pth', '--to', 'full-model', '--strip-prefix', 'module.', '-o', dest)
    if r.returncode == 0:
        sd = torch.load(os.path.join(fx, 'conv_dataparallel.pth'), weights_only=False)
        got = torch.load(dest, weights_only=False).state_dict()
        res.check(list(got) == [k[len('module.'):] for k in sd] and
                  all(same_tensor(got[k[len('module.'):]], v) for k, v in sd.items()),
                  'DataParallel weights, prefix stripped: a full model of the same tensors')

    # Refused, with nothing written.
    scripted = os.path.join(fx, 'predict_scripted.pt')
    refusals = [
        ('TorchScript source', 'predict_scripted.pt', [], 'torchscript'),
        ('CNN weights without an architecture', 'predict_cnn_state_dict.pth', [], '--arch-spec'),
        ('spec that does not match the weights', 'predict_cnn_state_dict.pth',
         ['--arch-spec', json.dumps([{'type': 'Linear', 'name': '0'}])], '0.weight'),
        ('TorchScript architecture', 'state_dict.pth', ['--arch', scripted], 'torchscript'),
        ('metadata options', 'state_dict.pth', ['--class-names', 'a,b'], '--class-names does not apply'),
        ('spec for a file with its own module tree', 'full_model.pth',
         ['--arch-spec', json.dumps([{'type': 'Linear', 'name': 'fc1'}])], 'do not apply'),
    ]
    for what, src, args, message in refusals:
        dest = os.path.join(out, 'refused.pth')
        r, doc = convert(src, '--to', 'full-model', '-o', dest, *args, expect_ok=False)
        res.check(r.returncode == 1 and message.lower() in r.stderr.lower() and not os.path.exists(dest),
                  'full model refused: %s' % what, r.stderr.strip())


def newer_dtypes(res, convert, ckpt, fx, out):
    """float8, uint16/32/64 and complex32 tensors (torch >= 2.x types) kept through a conversion:
    written as torch 2.x writes them (_rebuild_tensor_v3 on an UntypedStorage), with the warning of
    which torch reads them; read back here value for value; and, where this torch has the types,
    loaded by torch.load(weights_only=True) bit for bit."""
    src = os.path.join(fx, 'newer_dtypes.pth')
    with open(os.path.join(fx, 'expected.json')) as f:
        newer = json.load(f)['__newer_dtypes__']
    for target, ext, extra in (('state-dict', '.pth', ()), ('inference', '.pth', ()),
                               ('safetensors', '.safetensors', ('--drop', 'c32'))):
        dest = os.path.join(out, 'newer_' + target + ext)
        r, doc = convert(src, '--to', target, '-o', dest, *extra)
        if r.returncode != 0:
            continue
        if ext == '.pth':
            res.check(any('float8_e4m3fn tensors are written as torch 2.1 writes them' in w for w in doc['warnings']) and
                      any('torch.load needs torch 2.3 or newer' in w for w in doc['warnings']),
                      'newer dtypes -> %s: the warning says which torch reads the file' % target, str(doc['warnings']))
        for name, e in newer['tensors'].items():
            if name in extra:
                continue
            p = subprocess.run([ckpt, 'show', dest, name, '--limit', '1000', '--json'], capture_output=True, text=True,
                               timeout=60)
            got = json.loads(p.stdout) if p.returncode == 0 else {}
            # Integers exactly, as ints (up to 2^64 - 1); the rest as floats.
            exact = e['dtype'].startswith('uint')
            flat = [v if exact else float(v) for x in e['values'] for v in (x if isinstance(x, list) else [x])]
            vals = [v for x in got.get('values') or [] for v in (x if isinstance(x, list) else [x])]  # complex: pairs
            vals = [float(x) if isinstance(x, str) else x for x in vals]  # 'inf', '-inf'
            same = len(vals) == len(flat) and all((x is None and math.isnan(y)) or (x == y and type(x) is type(y))
                                                  for x, y in zip(vals, flat))
            res.check(got.get('dtype') == e['dtype'] and got.get('shape') == e['shape'] and same,
                      'newer dtypes -> %s: %s read back' % (target, name), p.stderr.strip() or str(got)[:200])
        if ext == '.pth' and all(hasattr(torch, n) for n in ('float8_e4m3fn', 'uint16', 'complex32')):
            theirs = torch.load(src)
            got = torch.load(dest)  # torch's default: weights_only=True since 2.6
            got = got['model_state_dict'] if target == 'inference' else got
            for name, t in theirs.items():
                g = got.get(name)
                res.check(g is not None and g.dtype == t.dtype and g.shape == t.shape and
                          torch.equal(g.contiguous().view(torch.uint8), t.contiguous().view(torch.uint8)),
                          'newer dtypes -> %s: torch %s reads %s bit for bit' % (target, torch.__version__, name))
            if target == 'state-dict':
                res.check(got['u16_view'].untyped_storage().data_ptr() == got['u16'].untyped_storage().data_ptr(),
                          'newer dtypes -> state-dict: u16_view still shares u16\'s storage')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    fx = os.path.abspath(a.fixtures)
    res = Results()
    out = tempfile.mkdtemp(prefix='ckpt-convert-')

    def convert(src, *args, expect_ok=True):
        r = subprocess.run([a.ckpt, 'convert', src if os.path.isabs(src) else os.path.join(fx, src), *args, '--json'],
                           capture_output=True, text=True, timeout=120)
        doc = None
        if r.returncode == 0:
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                res.check(False, 'convert %s %s' % (src, args), 'stdout is not JSON: ' + r.stdout[:200])
        if expect_ok:
            res.check(r.returncode == 0, 'convert %s %s' % (src, ' '.join(args)), r.stderr.strip())
        return r, doc

    def reference(src):
        """The model's state dict as torch reads the source."""
        p = os.path.join(fx, src)
        if src.endswith('.safetensors'):
            return read_safetensors(p)[0]
        if src.endswith('.index.json'):
            with open(p) as f:
                index = json.load(f)
            sd = collections.OrderedDict()
            for name, shard in index['weight_map'].items():
                sp = os.path.join(os.path.dirname(p), shard)
                part = read_safetensors(sp)[0] if shard.endswith('.safetensors') else torch.load(sp, weights_only=False)
                sd[name] = part[name]
            return sd
        if src.endswith('scripted.pt'):
            return collections.OrderedDict(torch.jit.load(p, map_location='cpu').state_dict())
        obj = torch.load(p, map_location='cpu', weights_only=False)
        if isinstance(obj, torch.nn.Module):
            return obj.state_dict()
        for k in ('model_state_dict', 'state_dict'):
            if isinstance(obj, dict) and k in obj:
                return obj[k]
        return obj

    def reference_root(src):
        """What torch.load gives for the source (None for safetensors and shard indexes)."""
        if src.endswith('.safetensors') or src.endswith('.index.json') or src.endswith('scripted.pt'):
            return None
        return torch.load(os.path.join(fx, src), map_location='cpu', weights_only=False)

    def compare(where, got, want, ordered=True):
        if not res.check((list(got) == list(want)) if ordered else (set(got) == set(want)), where + ' keys',
                         '%s vs %s' % (list(got)[:6], list(want)[:6])):
            return
        for k in want:
            res.check(same_tensor(got[k], want[k]), '%s %s' % (where, k),
                      '%s %s vs %s %s' % (got[k].dtype, tuple(got[k].shape), want[k].dtype, tuple(want[k].shape)))

    def strict_load(where, sd):
        m = SimpleNN(**CONFIG)
        try:
            m.load_state_dict(sd, strict=True)
            res.check(True, where + ' SimpleNN.load_state_dict(strict=True)')
        except Exception as e:  # noqa: BLE001
            res.check(False, where + ' SimpleNN.load_state_dict(strict=True)', str(e)[:300])

    def model_dict(obj, target):
        if target == 'state-dict':
            return obj
        return obj['model_state_dict']

    # --- every source kind × the weights targets -------------------------------------------------
    sources = [
        ('state_dict.pth', [], None),
        ('training_checkpoint.pth', [], None),
        ('inference_package.pth', [], None),
        ('full_model.pth', [], None),
        ('full_model_legacy.pth', [], None),
        ('scripted.pt', [], None),
        ('legacy_state_dict.pth', [], None),
        ('cuda_saved.pth', [], None),
        ('conv_lightning.ckpt', ['--strip-prefix', 'model.'], 'model.'),
        ('conv_dataparallel.pth', ['--strip-prefix', 'module.'], 'module.'),
        ('conv_compiled.pth', ['--strip-prefix', '_orig_mod.'], '_orig_mod.'),
        ('weights.safetensors', ['--drop', 'half', '--drop', 'brain', '--drop', 'steps', '--drop', 'mask',
                                 '--drop', 'empty'], None),
        ('sharded/model.safetensors.index.json', [], None),
        ('sharded/pytorch_model.bin.index.json', [], None),
    ]
    for src, edits, prefix in sources:
        want = reference(src)
        want = collections.OrderedDict((k[len(prefix):] if prefix else k, v) for k, v in want.items()
                                       if not (src == 'weights.safetensors' and k in ('half', 'brain', 'steps', 'mask', 'empty')))
        for target in ('state-dict', 'checkpoint', 'inference', 'safetensors'):
            dest = os.path.join(out, '%s.%s.%s' % (src.replace('/', '_'), target, 'safetensors' if target == 'safetensors' else 'pth'))
            r, doc = convert(src, '--to', target, '-o', dest, *edits)
            where = '%s -> %s' % (src, target)
            if r.returncode != 0:
                continue
            res.check(doc['result']['verified'] is True and doc['output'] == dest, where + ' verified')
            if target == 'safetensors':
                got, meta, n = read_safetensors(dest)
                res.check(n % 8 == 0 and meta.get('format') == 'pt', where + ' header', 'len %d meta %r' % (n, meta))
                compare(where, got, want, ordered=False)
                strict_load(where, got)
                continue
            try:
                obj = load_weights_only(dest)
            except Exception as e:  # noqa: BLE001
                res.check(False, where + ' loads weights-only', str(e)[:300])
                continue
            with zipfile.ZipFile(dest) as z:
                infos = z.infolist()
                with open(dest, 'rb') as f:
                    raw = f.read()
                offsets = [i.header_offset + 30 + struct.unpack('<HH', raw[i.header_offset + 26:i.header_offset + 30])[0] +
                           struct.unpack('<HH', raw[i.header_offset + 26:i.header_offset + 30])[1] for i in infos]
                res.check(z.testzip() is None and all(i.compress_type == zipfile.ZIP_STORED for i in infos) and
                          all(o % 64 == 0 for o in offsets) and
                          sorted(i.filename for i in infos if not i.filename.startswith('archive/data/')) ==
                          ['archive/byteorder', 'archive/data.pkl', 'archive/version'],
                          where + ' zip layout (stored, CRCs, 64-byte aligned, torch records)',
                          '%s %s' % ([i.filename for i in infos], offsets))
            sd = model_dict(obj, target)
            res.check(isinstance(sd, collections.OrderedDict), where + ' state dict is an OrderedDict', type(sd).__name__)
            compare(where, sd, want, ordered=not src.endswith('.safetensors'))
            strict_load(where, sd)
            if target == 'checkpoint':
                keys = [k for k in SEED_CHECKPOINT_KEYS if k != 'optimizer_state_dict' or k in obj]
                # The seed's keys in its order, then the source's other entries under their own keys
                # (a scheduler where resume code reads it).
                theirs = reference_root(src)
                extra = list(obj)[len(keys):]
                res.check(list(obj)[:len(keys)] == keys and
                          all(k not in keys and isinstance(theirs, dict) and k in theirs for k in extra),
                          where + ' seed checkpoint layout', '%s' % list(obj))
            if target == 'inference':
                res.check(list(obj)[0] == 'model_state_dict' and 'optimizer_state_dict' not in obj and
                          'class_names' in obj and 'model_config' in obj, where + ' inference layout', '%s' % list(obj))
                side = dest[:-len('.pth')] + '_metadata.json'
                if res.check(os.path.exists(side), where + ' sidecar written'):
                    with open(side) as f:
                        meta = json.load(f, object_pairs_hook=collections.OrderedDict)
                    expect = collections.OrderedDict((k, v) for k, v in obj.items() if k != 'model_state_dict')
                    res.check(json.loads(json.dumps(expect, default=str)) == meta, where + ' sidecar content',
                              '%s vs %s' % (list(meta), list(expect)))
        # A full model from the weights of each kind (an MLP read from the shapes): the same
        # tensors, and the same model(x) as the seed's SimpleNN holding them.
        if src not in ('full_model.pth', 'full_model_legacy.pth', 'scripted.pt'):
            dest = os.path.join(out, '%s.full-model.pth' % src.replace('/', '_'))
            r, doc = convert(src, '--to', 'full-model', '-o', dest, *edits)
            if r.returncode == 0:
                model = torch.load(dest, weights_only=False)
                compare(src + ' -> full-model', model.state_dict(), want, ordered=not src.endswith('.safetensors'))
                ref = SimpleNN(**CONFIG).eval()
                ref.load_state_dict(model.state_dict())
                x = torch.randn(3, CONFIG['input_size'], generator=torch.Generator().manual_seed(6))
                with torch.no_grad():
                    res.check(same_tensor(model(x), ref(x)), src + ' -> full-model: same model(x) as SimpleNN')
        if prefix:
            r, doc = convert(src, '--to', 'state-dict', '-o', os.path.join(out, 'noprefix-' + src))
            res.check(doc is not None and prefix in doc['detected_prefixes'], src + ' prefix detected',
                      '%s' % (doc and doc['detected_prefixes']))

    # --- prefixes: added and stripped as DataParallel writes and reads them -----------------------
    dp = torch.load(os.path.join(fx, 'conv_dataparallel.pth'), weights_only=False)
    plain = torch.load(os.path.join(fx, 'state_dict.pth'), weights_only=False)
    r, doc = convert('state_dict.pth', '--to', 'state-dict', '--add-prefix', 'module.', '-o', os.path.join(out, 'dp.pth'))
    if r.returncode == 0:
        got = load_weights_only(os.path.join(out, 'dp.pth'))
        compare('--add-prefix module.', got, collections.OrderedDict(('module.' + k, v) for k, v in plain.items()))
        res.check(dict(got._metadata) == dict(dp._metadata), '--add-prefix: _metadata as DataParallel writes it',
                  '%r vs %r' % (dict(got._metadata), dict(dp._metadata)))
        wrapped = torch.nn.DataParallel(SimpleNN(**CONFIG))
        wrapped.load_state_dict(got, strict=True)
        res.check(True, '--add-prefix: DataParallel(SimpleNN).load_state_dict(strict=True)')
    r, doc = convert('conv_dataparallel.pth', '--to', 'state-dict', '--strip-prefix', 'module', '-o', os.path.join(out, 'nodp.pth'))
    if r.returncode == 0:
        got = load_weights_only(os.path.join(out, 'nodp.pth'))
        res.check(dict(got._metadata) == dict(plain._metadata), '--strip-prefix: _metadata as the bare model writes it',
                  '%r vs %r' % (dict(got._metadata), dict(plain._metadata)))

    # --- the seed's checkpoint values carried, optimizer loadable ---------------------------------
    src = os.path.join(fx, 'training_checkpoint.pth')
    orig = torch.load(src, weights_only=False)
    dest = os.path.join(out, 'tc.pth')
    r, doc = convert('training_checkpoint.pth', '--to', 'checkpoint', '-o', dest)
    if r.returncode == 0:
        obj = load_weights_only(dest)
        res.check(obj['epoch'] == 7 and obj['train_loss'] == 0.25 and obj['val_loss'] == 0.3125 and
                  obj['model_config'] == orig['model_config'], 'checkpoint values carried',
                  '%r' % {k: obj[k] for k in ('epoch', 'train_loss', 'val_loss', 'model_config')})
        m = SimpleNN(**CONFIG)
        m.load_state_dict(obj['model_state_dict'])
        opt = torch.optim.Adam(m.parameters(), lr=0.001)
        try:
            opt.load_state_dict(obj['optimizer_state_dict'])
            ok = all(same_tensor(opt.state_dict()['state'][i][k], orig['optimizer_state_dict']['state'][i][k])
                     for i in orig['optimizer_state_dict']['state'] for k in ('exp_avg', 'exp_avg_sq'))
            res.check(ok and opt.state_dict()['param_groups'] == orig['optimizer_state_dict']['param_groups'],
                      'optimizer state carried and loadable')
        except Exception as e:  # noqa: BLE001
            res.check(False, 'optimizer state carried and loadable', str(e)[:300])
    # User-supplied values, the ModelSaver sidecar layout (preprocessing {mean, std}).
    dest = os.path.join(out, 'deploy.pth')
    r, doc = convert('state_dict.pth', '--to', 'inference', '-o', dest, '--config', json.dumps(CONFIG),
                     '--class-names', 'Negative,Positive', '--preprocessing', json.dumps({'mean': [0.5] * 10, 'std': [0.2] * 10}))
    if r.returncode == 0:
        obj = load_weights_only(dest)
        res.check(list(obj) == ['model_state_dict', 'model_config', 'preprocessing', 'class_names', 'timestamp',
                                'pytorch_version'], 'inference from a state dict: the seed\'s ModelSaver layout', '%s' % list(obj))
        res.check(obj['model_config'] == CONFIG and obj['class_names'] == ['Negative', 'Positive'] and
                  obj['preprocessing'] == {'mean': [0.5] * 10, 'std': [0.2] * 10}, 'inference: given values written')
        with open(os.path.join(out, 'deploy_metadata.json')) as f:
            meta = json.load(f, object_pairs_hook=collections.OrderedDict)
        res.check(list(meta) == ['model_config', 'preprocessing', 'class_names', 'timestamp', 'pytorch_version'] and
                  meta['model_config'] == CONFIG, 'inference sidecar: the seed\'s keys', '%s' % list(meta))
        model = SimpleNN(**obj['model_config'])
        model.load_state_dict(obj['model_state_dict'])
        res.check(True, 'inference package: model rebuilt from its config')
    # Class names that do not count the model's outputs are warned of when converting, not first by
    # predict. The outputs a sample gets are torch's: the pickled CNN run on an image of its size, the
    # MLP a state dict of Linear layers describes run on a row of its width.
    cnn = torch.load(os.path.join(fx, 'predict_cnn.pth'), weights_only=False).eval()
    ema_sd = torch.load(os.path.join(fx, 'weight_sets', 'ema.pth'), weights_only=False)['state_dict']
    with torch.no_grad():
        cnn_outputs = cnn(torch.rand(1, 3, 12, 12)).shape[1]
        x = torch.rand(1, ema_sd['0.weight'].shape[1])
        mlp_outputs = torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(x, ema_sd['0.weight'], ema_sd['0.bias'])),
                                                 ema_sd['2.weight'], ema_sd['2.bias']).shape[1]
    for src, outputs in (('predict_cnn.pth', cnn_outputs), (os.path.join('weight_sets', 'ema.pth'), mlp_outputs)):
        for count in (outputs, outputs + 1):
            names = ','.join('class%d' % i for i in range(count))
            r, doc = convert(src, '--to', 'inference', '--class-names', names, '--force',
                             '-o', os.path.join(out, 'named_%d.pth' % count))
            if r.returncode == 0:
                counted = [w for w in doc['warnings'] if w.startswith('--class-names gives')]
                if count == outputs:
                    res.check(not counted, '%s --class-names with %d names: no warning' % (src, count), str(counted))
                else:
                    res.check(len(counted) == 1 and '%d names' % count in counted[0] and
                              '%d outputs a sample' % outputs in counted[0],
                              '%s --class-names with %d names for %d outputs: warned' % (src, count, outputs),
                              str(doc['warnings']))
    r, doc = convert('training_checkpoint.pth', '--to', 'checkpoint', '--metadata-json', '-o', os.path.join(out, 'side.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'side_metadata.json')) as f:
            meta = json.load(f)
        res.check(list(meta) == ['epoch', 'train_loss', 'val_loss', 'model_config', 'timestamp', 'pytorch_version',
                                 'additional_info'] and meta['epoch'] == 7 and meta['model_config'] == CONFIG,
                  '--metadata-json: checkpoint sidecar without weights and optimizer', '%r' % meta)
    # A diverged run's losses (NaN, inf, -inf in a list) and a string that reads "NaN": the sidecar
    # and safetensors metadata hold what json.dumps writes of them (NaN, Infinity), json.loads reads
    # back the floats, and a conversion back to a checkpoint restores them as floats, not tags.
    nan_src = os.path.join(out, 'diverged.pth')
    diverged = {'epoch': 9, 'model_state_dict': {'fc.weight': torch.ones(2, 3)}, 'train_loss': float('nan'),
                'val_loss': float('inf'), 'model_config': {'history': [0.5, float('-inf')], 'note': 'NaN'}}
    torch.save(diverged, nan_src)

    def same_json(a, b):  # NaN equals NaN here, as the value written is the value read
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    r, doc = convert(nan_src, '--to', 'checkpoint', '--metadata-json', '-o', os.path.join(out, 'diverged_ck.pth'))
    if res.check(r.returncode == 0, 'non-finite losses: checkpoint with sidecar', r.stderr.strip()):
        with open(os.path.join(out, 'diverged_ck_metadata.json')) as f:
            text = f.read()
        side = json.loads(text)
        res.check('"train_loss": NaN' in text and same_json([side[k] for k in ('train_loss', 'val_loss', 'model_config')],
                                                            [diverged[k] for k in ('train_loss', 'val_loss', 'model_config')]),
                  'non-finite losses: the sidecar writes NaN/Infinity as json.dumps does, json.loads reads the floats',
                  text[:300])
    st = os.path.join(out, 'diverged.safetensors')
    r, doc = convert(nan_src, '--to', 'safetensors', '-o', st)
    if res.check(r.returncode == 0, 'non-finite losses: safetensors', r.stderr.strip()):
        meta = read_safetensors(st)[1]
        res.check(meta.get('train_loss') == 'NaN' and meta.get('val_loss') == 'Infinity' and
                  same_json(json.loads(meta.get('model_config', 'null')), diverged['model_config']),
                  'non-finite losses: safetensors metadata as json.dumps writes them', '%r' % meta)
        r, doc = convert(st, '--to', 'checkpoint', '-o', os.path.join(out, 'diverged_back.pth'))
        if res.check(r.returncode == 0, 'non-finite losses: safetensors back to a checkpoint', r.stderr.strip()):
            back = torch.load(os.path.join(out, 'diverged_back.pth'))
            res.check(same_json([back.get(k) for k in ('train_loss', 'val_loss', 'model_config')],
                                [diverged[k] for k in ('train_loss', 'val_loss', 'model_config')]) and
                      isinstance(back.get('train_loss'), float),
                      'non-finite losses: back to a checkpoint, the floats again', '%r' % back)

    # A config that shares values (one long description string and one dict used twice; pickle
    # writes each once and refers to it again): the sidecar and safetensors metadata hold the plain
    # JSON Python's json.dumps writes of what torch.load returns, each place in full. A dict that
    # contains itself is no JSON: that entry is left out of the sidecar and said so; the file keeps it.
    shared_src = os.path.join(out, 'shared_config.pth')
    desc, block = 'a description ' * 200, {'width': 64, 'act': 'relu'}
    shared_config = {'input_size': 10, 'desc': desc, 'summary': desc, 'encoder': block, 'decoder': block}
    looped = {'name': 'looped'}
    looped['self'] = looped
    torch.save({'model_state_dict': {'fc.weight': torch.ones(2, 10)}, 'model_config': shared_config,
                'class_names': ['a', 'b'], 'looped': looped, 'epoch': 3}, shared_src)
    r, doc = convert(shared_src, '--to', 'inference', '-o', os.path.join(out, 'shared_inf.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'shared_inf_metadata.json')) as f:
            side = json.load(f)
        res.check(side.get('model_config') == json.loads(json.dumps(shared_config)),
                  'sidecar: values the pickle shares written in full, as json.dumps writes them',
                  json.dumps(side.get('model_config'))[:300])
    r, doc = convert(shared_src, '--to', 'checkpoint', '--metadata-json', '-o', os.path.join(out, 'shared_ck.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'shared_ck_metadata.json')) as f:
            side = json.load(f)
        kept = torch.load(os.path.join(out, 'shared_ck.pth'), weights_only=False)
        res.check(side.get('looped') == {'name': 'looped'} and side.get('class_names') == ['a', 'b'] and
                  side.get('model_config') == json.loads(json.dumps(shared_config)) and
                  [l['entry'] for l in doc['lost'] if 'JSON cannot hold' in l['reason']] == ['looped/self'] and
                  kept['looped']['self'] is kept['looped'],
                  'sidecar: the entry of a dict that is the dict itself left out and said so; the checkpoint keeps it',
                  '%r %r' % (list(side), doc['lost']))
    r, doc = convert(shared_src, '--to', 'safetensors', '-o', os.path.join(out, 'shared.safetensors'))
    if r.returncode == 0:
        _, meta, _ = read_safetensors(os.path.join(out, 'shared.safetensors'))
        res.check(json.loads(meta.get('model_config', 'null')) == json.loads(json.dumps(shared_config)) and
                  'looped' not in meta and any(l['entry'] == 'looped' for l in doc['lost']),
                  'safetensors metadata: shared values in full, a cycle left out and said so',
                  '%r %r' % (meta.get('model_config', '')[:200], doc['lost']))
    # A few KiB of pickle sharing one list (2 MB as JSON) under 200 keys: 400 MB written out in
    # full. One 16 MiB budget holds for the whole sidecar and the whole safetensors header: the
    # entries past it are listed as not written. A diff of two such files shows each shared value
    # once (as info does).
    inner = list(range(1000))
    block = [inner] * 300
    wide = {'model_state_dict': {'fc.weight': torch.ones(2, 2)}}
    for i in range(200):
        wide['table_%03d' % i] = block
    wide_src = os.path.join(out, 'wide_shared.pth')
    torch.save(wide, wide_src)
    r, doc = convert(wide_src, '--to', 'state-dict', '--metadata-json', '-o', os.path.join(out, 'wide_sd.pth'))
    if r.returncode == 0:
        side_path = os.path.join(out, 'wide_sd_metadata.json')
        with open(side_path) as f:
            side = json.load(f)
        past = [l for l in doc['lost'] if 'past the 16384 KiB' in l['reason']]
        res.check(os.path.getsize(side_path) < (17 << 20) and side and all(v == block for v in side.values()) and
                  len(side) + len(past) == 200,
                  'sidecar: 200 keys sharing one 2 MB list stop at one 16 MiB budget, the rest listed as not written',
                  '%d bytes, %d written, %d past' % (os.path.getsize(side_path), len(side), len(past)))
    r, doc = convert(wide_src, '--to', 'safetensors', '-o', os.path.join(out, 'wide.safetensors'))
    if r.returncode == 0:
        _, meta, header = read_safetensors(os.path.join(out, 'wide.safetensors'))
        past = [l for l in doc['lost'] if 'past the 16384 KiB' in l['reason']]
        res.check(header < (17 << 20) and len([k for k in meta if k.startswith('table_')]) + len(past) == 200 and
                  all(json.loads(meta[k]) == block for k in meta if k.startswith('table_')),
                  'safetensors metadata: the same budget for the whole header', '%d header bytes' % header)
    narrow = dict(list(wide.items())[:21])
    narrow_src = os.path.join(out, 'narrow_shared.pth')
    torch.save(narrow, narrow_src)
    d = subprocess.run([a.ckpt, 'diff', wide_src, narrow_src, '--json'], capture_output=True, text=True, timeout=120)
    keys = [m['key'] for m in json.loads(d.stdout).get('metadata', [])] if d.returncode in (0, 1) else []
    res.check(d.returncode == 0 and len(d.stdout) < (1 << 20) and len(keys) == 180 and 'table_000' not in keys,
              'diff: shared metadata compared in full, shown once; only the keys one file lacks differ',
              '%d bytes, exit %d, %d keys %s' % (len(d.stdout), d.returncode, len(keys), d.stderr[-300:]))
    # A root dict that holds itself: its weights never reach the sidecar through the loop.
    loop = {'model_state_dict': {'fc.weight': torch.ones(2, 2)}, 'epoch': 1}
    loop['self'] = loop
    loop_src = os.path.join(out, 'root_loop.pth')
    torch.save(loop, loop_src)
    r, doc = convert(loop_src, '--to', 'checkpoint', '--metadata-json', '-o', os.path.join(out, 'root_loop_ck.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'root_loop_ck_metadata.json')) as f:
            side = json.load(f)
        res.check('self' not in side and 'self' not in side.get('additional_info', {}) and
                  'fc.weight' not in json.dumps(side) and
                  any(l['entry'] == 'self' and 'cycle' in l['reason'] for l in doc['lost']),
                  'sidecar: a root holding itself is not written again inside it', '%r %r' % (side, doc['lost']))
    # Mean and std kept as a tensor and a numpy array: the sidecar holds their numbers.
    r, doc = convert('predict_package_tensor_mean.pth', '--to', 'inference', '-o', os.path.join(out, 'tmean.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'tmean_metadata.json')) as f:
            meta = json.load(f)
        src = torch.load(os.path.join(fx, 'predict_package_tensor_mean.pth'), weights_only=False)
        res.check(meta.get('input_mean') == src['input_mean'].double().tolist() and
                  meta.get('input_std') == src['input_std'].tolist(),
                  'sidecar: mean/std kept as tensor and numpy array written as their numbers', '%r' % meta.get('input_mean'))
    r, doc = convert('training_checkpoint.pth', '--to', 'safetensors', '-o', os.path.join(out, 'meta.safetensors'))
    if r.returncode == 0:
        _, meta, _ = read_safetensors(os.path.join(out, 'meta.safetensors'))
        res.check(meta.get('epoch') == '7' and json.loads(meta.get('model_config', 'null')) == CONFIG and
                  meta.get('train_loss') == '0.25' and
                  any(l['entry'] == 'optimizer_state_dict' for l in doc['lost']),
                  'safetensors: values as metadata strings, optimizer listed as not written', '%r %r' % (meta, doc['lost']))
    # Names and metadata that need escaping: quotes, backslashes, control bytes, non-ASCII; the header
    # lists them in the library's order (wider types first, then by name) and they read back as saved.
    odd = collections.OrderedDict([('caf\u00e9.weight', torch.ones(2, 3)), ('quote"back\\slash', torch.zeros(4).half()),
                                   ('ctl\x01\x7f\x1f\t\n', torch.arange(5)), ('emoji \U0001F600', torch.tensor(2.0)),
                                   ('empty', torch.empty(0, 3)), ('b', torch.tensor([True]))])
    torch.save({'model_state_dict': odd, 'epoch': 3, 'note': 'h\u00e9llo "q"\n\x02'}, os.path.join(out, 'odd.pth'))
    r, doc = convert(os.path.join(out, 'odd.pth'), '--to', 'safetensors', '-o', os.path.join(out, 'odd.safetensors'))
    if r.returncode == 0:
        got, meta, _ = read_safetensors(os.path.join(out, 'odd.safetensors'))
        rank = {torch.bool: 0, torch.float16: 7, torch.float32: 11, torch.int64: 14}
        res.check(list(got) == sorted(odd, key=lambda k: (-rank[odd[k].dtype], k.encode())) and
                  all(same_tensor(got[k], odd[k]) for k in odd) and meta.get('note') == 'h\u00e9llo "q"\n\x02',
                  'safetensors: names and metadata that need escaping', '%r %r' % (list(got), meta))
    # A name that is not UTF-8 (a lone surrogate in the pickle) cannot be a JSON key: refused.
    torch.save({'lone\udcff': torch.ones(1)}, os.path.join(out, 'lone.pth'))
    r, _ = convert(os.path.join(out, 'lone.pth'), '--to', 'safetensors', '-o', os.path.join(out, 'lone.safetensors'),
                   expect_ok=False)
    res.check(r.returncode == 1 and 'UTF-8' in r.stderr and not os.path.exists(os.path.join(out, 'lone.safetensors')),
              'safetensors: a name that is not UTF-8 is refused', r.stderr)
    r = subprocess.run([a.ckpt, 'convert', os.path.join(fx, 'training_checkpoint.pth'), '--to', 'inference',
                        '-o', os.path.join(out, 'text.pth')], capture_output=True, text=True)
    res.check(r.returncode == 0 and r.stdout.index('not written: optimizer_state_dict') < r.stdout.index('wrote ') and
              'verified' in r.stdout, 'text output: the plan before the write', r.stdout + r.stderr)
    # Values a weights-only file cannot hold are listed, not silently lost.
    r, doc = convert('conv_torchvision.pth', '--to', 'checkpoint', '-o', os.path.join(out, 'tv.pth'))
    if doc:
        lost = {l['entry']: l['reason'] for l in doc['lost']}
        obj = load_weights_only(os.path.join(out, 'tv.pth'))
        theirs = torch.load(os.path.join(fx, 'conv_torchvision.pth'), weights_only=False)
        res.check('args' not in lost and argparse.Namespace(**obj['args']) == theirs['args'] and
                  any("'args' is an argparse.Namespace" in w for w in doc['warnings']),
                  'torchvision args kept as the dict of its fields, said so', '%r %r' % (lost, doc['warnings']))
        # Resume code reads ckpt['lr_scheduler'] and ckpt['model_ema']: they keep their keys.
        res.check('lr_scheduler' in obj and 'model_ema' in obj and 'lr_scheduler' not in obj['additional_info'],
                  'scheduler and EMA kept under their own keys', '%s' % list(obj))
    r, doc = convert('training_checkpoint.pth', '--to', 'state-dict', '-o', os.path.join(out, 'tc-sd.pth'))
    if doc:
        res.check({l['entry'] for l in doc['lost']} >= {'epoch', 'optimizer_state_dict', 'train_loss'},
                  'state-dict target lists what it does not write', '%r' % doc['lost'])

    # --- EMA promotion, dropping training state ---------------------------------------------------
    src = os.path.join(fx, 'conv_training_state.pth')
    orig = torch.load(src, weights_only=False)
    dest = os.path.join(out, 'ema.pth')
    r, doc = convert('conv_training_state.pth', '--to', 'checkpoint', '--ema', '--drop-optimizer', '-o', dest)
    if r.returncode == 0:
        obj = load_weights_only(dest)
        compare('--ema', obj['model_state_dict'], orig['ema_state_dict'])
        res.check('optimizer_state_dict' not in obj and
                  all(k not in obj and k not in obj['additional_info'] for k in ('scheduler', 'rng_state', 'scaler')),
                  '--drop-optimizer leaves training state out', '%s / %s' % (list(obj), list(obj['additional_info'])))

    # --- dtype casts: bit for bit what torch's .to(dtype) gives, with counts -----------------------
    src = os.path.join(fx, 'cast_edges.pth')
    orig = torch.load(src, weights_only=False)
    for dtype, name in ((torch.float16, 'float16'), (torch.bfloat16, 'bfloat16'), (torch.float32, 'float32')):
        for target in ('state-dict', 'safetensors'):
            dest = os.path.join(out, 'cast-%s.%s' % (name, 'safetensors' if target == 'safetensors' else 'pth'))
            r, doc = convert('cast_edges.pth', '--to', target, '--dtype', name, '-o', dest)
            if r.returncode != 0:
                continue
            got = read_safetensors(dest)[0] if target == 'safetensors' else load_weights_only(dest)
            want = collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in orig.items())
            compare('cast %s %s' % (name, target), got, want, ordered=target != 'safetensors')
            overflow = subnormal = zeroed = 0
            for v in orig.values():
                if not v.is_floating_point() or v.dtype == dtype:
                    continue
                c = v.to(dtype).double()
                src64 = v.double()
                finite = torch.isfinite(src64) & (src64 != 0)
                overflow += int((finite & torch.isinf(c)).sum())
                zeroed += int((finite & (c == 0)).sum())
                tiny = {torch.float16: 2.0 ** -14, torch.bfloat16: 2.0 ** -126, torch.float32: 2.0 ** -126}[dtype]
                was_sub = {torch.float16: 2.0 ** -14, torch.bfloat16: 2.0 ** -126, torch.float32: 2.0 ** -126,
                           torch.float64: 2.0 ** -1022}[v.dtype]
                subnormal += int((finite & (c != 0) & (c.abs() < tiny) & ~(src64.abs() < was_sub)).sum())
            cast = doc['cast']
            res.check((cast['overflow'], cast['subnormal'], cast['zeroed']) == (overflow, subnormal, zeroed),
                      'cast %s counts' % name, '%r vs %r' % (cast, (overflow, subnormal, zeroed)))
            if overflow:
                res.check(any('overflow' in w for w in doc['warnings']), 'cast %s overflow warned' % name)

    # --- full model: re-saved, same model(x), after a cast too -----------------------------------
    orig_model = torch.load(os.path.join(fx, 'full_model.pth'), weights_only=False)
    x = torch.randn(5, 10, generator=torch.Generator().manual_seed(3))
    for extra, dtype in (([], torch.float32), (['--dtype', 'bfloat16'], torch.bfloat16)):
        dest = os.path.join(out, 'full-%s.pth' % str(dtype).split('.')[-1])
        r, doc = convert('full_model.pth', '--to', 'full-model', '-o', dest, *extra)
        if r.returncode != 0:
            continue
        model = torch.load(dest, weights_only=False)
        res.check(type(model).__name__ == 'SimpleNN' and all(p.dtype == dtype for p in model.parameters()) and
                  all(isinstance(p, torch.nn.Parameter) for p in model.parameters()),
                  'full model %s: a SimpleNN with %s parameters' % (extra, dtype))
        ref = orig_model.to(dtype) if dtype != torch.float32 else orig_model
        with torch.no_grad():
            res.check(torch.equal(model(x.to(dtype)), ref(x.to(dtype))), 'full model %s: same model(x)' % extra)
        orig_model = torch.load(os.path.join(fx, 'full_model.pth'), weights_only=False)
    dest = os.path.join(out, 'legacy-full.pth')
    r, doc = convert('full_model_legacy.pth', '--to', 'full-model', '-o', dest)
    if r.returncode == 0:
        model, ref = torch.load(dest, weights_only=False), torch.load(os.path.join(fx, 'full_model_legacy.pth'), weights_only=False)
        with torch.no_grad():
            res.check(type(model).__name__ == 'SimpleNN' and torch.equal(model(x), ref(x)),
                      'legacy full model re-saved as zip: same model(x)')
    # Calls and instances made as the source made them: a REDUCE with no arguments stays a call
    # (torch.get_default_dtype()), protocol 1's copyreg._reconstructor instances become NEWOBJ.
    for src in ('full_model_calls.pth', 'full_model_protocol1.pth'):
        dest = os.path.join(out, src.replace('.pth', '.resaved.pth'))
        r, doc = convert(src, '--to', 'full-model', '-o', dest)
        if r.returncode == 0:
            try:
                model = torch.load(dest, weights_only=False)
                ref = torch.load(os.path.join(fx, src), weights_only=False)
                with torch.no_grad():
                    res.check(model.default_dtype_call == torch.get_default_dtype() and torch.equal(model(x), ref(x)),
                              src + ' re-saved: the call made again, same model(x)')
            except Exception as e:  # noqa: BLE001 -- torch refusing the file is the failure
                res.check(False, src + ' re-saved: torch.load fails: %s' % e)
    dest = os.path.join(out, 'yolo.pt')
    r, doc = convert('conv_yolo_style.pt', '--to', 'full-model', '-o', dest)
    if r.returncode == 0:
        obj, want = torch.load(dest, weights_only=False), torch.load(os.path.join(fx, 'conv_yolo_style.pt'), weights_only=False)
        res.check(list(obj) == list(want) and obj['epoch'] == want['epoch'], 'YOLO-style re-save keeps its entries')
        compare('YOLO-style ema', obj['ema'].state_dict(), want['ema'].state_dict())
    full_model_from_weights(res, convert, fx, out)
    newer_dtypes(res, convert, a.ckpt, fx, out)
    kept_values(res, convert, a.ckpt, fx, out)
    script_like_torch(res, convert, out)
    package_words(res, convert, a.ckpt, fx, out)
    json_values(res, convert, a.ckpt, fx, out)

    # --- shared storages stay shared; safetensors aliases come back ------------------------------
    src = os.path.join(fx, 'tied_weights.pth')
    orig = torch.load(src, weights_only=False)
    dest = os.path.join(out, 'tied.pth')
    r, doc = convert('tied_weights.pth', '--to', 'state-dict', '-o', dest)
    if r.returncode == 0:
        got = load_weights_only(dest)
        compare('tied', got, orig)
        res.check(got['encoder.weight'] is got['decoder.weight'] and
                  got['row'].storage().data_ptr() == got['encoder.weight'].storage().data_ptr() and
                  got['row'].storage_offset() == 4, 'tied tensors and views share one storage')
    dest = os.path.join(out, 'tied.safetensors')
    r, doc = convert('tied_weights.pth', '--to', 'safetensors', '-o', dest)
    if r.returncode == 0:
        got, meta, _ = read_safetensors(dest)
        res.check(meta.get('alias:decoder.weight') == 'encoder.weight' and 'decoder.weight' not in got,
                  'safetensors: alias written once, recorded in __metadata__', '%r' % meta)
        # Read by the tool, the alias is the tensor it names: the file lists what torch.load gave,
        # and a diff against the source says the round trip kept everything.
        t = subprocess.run([a.ckpt, 'tensors', '--json', dest], capture_output=True, text=True, timeout=120)
        listed = [x['name'] for x in json.loads(t.stdout)['tensors']] if t.returncode == 0 else []
        res.check(sorted(listed) == sorted(k for k, v in orig.items() if torch.is_tensor(v)),
                  'safetensors with an alias: tensors lists every name the source has', '%r' % listed)
        d = subprocess.run([a.ckpt, 'diff', src, dest], capture_output=True, text=True, timeout=120)
        res.check(d.returncode == 0 and '0 removed, 0 added' in d.stdout,
                  'safetensors with an alias: diff against the source says equal', d.stdout[-400:] + d.stderr)
        # Aliases count against the tensor limit: a few bytes of metadata naming one tensor 2^17
        # times are refused, not listed and measured 2^17 times.
        meta_many = {'alias:a%d' % i: 'w' for i in range(1 << 17)}
        header = json.dumps({'__metadata__': meta_many, 'w': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}},
                            separators=(',', ':')).encode()
        header += b' ' * (-len(header) % 8)
        many = os.path.join(out, 'many_aliases.safetensors')
        with open(many, 'wb') as f:
            f.write(struct.pack('<Q', len(header)) + header + b'\0' * 4)
        t = subprocess.run([a.ckpt, 'info', many], capture_output=True, text=True, timeout=120)
        res.check(t.returncode == 1 and 'many_aliases.safetensors' in t.stderr and 'limit' in t.stderr,
                  'safetensors: aliases past the tensor limit refused', t.stderr.strip()[:300])
        back = os.path.join(out, 'tied-back.pth')
        r, doc = convert(dest, '--to', 'state-dict', '-o', back)
        if r.returncode == 0:
            got = load_weights_only(back)
            compare('tied via safetensors', got, orig, ordered=False)
            res.check(got['encoder.weight'] is got['decoder.weight'], 'alias restored as one tensor')
    src = os.path.join(fx, 'views.pth')
    r, doc = convert('views.pth', '--to', 'state-dict', '-o', os.path.join(out, 'views.pth'))
    if r.returncode == 0:
        got, want = load_weights_only(os.path.join(out, 'views.pth')), torch.load(src, weights_only=False)
        compare('views', got, want)
        res.check(all(got[k].stride() == want[k].stride() and got[k].storage_offset() == want[k].storage_offset()
                      for k in want), 'views keep strides and offsets')

    # --- sparse and meta tensors; quantized ones written as torch does, refused for safetensors ------
    want = torch.load(os.path.join(fx, 'special_tensors.pth'), weights_only=False)
    r, doc = convert('special_tensors.pth', '--to', 'safetensors', '-o', os.path.join(out, 'spq.safetensors'),
                     expect_ok=False)
    res.check(r.returncode == 1 and "--drop 'q'" in r.stderr and "--drop 'qc'" in r.stderr,
              'quantized tensors refused for safetensors together, each with its --drop', r.stderr)
    r, doc = convert('special_tensors.pth', '--to', 'state-dict', '-o', os.path.join(out, 'spq.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(out, 'spq.pth'), weights_only=False)  # written by ckpt from a fixture
        res.check(all(got[k].qscheme() == want[k].qscheme() and torch.equal(got[k].int_repr(), want[k].int_repr())
                      and torch.equal(got[k].dequantize(), want[k].dequantize()) for k in ('q', 'qc')),
                  'quantized tensors written as torch does')
    r, doc = convert('special_tensors.pth', '--to', 'state-dict', '--drop', 'q*', '-o', os.path.join(out, 'sp.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(out, 'sp.pth'), weights_only=True)
        res.check(list(got) == ['sp', 'meta', 'sub'] and got['sp'].is_sparse and
                  torch.equal(got['sp'].to_dense(), want['sp'].to_dense()) and
                  torch.equal(got['sp']._indices(), want['sp']._indices()), 'sparse tensor written as torch does')
        res.check(got['meta'].is_meta and got['meta'].shape == want['meta'].shape and
                  got['meta'].dtype == want['meta'].dtype, 'meta tensor written as torch does')
        res.check(torch.equal(got['sub'], want['sub'].as_subclass(torch.Tensor)) and
                  any('MarkedTensor' in w for w in doc['warnings']), 'tensor subclass written plain, with a warning',
                  '%r' % doc['warnings'])
    r, doc = convert('special_tensors.pth', '--to', 'safetensors', '--drop', 'q*', '-o', os.path.join(out, 'sp.safetensors'),
                     expect_ok=False)
    res.check(r.returncode == 1 and 'safetensors cannot hold' in r.stderr and
              not os.path.exists(os.path.join(out, 'sp.safetensors')), 'sparse tensor refused for safetensors', r.stderr)

    # --- round trips: converted and converted back equals the original ----------------------------
    for src, chain in (('state_dict.pth', ['checkpoint', 'state-dict']),
                       ('state_dict.pth', ['inference', 'checkpoint', 'state-dict']),
                       ('training_checkpoint.pth', ['checkpoint', 'checkpoint']),
                       ('inference_package.pth', ['checkpoint', 'inference']),
                       ('state_dict.pth', ['safetensors', 'state-dict']),
                       # Metadata goes into __metadata__ as text and comes back as the values it was.
                       ('training_checkpoint.pth', ['safetensors', 'checkpoint']),
                       ('inference_package.pth', ['safetensors', 'inference'])):
        cur = os.path.join(fx, src)
        for i, target in enumerate(chain):
            nxt = os.path.join(out, 'rt-%s-%d-%s.%s' % (src, i, '-'.join(chain), 'safetensors' if target == 'safetensors' else 'pth'))
            r, doc = convert(cur, '--to', target, '-o', nxt)
            cur = nxt
            if r.returncode != 0:
                break
        else:
            orig = torch.load(os.path.join(fx, src), weights_only=False)
            final = load_weights_only(cur)
            where = 'round trip %s via %s' % (src, ' -> '.join(chain))
            if src == 'state_dict.pth':
                compare(where, final, orig, ordered='safetensors' not in chain)
                if 'safetensors' not in chain:
                    res.check(final._metadata == orig._metadata, where + ' _metadata', '%r vs %r' % (final._metadata, orig._metadata))
            else:
                via_safetensors = 'safetensors' in chain
                compare(where, final['model_state_dict'], orig['model_state_dict'], ordered=not via_safetensors)
                if not via_safetensors:
                    res.check(final['model_state_dict']._metadata == orig['model_state_dict']._metadata, where + ' _metadata')
                keys = [k for k in orig if k != 'model_state_dict']
                res.check(all(k in final and final[k] == orig[k] and type(final[k]) is type(orig[k])
                              for k in keys if k != 'optimizer_state_dict'),
                          where + ' values', '%r' % {k: final.get(k) for k in keys})
                if via_safetensors:
                    res.check('optimizer_state_dict' not in final, where + ': no optimizer state (safetensors has none)')
                    if 'input_mean' in orig:
                        # The package read back from safetensors normalises and names its classes.
                        row = ','.join('%r' % v for v in orig['input_mean'])
                        sf = os.path.join(out, 'rt-%s-0-%s.safetensors' % (src, '-'.join(chain)))
                        p = subprocess.run([a.ckpt, 'predict', sf, '--input', row, '--json'], capture_output=True, text=True)
                        pred = json.loads(p.stdout) if p.returncode == 0 else {}
                        res.check(pred.get('normalized') is True and
                                  pred['outputs'][0]['top'][0]['class'] in orig['class_names'],
                                  where + ': predict on the safetensors package normalises, names classes', p.stdout + p.stderr)
                elif 'optimizer_state_dict' in orig:
                    o, f = orig['optimizer_state_dict'], final['optimizer_state_dict']
                    res.check(o['param_groups'] == f['param_groups'] and all(
                        same_tensor(f['state'][i][k], o['state'][i][k]) for i in o['state'] for k in o['state'][i]),
                        where + ' optimizer state')

    # Another writer's __metadata__ (weights.safetensors: format, note) is kept where the target has
    # a place for it and listed as not written where it has none, never dropped silently.
    sf_note = read_safetensors(os.path.join(fx, 'weights.safetensors'))[1]['note']
    r, doc = convert('weights.safetensors', '--to', 'checkpoint', '-o', os.path.join(out, 'sfmeta_ckpt.pth'))
    if r.returncode == 0:
        info = torch.load(os.path.join(out, 'sfmeta_ckpt.pth'), weights_only=True)['additional_info']
        res.check(info.get('safetensors_metadata') == {'note': sf_note},
                  'safetensors -> checkpoint: __metadata__ kept in additional_info (less its "format" tag)', '%r' % info)
    r, doc = convert('weights.safetensors', '--to', 'state-dict', '--metadata-json',
                     '-o', os.path.join(out, 'sfmeta_sd.pth'))
    if r.returncode == 0:
        with open(os.path.join(out, 'sfmeta_sd_metadata.json')) as f:
            side = json.load(f)
        res.check(side.get('safetensors_metadata') == {'note': sf_note},
                  'safetensors -> state-dict --metadata-json: __metadata__ in the sidecar', '%r' % side)
    for target in ('inference', 'state-dict'):
        r, doc = convert('weights.safetensors', '--to', target, '-o', os.path.join(out, 'sfmeta_%s.pth' % target))
        if r.returncode == 0:
            res.check([l['entry'] for l in doc['lost']] == ['__metadata__/note'],
                      'safetensors -> %s: __metadata__ it has no place for is listed as not written' % target,
                      '%r' % doc['lost'])

    # README: `--out-dir out/` in a fresh folder works: the folder is made (as mkdir -p would).
    r, _ = convert('state_dict.pth', '--to', 'state-dict', '--out-dir', os.path.join(out, 'no', 'such'))
    res.check(r.returncode == 0 and os.path.isfile(os.path.join(out, 'no', 'such', 'state_dict.pth')),
              'an output folder that does not exist is made', r.stderr.strip())

    # A full model's weights carry the _metadata module.state_dict() records (module versions).
    for src in ('predict_cnn.pth', 'full_model.pth'):
        dest = os.path.join(out, 'md-' + src)
        r, doc = convert(src, '--to', 'state-dict', '-o', dest)
        if r.returncode == 0:
            want = torch.load(os.path.join(fx, src), weights_only=False).state_dict()._metadata
            got = torch.load(dest, weights_only=False)._metadata
            res.check(list(got.items()) == list(want.items()), src + ' -> state-dict: _metadata as module.state_dict() has it',
                      '%r vs %r' % (list(got.items())[:4], list(want.items())[:4]))

    # A given config keeps the order of its keys, as json.loads and a Python dict keep it.
    given = '{"width": 3, "depth": 2, "act": "relu"}'
    r, doc = convert('state_dict.pth', '--to', 'inference', '--config', given, '-o', os.path.join(out, 'ordered.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(out, 'ordered.pth'), weights_only=False)['model_config']
        res.check(list(got.items()) == list(json.loads(given).items()), '--config keeps its key order', '%r' % got)

    # --- given values go where the target has a place for them, else are refused ----------------
    r, doc = convert('training_checkpoint.pth', '--to', 'checkpoint', '--class-names', 'up,down',
                     '--preprocessing', '{"mean": [0.5], "std": [0.25]}', '-o', os.path.join(out, 'given.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(out, 'given.pth'), weights_only=False)
        res.check(got['additional_info'].get('class_names') == ['up', 'down'] and
                  got['additional_info'].get('preprocessing') == {'mean': [0.5], 'std': [0.25]},
                  'checkpoint: given class names and preprocessing kept in additional_info', '%r' % got['additional_info'])
        r, doc = convert(os.path.join(out, 'given.pth'), '--to', 'inference', '-o', os.path.join(out, 'given_inf.pth'))
        if r.returncode == 0:
            pkg = torch.load(os.path.join(out, 'given_inf.pth'), weights_only=False)
            res.check(pkg.get('class_names') == ['up', 'down'] and pkg.get('preprocessing') == {'mean': [0.5], 'std': [0.25]},
                      'checkpoint -> inference: they become the package\'s', '%r' % {k: pkg.get(k) for k in ('class_names', 'preprocessing')})
    for target, args in (('state-dict', ['--config', '{"a": 1}']), ('safetensors', ['--epoch', '2']),
                         ('inference', ['--epoch', '2', '--val-loss', '0.5']),
                         ('checkpoint', ['--arch-spec', '[{"type": "Linear", "name": "fc1"}]'])):
        dest = os.path.join(out, 'misplaced.out')
        r, _ = convert('training_checkpoint.pth', '--to', target, '-o', dest, *args, expect_ok=False)
        res.check(r.returncode == 1 and 'not apply to --to ' + target in r.stderr and args[0] in r.stderr and
                  not os.path.exists(dest), '--to %s refuses %s' % (target, ' '.join(args[::2])), r.stderr.strip())

    # --- --drop takes the dropped parameters' optimizer state with them ---------------------------
    # What torch writes for the smaller model: an Adam over fc2 alone, given the source's state for it.
    orig = torch.load(os.path.join(fx, 'training_checkpoint.pth'), weights_only=False)
    r, doc = convert('training_checkpoint.pth', '--to', 'checkpoint', '--drop', 'fc1.*', '-o', os.path.join(out, 'drop_opt.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(out, 'drop_opt.pth'), weights_only=False)
        kept = [torch.nn.Parameter(t.clone()) for t in got['model_state_dict'].values()]
        adam = torch.optim.Adam(kept)
        try:
            adam.load_state_dict(got['optimizer_state_dict'])
            loaded = ''
        except (ValueError, KeyError) as e:
            loaded = str(e)
        o, f = orig['optimizer_state_dict'], got['optimizer_state_dict']
        res.check(not loaded and f['param_groups'][0]['params'] == [0, 1] and
                  all(same_tensor(f['state'][new][k], o['state'][old][k]) for new, old in ((0, 2), (1, 3)) for k in o['state'][old]),
                  '--drop: the optimizer keeps the state of the kept parameters only, and torch loads it', loaded or '%r' % f['param_groups'])

    # --- --to torchscript takes the weight edits and the dtype; metadata options are refused -------
    src = torch.load(os.path.join(fx, 'predict_package.pth'), weights_only=False)['model_state_dict']
    r, doc = convert('predict_package.pth', '--to', 'torchscript', '--dtype', 'bfloat16', '--out-dir', out)
    want_name = os.path.join(out, 'predict_package_torchscript_bf16.pt')
    if res.check(doc is not None and doc['output'] == want_name and doc['cast']['dtype'] == 'bfloat16',
                 'torchscript: default name carries the dtype', '%r' % doc):
        # The same plan as every target: what the module cannot hold is listed, the package's
        # normalisation is warned about (the exported module does not apply it), the file verified.
        pkg = torch.load(os.path.join(fx, 'predict_package.pth'), weights_only=False)
        res.check(sorted(l['entry'] for l in doc['lost']) == sorted(k for k in pkg if k != 'model_state_dict') and
                  all('TorchScript' in l['reason'] for l in doc['lost']),
                  'torchscript: the package\'s metadata is listed as not written', '%r' % doc['lost'])
        res.check(any('normalise inputs' in w for w in doc['warnings']) and doc['result']['verified'] and
                  doc['result']['storages_verified'] == len(src) and doc['kept'] == list(src) and
                  doc['bytes_after'] == sum(t.numel() * 2 for t in src.values()),
                  'torchscript: normalisation warned, sizes after the cast, export read back and verified', '%r' % doc)
        m = torch.jit.load(want_name)
        sd = m.state_dict()
        res.check(set(sd) == set(src) and all(sd[k].dtype == torch.bfloat16 and torch.equal(sd[k], src[k].to(torch.bfloat16))
                                              for k in src) and m.training is False,
                  'torchscript --dtype bfloat16: weights as torch .to(bfloat16) gives them', '%r' % {k: v.dtype for k, v in sd.items()})
    r, doc = convert('predict_package.pth', '--to', 'torchscript', '--drop', 'fc2.*', '-o', os.path.join(out, 'ts_drop.pt'))
    if doc is not None:
        sd = torch.jit.load(os.path.join(out, 'ts_drop.pt')).state_dict()
        res.check(set(sd) == {'fc1.weight', 'fc1.bias'} and sorted(d['name'] for d in doc['dropped']) == ['fc2.bias', 'fc2.weight'] and
                  torch.equal(sd['fc1.weight'], src['fc1.weight']), 'torchscript --drop: the dropped layer is not exported',
                  '%r %r' % (list(sd), doc['dropped']))
    # Integer buffers stay integers, as Python's module.half() leaves them.
    r, doc = convert('predict_cnn.pth', '--to', 'torchscript', '--dtype', 'float16', '-o', os.path.join(out, 'ts_cnn16.pt'))
    if doc is not None:
        sd = torch.jit.load(os.path.join(out, 'ts_cnn16.pt')).state_dict()
        want = torch.load(os.path.join(fx, 'predict_cnn.pth'), weights_only=False).half().state_dict()
        res.check(all(sd[k].dtype == want[k].dtype and torch.equal(sd[k], want[k]) for k in want) and
                  any(v.dtype == torch.int64 for v in sd.values()),
                  'torchscript --dtype float16: floating tensors cast, num_batches_tracked left int64',
                  '%r' % {k: v.dtype for k, v in sd.items()})
    for args, why in ((['--epoch', '3'], 'do not apply to --to torchscript'),
                      (['-o', os.path.join(out, 'x.pt'), '--out-dir', out], 'not both')):
        r, _ = convert('predict_package.pth', '--to', 'torchscript', *args, expect_ok=False)
        res.check(r.returncode == 1 and why in r.stderr, 'torchscript: %s refused' % ' '.join(args[:1]), r.stderr)

    # --- safety: inputs, existing outputs, unwritable folders, broken inputs ----------------------
    work = tempfile.mkdtemp(prefix='ckpt-convert-safety-')
    shutil.copy(os.path.join(fx, 'state_dict.pth'), os.path.join(work, 'in.pth'))
    with open(os.path.join(work, 'in.pth'), 'rb') as f:
        before = f.read()
    r, _ = convert(os.path.join(work, 'in.pth'), '--to', 'state-dict', '-o', os.path.join(work, 'in.pth'), '--force',
                   expect_ok=False)
    with open(os.path.join(work, 'in.pth'), 'rb') as f:
        res.check(r.returncode == 1 and 'input' in r.stderr and f.read() == before, 'an input is never overwritten', r.stderr)
    r, doc = convert(os.path.join(work, 'in.pth'), '--to', 'checkpoint')
    res.check(doc is not None and doc['output'] == os.path.join(work, 'in_checkpoint.pth'), 'default output name beside the input',
              '%s' % (doc and doc['output']))
    # model_best.pth.tar (torchvision's examples, the corpus) and .th (AllenNLP) lose both extensions.
    stems = tempfile.mkdtemp(prefix='ckpt-convert-stems-')
    for name, stem in (('model_best.pth.tar', 'model_best'), ('weights.th', 'weights'), ('mobile.ptl', 'mobile')):
        shutil.copy(os.path.join(fx, 'state_dict.pth'), os.path.join(stems, name))
        r, doc = convert(os.path.join(stems, name), '--to', 'state-dict')
        res.check(doc is not None and doc['output'] == os.path.join(stems, stem + '_state_dict.pth'),
                  'default output name for ' + name, '%s' % (doc and doc['output']))
    with open(os.path.join(work, 'in_checkpoint.pth'), 'rb') as f:
        first = f.read()
    r, _ = convert(os.path.join(work, 'in.pth'), '--to', 'checkpoint', expect_ok=False)
    with open(os.path.join(work, 'in_checkpoint.pth'), 'rb') as f:
        res.check(r.returncode == 1 and 'already exists' in r.stderr and f.read() == first,
                  'existing output refused without --force', r.stderr)
    r, _ = convert(os.path.join(work, 'in.pth'), '--to', 'checkpoint', '--force')
    res.check(r.returncode == 0, 'existing output replaced with --force')
    multi = os.path.join(work, 'multi')
    os.mkdir(multi)
    r = subprocess.run([a.ckpt, 'convert', os.path.join(fx, 'state_dict.pth'), os.path.join(fx, 'weights.safetensors'),
                        '--to', 'safetensors', '--out-dir', multi, '--json'], capture_output=True, text=True, timeout=120)
    docs = json.loads(r.stdout) if r.returncode == 0 else None
    res.check(isinstance(docs, list) and [os.path.basename(d['output']) for d in docs] ==
              ['state_dict_safetensors.safetensors', 'weights_safetensors.safetensors'] and
              sorted(os.listdir(multi)) == ['state_dict_safetensors.safetensors', 'weights_safetensors.safetensors'],
              'several inputs: one JSON object each, outputs in --out-dir', r.stderr + r.stdout[:200])
    r = subprocess.run([a.ckpt, 'convert', os.path.join(fx, 'state_dict.pth'), os.path.join(fx, 'views.pth'),
                        '--to', 'state-dict', '-o', os.path.join(multi, 'one.pth')], capture_output=True, text=True)
    res.check(r.returncode == 1 and '-o' in r.stderr and not os.path.exists(os.path.join(multi, 'one.pth')),
              '-o with several inputs refused', r.stderr)
    # Two inputs of one name from two folders would both become multi/model_<target>: refused before
    # anything is written (with --force the second replaced the first; without it, it failed on it).
    clash = tempfile.mkdtemp(prefix='ckpt-convert-clash-')
    for sub in ('a', 'b'):
        os.mkdir(os.path.join(clash, sub))
        shutil.copy(os.path.join(fx, 'state_dict.pth' if sub == 'a' else 'views.pth'), os.path.join(clash, sub, 'model.pth'))
    shutil.rmtree(multi)
    os.mkdir(multi)
    for target, written in (('state-dict', 'model_state_dict.pth'), ('torchscript', 'model_torchscript.pt')):
        r = subprocess.run([a.ckpt, 'convert', os.path.join(clash, 'a', 'model.pth'), os.path.join(clash, 'b', 'model.pth'),
                            '--to', target, '--out-dir', multi, '--force'], capture_output=True, text=True, timeout=120)
        res.check(r.returncode == 1 and 'would both be written to' in r.stderr and written in r.stderr and
                  os.listdir(multi) == [], '--to %s: two inputs with one output name refused, nothing written' % target,
                  r.stderr.strip() + ' / %r' % os.listdir(multi))
    r = subprocess.run([a.ckpt, 'convert', os.path.join(fx, 'state_dict.pth'), os.path.join(fx, '.', 'state_dict.pth'),
                        '--to', 'state-dict', '--out-dir', multi], capture_output=True, text=True, timeout=120)
    res.check(r.returncode == 1 and 'named twice' in r.stderr and os.listdir(multi) == [],
              'one input named twice refused', r.stderr.strip())
    # Two networks in one file: the one not written is said to be other weights, not "not tensors".
    torch.manual_seed(3)
    gan = {'generator': torch.nn.Linear(2, 3).state_dict(), 'discriminator': torch.nn.Linear(3, 1).state_dict(), 'epoch': 4}
    torch.save(gan, os.path.join(clash, 'gan.pth'))
    r = subprocess.run([a.ckpt, 'convert', os.path.join(clash, 'gan.pth'), '--to', 'state-dict', '-o', os.path.join(multi, 'g.pth'),
                        '--json'], capture_output=True, text=True, timeout=120)
    lost = {e['entry']: e['reason'] for e in json.loads(r.stdout)['lost']} if r.returncode == 0 else {}
    written = torch.load(os.path.join(multi, 'g.pth')) if r.returncode == 0 else {}
    res.check(set(written) == set(gan['generator']) and 'another set of weights' in lost.get('discriminator', '') and
              "'generator'" in lost.get('discriminator', '') and 'another set' not in lost.get('epoch', ''),
              'the other network of a file is listed as other weights', r.stderr + repr(lost))
    os.remove(os.path.join(multi, 'g.pth'))
    # An output whose name says another format than the one written.
    for target, name in (('state-dict', 'x.safetensors'), ('torchscript', 'x.SafeTensors'), ('safetensors', 'x.pth')):
        r = subprocess.run([a.ckpt, 'convert', os.path.join(fx, 'state_dict.pth'), '--to', target, '-o', os.path.join(multi, name)],
                           capture_output=True, text=True, timeout=120)
        res.check(r.returncode == 1 and name in r.stderr and 'the name says' in r.stderr and os.listdir(multi) == [],
                  '--to %s -o %s refused' % (target, name), r.stderr.strip())
    shutil.rmtree(multi)
    shutil.rmtree(clash)

    # One conversion of a run never writes over another input of the same run, --force or not:
    # a/m.pth -> d/m_state_dict.pth, when d/m_state_dict.pth is the run's second input.
    run_dir = tempfile.mkdtemp(prefix='ckpt-convert-run-')
    os.makedirs(os.path.join(run_dir, 'a'))
    os.makedirs(os.path.join(run_dir, 'd'))
    shutil.copy(os.path.join(fx, 'state_dict.pth'), os.path.join(run_dir, 'a', 'm.pth'))
    second = os.path.join(run_dir, 'd', 'm_state_dict.pth')
    shutil.copy(os.path.join(fx, 'training_checkpoint.pth'), second)
    with open(second, 'rb') as f:
        second_bytes = f.read()
    r = subprocess.run([a.ckpt, 'convert', os.path.join(run_dir, 'a', 'm.pth'), second, '--to', 'state-dict',
                        '--out-dir', os.path.join(run_dir, 'd'), '--force'], capture_output=True, text=True, timeout=120)
    with open(second, 'rb') as f:
        res.check(f.read() == second_bytes and 'is an input file' in r.stderr,
                  'a run\'s output never replaces another of its inputs', r.stderr.strip())
    spec = os.path.join(run_dir, 'spec.json')
    with open(spec, 'w') as f:
        json.dump([{'type': 'Linear', 'name': 'fc1'}, {'type': 'ReLU'}, {'type': 'Linear', 'name': 'fc2'}], f)
    r, _ = convert('state_dict.pth', '--to', 'full-model', '--arch-spec', spec, '-o', spec, '--force', expect_ok=False)
    with open(spec) as f:
        res.check(r.returncode == 1 and 'is an input file' in r.stderr and json.load(f)[0]['name'] == 'fc1',
                  'the --arch-spec file is an input too', r.stderr.strip())

    # An expanded view (stride 0) stays a view in a torch format; safetensors, which would store
    # each of its 2^26 elements, refuses it with the way out.
    r, doc = convert('expanded_huge.pth', '--to', 'state-dict', '-o', os.path.join(run_dir, 'expanded.pth'))
    if r.returncode == 0:
        got = torch.load(os.path.join(run_dir, 'expanded.pth'), weights_only=True)
        res.check(got['x'].stride() == (0,) and got['x'].shape == (1 << 26,) and os.path.getsize(os.path.join(run_dir, 'expanded.pth')) < 8192,
                  'expanded view written as a view', '%r' % (got['x'].stride(),))
    r, _ = convert('expanded_huge.pth', '--to', 'safetensors', '-o', os.path.join(run_dir, 'expanded.safetensors'), expect_ok=False)
    res.check(r.returncode == 1 and "'x'" in r.stderr and '--drop' in r.stderr and
              not os.path.exists(os.path.join(run_dir, 'expanded.safetensors')),
              'expanded view refused for safetensors, naming the tensor', r.stderr.strip())
    r, _ = convert('expanded_huge.pth', '--to', 'safetensors', '--drop', 'x', '-o', os.path.join(run_dir, 'expanded.safetensors'))
    res.check(r.returncode == 0, 'expanded view left out with --drop: safetensors written', r.stderr.strip())

    # A spec nesting hundreds of Sequentials is refused before anything is written, naming the layer.
    deep = '.'.join(['s'] * 600) + '.fc'
    torch.save(collections.OrderedDict([(deep + '.weight', torch.ones(2, 3)), (deep + '.bias', torch.zeros(2))]),
               os.path.join(run_dir, 'deep_sd.pth'))
    r, _ = convert(os.path.join(run_dir, 'deep_sd.pth'), '--to', 'full-model', '-o', os.path.join(run_dir, 'deep.pth'),
                   expect_ok=False)
    res.check(r.returncode == 1 and 'containers deep' in r.stderr and not os.path.exists(os.path.join(run_dir, 'deep.pth')),
              'a spec nesting 600 containers is refused', r.stderr.strip()[:300])
    locked = os.path.join(work, 'locked')
    os.mkdir(locked)
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() != 0:
        r, _ = convert(os.path.join(work, 'in.pth'), '--to', 'state-dict', '--out-dir', locked, expect_ok=False)
        res.check(r.returncode == 1 and 'temporary file' in r.stderr and os.listdir(locked) == [],
                  'unwritable folder: clear error, nothing left', r.stderr)
    os.chmod(locked, stat.S_IRWXU)
    # A "folder" that is a file: unwritable for root too.
    r, _ = convert(os.path.join(work, 'in.pth'), '--to', 'state-dict', '--out-dir', os.path.join(work, 'in.pth'),
                   expect_ok=False)
    res.check(r.returncode == 1 and 'this is a file, not a folder' in r.stderr, 'a file as the output folder: clear error',
              r.stderr)
    # A full disk: a 4 KiB tmpfs where one can be mounted (root in a container or VM).
    full = os.path.join(work, 'full')
    os.mkdir(full)
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', full], capture_output=True).returncode == 0
    if mounted:
        try:
            r, _ = convert('training_checkpoint.pth', '--to', 'checkpoint', '--out-dir', full, expect_ok=False)
            res.check(r.returncode == 1 and 'No space left' in r.stderr and os.listdir(full) == [],
                      'full disk: clear error, nothing left', r.stderr.strip())
        finally:
            subprocess.run(['umount', full])
    else:
        print('note: cannot mount a tmpfs here; the full-disk check did not run')
    os.rmdir(full)
    for bad in ('truncated.pth', 'not_a_checkpoint.pth', 'tensor_past_storage.pth', 'deep_nesting.pth'):
        r, _ = convert(bad, '--to', 'state-dict', '--out-dir', work, expect_ok=False)
        res.check(r.returncode == 1 and bad in r.stderr, 'broken input %s refused' % bad, r.stderr.strip()[:200])
    leftovers = sorted(f for f in os.listdir(work) if f not in ('in.pth', 'in_checkpoint.pth', 'locked'))
    res.check(leftovers == [], 'no temporary or partial files left', '%s' % leftovers)
    shutil.rmtree(work)
    shutil.rmtree(out)
    return res.finish()


def _weights_only_13_loads(value):
    """Whether this torch's torch.load(weights_only=True) reads {'v': value} back (BINFLOAT, which
    1.13 refuses for any float, read with the same allowlist as load_weights_only does)."""
    fd, path = tempfile.mkstemp(suffix='.pth')
    os.close(fd)
    try:
        torch.save({'v': value}, path)
        load_weights_only(path)
        return True
    except Exception:  # noqa: BLE001 - any refusal of the weights-only reader
        return False
    finally:
        os.remove(path)


def kept_values(res, convert, ckpt, fx, out):
    """Values beside the weights, judged by torch: mean/std kept as tensors or numpy arrays reach a
    safetensors file as lists that predict normalises with, as the source did; a weights-only file
    keeps each value this torch's torch.load(weights_only=True) reads and lists the others with their
    type and the torch that would read them; a second optimizer and a second set of weights are
    said to be what they are."""
    import argparse as _argparse
    import numpy as np

    def predict(path, row):
        r = subprocess.run([ckpt, 'predict', path, '--input', ','.join(repr(x) for x in row), '--json'],
                           capture_output=True, text=True, timeout=120)
        return json.loads(r.stdout) if r.returncode == 0 else {'error': r.stderr}

    # 1. Mean/std as a tensor and a numpy array, alone and in a preprocessing dict.
    torch.manual_seed(5)
    net = SimpleNN(10, 50, 2).eval()
    mean32 = np.linspace(-1, 1, 10).astype(np.float32)
    std32 = np.full(10, 0.3, dtype=np.float32)
    pkgs = {
        'tmean': os.path.join(fx, 'predict_package_tensor_mean.pth'),
        'np_pre': os.path.join(out, 'kv_np_pre.pth'),
        't_pre': os.path.join(out, 'kv_t_pre.pth'),
    }
    torch.save({'model_state_dict': net.state_dict(), 'model_config': CONFIG,
                'preprocessing': {'mean': mean32, 'std': std32}, 'class_names': ['Negative', 'Positive']},
               pkgs['np_pre'])
    torch.save({'model_state_dict': net.state_dict(), 'model_config': CONFIG,
                'preprocessing': {'mean': torch.from_numpy(mean32), 'std': torch.from_numpy(std32)}}, pkgs['t_pre'])
    row = [0.1 * i - 0.3 for i in range(1, 11)]
    for name, src in pkgs.items():
        dest = os.path.join(out, 'kv_%s.safetensors' % name)
        r, doc = convert(src, '--to', 'safetensors', '-o', dest)
        if r.returncode != 0:
            continue
        theirs = torch.load(src, weights_only=False)
        _, meta, _ = read_safetensors(dest)
        lost = {l['entry']: l['reason'] for l in doc['lost']}
        fields = ['input_mean', 'input_std'] if 'input_mean' in theirs else ['preprocessing']
        for f in fields:
            want = theirs[f]
            want = {k: np.asarray(v, dtype=np.float64).tolist() for k, v in want.items()} if isinstance(want, dict) \
                else np.asarray(want, dtype=np.float64).tolist()
            got = json.loads(meta[f]) if f in meta else None
            res.check(f not in lost and got == want and f in json.loads(meta.get('checkpoint_studio.json_keys', '[]')) and
                      any(f in w and 'lists' in w for w in doc['warnings']),
                      'safetensors %s: %s written as the JSON lists of its numbers, with a note' % (name, f),
                      '%r %r %r' % (lost.get(f), got, doc['warnings']))
        # predict on the output normalises as on the source: and both as torch does.
        a, b = predict(src, row), predict(dest, row)
        sd = theirs['model_state_dict']
        model = SimpleNN(10, 50, 2).eval()
        model.load_state_dict(sd)
        pre = theirs.get('preprocessing') or {'mean': theirs['input_mean'], 'std': theirs['input_std']}
        x = ((torch.tensor([row], dtype=torch.float64) - torch.as_tensor(np.asarray(pre['mean']), dtype=torch.float64)) /
             torch.as_tensor(np.asarray(pre['std']), dtype=torch.float64)).float()
        with torch.no_grad():
            want = model(x)[0].tolist()
        la = a.get('outputs', [{}])[0].get('logits')
        lb = b.get('outputs', [{}])[0].get('logits')
        res.check(la is not None and la == lb and all(abs(p - q) <= 1e-5 * max(1, abs(q)) for p, q in zip(lb, want)),
                  'safetensors %s: predict normalises as on the source, as torch computes' % name,
                  '%r %r %r' % (la, lb, want))
        info = subprocess.run([ckpt, 'info', dest], capture_output=True, text=True, timeout=60)
        res.check(info.returncode == 0 and all('__metadata__/' + f + ':' in info.stdout for f in fields),
                  'safetensors %s: ckpt info shows %s' % (name, fields), info.stdout[-800:] + info.stderr)

    # 2. A weights-only file keeps what torch 1.13's weights_only reads, lists the rest.
    lin = torch.nn.Linear(4, 2)
    extra = collections.OrderedDict([
        ('tags', {'a', 'b'}), ('frozen', frozenset({1})), ('dtype', torch.float16), ('dtype64', torch.float64),
        ('bdtype', torch.bfloat16), ('counter', collections.Counter({'x': 2})), ('args', _argparse.Namespace(lr=0.5)),
        ('note', 'plain'), ('sizes', [1, 2, (3, 4)])])
    messy = os.path.join(out, 'kv_messy.pth')
    torch.save(dict(epoch=1, model_state_dict=lin.state_dict(), dev=torch.device('cuda:0'), **extra), messy)
    # What the source's types are called where they are listed: the global pickle names.
    names = {'tags': 'builtins.set', 'frozen': 'builtins.frozenset', 'bdtype': 'torch.bfloat16',
             'counter': 'collections.Counter', 'args': 'argparse.Namespace'}
    dest = os.path.join(out, 'kv_messy_ck.pth')
    r, doc = convert(messy, '--to', 'checkpoint', '-o', dest)
    if r.returncode == 0:
        got = load_weights_only(dest)
        info = got  # the source's other entries keep their keys
        lost = {l['entry']: l['reason'] for l in doc['lost']}
        res.check(isinstance(info.get('args'), dict) and _argparse.Namespace(**info['args']) == extra['args'],
                  'weights-only: an argparse.Namespace kept as the dict of its fields', repr(info.get('args')))
        for k, v in extra.items():
            if k == 'args':
                continue
            if _weights_only_13_loads(v):
                res.check(k in info and info[k] == v and type(info[k]) is type(v) and k not in lost,
                          'weights-only: %s (%s), which torch %s weights_only reads, is kept' %
                          (k, type(v).__name__, torch.__version__), '%r %r' % (info.get(k), lost.get(k)))
            else:
                why = lost.get(k, '')
                res.check(k not in info and names.get(k, '?') in why,
                          'weights-only: %s (%s), which torch %s weights_only refuses, is listed naming its type' %
                          (k, type(v).__name__, torch.__version__), why)
        # The torch that would accept it, where the security report says one does.
        for k in ('tags', 'counter', 'bdtype'):
            res.check('torch 2.6' in lost.get(k, '') and 'torch 1.13' in lost.get(k, ''),
                      'weights-only: %s said to load with torch 2.6 but not 1.13' % k, lost.get(k, ''))
        for k in ('frozen',):
            res.check('torch 2.6' not in lost.get(k, '') and 'cannot hold' in lost.get(k, ''),
                      'weights-only: %s said to be held by no weights-only file' % k, lost.get(k, ''))
        # torch.device: refused by this torch's weights_only, so written as its string, and said so.
        if not _weights_only_13_loads(torch.device('cuda:0')):
            res.check(info.get('dev') == 'cuda:0' and type(info['dev']) is str and
                      any("'dev'" in w and 'torch.device' in w and "'cuda:0'" in w
                          for w in doc['warnings']),
                      'weights-only: a torch.device written as its string, with a note of the type change',
                      '%r %r' % (info.get('dev'), doc['warnings']))
        else:
            res.check(isinstance(info.get('dev'), torch.device), 'weights-only: a torch.device kept', repr(info.get('dev')))

    # 3. A second optimizer and a second set of weights are said to be what they are.
    gan = os.path.join(fx, 'weight_sets', 'gan.pth')
    r, doc = convert(gan, '--to', 'safetensors', '-o', os.path.join(out, 'kv_gan.safetensors'))
    if r.returncode == 0:
        lost = {l['entry']: l['reason'] for l in doc['lost']}
        theirs = torch.load(gan, weights_only=False)
        res.check(set(theirs['optD']) == {'state', 'param_groups'} and 'optimizer state' in lost.get('optD', '') and
                  'tensors or objects' not in lost.get('optD', ''),
                  'safetensors: the second optimizer is said to be optimizer state', lost.get('optD', ''))
    for target in ('state-dict', 'inference'):
        r, doc = convert(gan, '--to', target, '-o', os.path.join(out, 'kv_gan_%s.pth' % target))
        if r.returncode == 0:
            lost = {l['entry']: l['reason'] for l in doc['lost']}
            res.check(lost.get('netD', '').startswith('another set of weights') and "--weights 'netD'" in lost['netD'],
                      '%s: the other set of weights names the --weights that writes it' % target, lost.get('netD', ''))


def _script_reference(model):
    """torch.jit.script's module of `model` (a copy: the original keeps training below)."""
    import copy
    return torch.jit.script(copy.deepcopy(model).eval())


def _trained_adam(model, x, steps=2):
    """An Adam optimizer's state_dict after a few steps on `model` (a copy), as a training checkpoint
    keeps it: one exp_avg per trainable parameter, in parameters() order."""
    import copy
    m = copy.deepcopy(model).train()
    opt = torch.optim.Adam([p for p in m.parameters()], lr=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        m(x).square().sum().backward()
        opt.step()
    return opt.state_dict()


def script_like_torch(res, convert, out):
    """The TorchScript `convert --to torchscript` writes has what torch.jit.script of the same model
    has: named_parameters() and named_buffers() in torch's order (weight before bias; running_mean,
    running_var, num_batches_tracked), parameters that require grad (a frozen one of a pickled full
    model stays frozen), buffers that do not; and the original training's optimizer state loads
    into an optimizer over the export's parameters, each exp_avg the shape of its parameter, and a
    step trains the base layers."""
    from simple_nn import SimpleNN
    nn = torch.nn
    torch.manual_seed(71)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 3 * 3, 2))
    mlp_bn = nn.Sequential(nn.Linear(7, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    frozen = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    for p in frozen[0].parameters():  # a fine-tuning setup: the first layer frozen
        p.requires_grad_(False)
    for m, shape in ((cnn, (4, 3, 8, 8)), (mlp_bn, (8, 7)), (frozen, (8, 6))):
        m.train()
        with torch.no_grad():  # running statistics that are not the defaults
            for _ in range(3):
                m(torch.randn(*shape))
        m.eval()
    simple = SimpleNN(10, 50, 2).eval()
    spec = [{'type': 'Linear'}, {'type': 'BatchNorm1d'}, {'type': 'ReLU'}, {'type': 'Linear'}]
    cases = []  # (what, source file, extra args, torch model, input)
    for name, model, shape in (('full SimpleNN', simple, (3, 10)), ('full CNN with BatchNorm2d', cnn, (2, 3, 8, 8)),
                               ('full model, first layer frozen', frozen, (4, 6))):
        path = os.path.join(out, 'sl_%s.pth' % name.split()[1].strip(','))
        torch.save(model, path)
        cases.append((name, path, [], model, torch.randn(*shape)))
    sd_path = os.path.join(out, 'sl_mlp_bn_checkpoint.pth')
    torch.save({'epoch': 1, 'model_state_dict': mlp_bn.state_dict()}, sd_path)
    cases.append(('state dict, inferred MLP with BatchNorm1d', sd_path, [], mlp_bn, torch.randn(4, 7)))
    cases.append(('state dict, spec with BatchNorm1d', sd_path, ['--arch-spec', json.dumps(spec)], mlp_bn,
                  torch.randn(4, 7)))
    for i, (name, src, args, model, x) in enumerate(cases):
        dest = os.path.join(out, 'sl_%d.pt' % i)
        r, doc = convert(src, '--to', 'torchscript', *args, '-o', dest)
        if doc is None:
            continue
        if name.startswith('state dict'):
            want_source = 'spec' if args else 'inferred_mlp'
            res.check(doc['architecture']['source'] == want_source, name + ': built from the %s' % want_source,
                      '%r' % doc['architecture'])
        got, want = torch.jit.load(dest), _script_reference(model)
        gp, wp = list(got.named_parameters()), list(want.named_parameters())
        res.check([n for n, _ in gp] == [n for n, _ in wp] and
                  [tuple(p.shape) for _, p in gp] == [tuple(p.shape) for _, p in wp],
                  name + ': named_parameters() in torch.jit.script\'s order',
                  '%r vs %r' % ([n for n, _ in gp], [n for n, _ in wp]))
        res.check([n for n, _ in got.named_buffers()] == [n for n, _ in want.named_buffers()],
                  name + ': named_buffers() in torch.jit.script\'s order',
                  '%r vs %r' % ([n for n, _ in got.named_buffers()], [n for n, _ in want.named_buffers()]))
        res.check([p.requires_grad for _, p in gp] == [p.requires_grad for _, p in wp] and
                  not any(b.requires_grad for _, b in got.named_buffers()),
                  name + ': requires_grad of parameters and buffers as torch.jit.script\'s',
                  '%r vs %r' % ([(n, p.requires_grad) for n, p in gp], [(n, p.requires_grad) for n, p in wp]))
        # The original training's optimizer state into an optimizer over the export's parameters.
        state = _trained_adam(model, x)
        params = list(got.parameters())
        opt = torch.optim.Adam(params, lr=1e-3)
        try:
            opt.load_state_dict(state)
            loaded = ''
        except (ValueError, KeyError) as e:
            loaded = str(e)
        trained = [p for p in params if p.requires_grad]
        shapes = [(tuple(opt.state[p]['exp_avg'].shape), tuple(p.shape)) for p in trained if p in opt.state]
        res.check(not loaded and len(shapes) == len(trained) and all(a == b for a, b in shapes) and
                  not any(p in opt.state for p in params if not p.requires_grad),
                  name + ': the original Adam state loads, each exp_avg the shape of its parameter',
                  loaded or '%r' % shapes)
        if loaded or not shapes or any(a != b for a, b in shapes):
            continue
        before = [p.detach().clone() for p in params]
        try:
            opt.zero_grad()
            got(x).square().sum().backward()
            opt.step()
            stepped = ''
        except RuntimeError as e:
            stepped = str(e).splitlines()[0]
        moved = [not torch.equal(b, p.detach()) for b, p in zip(before, params)]
        res.check(not stepped and moved == [p.requires_grad for p in params],
                  name + ': a training step moves exactly the parameters that require grad (the first layer too)',
                  stepped or '%r' % list(zip([n for n, _ in gp], moved)))
    # A cast keeps what trains, as Python's module.half() does.
    dest = os.path.join(out, 'sl_frozen16.pt')
    r, doc = convert(cases[2][1], '--to', 'torchscript', '--dtype', 'float16', '-o', dest)
    if doc is not None:
        got, want = torch.jit.load(dest), _script_reference(frozen.half())
        res.check([(n, p.dtype, p.requires_grad) for n, p in got.named_parameters()] ==
                  [(n, p.dtype, p.requires_grad) for n, p in want.named_parameters()],
                  'torchscript --dtype float16: parameters keep requires_grad as torch.jit.script(model.half())',
                  '%r' % [(n, p.dtype, p.requires_grad) for n, p in got.named_parameters()])



def package_words(res, convert, ckpt, fx, out):
    """What convert says about an inference package's fields, judged by what torch loads back: a
    package turned back into a checkpoint says no field is both carried and missing, and keeps no
    empty (None) field the original checkpoint did not have; --class-names are trimmed names; a
    numpy mean/std written as a tensor is said to be, as other type changes are; a 1-value std is
    broadcast as torchvision's Normalize does, other length mismatches are not applied."""
    import numpy as np

    # 1. checkpoint -> inference -> checkpoint.
    src = os.path.join(fx, 'training_checkpoint.pth')
    inf, ck2 = os.path.join(out, 'pw_inf.pth'), os.path.join(out, 'pw_ck2.pth')
    r1, _ = convert(src, '--to', 'inference', '-o', inf)
    r2, doc = convert(inf, '--to', 'checkpoint', '-o', ck2)
    if r1.returncode == 0 and r2.returncode == 0:
        original, package, back = (torch.load(p, weights_only=False) for p in (src, inf, ck2))
        carried = {c.split(' ')[0] for c in doc['carried']}
        both = [w for w in doc['warnings'] for c in carried if w.startswith(c + ' ')]
        res.check(not both, 'checkpoint from a package: no field both carried and said to be missing', repr(both))
        for k, v in package.items():
            if v is None and k in back:
                # A None kept at its own key is said to be None, not carried.
                res.check(k not in carried and any(w.startswith(k + ' is None in the source') for w in doc['warnings']),
                          'checkpoint from a package: %s, None in the package, is said to be None' % k,
                          '%r %r' % (doc['carried'], doc['warnings']))
        info = back.get('additional_info', {})
        had = original.get('additional_info') or {}
        empty = [k for k, v in info.items() if v is None and k not in had]
        res.check(not empty, 'checkpoint from a package: no None entry the source did not have in additional_info',
                  '%r (carried %r)' % (info, doc['carried']))
        res.check(all(('additional_info/' + k) in carried or 'additional_info' in carried for k in info),
                  'checkpoint from a package: what additional_info holds is said to be carried', repr(doc['carried']))

    # 2. --class-names: the spaces around a name are not part of it; an empty name is refused.
    dest = os.path.join(out, 'pw_names.pth')
    r, _ = convert('state_dict.pth', '--to', 'inference', '-o', dest, '--class-names', ' cat, dog ,\tbig bird')
    if r.returncode == 0:
        res.check(torch.load(dest, weights_only=False)['class_names'] == ['cat', 'dog', 'big bird'],
                  '--class-names "cat, dog": names trimmed', repr(torch.load(dest, weights_only=False)['class_names']))
    for bad in ('cat,,dog', 'cat, ', ' , dog'):
        dest = os.path.join(out, 'pw_bad_names.pth')
        r, _ = convert('state_dict.pth', '--to', 'inference', '-o', dest, '--class-names', bad, expect_ok=False)
        res.check(r.returncode == 1 and '--class-names' in r.stderr and 'empty' in r.stderr and
                  len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(dest),
                  '--class-names %r: an empty name refused with one line, nothing written' % bad, r.stderr)

    # 3. A numpy mean/std written as a tensor is said to be, with the dtype torch loads.
    torch.manual_seed(11)
    net = SimpleNN(10, 50, 2).eval()
    srcnp = os.path.join(out, 'pw_numpy.pth')
    torch.save({'model_state_dict': net.state_dict(), 'input_mean': np.linspace(0, 1, 10, dtype=np.float32),
                'input_std': np.full(10, 0.5, dtype=np.float64), 'class_names': ['a', 'b']}, srcnp)
    dest = os.path.join(out, 'pw_numpy_inf.pth')
    r, doc = convert(srcnp, '--to', 'inference', '-o', dest)
    if r.returncode == 0:
        got = torch.load(dest, weights_only=False)
        theirs = torch.load(srcnp, weights_only=False)
        for k in ('input_mean', 'input_std'):
            res.check(isinstance(got[k], torch.Tensor) and np.array_equal(got[k].numpy(), theirs[k]),
                      'inference: %s written as a tensor of the same values' % k, repr(got[k]))
        first = next((k for k in theirs if isinstance(theirs[k], np.ndarray)), None)
        said = [w for w in doc['warnings'] if 'numpy.ndarray' in w]
        res.check(len(said) == 1 and ("'%s'" % first) in said[0] and
                  str(got[first].dtype) in said[0] and 'weights-only' in said[0],
                  'inference: numpy arrays written as tensors are said to be (with the first one\'s torch dtype)',
                  repr(doc['warnings']))

    # 4. Mean/std lengths (README): a 1-value std is broadcast over the features, as torch's
    # (x - mean) / std and torchvision's Normalize do; 10 means against 2 stds are not applied, with a note.
    row = [0.1 * i - 0.3 for i in range(1, 11)]
    x = torch.tensor([row], dtype=torch.float64)
    mean = [0.05 * i for i in range(10)]
    for std, applied in (([0.5], True), ([0.5, 0.25], False)):
        dest = os.path.join(out, 'pw_std%d.pth' % len(std))
        torch.save({'model_state_dict': net.state_dict(), 'model_config': CONFIG,
                    'preprocessing': {'mean': mean, 'std': std}}, dest)
        p = subprocess.run([ckpt, 'predict', dest, '--input', ','.join(repr(v) for v in row), '--json'],
                           capture_output=True, text=True, timeout=120)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            doc = {}
        with torch.no_grad():
            xin = (x - torch.tensor(mean, dtype=torch.float64)) / torch.tensor(std, dtype=torch.float64) if applied else x
            want = net(xin.float())[0].tolist()
        text = json.dumps(doc)
        outputs = next((v for v in _find_lists(doc, 'logits')), None) or next((v for v in _find_lists(doc, 'outputs')), None)
        res.check(p.returncode == 0 and outputs is not None and len(outputs) == 2 and
                  all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(outputs, want)) and
                  (applied or 'differ in length' in text),
                  'predict: mean of 10 with std of %d %s' % (len(std), 'broadcast and applied' if applied else
                                                              'not applied, with a note'),
                  '%s %s, torch %r' % (p.stderr.strip(), text[:600], want))


def _find_lists(doc, key):
    """Every list of numbers under `key` anywhere in a JSON document (the first sample's outputs)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key and isinstance(v, list) and v and all(isinstance(n, (int, float)) for n in v):
                yield v
            elif k == key and isinstance(v, list) and v and isinstance(v[0], list):
                yield v[0]
            else:
                yield from _find_lists(v, key)
    elif isinstance(doc, list):
        for v in doc:
            yield from _find_lists(v, key)
def json_values(res, convert, ckpt, fx, out):
    """Integers past 64 bits in what the tool writes as JSON (the inference sidecar, safetensors
    __metadata__) are plain numbers, byte for byte as json.dumps writes them, and come back exact;
    a shard index's metadata reads as json.load gives it, and `show` finds it by info's name."""
    d = os.path.join(fx, 'json_values')

    # 1. The inference sidecar: model_config as json.dumps writes it.
    src = os.path.join(d, 'bigcfg.pth')
    want = torch.load(src, weights_only=False)
    dest = os.path.join(out, 'jv_bigcfg_inf.pth')
    r, doc = convert(src, '--to', 'inference', '-o', dest)
    if r.returncode == 0:
        sidecar = os.path.join(out, 'jv_bigcfg_inf_metadata.json')
        with open(sidecar) as f:
            text = f.read()
        got = json.loads(text)
        res.check(got.get('model_config') == want['model_config'] and
                  all(type(got['model_config'][k]) is int for k in want['model_config']),
                  'sidecar: integers past 64 bits read back by json.load as the same ints',
                  repr(got.get('model_config')))
        res.check(json.dumps(want['model_config'], indent=2).replace('\n', '\n  ') in text and '__int__' not in text,
                  'sidecar: model_config written as json.dumps writes it', text[:400])

    # 2. safetensors __metadata__: JSON text json.loads reads as the ints; back to a checkpoint, the ints.
    src = os.path.join(d, 'bigint.pth')
    want = torch.load(src, weights_only=False)
    st = os.path.join(out, 'jv_bigint.safetensors')
    r, doc = convert(src, '--to', 'safetensors', '-o', st)
    if r.returncode == 0:
        meta = read_safetensors(st)[1] or {}
        for k in ('seed', 'u', 'neg', 'nested'):
            text = meta.get(k, '')
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            res.check(value == want[k] and text == json.dumps(want[k], separators=(',', ':')),
                      'safetensors __metadata__/%s: %s as json.dumps writes it' % (k, want[k]), repr(text))
        back = os.path.join(out, 'jv_bigint_back.pth')
        r, doc = convert(st, '--to', 'checkpoint', '-o', back)
        if r.returncode == 0:
            info = torch.load(back, weights_only=False).get('additional_info', {})
            info = info.get('safetensors_metadata', info)  # the source's __metadata__, kept together
            for k in ('seed', 'u', 'neg', 'nested'):
                res.check(info.get(k) == want[k] and type(info.get(k)) is type(want[k]),
                          'safetensors -> checkpoint: %s comes back as %r' % (k, want[k]), repr(info.get(k)))
        r = subprocess.run([ckpt, 'info', '--json', st], capture_output=True, text=True, timeout=60)
        if res.check(r.returncode == 0, 'info --json of the safetensors file', r.stderr.strip()):
            shown = json.loads(r.stdout)['metadata']['__metadata__']
            res.check(shown.get('seed') == json.dumps(want['seed'], separators=(',', ':')),
                      'info --json: __metadata__ strings stay the strings the file holds', repr(shown.get('seed')))

    # 3. A shard index's metadata, as json.load reads it; show finds it by the name info prints.
    index = os.path.join(d, 'hf', 'pytorch_model.bin.index.json')
    with open(index) as f:
        want = json.load(f)['metadata']
    r = subprocess.run([ckpt, 'info', '--json', index], capture_output=True, text=True, timeout=60)
    if res.check(r.returncode == 0, 'info --json of a shard index', r.stderr.strip()):
        doc = json.loads(r.stdout)
        got = doc['metadata'].get('__metadata__', {})
        # info --json's stable form tags ints past 64 bits; everything else is json.load's value.
        tagged = {k: ({'__int__': str(v)} if type(v) is int and not -2 ** 63 <= v < 2 ** 63 else v)
                  for k, v in want.items()}
        res.check(got == tagged and list(got) == list(want) and list(got['zeta']) == list(want['zeta']),
                  'shard index metadata as json.load reads it, in its order', repr(got))
        res.check(type(got.get('total_size')) is int, 'shard index total_size is a number', repr(got.get('total_size')))
        # Globals: one entry each, uses summed over the shards (each shard read alone), the offset
        # the first shard's (in weight_map order) that names it.
        per_shard = []
        with open(index) as f:
            shards = list(dict.fromkeys(json.load(f)['weight_map'].values()))
        for shard in shards:
            rs = subprocess.run([ckpt, 'info', '--json', os.path.join(d, 'hf', shard)], capture_output=True,
                                text=True, timeout=60)
            per_shard.append((shard, json.loads(rs.stdout)['globals'] if rs.returncode == 0 else []))
        names = [g['name'] for g in doc['globals']]
        res.check(len(names) == len(set(names)) and len(names) > 0, 'shard index: each global listed once', repr(names))
        for g in doc['globals']:
            counts = [sum(h['count'] for h in gl if h['name'] == g['name']) for _, gl in per_shard]
            first = next(shard for (shard, gl), c in zip(per_shard, counts) if c)
            offset = next(h['first_offset'] for h in dict(per_shard)[first] if h['name'] == g['name'])
            res.check(g['count'] == sum(counts) and g['first_offset'] == offset,
                      'shard index: global %s named %d times, first in %s' % (g['name'], sum(counts), first), repr(g))
    r = subprocess.run([ckpt, 'info', index], capture_output=True, text=True, timeout=60)
    for k, v in want.items():
        shown = repr(v) if not isinstance(v, str) else None
        if shown is not None and len(shown) < 60:
            res.check('metadata/%s: %s' % (k, shown) in r.stdout, 'info: metadata/%s as Python prints it' % k, r.stdout[-600:])
        rs = subprocess.run([ckpt, 'show', index, 'metadata/' + k], capture_output=True, text=True, timeout=60)
        res.check(rs.returncode == 0 and rs.stdout.strip().endswith(': ' + repr(v)),
                  'show metadata/%s: %r' % (k, v), (rs.stdout + rs.stderr).strip())
    rs = subprocess.run([ckpt, 'show', index, 'metadata/zeta/m'], capture_output=True, text=True, timeout=60)
    res.check(rs.returncode == 0 and rs.stdout.strip().endswith(': ' + repr(want['zeta']['m'])),
              'show metadata/zeta/m finds a key within an entry', (rs.stdout + rs.stderr).strip())
    # 4. The index's metadata goes into a safetensors file's __metadata__: text as it is, other
    # values as JSON text that json.loads reads back to the index's value. Not total_size: the
    # index's bookkeeping of its shards' bytes, which transformers writes only into an index (a file
    # it saves unsharded carries {"format": "pt"} alone); the one file written is not that size.
    dest = os.path.join(d, 'from_index.safetensors')
    r = subprocess.run([ckpt, 'convert', index, '--to', 'safetensors', '-o', dest, '--force'], capture_output=True,
                       text=True, timeout=120)
    if res.check(r.returncode == 0, 'convert a shard index --to safetensors', r.stderr.strip()):
        with open(dest, 'rb') as f:
            header = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
        meta = header.get('__metadata__', {})
        for k, v in want.items():
            got = meta.get(k)
            if k == 'total_size':
                res.check(got is None, 'safetensors __metadata__ does not claim the index total_size', repr(meta))
                continue
            res.check(got == v if isinstance(v, str) else (got is not None and json.loads(got) == v),
                      'safetensors __metadata__ keeps the index metadata %s' % k, repr(got))


if __name__ == '__main__':
    sys.exit(main())
