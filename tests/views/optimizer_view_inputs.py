#!/usr/bin/env python3
"""Checkpoints for tst_optimizerview, written by real torch into --out, with torch's own account of
each in --out/expected.json: how many parameters the optimizer's param_groups list, how many of
them have state (a frozen layer took no step), the groups, and the step.

- partial_state.pth: three param groups, the LSTM's frozen for the one step taken, so that 21
  parameters are listed and 5 have state;
- lightning_no_scheduler.ckpt: Lightning's layout with lr_schedulers=[] (no scheduler configured);
- pickled_optimizer.pth: an object holding a torch.optim.Adam instance, pickled whole (as OpenNMT's
  checkpoints keep it under optim.optimizer), beside an LR scheduler's state;
- adam.pth, adamw.pth, adam_amsgrad.pth, adamw_amsgrad.pth: one step of each, whose param groups tell
  them apart;
- optimizer.pt: an optimizer's state dict saved alone, as Hugging Face's Trainer saves it;
- zero_pp_rank_0_mp_rank_00_optim_states.pt: a DeepSpeed ZeRO stage 2 optimizer partition
  (tests/fixtures/deepspeed_layouts.py);
- state_only.pth: an optimizer_state_dict holding an SGD's 'state' without its 'param_groups', which
  torch.optim's load_state_dict refuses (checked here): no optimizer, and the view says why;
- weights_only.pth: the same model's state dict alone, which names no optimizer."""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(16, 8)
        self.ln = nn.LayerNorm(8)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.ln(self.proj(h))


class Optim:
    """What OpenNMT-py's onmt.Optim did: a wrapper keeping the torch optimizer as an attribute."""

    def __init__(self, optimizer):
        self.method = 'adam'
        self.lr = 1e-3
        self.optimizer = optimizer


def account(sd):
    return {'parameters': sum(len(g['params']) for g in sd['param_groups']),
            'with_state': len(sd['state']),
            'groups': len(sd['param_groups'])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    expected = {}

    torch.manual_seed(0)
    m = LM()
    opt = torch.optim.Adam([
        {'params': [m.emb.weight], 'lr': 1e-3},
        {'params': list(m.lstm.parameters()), 'lr': 5e-4, 'weight_decay': 0.01},
        {'params': list(m.proj.parameters()) + list(m.ln.parameters()), 'lr': 1e-4, 'betas': (0.8, 0.9)},
    ])
    for q in m.lstm.parameters():
        q.requires_grad_(False)
    m(torch.randint(0, 50, (2, 5))).sum().backward()
    opt.step()
    torch.save({'epoch': 1, 'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()},
               os.path.join(out, 'partial_state.pth'))
    expected['partial_state.pth'] = account(opt.state_dict())

    torch.manual_seed(1)
    small = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    sopt = torch.optim.SGD(small.parameters(), lr=0.1, momentum=0.9)
    small(torch.randn(2, 4)).sum().backward()
    sopt.step()
    torch.save({'epoch': 1, 'global_step': 1, 'pytorch-lightning_version': '1.9.0',
                'state_dict': {'model.' + k: v for k, v in small.state_dict().items()},
                'optimizer_states': [sopt.state_dict()], 'lr_schedulers': [], 'callbacks': {}, 'loops': {}},
               os.path.join(out, 'lightning_no_scheduler.ckpt'))
    expected['lightning_no_scheduler.ckpt'] = account(sopt.state_dict())

    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    aopt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(aopt, step_size=2)
    for _ in range(3):
        aopt.zero_grad()
        net(torch.randn(2, 4)).sum().backward()
        aopt.step()
        sched.step()
    torch.save({'model': net.state_dict(), 'optim': Optim(aopt), 'epoch': 3, 'lr_scheduler': sched.state_dict()},
               os.path.join(out, 'pickled_optimizer.pth'))
    sd = aopt.state_dict()
    expected['pickled_optimizer.pth'] = dict(account(sd), step=max(float(s['step']) for s in sd['state'].values()),
                                             path='optim/optimizer')

    # Adam and AdamW keep alike state; their param groups' keys differ (which, and in what order).
    # With amsgrad both keep max_exp_avg_sq as well: adam_amsgrad.pth, adamw_amsgrad.pth.
    for cls in (torch.optim.Adam, torch.optim.AdamW):
        for amsgrad in (False, True):
            torch.manual_seed(3)
            lin = nn.Linear(3, 2)
            o = cls(lin.parameters(), lr=1e-3, amsgrad=amsgrad)
            lin(torch.randn(2, 3)).sum().backward()
            o.step()
            name = cls.__name__.lower() + ('_amsgrad' if amsgrad else '') + '.pth'
            torch.save({'model_state_dict': lin.state_dict(), 'optimizer_state_dict': o.state_dict()},
                       os.path.join(out, name))
            expected[name] = dict(account(o.state_dict()), cls=type(o).__name__, amsgrad=o.defaults['amsgrad'],
                                  keys=[k for k in o.state_dict()['param_groups'][0] if k != 'params'])

    torch.manual_seed(4)
    lin = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    o = torch.optim.AdamW(lin.parameters(), lr=5e-5)
    lin(torch.randn(2, 3)).sum().backward()
    o.step()
    torch.save(o.state_dict(), os.path.join(out, 'optimizer.pt'))
    expected['optimizer.pt'] = account(o.state_dict())

    state_only = {'state': o.state_dict()['state']}
    try:
        torch.optim.AdamW(lin.parameters(), lr=5e-5).load_state_dict(state_only)
        raise SystemExit('torch resumed an optimizer from a state without param_groups')
    except KeyError:
        pass
    torch.save({'model_state_dict': lin.state_dict(), 'optimizer_state_dict': state_only},
               os.path.join(out, 'state_only.pth'))
    torch.save(lin.state_dict(), os.path.join(out, 'weights_only.pth'))

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
    import deepspeed_layouts
    deepspeed_layouts.install_stubs(os.path.join(out, 'stubs'))
    _, optim_states, truth = deepspeed_layouts.write_zero2(os.path.join(out, 'ds'))
    base = torch.load(optim_states, weights_only=False)['optimizer_state_dict']['base_optimizer_state']
    expected['zero2'] = dict(account(base), path=os.path.relpath(optim_states, out), stage=truth['stage'])

    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)


if __name__ == '__main__':
    main()
