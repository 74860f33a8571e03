#!/usr/bin/env python3
"""`ckpt predict --input-file PICTURE` judged by PIL: the tensor the model receives must be the one
a PyTorch pipeline built on PIL gives (Image.open(f).convert(mode), torchvision's Resize on a PIL
image = img.resize((w, h), Image.BILINEAR), ToTensor's / 255, the package's normalisation).

Each model is an identity 1x1 convolution (tests/fixtures/image_input_fixtures.py), so
`--probabilities none --json` prints its input back as its output values. Values must agree to
1e-6: a decoder or resampler off by one grey level (1/255, or 1/255/0.229 after normalising)
fails. Broken and oversized JPEGs must be refused with a message naming the file; CMYK JPEGs are
read as PIL's convert() reads them."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402

ATOL = 1e-6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    args = ap.parse_args()
    with open(os.path.join(args.fixtures, 'expected.json')) as f:
        spec = json.load(f)['__image_input__']
    res = Results()
    f = lambda name: os.path.join(args.fixtures, name)  # noqa: E731

    worst_all = 0.0
    for c in spec['cases']:
        r = subprocess.run([args.ckpt, 'predict', f(c['model']), '--input-file', f(c['image']), '--probabilities',
                            'none', '--json'], capture_output=True, text=True)
        if not res.check(r.returncode == 0, c['name'] + ': runs', r.stdout[-400:] + r.stderr):
            continue
        d = json.loads(r.stdout)
        got = d['outputs'][0]['logits']
        want = c['input']
        if not res.check(d['input_shape'] == c['input_shape'] and len(got) == len(want), c['name'] + ': shape',
                         '%s vs %s' % (d['input_shape'], c['input_shape'])):
            continue
        diffs = [abs(a - b) for a, b in zip(got, want)]
        worst = max(diffs)
        worst_all = max(worst_all, worst)
        res.check(worst <= ATOL, c['name'] + ': the input PIL gives',
                  '%d of %d values differ, max |diff| %.6g (%.2f grey levels)' %
                  (sum(x > ATOL for x in diffs), len(diffs), worst, worst * 255))
        res.check(d['normalized'] == c['normalized'], c['name'] + ': normalisation as the package says', str(d['normalized']))
        notes = [n for n in d['notes'] if 'resized' in n]
        if c['resized']:
            h, w = c['input_shape'][2:]
            res.check(any("resized to the model's input size %dx%d" % (w, h) in n and "PIL's bilinear" in n for n in notes),
                      c['name'] + ': the note says it was resized and with which filter', repr(d['notes']))
        else:
            res.check(not notes, c['name'] + ': not resized, no note', repr(d['notes']))
    print('largest difference from PIL over all cases: %.3g' % worst_all)

    # Text output: the note says which resampling was used.
    resized = next(c for c in spec['cases'] if c['resized'])
    r = subprocess.run([args.ckpt, 'predict', f(resized['model']), '--input-file', f(resized['image'])],
                       capture_output=True, text=True)
    res.check(r.returncode == 0 and "PIL's bilinear filter" in r.stdout, 'text output names the resampling',
              r.stdout[-600:] + r.stderr)

    for e in spec['errors']:
        r = subprocess.run([args.ckpt, 'predict', f(spec['model']), '--input-file', f(e['image'])],
                           capture_output=True, text=True)
        res.check(r.returncode != 0 and e['image'] in r.stderr and e['says'] in r.stderr and
                  'Traceback' not in r.stderr and len(r.stderr) < 2000,
                  '%s is refused, naming the file and saying %r' % (e['image'], e['says']), r.stdout[-300:] + r.stderr)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
