#!/usr/bin/env python3
"""Checkpoints for tst_optimizerchoice, written by real torch into --out, with torch's own account of
each in --out/expected.json (per optimizer: its class, the parameters its param_groups list, how many
have state, and the attribute of the GAN whose parameters it was given):

- gan.pt: a GAN saved as two networks and two optimizers, the discriminator's (AdamW) before the
  generator's (Adam), as {'generator', 'discriminator', 'optimizer_D', 'optimizer_G'};
- single.pt: one network and its one optimizer."""
import argparse
import json
import os

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    discriminator = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 1))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.AdamW(discriminator.parameters(), lr=1e-4)
    for _ in range(2):
        fake = generator(torch.randn(5, 6))
        opt_d.zero_grad()
        discriminator(fake.detach()).mean().backward()
        opt_d.step()
        opt_g.zero_grad()
        (-discriminator(fake).mean()).backward()
        opt_g.step()
    torch.save({'generator': generator.state_dict(), 'discriminator': discriminator.state_dict(),
                'optimizer_D': opt_d.state_dict(), 'optimizer_G': opt_g.state_dict()},
               os.path.join(out, 'gan.pt'))
    torch.save({'model': generator.state_dict(), 'optimizer': opt_g.state_dict()}, os.path.join(out, 'single.pt'))

    def account(opt, network):
        sd = opt.state_dict()
        return {'class': type(opt).__name__, 'parameters': sum(len(g['params']) for g in sd['param_groups']),
                'with_state': len(sd['state']), 'network': network}
    expected = {'gan.pt': {'optimizer_G': account(opt_g, 'generator'),
                           'optimizer_D': account(opt_d, 'discriminator')}}
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f)


if __name__ == '__main__':
    main()
