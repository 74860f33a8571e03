#!/usr/bin/env python3
"""Training frameworks' checkpoints judged by PyTorch: an SWA AveragedModel's state dict against
the plain model's (its n_averaged set aside, the 'module.' prefix recognised), Lightning's
hyper_parameters (an AttributeDict, a dict subclass) carried as a plain dict and used as the
model_config, DeepSpeed's global_steps as the step, and the fields of Hugging Face's
training_args.bin (a pickled TrainingArguments). Inputs are written here by torch 1.13, with
small stand-ins for the frameworks' own classes (the frameworks are not installed)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from results import Results  # noqa: E402
import framework_stubs  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402



class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.encoder(x))))


def run(ckpt, *args):
    p = subprocess.run([ckpt, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check_swa(r, ckpt, d):
    torch.manual_seed(0)
    net = Net()
    swa = torch.optim.swa_utils.AveragedModel(net)
    for _ in range(3):  # three models averaged: n_averaged 3, weights their mean
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        swa.update_parameters(net)
    swa_path, plain_path = os.path.join(d, 'swa.pth'), os.path.join(d, 'plain.pth')
    torch.save(swa.state_dict(), swa_path)
    torch.save(swa.module.state_dict(), plain_path)  # the averaged model itself, as a plain state dict
    n_averaged = int(swa.n_averaged.item())
    count_note = 'n_averaged of the %s file (%d) is the count of models torch.optim.swa_utils.AveragedModel averaged'

    # Either order, with or without the prefix mapped away: the weights pair up and are equal.
    for a, b, side, extra in ((swa_path, plain_path, 'first', []), (plain_path, swa_path, 'second', []),
                              (swa_path, plain_path, 'first', ['--map', 'module.='])):
        where = 'diff %s %s %s' % (os.path.basename(a), os.path.basename(b), ' '.join(extra))
        code, out, err = run(ckpt, 'diff', a, b, *extra)
        r.check(code == 0, where + ': exit 0 (the weights are the same)', 'exit %d\n%s%s' % (code, out, err))
        r.check('weights equal' in out and ' 0 removed, 0 added' in out, where + ': weights equal, nothing removed', out)
        r.check(count_note % (side, n_averaged) in out, where + ': n_averaged said for what it is', out)
        pairs = len(swa.module.state_dict())
        r.check('%d tensors in both: %d identical' % (pairs, pairs) in out, where + ': every tensor paired', out)
        code, out, err = run(ckpt, 'diff', '--json', a, b, *extra)
        j = json.loads(out) if code == 0 else {}
        aside = j.get('set_aside', [])
        r.check(len(aside) == 1 and aside[0]['name'] == 'n_averaged' and aside[0]['value'] == n_averaged and
                aside[0]['file'] == ('a' if side == 'first' else 'b'), where + ' --json: set_aside', json.dumps(aside))
        r.check(j.get('only_a', j.get('removed', [])) == [] and j.get('only_b', j.get('added', [])) == [],
                where + ' --json: nothing only on one side', out[:2000])

    # Two AveragedModel files: their counters pair like any tensor, and differ when the counts do.
    swa.update_parameters(net)
    swa2_path = os.path.join(d, 'swa2.pth')
    torch.save(swa.state_dict(), swa2_path)
    code, out, _ = run(ckpt, 'diff', swa_path, swa2_path)
    r.check(code == 1 and 'n_averaged  different' in out and 'set aside' not in out,
            'diff swa swa2: the counters compared, not set aside', out)

    # Stripping the wrapper's prefix gives the averaged model's own state dict: the counter left out.
    out_path = os.path.join(d, 'swa_stripped.pth')
    code, out, err = run(ckpt, 'convert', swa2_path, '--to', 'state-dict', '--strip-prefix', 'module.', '-o', out_path)
    if r.check(code == 0, 'convert swa --strip-prefix module.: exit 0', out + err):
        got = torch.load(out_path)
        model = Net()
        try:
            model.load_state_dict(got)  # strict: an unexpected n_averaged would raise
            loaded = True
        except RuntimeError as e:
            loaded = False
            err += str(e)
        r.check(loaded, 'convert swa --strip-prefix module.: loads into the model, strictly', err)
        want = swa.module.state_dict()
        r.check(list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want),
                'convert swa --strip-prefix module.: the averaged weights', str(list(got)))
        r.check('n_averaged' in out + err, 'convert swa --strip-prefix module.: says n_averaged is left out', out + err)

    # info names the convention.
    code, out, err = run(ckpt, 'info', swa_path)
    r.check(code == 0 and 'Convention: torch.optim.swa_utils.AveragedModel' in out, 'info swa: convention named',
            out + err)
    # ... and counts the parameters AveragedModel.parameters() gives: n_averaged is a buffer.
    code, out, err = run(ckpt, 'info', '--json', swa_path)
    count = json.loads(out)['state_dict']['parameters'] if code == 0 else None
    want = sum(p.numel() for p in swa.parameters())
    r.check(count == want, 'info swa --json: parameters as AveragedModel.parameters() counts them',
            'ckpt %r, torch %d' % (count, want))


def check_lightning(r, ckpt, d):
    from pytorch_lightning.utilities.parsing import AttributeDict
    torch.manual_seed(1)
    net = Net()
    hp = AttributeDict(lr=1e-3, hidden=16, in_features=8, num_classes=4, weight_decay=0.01, name='mlp',
                       layers=[8, 16, 4], extra={'dropout': 0.1})
    src = os.path.join(d, 'lit.ckpt')
    torch.save({'epoch': 2, 'global_step': 60, 'pytorch-lightning_version': '1.9.5',
                'state_dict': {'model.' + k: v for k, v in net.state_dict().items()},
                'hparams_name': 'kwargs', 'hyper_parameters': hp}, src)

    # Shown as Python shows it: a dict subclass without a repr of its own is repr'd as its dict.
    code, out, err = run(ckpt, 'show', src, 'hyper_parameters')
    r.check(code == 0 and out.rstrip('\n').endswith('AttributeDict): ' + repr(hp)),
            'show hyper_parameters: Python\'s repr %s' % repr(hp), out + err)

    for target in ('checkpoint', 'inference'):
        dst = os.path.join(d, 'lit_%s.pth' % target)
        code, out, err = run(ckpt, 'convert', src, '--to', target, '-o', dst)
        where = 'convert lightning --to ' + target
        if not r.check(code == 0, where + ': exit 0', out + err):
            continue
        r.check('AttributeDict' in out + err and 'plain dict' in out + err, where + ': says the class became a dict',
                out + err)
        got = torch.load(dst)  # written by ckpt here (torch 1.13's weights_only reader lacks BINFLOAT)
        cfg = got.get('model_config')
        r.check(type(cfg) is dict and cfg == dict(hp), where + ': model_config is the hyper_parameters as a dict',
                repr(cfg))
        for k, v in net.state_dict().items():
            w = got['model_state_dict'].get('model.' + k, got['model_state_dict'].get(k))
            r.check(w is not None and torch.equal(w, v), where + ': weight ' + k)


def check_deepspeed_step(r, ckpt, d):
    torch.manual_seed(2)
    files = []
    for steps in (500, 1000):
        net = Net()
        path = os.path.join(d, 'global_step%d' % steps, 'mp_rank_00_model_states.pt')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save({'module': {k: v.half() for k, v in net.state_dict().items()}, 'buffer_names': [],
                    'optimizer': None, 'lr_scheduler': {'last_batch_iteration': steps - 1},
                    'skipped_steps': 3, 'global_steps': steps, 'global_samples': steps * 16,
                    'dp_world_size': 1, 'mp_world_size': 1, 'ds_version': '0.12.6'}, path)
        files.append((path, steps))
    code, out, err = run(ckpt, 'series', '--json', files[1][0], files[0][0])
    if r.check(code == 0, 'series deepspeed --json: exit 0', out + err):
        points = json.loads(out).get('checkpoints', json.loads(out).get('points', []))
        got = [(p.get('step'), os.path.basename(os.path.dirname(p.get('file', '')))) for p in points]
        want = [(steps, os.path.basename(os.path.dirname(path))) for path, steps in files]
        r.check(got == want, 'series deepspeed: global_steps is the step, and orders the files', '%s vs %s' % (got, want))
    code, out, err = run(ckpt, 'series', files[0][0], files[1][0])
    r.check(code == 0 and 'step 500' in out and 'step 1000' in out, 'series deepspeed text: step 500 and 1000', out + err)


def check_training_args(r, ckpt, d):
    from transformers.training_args import TrainingArguments
    args = TrainingArguments(learning_rate=3e-5, num_train_epochs=2.0, seed=7)
    path = os.path.join(d, 'training_args.bin')
    torch.save(args, path)
    code, out, err = run(ckpt, 'info', path)
    r.check(code == 0, 'info training_args.bin: exit 0', out + err)
    meta = out.split('Metadata:\n', 1)[1] if 'Metadata:\n' in out else ''
    for field, value in vars(args).items():
        if field == 'evaluation_strategy':  # an enum member: named, not a plain value
            r.check('\n  evaluation_strategy: ' in meta and 'STEPS' in meta, 'info training_args.bin: ' + field, meta)
            continue
        r.check('\n  %s: %s\n' % (field, repr(value)) in '\n' + meta, 'info training_args.bin: %s = %r' % (field, value),
                meta)
    # The JSON lists the same fields beside the class.
    code, out, err = run(ckpt, 'info', '--json', path)
    meta = json.loads(out)['metadata'] if code == 0 else {}
    r.check(meta.get('__class__') == 'transformers.training_args.TrainingArguments',
            'info --json training_args.bin: __class__', json.dumps(meta)[:2000])
    for field, value in vars(args).items():
        if isinstance(value, (int, float, str, bool)) and not hasattr(value, 'name'):
            r.check(meta.get(field) == value, 'info --json training_args.bin: %s = %r' % (field, value),
                    repr(meta.get(field)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')  # unused: the inputs are written here
    opts = ap.parse_args()
    r = Results()
    with tempfile.TemporaryDirectory() as d:
        framework_stubs.install(os.path.join(d, 'stubs'))
        check_swa(r, opts.ckpt, d)
        check_lightning(r, opts.ckpt, d)
        check_deepspeed_step(r, opts.ckpt, d)
        check_training_args(r, opts.ckpt, d)
    return r.finish()


if __name__ == '__main__':
    sys.exit(main())
