#!/usr/bin/env python3
"""A Lightning checkpoint for tst_lightningglance, written by real torch into --out as Lightning's
dump_checkpoint lays it out, with its callbacks' states (ModelCheckpoint's best_model_score and
current_score 0-d tensors, EarlyStopping's wait_count and best_score); --out/expected.json holds each
At a glance value as Python prints it (repr of the tensor's .item(), of the strings and ints)."""
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
    net = nn.Linear(4, 2)
    best = torch.tensor(0.8125731)
    checkpoint = {'monitor': 'val_acc', 'best_model_score': best, 'best_model_path': '/runs/a/epoch=7.ckpt',
                  'current_score': torch.tensor(0.79), 'dirpath': '/runs/a', 'best_k_models': {},
                  'kth_best_model_path': '', 'kth_value': torch.tensor(float('-inf')), 'last_model_path': ''}
    stopping = {'wait_count': 3, 'stopped_epoch': 0, 'best_score': best.clone(), 'patience': 10}
    torch.save({'epoch': 9, 'global_step': 900, 'pytorch-lightning_version': '2.1.0',
                'state_dict': {'net.' + k: v for k, v in net.state_dict().items()},
                'callbacks': {"ModelCheckpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, "
                              "'every_n_epochs': 1, 'train_time_interval': None}": checkpoint,
                              "EarlyStopping{'monitor': 'val_acc', 'mode': 'max'}": stopping},
                'optimizer_states': [], 'lr_schedulers': []}, os.path.join(out, 'lightning.ckpt'))
    expected = {'Monitored metric': repr(checkpoint['monitor']), 'Best score': repr(best.item()),
                'Best checkpoint': repr(checkpoint['best_model_path']),
                'Early stopping best score': repr(stopping['best_score'].item()),
                'Early stopping wait count': repr(stopping['wait_count'])}
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f)


if __name__ == '__main__':
    main()
