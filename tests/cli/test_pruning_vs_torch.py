#!/usr/bin/env python3
"""Models pruned with torch.nn.utils.prune and saved before prune.remove, judged by PyTorch 1.13 on
inputs written here (a module holds X_orig, a parameter, and X_mask, a buffer, instead of X):
- `ckpt info` says the model is pruned and which parameters, counts the parameters as
  model.parameters() does (X_orig once, the mask not at all), and how much of each is masked as
  torch's (mask == 0).float().mean() says; --json likewise;
- `ckpt predict` runs a pruned MLP state dict, full models (MLP, CNN pruned twice: a
  PruningContainer, and global_unstructured) and an inference package with the effective weight
  X_orig * X_mask: the logits of torch's forward of the pruned model, hooks active;
- `ckpt convert --apply-pruning` writes what prune.remove leaves: X = X_orig * X_mask bit for bit
  (-0.0 where a negative weight is masked, float16 too), which the unpruned architecture loads with
  load_state_dict(strict=True); a state dict becomes a full model only with it;
- the pickled pruning hooks of a full model are said to stop torch.load(weights_only=True)."""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.utils.prune as prune  # noqa: E402

ATOL = 1e-5


def run(ckpt, *args):
    p = subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def pruned_mlp():
    torch.manual_seed(0)
    m = mlp()
    prune.l1_unstructured(m[0], 'weight', amount=0.5)
    prune.random_structured(m[2], 'weight', amount=0.34, dim=0)
    return m


def pruned_cnn():
    torch.manual_seed(1)
    m = cnn()
    prune.ln_structured(m[0], 'weight', amount=0.5, n=2, dim=0)
    prune.l1_unstructured(m[0], 'weight', amount=0.3)  # pruned twice: a PruningContainer
    prune.global_unstructured([(m[0], 'bias'), (m[3], 'weight')], pruning_method=prune.L1Unstructured, amount=0.4)
    return m


def parameter_count(m):
    return sum(p.numel() for p in m.parameters())


def pruned_names(m):
    return [k[:-len('_orig')] for k in m.state_dict() if k.endswith('_orig')]


def masked_fractions(m):
    return {k[:-len('_mask')]: float((v == 0).float().mean()) for k, v in m.state_dict().items() if k.endswith('_mask')}


def bits(t):
    return t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else \
        t.view(torch.int32) if t.dtype == torch.float32 else t.view(torch.int64)


def removed(m):
    """A copy of the model with prune.remove applied to every pruned parameter: torch's own result."""
    buf = io.BytesIO()
    torch.save(m, buf)  # a copy (deepcopy refuses the computed X a pruned module holds)
    buf.seek(0)
    c = torch.load(buf)
    for mod in c.modules():
        for name in [k[:-len('_orig')] for k, _ in list(mod.named_parameters(recurse=False)) if k.endswith('_orig')]:
            prune.remove(mod, name)
    return c


def check_info(r, ckpt, d, m, path, label, exact):
    code, out, err = run(ckpt, 'info', path)
    if not r.check(code == 0, label + ': info exits 0', err):
        return
    names = pruned_names(m)
    r.check('pruned with torch.nn.utils.prune: %d parameters (%s)' % (len(names), ', '.join(names)) in out,
            label + ': info says which parameters are pruned', out)
    r.check('Parameters: %d' % parameter_count(m) in out, label + ': parameters as model.parameters() counts them',
            '%d in %s' % (parameter_count(m), out))
    if not exact:
        r.check('pruning masks (X_mask) are left out' in out, label + ': the estimate says the masks are left out', out)
    for name, frac in masked_fractions(m).items():
        mask = m.state_dict()[name + '_mask']
        zeros = int((mask == 0).sum())
        r.check('Pruned:   %s %s: %.1f%% masked (%d of %d values are 0 in %s_mask)' % (
            name, list(mask.shape), 100 * frac, zeros, mask.numel(), name) in out,
            label + ': masked share of ' + name + ' as torch counts it', out)
    code, out, err = run(ckpt, 'info', '--json', path)
    if not r.check(code == 0, label + ': info --json exits 0', err):
        return
    sd = json.loads(out)['state_dict']
    r.check(sd['parameters'] == parameter_count(m), label + ': --json parameters', '%s vs %d' % (sd['parameters'], parameter_count(m)))
    got = {p['name']: p for p in sd.get('pruned', [])}
    r.check(list(got) == names, label + ': --json pruned names', repr(list(got)))
    for name, frac in masked_fractions(m).items():
        p = got.get(name, {})
        r.check(p.get('orig') == name + '_orig' and p.get('mask') == name + '_mask' and
                p.get('masked') == int((m.state_dict()[name + '_mask'] == 0).sum()) and
                abs(p.get('masked_fraction', -1) - frac) <= 1e-6, label + ': --json masked share of ' + name, repr(p))


def check_predict(r, ckpt, path, m, x, label, extra=()):
    args = ['predict', path, '--json', '--probabilities', 'none'] + list(extra)
    for row in x:
        args += ['--input', ','.join(repr(float(v)) for v in row.flatten().tolist())]
    code, out, err = run(ckpt, *args)
    if not r.check(code == 0, label + ': predict exits 0', err + out[:500]):
        return
    j = json.loads(out)
    got = torch.tensor([o['logits'] for o in j['outputs']], dtype=torch.float64)
    with torch.no_grad():
        want = m.eval()(x).double()  # the pruning hooks compute X_orig * X_mask
        unmasked = mlp() if isinstance(m[0], nn.Linear) else cnn()
        unmasked.load_state_dict({k[:-len('_orig')] if k.endswith('_orig') else k: v
                                  for k, v in m.state_dict().items() if not k.endswith('_mask')})
        ignoring = unmasked.eval()(x).double()
    worst = float((got - want).abs().max()) if got.shape == want.shape else float('inf')
    r.check(worst <= ATOL, label + ': logits of torch\'s pruned forward', 'max diff %g: %s vs %s' % (worst, got, want))
    # The test means something only where the mask changes the result.
    r.check(float((ignoring - want).abs().max()) > 1e-3, label + ': the masks change torch\'s result')


def check_apply(r, ckpt, d, m, src, label, unpruned, half=False):
    out_path = os.path.join(d, label + '_applied.pth')
    code, out, err = run(ckpt, 'convert', src, '--to', 'state-dict', '--apply-pruning', '-o', out_path, '--force')
    if not r.check(code == 0, label + ': convert --apply-pruning exits 0', err + out):
        return
    got = torch.load(out_path)
    want = removed(m).state_dict()
    r.check(list(got) == list(want), label + ': the keys prune.remove leaves, in its order', '%s vs %s' % (list(got), list(want)))
    same = all(k in got and got[k].dtype == v.dtype and got[k].shape == v.shape and torch.equal(bits(got[k]), bits(v))
               for k, v in want.items())
    r.check(same, label + ': values equal prune.remove\'s bit for bit')
    negzero = any(bool(((v == 0) & torch.signbit(v)).any()) for v in want.values() if v.is_floating_point())
    r.check(negzero, label + ': the test has a masked negative weight (-0.0 after prune.remove)')
    try:
        net = unpruned()
        if half:
            net = net.half()
        net.load_state_dict(got, strict=True)
        ok = True
    except Exception as e:  # noqa: BLE001
        ok = False
        print(e)
    r.check(ok, label + ': the unpruned architecture loads it with strict=True')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    r = Results()
    with tempfile.TemporaryDirectory() as d:
        m = pruned_mlp()
        sd_path, full_path = os.path.join(d, 'mlp_sd.pth'), os.path.join(d, 'mlp_full.pth')
        torch.save(m.state_dict(), sd_path)
        torch.save(m, full_path)
        c = pruned_cnn()
        cnn_full = os.path.join(d, 'cnn_full.pth')
        cnn_sd = os.path.join(d, 'cnn_sd.pth')
        torch.save(c, cnn_full)
        torch.save(c.state_dict(), cnn_sd)

        # 1. Recognition.
        check_info(r, a.ckpt, d, m, sd_path, 'mlp state dict', exact=False)
        check_info(r, a.ckpt, d, m, full_path, 'mlp full model', exact=True)
        check_info(r, a.ckpt, d, c, cnn_full, 'cnn full model', exact=True)
        check_info(r, a.ckpt, d, c, cnn_sd, 'cnn state dict', exact=False)
        code, out, err = run(a.ckpt, 'info', cnn_full)
        r.check('(torch\'s own classes, pickled as the modules\' hooks' in out and
                all(n in out.split('methods ')[-1].split(' (')[0] for n in ('LnStructured', 'PruningContainer', 'L1Unstructured')),
                'cnn full model: the pruning methods named, torch\'s own', out)
        r.check('weights_only=True) of PyTorch >= 2.6 would refuse it' in out and 'torch.nn.utils.prune.' in out,
                'full model: the pruning hooks are said to stop weights_only loading', out)
        code, out, err = run(a.ckpt, 'info', sd_path)
        r.check('would accept it' in out, 'state dict: weights_only loads a pruned state dict', out)

        # 2. Prediction with the effective weights.
        torch.manual_seed(5)
        x = torch.randn(4, 8)
        check_predict(r, a.ckpt, sd_path, m, x, 'mlp state dict')
        check_predict(r, a.ckpt, full_path, m, x, 'mlp full model')
        xi = torch.randn(3, 1, 8, 8)
        check_predict(r, a.ckpt, cnn_full, c, xi, 'cnn full model')
        spec = json.dumps([{'type': 'Conv2d', 'name': '0'}, {'type': 'ReLU'}, {'type': 'Flatten'},
                           {'type': 'Linear', 'name': '3'}])
        check_predict(r, a.ckpt, cnn_sd, c, xi, 'cnn state dict with a spec', ['--arch-spec', spec, '--input-shape', '1,8,8'])
        pkg = os.path.join(d, 'mlp_pkg.pth')
        code, out, err = run(a.ckpt, 'convert', sd_path, '--to', 'inference', '-o', pkg)
        if r.check(code == 0, 'inference package of the pruned state dict written', err + out):
            check_predict(r, a.ckpt, pkg, m, x, 'mlp inference package')

        # 3. --apply-pruning: prune.remove's result.
        check_apply(r, a.ckpt, d, m, sd_path, 'mlp_sd', mlp)
        check_apply(r, a.ckpt, d, m, full_path, 'mlp_full', mlp)
        check_apply(r, a.ckpt, d, c, cnn_full, 'cnn_full', cnn)
        h = pruned_mlp().half()
        half_path = os.path.join(d, 'half_sd.pth')
        torch.save(h.state_dict(), half_path)
        check_apply(r, a.ckpt, d, h, half_path, 'mlp_half', mlp, half=True)
        # Pruning is applied before the cast, as prune.remove then .half() does.
        cast_path = os.path.join(d, 'cast.pth')
        code, out, err = run(a.ckpt, 'convert', sd_path, '--to', 'state-dict', '--apply-pruning', '--dtype', 'float16',
                             '-o', cast_path)
        if r.check(code == 0, 'apply-pruning with --dtype float16 exits 0', err + out):
            got = torch.load(cast_path)
            want = removed(m).half().state_dict()
            r.check(all(torch.equal(bits(got[k]), bits(v)) for k, v in want.items()),
                    'apply-pruning then the cast: prune.remove then .half(), bit for bit')
        # A full model of the unpruned layers from a pruned state dict needs the pruning applied.
        code, out, err = run(a.ckpt, 'convert', sd_path, '--to', 'full-model', '-o', os.path.join(d, 'no.pth'))
        r.check(code != 0 and '--apply-pruning' in err, 'full model from pruned weights without --apply-pruning refused',
                err + out)
        fm = os.path.join(d, 'mlp_fm.pth')
        code, out, err = run(a.ckpt, 'convert', sd_path, '--to', 'full-model', '--apply-pruning', '-o', fm)
        if r.check(code == 0, 'full model from pruned weights with --apply-pruning', err + out):
            net = torch.load(fm)
            with torch.no_grad():
                r.check(torch.allclose(net.eval()(x), m.eval()(x), atol=ATOL, rtol=0),
                        'the full model written computes as the pruned model')
        code, out, err = run(a.ckpt, 'convert', full_path, '--to', 'full-model', '--apply-pruning', '-o',
                             os.path.join(d, 'no2.pth'))
        r.check(code != 0 and '--apply-pruning does not apply' in err, 'a module tree re-saved refuses --apply-pruning',
                err + out)
        code, out, err = run(a.ckpt, 'convert', os.path.join(d, 'mlp_sd_applied.pth'), '--to', 'state-dict',
                             '--apply-pruning', '-o', os.path.join(d, 'again.pth'))
        r.check(code == 0 and 'no parameter is pruned' in out + err, 'nothing pruned: said so', err + out)
    return r.finish()


if __name__ == '__main__':
    sys.exit(main())
