#!/usr/bin/env python3
"""Inputs for tst_folderopen, written by torch 1.13: a Hugging Face Trainer checkpoint folder
(checkpoint-500/, as tests/cli/test_folder_vs_torch.py writes it) and a DeepSpeed save folder;
expected.json holds what torch and json say of them: the state dict's names in order, the trainer
state's step and losses by step, the optimizer's class and step."""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cli'))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import test_folder_vs_torch  # noqa: E402

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    folder, sd, osd, _, state = test_folder_vs_torch.trainer_checkpoint(out)
    # The same checkpoint whose training_args.bin would run a command when loaded (written, never loaded).
    dangerous, _, _, _, _ = test_folder_vs_torch.trainer_checkpoint(out, step=600)
    torch.save(test_folder_vs_torch.RunsCode(), os.path.join(dangerous, 'training_args.bin'))
    expected = {
        'folder': folder,
        'dangerous_folder': dangerous,
        # What Python would unpickle besides the weights (everything torch.save wrote there).
        'pickled_parts': sorted(n for n in os.listdir(folder) if n.endswith(('.pt', '.pth', '.bin'))),
        'names': list(sd),
        'global_step': state['global_step'],
        'losses': [[e['step'], e['loss']] for e in state['log_history'] if 'loss' in e],
        'eval_losses': [[e['step'], e['eval_loss']] for e in state['log_history'] if 'eval_loss' in e],
        'optimizer_step': max(int(s['step']) for s in osd['state'].values()),
        'parts': sorted(os.listdir(folder)),
    }
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f)


if __name__ == '__main__':
    main()
