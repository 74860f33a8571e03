#!/usr/bin/env python3
"""`ckpt predict` on the cases a review of predictions found wrong or refused, judged by torch 1.13.
The models, pictures and torch's outputs come from tests/views/predict_review_inputs.py (real torch,
into a temporary folder), which the prediction pane's test uses too.

- Softmax()/LogSoftmax() without dim and a spec's {"type": "Softmax"} run, with torch's implicit
  dim (dim 0 for a 3-d output), and --export-torchscript of them loads in torch;
- a TorchScript file ending in Sigmoid or Softmax gives probabilities as they are (as its pickled
  twin), and the text output always says how probabilities were made;
- a pickled model whose classes' forward is not in the file carries a warning right before the
  result lines (and in --json), a stronger one when a block looks residual; a plain Sequential none;
- a CNN that takes any size takes a row of 3·S·S values as an S×S picture (bare, and in a package
  that states a crop size, the size the pane proposes);
- an MNIST MLP (Flatten + Linear(784) pickled; a state dict package with image_size 28) takes a PNG;
- a 16-bit PNG's note; notes without "outputs'," and without steps a package switched off."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402

ATOL = 1e-5
GENERATOR = os.path.join(HERE, '..', 'views', 'predict_review_inputs.py')


def run(ckpt, args, cwd):
    return subprocess.run([ckpt, 'predict'] + args, cwd=cwd, capture_output=True, text=True, timeout=300)


def worst(got, want):
    a = np.asarray(got, dtype=np.float64).ravel()
    b = np.asarray(want, dtype=np.float64).ravel()
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float('inf')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    a.ckpt = os.path.abspath(a.ckpt)
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt_predict_review_')
    subprocess.run([sys.executable, GENERATOR, '--out', tmp], check=True)
    with open(os.path.join(tmp, 'expected.json')) as f:
        E = json.load(f)

    def predict_json(where, args):
        r = run(a.ckpt, args + ['--json'], tmp)
        if not res.check(r.returncode == 0, where, r.stderr.strip()[:400]):
            return None
        return json.loads(r.stdout)

    def logits(j):
        return [o['logits'] for o in j['outputs']]

    def row_args(rows):
        out = []
        for row in rows:
            out += ['--input', ','.join(repr(v) for v in row)]
        return out

    # 1. Softmax / LogSoftmax without dim, and a spec's Softmax.
    e = E['softmax_nodim']
    j = predict_json('Softmax() without dim', ['softmax_nodim.pth'] + row_args(e['rows']))
    if j:
        res.check(worst(logits(j), e['output']) <= ATOL, 'Softmax() output vs torch', str(logits(j)))
        res.check(j['probabilities_from'] == 'as is', 'Softmax() probabilities as they are', j['probabilities_from'])
    e = E['logsoftmax_nodim_conv1d']
    j = predict_json('LogSoftmax() on a 3-d output', ['logsoftmax_nodim_conv1d.pth', '--input-file', 'conv1d_x.npy'])
    if j:
        # torch's implicit dim for a 3-d input is 0: over the batch, not the channels.
        res.check(worst(logits(j), e['output']) <= ATOL, 'LogSoftmax() implicit dim 0 vs torch', str(logits(j))[:200])
    e = E['spec_softmax']
    j = predict_json('spec {"type": "Softmax"}', ['linear_sd.pth', '--arch-spec', json.dumps(e['spec'])] +
                     row_args(e['rows']))
    if j:
        res.check(worst(logits(j), e['output']) <= ATOL, 'spec Softmax vs torch', str(logits(j)))
    # The export runs in torch as the prediction did.
    out_pt = os.path.join(tmp, 'softmax_nodim_export.pt')
    r = run(a.ckpt, ['softmax_nodim.pth', '--export-torchscript', out_pt], tmp)
    if res.check(r.returncode == 0, 'export Softmax() as TorchScript', r.stderr.strip()[:400]):
        m = torch.jit.load(out_pt)
        got = m(torch.tensor(E['softmax_nodim']['rows'])).tolist()
        res.check(worst(got, E['softmax_nodim']['output']) <= ATOL, 'exported Softmax() in torch', str(got))

    # 2. TorchScript ending in Sigmoid / Softmax: as is; a logits one: softmax. The rule is said.
    for name, want in [('sigmoid_ts', 'as is'), ('softmax_ts', 'as is'), ('logits_ts', 'softmax')]:
        e = E[name]
        j = predict_json(name, [name + '.pt'] + row_args(e['rows']))
        if j:
            res.check(j['probabilities_from'] == want, name + ' probabilities_from', j['probabilities_from'])
            res.check(worst(logits(j), e['output']) <= ATOL, name + ' output vs torch')
            probs = torch.tensor(e['output'])
            if want == 'softmax':
                probs = torch.softmax(probs, 1)
            res.check(worst([o['probabilities'] for o in j['outputs']], probs.tolist()) <= ATOL,
                      name + ' probabilities vs torch')
        r = run(a.ckpt, [name + '.pt'] + row_args(e['rows']), tmp)
        rule = 'as they are' if want == 'as is' else 'softmax(outputs)'
        res.check(r.returncode == 0 and rule in r.stdout, name + ' text says the probability rule', r.stdout[-600:])
    j = predict_json('sigmoid_full', ['sigmoid_full.pth'] + row_args(E['sigmoid_ts']['rows']))
    if j:
        res.check(j['probabilities_from'] == 'as is', 'pickled twin as is', j['probabilities_from'])

    # 3. Forward code not in the file: warnings beside the result.
    for name in ('resnet_block', 'resnet_unit'):
        j = predict_json(name, [name + '.pth', '--input-file', name + '_x.npy'])
        if j:
            w = ' '.join(j.get('warnings', []))
            res.check('likely wrong' in w and 'residual' in w and 'TorchScript' in w, name + ' residual warning', w)
            # The reason for the warning: torch's own forward differs from children in order.
            res.check(worst(logits(j), E[name]['output']) > 1e-3, name + ' differs from torch (why it warns)')
        r = run(a.ckpt, [name + '.pth', '--input-file', name + '_x.npy'], tmp)
        lines = r.stdout.splitlines()
        first_sample = next((i for i, l in enumerate(lines) if l.startswith('sample 1:')), None)
        res.check(first_sample is not None and first_sample > 0 and lines[first_sample - 1].startswith('warning:')
                  and 'likely wrong' in lines[first_sample - 1], name + ' warning right before the result lines',
                  r.stdout[:1500])
    j = predict_json('net_full', ['net_full.pth'] + row_args(E['net_full']['rows']))
    if j:
        w = j.get('warnings', [])
        res.check(len(w) == 1 and 'registered' in w[0] and 'likely wrong' not in w[0], 'custom MLP: one plain warning', str(w))
        res.check(worst(logits(j), E['net_full']['output']) <= ATOL, 'custom MLP vs torch')
    j = predict_json('plain_full', ['plain_full.pth'] + row_args(E['plain_full']['rows']))
    if j:
        res.check(j.get('warnings') == [], 'Sequential: no warning', str(j.get('warnings')))
    r = run(a.ckpt, ['resnet_block.pth', '--input', '0.5,0.5'], tmp)
    res.check(r.returncode != 0 and 'any size' in r.stderr and '-1' not in r.stderr and '--arch' in r.stderr,
              'a shape refusal says "any size" and points to --arch', r.stderr.strip()[:600])

    # 4. Any-size CNN rows: C·S·S values an S×S picture, bare and in a package stating a crop.
    for side in (20, 24):
        for name in ('cnn_any', 'cnn_crop_pkg'):
            e = E['%s_%d' % (name, side)]
            j = predict_json('%s row of 3x%dx%d' % (name, side, side), [name + '.pth'] + row_args([e['row']]))
            if j:
                res.check(j['input_shape'] == [1, 3, side, side], '%s %d input shape' % (name, side), str(j['input_shape']))
                res.check(worst(logits(j), e['output']) <= ATOL, '%s %d vs torch' % (name, side))
    r = run(a.ckpt, ['cnn_crop_pkg.pth', '--show-arch', '--json'], tmp)

    # 5. MNIST MLPs on pictures.
    for model in ('mnist_mlp_full', 'mnist_mlp_pkg'):
        for pic in ('digit.png', 'photo.png'):
            j = predict_json('%s %s' % (model, pic), [model + '.pth', '--input-file', pic])
            if j:
                res.check(worst(logits(j), E['%s_%s' % (model, pic)]['output']) <= ATOL, '%s %s vs torch' % (model, pic),
                          str(logits(j))[:200])
                res.check(any('784 features' in n for n in j['notes']), '%s %s note' % (model, pic), str(j['notes']))

    # 6. --input-shape: a TorchScript model of one size takes a picture and a row at that size.
    e = E['fixed16_ts']
    j = predict_json('--input-shape picture', ['fixed16_ts.pt', '--input-shape', '3,16,16', '--input-file', 'pic16.png'])
    if j:
        res.check(j['input_shape'] == [1, 3, 16, 16], '--input-shape picture: input shape', str(j['input_shape']))
        res.check(worst(logits(j), e['picture_output']) <= ATOL, '--input-shape picture vs torch', str(logits(j)))
    j = predict_json('--input-shape row', ['fixed16_ts.pt', '--input-shape', '3,16,16'] + row_args([e['row']]))
    if j:
        res.check(worst(logits(j), e['row_output']) <= ATOL, '--input-shape row vs torch', str(logits(j)))
    r = run(a.ckpt, ['fixed16_ts.pt', '--input-shape', '3,x,16'] + row_args([e['row']]), tmp)
    res.check(r.returncode != 0 and '--input-shape' in r.stderr, '--input-shape 3,x,16 refused, named',
              r.stderr.strip()[:300])

    # 7. A 16-bit PNG: values / 65535, said in a note (PIL opens it as mode I and would clip).
    j = predict_json('16-bit PNG', ['grey_any.pth', '--input-file', 'grey16.png'])
    if j:
        res.check(E['grey16']['pil_mode'] == 'I', 'PIL opens the 16-bit PNG as mode I', E['grey16']['pil_mode'])
        res.check(worst(logits(j), E['grey16']['output']) <= ATOL, '16-bit PNG / 65535 vs torch')
        res.check(any('65535' in n and 'clips' in n for n in j['notes']), '16-bit PNG note', str(j['notes']))

    # 8. Wording: no stray apostrophe; a switched-off step is not "not applied".
    j = predict_json('fewnames', ['fewnames.pth'] + row_args(E['fewnames']['rows']))
    if j:
        notes = ' '.join(j['notes'])
        res.check("outputs'" not in notes and 'names may not belong to these outputs' in notes, 'few names note', notes)
    j = predict_json('cnn_crop_pkg notes', ['cnn_crop_pkg.pth'] + row_args([E['cnn_crop_pkg_24']['row']]))
    if j:
        notes = ' '.join(j['notes'])
        res.check('not applied' in notes and 'random_horizontal_flip' in notes and 'grayscale' not in notes and
                  'to_bgr' not in notes, 'not applied lists no switched-off step', notes)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
