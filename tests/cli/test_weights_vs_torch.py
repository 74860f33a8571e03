#!/usr/bin/env python3
"""`--weights PATH` judged by PyTorch: on files that hold several sets of weights (a GAN's generator
and discriminator with one optimizer each, a model and its EMA, a teacher and a student nested under
one key, whole modules under 'model' and 'ema'), every command that acts on the state dict acts on
the chosen set as torch.load reads it: `tensors` lists its names, dtypes, shapes and statistics;
`info` names it, lists the former model weights among the others and pairs it with its optimizer;
`show` and `export` find its tensors; `convert` writes it as the model weights of every target
(torch.load, torch.jit.load and the safetensors layout read it back equal); `predict` gives the logits
torch computes with it; `diff` and `series` compare and follow it. A path that names nothing, or
something that is not a set of weights, is refused with exit 1 and a message that names the file,
the path and the file's sets; `--ema` with `--weights` is refused before anything is read. `--ema`
takes the EMA of the model's own network whatever the file's order, and the optimizer is paired by
the shapes of its state, by order only where shapes cannot tell (and said so)."""
import argparse
import collections
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from results import Results  # noqa: E402

SAFETENSORS_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'F64': torch.float64,
                      'I64': torch.int64}


def read_safetensors(path):
    """The tensors of a safetensors file, by its layout (Debian has no safetensors package)."""
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n], object_pairs_hook=collections.OrderedDict)
    header.pop('__metadata__', None)
    body = data[8 + n:]
    out = collections.OrderedDict()
    for name, h in header.items():
        b, e = h['data_offsets']
        raw = bytearray(body[b:e])
        out[name] = torch.frombuffer(raw, dtype=torch.uint8).view(SAFETENSORS_DTYPES[h['dtype']]).reshape(h['shape'])
    return out


def torch_stats(t):
    v = t.double().flatten()
    return {'min': float(v.min()), 'max': float(v.max()), 'mean': float(v.mean()),
            'std': float(v.std()) if v.numel() > 1 else None, 'l2': float(v.pow(2).sum().sqrt()),
            'zero_fraction': float((v == 0).sum()) / v.numel(), 'nan': 0, 'inf': 0}


def close(a, b, tol=1e-9):
    if b is None:
        return a is None
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


def same_tensors(got, want, ordered=True):
    """Same names (in the same order, unless not `ordered`: safetensors sorts its header), each with the
    same dtype, shape and exactly the same values."""
    if (list(got) if ordered else sorted(got)) != (list(want) if ordered else sorted(want)):
        return False, 'names %s != %s' % (list(got), list(want))
    for k in want:
        g, w = got[k], want[k]
        if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
            return False, '%s: %s %s differs from %s %s' % (k, g.dtype, list(g.shape), w.dtype, list(w.shape))
    return True, ''


def mlp(sd, activation):
    """The MLP a state dict of Linear layers '0', '2', ... describes, as torch runs it."""
    layers = sorted({int(k.split('.')[0]) for k in sd})

    def forward(x):
        for i, n in enumerate(layers):
            x = torch.nn.functional.linear(x, sd['%d.weight' % n], sd['%d.bias' % n])
            if i + 1 < len(layers):
                x = activation(x)
        return x
    return forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    ckpt = os.path.abspath(a.ckpt)
    folder = os.path.join(os.path.abspath(a.fixtures), 'weight_sets')
    res = Results()
    check = res.check
    tmp = tempfile.mkdtemp(prefix='ckpt-weights-')

    def run(*args):
        return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120, cwd=tmp)

    def fixture(name):
        return os.path.join(folder, name)

    gan_path, ema_path = fixture('gan.pth'), fixture('ema.pth')
    gan = torch.load(gan_path, map_location='cpu')
    ema = torch.load(ema_path, map_location='cpu')
    distill = torch.load(fixture('distill.pth'), map_location='cpu')

    # tensors --json --stats: exactly the chosen set, as torch lists it, with torch's statistics.
    for path, weights, want in ((gan_path, 'netD', gan['netD']), (gan_path, 'netG', gan['netG']),
                                (ema_path, 'ema_state_dict', ema['ema_state_dict']),
                                (fixture('distill.pth'), 'state_dict/student', distill['state_dict']['student']),
                                (fixture('distill.pth'), 'state_dict.student', distill['state_dict']['student'])):
        where = 'tensors %s --weights %s' % (os.path.basename(path), weights)
        r = run('tensors', path, '--json', '--stats', '--weights', weights)
        if not check(r.returncode == 0, where, r.stderr.strip()):
            continue
        rows = json.loads(r.stdout)['tensors']
        check([x['name'] for x in rows] == list(want), where + ': names', str([x['name'] for x in rows]))
        for row in rows:
            t = want.get(row['name'])
            if t is None:
                continue
            check(row['dtype'] == str(t.dtype).replace('torch.', '') and row['shape'] == list(t.shape) and
                  row['numel'] == t.numel() and row['bytes'] == t.numel() * t.element_size(),
                  '%s: %s dtype/shape/numel/bytes' % (where, row['name']), str(row))
            s, w = row['stats'], torch_stats(t)
            check(all(close(s[k], w[k]) for k in w), '%s: %s stats' % (where, row['name']), '%s vs %s' % (s, w))
    # Without the option the file's own choice stands (the generator, listed first).
    r = run('tensors', gan_path, '--json')
    check(r.returncode == 0 and [x['shape'] for x in json.loads(r.stdout)['tensors']] ==
          [list(t.shape) for t in gan['netG'].values()], 'tensors gan.pth: the generator by default', r.stderr)

    # info: the chosen set is the state dict, the former model weights are another set, and the
    # optimizer is the one that trained the chosen set (its parameters have the set's shapes).
    r = run('info', gan_path, '--json', '--weights', 'netD')
    if check(r.returncode == 0, 'info --json --weights netD', r.stderr.strip()):
        j = json.loads(r.stdout)
        sd = j['state_dict']
        check(sd['path'] == ['netD'] and sd['others'] == [['netG']], 'info --weights netD: path and others',
              '%s %s' % (sd['path'], sd['others']))
        check(sd['parameters'] == sum(t.numel() for t in gan['netD'].values()), 'info --weights netD: parameters',
              str(sd['parameters']))
        check(j['optimizer']['path'] == ['optD'] and j['optimizer']['type'] == 'SGD',
              'info --weights netD: the discriminator\'s optimizer', str(j['optimizer']['path']))
        names = [p.get('name') for p in j['optimizer'].get('parameters', [])]
        check(names == [n for n in gan['netD']] and j['optimizer'].get('mapping', {}).get('certain') is True,
              'info --weights netD: the optimizer\'s parameters named after netD, certainly',
              '%s %s' % (names, j['optimizer'].get('mapping')))
    r = run('info', gan_path, '--json')
    check(r.returncode == 0 and json.loads(r.stdout)['optimizer']['path'] == ['optG'],
          'info gan.pth: the generator\'s optimizer by default', r.stderr.strip())
    r = run('info', gan_path, '--weights', 'netD')
    check(r.returncode == 0 and 'State dict: netD' in r.stdout and 'also weights under netG' in r.stdout and
          'Optimizer: optD' in r.stdout, 'info --weights netD: text', r.stdout + r.stderr)
    r = run('info', fixture('modules.pt'), '--json', '--weights', 'ema')
    if check(r.returncode == 0, 'info modules.pt --weights ema', r.stderr.strip()):
        sd = json.loads(r.stdout)['state_dict']
        modules = torch.load(fixture('modules.pt'), map_location='cpu', weights_only=False)
        check(sd['path'] == ['ema'] and sd['source'] == 'module_tree' and
              [t['name'] for t in sd['tensors']] == list(modules['ema'].state_dict()),
              'info modules.pt --weights ema: the EMA module tree', json.dumps(sd)[:300])

    # show and export find the chosen set's tensors by their state-dict names.
    r = run('show', gan_path, '0.weight', '--json', '--weights', 'netD')
    if check(r.returncode == 0, 'show --weights netD 0.weight', r.stderr.strip()):
        shown = json.loads(r.stdout)
        want = gan['netD']['0.weight']
        check(shown['shape'] == list(want.shape) and
              all(close(x, y, 1e-7) for x, y in zip(shown['values'], want.flatten().tolist())),
              'show --weights netD 0.weight: torch\'s values', str(shown.get('values', [])[:4]))
    out = os.path.join(tmp, 'd2.npy')
    r = run('export', gan_path, '2.weight', '-o', out, '--weights', 'netD')
    check(r.returncode == 0 and os.path.exists(out) and
          np.array_equal(np.load(out), gan['netD']['2.weight'].numpy()), 'export --weights netD 2.weight',
          r.stderr.strip())

    # convert: the chosen set is the model weights of every target.
    def convert(path, to, weights, output, *extra):
        return run('convert', path, '--to', to, '--weights', weights, '-o', output, *extra)

    out = os.path.join(tmp, 'netD_state_dict.pth')
    r = convert(gan_path, 'state-dict', 'netD', out)
    if check(r.returncode == 0, 'convert --to state-dict --weights netD', r.stderr.strip()):
        ok, why = same_tensors(torch.load(out, weights_only=True), gan['netD'])
        check(ok, 'convert --to state-dict --weights netD: torch reads netD back', why)
        check('not written: netG: another set of weights' in r.stdout,
              'convert --weights netD: the plan says the generator is not written', r.stdout)
    out = os.path.join(tmp, 'netD.safetensors')
    r = convert(gan_path, 'safetensors', 'netD', out)
    if check(r.returncode == 0, 'convert --to safetensors --weights netD', r.stderr.strip()):
        ok, why = same_tensors(read_safetensors(out), gan['netD'], ordered=False)
        check(ok, 'convert --to safetensors --weights netD: netD\'s tensors', why)
    out = os.path.join(tmp, 'ema_checkpoint.pth')
    r = convert(ema_path, 'checkpoint', 'ema_state_dict', out)
    if check(r.returncode == 0, 'convert --to checkpoint --weights ema_state_dict', r.stderr.strip()):
        written = torch.load(out, weights_only=False)
        ok, why = same_tensors(written['model_state_dict'], ema['ema_state_dict'])
        check(ok, 'convert --to checkpoint --weights ema_state_dict: the EMA weights are the model\'s', why)
        check(written['optimizer_state_dict']['param_groups'] == ema['optimizer']['param_groups'],
              'convert --to checkpoint --weights ema_state_dict: the optimizer kept', str(written.keys()))
    out = os.path.join(tmp, 'student_inference.pth')
    r = convert(fixture('distill.pth'), 'inference', 'state_dict.student', out)
    if check(r.returncode == 0, 'convert --to inference --weights state_dict.student', r.stderr.strip()):
        ok, why = same_tensors(torch.load(out, weights_only=False)['model_state_dict'], distill['state_dict']['student'])
        check(ok, 'convert --to inference --weights state_dict.student: the student\'s weights', why)
        # The teacher, beside it under the same key, is said to be left out too.
        check("not written: state_dict/teacher: another set of weights: the file's model weights, under "
              "'state_dict/student', are the ones written" in r.stdout,
              'convert --weights state_dict.student: the plan says the teacher is not written', r.stdout)
    # A module under a dict: TorchScript runs the chosen module; a full model, which re-saves the
    # file's whole tree, is refused rather than written with every set in it.
    modules = torch.load(fixture('modules.pt'), map_location='cpu', weights_only=False)
    out = os.path.join(tmp, 'ema_module_script.pt')
    r = convert(fixture('modules.pt'), 'torchscript', 'ema', out)
    if check(r.returncode == 0, 'convert modules.pt --to torchscript --weights ema', r.stderr.strip()):
        x5 = torch.randn(3, 5, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            check(torch.allclose(torch.jit.load(out)(x5), modules['ema'](x5), atol=1e-6),
                  'convert modules.pt --to torchscript --weights ema: the EMA module\'s outputs')
        check('not written: model: another set of weights' in r.stdout,
              'convert modules.pt --weights ema: the plan says the model is not written', r.stdout)
    out = os.path.join(tmp, 'ema_module_full.pt')
    r = convert(fixture('modules.pt'), 'full-model', 'ema', out)
    check(r.returncode == 1 and "not the module under 'ema' alone" in r.stderr and not os.path.exists(out),
          'convert modules.pt --to full-model --weights ema: refused', r.stderr.strip())
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    want = mlp(gan['netD'], torch.relu)(x)
    out = os.path.join(tmp, 'netD_full.pth')
    r = convert(gan_path, 'full-model', 'netD', out)
    if check(r.returncode == 0, 'convert --to full-model --weights netD', r.stderr.strip()):
        model = torch.load(out, weights_only=False)
        with torch.no_grad():
            check(torch.allclose(model(x), want, atol=1e-6), 'convert --to full-model --weights netD: D(x)')
    out = os.path.join(tmp, 'netD_script.pt')
    r = convert(gan_path, 'torchscript', 'netD', out)
    if check(r.returncode == 0, 'convert --to torchscript --weights netD', r.stderr.strip()):
        with torch.no_grad():
            check(torch.allclose(torch.jit.load(out)(x), want, atol=1e-6), 'convert --to torchscript --weights netD: D(x)')
    # --ema with --weights: two answers to one question, refused before anything is written.
    for to in ('state-dict', 'torchscript'):
        out = os.path.join(tmp, 'both_' + to + '.pth')
        r = run('convert', ema_path, '--to', to, '--ema', '--weights', 'ema_state_dict', '-o', out)
        check(r.returncode == 1 and '--ema and --weights' in r.stderr and not os.path.exists(out),
              'convert --to %s --ema --weights: refused' % to, r.stderr.strip())

    # --ema takes the EMA of the model's own network: in gan_ema.pth the discriminator's EMA comes
    # first; in twins_ema.pth both networks (and EMAs) have one architecture and the EMA named after
    # the model's set ('net_a' -> 'ema_net_a') is the one. What torch.load reads back is that EMA.
    for name, want_set in (('gan_ema.pth', 'netG_ema'), ('twins_ema.pth', 'ema_net_a')):
        source = torch.load(fixture(name), map_location='cpu')
        out = os.path.join(tmp, name.replace('.pth', '_ema.pth'))
        r = run('convert', fixture(name), '--to', 'state-dict', '--ema', '-o', out)
        if check(r.returncode == 0, 'convert %s --ema' % name, r.stderr.strip()):
            ok, why = same_tensors(torch.load(out, weights_only=True), source[want_set])
            check(ok, 'convert %s --ema: torch reads back %s' % (name, want_set), why)
            check("EMA weights under '%s'" % want_set in r.stdout, 'convert %s --ema: the plan names %s' %
                  (name, want_set), r.stdout)
    # Refused, naming the sets: two EMAs that fit alike, or only another network's EMA.
    for name, words in (('two_emas.pth', ['several EMA weights fit', "'ema_1'", "'ema_2'", '--weights']),
                        ('other_ema.pth', ["no EMA weights in the file fit the model's weights under 'netG'",
                                           "'netD_ema'", 'shape'])):
        out = os.path.join(tmp, 'never_' + name)
        r = run('convert', fixture(name), '--to', 'state-dict', '--ema', '-o', out)
        check(r.returncode == 1 and all(w in r.stderr for w in words) and not os.path.exists(out),
              'convert %s --ema: refused' % name, r.stderr.strip())

    # The optimizer paired by the shapes of its state (Adam's exp_avg, SGD's momentum_buffer), not
    # by the file's order: gan_ema.pth lists the discriminator's optimizer first.
    gan_ema = torch.load(fixture('gan_ema.pth'), map_location='cpu')
    for weights, opt in (('netG', 'optG'), ('netD', 'optD')):
        shapes = [list(t.shape) for t in gan_ema[weights].values()]
        state = gan_ema[opt]['state']
        check(all(list(v.shape) == shapes[i] for i, st in state.items() for k, v in st.items() if k != 'step'),
              'gan_ema.pth: %s\'s state has %s\'s shapes (as torch reads it)' % (opt, weights))
        args = ['info', fixture('gan_ema.pth'), '--json'] + ([] if weights == 'netG' else ['--weights', weights])
        r = run(*args)
        if check(r.returncode == 0, ' '.join(args[:1] + args[2:]), r.stderr.strip()):
            j = json.loads(r.stdout)
            check(j['optimizer']['path'] == [opt] and
                  [p.get('name') for p in j['optimizer'].get('parameters', [])] == list(gan_ema[weights]) and
                  not any('paired by order' in w for w in j['warnings']),
                  'info gan_ema.pth%s: %s, by shape' % ('' if weights == 'netG' else ' --weights ' + weights, opt),
                  '%s %s' % (j['optimizer']['path'], j['warnings']))
    # Shapes alike: the first optimizer in the file, and a warning that says so.
    r = run('info', fixture('twins_ema.pth'), '--json')
    if check(r.returncode == 0, 'info twins_ema.pth', r.stderr.strip()):
        j = json.loads(r.stdout)
        check(j['optimizer']['path'] == ['opt_b'] and
              any('paired by order' in w and "'opt_a'" in w and "'opt_b'" in w for w in j['warnings']),
              'info twins_ema.pth: the first optimizer, said to be paired by order',
              '%s %s' % (j['optimizer']['path'], j['warnings']))

    # safetensors: the other sets of weights are said to be left out as weights, with the option
    # that writes each, not as metadata it cannot hold.
    out = os.path.join(tmp, 'gan_ema.safetensors')
    r = run('convert', fixture('gan_ema.pth'), '--to', 'safetensors', '--ema', '-o', out, '--json')
    if check(r.returncode == 0, 'convert gan_ema.pth --to safetensors --ema', r.stderr.strip()):
        lost = {e['entry']: e['reason'] for e in json.loads(r.stdout)['lost']}
        for other in ('netD', 'netD_ema'):
            check('another set of weights' in lost.get(other, '') and "--weights '%s'" % other in lost[other] and
                  'metadata' not in lost[other], 'convert --to safetensors: %s said to be another set of weights' %
                  other, repr(lost.get(other)))
        ok, why = same_tensors(read_safetensors(out), gan_ema['netG_ema'], ordered=False)
        check(ok, 'convert gan_ema.pth --to safetensors --ema: netG_ema\'s tensors', why)

    # predict: torch's logits with the chosen set.
    for path, weights, sd, act, flags in ((gan_path, 'netD', gan['netD'], torch.relu, []),
                                          (ema_path, 'ema_state_dict', ema['ema_state_dict'], torch.tanh,
                                           ['--activation', 'tanh'])):
        width = sd['0.weight'].shape[1]
        rows = [[round(0.25 * (i + 1) - 0.1 * j, 3) for j in range(width)] for i in range(2)]
        args = ['predict', path, '--json', '--weights', weights, '--probabilities', 'none'] + flags
        for row in rows:
            args += ['--input', ','.join(str(v) for v in row)]
        r = run(*args)
        where = 'predict %s --weights %s' % (os.path.basename(path), weights)
        if check(r.returncode == 0, where, r.stderr.strip()):
            got = json.loads(r.stdout)
            logits = [o['logits'] for o in got['outputs']]
            want = mlp(sd, act)(torch.tensor(rows, dtype=torch.float32)).tolist()
            check(logits is not None and all(abs(g - w) <= 1e-5 for gr, wr in zip(logits, want) for g, w in zip(gr, wr))
                  and len(logits) == len(want), where + ': torch\'s logits', '%s vs %s' % (logits, want))

    # diff: one path for both files, or one each (the model against its EMA in one file).
    r = run('diff', ema_path, ema_path, '--json', '--weights', 'state_dict', '--weights', 'ema_state_dict')
    if check(r.returncode == 1, 'diff ema.pth ema.pth --weights state_dict --weights ema_state_dict: differ',
             r.stderr.strip()):
        j = json.loads(r.stdout)
        diffs = {t['name']: t['max_abs_diff'] for t in j['tensors']}
        want = {k: float((ema['ema_state_dict'][k].double() - v.double()).abs().max())
                for k, v in ema['state_dict'].items()}
        check(set(diffs) == set(want) and all(close(diffs[k], want[k], 1e-6) for k in want),
              'diff model vs EMA: torch\'s largest differences', '%s vs %s' % (diffs, want))
        check(j.get('weights') == {'a': 'state_dict', 'b': 'ema_state_dict'}, 'diff --json: the sets compared',
              str(j.get('weights')))
    r = run('diff', gan_path, gan_path, '--weights', 'netD')
    check(r.returncode == 0 and 'weights equal' in r.stdout, 'diff gan.pth gan.pth --weights netD: equal',
          r.stdout + r.stderr)
    r = run('diff', gan_path, gan_path, '--weights', 'netD', '--weights', 'netG', '--weights', 'netD')
    check(r.returncode == 2 and '--weights' in r.stderr, 'diff with --weights three times: refused', r.stderr.strip())

    # series: the chosen set followed through the files.
    r = run('series', ema_path, gan_path, '--json', '--weights', 'ema_state_dict')
    check(r.returncode == 2 and gan_path in r.stderr, 'series: a file without the set is named', r.stderr.strip())
    r = run('series', ema_path, ema_path, '--json', '--weights', 'ema_state_dict')
    if check(r.returncode == 0, 'series --weights ema_state_dict', r.stderr.strip()):
        layers = {x['name']: x['norm'] for x in json.loads(r.stdout)['layers']}
        want = {k: float(v.double().norm()) for k, v in ema['ema_state_dict'].items()}
        check(set(layers) == set(want) and all(close(layers[k][0], want[k], 1e-6) for k in want),
              'series --weights ema_state_dict: torch\'s norms', '%s vs %s' % (layers, want))

    # Refusals: exit 1 (diff: 2), one line naming the file, the path and the file's sets.
    sets = ["'netG' (the model's weights)", "'netD'"]
    for weights, words in (('netX', ["nothing is at 'netX'"]), ('optD', ["'optD' holds an optimizer's state"]),
                           ('epoch', ["'epoch' holds a value of type int"]),
                           ('netD/0.weight', ["'netD/0.weight' holds a tensor (float32, shape [10, 6])"])):
        for command in (['info', gan_path], ['tensors', gan_path], ['show', gan_path, '0.weight'],
                        ['export', gan_path, '0.weight', '-o', os.path.join(tmp, 'never.npy')],
                        ['convert', gan_path, '--to', 'state-dict', '-o', os.path.join(tmp, 'never.pth')],
                        ['predict', gan_path, '--input', '1,2,3,4,5,6'], ['series', gan_path],
                        ['diff', gan_path, gan_path]):
            r = run(*command, '--weights', weights)
            status = 2 if command[0] in ('diff', 'series') else 1  # README: diff and series exit 2
            message = r.stderr.strip()
            check(r.returncode == status and message.startswith('ckpt: %s: ' % gan_path) and '\n' not in message and
                  all(w in message for w in words + sets) and not r.stdout,
                  '%s --weights %s: refused with exit %d' % (command[0], weights, status), message)
    check(not os.path.exists(os.path.join(tmp, 'never.npy')) and not os.path.exists(os.path.join(tmp, 'never.pth')),
          'refused commands wrote nothing')
    r = run('tensors', fixture('dotted.pth'), '--weights', 'x.y.z')
    check(r.returncode == 1 and "'x.y.z' could mean 'x.y/z', 'x/y.z'" in r.stderr, 'an ambiguous dotted path: refused',
          r.stderr.strip())

    # --help says what the option takes, and for diff how it applies to the two files.
    for command in ('info', 'tensors', 'show', 'export', 'convert', 'diff', 'series', 'predict'):
        r = run(command, '--help')
        check(r.returncode == 0 and '--weights' in r.stdout, '%s --help lists --weights' % command)
    check('given twice' in run('diff', '--help').stdout, 'diff --help says how --weights applies to the two files')

    shutil.rmtree(tmp, ignore_errors=True)
    # A hostile file: a dict holding itself under 'a' and 'a.a' beside 20,000 other keys. A dotted
    # --weights path over it must end (the search counts every child it lists), with a refusal.
    import pickle
    d = {'k%05d' % i: i for i in range(20000)}
    d['a'] = d
    d['a.a'] = d
    hostile = os.path.join(tempfile.mkdtemp(prefix='ckpt-weights-hostile-'), 'selfref.pkl')
    with open(hostile, 'wb') as f:
        pickle.dump(d, f, protocol=2)
    try:
        r = subprocess.run([ckpt, 'info', hostile, '--weights', 'a.' * 60 + 'zz'], capture_output=True, text=True,
                           timeout=120)
        ended = True
    except subprocess.TimeoutExpired:
        r, ended = None, False
    check(ended and r.returncode == 1 and 'selfref.pkl' in r.stderr,
          'a self-holding dict with 20,000 keys: a dotted --weights path is refused, not searched without end',
          r.stderr.strip() if r else 'did not end in 120 s')
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
