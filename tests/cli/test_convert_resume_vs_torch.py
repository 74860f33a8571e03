#!/usr/bin/env python3
"""`ckpt convert` for a researcher who resumes training from what it wrote, judged by PyTorch 1.13:
a training checkpoint converted --to checkpoint keeps the scheduler, GradScaler, RNG states, EMA
weights and the script's other entries under their own keys, and the model, optimizer, scheduler,
scaler, torch and numpy RNG states load from it and continue exactly as from the source; numpy
arrays of types torch 1.13 has no tensor for and an argparse.Namespace are kept in forms it loads;
quantized inputs whose weights are packed in torch.classes objects (a dynamic LSTM) are refused
naming the file and the reason before any plan, and the pickled model is re-saved whole; sizes count each
storage once, as torch.save writes it; a package's root mean/std/image_size become the inference
package's preprocessing; and the way out offered for a full model is one that works. Every file
written is loaded back with torch."""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from results import Results  # noqa: E402
from test_convert_vs_torch import load_weights_only, same_tensor, spec_of  # noqa: E402


class QM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 12)
        self.mid = nn.Linear(12, 12)
        self.head = nn.Linear(12, 50, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x):
        return self.head(torch.relu(self.mid(self.emb(x))))


def make_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def train_step(model, opt, sched, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    res = Results()
    out = tempfile.mkdtemp(prefix='ckpt-convert-resume-')
    ckpt = a.ckpt

    def run(*args):
        return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120)

    def convert(src, *args):
        r = run('convert', src, *args, '--json')
        doc = None
        if r.returncode == 0:
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                pass
        return r, doc

    def resume():
        # --- 1. A training checkpoint as a training script writes it --------------------------------
        torch.manual_seed(0)
        np.random.seed(3)
        model = make_net()
        ema = copy.deepcopy(model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
        losses = [train_step(model, opt, sched, x, y) for _ in range(3)]
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(0.9).add_(pm, alpha=0.1)
        # An enabled GradScaler's state_dict (torch on CPU only makes disabled ones, whose state is {}).
        scaler_sd = {'scale': 1024.0, 'growth_factor': 2.0, 'backoff_factor': 0.5, 'growth_interval': 2000,
                     '_growth_tracker': 3}
        np.random.rand(5)  # the numpy state mid-stream, with a position that is not 624
        source = {'epoch': 3, 'global_step': 12, 'model_state_dict': model.state_dict(),
                  'ema_state_dict': ema.state_dict(), 'optimizer_state_dict': opt.state_dict(),
                  'scheduler': sched.state_dict(), 'scaler': scaler_sd, 'train_loss': losses,
                  'val_acc': torch.tensor(61.25), 'best_acc': 0.5,
                  'args': argparse.Namespace(lr=0.01, batch_size=8, arch='net', data='/data/x'),
                  'rng_state': torch.get_rng_state(), 'np_rng': np.random.get_state(),
                  'class_weights': np.array([1.0, 0.5, 2.0], dtype=np.float32),
                  'np_counts': np.array([[1, 65000], [3, 4]], dtype=np.uint16)}
        src = os.path.join(out, 'train.pth')
        torch.save(source, src)
        dest = os.path.join(out, 'train_ck.pth')
        r, doc = convert(src, '--to', 'checkpoint', '-o', dest)
        if res.check(r.returncode == 0 and doc is not None, 'convert a training checkpoint --to checkpoint', r.stderr):
            got = load_weights_only(dest)
            # Resume code reads ckpt['scheduler'], ckpt['scaler'], ...: every entry keeps its key.
            for k in source:
                res.check(k in got, 'checkpoint keeps %r at its own key' % k, '%s' % list(got))
            res.check(not doc['lost'], 'nothing of the training checkpoint is lost', repr(doc['lost']))
            res.check(all(c in doc['carried'] for c in ('scheduler', 'scaler', 'rng_state', 'np_rng', 'ema_state_dict',
                                                         'args')),
                      'the plan says each is carried under its own key', repr(doc['carried']))
            # The resume, as a training script does it, against the same resume from the source.
            want = torch.load(src, weights_only=False)

            def resume(ck):
                torch.manual_seed(123)  # what the loaded RNG state must replace
                np.random.seed(123)
                m = make_net()
                o = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.05)
                s = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)
                m.load_state_dict(ck['model_state_dict'])
                o.load_state_dict(ck['optimizer_state_dict'])
                s.load_state_dict(ck['scheduler'])
                sc = torch.cuda.amp.GradScaler(enabled=False)
                sc._enabled, sc._scale, sc._growth_tracker = True, None, None  # as on a GPU, before its first step
                sc.load_state_dict(ck['scaler'])
                torch.set_rng_state(ck['rng_state'])
                np.random.set_state(ck['np_rng'])
                e = make_net()
                e.load_state_dict(ck['ema_state_dict'])
                noise = torch.randn(4)
                npnoise = np.random.rand(4)
                loss = train_step(m, o, s, x + noise.mean(), y)
                return m, o, s, sc, e, noise, npnoise, loss

            try:
                g = resume(got)
                w = resume(want)
                res.check(all(same_tensor(p, q) for p, q in zip(g[0].state_dict().values(), w[0].state_dict().values())),
                          'resumed: the model after a step equals the source\'s resume')
                res.check(g[2].get_last_lr() == w[2].get_last_lr() and g[2].last_epoch == w[2].last_epoch,
                          'resumed: the scheduler continues where it was', '%r %r' % (g[2].get_last_lr(), w[2].get_last_lr()))
                res.check(g[3].get_scale() == 1024.0 and g[3]._init_growth_tracker == 3,
                          'resumed: GradScaler.load_state_dict takes the scaler state', repr(got['scaler']))
                res.check(same_tensor(g[5], w[5]) and g[7] == w[7], 'resumed: torch.set_rng_state gives the same draws')
                res.check(np.array_equal(g[6], w[6]), 'resumed: np.random.set_state gives the same draws',
                          '%r %r' % (g[6], w[6]))
                res.check(all(same_tensor(p, q) for p, q in zip(g[4].state_dict().values(), ema.state_dict().values())),
                          'resumed: the EMA weights load')
            except Exception as ex:  # noqa: BLE001
                res.check(False, 'resume from the converted checkpoint as from the source', repr(ex)[:400])
            # The numpy arrays: uint32/uint16 (no torch 1.13 tensor) as int64/int32 of the same values.
            np_key = got['np_rng'][1]
            res.check(isinstance(got['np_rng'], tuple) and got['np_rng'][0] == 'MT19937' and np_key.dtype == torch.int64 and
                      np.array_equal(np_key.numpy().astype(np.uint32), source['np_rng'][1]) and
                      got['np_rng'][2:] == source['np_rng'][2:],
                      'np.random.get_state() kept: its uint32 key as int64 values', repr(got['np_rng'])[:200])
            res.check(got['np_counts'].dtype == torch.int32 and
                      np.array_equal(got['np_counts'].numpy(), source['np_counts'].astype(np.int32)),
                      'a uint16 numpy array kept as int32 values', repr(got['np_counts']))
            res.check(got['class_weights'].dtype == torch.float32 and
                      np.array_equal(got['class_weights'].numpy(), source['class_weights']),
                      'a float32 numpy array kept as a tensor of its values', repr(got['class_weights']))
            res.check(any('uint32 numpy arrays' in w_ and 'int64' in w_ for w_ in doc['warnings']) and
                      any('uint16 numpy arrays' in w_ and 'int32' in w_ for w_ in doc['warnings']),
                      'the widening of unsigned arrays is said', repr(doc['warnings']))
            res.check(isinstance(got['args'], dict) and argparse.Namespace(**got['args']) == source['args'] and
                      any("'args' is an argparse.Namespace" in w_ for w_ in doc['warnings']),
                      'args kept as the dict of its fields, said so', '%r %r' % (got['args'], doc['warnings']))
            res.check(same_tensor(got['val_acc'], source['val_acc']) and got['global_step'] == 12 and
                      got['best_acc'] == 0.5, 'other entries keep their values')
            # ckpt info reads the conventions again, as in the source.
            info = run('info', dest)
            for line in ("Convention: LR scheduler state under 'scheduler'", "Convention: GradScaler state under 'scaler'",
                         "Convention: EMA weights under 'ema_state_dict'"):
                res.check(line in info.stdout, 'info on the converted checkpoint: ' + line, info.stdout[-600:])
            # Converted again: the same keys (nothing wanders into additional_info on a second round).
            again = os.path.join(out, 'train_ck2.pth')
            r2, doc2 = convert(dest, '--to', 'checkpoint', '-o', again)
            if res.check(r2.returncode == 0, 'a converted checkpoint converts again', r2.stderr):
                g2 = load_weights_only(again)
                res.check(list(g2) == list(got) and g2['additional_info'] == got['additional_info'],
                          'converted twice: the same layout', '%s vs %s' % (list(g2), list(got)))
            # --drop-optimizer leaves the training state out, wherever it is kept.
            dropped = os.path.join(out, 'train_noopt.pth')
            r3, doc3 = convert(src, '--to', 'checkpoint', '--drop-optimizer', '-o', dropped)
            if res.check(r3.returncode == 0, '--drop-optimizer', r3.stderr):
                g3 = load_weights_only(dropped)
                gone = ('optimizer_state_dict', 'scheduler', 'scaler', 'rng_state', 'np_rng')
                res.check(all(k not in g3 and k not in g3['additional_info'] for k in gone) and 'ema_state_dict' in g3,
                          '--drop-optimizer: optimizer, scheduler, scaler and RNG states left out', '%s' % list(g3))

    def layout_clash():
        # A source entry named as a key of the checkpoint's layout, which the converted value holds:
        # kept under additional_info, and said so.
        clash = os.path.join(out, 'clash.pth')
        lin = nn.Linear(3, 2)
        torch.save({'state_dict': lin.state_dict(), 'model_state_dict': {'w': torch.ones(2)}, 'sched': {'a': 1}}, clash)
        r, doc = convert(clash, '--to', 'checkpoint', '--weights', 'state_dict', '-o', os.path.join(out, 'clash_ck.pth'))
        if res.check(r.returncode == 0, 'a source key the layout uses', r.stderr):
            g = load_weights_only(os.path.join(out, 'clash_ck.pth'))
            res.check(torch.equal(g['model_state_dict']['weight'], lin.weight.detach()) and g['sched'] == {'a': 1} and
                      torch.equal(g['additional_info']['model_state_dict']['w'], torch.ones(2)) and
                      any("additional_info/model_state_dict" in w_ for w_ in doc['warnings']),
                      'a clash goes to additional_info, said so', '%s %r' % (list(g), doc['warnings']))

        # A checkpoint this tool wrote before (or another tool) keeping args and the numpy RNG state
        # under additional_info: kept there, in the forms a weights-only file holds.
        np.random.seed(9)
        nested = os.path.join(out, 'nested_info.pth')
        torch.save({'model_state_dict': lin.state_dict(), 'epoch': 1,
                    'additional_info': {'args': argparse.Namespace(lr=0.5), 'np_rng': np.random.get_state()}}, nested)
        r, doc = convert(nested, '--to', 'checkpoint', '-o', os.path.join(out, 'nested_info_ck.pth'))
        if res.check(r.returncode == 0, 'additional_info with args and numpy RNG state', r.stderr):
            g = load_weights_only(os.path.join(out, 'nested_info_ck.pth'))
            info = g['additional_info']
            res.check(info.get('args') == {'lr': 0.5} and info['np_rng'][1].dtype == torch.int64 and
                      'additional_info' not in info,
                      'additional_info keeps args and the numpy RNG state in place', '%r' % info)

    def quantized():
        # --- 2. Quantized inputs: the file and the reason, before any plan (a full model re-saved) ----
        torch.manual_seed(0)
        q = torch.quantization.quantize_dynamic(QM().eval(), {nn.Linear, nn.LSTM}, dtype=torch.qint8)
        qsd = os.path.join(out, 'quant_sd.pth')
        qfull = os.path.join(out, 'quant_full.pth')
        torch.save(q.state_dict(), qsd)
        torch.save(q, qfull)
        for path in (qsd, qfull):
            for target, ext in (('state-dict', '.pth'), ('safetensors', '.safetensors'), ('full-model', '.pth'),
                                ('checkpoint', '.pth'), ('inference', '.pth')):
                dest = os.path.join(out, 'q_' + target + ext)
                r = run('convert', path, '--to', target, '-o', dest)
                if path == qfull and target == 'full-model':
                    # The pickled model is re-saved as it is, its packed weights with it.
                    x = torch.randn(5, 2, 16)
                    if res.check(r.returncode == 0, 'quantized full model re-saved', r.stdout + r.stderr):
                        res.check(torch.equal(torch.load(dest)(x), q(x)),  # written by ckpt from a model made here
                                  'quantized full model re-saved: outputs equal the source model\'s')
                    continue
                res.check(r.returncode == 1 and path + ':' in r.stderr and 'quantized' in r.stderr and
                          'qint8' in r.stderr and 'nothing to convert' not in r.stderr and
                          'kept' not in r.stdout and 'wrote' not in r.stdout and not os.path.exists(dest),
                          'quantized %s --to %s: refused naming the file and quantized tensors, no plan' %
                          (os.path.basename(path), target), r.stdout + r.stderr)

    def tied_sizes():
        # --- 3. Sizes as torch.save writes them: a tied weight's storage once ------------------------
        torch.manual_seed(0)
        lm = TiedLM()
        sd_path = os.path.join(out, 'tied_sd.pth')
        full_path = os.path.join(out, 'tied_full.pth')
        torch.save(lm.state_dict(), sd_path)
        torch.save(lm, full_path)
        sd = torch.load(sd_path)
        storages = {}
        for t in sd.values():
            storages[t.storage().data_ptr()] = t.storage().nbytes()
        want_bytes = sum(storages.values())
        res.check(want_bytes < sum(t.numel() * t.element_size() for t in sd.values()), 'the model ties a weight')
        for path in (sd_path, full_path):
            for target in ('state-dict', 'checkpoint', 'full-model'):
                dest = os.path.join(out, 'tied_%s_%s.pth' % (os.path.basename(path)[:-4], target))
                extra = ('--arch-spec', json.dumps([{'type': 'Embedding', 'name': 'emb', 'num_embeddings': 50,
                                                     'embedding_dim': 12}, {'type': 'Linear', 'name': 'mid'},
                                                    {'type': 'ReLU'}, {'type': 'Linear', 'name': 'head', 'bias': False}])) \
                    if target == 'full-model' and path == sd_path else ()
                r, doc = convert(path, '--to', target, '-o', dest, *extra)
                if res.check(r.returncode == 0 and doc, 'tied %s --to %s' % (os.path.basename(path), target), r.stderr):
                    res.check(doc['bytes_before'] == want_bytes and doc['bytes_after'] == want_bytes,
                              'tied %s --to %s: the tied storage counted once, as torch.save writes it' %
                              (os.path.basename(path), target), '%r vs %d' % (doc['bytes_before'], want_bytes))
            r, doc = convert(path, '--to', 'state-dict', '--dtype', 'float16', '-o',
                             os.path.join(out, 'tied16_%s.pth' % os.path.basename(path)[:-4]))
            if res.check(r.returncode == 0 and doc, 'tied --dtype float16', r.stderr):
                half = sum(t.storage().nbytes() // t.element_size() * (2 if t.is_floating_point() else t.element_size())
                           for t in {t.storage().data_ptr(): t for t in sd.values()}.values())
                res.check(doc['bytes_before'] == want_bytes and doc['bytes_after'] == half,
                          'tied --dtype float16: each storage once, after the cast', '%r vs %d' % (doc['bytes_after'], half))

    def package_and_arch():
        # --- 4. A package's root mean/std/image_size become its preprocessing -----------------------
        net = make_net().eval()
        pkg = {'model': net, 'classes': ['a', 'b', 'c'], 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225],
               'image_size': 32}
        pkg_path = os.path.join(out, 'pkg_full.pth')
        torch.save(pkg, pkg_path)
        dest = os.path.join(out, 'pkg_inf.pth')
        r, doc = convert(pkg_path, '--to', 'inference', '-o', dest)
        if res.check(r.returncode == 0 and doc, 'package with root mean/std --to inference', r.stderr):
            got = load_weights_only(dest)
            res.check(got.get('preprocessing') == {'mean': pkg['mean'], 'std': pkg['std'], 'image_size': 32},
                      'inference: mean, std and image_size carried into preprocessing', repr(got.get('preprocessing')))
            res.check(not any(l['entry'] in ('mean', 'std', 'image_size') for l in doc['lost']) and
                      not any('preprocessing is not in the source' in w_ for w_ in doc['warnings']),
                      'inference: no false warning that preprocessing is missing', '%r %r' % (doc['lost'], doc['warnings']))
            with open(os.path.join(out, 'pkg_inf_metadata.json')) as f:
                side = json.load(f)
            res.check(side.get('preprocessing') == got['preprocessing'], 'inference sidecar: the same preprocessing',
                      repr(side.get('preprocessing')))
            # The architecture of a Sequential of standard layers goes with the package: predict runs it.
            spec = got.get('architecture')
            if res.check(spec is not None, 'inference from a full model: the architecture is carried', '%s' % list(got)):
                # predict runs the package: its layers, normalised by the carried mean and std.
                sample = np.random.RandomState(0).rand(2, 3, 32, 32).astype(np.float32)
                npy = os.path.join(out, 'pkg_sample.npy')
                np.save(npy, sample)
                p = run('predict', dest, '--input-file', npy, '--json')
                with torch.no_grad():
                    mean = torch.tensor(pkg['mean']).view(1, 3, 1, 1)
                    std = torch.tensor(pkg['std']).view(1, 3, 1, 1)
                    want_logits = net((torch.from_numpy(sample) - mean) / std)
                try:
                    outs = json.loads(p.stdout)['outputs']
                    ok = all(torch.allclose(torch.tensor(o['logits']), w_, atol=1e-5)
                             for o, w_ in zip(outs, want_logits)) and len(outs) == 2
                except (ValueError, KeyError):
                    ok = False
                res.check(p.returncode == 0 and ok, 'predict runs the converted package as torch runs the source '
                          'model on normalised inputs', p.stdout[-400:] + p.stderr)
                rebuilt = os.path.join(out, 'pkg_inf_rebuilt.pth')
                r2, _ = convert(dest, '--to', 'full-model', '-o', rebuilt)
                if res.check(r2.returncode == 0, 'the package\'s architecture builds a full model', r2.stderr):
                    m2 = torch.load(rebuilt, weights_only=False)
                    xin = torch.randn(2, 3, 32, 32)
                    with torch.no_grad():
                        res.check(torch.allclose(m2(xin), net(xin), atol=1e-6),
                                  'the package\'s architecture computes what the source model computes')
        # --arch-spec is taken for an inference package (its architecture entry).
        sd_only = os.path.join(out, 'cnn_sd.pth')
        torch.save(net.state_dict(), sd_only)
        spec_text = json.dumps(spec_of(net))
        dest = os.path.join(out, 'cnn_inf.pth')
        r, doc = convert(sd_only, '--to', 'inference', '--arch-spec', spec_text, '-o', dest)
        if res.check(r.returncode == 0 and doc, 'inference --arch-spec', r.stderr):
            got = load_weights_only(dest)
            res.check(got.get('architecture') == json.loads(spec_text) or
                      [l.get('type') for l in got.get('architecture', [])] == [l['type'] for l in json.loads(spec_text)],
                      'inference --arch-spec: the spec written as the package\'s architecture', repr(got.get('architecture')))
        r = run('convert', sd_only, '--to', 'inference', '--arch', sd_only, '-o', os.path.join(out, 'cnn_inf2.pth'))
        res.check(r.returncode == 1 and '--arch' in r.stderr, 'inference --arch (TorchScript) is refused', r.stderr)

        # --- 5. The way out offered for a full model from a CNN's weights is one that works ---------
        dest = os.path.join(out, 'cnn_full.pth')
        r = run('convert', sd_only, '--to', 'full-model', '-o', dest)
        res.check(r.returncode == 1 and '--arch-spec' in r.stderr and '(--arch)' not in r.stderr and
                  'TorchScript file' not in r.stderr,
                  'full model from CNN weights: --arch-spec offered, not the refused --arch', r.stderr)
        r = run('convert', sd_only, '--to', 'full-model', '--arch-spec', spec_text, '-o', dest)
        if res.check(r.returncode == 0, 'full model with the offered --arch-spec', r.stderr):
            m2 = torch.load(dest, weights_only=False)
            xin = torch.randn(2, 3, 8, 8)
            with torch.no_grad():
                res.check(torch.allclose(m2(xin), net(xin), atol=1e-6), 'the full model computes the source\'s outputs')
    def numpy_in_full_pickles():
        # A full model re-saved whole keeps numpy arrays as numpy arrays, of their own dtypes (a
        # uint32 key, a Fortran-ordered array, a bool mask), as torch.load gives them from the source.
        net = make_net().eval()
        np.random.seed(5)
        arrays = {'np_rng': np.random.get_state(), 'fortran': np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
                  'mask': np.array([True, False, True]), 'half': np.array([0.5, -2.0], dtype=np.float16),
                  'scalar_arr': np.array(3.5), 'empty': np.zeros((0, 2), dtype=np.float32)}
        src = os.path.join(out, 'full_with_numpy.pth')
        torch.save({'model': net, 'args': argparse.Namespace(lr=0.1), **arrays}, src)
        dest = os.path.join(out, 'full_with_numpy_fm.pth')
        r, doc = convert(src, '--to', 'full-model', '-o', dest)
        if not res.check(r.returncode == 0 and doc, 'full model with numpy arrays --to full-model', r.stderr):
            return
        want = torch.load(src, weights_only=False)
        got = torch.load(dest, weights_only=False)

        def same(a, b):
            if isinstance(a, np.ndarray):
                return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and
                        np.array_equal(a, b) and a.flags['F_CONTIGUOUS'] == b.flags['F_CONTIGUOUS'])
            if isinstance(a, tuple):
                return isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
            return type(a) is type(b) and a == b

        for k in arrays:
            res.check(same(want[k], got[k]), 'full model re-saved: %s stays the numpy value torch.load gave' % k,
                      '%r vs %r' % (want[k], got[k]))
        res.check(got['args'] == want['args'], 'full model re-saved: args stays a Namespace', repr(got['args']))
        np.random.set_state(got['np_rng'])
        a_ = np.random.rand(3)
        np.random.set_state(want['np_rng'])
        res.check(np.array_equal(a_, np.random.rand(3)), 'full model re-saved: np.random.set_state takes the key')
        # safetensors: args become JSON text of its fields.
        dest = os.path.join(out, 'full_with_numpy.safetensors')
        r, doc = convert(src, '--to', 'safetensors', '-o', dest)
        if res.check(r.returncode == 0 and doc, 'full model with numpy arrays --to safetensors', r.stderr):
            with open(dest, 'rb') as f:
                n = int.from_bytes(f.read(8), 'little')
                meta = json.loads(f.read(n)).get('__metadata__', {})
            res.check(json.loads(meta.get('args', 'null')) == {'lr': 0.1}, 'safetensors: args as JSON of its fields',
                      repr(meta))

    for name, section in (('resume', resume), ('layout_clash', layout_clash), ('quantized', quantized),
                          ('tied_sizes', tied_sizes), ('package_and_arch', package_and_arch),
                          ('numpy_in_full_pickles', numpy_in_full_pickles)):
        try:
            section()
        except Exception as ex:  # noqa: BLE001 - a section that breaks is a failure, the others still run
            res.check(False, 'section %s' % name, repr(ex)[:400])
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
