#!/usr/bin/env python3
"""The optimizer's class as `ckpt info` (text and JSON) and `ckpt diff` name it, judged by the class torch 1.13
instantiated: Adam and AdamW (each with and without amsgrad) keep alike state, and their param
groups' keys tell them apart; "Adam/AdamW" is left only where the groups cannot tell (groups
without torch 1.13's foreach/maximize keys, as older torch wrote them). SGD for contrast."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
from results import Results  # noqa: E402

# Param-group keys torch 1.13 writes that older versions did not (maximize came in 1.11, foreach in
# 1.12, differentiable and fused in 1.13): without them the groups no longer say Adam or AdamW.
NEWER_KEYS = ('maximize', 'foreach', 'capturable', 'differentiable', 'fused')


def write(tmp, name, cls, older=False, **kwargs):
    """One step of `cls` on a small Linear, saved as a training checkpoint; returns the path and
    the name the CLI should give: torch's class name, " (AMSGrad)" where amsgrad is on."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = cls(lin.parameters(), lr=1e-3, **kwargs)
    lin(torch.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    if older:
        for g in sd['param_groups']:
            for k in NEWER_KEYS:
                g.pop(k, None)
    path = os.path.join(tmp, name + '.pth')
    torch.save({'model_state_dict': lin.state_dict(), 'optimizer_state_dict': sd}, path)
    want = 'Adam/AdamW' if older else type(opt).__name__
    if opt.defaults.get('amsgrad'):
        want += ' (AMSGrad)'
    return path, want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-optimizer-class-')
    cases = [write(tmp, 'adam', torch.optim.Adam),
             write(tmp, 'adamw', torch.optim.AdamW),
             write(tmp, 'adam_amsgrad', torch.optim.Adam, amsgrad=True),
             write(tmp, 'adamw_amsgrad', torch.optim.AdamW, amsgrad=True),
             write(tmp, 'adam_older', torch.optim.Adam, older=True),
             write(tmp, 'adamw_amsgrad_older', torch.optim.AdamW, older=True, amsgrad=True),
             write(tmp, 'sgd', torch.optim.SGD, momentum=0.9)]
    for path, want in cases:
        name = os.path.basename(path)
        r = subprocess.run([a.ckpt, 'info', path], capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, name, r.stderr):
            continue
        line = next((l for l in r.stdout.splitlines() if l.startswith('Optimizer: ')), '')
        res.check(('\u2014 %s, ' % want) in line, name + ': ckpt info', '%r does not name %r' % (line, want))
        r = subprocess.run([a.ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
        if res.check(r.returncode == 0, name + ': ckpt info --json', r.stderr):
            o = json.loads(r.stdout)['optimizer']
            res.check(o['type'] == want, name + ': ckpt info --json', '%r, expected %r' % (o['type'], want))

        # `ckpt diff` against itself: both sides named alike, in its text and its JSON.
        r = subprocess.run([a.ckpt, 'diff', path, path, '--json'], capture_output=True, text=True, timeout=120)
        if res.check(r.returncode in (0, 1), name + ': ckpt diff --json', r.stderr):
            o = json.loads(r.stdout)['optimizer']
            res.check(o['a']['type'] == want and o['b']['type'] == want, name + ': ckpt diff --json',
                      '%r, expected %r' % (o, want))
        r = subprocess.run([a.ckpt, 'diff', path, path], capture_output=True, text=True, timeout=120)
        line = next((l for l in r.stdout.splitlines() if l.startswith('optimizer: ')), '')
        # Against itself: "optimizer: unchanged (Adam lr 0.001 step 1)".
        res.check(line.startswith('optimizer: unchanged (%s lr ' % want), name + ': ckpt diff',
                  '%r, expected %r' % (line, want))
        # A step only where the optimizer keeps one (SGD keeps none): never "step -".
        res.check('step -' not in line and (('step ' in line) == (want != 'SGD')), name + ': ckpt diff step',
                  line)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
