#!/usr/bin/env python3
"""Inputs for tst_smallfixes, written by torch 1.13: an AveragedModel (SWA) state dict and the plain
model it averaged, a training checkpoint whose AdamW has two param groups (torch's param_groups
share one `betas` tuple), and a file that holds one list in two places. expected.json says what
torch says of them: the count of models averaged, that the betas tuple is one object, and that the
list is."""
import argparse
import json
import os

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    torch.manual_seed(0)

    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    swa = torch.optim.swa_utils.AveragedModel(net)
    for _ in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        swa.update_parameters(net)
    torch.save(swa.state_dict(), os.path.join(out, 'swa.pth'))
    torch.save(swa.module.state_dict(), os.path.join(out, 'plain.pth'))

    opt = torch.optim.AdamW([{'params': net[0].parameters()}, {'params': net[2].parameters(), 'lr': 1e-4}], lr=1e-3)
    net(torch.randn(5, 4)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    torch.save({'model': net.state_dict(), 'optimizer': sd}, os.path.join(out, 'adamw_two_groups.pth'))

    shared = [1, 2, 3]
    obj = {'a': shared, 'b': shared, 'w': torch.ones(2)}
    torch.save(obj, os.path.join(out, 'shared_list.pth'))

    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump({'n_averaged': int(swa.n_averaged.item()),
                   'param_groups': len(sd['param_groups']),
                   'betas_shared': sd['param_groups'][0]['betas'] is sd['param_groups'][1]['betas'],
                   'list_shared': obj['a'] is obj['b']}, f)


if __name__ == '__main__':
    main()
