#!/usr/bin/env python3
"""Every resampling filter a package's `interpolation` can name, judged by real PIL and torch.

A timm or torchvision pipeline resizes a PIL image with `img.resize((w, h), filter)`, the filter
being the `interpolation` its config names ('bicubic' for most timm ImageNet models; 'nearest',
'bilinear', 'box', 'hamming', 'lanczos'; PIL's ints 0..5; 'InterpolationMode.BICUBIC'; the
pickled enums themselves). `ckpt predict` must run that same filter, to the bit for 8-bit
pictures, on both of its resize paths: torchvision's Resize(n) + CenterCrop(m) that the package
states, and straight to the model's own input size.

1. Identity 1x1 convolutions (`--probabilities none --json` prints the model's input back): for
   every filter and form, RGB, L and RGBA PNGs and a JPEG, odd sizes, shrunk and enlarged (one
   `ckpt predict` each, LibTorch loaded each time: the cases are few but cover each path); the
   values must equal PIL's Image.resize(size, filter) / 255 within 1e-6 (a grey level is 4e-3).
2. 16-bit PNGs (grey and colour), which the product reads at full precision (values / 65535) and
   Pillow 9 cannot resize with a filter (mode I;16): the same filter on floats, judged by PIL's
   mode F resize of the same values, within 1e-5.
3. A small CNN package whose preprocessing says 'bicubic', with ImageNet normalisation: its
   logits must equal torch's forward pass on the PIL-bicubic Resize + CenterCrop of the picture
   (and differ from the bilinear one, so the check can tell them apart).
4. An interpolation that names no PIL filter: said as not applied, bilinear runs.

Everything is made here by real torch and PIL in a temporary folder."""
import argparse
import enum
import json
import os
import struct
import subprocess
import sys
import tempfile
import types
import zlib

import numpy as np
import torch
from PIL import Image
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from results import Results  # noqa: E402
# An identity 1x1 convolution (the model's input comes back as its output) and a noise-over-gradient
# picture: the image-input fixtures' own.
from image_input_fixtures import _identity as identity, _picture as noise_picture  # noqa: E402

ATOL8 = 1e-6
ATOL16 = 1e-5
FILTERS = {'nearest': Image.NEAREST, 'lanczos': Image.LANCZOS, 'bilinear': Image.BILINEAR,
           'bicubic': Image.BICUBIC, 'box': Image.BOX, 'hamming': Image.HAMMING}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def pickled_enums():
    """torchvision's InterpolationMode and PIL's Resampling as a pickle names them: torchvision is
    not installed beside Debian's torch, so a stand-in enum of the same module and name."""
    for name in ('torchvision', 'torchvision.transforms', 'torchvision.transforms.functional'):
        sys.modules.setdefault(name, types.ModuleType(name))

    class InterpolationMode(enum.Enum):
        NEAREST = 'nearest'
        BILINEAR = 'bilinear'
        BICUBIC = 'bicubic'
        BOX = 'box'
        HAMMING = 'hamming'
        LANCZOS = 'lanczos'

    InterpolationMode.__module__ = 'torchvision.transforms.functional'
    InterpolationMode.__qualname__ = 'InterpolationMode'
    sys.modules['torchvision.transforms.functional'].InterpolationMode = InterpolationMode
    return InterpolationMode


def png16(path, arr):
    """A 16-bit PNG (grey [h, w] or RGB [h, w, 3]) written by hand: PIL cannot write 16-bit colour."""
    h, w = arr.shape[:2]
    colour = 2 if arr.ndim == 3 else 0
    raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))
    chunk = lambda kind, data: struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))  # noqa: E731
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, colour, 0, 0, 0)) +
                chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def tv_resize(im, size, resample):
    """torchvision's Resize(size, interpolation) on a PIL image, from its documented rule."""
    w, h = im.size
    if isinstance(size, int):
        short, long = min(w, h), max(w, h)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_h, new_w = size
    return im.resize((new_w, new_h), resample)


def tv_center_crop(im, size):
    """torchvision's CenterCrop on a PIL image no smaller than the crop."""
    w, h = im.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def chw(im, channels):
    x = np.asarray(im, dtype=np.float64) / 255
    return x.reshape(x.shape[0], x.shape[1], channels).transpose(2, 0, 1)


def predict(ckpt, model, image, *extra):
    return subprocess.run([ckpt, 'predict', model, '--input-file', image, *extra], capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    args = ap.parse_args()
    res = Results()
    torch.set_grad_enabled(False)
    tmp = tempfile.mkdtemp(prefix='ckpt_resize_filters_')
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    InterpolationMode = pickled_enums()
    worst = {}

    def compare(what, model, image, want, filter_name, atol, normalise=False):
        r = predict(args.ckpt, model, image, '--json', '--probabilities', 'none')
        if not res.check(r.returncode == 0, what + ': runs', r.stdout[-400:] + r.stderr):
            return None
        d = json.loads(r.stdout)
        got = np.array(d['outputs'][0]['logits'], dtype=np.float64)
        shape = [1] + list(want.shape)
        want = want.astype(np.float32).reshape(-1).astype(np.float64)
        if not res.check(d['input_shape'] == shape and got.size == want.size, what + ': shape',
                         '%s, PIL %s' % (d['input_shape'], shape)):
            return d
        diff = float(np.abs(got - want).max())
        worst[filter_name] = max(worst.get(filter_name, 0.0), diff)
        res.check(diff <= atol, what + ": the input PIL's %s resize gives" % filter_name,
                  '%d of %d values differ, max |diff| %.3g (%.2f grey levels)' %
                  (int((np.abs(got - want) > atol).sum()), got.size, diff, diff * 255))
        res.check(d.get('image_resample') == filter_name, what + ': image_resample names the filter',
                  repr(d.get('image_resample')))
        res.check(any("PIL's %s filter" % filter_name in n for n in d['notes']), what + ': the note names the filter',
                  repr(d['notes']))
        res.check(not any('not applied' in n and 'interpolation' in n for n in d['notes']),
                  what + ': the interpolation is not said to be unused', repr(d['notes']))
        return d

    # --- 1. 8-bit pictures, every filter, both resize paths ----------------------------------------
    pictures = {
        'rgb_37x23.png': (Image.fromarray(noise_picture(23, 37, 3, 1)), 3),
        'rgb_11x7.png': (Image.fromarray(noise_picture(7, 11, 3, 2)), 3),
        'grey_29x17.png': (Image.fromarray(noise_picture(17, 29, 1, 3)[..., 0], 'L'), 1),
        'rgb_50x70.jpg': (Image.fromarray(noise_picture(70, 50, 3, 4)), 3),
    }
    rgba = noise_picture(18, 25, 4, 5)
    rgba[..., 3] = np.random.default_rng(6).choice([0, 7, 128, 200, 255], rgba.shape[:2])
    pictures['rgba_25x18.png'] = (Image.fromarray(rgba, 'RGBA'), 4)
    for name, (im, _) in pictures.items():
        im.save(p(name), quality=85) if name.endswith('.jpg') else im.save(p(name))
    # (picture, model's [h, w]): down, up, up one way and down the other. Every filter on each.
    straight = [('rgb_37x23.png', (16, 16)), ('grey_29x17.png', (13, 40)), ('rgba_25x18.png', (30, 13)),
                ('rgb_50x70.jpg', (9, 9))]
    # The other ways a config writes the filter, each on one more picture (enlarged 11x7 to 24x20).
    forms = {'nearest': [0, 'nearest-exact'], 'lanczos': [1], 'bilinear': [2],
             'bicubic': [3, 'BICUBIC', 'InterpolationMode.BICUBIC', InterpolationMode.BICUBIC,
                         Image.Resampling.BICUBIC],
             'box': [InterpolationMode.BOX], 'hamming': ['Hamming']}
    # The package's own Resize(n) and CenterCrop(m), then nothing more (the model is that size).
    cropped = [('rgb_37x23.png', 20, 16)]
    n = 0

    def model_file(c, h, w, **package):
        nonlocal n
        n += 1
        torch.save(dict(model=identity(c), input_shape=[c, h, w], **package), p('m%d.pth' % n))
        return p('m%d.pth' % n)

    for fname, resample in FILTERS.items():
        cases = [(image, size, fname) for image, size in straight] + [('rgb_11x7.png', (20, 24), f) for f in forms[fname]]
        for image, (h, w), form in cases:
            c = pictures[image][1]
            model = model_file(c, h, w, preprocessing={'interpolation': form})
            mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}[c]
            want = chw(Image.open(p(image)).convert(mode).resize((w, h), resample), c)
            compare('%s to %dx%d, interpolation %r' % (image, w, h, form), model, p(image), want, fname, ATOL8)
        for image, size, crop in cropped + ([('rgba_25x18.png', [12, 21], 10)] if fname == 'bicubic' else []):
            c = pictures[image][1]
            model = model_file(c, crop, crop, preprocessing={'resize': size, 'crop_size': crop, 'interpolation': fname})
            mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}[c]
            want = chw(tv_center_crop(tv_resize(Image.open(p(image)).convert(mode), size, resample), crop), c)
            compare('%s Resize(%s) + CenterCrop(%d), %s' % (image, size, crop, fname), model, p(image), want, fname,
                    ATOL8)
    # model_config's interpolation (timm's pretrained_cfg keeps it beside the sizes) counts too.
    model = model_file(3, 16, 16, model_config={'interpolation': 'bicubic'})
    want = chw(Image.open(p('rgb_37x23.png')).convert('RGB').resize((16, 16), Image.BICUBIC), 3)
    compare('model_config.interpolation bicubic', model, p('rgb_37x23.png'), want, 'bicubic', ATOL8)

    # --- 2. 16-bit PNGs: the same filter on floats, as PIL's mode F resize ---------------------------
    rng = np.random.default_rng(7)
    grey16 = rng.integers(0, 65536, (19, 26)).astype(np.uint16)
    colour16 = rng.integers(0, 65536, (15, 22, 3)).astype(np.uint16)
    png16(p('grey16.png'), grey16)
    png16(p('colour16.png'), colour16)

    def pil_float(arr, size, resample):
        planes = arr[..., None] if arr.ndim == 2 else arr
        out = [np.asarray(Image.fromarray((planes[..., c] / 65535.0).astype(np.float32), 'F').resize(size, resample),
                          dtype=np.float64) for c in range(planes.shape[2])]
        return np.stack(out)

    for fname, resample in FILTERS.items():
        for image, arr, c, (h, w) in [('grey16.png', grey16, 1, (11, 40))] + (
                [('colour16.png', colour16, 3, (9, 31))] if fname in ('bicubic', 'nearest') else []):
            model = model_file(c, h, w, preprocessing={'interpolation': fname})
            compare('16-bit %s to %dx%d, %s' % (image, w, h, fname), model, p(image), pil_float(arr, (w, h), resample),
                    fname, ATOL16)

    # --- 3. A bicubic package against torch's forward pass -------------------------------------------
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 7 * 7, 5)).eval()
    pre = {'mean': IMAGENET_MEAN, 'std': IMAGENET_STD, 'resize': 18, 'crop_size': 16, 'interpolation': 'bicubic'}
    torch.save({'model': cnn, 'input_shape': [3, 16, 16], 'preprocessing': pre}, p('cnn_bicubic.pth'))
    photo = Image.fromarray(noise_picture(41, 57, 3, 8))
    photo.save(p('photo.png'))

    def forward(resample):
        x = chw(tv_center_crop(tv_resize(Image.open(p('photo.png')).convert('RGB'), 18, resample), 16), 3)
        x = (x - np.array(IMAGENET_MEAN).reshape(3, 1, 1)) / np.array(IMAGENET_STD).reshape(3, 1, 1)
        return cnn(torch.from_numpy(x.astype(np.float32))[None]).double()

    want, bilinear = forward(Image.BICUBIC), forward(Image.BILINEAR)
    r = predict(args.ckpt, p('cnn_bicubic.pth'), p('photo.png'), '--json', '--probabilities', 'none')
    if res.check(r.returncode == 0, 'bicubic CNN package: runs', r.stdout[-400:] + r.stderr):
        d = json.loads(r.stdout)
        got = torch.tensor(d['outputs'][0]['logits'], dtype=torch.float64)[None]
        res.check(torch.allclose(got, want, atol=1e-5, rtol=0),
                  "bicubic CNN package: logits equal torch's forward on the PIL-bicubic picture",
                  'got %s, torch %s' % (got.tolist(), want.tolist()))
        res.check(not torch.allclose(want, bilinear, atol=1e-4, rtol=0),
                  'bicubic CNN package: the bilinear picture gives other logits (the check tells them apart)')
        res.check(d['normalized'], 'bicubic CNN package: normalised', str(d['normalized']))
    r = predict(args.ckpt, p('cnn_bicubic.pth'), p('photo.png'))
    res.check(r.returncode == 0 and "PIL's bicubic filter" in r.stdout and 'not applied' not in r.stdout,
              'bicubic CNN package: the text output names the filter and says nothing is left unapplied',
              r.stdout[-800:] + r.stderr)

    # --- 4. A name that is no PIL filter: said, and bilinear runs ----------------------------------
    for bad in ['spline', 7]:
        model = model_file(3, 16, 16, preprocessing={'interpolation': bad})
        r = predict(args.ckpt, model, p('rgb_37x23.png'), '--json', '--probabilities', 'none')
        if res.check(r.returncode == 0, 'interpolation %r: runs' % bad, r.stderr):
            d = json.loads(r.stdout)
            want = chw(Image.open(p('rgb_37x23.png')).convert('RGB').resize((16, 16), Image.BILINEAR), 3)
            got = np.array(d['outputs'][0]['logits'])
            res.check(np.abs(got - want.astype(np.float32).reshape(-1)).max() <= ATOL8,
                      'interpolation %r: bilinear runs' % bad)
            res.check(d.get('image_resample') == 'bilinear', 'interpolation %r: image_resample bilinear' % bad,
                      repr(d.get('image_resample')))
            res.check(any('not applied' in x and 'interpolation' in x and 'bilinear' in x for x in d['notes']),
                      'interpolation %r: said not applied, bilinear used' % bad, repr(d['notes']))

    # An unknown name does not hide a usable one further on (model_config after preprocessing).
    model = model_file(3, 16, 16, preprocessing={'interpolation': 'spline'}, model_config={'interpolation': 'bicubic'})
    r = predict(args.ckpt, model, p('rgb_37x23.png'), '--json', '--probabilities', 'none')
    if res.check(r.returncode == 0, 'spline then bicubic: runs', r.stderr):
        d = json.loads(r.stdout)
        want = chw(Image.open(p('rgb_37x23.png')).convert('RGB').resize((16, 16), Image.BICUBIC), 3)
        res.check(np.abs(np.array(d['outputs'][0]['logits']) - want.astype(np.float32).reshape(-1)).max() <= ATOL8 and
                  d.get('image_resample') == 'bicubic', "spline then bicubic: model_config's bicubic runs",
                  repr(d.get('image_resample')))
        res.check(any("interpolation 'spline' (no PIL filter of that name: model_config.interpolation is used)" in x
                      for x in d['notes']), 'spline then bicubic: the unknown name is said', repr(d['notes']))

    # Rows of numbers are no picture: the interpolation is said not to apply to them.
    model = model_file(3, 2, 2, preprocessing={'interpolation': 'bicubic'})
    r = subprocess.run([args.ckpt, 'predict', model, '--input', ','.join(['0.5'] * 12), '--json'], capture_output=True,
                       text=True)
    if res.check(r.returncode == 0, 'rows to a bicubic package: runs', r.stdout[-400:] + r.stderr):
        notes = json.loads(r.stdout)['notes']
        res.check(any('not applied' in x and 'preprocessing.interpolation bicubic (the input is not a picture)' in x
                      for x in notes), 'rows to a bicubic package: the interpolation is said not to apply', repr(notes))

    for fname in FILTERS:
        print('%-8s largest difference from PIL: %.3g' % (fname, worst.get(fname, float('nan'))))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
