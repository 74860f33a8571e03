#!/usr/bin/env python3
"""Judges a TorchScript file the conversion pane wrote, with real PyTorch: torch.jit.load must load
it, every module in eval mode; its state dict must hold exactly the reference's weights with torch's
own `.to(dtype)` of each floating tensor (bit for bit); and, without a cast, it must compute what the
reference model computes on a random input of --input-shape.
REFERENCE is a pickled nn.Module (torch.save(model)), a TorchScript file of the original model, or
a package whose model_state_dict is a SimpleNN of its model_config (the seed's inference package).
--weights STATE_DICT: the weights are compared with that state dict (torch.save of a state dict)
rather than with the reference's own. --arch-file ARCH: the TorchScript file given as the
architecture, whose weights must differ from those expected (else the comparison proves nothing).
Usage: check_torchscript.py OUTPUT REFERENCE [--dtype bfloat16] [--weights SD] [--arch-file ARCH]
                            --input-shape 2,3,12,12"""
import argparse
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from simple_nn import SimpleNN  # noqa: E402


def is_torchscript(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith('/constants.pkl') for n in z.namelist())


def reference_model(path):
    if is_torchscript(path):
        return torch.jit.load(path, map_location='cpu').eval()
    obj = torch.load(path, map_location='cpu', weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj.eval()
    model = SimpleNN(**obj['model_config'])
    model.load_state_dict(obj['model_state_dict'])
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('output')
    ap.add_argument('reference')
    ap.add_argument('--dtype')
    ap.add_argument('--weights')
    ap.add_argument('--arch-file')
    ap.add_argument('--input-shape', required=True)
    a = ap.parse_args()
    failures = []

    def check(ok, what):
        print('%s %s' % ('ok' if ok else 'FAIL', what))
        if not ok:
            failures.append(what)

    got = torch.jit.load(a.output, map_location='cpu')
    check(isinstance(got, torch.jit.ScriptModule), 'a TorchScript module: %s' % type(got).__name__)
    flags = [m.training for m in got.modules()]
    check(flags and not any(flags), 'every module in eval mode: %r' % flags)
    ref = reference_model(a.reference)
    dtype = getattr(torch, a.dtype) if a.dtype else None
    source_sd = torch.load(a.weights, map_location='cpu', weights_only=True) if a.weights else ref.state_dict()
    want_sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
               for k, v in source_sd.items()}
    if a.arch_file:
        arch_sd = torch.jit.load(a.arch_file, map_location='cpu').state_dict()
        check(sorted(arch_sd) == sorted(want_sd) and
              any(not torch.equal(arch_sd[k], v) for k, v in want_sd.items() if k in arch_sd),
              'the architecture file has the same keys but other weights')
    got_sd = got.state_dict()
    check(sorted(got_sd) == sorted(want_sd), 'keys %s' % sorted(got_sd))
    for k, want in want_sd.items():
        g = got_sd.get(k)
        check(g is not None and g.dtype == want.dtype and g.shape == want.shape and torch.equal(g, want),
              '%s: %s' % (k, None if g is None else '%s %s' % (g.dtype, tuple(g.shape))))
    x = torch.rand(*[int(n) for n in a.input_shape.split(',')], generator=torch.Generator().manual_seed(5))
    if dtype is None:
        with torch.no_grad():
            y, want = got(x), ref(x)
        check(y.shape == want.shape and torch.allclose(y, want, rtol=0, atol=1e-6),
              'module(x) as the reference computes it (max diff %g)' % (y - want).abs().max().item())
    else:
        # In the cast precision, where this torch runs it on the CPU at all.
        try:
            with torch.no_grad():
                want = ref.to(dtype)(x.to(dtype))
        except RuntimeError as e:
            print('skip module(x) in %s: torch cannot run the reference (%s)' % (a.dtype, str(e).splitlines()[0]))
        else:
            with torch.no_grad():
                y = got(x.to(dtype))
            check(y.dtype == want.dtype and torch.equal(y, want), 'module(x) in %s as the reference computes it' % a.dtype)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
