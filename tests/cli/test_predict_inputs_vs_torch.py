#!/usr/bin/env python3
"""`ckpt predict`'s inputs judged by PyTorch: what size a picture runs at, a package's stated
picture preprocessing (Resize, CenterCrop, image_size), a package's top-level mean/std, a state
dict run through a TorchScript architecture on a picture, token ids for models that start with an
Embedding (as --input rows and as an int64 .npy), and the messages for what cannot run.

Every model, picture and package is made here by real torch into a temporary folder. The expected
outputs are torch's own forward pass on the tensor a PIL-based pipeline gives: torchvision is not
installed beside Debian's torch, so its documented rules are written out by hand below
(Resize(n): the shorter side to n, the longer to int(n * long / short), PIL's bilinear resize;
CenterCrop: zero padding where the picture is smaller, then top = int(round((h - th) / 2.0)),
left likewise)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402

ATOL = 1e-5
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# --- torchvision's transforms on PIL images, from its documented semantics ------------------------

def tv_resize(im, size):
    """torchvision.transforms.Resize(size) on a PIL image (PIL's bilinear, as Resize's default)."""
    w, h = im.size
    if isinstance(size, int):
        short, long = min(w, h), max(w, h)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_h, new_w = size
    return im.resize((new_w, new_h), Image.BILINEAR)


def tv_center_crop(im, size):
    """torchvision.transforms.CenterCrop(size) on a PIL image: pad with zeros where smaller, then crop."""
    th, tw = (size, size) if isinstance(size, int) else size
    arr = np.asarray(im)
    h, w = arr.shape[:2]
    if tw > w or th > h:
        left = (tw - w) // 2 if tw > w else 0
        top = (th - h) // 2 if th > h else 0
        right = (tw - w + 1) // 2 if tw > w else 0
        bottom = (th - h + 1) // 2 if th > h else 0
        pad = ((top, bottom), (left, right)) + (((0, 0),) if arr.ndim == 3 else ())
        arr = np.pad(arr, pad, constant_values=0)
        h, w = arr.shape[:2]
        if (h, w) == (th, tw):
            return Image.fromarray(arr)
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return Image.fromarray(arr[top:top + th, left:left + tw])


def to_tensor(im):
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def normalise(x, mean, std):
    m = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((x.double() - m) / s).float()


# --- models --------------------------------------------------------------------------------------

def cnn():
    """A CNN whose head follows an adaptive pool: its layers take any picture size."""
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 4)))
    with torch.no_grad():  # running statistics that are not the identity
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


class LM(nn.Module):
    """A language model whose first entries are an int64 position_ids buffer and a float buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer('position_ids', torch.arange(16).unsqueeze(0))
        self.register_buffer('cache', torch.zeros(4), persistent=False)  # a float buffer before the layers
        self.emb = nn.Embedding(50, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.head(h[:, -1])


class GruCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.out(h[:, -1])


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = self.emb(x)
        h, _ = self.mha(h, h, h)
        return self.out(h.mean(1))


def picture(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127.5 * (1 + np.sin(xx / 7.3 + yy / 5.1 + np.arange(3).reshape(3, 1, 1)))
    noise = rng.integers(0, 256, (3, h, w))
    return Image.fromarray(np.clip(0.7 * base + 0.3 * noise, 0, 255).astype(np.uint8).transpose(1, 2, 0))


# --- running ckpt --------------------------------------------------------------------------------

def run(ckpt, *args):
    return subprocess.run([ckpt, 'predict', *args], capture_output=True, text=True)


def predict_json(res, ckpt, what, *args):
    r = run(ckpt, *args, '--json', '--probabilities', 'none')
    if not res.check(r.returncode == 0, what + ': runs', r.stdout[-500:] + r.stderr):
        return None
    return json.loads(r.stdout)


def same_outputs(res, what, d, want, shape):
    if d is None:
        return
    res.check(d['input_shape'] == list(shape), what + ': input shape', '%s, torch ran %s' % (d['input_shape'], list(shape)))
    got = torch.tensor([o['logits'] for o in d['outputs']], dtype=torch.float64)
    want = want.double().reshape(got.shape[0], -1) if want.numel() == got.numel() else want.double()
    ok = got.shape == want.shape and torch.allclose(got, want, atol=ATOL, rtol=0)
    res.check(ok, what + ": outputs equal torch's forward",
              'got %s, torch %s' % (got.tolist()[:2], want.tolist()[:2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    args = ap.parse_args()
    ckpt = args.ckpt
    res = Results()
    torch.set_grad_enabled(False)
    tmp = tempfile.mkdtemp(prefix='ckpt_predict_inputs_')
    p = lambda name: os.path.join(tmp, name)  # noqa: E731

    # Pictures: 300x200 (wider than tall), and 203x301 (odd sizes: the centre crop's rounding).
    img = picture(300, 200, 1)
    img.save(p('img.png'))
    odd = picture(203, 301, 2)
    odd.save(p('odd.png'))
    small = picture(90, 70, 3)
    small.save(p('small.png'))

    m = cnn()
    torch.save(m, p('full_model.pth'))
    torch.jit.script(m).save(p('model_scripted.pt'))

    # 1. A model whose layers take any size, nothing stated: the picture's own size, on every path.
    want = m(to_tensor(img))
    for name in ('full_model.pth', 'model_scripted.pt'):
        d = predict_json(res, ckpt, name + ' on a 300x200 picture', p(name), '--input-file', p('img.png'))
        same_outputs(res, name + ' on a 300x200 picture at its own size', d, want, [1, 3, 200, 300])
        if d:
            res.check(not any('resized' in n for n in d['notes']), name + ': no resize said', repr(d['notes']))
    d = predict_json(res, ckpt, 'state dict --arch scripted', p('full_model.pth'), '--arch', p('model_scripted.pt'),
                     '--input-file', p('img.png'))
    same_outputs(res, 'state dict --arch scripted, on a picture at its own size', d, want, [1, 3, 200, 300])

    # 2. A package's stated preprocessing: Resize(256) + CenterCrop(224), ImageNet mean/std, with the
    #    weights run through a TorchScript architecture (the package has no architecture of its own).
    pre = {'mean': IMAGENET_MEAN, 'std': IMAGENET_STD, 'resize': 256, 'crop_size': 224, 'interpolation': 'bilinear'}
    torch.save({'model_state_dict': m.state_dict(), 'class_names': ['cat', 'dog', 'bird', 'fish'],
                'preprocessing': pre, 'arch': 'smallnet'}, p('package.pth'))
    for image, pil in (('img.png', img), ('odd.png', odd)):
        x = normalise(to_tensor(tv_center_crop(tv_resize(pil, 256), 224)), IMAGENET_MEAN, IMAGENET_STD)
        d = predict_json(res, ckpt, 'package Resize(256)+CenterCrop(224) ' + image, p('package.pth'), '--arch',
                         p('model_scripted.pt'), '--input-file', p(image))
        same_outputs(res, 'package Resize(256)+CenterCrop(224) on ' + image, d, m(x), [1, 3, 224, 224])
        if d:
            res.check(d['normalized'] is True, 'package ' + image + ': normalised', str(d['normalized']))
            res.check(any('Resize(256)' in n and 'CenterCrop((224, 224))' in n for n in d['notes']),
                      'package ' + image + ': the note names both steps', repr(d['notes']))
            res.check(not any('not applied' in n for n in d['notes']), 'package ' + image + ': nothing left out',
                      repr(d['notes']))

    # Other spellings and places: resize_size [h, w] and center_crop at the root; a crop larger than
    # the resized picture (zero padding); crop_size in model_config; image_size as one number.
    variants = [
        ('resize_hw_root_crop', {'resize_size': [150, 260], 'center_crop': 128},
         lambda im: tv_center_crop(tv_resize(im, (150, 260)), 128), [1, 3, 128, 128]),
        ('crop_pads', {'preprocessing': {'resize': 100, 'crop': [120, 131]}},
         lambda im: tv_center_crop(tv_resize(im, 100), (120, 131)), [1, 3, 120, 131]),
        ('config_crop', {'model_config': {'crop_size': [96, 112]}},
         lambda im: tv_center_crop(im, (96, 112)), [1, 3, 96, 112]),
        ('image_size_int', {'preprocessing': {'image_size': 160}},
         lambda im: tv_resize(im, (160, 160)), [1, 3, 160, 160]),
        ('input_size_int_root', {'input_size': 64},
         lambda im: tv_resize(im, (64, 64)), [1, 3, 64, 64]),
    ]
    for name, extra, steps, shape in variants:
        torch.save(dict({'model': m}, **extra), p(name + '.pth'))
        for image, pil in (('img.png', img), ('small.png', small)):
            d = predict_json(res, ckpt, name + ' ' + image, p(name + '.pth'), '--input-file', p(image))
            same_outputs(res, name + ' on ' + image, d, m(to_tensor(steps(pil))), shape)

    # Entries seen but not applied are named in a note, never dropped.
    torch.save({'model': m, 'preprocessing': {'mean': IMAGENET_MEAN, 'std': IMAGENET_STD, 'resize': 256, 'crop_size': 224,
                                              'interpolation': 'spline', 'to_bgr': True}}, p('unapplied.pth'))
    d = predict_json(res, ckpt, 'unapplied entries', p('unapplied.pth'), '--input-file', p('img.png'))
    if d:
        notes = [n for n in d['notes'] if n.startswith('not applied')]
        res.check(len(notes) == 1 and "interpolation 'spline'" in notes[0] and 'to_bgr True' in notes[0],
                  'entries not applied are named', repr(d['notes']))
    rows = ','.join(['0.5'] * (3 * 8 * 8))
    d = predict_json(res, ckpt, 'a picture package given rows', p('package.pth'), '--arch', p('model_scripted.pt'),
                     '--input', rows)
    if d:
        res.check(any(n.startswith('not applied') and 'preprocessing.resize' in n and 'preprocessing.crop_size' in n
                      for n in d['notes']), 'resize and crop not applied to rows: said', repr(d['notes']))

    # 3. Top-level mean/std beside the classes, and image_size: normalised, resized straight to 224.
    torch.save({'model': m, 'classes': ['cat', 'dog', 'bird', 'fish'], 'mean': IMAGENET_MEAN, 'std': IMAGENET_STD,
                'image_size': 224}, p('package_full.pth'))
    x = normalise(to_tensor(tv_resize(img, (224, 224))), IMAGENET_MEAN, IMAGENET_STD)
    d = predict_json(res, ckpt, 'package_full top-level mean/std', p('package_full.pth'), '--input-file', p('img.png'))
    same_outputs(res, 'package_full: top-level mean/std and image_size 224', d, m(x), [1, 3, 224, 224])
    if d:
        res.check(d['normalized'] is True, 'package_full: normalised by its top-level mean/std', str(d['normalized']))
    r = run(ckpt, p('package_full.pth'), '--input-file', p('img.png'))
    res.check(r.returncode == 0 and 'normalized: yes (mean/std)' in r.stdout, 'text says where the mean/std came from',
              r.stdout[-400:] + r.stderr)

    # 5. Token ids: a state dict through a scripted architecture, a scripted LM whose first entry is
    #    an int64 buffer, an int64 .npy; the Embedding takes them as integers.
    torch.manual_seed(3)
    lm = LM().eval()
    torch.save(lm.state_dict(), p('lm_sd.pth'))
    torch.jit.script(lm).save(p('lm_scripted.pt'))
    torch.manual_seed(4)
    torch.jit.script(LM().eval()).save(p('lm_arch.pt'))  # other weights: the state dict's must be used
    gru = GruCls().eval()
    torch.save(gru.state_dict(), p('gru_sd.pth'))
    torch.jit.script(GruCls().eval()).save(p('gru_arch.pt'))
    ids = torch.tensor([[1, 5, 9, 0], [3, 3, 7, 2]])
    np.save(p('ids.npy'), ids.numpy())
    for what, cmd, model in (
            ('lm state dict --arch', [p('lm_sd.pth'), '--arch', p('lm_arch.pt')], lm),
            ('lm TorchScript alone', [p('lm_scripted.pt')], lm),
            ('gru state dict --arch', [p('gru_sd.pth'), '--arch', p('gru_arch.pt')], gru)):
        d = predict_json(res, ckpt, what + ' --input', *cmd, '--input', '1,5,9,0', '--input', '3,3,7,2')
        same_outputs(res, what + ', token ids as --input', d, model(ids), [2, 4])
        if d and what == 'lm state dict --arch':
            # The non-persistent buffer state_dict() leaves out keeps the architecture's value, said.
            res.check(any('cache' in n and 'persistent=False' in n for n in d['notes']),
                      'a non-persistent buffer the state dict lacks is said', repr(d['notes']))
        d = predict_json(res, ckpt, what + ' int64 .npy', *cmd, '--input-file', p('ids.npy'))
        same_outputs(res, what + ', token ids as an int64 .npy', d, model(ids), [2, 4])
    # An int64 .npy to a TorchScript file whose input nothing tells: integers, as torch.from_numpy.
    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.randn(10, 3))

        def forward(self, x):
            return self.table[x].sum(1)

    look = Lookup().eval()
    torch.jit.script(look).save(p('lookup.pt'))
    d = predict_json(res, ckpt, 'int64 .npy to a module of unknown input', p('lookup.pt'), '--input-file', p('ids.npy'))
    same_outputs(res, 'int64 .npy stays int64 for a module of unknown input', d, look(ids), [2, 4])

    # 6. Messages.
    torch.manual_seed(5)
    emb = nn.Sequential(nn.Embedding(100, 6, padding_idx=0), nn.Flatten(), nn.Linear(6 * 4, 3)).eval()
    torch.save(emb, p('emb_seq.pth'))
    torch.save(emb.state_dict(), p('emb_seq_sd.pth'))
    d = predict_json(res, ckpt, 'Embedding, Flatten, Linear', p('emb_seq.pth'), '--input', '1,5,9,0')
    same_outputs(res, 'Embedding, Flatten, Linear on token ids', d, emb(torch.tensor([[1, 5, 9, 0]])), [1, 4])
    r = run(ckpt, p('emb_seq.pth'), '--show-arch', '--json')
    res.check(r.returncode == 0 and json.loads(r.stdout)['input_shape'] == [4],
              'a sequence whose length a Linear fixes: input shape [4]', r.stdout[-300:] + r.stderr)
    r = run(ckpt, p('emb_seq.pth'), '--input', '1,5,9,0,3')
    res.check(r.returncode != 0 and 'takes 4' in r.stderr and '[-1]' not in r.stderr and p('emb_seq.pth') in r.stderr,
              'a wrong sequence length says the model takes 4', r.stderr)
    for model, cmd in ((p('emb_seq.pth'), []), (p('lm_scripted.pt'), [])):
        bad = '1,5,9,120' if model.endswith('emb_seq.pth') else '1,5,50,2'
        rows, badid = (100, 120) if model.endswith('emb_seq.pth') else (50, 50)
        r = run(ckpt, model, *cmd, '--input', bad)
        res.check(r.returncode != 0 and ('has %d rows (ids 0 to %d)' % (rows, rows - 1)) in r.stderr and
                  ('token id %d' % badid) in r.stderr and 'index out of range in self' not in r.stderr,
                  os.path.basename(model) + ': an out-of-range id is named with the rows', r.stderr)
    r = run(ckpt, p('emb_seq_sd.pth'), '--arch-spec', '[{"type": "Embedding"}, {"type": "Linear"}]', '--input', '1,2')
    res.check(r.returncode != 0 and r.stderr.startswith('ckpt: ' + p('emb_seq_sd.pth') + ': '),
              'an --arch-spec error names the file', r.stderr)
    torch.save(lm, p('lm_full.pth'))
    torch.save(Attn().eval(), p('attn_full.pth'))
    torch.save(Attn().state_dict(), p('attn_sd.pth'))
    for name, kind in (('lm_full.pth', 'recurrent'), ('lm_sd.pth', 'recurrent'), ('gru_sd.pth', 'recurrent'),
                       ('attn_full.pth', 'attention'), ('attn_sd.pth', 'attention')):
        r = run(ckpt, p(name), '--input', '1,2,3')
        res.check(r.returncode != 0 and ('is a%s %s layer' % ('n' if kind == 'attention' else '', kind)) in r.stderr and
                  '--arch' in r.stderr and 'position_ids' not in r.stderr and r.stderr.startswith('ckpt: ' + p(name)),
                  name + ': the %s layer is the blocker named' % kind, r.stderr)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
