#!/usr/bin/env python3
"""`ckpt predict` judged by PyTorch: for every case the generator wrote (the seed's inference
package with its normalisation, the full SimpleNN, an nn.Sequential CNN with BatchNorm in eval
mode on images, a TorchScript file, a state dict with a TorchScript architecture, a state dict
with an inferred MLP and with a spec, layer zoos), the logits and probabilities `ckpt predict
--json` prints must match PyTorch's forward within 1e-5; the architecture's source, exactness and
normalisation must be the ones expected; `--export-torchscript` must write a file that Python's
torch.jit.load runs to the same outputs; bad inputs and mismatched architectures must fail with a
message that says what is wrong."""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
import numpy as np  # noqa: E402
from results import Results  # noqa: E402

ATOL = 1e-5


def close(got, want):
    if len(got) != len(want):
        return False, 'batch %d vs %d' % (len(got), len(want))
    worst = 0.0
    for g, w in zip(got, want):
        if len(g) != len(w):
            return False, 'width %d vs %d' % (len(g), len(w))
        for a, b in zip(g, w):
            if a is None:
                return False, 'null value'
            worst = max(worst, abs(a - b))
    return worst <= ATOL, 'max |diff| %.3g' % worst


class Net(torch.nn.Module):
    """A user's class whose forward pools between its layers: the pickle carries its children, not
    its forward, so running them in order (conv, bn, relu, fc) skips the mean and gives a map."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.relu(self.bn(self.conv(x))).mean((2, 3)))


class HeadFirst(torch.nn.Module):
    """The layer registered first is applied last: its weight is not what the input meets."""
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(16, 3)
        self.body = torch.nn.Linear(8, 16)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


class DictOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(3, 2)

    def forward(self, x):
        return {'logits': self.l(x)}


class TupleOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.l(x), x.sum(1)


def image_tensor(path):
    """A PNG as ckpt reads it: RGB, [1, 3, H, W], scaled to [0, 1] (torchvision's ToTensor)."""
    from PIL import Image
    pix = torch.tensor(np.asarray(Image.open(path).convert('RGB')), dtype=torch.float64)
    return (pix.permute(2, 0, 1).unsqueeze(0) / 255).float()


def review_cases(res, run, fixtures, tmp):
    """Models the generator does not write, made here by torch and judged by it: TorchScript CNNs
    given a PNG and CSV rows, a model returning a dict, class names that do not count the outputs,
    a user class whose children in order give a map instead of one score per class."""
    fixtures = os.path.abspath(fixtures)

    def forward(model, x):
        with torch.no_grad():
            return model(x).reshape(x.shape[0], -1).double()

    # TorchScript CNNs (scripted and traced): the input shape is read from the first weight (a
    # Conv2d's [4, 3, 3, 3]: 3 channels, any size) and said as an assumption; a PNG runs at its own
    # size and a CSV row of 3*S*S values as an S x S image, as PyTorch computes them.
    torch.manual_seed(61)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    png = os.path.join(fixtures, 'predict_image_20x14.png')
    x = image_tensor(png)
    rows = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(62))
    csv = os.path.join(tmp, 'cnn_rows.csv')
    np.savetxt(csv, rows.reshape(2, -1).double().numpy(), delimiter=',', fmt='%.17g')
    for how, module in (('scripted', torch.jit.script(cnn)), ('traced', torch.jit.trace(cnn, torch.rand(1, 3, 12, 12)))):
        path = os.path.join(tmp, 'cnn_%s.pt' % how)
        module.save(path)
        r = run(path, ['--show-arch', '--json'])
        shown = json.loads(r.stdout) if r.returncode == 0 else {}
        res.check(shown.get('input_shape') == [3, -1, -1] and shown.get('exact') is True and
                  any('0.weight [4, 3, 3, 3]' in s and 'Conv2d' in s and 'TorchScript' in s
                      for s in shown.get('assumptions', [])),
                  '%s TorchScript CNN: input [3, any, any] from its first weight, said as an assumption' % how,
                  r.stdout + r.stderr)
        for what, args, inp in (('a PNG at its own size', ['--input-file', png], x),
                                ('CSV rows of 3x8x8 values', ['--input-file', csv], rows)):
            r = run(path, args + ['--json'])
            if not res.check(r.returncode == 0, '%s TorchScript CNN, %s' % (how, what), r.stderr.strip()):
                continue
            d = json.loads(r.stdout)
            want = forward(module, inp)
            ok, why = close([o['logits'] for o in d['outputs']], want.tolist())
            ok2, why2 = close([o['probabilities'] for o in d['outputs']], torch.softmax(want, 1).tolist())
            res.check(ok and ok2 and d['input_shape'] == list(inp.shape),
                      '%s TorchScript CNN, %s, as PyTorch computes it' % (how, what),
                      '%s %s input %s' % (why, why2, d['input_shape']))
    # A TorchScript MLP: its input is the first Linear's features.
    mlp = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).eval())
    path = os.path.join(tmp, 'mlp_scripted.pt')
    mlp.save(path)
    r = run(path, ['--show-arch', '--json'])
    res.check(r.returncode == 0 and json.loads(r.stdout)['input_shape'] == [6], 'TorchScript MLP: input [6] from 0.weight',
              r.stdout + r.stderr)
    # The guess is a hint: rows that do not fit it go to the model as they are, and it says.
    torch.manual_seed(64)
    head_first = torch.jit.script(HeadFirst().eval())
    path = os.path.join(tmp, 'head_first.pt')
    head_first.save(path)
    rows8 = torch.rand(2, 8, generator=torch.Generator().manual_seed(65))
    csv8 = os.path.join(tmp, 'rows8.csv')
    np.savetxt(csv8, rows8.double().numpy(), delimiter=',', fmt='%.17g')
    r = run(path, ['--input-file', csv8, '--json'])
    d = json.loads(r.stdout) if r.returncode == 0 else {}
    ok, why = close([o['logits'] for o in d.get('outputs', [])], forward(head_first, rows8).tolist())
    res.check(r.returncode == 0 and ok and d['input_shape'] == [2, 8],
              'TorchScript whose first weight is not its input layer: rows of 8 run as PyTorch runs them',
              r.stderr.strip() + why)
    wrong_name = os.path.join(tmp, 'export.safetensors')
    r = run(path, ['--export-torchscript', wrong_name])
    res.check(r.returncode == 1 and 'the name says safetensors' in r.stderr and not os.path.exists(wrong_name),
              '--export-torchscript to a .safetensors name refused', r.stderr.strip())

    # A model that returns a dict: it ran, but predict does not read a dict; a tuple's first tensor is read.
    dict_path, tuple_path = os.path.join(tmp, 'returns_dict.pt'), os.path.join(tmp, 'returns_tuple.pt')
    torch.manual_seed(63)
    torch.jit.script(DictOut().eval()).save(dict_path)
    tuple_model = torch.jit.script(TupleOut().eval())
    tuple_model.save(tuple_path)
    r = run(dict_path, ['--input', '0.5,-1,2'])
    res.check(r.returncode == 1 and 'the model ran but returned a dict (GenericDict)' in r.stderr and
              'a tuple or list whose first item is a tensor' in r.stderr and 'refused' not in r.stderr,
              'a model returning a dict: it ran, and its output is what predict cannot read', r.stderr.strip())
    r = run(tuple_path, ['--input', '0.5,-1,2', '--json'])
    want = forward(lambda t: tuple_model(t)[0], torch.tensor([[0.5, -1.0, 2.0]]))
    ok, why = close([o['logits'] for o in json.loads(r.stdout)['outputs']] if r.returncode == 0 else [], want.tolist())
    res.check(ok, 'a model returning a tuple: its first tensor, as PyTorch computes it', why + r.stderr)

    # Class names that do not count the outputs: a note (JSON and text), names only where they exist.
    torch.manual_seed(64)
    five = torch.nn.Sequential(torch.nn.Linear(3, 5)).eval()
    for names, says in ((['x', 'y', 'z'], 'the file names 3 classes but the model gives 5 outputs a sample'),
                        (['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'the file names 7 classes but the model gives 5 outputs'),
                        (['a', 'b', 'c', 'd', 'e'], None)):
        path = os.path.join(tmp, 'five_%d.pth' % len(names))
        torch.save({'model': five, 'class_names': names}, path)
        r = run(path, ['--input', '0.5,-1,2', '--json', '--top', '5'])
        if not res.check(r.returncode == 0, '%d class names for 5 outputs' % len(names), r.stderr.strip()):
            continue
        d = json.loads(r.stdout)
        want = forward(five, torch.tensor([[0.5, -1.0, 2.0]]))
        ok, why = close([o['logits'] for o in d['outputs']], want.tolist())
        labels = [t['class'] for t in d['outputs'][0]['top']]
        named = all(t['class'] == (names[t['index']] if t['index'] < len(names) else None) for t in d['outputs'][0]['top'])
        noted = any(says in n for n in d['notes']) if says else not any('class' in n for n in d['notes'])
        res.check(ok and named and noted, '%d class names for 5 outputs: %s' % (len(names), 'a note' if says else 'no note'),
                  '%s %s %r' % (why, labels, d['notes']))
        if says:
            t = run(path, ['--input', '0.5,-1,2'])
            res.check(t.returncode == 0 and ('note: ' + says) in t.stdout, '%d class names for 5 outputs: noted in text'
                      % len(names), t.stdout + t.stderr)

    # A user class whose forward pools: its children in order give [1, 8, 8, 5] for the 8x8 input
    # chosen (the Linear takes 8 features). Shown as values, as PyTorch computes that chain, with no
    # class probabilities, and a note saying the shape and that the forward probably does more.
    torch.manual_seed(65)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    net.eval()
    path = os.path.join(tmp, 'user_net.pth')
    torch.save(net, path)
    pix = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(66))
    npy = os.path.join(tmp, 'user_net_input.npy')
    np.save(npy, pix.numpy())
    r = run(path, ['--input-file', npy, '--json', '--top', '3'])
    if res.check(r.returncode == 0, 'user class giving a map: runs', r.stderr.strip()):
        d = json.loads(r.stdout)
        with torch.no_grad():
            chain = net.fc(net.relu(net.bn(net.conv(pix))))
        ok, why = close([o['logits'] for o in d['outputs']], chain.reshape(1, -1).double().tolist())
        flat = chain.reshape(-1).double().tolist()
        best = sorted(range(len(flat)), key=lambda i: -flat[i])[:3]
        values = d['probabilities_from'] == 'none' and all(o['probabilities'] == [] for o in d['outputs']) and \
            [t['index'] for t in d['outputs'][0]['top']] == best and \
            all(t['probability'] is None and t['class'] is None for t in d['outputs'][0]['top'])
        note = [n for n in d['notes'] if '[8, 8, 5]' in n]
        res.check(ok and values and d['output_shape'] == [1, 8, 8, 5] and note and 'Net' in note[0] and
                  '--arch' in note[0] and '--arch-spec' in note[0] and d['architecture']['exact'] is False,
                  'user class giving a map: its chain\'s values as PyTorch computes them, no class probabilities, '
                  'a note with the shape and the way out', '%s values=%s %r' % (why, values, d['notes']))
        t = run(path, ['--input-file', npy])
        res.check(t.returncode == 0 and 'not one score per class' in t.stdout and 'note: each sample\'s output has shape '
                  '[8, 8, 5]' in t.stdout, 'user class giving a map: said in text', t.stdout + t.stderr)
    # The same with a picture, as the review ran it: resized to 8x8, the same note.
    r = run(path, ['--input-file', png, '--json'])
    res.check(r.returncode == 0 and json.loads(r.stdout)['probabilities_from'] == 'none' and
              any('[8, 8, 5]' in n for n in json.loads(r.stdout)['notes']), 'user class giving a map: a PNG too',
              r.stdout[-600:] + r.stderr)

    # The text's input shape is what ran, as --json's input_shape says: a BatchNorm CNN saved whole,
    # whose sample size is not in its weights, given a .npy batch of 2 at 16x16.
    torch.manual_seed(67)
    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    bn.train()
    bn(torch.randn(2, 3, 16, 16))
    bn.eval()
    path = os.path.join(tmp, 'bn_full.pth')
    torch.save(bn, path)
    batch = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(68))
    npy = os.path.join(tmp, 'bn_batch.npy')
    np.save(npy, batch.numpy())
    r, t = run(path, ['--input-file', npy, '--json']), run(path, ['--input-file', npy])
    if res.check(r.returncode == 0 and t.returncode == 0, 'whole BatchNorm CNN on a .npy batch: runs', r.stderr + t.stderr):
        d = json.loads(r.stdout)
        ok, why = close([o['logits'] for o in d['outputs']], forward(bn, batch).tolist())
        shown = [l for l in t.stdout.splitlines() if l.startswith('input shape: ')]
        res.check(ok and d['input_shape'] == list(batch.shape) and shown == ['input shape: %s' % list(batch.shape)],
                  'whole BatchNorm CNN on a .npy batch: the text\'s input shape is the batch that ran, as in --json',
                  '%s json %s text %r' % (why, d['input_shape'], shown))

    # A model whose outputs are NaN (a diverged run's weights): the text says nan as torch prints
    # it (printf's "%.4f" said "-nan"), the JSON null.
    nan_path = os.path.join(tmp, 'nan_linear.pth')
    torch.save({'weight': torch.full((3, 4), float('nan')), 'bias': torch.zeros(3)}, nan_path)
    with torch.no_grad():
        torch_says = str(torch.softmax(torch.nn.functional.linear(torch.tensor([[1., 2., 3., 4.]]),
                                                                   torch.full((3, 4), float('nan'))), 1)[0, 0].item())
    r = run(nan_path, ['--input', '1,2,3,4'])
    line = next((l for l in r.stdout.splitlines() if l.startswith('sample 1:')), '')
    res.check(r.returncode == 0 and torch_says == 'nan' and line.split()[3:4] == ['nan'] and '-nan' not in r.stdout,
              'NaN probabilities printed nan, as torch prints them', r.stdout[-300:] + r.stderr)

    # Models stored in other floating types, as the review ran them: TorchScript in float16 and
    # bfloat16 computes in float32 (as a state dict's narrow weights do; this LibTorch's CPU has no
    # float16 matrix product), and said so; a float64 model, TorchScript or state dict, takes
    # float64 input and computes in float64, as it does in Python.
    torch.manual_seed(63)
    mlp = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    _ = [b.normal_() for n, b in mlp.named_buffers() if n.endswith('running_mean')]
    mlp.eval()
    x = torch.randn(2, 10, generator=torch.Generator().manual_seed(64))
    npy = os.path.join(tmp, 'dtype_rows.npy')
    np.save(npy, x.numpy())
    for name, dtype in (('float16', torch.float16), ('bfloat16', torch.bfloat16), ('float64', torch.float64)):
        stored = copy.deepcopy(mlp).to(dtype)
        # What the tool computes: float32 from the stored weights, or float64 throughout.
        compute = copy.deepcopy(stored).float() if dtype != torch.float64 else stored
        want = forward(compute, x.to(torch.float64 if dtype == torch.float64 else torch.float32)).tolist()
        files = [('TorchScript', os.path.join(tmp, 'mlp_%s.pt' % name))]
        torch.jit.script(stored).save(files[0][1])
        if dtype == torch.float64:
            files.append(('state dict', os.path.join(tmp, 'mlp_%s.pth' % name)))
            torch.save(stored.state_dict(), files[1][1])
        for kind, path in files:
            r = run(path, ['--input-file', npy, '--json'])
            d = json.loads(r.stdout) if r.returncode == 0 else {'outputs': [], 'notes': []}
            ok, why = close([o['logits'] for o in d['outputs']], want)
            noted = any(('stored as %s, computed as float32' % name) in n for n in d['notes'])
            tol_ok = ok if dtype != torch.float64 else ok and why and float(why.split()[-1]) <= 1e-12
            computes = 'float64' if dtype == torch.float64 else 'float32'  # and says so
            res.check(r.returncode == 0 and tol_ok and noted == (dtype != torch.float64) and d.get('dtype') == computes,
                      '%s in %s runs as PyTorch computes it%s' % (kind, name, ', and says so' if noted else ''),
                      '%s %s %r' % (why, r.stderr.strip(), d['notes']))


def export_says_what_it_wrote(res, run, ckpt, fixtures, tmp):
    """`--export-torchscript` always says what it wrote, with or without inputs, in text and JSON;
    where the package normalises its inputs it warns, in `convert --to torchscript`'s own words, that
    the module written does not, and that warning is true: the module gives the printed logits for
    the normalised rows, not for the rows as given."""
    fixtures = os.path.abspath(fixtures)
    pkg = os.path.join(fixtures, 'predict_package.pth')
    r = subprocess.run([ckpt, 'convert', pkg, '--to', 'torchscript', '-o', os.path.join(tmp, 'conv_pkg.pt'), '--json'],
                       capture_output=True, text=True, timeout=120)
    convert_warnings = [w for w in json.loads(r.stdout)['warnings'] if 'normalise' in w] if r.returncode == 0 else []
    if not res.check(len(convert_warnings) == 1, 'convert --to torchscript warns of the package\'s normalisation',
                     r.stdout[-400:] + r.stderr):
        return
    warning = convert_warnings[0]
    package = torch.load(pkg, map_location='cpu')
    mean = torch.tensor(package['input_mean'], dtype=torch.float64)
    std = torch.tensor(package['input_std'], dtype=torch.float64)
    rows = torch.randn(3, 10, generator=torch.Generator().manual_seed(91)) * 1.5 + 0.3
    inputs = sum((['--input', ','.join(repr(v) for v in row)] for row in rows.tolist()), [])
    for label, args in (('without inputs', []), ('with inputs', inputs)):
        for fmt in ('text', 'json'):
            dest = os.path.join(tmp, 'said_%s_%s.pt' % (label.split()[0], fmt))
            r = run(pkg, args + ['--export-torchscript', dest] + (['--json'] if fmt == 'json' else []))
            what = 'predict --export-torchscript %s (%s)' % (label, fmt)
            if not res.check(r.returncode == 0 and os.path.exists(dest), what, r.stderr.strip()):
                continue
            if fmt == 'text':
                lines = r.stdout.splitlines()
                res.check(any(l.startswith('wrote %s: ' % dest) and 'read back: 4 weights as exported' in l for l in lines)
                          and ('warning: ' + warning) in lines,
                          what + ': says what it wrote, and the normalisation warning convert gives', r.stdout[-1500:])
                continue
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                res.check(False, what + ': stdout is JSON', r.stdout[:300])
                continue
            e = doc.get('export', {})
            res.check(e.get('output') == dest and e.get('bytes') == os.path.getsize(dest) and e.get('verified') is True
                      and e.get('storages_verified') == 4 and e.get('warnings') == [warning],
                      what + ': says what it wrote, and the normalisation warning convert gives', '%r' % e)
            if args:
                # The printed logits are of the normalised rows; the module written takes rows normalised.
                module = torch.jit.load(dest)
                with torch.no_grad():
                    want = module(((rows.double() - mean) / std).float()).double().tolist()
                    raw = module(rows.float()).double().tolist()
                got = [o['logits'] for o in doc['outputs']]
                ok, why = close(got, want)
                res.check(ok and doc['normalized'] is True and not close(got, raw)[0],
                          what + ': the warning is true (the module gives these logits for normalised rows only)', why)
    # No normalisation, no warning; the line saying what was written still comes.
    dest = os.path.join(tmp, 'said_cnn.pt')
    r = run('predict_cnn.pth', ['--input-file', 'predict_images.npy', '--export-torchscript', dest])
    res.check(r.returncode == 0 and ('wrote %s: ' % dest) in r.stdout and 'warning:' not in r.stdout,
              'predict --export-torchscript with inputs, no normalisation: says what it wrote, warns of nothing',
              r.stdout[-800:] + r.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    a.ckpt = os.path.abspath(a.ckpt)
    sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
    with open(os.path.join(a.fixtures, 'expected.json')) as f:
        section = json.load(f)['__predict__']
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-predict-')

    def run(file, args):
        return subprocess.run([a.ckpt, 'predict', file] + args, capture_output=True, text=True, timeout=120,
                              cwd=a.fixtures)

    # Devices: the CPU offers the precisions this torch runs a linear layer in on the CPU (LibTorch
    # 1.13 has no float16 matrix product there); CUDA is listed as this torch sees it.
    r = subprocess.run([a.ckpt, 'devices', '--json'], capture_output=True, text=True, timeout=120)
    devices = json.loads(r.stdout)['devices'] if r.returncode == 0 else []
    res.check(r.returncode == 0, 'ckpt devices --json', r.stderr.strip())
    cpu = next((d for d in devices if d['id'] == 'cpu'), None)
    runs = []
    for dtype in ('float32', 'float16', 'bfloat16'):
        try:
            torch.nn.functional.linear(torch.ones(1, 2, dtype=getattr(torch, dtype)), torch.ones(2, 2, dtype=getattr(torch, dtype)))
            runs.append(dtype)
        except RuntimeError:
            pass
    res.check(cpu is not None and cpu['available'] and cpu['dtypes'] == runs, 'devices: the CPU offers %s' % runs,
              str(cpu))
    model_name = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')),
                      None)
    memory = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    res.check(cpu is not None and cpu['name'] == model_name and cpu['memory_bytes'] == memory,
              'devices: the CPU named as /proc/cpuinfo names it, with the machine\'s memory', str(cpu))
    cuda = [d for d in devices if d['id'].startswith('cuda')]
    if torch.cuda.is_available():
        res.check([d['id'] for d in cuda] == ['cuda:%d' % i for i in range(torch.cuda.device_count())] and
                  all(d['available'] and d['name'] == torch.cuda.get_device_name(i) for i, d in enumerate(cuda)),
                  'devices: every CUDA device, named as torch names it', str(cuda))
    else:
        res.check(len(cuda) == 1 and not cuda[0]['available'] and cuda[0]['reason'], 'devices: CUDA unavailable, with why',
                  str(cuda))
        # Asking for it anyway: refused, with the same reason, whether or not an index is given.
        c = section['cases'][0]
        reason = cuda[0]['reason'] if cuda else '?'
        for device in ('cuda', 'cuda:1'):
            r = run(c['file'], c['args'] + ['--device', device])
            res.check(r.returncode == 1 and r.stderr.startswith('ckpt: ') and device + ': ' + reason in r.stderr
                      and not r.stdout, '--device %s without CUDA: refused, saying why' % device, r.stderr.strip())
    reduced = [d for d in runs if d != 'float32']

    # Out of memory: a transposed convolution whose output is 2^30 values a sample (the most one
    # layer may give a sample), on a batch of 16384: 64 TiB. PyTorch fails to allocate it; ckpt
    # must say it ran out of memory, on which device, and what to try.
    spec = json.dumps([{'type': 'ConvTranspose2d', 'name': '0', 'in_channels': 1, 'out_channels': 1,
                        'kernel_size': [1, 1], 'stride': [32767, 32767], 'bias': False}])
    huge, four = os.path.join(tmp, 'huge_output.pth'), os.path.join(tmp, 'huge_input.npy')
    torch.save({'0.weight': torch.ones(1, 1, 1, 1)}, huge)
    np.save(four, np.ones((16384, 1, 2, 2), dtype=np.float32))
    try:
        conv = torch.nn.ConvTranspose2d(1, 1, 1, stride=32767, bias=False)
        with torch.no_grad():
            conv(torch.ones(16384, 1, 2, 2))
        torch_failed = ''
    except RuntimeError as e:
        torch_failed = str(e).splitlines()[0]
    r = run(huge, ['--arch-spec', spec, '--input-file', four])
    res.check(torch_failed and r.returncode == 1 and 'out of memory on CPU' in r.stderr and 'smaller batch' in r.stderr,
              'a model too large for memory: "out of memory on CPU", as PyTorch fails (%s)' % torch_failed[:60],
              r.stderr.strip())

    # An MLP's norm layers read from the state dict, in place, with what cannot be read said: the
    # layer list is the Sequential's own (types and widths), eps is PyTorch's default.
    seq = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                              torch.nn.Linear(16, 9), torch.nn.LayerNorm(9), torch.nn.ReLU(), torch.nn.Linear(9, 4))
    r = run('predict_mlp_norm_checkpoint.pth', ['--show-arch', '--json'])
    shown = json.loads(r.stdout) if r.returncode == 0 else {}
    width = lambda m: getattr(m, 'in_features', getattr(m, 'num_features', (getattr(m, 'normalized_shape', None) or [None])[0]))  # noqa: E731
    want = [(type(m).__name__, width(m)) for m in seq if not isinstance(m, (torch.nn.ReLU, torch.nn.Dropout))]
    got = [(l['type'], l.get('in_features', l.get('num_features', (l.get('normalized_shape') or [None])[0])))
           for l in shown.get('spec', []) if l['type'] != 'ReLU']
    relus = [i for i, l in enumerate(shown.get('spec', [])) if l['type'] == 'ReLU']
    res.check(got == want and relus == [2, 5], 'norm layers of an MLP read in place: %s' % want, '%s relu at %s' % (got, relus))
    res.check(any('eps 1e-5' in a and 'BatchNorm1d 1' in a and 'LayerNorm 5' in a for a in shown.get('assumptions', [])),
              'norm layers: the default eps said as an assumption', '%r' % shown.get('assumptions'))
    bad = os.path.join(tmp, 'norm_wrong_width.pth')
    torch.save({'0.weight': torch.zeros(16, 7), '0.bias': torch.zeros(16), '1.running_mean': torch.zeros(8),
                '1.running_var': torch.ones(8), '2.weight': torch.zeros(3, 16)}, bad)
    r = run(bad, ['--input', ','.join(['0'] * 7)])
    res.check(r.returncode == 1 and '1.running_mean normalises 8 features' in r.stderr and '16' in r.stderr,
              'a norm layer of the wrong width: refused, naming it', r.stderr.strip())

    for c in section['cases']:
        name = c['name']
        r = run(c['file'], c['args'] + ['--json', '--top', '3'])
        if not res.check(r.returncode == 0, name, r.stderr.strip()):
            continue
        doc = json.loads(r.stdout)
        got_logits = [o['logits'] for o in doc['outputs']]
        got_probs = [o['probabilities'] for o in doc['outputs']]
        ok, why = close(got_logits, c['expected']['logits'])
        res.check(ok, name + ': logits', why)
        ok, why = close(got_probs, c['expected']['probabilities'])
        res.check(ok, name + ': probabilities', why)
        res.check(doc['normalized'] == c['normalized'], name + ': normalized', str(doc['normalized']))
        if c.get('note'):
            res.check(any(c['note'] in n for n in doc['notes']), name + ': says why', '%r' % doc['notes'])
        res.check(doc['architecture']['source'] == c['source'], name + ': source', doc['architecture']['source'])
        res.check(doc['architecture']['exact'] == c['exact'], name + ': exact', str(doc['architecture']['exact']))
        res.check(c['exact'] or len(doc['architecture']['assumptions']) > 0, name + ': assumptions shown')
        res.check(doc['device'] == 'cpu' and doc['latency_ms'] >= 0, name + ': device and latency')
        # Top-k: the three largest probabilities in order, named by the package's classes.
        for o, probs in zip(doc['outputs'], c['expected']['probabilities']):
            order = sorted(range(len(probs)), key=lambda i: -probs[i])[:3]
            tops = [t['index'] for t in o['top']]
            res.check(tops == order or all(abs(probs[i] - probs[j]) < ATOL for i, j in zip(tops, order)),
                      name + ': top-k order', '%s vs %s' % (tops, order))
            res.check(o['argmax'] == order[0] or abs(probs[o['argmax']] - probs[order[0]]) < ATOL, name + ': argmax')
            if c['classes']:
                res.check([t['class'] for t in o['top']] == [c['classes'][i] for i in tops], name + ': class names')
            else:
                res.check(all(t['class'] is None for t in o['top']), name + ': no class names')

        # --probabilities chosen by hand: softmax, sigmoid (each output on its own, multi-label) or
        # none (values, e.g. a regression's), applied by PyTorch to the outputs it computed.
        if c['file'] in ('predict_package.pth', 'predict_full_binary.pth', 'predict_zoo_mlp.pth') and \
                '--no-normalize' not in c['args']:
            outputs = torch.tensor(c['expected']['logits'], dtype=torch.float64)
            for how, want in (('softmax', torch.softmax(outputs, 1)), ('sigmoid', torch.sigmoid(outputs)), ('none', None)):
                r = run(c['file'], c['args'] + ['--json', '--top', '2', '--probabilities', how])
                if not res.check(r.returncode == 0, name + ': --probabilities ' + how, r.stderr.strip()):
                    continue
                d = json.loads(r.stdout)
                ok, why = close([o['logits'] for o in d['outputs']], c['expected']['logits'])
                if want is not None:
                    ok2, why2 = close([o['probabilities'] for o in d['outputs']], want.tolist())
                    ranked = [sorted(range(len(p)), key=lambda i: -p[i])[:2] for p in want.tolist()]
                else:
                    ok2 = all(o['probabilities'] == [] and all(t['probability'] is None for t in o['top'])
                              for o in d['outputs'])
                    why2 = 'probabilities given'
                    ranked = [sorted(range(len(v)), key=lambda i: -v[i])[:2] for v in c['expected']['logits']]
                tops = [[t['index'] for t in o['top']] for o in d['outputs']]
                values = all(abs(t['value'] - v[t['index']]) <= ATOL for o, v in zip(d['outputs'], c['expected']['logits'])
                             for t in o['top'])
                res.check(ok and ok2 and d['probabilities_from'] == how and tops == ranked and values,
                          name + ': --probabilities %s as PyTorch computes it' % how,
                          '%s %s from=%s top=%s want %s' % (why, why2, d['probabilities_from'], tops, ranked))
            r = run(c['file'], c['args'] + ['--probabilities', 'none'])
            res.check(r.returncode == 0 and 'outputs as values' in r.stdout and '  outputs:' in r.stdout,
                      name + ': --probabilities none in text', r.stdout + r.stderr)

        # The architecture as TorchScript, run back by Python.
        if not c['export']:
            continue
        dest = os.path.join(tmp, '%s.pt' % name.replace(' ', '_').replace('/', '_').replace(',', ''))
        r = run(c['file'], [x for x in c['args'] if x not in ('--json',)] + ['--export-torchscript', dest])
        if not res.check(r.returncode == 0 and os.path.exists(dest), name + ': export', r.stderr.strip()):
            continue
        module = torch.jit.load(dest, map_location='cpu')
        # As torch.jit.script writes it: every module has its `training` flag, saved in eval mode,
        # so that torch.jit.freeze takes it as it is.
        flags = [getattr(m, 'training', None) for m in module.modules()]
        res.check(flags and all(f is False for f in flags), name + ': exported modules in eval mode', repr(flags))
        try:
            torch.jit.freeze(module)
        except Exception as e:
            res.check(False, name + ': torch.jit.freeze of the export', str(e).splitlines()[0])
        x = torch.tensor(c['model_input'], dtype=getattr(torch, c['model_input_dtype']))
        with torch.no_grad():
            y = module(x)
        got = y.reshape(x.shape[0], -1).double().tolist()
        ok, why = close(got, c['expected']['logits'])
        res.check(ok, name + ': exported TorchScript in Python', why)
        # Reduced precision on the CPU: what PyTorch computes with the same module and input cast.
        # Where PyTorch cannot run it in that precision either, ckpt must refuse, saying so.
        for dtype in reduced:
            r = run(c['file'], c['args'] + ['--json', '--dtype', dtype])
            low = torch.jit.load(dest, map_location='cpu').eval().to(getattr(torch, dtype))
            xl = x.to(getattr(torch, dtype)) if x.is_floating_point() else x
            try:
                with torch.no_grad():
                    want = low(xl).reshape(x.shape[0], -1).double().tolist()
            except RuntimeError as e:
                res.check(r.returncode == 1 and dtype in r.stderr and 'float32' in r.stderr,
                          name + ': --dtype %s refused as PyTorch refuses it (%s)' % (dtype, str(e).splitlines()[-1][:80]),
                          r.stderr.strip())
                continue
            if not res.check(r.returncode == 0, name + ': --dtype ' + dtype, r.stderr.strip()):
                continue
            doc = json.loads(r.stdout)
            got = [o['logits'] for o in doc['outputs']]
            worst = max(abs(u - v) for g, w in zip(got, want) for u, v in zip(g, w))
            res.check(doc['dtype'] == dtype and worst <= 1e-6 * max(1.0, max(abs(v) for w in want for v in w)),
                      name + ': --dtype %s as PyTorch computes it (%.2g)' % (dtype, worst))

        # The same export through `ckpt convert --to torchscript`, with the case's architecture options.
        arch_args = []
        for i, arg in enumerate(c['args']):
            if arg in ('--arch', '--arch-spec', '--activation') and i + 1 < len(c['args']):
                arch_args += [arg, c['args'][i + 1]]
        converted = dest[:-3] + '_converted.pt'
        p = subprocess.run([a.ckpt, 'convert', c['file'], '--to', 'torchscript', '-o', converted] + arch_args,
                           capture_output=True, text=True, timeout=120, cwd=a.fixtures)
        if res.check(p.returncode == 0 and os.path.exists(converted), name + ': convert --to torchscript', p.stderr.strip()):
            module = torch.jit.load(converted, map_location='cpu').eval()
            with torch.no_grad():
                y = module(x)
            ok, why = close(y.reshape(x.shape[0], -1).double().tolist(), c['expected']['logits'])
            res.check(ok, name + ': converted TorchScript in Python', why)

    # A model of one input size gets an image of another resized, and says so.
    r = run('predict_cnn_package.pth', ['--input-file', 'predict_image_20x14.png', '--json'])
    res.check(r.returncode == 0 and any('resized to the model\'s input size 12x12' in n for n in json.loads(r.stdout)['notes']),
              'an image of another size is resized, with a note', r.stdout[-400:] + r.stderr)

    # A model that takes any size, but not one as small as the picture: resized to its chosen size.
    r = run('predict_cnn_pooled.pth', ['--input-file', 'predict_image_6x6.png', '--json'])
    res.check(r.returncode == 0 and any('was resized to the model\'s input size 224x224' in n for n in json.loads(r.stdout)['notes']),
              'a picture too small for the layers is resized to the chosen size', r.stdout[-400:] + r.stderr)

    # Text output names the classes and the normalisation.
    c = section['cases'][0]
    r = run(c['file'], c['args'])
    res.check(r.returncode == 0 and 'Class ' in r.stdout and 'normalized: yes' in r.stdout and 'latency' in r.stdout,
              'text output', r.stdout + r.stderr)
    r = run('predict_cnn.pth', ['--show-arch', '--json'])
    shown = json.loads(r.stdout) if r.returncode == 0 else {}
    res.check(shown.get('input_shape') == [3, 12, 12] and shown.get('exact') is True, '--show-arch: CNN input shape found',
              r.stdout + r.stderr)

    for e in section['errors']:
        r = run(e['file'], e['args'])
        res.check(r.returncode == 1 and all(m in r.stderr for m in e['message']) and r.stderr.startswith('ckpt: ')
                  and 'terminate' not in r.stderr, 'error: ' + e['name'], r.stderr.strip())
    # Every fixture, hostile ones included, and the real-world corpus when present: an architecture
    # or an error line, never a crash (--show-arch reads the file and resolves, no LibTorch).
    corpus = os.path.join(HERE, '..', '..', '..', 'shared', 'corpus', 'files')
    files = [os.path.join(a.fixtures, f) for f in sorted(os.listdir(a.fixtures))]
    if os.path.isdir(corpus):
        files += [os.path.join(corpus, f) for f in sorted(os.listdir(corpus))]
    for path in files:
        if not os.path.isfile(path) or path.endswith(('.json', '.npy', '.csv', '.png', '.txt')) or \
                os.path.getsize(path) > 200 << 20:
            continue
        r = subprocess.run([a.ckpt, 'predict', path, '--show-arch'], capture_output=True, text=True, timeout=120)
        res.check(r.returncode == 0 or (r.returncode == 1 and r.stderr.startswith('ckpt: ')),
                  '--show-arch on %s' % os.path.basename(path), 'exit %d %s' % (r.returncode, r.stderr[:300]))

    # An export never replaces a file without --force, never writes over an input.
    r = run('predict_package.pth', ['--input', ','.join(['0'] * 10), '--probabilities', 'logits'])
    res.check(r.returncode == 2 and '--probabilities' in r.stderr, '--probabilities names what it takes', r.stderr.strip())
    existing = os.path.join(tmp, 'existing.pt')
    with open(existing, 'wb') as f:
        f.write(b'keep')
    r = run('predict_cnn.pth', ['--export-torchscript', existing])
    res.check(r.returncode == 1 and open(existing, 'rb').read() == b'keep', 'export keeps an existing file', r.stderr)
    # Written as conversions are: to a temporary file, read back, then renamed; the summary says how
    # many weights were found again as exported (those of the model's state dict).
    fresh = os.path.join(tmp, 'fresh.pt')
    r = run('predict_cnn.pth', ['--export-torchscript', fresh])
    want = len(torch.load(os.path.join(a.fixtures, 'predict_cnn.pth'), map_location='cpu').state_dict())
    res.check(r.returncode == 0 and ('read back: %d weights as exported' % want) in r.stdout and
              not [f for f in os.listdir(tmp) if f.startswith('.fresh.pt') or f.startswith('fresh.pt.')],
              'export is read back (%d weights) and leaves no temporary file' % want, r.stdout + r.stderr)
    r = run('predict_cnn.pth', ['--export-torchscript', 'predict_cnn.pth', '--force'])
    res.check(r.returncode == 1 and 'input' in r.stderr, 'export never overwrites its input', r.stderr)
    rows = os.path.join(tmp, 'rows.csv')
    shutil.copy(os.path.join(a.fixtures, 'predict_rows.csv'), rows)
    r = run('predict_package_preprocessing.pth', ['--input-file', rows, '--export-torchscript', rows, '--force'])
    with open(rows) as f, open(os.path.join(a.fixtures, 'predict_rows.csv')) as g:
        res.check(r.returncode == 1 and 'input' in r.stderr and f.read() == g.read(),
                  'export never overwrites the --input-file', r.stderr)
    export_says_what_it_wrote(res, run, a.ckpt, a.fixtures, tmp)
    review_cases(res, run, a.fixtures, tmp)
    input_errors_name_their_source(res, run, a.fixtures, tmp)
    export_in_run_precision(res, run, tmp)
    return res.finish()


def export_in_run_precision(res, run, tmp):
    """--dtype bfloat16 with --export-torchscript: the module written holds the weights in the
    precision that ran, and torch.jit.load of it gives exactly the logits printed."""
    out = os.path.join(tmp, 'bf16.pt')
    row = [float(i) for i in range(1, 11)]
    r = run('predict_state_dict.pth', ['--input', ','.join(map(str, row)), '--dtype', 'bfloat16', '--json',
                                       '--export-torchscript', out, '--force'])
    if not res.check(r.returncode == 0, 'predict --dtype bfloat16 --export-torchscript', r.stderr):
        return
    printed = json.loads(r.stdout)['outputs'][0]['logits']
    m = torch.jit.load(out)
    dtypes = {p.dtype for p in m.parameters()}
    with torch.no_grad():
        got = m(torch.tensor([row]).bfloat16())[0].float().tolist()
    res.check(dtypes == {torch.bfloat16} and got == printed,
              'the export holds the precision that ran and gives the logits printed',
              'dtypes %r, torch %r, printed %r' % (dtypes, got, printed))


def input_errors_name_their_source(res, run, fixtures, tmp):
    """Rows of the wrong width name the file (or --input) they came from; a .npy header's bad field
    is quoted in a few dozen characters, not whole (100 KB of '(' in one line of stderr)."""
    import numpy as np
    four = os.path.join(tmp, 'four.csv')
    with open(four, 'w') as f:
        f.write('1,2,3,4\n')
    width = torch.load(os.path.join(fixtures, 'predict_state_dict.pth'))['fc1.weight'].shape[1]
    r = run('predict_state_dict.pth', ['--input-file', four])
    res.check(r.returncode == 1 and r.stderr.startswith('ckpt: %s: ' % four) and 'takes %d' % width in r.stderr,
              'a CSV of the wrong width names the file', r.stderr)
    r = run('predict_state_dict.pth', ['--input', '1,2,3'])
    res.check(r.returncode == 1 and '--input: ' in r.stderr, 'rows of the wrong width name --input', r.stderr)
    deep = os.path.join(tmp, 'deep.npy')
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + '(' * 100000 + "), }"
    header += ' ' * (-(len(header) + 13) % 64) + '\n'
    with open(deep, 'wb') as f:
        f.write(b'\x93NUMPY\x02\x00' + len(header).to_bytes(4, 'little') + header.encode())
    try:
        np.load(deep)
        numpy_refuses = False
    except Exception:
        numpy_refuses = True
    r = run('predict_state_dict.pth', ['--input-file', deep])
    res.check(numpy_refuses and r.returncode == 1 and deep in r.stderr and len(r.stderr) < 500,
              'a malformed .npy header is refused with a short quote of it', '%d bytes: %s' % (len(r.stderr), r.stderr[:300]))


if __name__ == '__main__':
    sys.exit(main())
