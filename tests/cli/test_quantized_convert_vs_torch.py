#!/usr/bin/env python3
"""`ckpt convert` of files holding quantized tensors judged by PyTorch: a dict of tensors that
torch.quantize_per_tensor / quantize_per_channel made (qint8, quint8, qint32, quint4x2, per-channel
with int and with float zero points, a strided view), saved by torch.save, converted --to
state-dict, checkpoint and inference: what torch.load reads back has the source's dtype, qscheme,
quantizer parameters, int_repr() and dequantize(), exactly; the plain tensors beside them too.
--dtype casts the plain floating tensors and leaves the quantized ones as they are; --to
safetensors is refused naming the quantized tensors and --drop. A quantized model's state_dict()
(eager mode's convert, quantize_dynamic of Linear layers) converted --to state-dict and checkpoint
is taken by the same quantized model's load_state_dict, which then computes what the source does;
the pickled model re-saved --to full-model computes the same too. The inputs are made here, by
torch, into a temporary folder."""
import argparse
import fnmatch
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
from results import Results  # noqa: E402
from test_convert_vs_torch import read_safetensors  # noqa: E402


def same_quantized(mine, theirs):
    """Equal as torch holds them: dtype, qscheme, quantizer parameters, raw integers, values."""
    if not mine.is_quantized or mine.dtype != theirs.dtype or mine.qscheme() != theirs.qscheme():
        return False
    if mine.shape != theirs.shape:
        return False
    if theirs.qscheme() == torch.per_tensor_affine:
        if mine.q_scale() != theirs.q_scale() or mine.q_zero_point() != theirs.q_zero_point():
            return False
    else:
        for f in ('q_per_channel_scales', 'q_per_channel_zero_points'):
            a, b = getattr(mine, f)(), getattr(theirs, f)()
            if a.dtype != b.dtype or not torch.equal(a, b):
                return False
        if mine.q_per_channel_axis() != theirs.q_per_channel_axis():
            return False
    return torch.equal(mine.int_repr(), theirs.int_repr()) and torch.equal(mine.dequantize(), theirs.dequantize())


def describe(t):
    if not t.is_quantized:
        return '%s %s' % (t.dtype, list(t.shape))
    if t.qscheme() == torch.per_tensor_affine:
        q = 'scale %r zero point %r' % (t.q_scale(), t.q_zero_point())
    else:
        q = 'scales %r zero points %r axis %d' % (t.q_per_channel_scales().tolist(),
                                                  t.q_per_channel_zero_points().tolist(), t.q_per_channel_axis())
    return '%s %s %s %s raw %r' % (t.dtype, t.qscheme(), list(t.shape), q, t.int_repr().flatten()[:6].tolist())


def source():
    torch.manual_seed(0)
    x = torch.randn(4, 6) * 3
    sd = {
        'per_tensor_quint8': torch.quantize_per_tensor(x, 0.037, 7, torch.quint8),
        'per_tensor_qint8': torch.quantize_per_tensor(x, 0.05, -3, torch.qint8),
        'per_tensor_qint32': torch.quantize_per_tensor(x, 1e-4, 12, torch.qint32),
        'per_tensor_quint4x2': torch.quantize_per_tensor(x.clamp(-1, 1), 0.13, 8, torch.quint4x2),
        'per_channel_qint8': torch.quantize_per_channel(x, torch.rand(4, dtype=torch.float64) / 10 + 0.01,
                                                        torch.tensor([0, -2, 3, 1]), 0, torch.qint8),
        'per_channel_quint8_axis1': torch.quantize_per_channel(x, torch.rand(6, dtype=torch.float64) / 10 + 0.01,
                                                               torch.arange(6), 1, torch.quint8),
        # Embedding-bag style: float scales and float zero points (per_channel_affine_float_qparams).
        'per_channel_float_qparams': torch.quantize_per_channel(x, torch.rand(4) / 10 + 0.01, torch.randn(4),
                                                                0, torch.quint8),
        'plain': torch.randn(3, 2),
        'steps': torch.tensor(11),
    }
    sd['view_t'] = sd['per_tensor_qint8'].t()  # a strided view of the same storage
    return sd


class Eager(torch.nn.Module):
    """A small model for eager-mode post-training quantization: Conv2d + ReLU + Linear."""

    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(4 * 6 * 6, 5)
        self.head = torch.nn.Linear(5, 3, bias=False)  # packed (weight, None)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.relu(self.conv(self.quant(x)))
        return self.dequant(self.head(self.fc(x.flatten(1))))


def quantized_model(seed):
    """torch.ao.quantization's prepare / calibrate / convert of Eager, its weights from `seed`."""
    torch.manual_seed(seed)
    m = Eager().eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig('fbgemm')
    p = torch.ao.quantization.prepare(m)
    for _ in range(4):
        p(torch.randn(2, 3, 8, 8))
    return torch.ao.quantization.convert(p)


class EagerLinear(torch.nn.Module):
    """Static quantization of Linear layers only: torch 1.13's pickled quantized Conv2d loads without
    its Module attributes (its __setstate__ skips them), so a re-saved full model is judged on this."""

    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.fc = torch.nn.Linear(8, 6)
        self.relu = torch.nn.ReLU()
        self.head = torch.nn.Linear(6, 3, bias=False)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.head(self.relu(self.fc(self.quant(x)))))


def linear_model(seed):
    """torch.ao.quantization's prepare / calibrate / convert of EagerLinear."""
    torch.manual_seed(seed)
    m = EagerLinear().eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig('fbgemm')
    p = torch.ao.quantization.prepare(m)
    for _ in range(4):
        p(torch.randn(5, 8))
    return torch.ao.quantization.convert(p)


class QuantizedParameter(torch.nn.Module):
    """A module whose parameter is a quantized tensor (torch pickles it by _rebuild_parameter over
    _rebuild_qtensor)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        q = torch.quantize_per_channel(torch.randn(3, 4), torch.rand(3, dtype=torch.float64) / 9 + 0.01,
                                       torch.tensor([1, 0, -1]), 0, torch.qint8)
        self.w = torch.nn.Parameter(q, requires_grad=False)


def dynamic_model(seed):
    """quantize_dynamic of Linear layers: the packed tuples without scale and zero point."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).eval()
    return torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-quantized-')
    sd = source()
    res.check(sd['per_channel_float_qparams'].qscheme() == torch.per_channel_affine_float_qparams,
              'the source holds a float-qparams per-channel tensor')
    src = os.path.join(tmp, 'quantized_sd.pth')
    torch.save(sd, src)

    def run(*args):
        return subprocess.run([a.ckpt, 'convert', src] + list(args), capture_output=True, text=True, timeout=120)

    def compare(what, got, want_sd, dtype=None):
        res.check(list(got) == list(want_sd), what + ': keys', list(got))
        for k, t in want_sd.items():
            g = got.get(k)
            if t.is_quantized:
                res.check(g is not None and same_quantized(g, t), '%s: %s' % (what, k),
                          '%s, torch saved %s' % (describe(g) if g is not None else 'missing', describe(t)))
            else:
                want = t.to(dtype) if dtype is not None and t.is_floating_point() else t
                res.check(g is not None and g.dtype == want.dtype and torch.equal(g, want), '%s: %s' % (what, k),
                          describe(g) if g is not None else 'missing')

    for target in ('state-dict', 'checkpoint', 'inference'):
        out = os.path.join(tmp, 'out_%s.pth' % target)
        r = run('--to', target, '-o', out)
        if res.check(r.returncode == 0 and os.path.exists(out), '--to ' + target, r.stdout + r.stderr):
            got = torch.load(out)  # written by ckpt from a file made here
            if target != 'state-dict':
                got = got['model_state_dict']
            compare('--to ' + target, got, sd)
            res.check(got['view_t'].stride() == sd['view_t'].stride() and
                      got['view_t'].storage_offset() == sd['view_t'].storage_offset(),
                      '--to %s: a quantized view keeps its strides' % target)
            res.check('_rebuild_qtensor' in r.stdout + r.stderr and 'weights_only' in r.stdout + r.stderr,
                      '--to %s: the plan says how quantized tensors load' % target, r.stdout + r.stderr)
            # What torch 1.13's own weights-only reader says of it: refused, as the warning says.
            try:
                torch.load(out, weights_only=True)
                res.check(False, '--to %s: torch 1.13 weights_only=True refuses _rebuild_qtensor' % target)
            except Exception as e:  # noqa: BLE001  torch's own refusal
                res.check('_rebuild_qtensor' in str(e), '--to %s: weights_only=True refusal names _rebuild_qtensor'
                          % target, str(e)[:300])

    # --dtype: plain floating tensors cast, quantized ones kept (torch's own .half() refuses them).
    out = os.path.join(tmp, 'out_fp16.pth')
    r = run('--to', 'state-dict', '--dtype', 'float16', '-o', out)
    if res.check(r.returncode == 0, '--dtype float16', r.stdout + r.stderr):
        compare('--dtype float16', torch.load(out), sd, torch.float16)
        res.check('--dtype leaves them as they are' in r.stdout + r.stderr, '--dtype: the plan says quantized stay',
                  r.stdout + r.stderr)

    # Safetensors has no quantized dtype: refused, naming them and the way out.
    out = os.path.join(tmp, 'out.safetensors')
    r = run('--to', 'safetensors', '-o', out)
    res.check(r.returncode == 1 and 'safetensors' in r.stderr and "--drop 'per_tensor_quint8'" in r.stderr and
              "--drop 'view_t'" in r.stderr and not os.path.exists(out),
              '--to safetensors refused naming the quantized tensors and --drop', r.stderr)
    # A quantized model's state_dict(): packed (weight, bias) tuples and their dtype restored, so
    # that the same quantized model (other weights) takes it by load_state_dict and then computes
    # what the source model computes, exactly.
    import warnings
    warnings.filterwarnings('ignore')
    for kind, make, x in (('eager', quantized_model, torch.randn(3, 3, 8, 8)),
                          ('dynamic', dynamic_model, torch.randn(4, 8))):
        model = make(0)
        want_out = model(x)
        msd = os.path.join(tmp, kind + '_sd.pth')
        torch.save(model.state_dict(), msd)
        for target in ('state-dict', 'checkpoint'):
            out = os.path.join(tmp, '%s_%s.pth' % (kind, target))
            r = subprocess.run([a.ckpt, 'convert', msd, '--to', target, '-o', out], capture_output=True, text=True,
                               timeout=120)
            what = '%s quantized model --to %s' % (kind, target)
            if not res.check(r.returncode == 0, what, r.stdout + r.stderr):
                continue
            got = torch.load(out)  # written by ckpt from a file made here
            if target == 'checkpoint':
                got = got['model_state_dict']
            want = model.state_dict()
            res.check(list(got) == list(want), what + ': keys as state_dict() gives them', list(got))
            fresh = make(1)
            try:
                fresh.load_state_dict(got)
                loaded = True
            except Exception as e:  # noqa: BLE001  torch's own refusal, reported
                loaded = res.check(False, what + ': load_state_dict', str(e)[:400])
            if loaded:
                res.check(torch.equal(fresh(x), want_out), what + ': outputs equal the source model\'s')
    # --drop of a packed tuple by the key torch shows ('fc._packed_params._packed_params'): the
    # tuple goes whole, and its dtype with it, which without the tuple no model reads (torch's own
    # quantized Linear fails on the missing tuple even with strict=False, the dtype kept or not).
    model = quantized_model(0)
    want = model.state_dict()
    msd = os.path.join(tmp, 'eager_drop_sd.pth')
    torch.save(want, msd)
    lone_dtype = want.copy()
    del lone_dtype['fc._packed_params._packed_params']
    lone_dtype._metadata = want._metadata  # the layers' versions: the packed form is read
    try:
        quantized_model(1).load_state_dict(lone_dtype, strict=False)
        res.check(False, 'torch: a packed dtype without its tuple fails the quantized model\'s load_state_dict')
    except KeyError as e:  # torch's own failure, the premise of dropping the dtype too
        res.check('fc._packed_params._packed_params' in str(e), 'torch: a packed dtype without its tuple is of no use',
                  str(e))
    out = os.path.join(tmp, 'eager_drop.pth')
    r = subprocess.run([a.ckpt, 'convert', msd, '--to', 'state-dict', '-o', out, '--drop',
                        'fc._packed_params._packed_params'], capture_output=True, text=True, timeout=120)
    what = '--drop of a packed tuple\'s key'
    if res.check(r.returncode == 0, what, r.stdout + r.stderr):
        got = torch.load(out)  # written by ckpt from a file made here
        expect = [k for k in want if not k.startswith('fc._packed_params.')]
        res.check(list(got) == expect, what + ': the tuple and its dtype left out, the rest as torch saved it',
                  list(got))
        for k in expect:
            g, w = got.get(k), want[k]
            if isinstance(w, tuple):
                ok = isinstance(g, tuple) and len(g) == len(w) and all(
                    (x is None and y is None) or (x is not None and y is not None and
                                                  (same_quantized(x, y) if y.is_quantized else torch.equal(x, y)))
                    for x, y in zip(g, w))
            elif isinstance(w, torch.Tensor):
                ok = isinstance(g, torch.Tensor) and (same_quantized(g, w) if w.is_quantized else torch.equal(g, w))
            else:
                ok = g == w
            res.check(ok, '%s: %s' % (what, k), repr(g)[:200])
        res.check('dropped fc._packed_params._packed_params' in r.stdout and
                  'dropped fc._packed_params.dtype' in r.stdout, what + ': the plan says what went', r.stdout)
    # Safetensors refuses the quantized ones, a packed tuple by the --drop of its key torch shows;
    # doing as it says converts, and the file holds torch's plain tensors.
    out = os.path.join(tmp, 'eager_drop.safetensors')
    r = subprocess.run([a.ckpt, 'convert', msd, '--to', 'safetensors', '-o', out], capture_output=True, text=True,
                       timeout=120)
    patterns = re.findall(r"--drop '([^']*)'", r.stderr)
    res.check(r.returncode == 1 and "--drop 'fc._packed_params.*'" in r.stderr and
              "--drop 'head._packed_params.*'" in r.stderr and not any(p.endswith('.0') for p in patterns),
              '--to safetensors: a packed tuple\'s --drop is its key', r.stderr)
    r = subprocess.run([a.ckpt, 'convert', msd, '--to', 'safetensors', '-o', out] +
                       [x for p in patterns for x in ('--drop', p)], capture_output=True, text=True, timeout=120)
    if res.check(r.returncode == 0 and patterns, '--to safetensors with the --drop it names', r.stdout + r.stderr):
        got = read_safetensors(out)[0]
        expect = {k: v for k, v in want.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        res.check(sorted(got) == sorted(expect) and all(torch.equal(got[k], v) for k, v in expect.items()),
                  '--to safetensors with the --drop it names: torch\'s plain tensors', list(got))
    # The pickled quantized model re-saved --to full-model: torch.load gives a model that computes
    # what the source computes. --dtype is refused (its float parts are not cast).
    for kind, make, x in (('static', linear_model, torch.randn(4, 8)), ('dynamic', dynamic_model, torch.randn(4, 8))):
        model = make(0)
        want_out = model(x)
        full = os.path.join(tmp, kind + '_full.pth')
        torch.save(model, full)
        out = os.path.join(tmp, kind + '_full_out.pth')
        r = subprocess.run([a.ckpt, 'convert', full, '--to', 'full-model', '-o', out], capture_output=True, text=True,
                           timeout=120)
        what = '%s quantized model re-saved --to full-model' % kind
        if res.check(r.returncode == 0, what, r.stdout + r.stderr):
            again = torch.load(out)  # written by ckpt from a model pickled here; its classes are this script's
            res.check(type(again) is type(model) and torch.equal(again(x), want_out),
                      what + ': outputs equal the source model\'s')
        r = subprocess.run([a.ckpt, 'convert', full, '--to', 'full-model', '--dtype', 'float16', '-o', out + '16'],
                           capture_output=True, text=True, timeout=120)
        res.check(r.returncode == 1 and 'quantized' in r.stderr and '--dtype' in r.stderr and
                  not os.path.exists(out + '16'), what + ' --dtype: refused', r.stdout + r.stderr)
    holder = QuantizedParameter()
    full = os.path.join(tmp, 'qparam.pth')
    torch.save(holder, full)
    r = subprocess.run([a.ckpt, 'convert', full, '--to', 'full-model', '-o', full + '.out'], capture_output=True,
                       text=True, timeout=120)
    if res.check(r.returncode == 0, 'a quantized parameter re-saved --to full-model', r.stdout + r.stderr):
        again = torch.load(full + '.out')  # written by ckpt from a module pickled here
        res.check(type(again.w) is torch.nn.Parameter and not again.w.requires_grad and same_quantized(again.w, holder.w),
                  'a quantized parameter stays a Parameter, its values and quantizer as saved', describe(again.w))
    sys.exit(res.finish())


if __name__ == '__main__':
    main()
