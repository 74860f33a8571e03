#!/usr/bin/env python3
"""Inputs for tst_trainmetaview, written by torch 1.13 with stand-ins for the frameworks' classes:
Hugging Face's training_args.bin (a pickled TrainingArguments dataclass) and DeepSpeed's model
states (global_steps); expected.json holds Python's repr of each field and the step."""
import argparse
import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
import framework_stubs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    with tempfile.TemporaryDirectory() as stubs:
        framework_stubs.install(stubs)
        from transformers.training_args import TrainingArguments
        args = TrainingArguments(learning_rate=2e-5, seed=3)
        torch.save(args, os.path.join(out, 'training_args.bin'))
    fields = {k: repr(v) for k, v in vars(args).items() if k != 'evaluation_strategy'}
    steps = 500
    torch.save({'module': {'fc.weight': torch.zeros(2, 2, dtype=torch.float16)}, 'buffer_names': [],
                'optimizer': None, 'global_steps': steps, 'global_samples': steps * 16, 'ds_version': '0.12.6'},
               os.path.join(out, 'mp_rank_00_model_states.pt'))
    # A plain training script's checkpoint: the loss of every epoch so far, in lists (one NaN epoch),
    # and a history dict one level down; torch.load gives back the Python floats charted.
    losses = {'epoch': 4, 'model_state_dict': {'w': torch.ones(2)},
              'train_losses': [2.31, 1.72, float('nan'), 1.05], 'val_losses': [2.4, 1.9, 1.6, 1.4],
              'history': {'val_loss': [0.9, 0.8, 0.7]}, 'best_loss': 1.4, 'loss_names': ['a', 'b']}
    torch.save(losses, os.path.join(out, 'loss_lists.pth'))
    back = torch.load(os.path.join(out, 'loss_lists.pth'))
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump({'training_args': fields, 'class': type(args).__module__ + '.' + type(args).__qualname__,
                   'step': steps,
                   'loss_lists': {'train_losses': [None if v != v else v for v in back['train_losses']],
                                  'val_losses': back['val_losses'], 'history/val_loss': back['history']['val_loss']}},
                  f)


if __name__ == '__main__':
    main()
