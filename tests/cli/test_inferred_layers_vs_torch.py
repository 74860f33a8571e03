#!/usr/bin/env python3
"""The Linear chain `ckpt` infers from a bare state dict, judged by torch's own forward:

- a safetensors file lists its tensors sorted by name (0, 10, 12, 2, …): the layers run in the
  names' natural order (2 before 10), said as an assumption, in predict, --to full-model and
  --to torchscript alike;
- a wrapper's prefix (DataParallel's `module.`, Lightning's `model.`, two levels `model.net.`)
  nests the chain in one container, so --to full-model writes a module tree torch loads and
  --to torchscript a module whose state_dict() keys are the file's, which load_state_dict takes;
- names that cannot nest in run order are flattened with '_' for '.', and the conversion says so.
Every model here is made by torch 1.13 in this script; every output is torch's."""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)


def close(a, b, tol=1e-5):
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


def forward(model, x):
    with torch.no_grad():
        return model(x)


def predicted(ckpt, path, x):
    """`ckpt predict --json` of the rows of x: the outputs as a tensor, and the assumptions."""
    args = ['predict', path, '--probabilities', 'none', '--json']
    for row in x.tolist():
        args += ['--input', ','.join(repr(v) for v in row)]
    r = run(ckpt, *args)
    if r.returncode != 0:
        return None, r.stderr
    d = json.loads(r.stdout)
    return torch.tensor([o['logits'] for o in d['outputs']], dtype=torch.float64), d


def check_converted(res, ckpt, src, model, x, name, tmp, keys):
    """--to full-model and --to torchscript of `src`: torch loads each, its outputs are the model's,
    and the TorchScript module's state_dict keys are `keys` (the file's own names)."""
    want = forward(model, x)
    full = os.path.join(tmp, name + '_full.pth')
    r = run(ckpt, 'convert', src, '--to', 'full-model', '-o', full)
    if res.check(r.returncode == 0, '%s: --to full-model' % name, r.stderr + r.stdout):
        m = torch.load(full).eval()
        res.check(close(forward(m, x), want), '%s: the full model torch loads computes as the original' % name)
        res.check(list(m.state_dict()) == keys, '%s: the full model keeps the file\'s names' % name, str(list(m.state_dict())))
    ts = os.path.join(tmp, name + '_ts.pt')
    r = run(ckpt, 'convert', src, '--to', 'torchscript', '-o', ts)
    if res.check(r.returncode == 0, '%s: --to torchscript' % name, r.stderr + r.stdout):
        s = torch.jit.load(ts).eval()
        res.check(close(forward(s, x), want), '%s: the TorchScript module computes as the original' % name)
        res.check(list(s.state_dict()) == keys, '%s: the TorchScript module keeps the file\'s names' % name,
                  str(list(s.state_dict())))
    return r


def check_safetensors_order(res, ckpt, tmp):
    torch.manual_seed(71)
    layers = []
    for _ in range(6):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    layers += [nn.Linear(8, 3)]
    model = nn.Sequential(*layers).eval()
    pth, st = os.path.join(tmp, 'seq13.pth'), os.path.join(tmp, 'seq13.safetensors')
    torch.save(model.state_dict(), pth)
    r = run(ckpt, 'convert', pth, '--to', 'safetensors', '-o', st)
    if not res.check(r.returncode == 0, 'seq13: --to safetensors', r.stderr):
        return
    x = torch.rand(4, 8, generator=torch.Generator().manual_seed(72))
    for path in (pth, st):
        got, d = predicted(ckpt, path, x)
        if res.check(got is not None, 'predict %s' % os.path.basename(path), str(d)):
            res.check(close(got, forward(model, x)), 'predict %s: 13 layers run in the model\'s order' %
                      os.path.basename(path), '%s, torch %s' % (got, forward(model, x)))
    # This tool's own file records the state dict's order: the layers run in it, nothing assumed.
    got, d = predicted(ckpt, st, x)
    res.check(d is not None and not any('natural order' in a for a in d.get('architecture', {}).get('assumptions', [])),
              'predict seq13.safetensors (order recorded): no order assumed', str(d)[:400])
    # Another writer's file holds the names sorted (0, 1, 10, 11, 12, 2, ...) and no order: they run
    # in the names' natural order, and that is said as an assumption.
    other = os.path.join(tmp, 'seq13_other.safetensors')
    without_recorded_order(st, other)
    got, d = predicted(ckpt, other, x)
    if res.check(got is not None, 'predict seq13_other.safetensors', str(d)):
        res.check(close(got, forward(model, x)), 'predict seq13_other.safetensors: 13 layers in natural order',
                  '%s, torch %s' % (got, forward(model, x)))
    res.check(d is not None and any('natural order' in a for a in d.get('architecture', {}).get('assumptions', [])),
              'predict seq13_other.safetensors: the order is said as an assumption', str(d)[:400])
    check_converted(res, ckpt, other, model, x, 'seq13 from safetensors', tmp, list(model.state_dict()))


def without_recorded_order(src, dst):
    """The safetensors file `src` as another writer would have written it: the same tensors, the
    names sorted, and no checkpoint_studio.key_order in __metadata__."""
    with open(src, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        data = f.read()
    header.get('__metadata__', {}).pop('checkpoint_studio.key_order', None)
    text = json.dumps(dict(sorted(header.items())), separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(dst, 'wb') as f:
        f.write(len(text).to_bytes(8, 'little') + text + data)


class Net(nn.Module):
    def __init__(self, norm=False):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.bn = nn.BatchNorm1d(16) if norm else None
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = self.fc1(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.fc2(self.relu(x))


class Wrapped(nn.Module):
    """model.net.* as a Lightning module holding a Sequential names them."""

    def __init__(self, inner):
        super().__init__()
        self.net = inner

    def forward(self, x):
        return self.net(x)


class Deep(nn.Module):
    """Linear layers at different depths: body.l1.fc, body.l2.fc, then out at the top."""

    def __init__(self):
        super().__init__()
        self.body = nn.Module()
        self.body.l1 = nn.Module()
        self.body.l1.fc = nn.Linear(10, 8)
        self.body.l2 = nn.Module()
        self.body.l2.fc = nn.Linear(8, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        return self.out(torch.relu(self.body.l2.fc(torch.relu(self.body.l1.fc(x)))))


class EncoderHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


def check_prefixes(res, ckpt, tmp):
    torch.manual_seed(73)
    x = torch.rand(5, 10, generator=torch.Generator().manual_seed(74))
    plain = Net().eval()
    normed = Net(norm=True)
    normed.train()
    for _ in range(3):  # running statistics that are not the defaults
        normed(torch.randn(32, 10))
    normed.eval()
    seq = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    seq.train()
    seq(torch.randn(32, 10))
    seq.eval()
    cases = [
        ('DataParallel', nn.DataParallel(plain), lambda sd: sd),
        ('Lightning', plain, lambda sd: {'epoch': 2, 'global_step': 20, 'pytorch-lightning_version': '1.9.0',
                                         'state_dict': collections.OrderedDict(('model.' + k, v) for k, v in sd.items())}),
        ('DataParallel with BatchNorm1d', nn.DataParallel(normed), lambda sd: sd),
        ('two levels with BatchNorm1d', Wrapped(seq), lambda sd: collections.OrderedDict(('model.' + k, v) for k, v in sd.items())),
        ('layers at different depths', Deep().eval(), lambda sd: sd),
        ('DataParallel encoder and head', nn.DataParallel(EncoderHead().eval()), lambda sd: sd),
    ]
    for name, holder, wrap in cases:
        saved = wrap(holder.state_dict())
        path = os.path.join(tmp, name.replace(' ', '_') + '.pth')
        torch.save(saved, path)
        sd = saved['state_dict'] if 'state_dict' in saved else saved
        model = holder.module if isinstance(holder, nn.DataParallel) else holder
        got, d = predicted(ckpt, path, x)
        if res.check(got is not None, '%s: predict' % name, str(d)):
            res.check(close(got, forward(model, x)), '%s: predict as torch' % name, '%s, torch %s' % (got, forward(model, x)))
        r = check_converted(res, ckpt, path, model, x, name, tmp, list(sd))
        res.check("'_' for '.'" not in r.stdout + r.stderr, '%s: no note of flattened names' % name, r.stdout)
        # The TorchScript module takes the file's own state dict back.
        ts = os.path.join(tmp, name + '_ts.pt')
        if os.path.exists(ts):
            s = torch.jit.load(ts)
            try:
                s.load_state_dict(sd)
                ok = True
            except RuntimeError as e:
                ok = str(e)
            res.check(ok is True, '%s: load_state_dict(the file\'s state dict) on the TorchScript module' % name, str(ok))


def check_flattened(res, ckpt, tmp):
    """enc.0, mid, enc.1: 'enc' comes back after 'mid', so it cannot be one container in run order."""
    torch.manual_seed(75)
    a, b, c = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)
    sd = collections.OrderedDict([('enc.0.weight', a.weight), ('enc.0.bias', a.bias), ('mid.weight', b.weight),
                                  ('mid.bias', b.bias), ('enc.1.weight', c.weight), ('enc.1.bias', c.bias)])
    sd = collections.OrderedDict((k, v.detach().clone()) for k, v in sd.items())
    path = os.path.join(tmp, 'split.pth')
    torch.save(sd, path)
    model = nn.Sequential(a, nn.ReLU(), b, nn.ReLU(), c).eval()
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(76))
    ts = os.path.join(tmp, 'split_ts.pt')
    r = run(ckpt, 'convert', path, '--to', 'torchscript', '-o', ts)
    if res.check(r.returncode == 0, 'split names: --to torchscript', r.stderr):
        s = torch.jit.load(ts).eval()
        res.check(close(forward(s, x), forward(model, x)), 'split names: the TorchScript module computes as torch')
        res.check(list(s.state_dict()) == ['enc_0.weight', 'enc_0.bias', 'mid.weight', 'mid.bias', 'enc_1.weight', 'enc_1.bias'],
                  'split names: flattened with _', str(list(s.state_dict())))
        res.check("'_' for '.'" in r.stdout + r.stderr, 'split names: the conversion says the names changed', r.stdout + r.stderr)


def shared_groups(tensors):
    """Names grouped by the tensor they are (one storage, same offset, shape and strides), for the
    groups of more than one name, sorted."""
    groups = collections.defaultdict(list)
    for k, t in tensors:
        groups[(t.data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)].append(k)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def check_tied(res, ckpt, tmp):
    """A head tied to its input layer (fc2.weight = fc1.weight: torch.save writes one storage under
    both names). torch.jit.script keeps them one parameter; so must --to torchscript and --to
    full-model, or fine-tuning the written model trains two weights where the original had one."""
    torch.manual_seed(77)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6)).eval()
    model[2].weight = model[0].weight
    path = os.path.join(tmp, 'tied.pth')
    torch.save(model.state_dict(), path)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(78))
    # The judge: torch's own scripted module, written and read back.
    judge_path = os.path.join(tmp, 'tied_judge.pt')
    torch.jit.save(torch.jit.script(model), judge_path)
    judge = torch.jit.load(judge_path)
    want_groups = shared_groups(judge.state_dict().items())
    want_params = len(list(judge.parameters()))
    res.check(want_groups == [['0.weight', '2.weight']], 'tied: torch\'s scripted module shares the weight', str(want_groups))
    check_converted(res, ckpt, path, model, x, 'tied', tmp, list(model.state_dict()))
    ts = os.path.join(tmp, 'tied_ts.pt')
    if os.path.exists(ts):
        s = torch.jit.load(ts)
        got = shared_groups(s.state_dict().items())
        res.check(got == want_groups, 'tied: --to torchscript keeps the tied weight one tensor, as torch.jit.script does',
                  'ckpt %s, torch %s' % (got, want_groups))
        res.check(len(list(s.parameters())) == want_params, 'tied: --to torchscript has torch\'s parameter count',
                  'ckpt %d, torch %d' % (len(list(s.parameters())), want_params))
    full = os.path.join(tmp, 'tied_full.pth')
    if os.path.exists(full):
        m = torch.load(full)
        res.check(m[2].weight is m[0].weight, 'tied: --to full-model keeps one Parameter object for the tied weight')
        res.check(len(list(m.parameters())) == len(list(model.parameters())),
                  'tied: --to full-model has the original\'s parameter count',
                  'ckpt %d, torch %d' % (len(list(m.parameters())), len(list(model.parameters()))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-layers-')
    try:
        check_safetensors_order(res, a.ckpt, tmp)
        check_prefixes(res, a.ckpt, tmp)
        check_flattened(res, a.ckpt, tmp)
        check_tied(res, a.ckpt, tmp)
    finally:
        shutil.rmtree(tmp)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
