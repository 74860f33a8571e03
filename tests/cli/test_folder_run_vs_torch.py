#!/usr/bin/env python3
"""Runs, folders and optimizer notes, judged by torch 1.13 on files it writes here:
- `ckpt series DIR` of a Trainer output_dir (checkpoint-5, checkpoint-10, checkpoint-100 folders,
  written out of order; text order would put checkpoint-10 first) takes its checkpoints by step, and
  the norms and drifts are torch's; `ckpt info DIR` says it is a run and what to do, and
  `info --json DIR` lists the run's checkpoint folders by step;
- `ckpt series` text labels each of a tensor's rows (norm, from first, from prev);
- the note on an optimizer that keeps no state tensors is worded from its hyper-parameters (SGD
  with momentum 0; SGD with momentum or Adam saved before their first step) and said once, also
  where a file has several optimizers (Lightning's optimizer_states)."""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import test_folder_vs_torch  # noqa: E402
from generate_fixtures import write_safetensors  # noqa: E402
from results import Results  # noqa: E402


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)


def close(a, b):
    return abs(a - b) <= 1e-9 + 1e-6 * abs(b)


def check_run_folder(ckpt, tmp, res):
    root = os.path.join(tmp, 'run')
    os.makedirs(root)
    sds = {}
    for step in (100, 5, 10):  # written out of order
        folder, sd, _, _, _ = test_folder_vs_torch.trainer_checkpoint(root, step=step)
        moved = collections.OrderedDict((k, v + step / 100.0) for k, v in sd.items())
        write_safetensors(os.path.join(folder, 'model.safetensors'), moved, {'format': 'pt'})
        sds[step] = moved
    steps = sorted(sds)
    order = ['checkpoint-%d' % s for s in steps]

    r = run(ckpt, 'series', '--json', root)
    if res.check(r.returncode == 0, 'series of a run folder: exit 0', r.stderr):
        j = json.loads(r.stdout)
        got = [os.path.basename(os.path.dirname(p['file'])) for p in j['checkpoints']]  # each folder's model.safetensors
        res.check(got == order, 'series of a run folder: its checkpoint folders by step', '%r, expected %r' % (got, order))
        res.check([p.get('step') for p in j['checkpoints']] == steps, 'series of a run folder: the steps',
                  '%r' % [p.get('step') for p in j['checkpoints']])
        layers = {l['name']: l for l in j['layers']}
        first = sds[steps[0]]
        for name in first:
            want_norm = [float(sds[s][name].double().norm()) for s in steps]
            want_first = [float((sds[s][name].double() - first[name].double()).norm()) for s in steps]
            got = layers.get(name, {})
            res.check(all(close(a, b) for a, b in zip(got.get('norm', []), want_norm)) and
                      len(got.get('norm', [])) == len(want_norm), 'series of a run folder: %s norm' % name,
                      '%r vs torch %r' % (got.get('norm'), want_norm))
            res.check(all(close(a, b) for a, b in zip(got.get('drift_from_first', []), want_first)),
                      'series of a run folder: %s drift from the first' % name,
                      '%r vs torch %r' % (got.get('drift_from_first'), want_first))

    # The text: the run said, and each of a tensor's three rows labelled.
    r = run(ckpt, 'series', root)
    if res.check(r.returncode == 0, 'series text of a run folder: exit 0', r.stderr):
        out = r.stdout
        res.check(('run folder %s: 3 checkpoint folders' % root) in out, 'series text says the run folder was taken',
                  out[:600])
        lines = out.split('\n')
        name = 'embed.weight'
        at = lines.index('  ' + name) if ('  ' + name) in lines else -1
        if res.check(at >= 0, 'series text has a block for ' + name, out[:2000]):
            block = lines[at + 1:at + 4]
            labels = [l[4:14].rstrip() for l in block]
            res.check(labels == ['norm', 'from first', 'from prev'], 'series text labels each row', '%r' % block)
            res.check(len({len(l) for l in block}) == 1, 'series text rows are aligned', '%r' % block)
            norms = [float(x) for x in block[0][14:].split()]
            want = [float(sds[s][name].double().norm()) for s in steps]
            res.check(len(norms) == 3 and all(abs(a - b) <= 1e-3 * abs(b) for a, b in zip(norms, want)),
                      'series text norm row is torch\'s norm', '%r vs %r' % (norms, want))
            prev = [float(x) for x in block[2][14:].split()[1:]]
            want = [float((sds[b][name].double() - sds[a][name].double()).norm()) for a, b in zip(steps, steps[1:])]
            res.check(len(prev) == 2 and all(abs(a - b) <= 1e-3 * abs(b) for a, b in zip(prev, want)),
                      'series text from-prev row is torch\'s drift', '%r vs %r' % (prev, want))

    # info: what it is and what to do.
    r = run(ckpt, 'info', root)
    err = r.stderr
    res.check(r.returncode != 0 and 'training run' in err and 'ckpt series ' + root in err and
              os.path.join(root, order[-1]) in err and 'checkpoint-5, checkpoint-10, checkpoint-100' in err,
              'info of a run folder says what it is, its checkpoints by step, and what to do', err)

    # info --json: still no checkpoint (exit 1, the same sentence), but the run's folders by step for
    # a script to follow, with each one's trainer_state.json step.
    r = run(ckpt, 'info', '--json', root)
    j = json.loads(r.stdout) if r.stdout.strip() else {}
    got = [c.get('name') for c in j.get('run', {}).get('checkpoints', [])]
    res.check(r.returncode == 1 and 'training run' in j.get('error', '') and got == order and
              [c.get('global_step') for c in j['run']['checkpoints']] == steps and j['run'].get('found') == 3,
              'info --json of a run folder lists its checkpoint folders by step', r.stdout[:600] + r.stderr)

    # A folder that is a checkpoint itself is one point, not a run.
    r = run(ckpt, 'series', '--json', os.path.join(root, 'checkpoint-5'), os.path.join(root, 'checkpoint-10'))
    res.check(r.returncode == 0 and len(json.loads(r.stdout)['checkpoints']) == 2,
              'series of two checkpoint folders: two points', r.stderr)


def optimizer_lines(text):
    return text.split('Security:')[0]


def check_no_state_note(ckpt, tmp, res):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    stepped_plain = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(2, 4)).sum().backward()
    stepped_plain.step()
    cases = [
        # name, optimizer, the reason torch's own state dict gives
        ('sgd_momentum_no_step', torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
         'no step was taken yet, so it holds no state'),
        ('adam_no_step', torch.optim.Adam(net.parameters(), lr=0.1), 'no step was taken yet, so it holds no state'),
        ('sgd_plain_stepped', stepped_plain, 'SGD without momentum keeps none'),
    ]
    for name, opt, reason in cases:
        osd = opt.state_dict()
        # What torch saved is what the wording rests on.
        momenta = [g.get('momentum') for g in osd['param_groups']]
        tensors = [v for s in osd['state'].values() for v in s.values() if torch.is_tensor(v)]
        res.check(not tensors, name + ': torch keeps no state tensors', repr(osd['state']))
        if reason.startswith('SGD'):
            res.check(momenta == [0] and len(osd['state']) == 4, name + ': torch has momentum 0 and state', repr(osd))
        else:
            res.check(osd['state'] == {}, name + ': torch has an empty state before the first step', repr(osd['state']))
        path = os.path.join(tmp, name + '.pt')
        torch.save({'model': net.state_dict(), 'optimizer': osd}, path)
        j = json.loads(run(ckpt, 'info', '--json', path).stdout)
        note = j.get('optimizer', {}).get('mapping', {}).get('note', '')
        res.check(reason in note and (reason.startswith('SGD') or 'SGD without momentum' not in note),
                  name + ': the note says why from the hyper-parameters', note)
        text = optimizer_lines(run(ckpt, 'info', path).stdout)
        res.check(text.count('keeps no state tensors') == 1, name + ': the note is said once', text)

    # Several optimizers (Lightning's list): the model's note is not repeated in "which it updates".
    path = os.path.join(tmp, 'lightning_two.ckpt')
    torch.save({'epoch': 0, 'global_step': 0, 'pytorch-lightning_version': '1.9.0', 'state_dict': net.state_dict(),
                'optimizer_states': [torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9).state_dict(),
                                     torch.optim.Adam(net.parameters(), lr=0.1).state_dict()]}, path)
    r = run(ckpt, 'info', path)
    blocks = optimizer_lines(r.stdout).split('Optimizer: ')[1:]
    res.check(len(blocks) == 2, 'two optimizers listed', r.stdout)
    for b in blocks:
        res.check(b.count('keeps no state tensors') == 1, 'each optimizer\'s note said once', b)
        res.check('SGD without momentum' not in b, 'no SGD-without-momentum blamed for a momentum SGD or an Adam', b)


def check_output_dir_with_final_model(ckpt, tmp, res):
    """A Trainer's output_dir after trainer.save_model(): the final model at its top, the checkpoint
    folders saved during the run beside it. It opens as the final model, and says the run is there;
    `series` of it follows the checkpoint folders (one model is no series)."""
    root = os.path.join(tmp, 'out')
    os.makedirs(root)
    sds = {}
    for step in (20, 10, 30):
        folder, sd, _, _, _ = test_folder_vs_torch.trainer_checkpoint(root, step=step)
        moved = collections.OrderedDict((k, v + step / 10.0) for k, v in sd.items())
        write_safetensors(os.path.join(folder, 'model.safetensors'), moved, {'format': 'pt'})
        sds[step] = moved
    final = collections.OrderedDict((k, v * 2) for k, v in sds[30].items())
    write_safetensors(os.path.join(root, 'model.safetensors'), final, {'format': 'pt'})
    with open(os.path.join(root, 'config.json'), 'w') as f:
        json.dump({'architectures': ['Net'], 'model_type': 'net'}, f)
    steps = sorted(sds)
    order = ['checkpoint-%d' % s for s in steps]

    r = run(ckpt, 'info', '--json', root)
    if res.check(r.returncode == 0, 'info of an output_dir with a final model: exit 0', r.stderr):
        j = json.loads(r.stdout)
        res.check(j.get('folder', {}).get('model_file') == os.path.join(root, 'model.safetensors'),
                  'info of an output_dir reads the final model at its top', str(j.get('folder'))[:300])
        res.check(j.get('folder', {}).get('run_checkpoints') == order,
                  'info --json of an output_dir lists the run\'s checkpoint folders by number',
                  str(j.get('folder', {}).get('run_checkpoints')))
    r = run(ckpt, 'info', root)
    res.check(r.returncode == 0 and '3 checkpoint folders' in r.stdout and 'ckpt series ' + root in r.stdout,
              'info text of an output_dir says the run\'s checkpoint folders and how to follow them', r.stdout[-800:])

    r = run(ckpt, 'series', '--json', root)
    if res.check(r.returncode == 0, 'series of an output_dir with a final model: exit 0', r.stderr):
        j = json.loads(r.stdout)
        got = [os.path.basename(os.path.dirname(p['file'])) for p in j['checkpoints']]
        res.check(got == order, 'series of an output_dir follows its checkpoint folders by step', '%r' % got)
        layers = {l['name']: l for l in j['layers']}
        want = [float(sds[s]['embed.weight'].double().norm()) for s in steps]
        norms = layers.get('embed.weight', {}).get('norm', [])
        res.check(len(norms) == 3 and all(close(a, b) for a, b in zip(norms, want)),
                  'series of an output_dir: the norms are torch\'s', '%r vs torch %r' % (norms, want))

    # More checkpoint folders than are listed: the count says so, and the list is the first by number.
    for step in range(100, 200):
        os.makedirs(os.path.join(root, 'checkpoint-%d' % step))
    r = run(ckpt, 'info', '--json', root)
    if res.check(r.returncode == 0, 'info of an output_dir of 103 checkpoint folders: exit 0', r.stderr):
        f = json.loads(r.stdout).get('folder', {})
        listed = f.get('run_checkpoints', [])
        res.check(f.get('run_checkpoints_found') == 103 and len(listed) == 100 and listed[:3] == order and
                  listed[-1] == 'checkpoint-196', 'info --json: the first 100 of 103 checkpoint folders, by number',
                  '%r, %d listed, last %r' % (f.get('run_checkpoints_found'), len(listed), listed[-1:]))
    r = run(ckpt, 'info', root)
    res.check('the first 100 of 103 checkpoint folders' in r.stdout, 'info text: the first 100 of 103', r.stdout[-600:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')
    a = ap.parse_args()
    res = Results()
    with tempfile.TemporaryDirectory(prefix='ckpt-folder-run-') as tmp:
        check_run_folder(a.ckpt, tmp, res)
        check_no_state_note(a.ckpt, tmp, res)
        check_output_dir_with_final_model(a.ckpt, tmp, res)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
